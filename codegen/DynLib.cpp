//===- DynLib.cpp - load a shared library at run time, with a clear error -===//
#include "codegen/DynLib.h"

#include <cstdlib>
#include <dlfcn.h>

namespace sattn {

DynLib::DynLib(const std::vector<std::string> &candidates, const std::string &w,
               const std::string &hint)
    : what(w) {
  std::string tried, lastError;
  for (const std::string &c : candidates) {
    handle = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle) {
      loadedFrom = c;
      return;
    }
    const char *e = dlerror();
    lastError = e ? e : "unknown error";
    tried += (tried.empty() ? "" : ", ") + c;
  }
  throw LoadError("cannot load " + what + " (tried " + tried + "; last error: " + lastError +
                  "); " + hint);
}

DynLib::~DynLib() {
  if (handle)
    dlclose(handle);
}

void *DynLib::symbol(const char *name) const {
  void *s = dlsym(handle, name);
  if (!s)
    throw LoadError(what + " at " + loadedFrom + " has no symbol " + name +
                    "; it is too old for sattn (CUDA 12 or newer is needed)");
  return s;
}

std::vector<std::string> cudaLibraryCandidates(const std::string &envVar,
                                               const std::vector<std::string> &sonames) {
  std::vector<std::string> c;
  // An explicit override is the only candidate: it must not silently fall back.
  if (const char *p = std::getenv(envVar.c_str()); p && *p)
    return {p};
  for (const std::string &s : sonames)
    c.push_back(s);
  for (const char *home : {std::getenv("CUDA_HOME"), std::getenv("CUDA_PATH")})
    if (home && *home)
      for (const std::string &s : sonames)
        c.push_back(std::string(home) + "/lib64/" + s);
  for (const std::string &s : sonames)
    c.push_back("/usr/local/cuda/lib64/" + s);
  return c;
}

} // namespace sattn
