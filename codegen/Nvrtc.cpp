//===- Nvrtc.cpp - compile generated CUDA C++ to PTX or cubin with NVRTC --===//
//
// NVRTC is dlopen'ed: sattn-compile and the runtime start without it and
// say what to install when it is missing. The device library is passed as
// in-memory headers, so no file of codegen/device/ is needed on disk.
//
//===----------------------------------------------------------------------===//
#include "codegen/Nvrtc.h"

#include "codegen/DynLib.h"
#include "codegen/EmbeddedHeaders.h"

#include <nvrtc.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <vector>

namespace sattn::codegen {

Arch Arch::parse(const std::string &name) {
  for (const char *known : {"sm_90a", "sm_90", "sm_89", "sm_86", "sm_80"})
    if (name == known)
      return Arch{name};
  throw std::invalid_argument("unsupported GPU architecture '" + name +
                              "'; choose sm_90a (Hopper) or sm_80, sm_86, sm_89, sm_90");
}

Arch Arch::forCapability(int major, int minor) {
  if (major < 8)
    throw std::invalid_argument("GPU of compute capability " + std::to_string(major) + "." +
                                std::to_string(minor) +
                                " is not supported; sattn needs sm_80 (Ampere) or newer");
  if (major == 9)
    return Arch{"sm_90a"};
  if (major > 9) // Blackwell and later: portable PTX, compiled by the driver
    return Arch{"sm_90", /*ptxForDriver=*/true};
  if (minor == 9)
    return Arch{"sm_89"};
  return Arch{minor >= 6 ? "sm_86" : "sm_80"};
}

struct Nvrtc::Impl {
  DynLib lib;
  decltype(&nvrtcVersion) version;
  decltype(&nvrtcCreateProgram) create;
  decltype(&nvrtcCompileProgram) compile;
  decltype(&nvrtcGetProgramLogSize) logSize;
  decltype(&nvrtcGetProgramLog) log;
  decltype(&nvrtcGetPTXSize) ptxSize;
  decltype(&nvrtcGetPTX) ptx;
  decltype(&nvrtcGetCUBINSize) cubinSize;
  decltype(&nvrtcGetCUBIN) cubin;
  decltype(&nvrtcDestroyProgram) destroy;
  decltype(&nvrtcGetErrorString) errorString;

  Impl()
      : lib(cudaLibraryCandidates("SATTN_NVRTC",
                                  {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"}),
            "NVRTC (libnvrtc.so)",
            "install the CUDA toolkit's NVRTC or set SATTN_NVRTC to the library's path") {
    version = lib.get<decltype(version)>("nvrtcVersion");
    create = lib.get<decltype(create)>("nvrtcCreateProgram");
    compile = lib.get<decltype(compile)>("nvrtcCompileProgram");
    logSize = lib.get<decltype(logSize)>("nvrtcGetProgramLogSize");
    log = lib.get<decltype(log)>("nvrtcGetProgramLog");
    ptxSize = lib.get<decltype(ptxSize)>("nvrtcGetPTXSize");
    ptx = lib.get<decltype(ptx)>("nvrtcGetPTX");
    cubinSize = lib.get<decltype(cubinSize)>("nvrtcGetCUBINSize");
    cubin = lib.get<decltype(cubin)>("nvrtcGetCUBIN");
    destroy = lib.get<decltype(destroy)>("nvrtcDestroyProgram");
    errorString = lib.get<decltype(errorString)>("nvrtcGetErrorString");
  }

  void check(nvrtcResult r, const char *what) const {
    if (r != NVRTC_SUCCESS)
      throw std::runtime_error(std::string("NVRTC ") + what + " failed: " + errorString(r));
  }
};

Nvrtc::Nvrtc() : impl(new Impl()) {}

Nvrtc &Nvrtc::get() {
  static Nvrtc instance; // loaded once; LoadError propagates to the caller
  return instance;
}

std::string Nvrtc::version() const {
  int major = 0, minor = 0;
  impl->check(impl->version(&major, &minor), "version query");
  return std::to_string(major) + "." + std::to_string(minor);
}

CompileOutput Nvrtc::compile(const std::string &source, const std::string &name, const Arch &arch,
                             Emit emit) const {
  std::vector<const char *> headerText, headerNames;
  for (const EmbeddedHeader &h : deviceHeaders()) {
    headerNames.push_back(h.name);
    headerText.push_back(h.contents);
  }
  nvrtcProgram prog;
  impl->check(impl->create(&prog, source.c_str(), (name + ".cu").c_str(),
                           static_cast<int>(headerText.size()), headerText.data(),
                           headerNames.data()),
              "program creation");
  std::unique_ptr<nvrtcProgram, std::function<void(nvrtcProgram *)>> guard(
      &prog, [this](nvrtcProgram *p) { impl->destroy(p); });
  // PTX is emitted for the virtual architecture, cubin for the real one.
  std::string gpu = arch.name;
  if (emit == Emit::Ptx)
    gpu.replace(0, 2, "compute");
  std::string archOpt = "--gpu-architecture=" + gpu;
  const char *opts[] = {archOpt.c_str(), "-std=c++17", "-lineinfo",
                        "--device-as-default-execution-space"};
  nvrtcResult r = impl->compile(prog, 4, opts);
  size_t logSize = 0;
  impl->check(impl->logSize(prog, &logSize), "log query");
  std::string log(logSize, '\0');
  if (logSize > 1)
    impl->check(impl->log(prog, log.data()), "log query");
  while (!log.empty() && (log.back() == '\0' || log.back() == '\n'))
    log.pop_back();
  if (r != NVRTC_SUCCESS)
    throw std::runtime_error("NVRTC could not compile the generated module for " + arch.name +
                             ":\n" + log);
  CompileOutput out;
  out.log = log;
  size_t size = 0;
  if (emit == Emit::Ptx) {
    impl->check(impl->ptxSize(prog, &size), "PTX size");
    out.binary.resize(size);
    impl->check(impl->ptx(prog, out.binary.data()), "PTX");
    while (!out.binary.empty() && out.binary.back() == '\0')
      out.binary.pop_back();
  } else {
    impl->check(impl->cubinSize(prog, &size), "cubin size");
    out.binary.resize(size);
    impl->check(impl->cubin(prog, out.binary.data()), "cubin");
  }
  return out;
}

} // namespace sattn::codegen
