//===- test_decode.cpp - decode attention and KV slimming on the GPU ------===//
//
// sattn.decode_attention (dense, paged, kept-token caches; GQA/MQA, batch,
// several query rows, split-KV merges and single-CTA rows) against the
// float64 reference, and sattn.kv_slim stage by stage (design §2): scores
// within 1e-3, the kept tokens exactly those the reference keeps given the
// GPU's own scores, and the decode given the GPU's own token set.
//
//===----------------------------------------------------------------------===//
#include <catch2/catch.hpp>

#include "tests/gpu/GpuHarness.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <sstream>

using namespace sattn;
using namespace sattn::testing;

namespace {

std::mt19937 rng(20261123);

std::string ty(int h, const std::string &len, int d, const std::string &e) {
  return "tensor<?x" + std::to_string(h) + "x" + len + "x" + std::to_string(d) + "x" + e + ">";
}
std::string elt(const std::string &dtype) { return dtype == "bf16" ? "bf16" : "f16"; }

struct Dec {
  int B, Hq, Hkv, Sd, Skv, D;
  std::string dtype = "bf16";
  bool lse = false;
};

std::string denseIR(const Dec &c) {
  std::string e = elt(c.dtype);
  std::string q = ty(c.Hq, std::to_string(c.Sd), c.D, e), k = ty(c.Hkv, "?", c.D, e);
  std::string l = "tensor<?x" + std::to_string(c.Hq) + "x" + std::to_string(c.Sd) + "xf32>";
  std::string res = c.lse ? "(" + q + ", " + l + ")" : q;
  std::ostringstream os;
  os << "func.func @v(%q: " << q << ", %k: " << k << ", %v: " << k << ") -> " << res << " {\n"
     << "  %o" << (c.lse ? ", %l" : "") << " = sattn.decode_attention %q, %k, %v : " << q << ", "
     << k << ", " << k << " -> " << (c.lse ? q + ", " + l : q) << "\n"
     << "  return %o" << (c.lse ? ", %l" : "") << " : " << (c.lse ? q + ", " + l : q) << "\n}\n";
  return os.str();
}

} // namespace

TEST_CASE("decode over a dense cache: GQA, MQA, batch, several rows, split-KV", "[gpu]") {
  const Dec cases[] = {
      {1, 32, 8, 1, 5000, 128, "bf16", true}, // split-KV merge across many CTAs
      {3, 8, 2, 3, 333, 64, "bf16", true},    // causal among 3 rows, batch 3
      {2, 4, 4, 1, 50, 128, "fp16", true},    // one tile: no split
      {1, 8, 1, 2, 1000, 64, "bf16", false},  // MQA
      {2, 4, 2, 5, 3, 64, "bf16", true},      // Skv < Sd: first rows see nothing
      {1, 4, 2, 1, 200, 96, "fp16", false},   // D = 96
      {1, 16, 2, 4, 700, 128, "bf16", false}, // 32 packed rows: two row groups
  };
  for (const Dec &c : cases) {
    INFO("B " << c.B << " Hq " << c.Hq << " Hkv " << c.Hkv << " Sd " << c.Sd << " Skv " << c.Skv
              << " D " << c.D << " " << c.dtype);
    auto q = randomTensor({c.B, c.Hq, c.Sd, c.D}, c.dtype, rng);
    auto k = randomTensor({c.B, c.Hkv, c.Skv, c.D}, c.dtype, rng);
    auto v = randomTensor({c.B, c.Hkv, c.Skv, c.D}, c.dtype, rng);
    checkResults(runWith(denseIR(c), c.dtype, {q, k, v}));
  }
}

TEST_CASE("decode over a paged cache, with an empty sequence", "[gpu]") {
  const int B = 3, Hq = 8, Hkv = 2, Sd = 2, D = 64, page = 16, P = 24, maxP = 10;
  std::string e = "bf16";
  std::string q = ty(Hq, std::to_string(Sd), D, e), pk = ty(Hkv, std::to_string(page), D, e);
  std::string ir = "func.func @v(%q: " + q + ", %k: " + pk + ", %v: " + pk +
                   ", %t: tensor<?x?xi32>, %n: tensor<?xi32>) -> " + q +
                   " {\n  %o = sattn.decode_attention %q, %k, %v pages %t, %n : tensor<?x?xi32>, "
                   "tensor<?xi32> : " +
                   q + ", " + pk + ", " + pk + " -> " + q + "\n  return %o : " + q + "\n}\n";
  auto qt = randomTensor({B, Hq, Sd, D}, e, rng);
  auto kt = randomTensor({P, Hkv, page, D}, e, rng);
  auto vt = randomTensor({P, Hkv, page, D}, e, rng);
  auto table = std::make_shared<ref::Tensor>(std::vector<int64_t>{B, maxP});
  std::vector<int> perm(P);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  for (int i = 0; i < B * maxP; ++i)
    table->data[size_t(i)] = perm[size_t(i % P)];
  auto lens = std::make_shared<ref::Tensor>(std::vector<int64_t>{B});
  lens->data = {37, 0, 150};
  checkResults(runWith(ir, e, {qt, kt, vt, table, lens}));
}

