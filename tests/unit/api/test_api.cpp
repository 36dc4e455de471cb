//===- test_api.cpp - the public C++ API on the CPU device ----------------===//
//
// Sessions, variants from text and patterns, the in-memory program cache,
// run() on host views (contiguous and strided), and every misuse the API
// promises to reject with a sattn::Error instead of a crash.
//
//===----------------------------------------------------------------------===//
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include "sattn/sattn.h"
#include "tests/unit/api/HostTensor.h"

#include <chrono>
#include <cmath>
#include <random>

using namespace sattn;
using sattn::testing::HostTensor;

namespace {

/// Causal attention with GQA in float64, straight from the definition.
std::vector<double> causalRef(const HostTensor &q, const HostTensor &k, const HostTensor &v) {
  int64_t B = q.shape[0], H = q.shape[1], S = q.shape[2], D = q.shape[3], Hk = k.shape[1];
  int64_t T = k.shape[2];
  std::vector<double> out(size_t(B * H * S * D), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < S; ++i) {
        int64_t hk = h / (H / Hk), ip = i + T - S;
        std::vector<double> w;
        double m = -INFINITY;
        for (int64_t j = 0; j <= ip && j < T; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < D; ++d)
            dot += double(q.data[size_t(((b * H + h) * S + i) * D + d)]) *
                   k.data[size_t(((b * Hk + hk) * T + j) * D + d)];
          w.push_back(dot / std::sqrt(double(D)));
          m = std::max(m, w.back());
        }
        double z = 0;
        for (double &x : w)
          z += (x = std::exp(x - m));
        for (size_t j = 0; j < w.size(); ++j)
          for (int64_t d = 0; d < D; ++d)
            out[size_t(((b * H + h) * S + i) * D + d)] +=
                w[j] / z * v.data[size_t(((b * Hk + hk) * T + int64_t(j)) * D + d)];
      }
  return out;
}

SessionOptions cpu() {
  SessionOptions o;
  o.device = Device::Cpu;
  return o;
}

} // namespace

TEST_CASE("dense causal pattern matches the definition on the CPU", "[api]") {
  Session s(cpu());
  auto p = s.compile(patterns::dense({4, 2, 16, DType::BF16}, true));
  REQUIRE(p->device() == Device::Cpu);
  REQUIRE(p->inputNames() == std::vector<std::string>{"q", "k", "v"});
  std::mt19937 rng(3);
  HostTensor q({2, 4, 37, 16}, &rng), k({2, 2, 37, 16}, &rng), v({2, 2, 37, 16}, &rng);
  HostTensor o({2, 4, 37, 16}, nullptr);
  p->run({q.view(), k.view(), v.view()}, {o.view()});
  // The program rounds inputs to the variant's bf16; compare loosely.
  std::vector<double> want = causalRef(q, k, v);
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    REQUIRE_FALSE(std::isnan(o.data[i]));
    num += (o.data[i] - want[i]) * (o.data[i] - want[i]);
    den += want[i] * want[i];
  }
  CHECK(std::sqrt(num / den) < 1e-2);
}

namespace {
/// ‖a − b‖ / ‖b‖ of a float result against a float64 reference.
double relErr(const std::vector<float> &a, const std::vector<double> &b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    if (std::isnan(a[i]))
      return INFINITY;
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / den);
}
} // namespace

