//===- GpuHarness.cpp - run a variant on GPU and CPU reference for tests --===//
#include "tests/gpu/GpuHarness.h"

#include <catch2/catch.hpp>

#include "runtime/executor/CpuExecutor.h"
#include "runtime/gpu/Driver.h"
#include "runtime/io/Dtype.h"
#include "tools/GpuRun.h"
#include "tools/RegisterSattn.h"

#include "mlir/Parser/Parser.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <sstream>

namespace sattn::testing {

std::string gTargetArch;

namespace {
std::string ty(const Shape &s, int h, const std::string &len) {
  return "tensor<?x" + std::to_string(h) + "x" + len + "x" + std::to_string(s.D) + "x" + s.dtype +
         ">";
}
std::string elt(const Shape &s) { return s.dtype == "bf16" ? "bf16" : "f16"; }
} // namespace

std::string attentionIR(const Shape &s0, const std::string &attrs, bool lse) {
  Shape s = s0;
  s.dtype = elt(s0);
  std::string q = ty(s, s.Hq, "?"), k = ty(s, s.Hkv, "?");
  std::string l = "tensor<?x" + std::to_string(s.Hq) + "x?xf32>";
  std::ostringstream os;
  os << "func.func @v(%q: " << q << ", %k: " << k << ", %v: " << k << ") -> (" << q
     << (lse ? ", " + l : "") << ") {\n";
  os << "  %o" << (lse ? ", %l" : "") << " = sattn.attention %q, %k, %v {" << attrs << "} : " << q
     << ", " << k << ", " << k << " -> " << q << (lse ? ", " + l : "") << "\n";
  os << "  return %o" << (lse ? ", %l" : "") << " : " << q << (lse ? ", " + l : "") << "\n}\n";
  return os.str();
}

std::string topkIR(const Shape &s0, int group, int bq, int bk, const std::string &selectAttrs,
                   const std::string &rule, int setHeads, bool causal, int kgroup) {
  Shape s = s0;
  s.dtype = elt(s0);
  std::string q = ty(s, s.Hq, "?"), k = ty(s, s.Hkv, "?");
  std::string qp = "tensor<?x" + std::to_string(s.Hq) + "x?x" + std::to_string(s.D) + "xf32>";
  std::string kp = "tensor<?x" + std::to_string(s.Hkv) + "x?x" + std::to_string(s.D) + "xf32>";
  std::string st = "!sattn.scores<bq = " + std::to_string(bq) + ", bk = " + std::to_string(bk) +
                   ", heads = " + std::to_string(s.Hq) + ">";
  std::string bt = "!sattn.blocks<bq = " + std::to_string(bq) + ", bk = " + std::to_string(bk) +
                   ", heads = " + std::to_string(setHeads) + ">";
  std::string g = std::to_string(group), gk = std::to_string(kgroup > 0 ? kgroup : group);
  std::ostringstream os;
  os << "func.func @v(%q: " << q << ", %k: " << k << ", %v: " << k << ") -> " << q << " {\n"
     << "  %qp = sattn.pool mean %q group " << g << " : " << q << " -> " << qp << "\n"
     << "  %kp = sattn.pool mean %k group " << gk << " : " << k << " -> " << kp << "\n"
     << "  %s = sattn.scores %qp, %kp of %q, %k {q_group = " << g << " : i64, k_group = " << gk
     << " : i64" << (causal ? ", causal" : "") << "} : " << qp << ", " << kp << ", " << q << ", "
     << k << " -> " << st << "\n"
     << "  %bs = sattn.select_blocks " << rule << " %s {" << selectAttrs << "} : " << st << " -> "
     << bt << "\n"
     << "  %o = sattn.attention %q, %k, %v blocks %bs : " << bt << " {" << (causal ? "causal" : "")
     << "} : " << q << ", " << k << ", " << k << " -> " << q << "\n"
     << "  return %o : " << q << "\n}\n";
  return os.str();
}

namespace {
/// The block sets and budgets of a run's dumps in launch order (names are
/// "k<N>_<template>"; a std::map orders k10 before k2).
std::vector<const gpu::HostValue *> selectionDumps(const std::map<std::string, gpu::HostValue> &d) {
  std::vector<std::pair<int, const gpu::HostValue *>> v;
  for (auto &[name, val] : d)
    if (std::holds_alternative<ref::BlockSet>(val) || std::holds_alternative<ref::Budget>(val))
      v.push_back({std::atoi(name.c_str() + 1), &val});
  std::sort(v.begin(), v.end(), [](auto &a, auto &b) { return a.first < b.first; });
  std::vector<const gpu::HostValue *> out;
  for (auto &x : v)
    out.push_back(x.second);
  return out;
}

/// Fused vs unfused run of one variant: the same block sets, budgets and
/// outputs, bit for bit.
void checkFusedMatchesUnfused(const std::map<std::string, gpu::HostValue> &fusedDumps,
                              const std::vector<std::shared_ptr<ref::Tensor>> &fused,
                              const std::map<std::string, gpu::HostValue> &unfusedDumps,
                              const std::vector<std::shared_ptr<ref::Tensor>> &unfused) {
  std::vector<const gpu::HostValue *> a = selectionDumps(fusedDumps),
                                      b = selectionDumps(unfusedDumps);
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("selection result " << i << " of the fused run");
    if (auto *x = std::get_if<ref::BlockSet>(a[i])) {
      auto *y = std::get_if<ref::BlockSet>(b[i]);
      REQUIRE(y);
      CHECK(x->lists == y->lists);
    } else {
      auto *y = std::get_if<ref::Budget>(b[i]);
      REQUIRE(y);
      CHECK(std::get<ref::Budget>(*a[i]).k == y->k);
    }
  }
  REQUIRE(fused.size() == unfused.size());
  for (size_t r = 0; r < fused.size(); ++r) {
    INFO("result " << r << " of the fused run against the unfused one");
    size_t diff = 0;
    for (size_t i = 0; i < fused[r]->data.size(); ++i) {
      double x = fused[r]->data[i], y = unfused[r]->data[i];
      diff += !(x == y || (std::isnan(x) && std::isnan(y)));
    }
    CHECK(diff == 0);
  }
}

/// Parses `ir`, runs it on the GPU with `gpuArgs` and on the CPU reference
/// with `cpuArgs`.
Outcome runPair(const std::string &ir, const std::string &dtype,
                const std::vector<std::shared_ptr<ref::Tensor>> &gpuArgs,
                const std::vector<std::shared_ptr<ref::Tensor>> &cpuArgs) {
  mlir::DialectRegistry registry;
  registerSattnDialects(registry);
  mlir::MLIRContext ctx(registry);
  mlir::OwningOpRef<mlir::ModuleOp> module = mlir::parseSourceString<mlir::ModuleOp>(ir, &ctx);
  if (!module)
    throw std::runtime_error("test IR does not parse:\n" + ir);
  mlir::func::FuncOp func = *module->getOps<mlir::func::FuncOp>().begin();
  Outcome out;
  tools::GpuRunResult g =
      tools::runOnGpu(*module, dtype, gpuArgs, /*dumpSelection=*/true, gTargetArch);
  out.gpu = g.results;
  out.dumps = std::move(g.dumps);
  out.selection = g.selection;
  if (g.fusedEstimation) {
    // Fused estimation computes the scores rows with the unfused kernel's
    // code in shared memory, so the unfused run (whose scores grid the
    // stage-by-stage checks read from the dumps) must give the same bits.
    tools::GpuRunResult u = tools::runOnGpu(*module, dtype, gpuArgs, /*dumpSelection=*/true,
                                            gTargetArch, /*fuseEstimation=*/false);
    checkFusedMatchesUnfused(out.dumps, out.gpu, u.dumps, u.results);
    out.dumps = std::move(u.dumps);
    out.fusedEstimation = true;
  }
  out.cpu = runOnCpu(func, cpuArgs).results;
  return out;
}
} // namespace

