//===- Nvrtc.h - compile generated CUDA C++ to PTX or cubin with NVRTC ----===//
#pragma once

#include <string>

namespace sattn::codegen {

enum class Emit { Ptx, Cubin };

/// A target GPU architecture: sm_90a (Hopper, wgmma) or a portable one.
struct Arch {
  std::string name; ///< "sm_90a", "sm_90", "sm_89", "sm_86", "sm_80"
  /// Newer GPUs than the library knows get PTX that the driver compiles.
  bool ptxForDriver = false;
  /// Parses "sm_90a" etc.; throws std::invalid_argument listing the choices.
  static Arch parse(const std::string &name);
  /// The arch for compute capability major.minor (Hopper gets sm_90a);
  /// throws std::invalid_argument for GPUs older than sm_80.
  static Arch forCapability(int major, int minor);
};

/// Result of one NVRTC compilation.
struct CompileOutput {
  std::string binary; ///< PTX text or cubin bytes
  std::string log;    ///< NVRTC's log (warnings)
};

/// The NVRTC library, loaded on first use. Throws sattn::LoadError when it
/// is missing and std::runtime_error (with the compiler log) on failure.
class Nvrtc {
public:
  static Nvrtc &get();
  /// "major.minor" of the loaded NVRTC, part of every cache key.
  std::string version() const;
  CompileOutput compile(const std::string &source, const std::string &name, const Arch &arch,
                        Emit emit) const;

private:
  Nvrtc();
  struct Impl;
  Impl *impl;
};

} // namespace sattn::codegen