TEST_CASE("OmniSparse builders: the knobs reach the IR, the limits are dense", "[api]") {
  Session s(cpu());
  std::mt19937 rng(5);
  patterns::Heads h{4, 2, 16, DType::BF16};
  // Prefill: tau = 1 keeps every block with estimated mass, and lazy rows'
  // window (1024) covers these 100 keys, so both paths are dense causal.
  patterns::OmniSparseOptions all;
  all.theta = 0.5, all.tau = 1.0, all.block = 32, all.pool = 8;
  std::string text = patterns::omnisparse(h, all).text();
  CHECK(text.find("theta = 0.5") != std::string::npos);
  CHECK(text.find("sattn.head_budget flattest") != std::string::npos);
  HostTensor q({1, 4, 100, 16}, &rng), k({1, 2, 100, 16}, &rng), v({1, 2, 100, 16}, &rng);
  HostTensor o({1, 4, 100, 16}, nullptr);
  s.compile(patterns::omnisparse(h, all))->run({q.view(), k.view(), v.view()}, {o.view()});
  CHECK(relErr(o.data, causalRef(q, k, v)) < 1e-2);
  // With the defaults a random input takes the sparse path and stays finite.
  HostTensor o2({1, 4, 100, 16}, nullptr);
  s.compile(patterns::omnisparse(h))->run({q.view(), k.view(), v.view()}, {o2.view()});
  for (float x : o2.data)
    REQUIRE(std::isfinite(x));
  // Decode: tau = 1 keeps every cached token with mass: the dense decode.
  patterns::SlimOptions keep;
  keep.tau = 1.0;
  auto dec = s.compile(patterns::omnisparseDecode(h, keep));
  REQUIRE(dec->inputNames() == std::vector<std::string>{"prompt", "k", "v", "q"});
  HostTensor q1({1, 4, 1, 16}, &rng), od({1, 4, 1, 16}, nullptr), lse({1, 4, 1}, nullptr);
  dec->run({q.view(), k.view(), v.view(), q1.view()}, {od.view(), lse.view()});
  CHECK(relErr(od.data, causalRef(q1, k, v)) < 1e-2);
}

TEST_CASE("the XAttention pattern runs on the CPU and is exact with tau = 1", "[api][xattention]") {
  Session s(cpu());
  patterns::Heads h{4, 2, 16, DType::BF16};
  patterns::XAttentionOptions all;
  all.block = 32, all.stride = 8, all.tau = 1.0;
  std::string text = patterns::xattention(h, all).text();
  CHECK(text.find("sattn.antidiag_scores %q, %k {stride = 8 : i64, causal}") != std::string::npos);
  std::mt19937 rng(9);
  HostTensor q({2, 4, 100, 16}, &rng), k({2, 2, 100, 16}, &rng), v({2, 2, 100, 16}, &rng);
  HostTensor o({2, 4, 100, 16}, nullptr);
  // tau = 1 keeps every causally visible block: dense causal attention.
  s.compile(patterns::xattention(h, all))->run({q.view(), k.view(), v.view()}, {o.view()});
  CHECK(relErr(o.data, causalRef(q, k, v)) < 1e-6);
  // slack keeps more blocks past tau; with tau = 1 there are none left.
  patterns::XAttentionOptions slack = all;
  slack.slack = 1;
  CHECK(patterns::xattention(h, slack).text().find("slack = 1 : i64") != std::string::npos);
  CHECK(patterns::xattention(h, all).text().find("slack") == std::string::npos);
  s.compile(patterns::xattention(h, slack))->run({q.view(), k.view(), v.view()}, {o.view()});
  CHECK(relErr(o.data, causalRef(q, k, v)) < 1e-6);
  slack.slack = -1;
  CHECK_THROWS_WITH(patterns::xattention(h, slack), Catch::Contains("slack"));
  patterns::XAttentionOptions bad;
  bad.stride = 48; // does not divide 128
  CHECK_THROWS_WITH(s.compile(patterns::xattention(h, bad)),
                    Catch::Contains("stride = 48 must divide both block sizes"));
}

