//===- bench_jit.cpp - JIT latency: cold compile by phase, disk hit, memory hit ===//
//
// The numbers of the JIT targets (cold compile ≤ 1 s, disk-cache hit
// ≤ 5 ms, in-memory hit ≤ 5 µs), each kept apart from what it is not.
//
// One-off, per process, never part of a compile: the CUDA driver's init and
// primary context, loading NVRTC, NVRTC's own initialisation on its first
// compile (timed on a trivial kernel, then again to subtract the kernel),
// and creating the first GPU session. All of it happens before any variant
// is timed.
//
// Per variant:
//   cold    Session::compile with an empty cache directory (public API):
//           lowering + emission, NVRTC, the disk-cache write, the module
//           load. `nvrtc` is its NVRTC share (CompileStats::nvrtcMs), `rest`
//           everything else.
//   split   the parts measured one by one right after: lowering alone (a
//           CPU session: parse + passes, no emission), the generated module
//           compiled again with NVRTC's `-time` report (front end / libNVVM
//           / ptxas), and the cubin loaded again (cuModuleLoadData plus
//           cuModuleGetFunction of every kernel, so lazy loading is counted).
//   par     what one-program-per-kernel would take: the module cut into one
//           source per kernel (same includes), all compiled at once on their
//           own threads; wall time. Every kernel compiled alone has the same
//           SASS as in the whole module (checked on every multi-kernel
//           instantiation of the lit tests), so this is a compile-time
//           change only; the runtime still loads one module (not done yet).
//   disk    a new session that finds the cubin on disk; memory: the same
//           session again (the in-memory map), mean of 10,000.
//
//   sattn-bench-jit [VARIANT.mlir ...]   (default: the built-in patterns)
//
// GPU only.
//
//===----------------------------------------------------------------------===//
#include "sattn/sattn.h"

#include "codegen/Nvrtc.h"
#include "runtime/gpu/Driver.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

double msSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

/// Names of the kernels of a generated module: each wrapper's name opens a
/// line and takes its parameter block as a __grid_constant__.
std::vector<std::string> kernelNames(const std::string &cuda) {
  std::vector<std::string> names;
  std::regex wrapper(R"(\n([A-Za-z_][A-Za-z0-9_]*)\(const __grid_constant__)");
  for (std::sregex_iterator it(cuda.begin(), cuda.end(), wrapper), end; it != end; ++it)
    names.push_back((*it)[1]);
  return names;
}

/// The module cut into one source per kernel: the lines before the first
/// kernel (the includes) followed by that kernel's config and wrapper (each
/// starts at a "// kN_..." comment line).
std::vector<std::string> perKernelSources(const std::string &cuda) {
  std::regex start(R"(\n// k[0-9]+_)");
  std::vector<size_t> at;
  for (std::sregex_iterator it(cuda.begin(), cuda.end(), start), end; it != end; ++it)
    at.push_back(size_t(it->position()) + 1);
  std::vector<std::string> units;
  if (at.empty())
    return units;
  std::string head = cuda.substr(0, at[0]);
  at.push_back(cuda.size());
  for (size_t i = 0; i + 1 < at.size(); ++i)
    units.push_back(head + cuda.substr(at[i], at[i + 1] - at[i]));
  return units;
}

/// Wall milliseconds to compile every unit at once, one thread each.
double parallelMs(const std::vector<std::string> &units, const sattn::codegen::Arch &arch,
                  sattn::codegen::Emit emit) {
  auto t = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  std::vector<std::string> errors(units.size());
  for (size_t i = 0; i < units.size(); ++i)
    threads.emplace_back([&, i] {
      try {
        sattn::codegen::Nvrtc::get().compile(units[i], "unit" + std::to_string(i), arch, emit);
      } catch (const std::exception &e) {
        errors[i] = e.what();
      }
    });
  for (std::thread &th : threads)
    th.join();
  double ms = msSince(t);
  for (const std::string &e : errors)
    if (!e.empty())
      throw std::runtime_error("per-kernel compile: " + e);
  return ms;
}

/// cuModuleLoadData + cuModuleGetFunction of every kernel + unload; returns
/// the milliseconds up to the last cuModuleGetFunction.
double loadMs(const std::string &cubin, const std::vector<std::string> &kernels) {
  sattn::gpu::Driver &d = sattn::gpu::Driver::get();
  d.makeCurrent();
  auto t = std::chrono::steady_clock::now();
  CUmodule module;
  d.check(d.cuModuleLoadData_(&module, cubin.c_str()), "loading the module");
  for (const std::string &k : kernels) {
    CUfunction f;
    d.check(d.cuModuleGetFunction_(&f, module, k.c_str()), "finding a kernel");
  }
  double ms = msSince(t);
  d.cuModuleUnload_(module);
  return ms;
}

} // namespace

