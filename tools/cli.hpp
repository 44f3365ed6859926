// What the `subctx` command's parts share: exit codes, the usage error, and
// one entry point per subcommand.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace subctx::tool {

// Exit status: scripts tell "the image or the call is bad" (1) from "the
// command line is bad" (2) without parsing messages.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;

// A bad command line.  `command` picks the usage line printed after the
// message ("" for the whole usage).
class UsageError : public std::runtime_error {
 public:
  UsageError(std::string command, const std::string& message)
      : std::runtime_error(message), command_(std::move(command)) {}
  const std::string& command() const { return command_; }

 private:
  std::string command_;
};

// Usage text for one subcommand, or for all of them when command is "".
std::string usage(const std::string& command);

// Each returns the exit status; failures are thrown (subctx::Error or
// UsageError) and reported by main.  args excludes the subcommand's name.
int run_inspect(const std::vector<std::string>& args);
int run_call(const std::vector<std::string>& args);
int run_verify(const std::vector<std::string>& args);
int run_train(const std::vector<std::string>& args);
int run_snapshot(const std::vector<std::string>& args);  // snapshot --pid (snapshot.cpp)

}  // namespace subctx::tool
