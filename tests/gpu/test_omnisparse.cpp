//===- test_omnisparse.cpp - OmniSparse prefill on the GPU, stage by stage ===//
//
// sattn.classify_queries against the float64 reference: the query set must
// equal the reference's exactly, except that a row whose reference mass
// lies within 1e-4 of theta (fp32 may classify it either way) ends the
// comparison of its (batch, head), since it renumbers the lazy rows after
// it. Then the attention with lazy rows (and a block set from the
// flattest-head budget) against the reference given the GPU's own sets.
//
//===----------------------------------------------------------------------===//
#include <catch2/catch.hpp>

#include "tests/gpu/GpuHarness.h"

#include <cmath>
#include <random>
#include <sstream>

using namespace sattn;
using namespace sattn::testing;

namespace {

std::mt19937 rng(6021);

struct Omni {
  int B, Hq, Hkv, Sq, Skv, D;
  int group, window, sinks, keepEvery;
  double theta;
  int block; ///< 0: no block selection, lazy rows only
  bool lse = false;
  bool lazyZero = false; ///< lazy rows write 0 (policy `zero`) instead of sinks + window
  const char *dtype = "bf16";
};

std::string omniIR(const Omni &c) {
  auto ty = [&](int h) {
    std::string elem = std::string(c.dtype) == "fp16" ? "f16" : c.dtype;
    return "tensor<?x" + std::to_string(h) + "x?x" + std::to_string(c.D) + "x" + elem + ">";
  };
  std::string lt = "tensor<?x" + std::to_string(c.Hq) + "x?xf32>";
  auto pooled = [&](int h) {
    return "tensor<?x" + std::to_string(h) + "x?x" + std::to_string(c.D) + "xf32>";
  };
  std::string q = ty(c.Hq), k = ty(c.Hkv), b = std::to_string(c.block), H = std::to_string(c.Hq);
  std::string st = "!sattn.scores<bq = " + b + ", bk = " + b + ", heads = " + H + ">";
  std::string bt = "!sattn.blocks<bq = " + b + ", bk = " + b + ", heads = " + H + ">";
  std::string budget = "!sattn.budget<bq = " + b + ", heads = 1>";
  std::string qt = "!sattn.queries<heads = " + H + ">";
  std::string forced = "#sattn.forced<sink = 1, diagonal = true>";
  std::ostringstream os;
  os << std::fixed;
  std::string rt = c.lse ? "(" + q + ", " + lt + ")" : q;
  os << "func.func @v(%q: " << q << ", %k: " << k << ", %v: " << k << ") -> " << rt << " {\n";
  if (c.block) {
    os << "  %qp = sattn.pool mean %q group 16 : " << q << " -> " << pooled(c.Hq) << "\n"
       << "  %kp = sattn.pool mean %k group 16 : " << k << " -> " << pooled(c.Hkv) << "\n"
       << "  %s = sattn.scores %qp, %kp of %q, %k {q_group = 16 : i64, k_group = 16 : i64, "
          "causal} : "
       << pooled(c.Hq) << ", " << pooled(c.Hkv) << ", " << q << ", " << k << " -> " << st << "\n"
       << "  %b = sattn.head_budget flattest %s {tau = 0.8 : f64, forced = " << forced
       << "} : " << st << " -> " << budget << "\n"
       << "  %bs = sattn.select_blocks topk %s budget %b : " << budget << " {forced = " << forced
       << "} : " << st << " -> " << bt << "\n";
  }
  os << "  %qs = sattn.classify_queries %q, %k {key_group = " << c.group
     << " : i64, window = " << c.window << " : i64, sinks = " << c.sinks
     << " : i64, theta = " << c.theta << " : f64, keep_every = " << c.keepEvery << " : i64} : " << q
     << ", " << k << " -> " << qt << "\n"
     << "  %o" << (c.lse ? ", %l" : "") << " = sattn.attention %q, %k, %v"
     << (c.block ? " blocks %bs : " + bt : "") << " queries %qs : " << qt
     << (c.lazyZero ? " lazy zero" : "") << " {causal, lazy_window = " << c.window
     << " : i64, lazy_sinks = " << c.sinks << " : i64} : " << q << ", " << k << ", " << k << " -> "
     << q << (c.lse ? ", " + lt : "") << "\n  return %o" << (c.lse ? ", %l" : "") << " : " << q
     << (c.lse ? ", " + lt : "") << "\n}\n";
  return os.str();
}

/// §10's mass of every row, in float64 (to find rows too close to theta).
std::vector<double> masses(const ref::Tensor &q, const ref::Tensor &k, const Omni &c) {
  ref::Tensor kp = ref::pool(k, c.group, ref::PoolKind::Mean);
  int64_t nT = kp.dim(2), g = c.Hq / c.Hkv;
  std::vector<double> out;
  for (int b = 0; b < c.B; ++b)
    for (int h = 0; h < c.Hq; ++h)
      for (int i = 0; i < c.Sq; ++i) {
        int64_t ip = i + c.Skv - c.Sq;
        int64_t vis = ip < 0 ? 0 : std::min<int64_t>(nT, ip / c.group + 1);
        std::vector<double> s(size_t(vis), 0.0);
        for (int64_t t = 0; t < vis; ++t) {
          for (int d = 0; d < c.D; ++d)
            s[size_t(t)] += q.at(b, h, i, d) * kp.at(b, h / g, t, d);
          s[size_t(t)] /= std::sqrt(double(c.D));
        }
        ref::detail::softmaxInPlace(s);
        double m = 0;
        for (int64_t t = 0; t < vis; ++t)
          if (t * c.group < c.sinks ||
              std::min<int64_t>((t + 1) * c.group, c.Skv) - 1 > ip - c.window)
            m += s[size_t(t)];
        out.push_back(m);
      }
  return out;
}

} // namespace

