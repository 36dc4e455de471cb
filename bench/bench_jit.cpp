//===- bench_jit.cpp - JIT latency: cold compile, disk hit, memory hit ----===//
//
// The three numbers of the JIT targets: compiling a variant with an empty
// cache directory (NVRTC + load), compiling it in a new session that finds
// the cubin on disk, and compiling it again in the same session (the
// in-memory map). Uses only the public API. GPU only.
//
//   bench_jit [VARIANT.mlir ...]   (default: the built-in patterns)
//
//===----------------------------------------------------------------------===//
#include "sattn/sattn.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>
#include <vector>

namespace {
double msSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
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
    sattn::SessionOptions o;
    o.device = sattn::Device::Gpu;
    o.cacheDir = dir;
    std::printf("%-16s %12s %12s %14s\n", "variant", "cold (ms)", "disk (ms)", "memory (us)");
    for (auto &[name, v] : variants) {
      double cold, disk, memory;
      {
        sattn::Session s(o);
        auto t = std::chrono::steady_clock::now();
        s.compile(v);
        cold = msSince(t);
      }
      sattn::Session s(o);
      auto t = std::chrono::steady_clock::now();
      s.compile(v);
      disk = msSince(t);
      const int reps = 10000;
      t = std::chrono::steady_clock::now();
      for (int i = 0; i < reps; ++i)
        s.compile(v);
      memory = msSince(t) * 1000.0 / reps;
      std::printf("%-16s %12.1f %12.2f %14.2f\n", name.c_str(), cold, disk, memory);
    }
  } catch (const sattn::Error &e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  std::string cleanup = "rm -rf " + dir;
  return std::system(cleanup.c_str()) == 0 ? 0 : 1;
}