Outcome runBoth(const std::string &ir, const Shape &s, unsigned seed,
                const std::vector<std::shared_ptr<ref::Tensor>> &extra,
                const std::vector<std::shared_ptr<ref::Tensor>> &cpuExtra) {
  std::mt19937 rng(seed);
  std::vector<std::shared_ptr<ref::Tensor>> inputs = {
      randomTensor({s.B, s.Hq, s.Sq, s.D}, s.dtype, rng),
      randomTensor({s.B, s.Hkv, s.Skv, s.D}, s.dtype, rng),
      randomTensor({s.B, s.Hkv, s.Skv, s.D}, s.dtype, rng)};
  std::vector<std::shared_ptr<ref::Tensor>> gpuArgs = inputs, cpuArgs = inputs;
  gpuArgs.insert(gpuArgs.end(), extra.begin(), extra.end());
  const auto &forCpu = cpuExtra.empty() ? extra : cpuExtra;
  cpuArgs.insert(cpuArgs.end(), forCpu.begin(), forCpu.end());
  Outcome out = runPair(ir, s.dtype, gpuArgs, cpuArgs);
  out.inputs = inputs;
  return out;
}

Outcome runWith(const std::string &ir, const std::string &dtype,
                const std::vector<std::shared_ptr<ref::Tensor>> &args) {
  Outcome out = runPair(ir, dtype, args, args);
  out.inputs = args;
  return out;
}