TEST_CASE("classify_queries and lazy-row attention, stage by stage", "[gpu]") {
  const Omni cases[] = {
      {2, 8, 2, 700, 700, 64, 16, 128, 16, 4, 0.6, 0},  // lazy rows only
      {1, 4, 4, 500, 500, 128, 16, 96, 8, 8, 0.5, 64},  // with the flattest-head budget
      {2, 4, 2, 300, 700, 64, 32, 200, 32, 3, 0.7, 64}, // Sq < Skv: prefill continuation
      {1, 4, 2, 257, 257, 64, 16, 64, 16, 0, 0.0, 0},   // theta 0: every row lazy
      // 128-row groups (three packed tiles each), D 128, odd lengths, LSE:
      {2, 8, 2, 1100, 1100, 128, 32, 256, 32, 4, 0.6, 128, true},
      {1, 4, 1, 777, 1300, 128, 16, 128, 16, 2, 0.75, 128, true, false, "fp16"},
      {1, 4, 2, 900, 900, 64, 32, 160, 32, 8, 0.5, 0, true, true}, // lazy rows write 0
      {1, 4, 4, 640, 640, 128, 32, 64, 32, 3, 0.95, 64, true},     // theta high: most rows active
      {2, 4, 2, 1000, 1000, 64, 16, 96, 16, 5, 0.3, 128, false, true},
      {1, 4, 2, 600, 600, 96, 16, 128, 16, 4, 0.6, 64, true}, // D 96: fp32 attention
  };
  for (const Omni &c : cases) {
    INFO("B " << c.B << " Hq " << c.Hq << " Hkv " << c.Hkv << " Sq " << c.Sq << " Skv " << c.Skv
              << " D " << c.D << " theta " << c.theta << " block " << c.block);
    INFO("lse " << c.lse << " lazy zero " << c.lazyZero << " " << c.dtype);
    auto q = randomTensor({c.B, c.Hq, c.Sq, c.D}, c.dtype, rng);
    auto k = randomTensor({c.B, c.Hkv, c.Skv, c.D}, c.dtype, rng);
    auto v = randomTensor({c.B, c.Hkv, c.Skv, c.D}, c.dtype, rng);
    Outcome o = runWith(omniIR(c), c.dtype, {q, k, v});
    const ref::QuerySet *gq = nullptr;
    const ref::BlockSet *gb = nullptr;
    for (auto &[name, val] : o.dumps) {
      if (auto *x = std::get_if<ref::QuerySet>(&val))
        gq = x;
      if (auto *x = std::get_if<ref::BlockSet>(&val))
        gb = x;
    }
    REQUIRE(gq);
    // Stage 1: the query set.
    ref::ClassifyParams cp;
    cp.keyGroup = c.group, cp.window = c.window, cp.sinks = c.sinks, cp.theta = c.theta;
    cp.keepEvery = c.keepEvery;
    ref::QuerySet want = ref::classifyQueries(*q, *k, cp);
    std::vector<double> mass = masses(*q, *k, c);
    size_t active = 0;
    for (int bh = 0; bh < c.B * c.Hq; ++bh) {
      int cut = c.Sq; // rows from the first borderline one on are not compared
      for (int i = 0; i < c.Sq; ++i)
        if (std::abs(mass[size_t(bh * c.Sq + i)] - c.theta) < 1e-4) {
          cut = i;
          WARN("row " << i << " of (b, h) " << bh << " has mass within 1e-4 of theta");
          break;
        }
      std::vector<int32_t> a, b;
      for (int32_t i : gq->active[size_t(bh)])
        if (i < cut)
          a.push_back(i);
      for (int32_t i : want.active[size_t(bh)])
        if (i < cut)
          b.push_back(i);
      CHECK(a == b);
      active += gq->active[size_t(bh)].size();
    }
    INFO("active rows " << active << " of " << c.B * c.Hq * c.Sq);
    if (c.theta == 0.0)
      CHECK(active == 0);
    // Stage 2: attention given the GPU's own query set (and block set).
    ref::AttentionParams p;
    p.mask.causal = true;
    p.lazyWindow = c.window, p.lazySinks = c.sinks;
    p.lazy = c.lazyZero ? ref::LazyPolicy::Zero : ref::LazyPolicy::Local;
    ref::BlockSet used;
    if (c.block) {
      REQUIRE(gb);
      used = *gb;
      used.bq = c.block, used.bk = c.block;
    }
    ref::AttentionResult r = ref::attention(*q, *k, *v, c.block ? &used : nullptr, gq, p);
    REQUIRE(nanCount(*o.gpu[0]) == 0);
    double err = relErr(*o.gpu[0], r.out);
    INFO("attention rel err " << err);
    CHECK(err <= 1e-2);
    if (c.lse) {
      REQUIRE(o.gpu.size() == 2);
      double lseErr = relErr(*o.gpu[1], r.lse);
      INFO("LSE rel err " << lseErr);
      CHECK(lseErr <= 1e-3);
    }
    // Stage 3: the selection report sees the sets and mask the kernel used.
    const gpu::SelectionSets &sel = o.selection;
    REQUIRE(sel.prefill);
    REQUIRE(sel.queries);
    CHECK(sel.queries->active == gq->active);
    CHECK(bool(sel.blocks) == bool(c.block));
    if (c.block)
      CHECK(sel.blocks->lists == gb->lists);
    CHECK(sel.params.lazy == p.lazy);
    ref::Dims dims{c.B, c.Hq, c.Hkv, c.Sq, c.Skv};
    ref::Attended att{c.block ? &used : nullptr, gq, p};
    CHECK(ref::density(dims, ref::Attended{sel.blocks.get(), sel.queries.get(), sel.params}) ==
          ref::density(*q, *k, att));
  }
}
