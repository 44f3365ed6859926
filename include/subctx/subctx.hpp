// subctx — the C++ client API: the Matchmaker maps images and calls exports.
//
//   auto& mm = subctx::Matchmaker::instance();
//   subctx::Subcontext sc = mm.request_map("square.img");
//   int64_t r = sc.call<int64_t(int64_t)>("square", 7);
//   auto square = sc.function<int64_t(int64_t)>("square");   // checked once
//   r = square(8);
//   std::vector<int64_t> in{1, 2, 3}, out(3);
//   square.call_each(in, out);       // a batch: out = {1, 4, 9}, one window
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "subctx/error.hpp"
#include "subctx/signature.hpp"
#include "subctx/syscall_rule.hpp"

namespace subctx {

struct ExportInfo {
  std::string name;
  uint64_t address = 0;
  std::string signature;
  Visibility visibility = Visibility::Public;
};

// Protection backends (docs/protection.md).
enum class Protection : uint8_t {
  Auto = SBC_PROTECT_AUTO,          // SUBCTX_PROTECTION, else pkey where it works, else mprotect
  None = SBC_PROTECT_NONE,          // trusted images: no protection, fastest calls
  Mprotect = SBC_PROTECT_MPROTECT,  // the gate opens and closes the memory for each call
  Pkey = SBC_PROTECT_PKEY,          // one protection key per subcontext, rights per thread
};
SUBCTX_API const char* protection_name(Protection p);

// What happens to a subcontext after a call faulted, timed out or went over
// its quota (docs/containment.md).
enum class OnFault : uint8_t {
  Reset = SBC_ON_FAULT_RESET,    // back to its snapshot state (the default)
  Poison = SBC_ON_FAULT_POISON,  // further calls throw SubcontextPoisoned until reset()
  Keep = SBC_ON_FAULT_KEEP,      // left as the fault left it
};
SUBCTX_API const char* on_fault_name(OnFault p);

// Memory a subcontext uses on the client's behalf; 0 in a max_ field: no quota.
struct Quota {
  uint64_t max_dirty_pages = 0;   // private pages written since map or reset
  uint64_t max_mapped_bytes = 0;  // memory mapped by subcontext code
};

struct MapOptions {
  Protection protection = Protection::Auto;
  bool readable = false;           // the client may read (not write, not run) it outside calls
  bool exact_permissions = false;  // mprotect: in calls each segment keeps its own permissions
  // Unset: the environment (SUBCTX_ON_FAULT, SUBCTX_CALL_TIMEOUT_MS,
  // SUBCTX_QUOTA_DIRTY_PAGES, SUBCTX_QUOTA_MAPPED_BYTES), else reset, no
  // deadline, no quota.
  std::optional<OnFault> on_fault;
  std::optional<uint32_t> call_timeout_ms;  // 0: no deadline
  std::optional<Quota> quota;
  // Rules for subcontext code's system calls, over the image's own and the
  // defaults (docs/containment.md).  Need Syscall User Dispatch.
  std::vector<SyscallRule> syscalls;
  // Where subcontext code's system calls are not mediated (SUBCTX_SYSCALLS=off,
  // a kernel without Syscall User Dispatch), an image that restores
  // descriptors or a working directory other than the client's is refused:
  // its descriptor numbers would name the client's.  true maps it anyway
  // (docs/identity.md).  SBC_MAP_UNISOLATED in C.
  bool unisolated = false;
};

struct MemoryInfo {
  uint64_t dirty_pages = 0;
  uint64_t peak_dirty_pages = 0;
  uint64_t mapped_bytes = 0;
  uint64_t peak_mapped_bytes = 0;
  Quota quota;
  uint64_t faults = 0;  // calls that faulted, timed out or went over quota
  uint64_t resets = 0;
  uint64_t open_fds = 0;      // file descriptors subcontext code opened and has not closed
  uint64_t granted_fds = 0;   // descriptors the client granted (grant_fd) still open
  uint64_t restored_fds = 0;  // the server's descriptors, reopened at map
  uint64_t threads = 0;       // threads subcontext code started that still run (docs/threads.md)
};

// What one reset did.
struct ResetInfo {
  uint64_t pages_restored = 0;     // dirtied pages dropped back to the image
  uint64_t mappings_released = 0;  // memory mapped by subcontext code, unmapped
  uint64_t bytes_released = 0;
  bool layout_restored = false;  // segment parts the subcontext had unmapped, mapped again
  uint64_t fds_closed = 0;       // file descriptors subcontext code had opened, closed
  uint64_t fds_restored = 0;     // the server's descriptors put back at their snapshot offsets
};

// An import of the image (docs/callbacks.md): a function its code calls and
// the client provides.
struct ImportInfo {
  std::string name;
  std::string signature;
  bool bound = false;
};

// How a mapped subcontext is protected.
struct ProtectionInfo {
  Protection backend = Protection::None;
  bool readable = false;
  bool exact_permissions = false;
  size_t clusters = 0;        // mprotect: contiguous ranges (gaps reserved)
  size_t open_syscalls = 0;   // mprotect: system calls to open it for a call
  size_t close_syscalls = 0;  // and to close it after
  int pkey = -1;              // pkey: the key
};

// A violation report (see sbc_violation in subctx.h) and the handler type.
using Violation = sbc_violation;
using ViolationHandler = sbc_violation_handler;

struct Limits {
  uint64_t subcontexts = 64;                 // SUBCTX_MAX_SUBCONTEXTS; at most 1024
  uint64_t image_size = uint64_t{64} << 30;  // SUBCTX_MAX_IMAGE_SIZE (bytes)
  uint64_t exports = 4096;                   // SUBCTX_MAX_EXPORTS
  uint64_t segments = 4096;                  // SUBCTX_MAX_SEGMENTS
  uint64_t threads = 64;                     // SUBCTX_MAX_THREADS: per subcontext, at most 1024 (docs/threads.md)
};

namespace detail {

struct SubcontextState;

// Argument registers for one call, filled by the typed call templates.
// The gate loads every argument register from a record: the slots past
// n_ints / n_f64s are left as they are (not zeroed on each call: what
// those registers hold means nothing to the export).
struct CallArgs {
  uint64_t ints[kMaxIntArgs];
  double f64s[kMaxF64Args];
  int n_ints = 0;
  int n_f64s = 0;