TEST_CASE("the UniSparse pattern runs on the CPU and is exact with tau = 1", "[api][unisparse]") {
  Session s(cpu());
  patterns::Heads h{4, 2, 16, DType::BF16};
  patterns::UniSparseOptions all;
  all.block = 32, all.granularities = {4, 16}, all.tau = 1.0;
  std::string text = patterns::unisparse(h, all).text();
  CHECK(text.find("sattn.mean_scores %s4, %s16") != std::string::npos);
  std::mt19937 rng(19);
  HostTensor q({2, 4, 100, 16}, &rng), k({2, 2, 100, 16}, &rng), v({2, 2, 100, 16}, &rng);
  HostTensor o({2, 4, 100, 16}, nullptr);
  s.compile(patterns::unisparse(h, all))->run({q.view(), k.view(), v.view()}, {o.view()});
  CHECK(relErr(o.data, causalRef(q, k, v)) < 1e-6);
  // One granularity needs no mean; a cap of 1 keeps only the forced blocks.
  patterns::UniSparseOptions one = all;
  one.granularities = {8}, one.tau = 0.5, one.cap = 1;
  CHECK(patterns::unisparse(h, one).text().find("mean_scores") == std::string::npos);
  s.compile(patterns::unisparse(h, one))->run({q.view(), k.view(), v.view()}, {o.view()});
  patterns::UniSparseOptions twice = all;
  twice.granularities = {16, 16};
  CHECK_THROWS_WITH(patterns::unisparse(h, twice),
                    Catch::Contains("granularity 16 is given twice"));
  patterns::UniSparseOptions coarse = all;
  coarse.granularities = {4, 64}; // does not divide the 32-token block
  CHECK_THROWS_WITH(s.compile(patterns::unisparse(h, coarse)),
                    Catch::Contains("q_group = 64 must divide the query block bq = 32"));
}

TEST_CASE("the Quest pattern: exact with every page, decode, bounds given as inputs",
          "[api][quest]") {
  Session s(cpu());
  patterns::Heads h{4, 2, 16, DType::BF16};
  std::mt19937 rng(23);
  // Every page kept (13 pages of 8 over 100 keys): dense causal attention.
  patterns::QuestOptions all;
  all.page = 8, all.pages = 13;
  std::string text = patterns::quest(h, all).text();
  CHECK(text.find("sattn.scores %qp, %kmin bound %kmax of %q, %k") != std::string::npos);
  HostTensor q({2, 4, 100, 16}, &rng), k({2, 2, 100, 16}, &rng), v({2, 2, 100, 16}, &rng);
  HostTensor o({2, 4, 100, 16}, nullptr);
  s.compile(patterns::quest(h, all))->run({q.view(), k.view(), v.view()}, {o.view()});
  CHECK(relErr(o.data, causalRef(q, k, v)) < 1e-6);
  // Decode (one query over 100 keys, 4 of 13 pages): the same output whether
  // the page bounds are pooled per call or computed once and passed in.
  patterns::QuestOptions few = all;
  few.pages = 4;
  HostTensor q1({2, 4, 1, 16}, &rng), pooled({2, 4, 1, 16}, nullptr), given({2, 4, 1, 16}, nullptr);
  s.compile(patterns::quest(h, few))->run({q1.view(), k.view(), v.view()}, {pooled.view()});
  HostTensor kmin({2, 2, 13, 16}, nullptr), kmax({2, 2, 13, 16}, nullptr);
  for (int64_t bh = 0; bh < 4; ++bh) // page bounds as a cache would keep them
    for (int64_t p = 0; p < 13; ++p)
      for (int64_t d = 0; d < 16; ++d) {
        float lo = INFINITY, hi = -INFINITY;
        for (int64_t j = p * 8; j < std::min<int64_t>(p * 8 + 8, 100); ++j) {
          lo = std::min(lo, k.data[size_t((bh * 100 + j) * 16 + d)]);
          hi = std::max(hi, k.data[size_t((bh * 100 + j) * 16 + d)]);
        }
        kmin.data[size_t((bh * 13 + p) * 16 + d)] = lo;
        kmax.data[size_t((bh * 13 + p) * 16 + d)] = hi;
      }
  patterns::QuestOptions inputs = few;
  inputs.boundsAsInputs = true;
  auto prog = s.compile(patterns::quest(h, inputs));
  prog->run({q1.view(), k.view(), v.view(), kmin.view(), kmax.view()}, {given.view()});
  CHECK(given.data == pooled.data);
  // Not every page: not dense attention (the test would pass vacuously otherwise).
  CHECK(relErr(pooled.data, causalRef(q1, k, v)) > 1e-3);
  // Bounds of the wrong length are refused with a message, not read past.
  HostTensor shortMin({2, 2, 12, 16}, &rng), shortMax({2, 2, 12, 16}, &rng);
  CHECK_THROWS_WITH(
      prog->run({q1.view(), k.view(), v.view(), shortMin.view(), shortMax.view()}, {given.view()}),
      Catch::Contains("13"));
  patterns::QuestOptions bad = all;
  bad.pages = 0;
  CHECK_THROWS_WITH(patterns::quest(h, bad), Catch::Contains("must be positive"));
}

