//===- test_vertical_slash.cpp - §6 per-head cumulative, §12a FlexPrefill -===//
//
// The head-wide cumulative rule by repeated arg-max over the whole grid;
// the vertical-slash lines against a pair-by-pair softmax; the selection
// on hand-made lines whose block set is worked out in the comments; the
// query-aware switch at both extremes of its threshold.
//
//===----------------------------------------------------------------------===//

#include "Brute.h"

using namespace brute;

namespace {

Scores randomScores(Rng &r, int64_t B, int64_t H, int64_t Sq, int64_t Skv, int64_t bq, int64_t bk) {
  Scores s;
  s.B = B, s.H = H, s.Sq = Sq, s.Skv = Skv, s.bq = bq, s.bk = bk, s.causal = true;
  s.nQB = ceilDiv(Sq, bq), s.nKB = ceilDiv(Skv, bk);
  s.v.assign(static_cast<size_t>(B * H * s.nQB * s.nKB), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t I = 0; I < s.nQB; ++I)
        for (int32_t J : visible(I, bq, bk, Sq, Skv, true))
          s.at(b, h, I, J) = r.coin(0.1) ? 0.25 : r.uniform(); // ties on purpose
  return s;
}

} // namespace

TEST_CASE("cumulative per head keeps the head's shortest prefix by repeated arg-max",
          "[reference][selection][flexprefill]") {
  Rng r(81);
  for (int trial = 0; trial < 20; ++trial) {
    int64_t Sq = r.range(1, 90), Skv = Sq + r.range(0, 20), bq = r.range(1, 3) * 8,
            bk = r.range(1, 3) * 8;
    Scores s = randomScores(r, 2, 3, Sq, Skv, bq, bk);
    double tau = trial == 0 ? 1.0 : trial == 1 ? 0.0 : r.uniform();
    Forced f{trial % 3 == 0 ? 1 : 0, 0, trial % 2 == 0};
    BlockSet got = selectCumulativeHead(s, tau, f);
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t h = 0; h < s.H; ++h) {
        // Forced pairs first, then the largest remaining pair (lowest flat
        // index among equals) until the mass reaches tau of the total.
        std::set<int64_t> kept, open;
        double total = 0.0, sum = 0.0;
        for (int64_t I = 0; I < s.nQB; ++I) {
          auto F = forced(f, I, bq, bk, Sq, Skv, true);
          for (int32_t J : visible(I, bq, bk, Sq, Skv, true)) {
            total += s.at(b, h, I, J);
            if (std::find(F.begin(), F.end(), J) != F.end())
              kept.insert(I * s.nKB + J), sum += s.at(b, h, I, J);
            else
              open.insert(I * s.nKB + J);
          }
        }
        while (sum < tau * total - 1e-12 && !open.empty()) {
          int64_t best = *open.begin();
          for (int64_t x : open)
            if (s.v[static_cast<size_t>((b * s.H + h) * s.nQB * s.nKB + x)] >
                s.v[static_cast<size_t>((b * s.H + h) * s.nQB * s.nKB + best)])
              best = x;
          sum += s.v[static_cast<size_t>((b * s.H + h) * s.nQB * s.nKB + best)];
          kept.insert(best), open.erase(best);
        }
        for (int64_t I = 0; I < s.nQB; ++I) {
          std::vector<int32_t> want;
          for (int64_t x : kept)
            if (x / s.nKB == I)
              want.push_back(static_cast<int32_t>(x % s.nKB));
          INFO("trial " << trial << " b " << b << " h " << h << " I " << I);
          REQUIRE(got.row(b, h, I) == want);
        }
      }
  }
}

TEST_CASE("vertical-slash lines are the last rows' softmax summed per key and per distance",
          "[reference][flexprefill]") {
  Rng r(82);
  for (auto [Sq, Skv, last] :
       {std::tuple<int64_t, int64_t, int64_t>{37, 37, 8}, {20, 45, 64}, {9, 9, 9}}) {
    Tensor q = randn({2, 4, Sq, 16}, r), k = randn({2, 2, Skv, 16}, r);
    VerticalSlashParams p;
    p.last = last;
    Lines got = lastQLines(q, k, p);
    int64_t n = std::min(last, Sq);
    double scale = 1.0 / 4.0;
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t h = 0; h < 4; ++h) {
        std::vector<double> v(static_cast<size_t>(Skv)), s(static_cast<size_t>(Skv));
        for (int64_t i = Sq - n; i < Sq; ++i) {
          int64_t pos = i + Skv - Sq;
          double z = 0.0;
          for (int64_t j = 0; j <= pos; ++j) {
            double dot = 0.0;
            for (int64_t d = 0; d < 16; ++d)
              dot += q.at(b, h, i, d) * k.at(b, h / 2, j, d);
            z += std::exp(scale * dot);
          }
          for (int64_t j = 0; j <= pos; ++j) {
            double dot = 0.0;
            for (int64_t d = 0; d < 16; ++d)
              dot += q.at(b, h, i, d) * k.at(b, h / 2, j, d);
            double pr = std::exp(scale * dot) / z / static_cast<double>(n);
            v[static_cast<size_t>(j)] += pr;
            s[static_cast<size_t>(pos - j)] += pr;
          }
        }
        for (int64_t j = 0; j < Skv; ++j) {
          REQUIRE(got.vertical.at3(b, h, j) == Approx(v[static_cast<size_t>(j)]).margin(1e-12));
          REQUIRE(got.slash.at3(b, h, j) == Approx(s[static_cast<size_t>(j)]).margin(1e-12));
        }
      }
  }
}