  template <class T>
  void push(T value) {
    if constexpr (std::is_same_v<T, double>) {
      f64s[n_f64s++] = value;
    } else if constexpr (std::is_pointer_v<T>) {
      ints[n_ints++] = reinterpret_cast<uint64_t>(value);
    } else if constexpr (std::is_signed_v<T>) {
      ints[n_ints++] = static_cast<uint64_t>(static_cast<int64_t>(value));
    } else {
      ints[n_ints++] = static_cast<uint64_t>(value);
    }
  }
};

struct CallResult {
  uint64_t rax = 0;
  double xmm0 = 0;
};

// Resolved export: what a typed handle keeps after the one-time check.
struct ResolvedExport {
  std::shared_ptr<SubcontextState> state;
  uint32_t index = 0;
};

// The export's index after checking that it exists and has the expected
// signature; throws NoSuchSubcontext, NoSuchExport or SignatureMismatch.
SUBCTX_API uint32_t resolve_index(const SubcontextState* state, std::string_view name, const Signature& expected);
SUBCTX_API ResolvedExport resolve_export(const std::shared_ptr<SubcontextState>& state, std::string_view name,
                                         const Signature& expected);
// Checks the policy (cached until it changes), then calls through the gate.
SUBCTX_API CallResult invoke(SubcontextState& state, uint32_t index, const CallArgs& args);

// A batch's input and output, converted a chunk at a time by the library
// (inside the protection window: no client code runs there).
struct BatchIo {
  const void* in = nullptr;
  void* out = nullptr;
  // Fills args[0, n) from inputs [first, first + n).
  void (*pack)(const void* in, size_t first, size_t n, CallArgs* args) = nullptr;
  // Stores results [first, first + n); null: the results are dropped.
  void (*unpack)(void* out, size_t first, size_t n, const CallResult* results) = nullptr;
};
// Calls the export `count` times in a row, entering the subcontext once per
// chunk of calls, under one policy check and one protection window.
SUBCTX_API void invoke_batch(SubcontextState& state, uint32_t index, size_t count, const BatchIo& io);
[[noreturn]] SUBCTX_API void throw_empty_function();
[[noreturn]] SUBCTX_API void throw_batch_size(size_t args, size_t results);
SUBCTX_API uint64_t export_address(const SubcontextState& state, uint32_t index);
// The raw-call address of an export after the checks (policy included).
SUBCTX_API void* raw_address(const SubcontextState* state, std::string_view name, const Signature* expected);

// A bound C++ callable is called through this thunk (a plain function, as
// the callback entry needs), which finds the object in the binding's user
// pointer.
template <class C, class F>
struct callable_thunk;
template <class C, class R, class... A>
struct callable_thunk<C, R(A...)> {
  static R call(A... a) { return (*static_cast<C*>(sbc_callback_user()))(a...); }
};

template <class R>
R convert_result(const CallResult& r) {
  if constexpr (std::is_void_v<R>) {
    return;
  } else if constexpr (std::is_same_v<R, double>) {
    return r.xmm0;
  } else if constexpr (std::is_pointer_v<R>) {
    return reinterpret_cast<R>(r.rax);
  } else {
    return static_cast<R>(r.rax);  // truncates i32/u32 results as the ABI says
  }
}

template <class T>
inline constexpr bool is_tuple = false;
template <class... T>
inline constexpr bool is_tuple<std::tuple<T...>> = true;

template <class F>
struct function_traits;
template <class R, class... A>
struct function_traits<R(A...)> {
  using result = R;
  static CallArgs pack(A... a) {
    CallArgs args;
    (args.push(a), ...);
    return args;
  }
  // A batch's element: the argument itself (one parameter) or a std::tuple
  // of the arguments, scalars only (numbers, pointers, enums): converting
  // them runs no code of the client's inside the protection window.
  // clang-format off
  template <class V, class Arg>
  static constexpr bool batch_value = std::is_scalar_v<V> && std::is_convertible_v<const V&, Arg>;
  template <class E>
  static constexpr bool batch_element() {
    if constexpr (is_tuple<E>) {
      if constexpr (std::tuple_size_v<E> == sizeof...(A))
        return []<size_t... I>(std::index_sequence<I...>) {
          return (batch_value<std::tuple_element_t<I, E>, A> && ...);
        }(std::index_sequence_for<A...>{});
      else
        return false;
    } else {
      return sizeof...(A) == 1 && (batch_value<E, A> && ...);
    }
  }
  template <class E>
  static void pack_batch(const void* in, size_t first, size_t n, CallArgs* args) {
    const E* e = static_cast<const E*>(in) + first;
    for (size_t i = 0; i < n; ++i) {
      CallArgs& a = args[i];
      a.n_ints = a.n_f64s = 0;
      if constexpr (is_tuple<E>) {
        [&]<size_t... I>(std::index_sequence<I...>) {
          (a.push(static_cast<A>(std::get<I>(e[i]))), ...);
        }(std::index_sequence_for<A...>{});
      } else {
        (a.push(static_cast<A>(e[i])), ...);
      }
    }
  }
  // clang-format on
  static void unpack_batch(void* out, size_t first, size_t n, const CallResult* results) {
    R* r = static_cast<R*>(out) + first;
    for (size_t i = 0; i < n; ++i) r[i] = convert_result<R>(results[i]);
  }
};

}  // namespace detail

// A typed handle to one export, checked against its signature once.
template <class F>
class Function;
template <class R, class... A>
class Function<R(A...)> {
 public:
  Function() = default;
  explicit Function(detail::ResolvedExport target) : target_(std::move(target)) {}
  R operator()(A... a) const {
    if (!target_.state) detail::throw_empty_function();
    detail::CallArgs args = detail::function_traits<R(A...)>::pack(a...);
    return detail::convert_result<R>(detail::invoke(*target_.state, target_.index, args));
  }
  uint64_t address() const { return target_.state ? detail::export_address(*target_.state, target_.index) : 0; }

