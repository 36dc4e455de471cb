//===- test_vslash.cpp - §12b MInference token-level vertical-slash -------===//
//
// The picks by repeated arg-max over hand-made lines with ties; the allowed
// keys straight from the kept distances (not from the merged intervals);
// attention against a naive softmax over those keys; the token-level
// density by counting pairs; the columns lie below every row of their block;
// the extremes (everything kept = causal dense) and the errors.
//
//===----------------------------------------------------------------------===//

#include "Brute.h"

using namespace brute;

namespace {

/// The first n of "x < forced, then by descending line value, lowest index
/// among equals" by repeated arg-max, ascending.
std::vector<int32_t> brutePick(const Tensor &line, int64_t b, int64_t h, int64_t forced,
                               int64_t n) {
  const int64_t len = line.dim(2);
  std::vector<char> taken(static_cast<size_t>(len), 0);
  std::vector<int32_t> out;
  for (int64_t x = 0; x < std::min(forced, len) && int64_t(out.size()) < n; ++x)
    taken[static_cast<size_t>(x)] = 1, out.push_back(static_cast<int32_t>(x));
  while (int64_t(out.size()) < std::min(n, len)) {
    int64_t best = -1;
    for (int64_t x = 0; x < len; ++x)
      if (!taken[static_cast<size_t>(x)] && (best < 0 || line.at3(b, h, x) > line.at3(b, h, best)))
        best = x;
    taken[static_cast<size_t>(best)] = 1, out.push_back(static_cast<int32_t>(best));
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// §12b allowed set from the kept columns C and distances O.
bool bruteAllowed(const std::vector<int32_t> &C, const std::vector<int32_t> &O, int64_t bq,
                  int64_t i, int64_t j, int64_t Sq, int64_t Skv) {
  int64_t ip = i + Skv - Sq, I = i / bq;
  int64_t e = std::min((I + 1) * bq, Sq) + Skv - Sq; // last row's position + 1
  if (j < 0 || j > ip || j >= Skv)
    return false;
  for (int32_t d : O)
    if (e - 1 - j >= d && e - 1 - j < d + bq)
      return true;
  return std::find(C.begin(), C.end(), j) != C.end();
}

Lines tiedLines(Rng &r, int64_t B, int64_t H, int64_t Skv) {
  Lines l{Tensor({B, H, Skv}), Tensor({B, H, Skv})};
  for (double &x : l.vertical.data)
    x = r.coin(0.2) ? 0.5 : r.uniform();
  for (double &x : l.slash.data)
    x = r.coin(0.2) ? 0.5 : r.uniform();
  return l;
}

} // namespace

TEST_CASE("vslash picks columns and slashes by repeated arg-max, forced first",
          "[reference][minference]") {
  Rng r(121);
  for (int trial = 0; trial < 30; ++trial) {
    int64_t Skv = r.range(1, 150), Sq = r.range(1, Skv), bq = r.range(1, 3) * 8;
    Lines l = tiedLines(r, 2, 3, Skv);
    VSlashParams p;
    p.vertical = r.range(0, 40), p.slash = r.range(0, 40);
    p.sinkColumns = r.range(0, 12), p.localSlashes = r.range(1, 12);
    VSlashSet got = vslashSelect(l, Sq, bq, p);
    REQUIRE(got.B == 2);
    REQUIRE(got.H == 3);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t h = 0; h < 3; ++h) {
        const size_t bh = static_cast<size_t>(b * 3 + h);
        REQUIRE(got.columns[bh] == brutePick(l.vertical, b, h, p.sinkColumns,
                                             std::max(p.vertical, p.sinkColumns)));
        // The intervals are the union of [d, d + bq) over the kept d: every
        // distance is covered exactly when some kept d reaches it, and the
        // intervals are disjoint, ascending and not touching.
        auto O = brutePick(l.slash, b, h, p.localSlashes, std::max(p.slash, p.localSlashes));
        REQUIRE(O.front() == 0);
        const auto &iv = got.intervals[bh];
        for (size_t x = 1; x < iv.size(); ++x)
          REQUIRE(iv[x].first > iv[x - 1].second);
        for (int64_t dist = 0; dist < Skv + bq + 2; ++dist) {
          bool want = false, in = false;
          for (int32_t d : O)
            want |= dist >= d && dist < d + bq;
          for (auto [lo, hi] : iv)
            in |= dist >= lo && dist < hi;
          REQUIRE(in == want);
        }
      }
  }
}

TEST_CASE("vslash attention attends the bands and the columns, token by token",
          "[reference][minference]") {
  Rng r(122);
  for (auto [Sq, Skv, bq] : {std::tuple<int64_t, int64_t, int64_t>{70, 70, 16}, {33, 90, 8},
                             {45, 45, 64}, {5, 40, 16}}) {
    Tensor q = randn({2, 4, Sq, 16}, r), k = randn({2, 2, Skv, 16}, r),
           v = randn({2, 2, Skv, 16}, r);
    VSlashParams p;
    p.last = 8, p.vertical = 9, p.slash = 5, p.sinkColumns = 3, p.localSlashes = 2;
    VSlashSet vs = vslash(q, k, bq, p);
    VerticalSlashParams lp;
    lp.last = p.last;
    Lines lines = lastQLines(q, k, lp);
    AttentionParams ap;
    ap.mask.causal = true;
    ap.vslash = &vs;
    AttentionResult got = attention(q, k, v, nullptr, nullptr, ap);
    auto allow = [&](int64_t b, int64_t h, int64_t i, int64_t j) {
      auto C = brutePick(lines.vertical, b, h, 3, 9), O = brutePick(lines.slash, b, h, 2, 5);
      return bruteAllowed(C, O, bq, i, j, Sq, Skv);
    };
    AttentionResult want = naiveAttention(q, k, v, allow, 0.25);
    requireClose(got.out, want.out, 1e-10);
    requireClose(got.lse, want.lse, 1e-10);
    // Density: attended pairs over causal pairs, counted pair by pair.
    double att = 0.0, all = 0.0;
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t h = 0; h < 4; ++h)
        for (int64_t i = 0; i < Sq; ++i)
          for (int64_t j = 0; j < Skv; ++j) {
            all += tokenAllowed(true, 0, 0, i, j, Sq, Skv);
            att += allow(b, h, i, j);
          }
    Attended a;
    a.params = ap;
    REQUIRE(density(q, k, a) == Approx(att / all).epsilon(1e-12));
    // The columns a block adds lie below its first row (the diagonal band
    // holds every key from e - bq on).
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t h = 0; h < 4; ++h)
        for (int64_t I = 0; I * bq < Sq; ++I) {
          int64_t first = I * bq + Skv - Sq, e = std::min((I + 1) * bq, Sq) + Skv - Sq;
          for (int64_t j = std::max<int64_t>(0, e - bq); j < e; ++j)
            REQUIRE(bruteAllowed({}, {0}, bq, e - 1 - (Skv - Sq), j, Sq, Skv));
          REQUIRE(e - bq <= first);
        }
  }
}

