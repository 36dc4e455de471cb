//===- Nvrtc.h - compile generated CUDA C++ to PTX or cubin with NVRTC ----===//
#pragma once

#include <optional>
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

/// Where one compilation spent its time: NVRTC's own `-time` report, wall
/// milliseconds at 1 ms resolution.
struct CompilePhases {
  double frontendMs = 0; ///< CUDA C++ front end: preprocess, parse, instantiate templates
  double nvvmMs = 0;     ///< libNVVM: link, LLVM optimisation, PTX code generation
  double ptxasMs = 0;    ///< PTX to SASS (0 for PTX: the driver assembles it at load)
};

/// Result of one NVRTC compilation.
struct CompileOutput {
  std::string binary;   ///< PTX text or cubin bytes
  std::string log;      ///< NVRTC's log (warnings)
  double compileMs = 0; ///< nvrtcCompileProgram, wall time
  /// Filled when compile() was asked to time the phases and NVRTC could
  /// write its report.
  std::optional<CompilePhases> phases;
};

/// The NVRTC library, loaded on first use. Throws sattn::LoadError when it
/// is missing and std::runtime_error (with the compiler log) on failure.
class Nvrtc {
public:
  static Nvrtc &get();
  /// "major.minor" of the loaded NVRTC, part of every cache key.
  std::string version() const;
  /// The NVRTC version and every compiler option that shapes the binary
  /// (the architecture aside): what a cache key must hold so that a change
  /// of options never loads a stale binary.
  std::string cacheTag() const;
  /// Compiles `source` with the device library as in-memory headers.
  /// `timePhases` adds NVRTC's `-time` report (a temporary file) to the
  /// output; it does not change the binary.
  CompileOutput compile(const std::string &source, const std::string &name, const Arch &arch,
                        Emit emit, bool timePhases = false) const;

private:
  Nvrtc();
  struct Impl;
  Impl *impl;
};

} // namespace sattn::codegen