  // A batch: calls the export once per element of args, in order, without
  // leaving the subcontext in between -- one policy check and one
  // protection window for all of them, one gate entry per 1024 calls
  // (docs/protection.md, "Batches").  An element is the argument (an export
  // of one parameter) or a std::tuple of the arguments; results[i] gets the
  // i-th result (results.size() == args.size()).  A call that fails ends
  // the batch with its error: SubcontextFault::completed() calls returned
  // and their results are stored.  The call timeout covers the whole batch.
  template <std::ranges::contiguous_range Args>
    requires(!std::is_void_v<R>)
  void call_each(const Args& args, std::span<R> results) const {
    using E = std::ranges::range_value_t<Args>;
    if (std::ranges::size(args) != results.size()) detail::throw_batch_size(std::ranges::size(args), results.size());
    run_batch<E>(std::ranges::data(args), std::ranges::size(args), results.data(), &traits::unpack_batch);
  }
  // Exports without a result.
  template <std::ranges::contiguous_range Args>
    requires std::is_void_v<R>
  void call_each(const Args& args) const {
    using E = std::ranges::range_value_t<Args>;
    run_batch<E>(std::ranges::data(args), std::ranges::size(args), nullptr, nullptr);
  }

 private:
  using traits = detail::function_traits<R(A...)>;
  template <class E>
  void run_batch(const E* in, size_t n, void* out,
                 void (*unpack)(void*, size_t, size_t, const detail::CallResult*)) const {
    static_assert(traits::template batch_element<E>(),
                  "call_each: each element must be the export's argument or a std::tuple of its arguments, as scalars "
                  "(numbers, pointers, enums)");
    if (!target_.state) detail::throw_empty_function();
    detail::BatchIo io;
    io.in = in;
    io.out = out;
    io.pack = &traits::template pack_batch<E>;
    io.unpack = unpack;
    detail::invoke_batch(*target_.state, target_.index, n, io);
  }
  detail::ResolvedExport target_;
};

// A mapped image.  Cheap to copy; stays valid until unmapped (calls through
// a handle of an unmapped subcontext throw NoSuchSubcontext).
class SUBCTX_API Subcontext {
 public:
  Subcontext() = default;