std::shared_ptr<ref::Tensor> randomTensor(const std::vector<int64_t> &shape,
                                          const std::string &dtype, std::mt19937 &rng,
                                          double scale) {
  std::normal_distribution<double> n01(0.0, 1.0);
  auto t = std::make_shared<ref::Tensor>(shape);
  for (double &x : t->data)
    x = dtype == "bf16" ? io::roundToBf16(scale * n01(rng)) : io::roundToFp16(scale * n01(rng));
  return t;
}

void checkResults(const Outcome &o, double tol) {
  REQUIRE(nanCount(*o.gpu[0]) == 0);
  double err = relErr(*o.gpu[0], *o.cpu[0]);
  INFO("O rel err " << err);
  CHECK(err <= tol);
  if (o.gpu.size() > 1) {
    double lseErr = relErr(*o.gpu[1], *o.cpu[1]);
    INFO("LSE rel err " << lseErr);
    CHECK(lseErr <= 1e-3);
  }
}

double relErr(const ref::Tensor &a, const ref::Tensor &b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.data.size(); ++i) {
    double x = a.data[i], y = b.data[i];
    if (std::isnan(x) || std::isnan(y))
      return INFINITY;
    if (std::isinf(y) && x == y)
      continue; // LSE of an empty row: -inf on both sides
    num += (x - y) * (x - y);
    den += y * y;
  }
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

int nanCount(const ref::Tensor &t) {
  int n = 0;
  for (double x : t.data)
    n += std::isnan(x);
  return n;
}

bool gpuAvailable(std::string *why) {
  try {
    gpu::Driver::get();
    return true;
  } catch (const std::exception &e) {
    *why = e.what();
    return false;
  }
}

/// (declared in GpuHarness.h)
std::pair<const ref::Scores *, const ref::BlockSet *> scoresAndBlocks(const Outcome &o) {
  const ref::Scores *gs = nullptr;
  const ref::BlockSet *gb = nullptr;
  for (auto &[name, v] : o.dumps) {
    if (auto *x = std::get_if<ref::Scores>(&v))
      gs = x;
    if (auto *x = std::get_if<ref::BlockSet>(&v))
      gb = x;
  }
  return {gs, gb};
}

/// ‖GPU scores − reference‖ / ‖reference‖ over every element.
double scoresErr(const ref::Scores &gpu, const ref::Scores &want) {
  ref::Tensor a({int64_t(gpu.v.size())}), b({int64_t(want.v.size())});
  a.data = gpu.v, b.data = want.v;
  return relErr(a, b);
}

/// Stage 3 of a selection test: the GPU's attention against the reference
/// given the GPU's own block set (bq x bk blocks).
void checkAttentionOnSet(const Outcome &o, const ref::BlockSet &set, int bq, int bk, bool causal) {
  ref::BlockSet used = set;
  used.bq = bq, used.bk = bk;
  ref::AttentionParams p;
  p.mask.causal = causal;
  ref::AttentionResult r =
      ref::attention(*o.inputs[0], *o.inputs[1], *o.inputs[2], &used, nullptr, p);
  REQUIRE(nanCount(*o.gpu[0]) == 0);
  double err = relErr(*o.gpu[0], r.out);
  INFO("attention rel err " << err);
  CHECK(err <= 1e-2);
}

} // namespace sattn::testing
