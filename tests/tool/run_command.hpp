// Runs a program to completion with stdout and stderr captured separately,
// under a deadline, so a hanging `subctx` fails its test instead of the run.
#pragma once

#include <string>
#include <vector>

namespace subctx::test {

struct CommandResult {
  int exit_code = -1;  // 128 + signal number when killed by a signal
  bool timed_out = false;
  std::string out;
  std::string err;
};

CommandResult run_command(const std::vector<std::string>& argv, int timeout_seconds = 60);

// "exit 1\n--- stdout ---\n...\n--- stderr ---\n..." for assertion messages.
std::string describe(const CommandResult& r);

}  // namespace subctx::test