namespace {

struct Slim {
  int B, Hq, Hkv, Sp, Skv, D;
  int observe, sinks, recent;
  double tau;
  bool segments;
};

std::string slimIR(const Slim &c) {
  std::string e = "bf16";
  std::string p = ty(c.Hq, "?", c.D, e), k = ty(c.Hkv, "?", c.D, e), q = ty(c.Hq, "1", c.D, e);
  std::ostringstream os;
  os << "func.func @v(%p: " << p << ", %k: " << k << ", %v: " << k << ", %q: " << q
     << (c.segments ? ", %seg: tensor<?x?x2xi32>" : "") << ") -> " << q << " {\n"
     << "  %ts = sattn.kv_slim %p, %k" << (c.segments ? " segments %seg : tensor<?x?x2xi32>" : "")
     << " {observe = " << c.observe << " : i64, tau = " << std::fixed << c.tau
     << " : f64, sinks = " << c.sinks << " : i64, recent = " << c.recent << " : i64} : " << p
     << ", " << k << " -> !sattn.tokens<heads = " << c.Hkv << ">\n"
     << "  %o = sattn.decode_attention %q, %k, %v tokens %ts : !sattn.tokens<heads = " << c.Hkv
     << "> : " << q << ", " << k << ", " << k << " -> " << q << "\n"
     << "  return %o : " << q << "\n}\n";
  return os.str();
}

} // namespace

TEST_CASE("kv_slim stage by stage, then decode over the kept tokens", "[gpu]") {
  const Slim cases[] = {
      {2, 8, 2, 700, 700, 64, 64, 4, 32, 0.9, false},
      {1, 4, 4, 300, 300, 128, 100, 0, 0, 1.0, false},    // tau 1: every token with mass
      {1, 4, 2, 300, 300, 64, 64, 8, 16, 0.0, true},      // tau 0: forced tokens only
      {2, 8, 2, 40, 500, 64, 64, 4, 64, 0.95, true},      // prompt shorter than observe
      {1, 32, 8, 2000, 2000, 128, 64, 4, 64, 0.95, false} // the example's shape
  };
  for (const Slim &c : cases) {
    INFO("B " << c.B << " Hq " << c.Hq << " Hkv " << c.Hkv << " Sp " << c.Sp << " Skv " << c.Skv
              << " D " << c.D << " tau " << c.tau << " segments " << c.segments);
    auto prompt = randomTensor({c.B, c.Hq, c.Sp, c.D}, "bf16", rng);
    auto k = randomTensor({c.B, c.Hkv, c.Skv, c.D}, "bf16", rng, 1.5);
    auto v = randomTensor({c.B, c.Hkv, c.Skv, c.D}, "bf16", rng);
    auto q = randomTensor({c.B, c.Hq, 1, c.D}, "bf16", rng);
    std::vector<std::shared_ptr<ref::Tensor>> args = {prompt, k, v, q};
    ref::Segments segs;
    if (c.segments) {
      auto seg = std::make_shared<ref::Tensor>(std::vector<int64_t>{c.B, 2, 2});
      for (int b = 0; b < c.B; ++b) {
        int lo = 10 + 7 * b, mid = c.Skv / 2, hi = c.Skv - 20;
        double r[4] = {double(lo), double(mid), double(mid + 5), double(hi)};
        std::copy(r, r + 4, seg->data.begin() + 4 * b);
        segs.ranges.push_back({{lo, mid}, {mid + 5, hi}});
      }
      args.push_back(seg);
    }
    Outcome o = runWith(slimIR(c), "bf16", args);
    const ref::Tensor *scores = nullptr;
    const ref::TokenSet *kept = nullptr;
    for (auto &[name, val] : o.dumps) {
      if (name.find("kv_slim_scores") != std::string::npos)
        scores = std::get_if<ref::Tensor>(&val);
      if (auto *t = std::get_if<ref::TokenSet>(&val))
        kept = t;
    }
    REQUIRE(scores);
    REQUIRE(kept);
    ref::SlimParams p;
    p.observe = c.observe, p.tau = c.tau, p.sinks = c.sinks, p.recent = c.recent;
    // Stage 1: scores against the reference.
    ref::Tensor want = ref::kvSlimScores(*prompt, *k, p);
    double scoreErr = relErr(*scores, want);
    INFO("scores rel err " << scoreErr);
    CHECK(scoreErr <= 1e-3);
    // Stage 2: the kept tokens equal the reference's on the GPU's scores.
    ref::TokenSet ref = ref::kvSlimSelect(*scores, c.segments ? &segs : nullptr, p);
    CHECK(kept->kept == ref.kept);
    size_t total = 0;
    for (auto &l : kept->kept)
      total += l.size();
    INFO("kept " << total << " of " << size_t(c.B) * c.Hkv * c.Skv);
    if (c.tau == 0.0 && !c.segments)
      CHECK(total == size_t(c.B) * c.Hkv * std::min(c.Skv, c.sinks + c.recent));
    // Stage 3: decode given the GPU's own token set.
    ref::AttentionResult r = ref::decodeAttention(*q, *k, *v, kept, std::nullopt);
    REQUIRE(nanCount(*o.gpu[0]) == 0);
    double err = relErr(*o.gpu[0], r.out);
    INFO("decode rel err " << err);
    CHECK(err <= 1e-2);
  }
}