  // Calls an export by name; Sig must match the export's signature.
  template <class Sig, class... Args>
  typename detail::function_traits<Sig>::result call(std::string_view name, Args&&... args) const {
    static const Signature expected = signature_of<Sig>();  // built once per type
    using traits = detail::function_traits<Sig>;
    const uint32_t index = detail::resolve_index(state_.get(), name, expected);
    detail::CallArgs packed = traits::pack(std::forward<Args>(args)...);
    return detail::convert_result<typename traits::result>(detail::invoke(*state_, index, packed));
  }

  template <class Sig>
  Function<Sig> function(std::string_view name) const {
    static const Signature expected = signature_of<Sig>();  // built once per type
    return Function<Sig>(detail::resolve_export(state_, name, expected));
  }

  // A plain function pointer to the export (a raw call, see sbc_lookup):
  // calling it faults into the Matchmaker, which checks and forwards it.
  template <class Sig>
  Sig* raw(std::string_view name) const {
    static const Signature expected = signature_of<Sig>();
    return reinterpret_cast<Sig*>(detail::raw_address(state_.get(), name, &expected));
  }

  std::vector<ExportInfo> exports() const;
  ProtectionInfo protection() const;

  // Callbacks (docs/callbacks.md): binds the image's import `name` to a
  // function of the client's, which subcontext code then calls as client
  // code.  Sig must be the import's signature (SignatureMismatch; no such
  // import: NoSuchExport).  fn: a function, a function pointer, a lambda
  // without captures (called directly), or any callable (a lambda with
  // captures, a functor: copied, kept until unbound, rebound or unmapped).
  // An exception it throws ends the outer call and is rethrown at its call
  // site, the subcontext's fault policy applied.  Takes effect on the next
  // call; refused from inside a call of this subcontext.
  //   sc.bind<int64_t(int64_t)>("square", [](int64_t x) { return x * x; });
  template <class Sig, class Fn>
  void bind(std::string_view name, Fn&& fn) const {
    static const Signature sig = signature_of<Sig>();
    using C = std::decay_t<Fn>;
    if constexpr (std::is_convertible_v<C, Sig*>) {
      bind_import(name, reinterpret_cast<void*>(static_cast<Sig*>(fn)), sig, nullptr, nullptr);
    } else {
      auto owner = std::make_shared<C>(std::forward<Fn>(fn));
      void* user = owner.get();
      bind_import(name, reinterpret_cast<void*>(&detail::callable_thunk<C, Sig>::call), sig, user, std::move(owner));
    }
  }
  template <class R, class... A>
  void bind(std::string_view name, R (*fn)(A...)) const {
    bind<R(A...)>(name, fn);
  }
  void unbind(std::string_view name) const;
  std::vector<ImportInfo> imports() const;
  // What bind() and sbc_bind_user() call: fn with the signature sig; user is
  // what sbc_callback_user() returns while it runs; owner is kept while bound.
  void bind_import(std::string_view name, void* fn, const Signature& sig, void* user,
                   std::shared_ptr<void> owner) const;

