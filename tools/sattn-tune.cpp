//===- sattn-tune.cpp - fill the tuning database ahead of time ------------===//
//
// `sattn-tune FILE.mlir --seq 4096,16384 [--batch 1] [--dtype bf16|fp16]`
// times every valid configuration of every tunable kernel of the variant on
// each length (random inputs, CUDA events, median of 15), prints each
// candidate as it finishes, and stores the winners in the tuning database
// under $SATTN_CACHE_DIR, where later compiles of the variant find them.
//
//===----------------------------------------------------------------------===//
#include "sattn/sattn.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

namespace {

const char *kUsage =
    "usage: sattn-tune FILE.mlir --seq S1,S2,... [--batch B] [--dtype bf16|fp16]\n";

[[noreturn]] void fail(const std::string &msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  std::exit(1);
}

std::vector<int64_t> parseList(const std::string &text) {
  std::vector<int64_t> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char *end = nullptr;
    long long v = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end || v <= 0)
      fail("--seq expects positive integers separated by commas, got '" + text + "'");
    out.push_back(v);
  }
  return out;
}

} // namespace

int main(int argc, char **argv) {
  std::string file, dtype;
  std::vector<int64_t> seqs;
  int64_t batch = 1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const std::string &flag) -> std::string {
      if (a.rfind(flag + "=", 0) == 0)
        return a.substr(flag.size() + 1);
      if (a == flag && i + 1 < argc && argv[i + 1][0] != '-')
        return argv[++i];
      fail(flag + " needs a value");
    };
    if (a == "--help" || a == "-h") {
      std::printf("%s", kUsage);
      return 0;
    } else if (a == "--seq" || a.rfind("--seq=", 0) == 0) {
      seqs = parseList(value("--seq"));
    } else if (a == "--batch" || a.rfind("--batch=", 0) == 0) {
      std::vector<int64_t> b = parseList(value("--batch"));
      batch = b.at(0);
    } else if (a == "--dtype" || a.rfind("--dtype=", 0) == 0) {
      dtype = value("--dtype");
      if (dtype != "bf16" && dtype != "fp16")
        fail("--dtype must be bf16 or fp16, got '" + dtype + "'");
    } else if (a.rfind("-", 0) == 0) {
      fail("unknown option '" + a + "' (see --help)");
    } else if (file.empty()) {
      file = a;
    } else {
      fail("more than one input file");
    }
  }
  if (file.empty())
    fail("no input file (see --help)");
  if (seqs.empty())
    fail("no lengths; pass --seq 4096,16384");
  try {
    sattn::SessionOptions o;
    o.device = sattn::Device::Gpu;
    sattn::Session session(o);
    sattn::Specialization spec;
    if (!dtype.empty())
      spec.dtype = dtype == "bf16" ? sattn::DType::BF16 : sattn::DType::FP16;
    std::vector<sattn::TuneShape> shapes;
    for (int64_t s : seqs)
      shapes.push_back({batch, s, s});
    std::printf("tuning %s on %s (%zu shapes)\n", file.c_str(), session.deviceName().c_str(),
                shapes.size());
    std::vector<sattn::TuneResult> results =
        session.tune(sattn::Variant::fromFile(file), shapes, spec, [](const sattn::TuneResult &r) {
          if (!r.rejected.empty())
            std::printf("  %-22s %-20s rejected: %s\n", r.kernel.c_str(), r.bucket.c_str(),
                        r.rejected.c_str());
          else if (r.chosen)
            std::printf("  %-22s %-20s -> %s (%.3f ms)\n", r.kernel.c_str(), r.bucket.c_str(),
                        r.config.c_str(), r.ms);
          else
            std::printf("  %-22s %-20s %-14s %9.3f ms\n", r.kernel.c_str(), r.bucket.c_str(),
                        r.config.c_str(), r.ms);
          std::fflush(stdout);
        });
    if (results.empty())
      std::printf("the variant has no tunable kernels; nothing stored\n");
    else
      std::printf("stored in %s\n", session.tuningDatabase().c_str());
  } catch (const sattn::Error &e) {
    fail(e.what());
  }
  return 0;
}
