//===- Nvrtc.cpp - compile generated CUDA C++ to PTX or cubin with NVRTC --===//
//
// NVRTC is dlopen'ed: sattn-compile and the runtime start without it and
// say what to install when it is missing. The device library is passed as
// in-memory headers, so no file of codegen/device/ is needed on disk.
//
// Where a compile's time goes (docs/performance.md, "cold compile"): the
// front end is 4-6 %, libNVVM about half, ptxas the rest, nearly all of it
// on the attention kernel. NVRTC's precompiled headers would only shave the
// front end, and only for the second compile in a process (a PCH file is
// tied to the NVRTC instance that wrote it), so they are not used.
//
//===----------------------------------------------------------------------===//
#include "codegen/Nvrtc.h"

#include "codegen/DynLib.h"
#include "codegen/EmbeddedHeaders.h"

#include <nvrtc.h>

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/xxhash.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <unistd.h>
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

namespace {

/// Options that shape the binary. cacheTag() lists them, so a change here
/// changes every cache key that is built from it.
const std::vector<std::string> kCodeOptions = {"-std=c++17", "-lineinfo",
                                               "--device-as-default-execution-space"};

/// The phases of NVRTC's `-time` report ("file, phase, value, ms" lines).
std::optional<CompilePhases> readPhases(const std::string &path) {
  std::ifstream in(path);
  CompilePhases ph;
  bool any = false;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) {
      size_t b = cell.find_first_not_of(" \t\r"), e = cell.find_last_not_of(" \t\r");
      f.push_back(b == std::string::npos ? "" : cell.substr(b, e - b + 1));
    }
    if (f.size() < 4 || f[3] != "ms")
      continue;
    double ms = std::strtod(f[2].c_str(), nullptr);
    if (f[1] == "CUDA C++ Frontend")
      ph.frontendMs += ms, any = true;
    else if (f[1] == "NVVM Optimizer")
      ph.nvvmMs += ms, any = true;
    else if (f[1] == "PTX Translation")
      ph.ptxasMs += ms, any = true;
  }
  if (!any)
    return std::nullopt;
  return ph;
}

} // namespace

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
    check(version(&major, &minor), "version query");
  }

  int major = 0, minor = 0;
  bool atLeast(int ma, int mi) const { return major > ma || (major == ma && minor >= mi); }
  /// Cleared when this NVRTC rejects --no-cache or -time (neither changes
  /// the binary, so compiling without them is always right).
  mutable std::atomic<bool> extraOptions{true};

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
  return std::to_string(impl->major) + "." + std::to_string(impl->minor);
}

std::string Nvrtc::cacheTag() const {
  // The device headers are part of every compiled module, so their digest
  // is part of the key: an edited template never reuses a stale binary.
  static const std::string headers = [] {
    uint64_t h = 0;
    for (const EmbeddedHeader &e : deviceHeaders())
      h = llvm::xxh3_64bits(llvm::StringRef(e.name)) ^ (h * 0x9E3779B97F4A7C15ull) ^
          llvm::xxh3_64bits(llvm::StringRef(e.contents));
    char buf[17];
    std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
    return std::string(buf);
  }();
  std::string tag = version();
  for (const std::string &o : kCodeOptions)
    tag += " " + o;
  return tag + " headers " + headers;
}

CompileOutput Nvrtc::compile(const std::string &source, const std::string &name, const Arch &arch,
                             Emit emit, bool timePhases) const {
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
  std::vector<std::string> options = {"--gpu-architecture=" + gpu};
  options.insert(options.end(), kCodeOptions.begin(), kCodeOptions.end());
  // NVRTC 12.9+ also keeps every program it compiles in the driver's
  // compute cache (~/.nv/ComputeCache) when a driver is installed. The disk
  // cache already holds each binary; a second copy costs a write per miss,
  // fills a cache other CUDA programs share, and makes a cold compile a hit
  // whenever the same module was compiled on the machine before.
  bool extra = impl->extraOptions;
  if (extra && impl->atLeast(12, 9))
    options.push_back("--no-cache");
  std::string timeFile;
  if (extra && timePhases) {
    const char *tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/sattn-nvrtc-time-XXXXXX";
    int fd = ::mkstemp(pattern.data());
    if (fd >= 0) {
      ::close(fd);
      timeFile = pattern;
      options.push_back("-time=" + timeFile);
    }
  }
  std::vector<const char *> opts;
  for (const std::string &o : options)
    opts.push_back(o.c_str());
  auto start = std::chrono::steady_clock::now();
  nvrtcResult r = impl->compile(prog, static_cast<int>(opts.size()), opts.data());
  double compileMs =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::optional<CompilePhases> phases;
  if (!timeFile.empty()) {
    phases = readPhases(timeFile);
    std::remove(timeFile.c_str());
  }
  if (r == NVRTC_ERROR_INVALID_OPTION && options.size() > 1 + kCodeOptions.size()) {
    impl->extraOptions = false; // an older NVRTC: compile without them
    return compile(source, name, arch, emit, timePhases);
  }
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
  out.compileMs = compileMs;
  out.phases = phases;
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