TEST_CASE("strided (BSHD) views give the same result as contiguous ones", "[api]") {
  Session s(cpu());
  auto p = s.compile(patterns::streaming({2, 1, 8, DType::FP16}, 5, 2));
  std::mt19937 rng(4);
  HostTensor q({1, 2, 20, 8}, &rng), k({1, 1, 20, 8}, &rng), v({1, 1, 20, 8}, &rng);
  HostTensor o1({1, 2, 20, 8}, nullptr), o2({1, 2, 20, 8}, nullptr);
  p->run({q.view(), k.view(), v.view()}, {o1.view()});
  // q stored as [B, S, H, D] and viewed as [B, H, S, D] through strides.
  HostTensor qs({1, 20, 2, 8}, nullptr);
  for (int h = 0; h < 2; ++h)
    for (int i = 0; i < 20; ++i)
      for (int d = 0; d < 8; ++d)
        qs.data[size_t((i * 2 + h) * 8 + d)] = q.data[size_t((h * 20 + i) * 8 + d)];
  TensorView qv{qs.data.data(), DType::F32, Device::Cpu, {1, 2, 20, 8}, {320, 8, 16, 1}};
  p->run({qv, k.view(), v.view()}, {o2.view()});
  CHECK(o1.data == o2.data);
}

TEST_CASE("the session caches programs; lengths never recompile", "[api]") {
  Session s(cpu());
  Variant v = patterns::topkBlocks({4, 2, 16, DType::BF16}, 8, 16, 2);
  auto a = s.compile(v);
  auto t0 = std::chrono::steady_clock::now();
  auto b = s.compile(v);
  double us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  CHECK(a == b);
  INFO("in-memory hit took " << us << " us");
  CHECK(us < 1000);
  Specialization fp16;
  fp16.dtype = DType::FP16;
  auto c = s.compile(v, fp16);
  CHECK(c != a);
  CHECK(c->key() != a->key());
  std::mt19937 rng(5);
  for (int64_t len : {40, 77}) {
    HostTensor q({1, 4, len, 16}, &rng), k({1, 2, len, 16}, &rng), vv({1, 2, len, 16}, &rng);
    HostTensor o({1, 4, len, 16}, nullptr);
    a->run({q.view(), k.view(), vv.view()}, {o.view()});
    for (float x : o.data)
      REQUIRE_FALSE(std::isnan(x));
  }
  CHECK(s.compile(v) == a);
}