TEST_CASE("vertical-slash selection on hand-made lines", "[reference][flexprefill]") {
  // Sq = Skv = 8, blocks of 2 (nKB = 4), unit 1, gamma 0.5.
  // v: 0.6 on key 5 (block 2), the rest spread: c(v) = 1, kv = 2, so block 0
  //    and block 2.
  // s: 0.5 at distance 0, 0.3 at distance 3, the rest spread: c(s) = 1, ks = 2;
  //    groups σ(d) = 3 - (7 - d) / 2 put d = 0, 1 in group 0 and d = 2, 3 in
  //    group 1, so groups 0 and 1.
  // Rows (diag(I) = I): I=0 {0}; I=1 {0} ∪ {1, 0}; I=2 {0, 2} ∪ {2, 1};
  // I=3 {0, 2} ∪ {3, 2}.
  Tensor q({1, 1, 8, 4}), k({1, 1, 8, 4});
  Lines l{Tensor({1, 1, 8}), Tensor({1, 1, 8})};
  for (int64_t j = 0; j < 8; ++j) {
    l.vertical.at3(0, 0, j) = j == 5 ? 0.6 : 0.4 / 7;
    l.slash.at3(0, 0, j) = j == 0 ? 0.5 : j == 3 ? 0.3 : 0.2 / 6;
  }
  VerticalSlashParams p;
  p.gamma = 0.5, p.unit = 1;
  BlockSet got = verticalSlashSelect(l, q, k, 2, 2, nullptr, nullptr, p);
  CHECK(got.row(0, 0, 0) == std::vector<int32_t>{0});
  CHECK(got.row(0, 0, 1) == std::vector<int32_t>{0, 1});
  CHECK(got.row(0, 0, 2) == std::vector<int32_t>{0, 1, 2});
  CHECK(got.row(0, 0, 3) == std::vector<int32_t>{0, 2, 3});
  // max_blocks = 1 leaves block 0 and the diagonal only; min_blocks = 4 everything.
  p.maxBlocks = 1;
  got = verticalSlashSelect(l, q, k, 2, 2, nullptr, nullptr, p);
  CHECK(got.row(0, 0, 3) == std::vector<int32_t>{0, 3});
  p.maxBlocks = 0, p.minBlocks = 4;
  got = verticalSlashSelect(l, q, k, 2, 2, nullptr, nullptr, p);
  CHECK(got.row(0, 0, 3) == std::vector<int32_t>{0, 1, 2, 3});
}

TEST_CASE("vertical-slash query-aware switch", "[reference][flexprefill]") {
  Rng r(83);
  const int64_t S = 200, bk = 16, nKB = ceilDiv(S, bk);
  Tensor q = randn({1, 4, S, 16}, r), k = randn({1, 2, S, 16}, r);
  Tensor kp({1, 2, nKB, 16});
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t J = 0; J < nKB; ++J)
      for (int64_t d = 0; d < 16; ++d) {
        double sum = 0.0;
        int64_t n = 0;
        for (int64_t j = J * bk; j < std::min(S, (J + 1) * bk); ++j, ++n)
          sum += k.at(0, h, j, d);
        kp.at(0, h, J, d) = sum / static_cast<double>(n);
      }
  // An aware set holding every visible block of every row.
  BlockSet all;
  all.B = 1, all.H = 4, all.nQB = nKB, all.nKB = nKB, all.bq = bk, all.bk = bk, all.Sq = S,
  all.Skv = S;
  all.lists.resize(static_cast<size_t>(4 * nKB));
  for (int64_t h = 0; h < 4; ++h)
    for (int64_t I = 0; I < nKB; ++I)
      all.row(0, h, I) = visible(I, bk, bk, S, S, true);
  VerticalSlashParams p;
  p.gamma = 0.3, p.unit = 64;
  BlockSet plain = verticalSlash(q, k, bk, bk, nullptr, nullptr, p);
  p.jsd = 0.0; // never query-aware: the aware set changes nothing
  BlockSet never = verticalSlash(q, k, bk, bk, &all, &kp, p);
  CHECK(never.lists == plain.lists);
  p.jsd = 10.0; // sqrt-JSD <= sqrt(ln 2): every head is query-aware
  BlockSet always = verticalSlash(q, k, bk, bk, &all, &kp, p);
  CHECK(always.lists == all.lists);
  REQUIRE_THROWS_WITH(verticalSlash(q, k, bk, bk, &all, nullptr, p),
                      Catch::Matchers::Contains("block-mean keys"));
}