TEST_CASE("vslash keeping everything is causal dense attention", "[reference][minference]") {
  Rng r(123);
  Tensor q = randn({1, 2, 50, 16}, r), k = randn({1, 1, 60, 16}, r), v = randn({1, 1, 60, 16}, r);
  for (auto [vert, sl] : {std::pair<int64_t, int64_t>{60, 0}, {0, 60}}) {
    VSlashParams p;
    p.vertical = vert, p.slash = sl, p.sinkColumns = 0, p.localSlashes = 1;
    VSlashSet vs = vslash(q, k, 16, p);
    AttentionParams ap, dense;
    ap.mask.causal = dense.mask.causal = true;
    ap.vslash = &vs;
    requireClose(attention(q, k, v, nullptr, nullptr, ap).out,
                 attention(q, k, v, nullptr, nullptr, dense).out, 1e-12);
  }
}

TEST_CASE("vslash rejects bad parameters and mismatched attentions", "[reference][minference]") {
  Rng r(124);
  Tensor q = randn({1, 2, 20, 16}, r), k = randn({1, 1, 20, 16}, r), v = randn({1, 1, 20, 16}, r);
  VSlashParams p;
  p.localSlashes = 0;
  REQUIRE_THROWS_WITH(vslash(q, k, 16, p), Catch::Contains("local_slashes >= 1"));
  p.localSlashes = 1;
  REQUIRE_THROWS_WITH(vslash(q, k, 0, p), Catch::Contains("positive query block"));
  VSlashSet vs = vslash(q, k, 16, p);
  AttentionParams ap;
  ap.vslash = &vs;
  REQUIRE_THROWS_WITH(attention(q, k, v, nullptr, nullptr, ap), Catch::Contains("causal"));
  ap.mask.causal = true;
  Tensor q2 = randn({1, 2, 21, 16}, r);
  REQUIRE_THROWS_WITH(attention(q2, k, v, nullptr, nullptr, ap), Catch::Contains("rebuild"));
}