TEST_CASE("misuse is rejected with a message", "[api]") {
  Session s(cpu());
  auto p = s.compile(patterns::dense({4, 2, 16, DType::BF16}, true));
  std::mt19937 rng(6);
  HostTensor q({1, 4, 8, 16}, &rng), k({1, 2, 8, 16}, &rng), bad({1, 3, 8, 16}, &rng);
  HostTensor o({1, 4, 8, 16}, nullptr);
  CHECK_THROWS_WITH(p->run({q.view(), k.view()}, {o.view()}),
                    Catch::Contains("takes 3 inputs, 2 were given"));
  CHECK_THROWS_WITH(p->run({q.view(), k.view(), k.view()}, {}),
                    Catch::Contains("returns 1 tensors, 0 output views"));
  CHECK_THROWS_WITH(p->run({q.view(), bad.view(), bad.view()}, {o.view()}),
                    Catch::Contains("input 'k' has 3 in dimension 1, the variant expects 2"));
  TensorView gpuView = q.view();
  gpuView.device = Device::Gpu;
  CHECK_THROWS_WITH(p->run({gpuView, k.view(), k.view()}, {o.view()}),
                    Catch::Contains("lives on the GPU but the program runs on the CPU"));
  TensorView null = q.view();
  null.data = nullptr;
  CHECK_THROWS_WITH(p->run({null, k.view(), k.view()}, {o.view()}),
                    Catch::Contains("null data pointer"));
  CHECK_THROWS_WITH(s.compile(Variant::fromText("func.func @f() { sattn.nope }")),
                    Catch::Contains("not valid sattn IR"));
  CHECK_THROWS_WITH(Variant::fromFile("/nonexistent.mlir"),
                    Catch::Contains("cannot read variant file"));
}

TEST_CASE("a GPU session without a GPU says so", "[api]") {
  SessionOptions o;
  o.device = Device::Gpu;
  try {
    Session s(o);
    SUCCEED("a GPU is present");
  } catch (const Error &e) {
    CHECK_THAT(e.what(), Catch::Contains("a GPU session was requested but"));
  }
}

namespace {

/// A variant whose attention reads a block set: a fourth input "blocks"
/// (uniting it with a causal window-`w` static set when `unionWindow`), or,
/// with `staticWindow`, the static set alone (no fourth input).
std::string listVariant(int setHeads, bool unionWindow, int staticWindow = 0) {
  std::string q = "tensor<?x4x?x16xbf16>", k = "tensor<?x2x?x16xbf16>";
  std::string bt = "!sattn.blocks<bq = 8, bk = 16, heads = " + std::to_string(setHeads) + ">";
  std::string ir = "func.func @v(%q: " + q + ", %k: " + k + ", %v: " + k;
  if (!staticWindow)
    ir += ", %blocks: " + bt + " {sattn.name = \"blocks\"}";
  ir += ") -> " + q + " {\n";
  std::string use = "%blocks";
  int w = staticWindow ? staticWindow : 12;
  if (unionWindow || staticWindow)
    ir += "  %w = sattn.static_blocks %q, %k {causal, window = " + std::to_string(w) +
          " : i64} : " + q + ", " + k + " -> " + bt + "\n";
  if (staticWindow)
    use = "%w";
  else if (unionWindow)
    ir += "  %u = sattn.union %blocks, %w : " + bt + "\n", use = "%u";
  ir += "  %o = sattn.attention %q, %k, %v blocks " + use + " : " + bt + " {causal} : " + q + ", " +
        k + ", " + k + " -> " + q + "\n  return %o : " + q + "\n}\n";
  return ir;
}

/// Blocks of a causal window-w mask (semantics §8), pair by pair.
std::vector<int> windowBlocks(int I, int bq, int bk, int Sq, int Skv, int w) {
  std::vector<int> out;
  for (int J = 0; J * bk < Skv; ++J) {
    bool hit = false;
    for (int i = I * bq; i < std::min((I + 1) * bq, Sq) && !hit; ++i)
      for (int j = J * bk; j < std::min((J + 1) * bk, Skv) && !hit; ++j) {
        int ip = i + Skv - Sq;
        hit = j <= ip && j > ip - w;
      }
    if (hit)
      out.push_back(J);
  }
  return out;
}

} // namespace