  // Restores the snapshot state (waits for a call in progress); the cost
  // follows what was dirtied, not the image's size.
  ResetInfo reset() const;
  MemoryInfo memory() const;
  void set_on_fault(OnFault policy) const;
  void set_call_timeout(uint32_t milliseconds) const;  // 0: none
  void set_quota(const Quota& quota) const;

  // Descriptors (docs/identity.md).  The subcontext has its own descriptor
  // numbers: grant_fd() gives it a duplicate of the client's fd and returns
  // its number for it (to pass to an export); revoke_fd() closes a number of
  // the subcontext's; claim_fd() returns a duplicate of one for the client
  // (close-on-exec; the subcontext keeps its own).
  int grant_fd(int fd) const;
  void revoke_fd(int number) const;
  int claim_fd(int number) const;

  int handle() const;
  const std::string& path() const;
  bool valid() const { return state_ != nullptr; }

  explicit Subcontext(std::shared_ptr<detail::SubcontextState> s) : state_(std::move(s)) {}
  const std::shared_ptr<detail::SubcontextState>& state() const { return state_; }

 private:
  std::shared_ptr<detail::SubcontextState> state_;
};

class SUBCTX_API Matchmaker {
 public:
  // The process-wide Matchmaker; installed at its first use (before main
  // when a SUBCTX_* variable is set).
  static Matchmaker& instance();

  void init();  // idempotent; re-installs after finalize()
  bool installed() const;

  Subcontext request_map(const std::string& image_path, const MapOptions& options = {});
  Subcontext find(int handle) const;  // throws NoSuchSubcontext
  void unmap(const Subcontext& sc);
  void unmap(int handle);
  // Unmaps every subcontext, then uninstalls the Matchmaker.
  void finalize();

  Limits limits() const;
  void set_limits(const Limits& limits);

  // The policy (docs/policy.md): which images may be mapped, which exports
  // called.  Takes effect on the next map and the next call.  A malformed
  // policy throws InvalidArgument naming the line and leaves the old one.
  void set_policy(const std::string& policy_text);
  void load_policy(const std::string& path);  // what SUBCTX_POLICY names at start-up
  void clear_policy();

  // What happens on a violation (see sbc_violation_handler for what the
  // handler may do); null restores the default: a diagnostic, then SIGSEGV.
  void set_violation_handler(ViolationHandler handler, void* user = nullptr);

 private:
  Matchmaker() = default;
};

}  // namespace subctx
