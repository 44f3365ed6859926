// Paths of the helper executables, from CMake (target files).
#pragma once

namespace e2e::paths {
inline constexpr const char* kBasicServer = E2E_BASIC_SERVER;
inline constexpr const char* kFeatureServer = E2E_FEATURE_SERVER;
inline constexpr const char* kCServer = E2E_C_SERVER;
inline constexpr const char* kCExecstackServer = E2E_C_EXECSTACK_SERVER;
inline constexpr const char* kRefusingServer = E2E_REFUSING_SERVER;
inline constexpr const char* kReturningServer = E2E_RETURNING_SERVER;
inline constexpr const char* kLazyServer = E2E_LAZY_SERVER;
inline constexpr const char* kPolicyServer = E2E_POLICY_SERVER;
inline constexpr const char* kProtectionServer = E2E_PROTECTION_SERVER;
inline constexpr const char* kFaultServer = E2E_FAULT_SERVER;
inline constexpr const char* kIdentityServer = E2E_IDENTITY_SERVER;
inline constexpr const char* kIdentityClient = E2E_IDENTITY_CLIENT;
inline constexpr const char* kCallbackServer = E2E_CALLBACK_SERVER;
inline constexpr const char* kCallbackClient = E2E_CALLBACK_CLIENT;
inline constexpr const char* kThreadServer = E2E_THREAD_SERVER;
inline constexpr const char* kChildrenServer = E2E_CHILDREN_SERVER;
inline constexpr const char* kSubctxTool = E2E_SUBCTX_TOOL;
inline constexpr const char* kVanishEmptyDir = E2E_VANISH_EMPTY_DIR;
inline constexpr const char* kWorkerClient = E2E_WORKER_CLIENT;
inline constexpr const char* kCClient = E2E_C_CLIENT;
inline constexpr const char* kAtexitClient = E2E_ATEXIT_CLIENT;
inline constexpr const char* kSignalClient = E2E_SIGNAL_CLIENT;
inline constexpr const char* kProtectionClient = E2E_PROTECTION_CLIENT;
inline constexpr const char* kPrivilegeClient = E2E_PRIVILEGE_CLIENT;
}  // namespace e2e::paths