TEST_CASE("a block set given as input equals the computed set it lists (CPU)", "[api]") {
  Session s(cpu());
  const int B = 2, Sq = 37, Skv = 45, bq = 8, bk = 16, nQB = 5, w = 20, cap = 6;
  std::mt19937 rng(8);
  HostTensor q({B, 4, Sq, 16}, &rng), k({B, 2, Skv, 16}, &rng), v({B, 2, Skv, 16}, &rng);
  for (int setHeads : {2, 4}) {
    INFO("set heads " << setHeads);
    auto withList = s.compile(Variant::fromText(listVariant(setHeads, false)));
    auto computed = s.compile(Variant::fromText(listVariant(setHeads, false, w)));
    REQUIRE(withList->inputNames() == std::vector<std::string>{"q", "k", "v", "blocks"});
    // The window's blocks, reversed, with a repeat and -1 padding.
    std::vector<int32_t> list(size_t(B * setHeads * nQB * cap), -1);
    for (int bh = 0; bh < B * setHeads; ++bh)
      for (int I = 0; I < nQB; ++I) {
        std::vector<int> row = windowBlocks(I, bq, bk, Sq, Skv, w);
        int32_t *dst = &list[size_t((bh * nQB + I) * cap)];
        for (size_t x = 0; x < row.size(); ++x)
          dst[row.size() - 1 - x] = row[x];
        dst[cap - 1] = row.front();
      }
    TensorView lv{list.data(), DType::I32, Device::Cpu, {B, setHeads, nQB, cap}, {}};
    HostTensor o1({B, 4, Sq, 16}, nullptr), o2({B, 4, Sq, 16}, nullptr);
    withList->run({q.view(), k.view(), v.view(), lv}, {o1.view()});
    computed->run({q.view(), k.view(), v.view()}, {o2.view()});
    CHECK(o1.data == o2.data);

    // United with the same window: the list's lengths come from the other operand.
    auto united = s.compile(Variant::fromText(listVariant(setHeads, true)));
    std::vector<int32_t> none(size_t(B * setHeads * nQB), -1);
    TensorView nv{none.data(), DType::I32, Device::Cpu, {B, setHeads, nQB, 1}, {}};
    auto window12 = s.compile(Variant::fromText(listVariant(setHeads, false, 12)));
    HostTensor o3({B, 4, Sq, 16}, nullptr), o4({B, 4, Sq, 16}, nullptr);
    united->run({q.view(), k.view(), v.view(), nv}, {o3.view()});
    window12->run({q.view(), k.view(), v.view()}, {o4.view()});
    CHECK(o3.data == o4.data);
  }
}

TEST_CASE("block-set inputs are checked against the variant (CPU)", "[api]") {
  Session s(cpu());
  auto p = s.compile(patterns::blockMask({4, 2, 16, DType::BF16}, 16, true, 2));
  REQUIRE(p->inputNames() == std::vector<std::string>{"q", "k", "v", "blocks"});
  std::mt19937 rng(9);
  HostTensor q({1, 4, 40, 16}, &rng), k({1, 2, 40, 16}, &rng);
  HostTensor o({1, 4, 40, 16}, nullptr);
  std::vector<int32_t> list(2 * 3 * 2, 0);
  TensorView lv{list.data(), DType::I32, Device::Cpu, {1, 2, 3, 2}, {}};
  p->run({q.view(), k.view(), k.view(), lv}, {o.view()});
  list[7] = 3; // nKB = 3
  CHECK_THROWS_WITH(p->run({q.view(), k.view(), k.view(), lv}, {o.view()}),
                    Catch::Contains("input 'blocks' row (b=0, h=1, I=0) slot 1 holds 3, outside "
                                    "the valid range [-1, 2]"));
  TensorView asFloat = q.view();
  CHECK_THROWS_WITH(p->run({q.view(), k.view(), k.view(), asFloat}, {o.view()}),
                    Catch::Contains("block-set input 'blocks' must be an int32 tensor [B, 2, nQB, "
                                    "cap]"));
  TensorView rows = lv;
  rows.shape = {1, 2, 2, 3};
  CHECK_THROWS_WITH(p->run({q.view(), k.view(), k.view(), rows}, {o.view()}),
                    Catch::Contains("dimension 2 (query blocks) is 2, expected 3"));
}

