// A private temporary directory for test and benchmark programs (the
// images they write), removed with its contents.  Header-only: shared by
// tests/e2e, tests/tool and bench.
#pragma once

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace subctx::testing {

class TempDir {
 public:
  // Made by mkdtemp as PARENT/PREFIX-XXXXXX, PARENT from the environment
  // variable parent_env (else /tmp).  Kept at exit when keep_env is set.
  explicit TempDir(const std::string& prefix, const char* parent_env = "TMPDIR", const char* keep_env = nullptr)
      : keep_env_(keep_env) {
    const char* parent = std::getenv(parent_env);
    std::string tmpl = std::string(parent && *parent ? parent : "/tmp") + "/" + prefix + "-XXXXXX";
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp " + tmpl + ": " + std::strerror(errno));
    path_ = tmpl;
  }
  ~TempDir() {
    if (keep_env_ && std::getenv(keep_env_)) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
  const char* keep_env_;
};

}  // namespace subctx::testing