int main(int argc, char **argv) {
  std::vector<std::pair<std::string, sattn::Variant>> variants;
  for (int i = 1; i < argc; ++i)
    variants.push_back({argv[i], sattn::Variant::fromFile(argv[i])});
  if (variants.empty()) {
    sattn::patterns::Heads h{32, 8, 128, sattn::DType::BF16};
    variants.push_back({"dense_causal", sattn::patterns::dense(h, true)});
    variants.push_back({"streaming", sattn::patterns::streaming(h, 4096, 64)});
    variants.push_back({"topk_blocks", sattn::patterns::topkBlocks(h, 64, 128, 16)});
  }
  std::string dir = "/tmp/sattn-bench-jit-" + std::to_string(::getpid());
  try {
    using sattn::codegen::Nvrtc;
    // One-off costs, in the order the first compile would meet them.
    auto t = std::chrono::steady_clock::now();
    sattn::gpu::Driver &drv = sattn::gpu::Driver::get();
    double driverMs = msSince(t);
    t = std::chrono::steady_clock::now();
    Nvrtc &nvrtc = Nvrtc::get();
    std::string nvrtcVersion = nvrtc.version();
    double nvrtcLoadMs = msSince(t);
    sattn::codegen::Arch arch = sattn::codegen::Arch::forCapability(drv.major(), drv.minor());
    sattn::codegen::Emit emit =
        arch.ptxForDriver ? sattn::codegen::Emit::Ptx : sattn::codegen::Emit::Cubin;
    const std::string trivial =
        "extern \"C\" __global__ void sattn_bench_warmup(int *p) { *p = 1; }\n";
    t = std::chrono::steady_clock::now();
    nvrtc.compile(trivial, "warmup", arch, emit);
    double firstTrivialMs = msSince(t);
    t = std::chrono::steady_clock::now();
    nvrtc.compile(trivial, "warmup", arch, emit);
    double trivialMs = msSince(t);
    sattn::SessionOptions o;
    o.device = sattn::Device::Gpu;
    o.cacheDir = dir;
    t = std::chrono::steady_clock::now();
    { sattn::Session first(o); }
    double sessionMs = msSince(t);
    std::printf("%s, %s, NVRTC %s\n", drv.name().c_str(), arch.name.c_str(), nvrtcVersion.c_str());
    std::printf("one-off per process (ms): driver init + context %.1f, NVRTC load %.1f, NVRTC "
                "first-use init %.1f (trivial kernel %.1f then %.1f), first GPU session %.1f\n\n",
                driverMs, nvrtcLoadMs, firstTrivialMs - trivialMs, firstTrivialMs, trivialMs,
                sessionMs);

    const char *head = "%-16s %8s %8s %6s | %6s %6s %6s %6s %6s %6s | %3s %6s | %7s %8s\n";
    std::printf(head, "", "cold", "nvrtc", "rest", "lower", "nvrtc", "front", "nvvm", "ptxas",
                "load", "k", "par", "disk", "memory");
    std::printf(head, "variant", "(ms)", "(ms)", "(ms)", "(ms)", "(ms)", "(ms)", "(ms)", "(ms)",
                "(ms)", "", "(ms)", "(ms)", "(us)");
    sattn::SessionOptions cpuOptions;
    cpuOptions.device = sattn::Device::Cpu;
    cpuOptions.cacheDir = dir;
    for (auto &[name, v] : variants) {
      double cold, nvrtcMs;
      std::string cuda;
      {
        sattn::Session s(o);
        t = std::chrono::steady_clock::now();
        auto program = s.compile(v);
        cold = msSince(t);
        nvrtcMs = program->stats().nvrtcMs;
        cuda = program->cudaSource();
        if (program->stats().diskCache != "miss")
          std::fprintf(stderr, "warning: %s: the cold compile was a disk-cache %s\n", name.c_str(),
                       program->stats().diskCache.c_str());
      }
      // The parts one by one.
      double lower;
      {
        sattn::Session cpu(cpuOptions);
        t = std::chrono::steady_clock::now();
        cpu.compile(v);
        lower = msSince(t);
      }
      sattn::codegen::CompileOutput again =
          nvrtc.compile(cuda, "bench", arch, emit, /*timePhases=*/true);
      sattn::codegen::CompilePhases ph = again.phases.value_or(sattn::codegen::CompilePhases{});
      double load = loadMs(again.binary, kernelNames(cuda));
      std::vector<std::string> units = perKernelSources(cuda);
      double par = units.size() > 1 ? parallelMs(units, arch, emit) : again.compileMs;

      double disk;
      sattn::Session s(o);
      t = std::chrono::steady_clock::now();
      s.compile(v);
      disk = msSince(t);
      const int reps = 10000;
      t = std::chrono::steady_clock::now();
      for (int i = 0; i < reps; ++i)
        s.compile(v);
      double memory = msSince(t) * 1000.0 / reps;
      std::printf("%-16s %8.1f %8.1f %6.1f | %6.1f %6.1f %6.0f %6.0f %6.0f %6.2f | %3zu %6.1f | "
                  "%7.2f %8.2f\n",
                  name.c_str(), cold, nvrtcMs, cold - nvrtcMs, lower, again.compileMs,
                  ph.frontendMs, ph.nvvmMs, ph.ptxasMs, load, std::max<size_t>(units.size(), 1),
                  par, disk, memory);
    }
  } catch (const std::exception &e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  std::string cleanup = "rm -rf " + dir;
  return std::system(cleanup.c_str()) == 0 ? 0 : 1;
}
