//===- DynLib.h - load a shared library at run time, with a clear error ---===//
//
// libcuda and NVRTC are dlopen'ed (design §6) so every binary starts on a
// machine without a GPU or toolkit; what is missing is reported by name.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace sattn {

/// A library or symbol that could not be loaded; the message says which
/// files were tried and what to install or set.
struct LoadError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class DynLib {
public:
  /// Tries each candidate (a file name for the loader's search, or a path);
  /// throws LoadError naming all of them and `hint` if none loads.
  DynLib(const std::vector<std::string> &candidates, const std::string &what,
         const std::string &hint);
  ~DynLib();
  DynLib(const DynLib &) = delete;
  DynLib &operator=(const DynLib &) = delete;

  /// The symbol `name`; throws LoadError if the library lacks it.
  void *symbol(const char *name) const;
  template <typename Fn> Fn get(const char *name) const {
    return reinterpret_cast<Fn>(symbol(name));
  }
  const std::string &path() const { return loadedFrom; }

private:
  void *handle = nullptr;
  std::string loadedFrom, what;
};

/// Candidates for a CUDA library: an explicit override from `envVar`, then
/// the soname (loader search path), then $CUDA_HOME/lib64 and /usr/local/cuda/lib64.
std::vector<std::string> cudaLibraryCandidates(const std::string &envVar,
                                               const std::vector<std::string> &sonames);

} // namespace sattn