TEST_CASE("backward on the CPU: gradients of run() by finite differences, misuse",
          "[api][backward]") {
  Session s(cpu());
  auto p = s.compile(patterns::dense({4, 2, 8, DType::BF16}, true));
  std::mt19937 rng(11);
  HostTensor q({1, 4, 13, 8}, &rng), k({1, 2, 13, 8}, &rng), v({1, 2, 13, 8}, &rng);
  HostTensor dout({1, 4, 13, 8}, &rng);
  HostTensor dq({1, 4, 13, 8}, nullptr), dk({1, 2, 13, 8}, nullptr), dv({1, 2, 13, 8}, nullptr);
  p->backward({q.view(), k.view(), v.view()}, dout.view(), {dq.view(), dk.view(), dv.view()});
  // L(x) = sum(dout * run(x)); central differences on sampled elements.
  auto loss = [&]() {
    HostTensor o({1, 4, 13, 8}, nullptr);
    p->run({q.view(), k.view(), v.view()}, {o.view()});
    double l = 0;
    for (size_t i = 0; i < o.data.size(); ++i)
      l += double(dout.data[i]) * o.data[i];
    return l;
  };
  HostTensor *xs[3] = {&q, &k, &v}, *gs[3] = {&dq, &dk, &dv};
  for (int t = 0; t < 3; ++t) {
    double norm = 0;
    for (float g : gs[t]->data) {
      REQUIRE_FALSE(std::isnan(g));
      norm += double(g) * g;
    }
    norm = std::sqrt(norm / double(gs[t]->data.size()));
    CHECK(norm > 1e-3); // a zero gradient must fail
    for (int n = 0; n < 12; ++n) {
      size_t e = std::uniform_int_distribution<size_t>(0, xs[t]->data.size() - 1)(rng);
      const float x0 = xs[t]->data[e], h = 1e-2f;
      xs[t]->data[e] = x0 + h;
      double up = loss();
      xs[t]->data[e] = x0 - h;
      double down = loss();
      xs[t]->data[e] = x0;
      double fd = (up - down) / (2.0 * double(h));
      INFO("tensor " << t << " element " << e << " fd " << fd << " backward " << gs[t]->data[e]);
      CHECK(std::abs(fd - gs[t]->data[e]) <= 2e-3 * norm + 1e-4);
    }
  }

  // Sparse variants run too (selections held constant): finite gradients.
  patterns::Heads h{4, 2, 16, DType::BF16};
  auto omni = s.compile(patterns::omnisparse(h));
  HostTensor q2({1, 4, 100, 16}, &rng), k2({1, 2, 100, 16}, &rng), v2({1, 2, 100, 16}, &rng);
  HostTensor do2({1, 4, 100, 16}, &rng), dq2({1, 4, 100, 16}, nullptr),
      dk2({1, 2, 100, 16}, nullptr), dv2({1, 2, 100, 16}, nullptr);
  omni->backward({q2.view(), k2.view(), v2.view()}, do2.view(),
                 {dq2.view(), dk2.view(), dv2.view()});
  for (const HostTensor *g : {&dq2, &dk2, &dv2})
    for (float x : g->data)
      REQUIRE(std::isfinite(x));

  // Misuse.
  auto message = [&](auto fn) {
    try {
      fn();
    } catch (const Error &e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(message([&] {
               p->backward({q.view(), k.view(), v.view()}, dout.view(), {dq.view(), dk.view()});
             }),
             Catch::Contains("3 gradient views"));
  CHECK_THAT(
      message([&] {
        p->backward({q.view(), k.view(), v.view()}, dk.view(), {dq.view(), dk.view(), dv.view()});
      }),
      Catch::Contains("dout must be"));
  CHECK_THAT(
      message([&] {
        p->backward({q.view(), k.view(), v.view()}, dout.view(), {dk.view(), dk.view(), dv.view()});
      }),
      Catch::Contains("dq must be"));
  auto dec = s.compile(patterns::omnisparseDecode(h));
  CHECK_THAT(message([&] {
               dec->backward({q.view(), k.view(), v.view()}, dout.view(),
                             {dq.view(), dk.view(), dv.view()});
             }),
             Catch::Contains("first result is the output of a sattn.attention"));
}
