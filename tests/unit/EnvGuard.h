//===- EnvGuard.h - set an environment variable for one test --------------===//
//
// Shared by unit tests that exercise environment overrides (SATTN_CACHE_DIR,
// SATTN_NVRTC, ...): the variable is restored when the guard goes away.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstdlib>
#include <optional>
#include <string>

namespace sattn::testing {

/// Saves an environment variable and puts it back on destruction.
struct EnvGuard {
  std::string name;
  std::optional<std::string> old;
  explicit EnvGuard(std::string n) : name(std::move(n)) {
    if (const char *v = std::getenv(name.c_str()))
      old = v;
  }
  ~EnvGuard() {
    if (old)
      ::setenv(name.c_str(), old->c_str(), 1);
    else
      ::unsetenv(name.c_str());
  }
  void set(const std::string &v) const { ::setenv(name.c_str(), v.c_str(), 1); }
  void unset() const { ::unsetenv(name.c_str()); }
};

} // namespace sattn::testing
