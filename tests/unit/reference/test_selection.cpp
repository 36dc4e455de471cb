//===- test_selection.cpp - §6-§9 selection, budgets and block sets -------===//
//
// Selections against brute-force orderings built by repeated arg-max (ties
// resolved by scanning ascending), cumulative prefixes re-summed from
// scratch, static block sets against the token mask pair by pair, and set
// algebra against std::set.
//
//===----------------------------------------------------------------------===//

#include "Brute.h"

using namespace brute;
using Catch::Matchers::Contains;

namespace {

/// ord of §6 by repeated arg-max: strict '>' while scanning ascending keeps
/// the lower index on ties.
std::vector<int32_t> bruteOrder(const std::vector<double> &row, const std::vector<int32_t> &V,
                                const std::vector<int32_t> &F) {
  std::vector<int32_t> ord = F, rest;
  for (int32_t J : V)
    if (!inList(F, J))
      rest.push_back(J);
  while (!rest.empty()) {
    size_t best = 0;
    for (size_t x = 1; x < rest.size(); ++x)
      if (row[static_cast<size_t>(rest[x])] > row[static_cast<size_t>(rest[best])])
        best = x;
    ord.push_back(rest[best]);
    rest.erase(rest.begin() + static_cast<std::ptrdiff_t>(best));
  }
  return ord;
}

std::vector<int32_t> sorted(std::vector<int32_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<int32_t> bruteTopK(const std::vector<double> &row, const std::vector<int32_t> &V,
                               const std::vector<int32_t> &F, int64_t K) {
  K = std::min<int64_t>(K, static_cast<int64_t>(V.size()));
  std::vector<int32_t> ord = bruteOrder(row, V, F);
  size_t take =
      F.size() + static_cast<size_t>(std::max<int64_t>(0, K - static_cast<int64_t>(F.size())));
  return sorted({ord.begin(), ord.begin() + static_cast<std::ptrdiff_t>(take)});
}

std::vector<int32_t> bruteCumulative(const std::vector<double> &row, const std::vector<int32_t> &V,
                                     const std::vector<int32_t> &F, double tau,
                                     std::optional<int64_t> cap, size_t slack = 0) {
  std::vector<int32_t> ord = bruteOrder(row, V, F);
  double total = 0.0;
  for (int32_t J : V)
    total += row[static_cast<size_t>(J)];
  size_t L = ord.size(); // none reaches the target: everything
  for (size_t len = F.size(); len <= ord.size(); ++len) {
    double sum = 0.0;
    for (size_t x = 0; x < len; ++x)
      sum += row[static_cast<size_t>(ord[x])];
    if (sum >= tau * total) {
      L = len;
      break;
    }
  }
  L = std::min(ord.size(), L + slack);
  if (cap)
    L = std::min(L, static_cast<size_t>(std::max<int64_t>(*cap, static_cast<int64_t>(F.size()))));
  return sorted({ord.begin(), ord.begin() + static_cast<std::ptrdiff_t>(L)});
}

/// Scores of result head og: mean over its g query heads.
std::vector<double> meanRow(const Scores &s, int64_t b, int64_t og, int64_t g, int64_t I) {
  std::vector<double> row(static_cast<size_t>(s.nKB), 0.0);
  for (int64_t J = 0; J < s.nKB; ++J) {
    double sum = 0.0;
    for (int64_t h = og * g; h < (og + 1) * g; ++h)
      sum += s.at(b, h, I, J);
    row[static_cast<size_t>(J)] = g > 1 ? sum / static_cast<double>(g) : sum;
  }
  return row;
}

Scores randomScores(Rng &r, int64_t B, int64_t H, int64_t Sq, int64_t Skv, int64_t bq, int64_t bk,
                    bool causal, double zeroFrac = 0.0) {
  Scores s = makeScores(B, H, Sq, Skv, bq, bk, causal);
  for (double &x : s.v)
    x = r.coin(zeroFrac) ? 0.0 : r.uniform();
  return s;
}

struct Geometry {
  int64_t Sq, Skv, bq, bk;
};
const Geometry kGeoms[] = {
    {77, 130, 16, 16}, {130, 77, 16, 16}, {300, 300, 32, 16}, {5, 200, 16, 8}, {64, 64, 64, 64}};
const Forced kForced[] = {{0, 0, false}, {1, 0, true}, {2, 2, false}, {0, 1, true}};

} // namespace

TEST_CASE("topk selection matches a brute-force ordering", "[selection]") {
  Rng r(0xB10C0001);
  for (const Geometry &geo : kGeoms)
    for (const Forced &f : kForced)
      for (bool causal : {true, false})
        for (int64_t outHeads : {4, 2, 1}) {
          Scores s = randomScores(r, 2, 4, geo.Sq, geo.Skv, geo.bq, geo.bk, causal);
          int64_t g = 4 / outHeads;
          // Per-query-head budget: the group takes its max.
          Budget bud{2, 4, s.nQB, {}};
          for (int64_t x = 0; x < 2 * 4 * s.nQB; ++x)
            bud.k.push_back(r.range(0, s.nKB));
          int64_t kAttr = r.range(0, s.nKB);
          BlockSet byK = selectTopK(s, nullptr, kAttr, f, outHeads);
          BlockSet byBudget = selectTopK(s, &bud, std::nullopt, f, outHeads);
          requireSortedUnique(byK);
          REQUIRE(byK.H == outHeads);
          for (int64_t b = 0; b < 2; ++b)
            for (int64_t og = 0; og < outHeads; ++og)
              for (int64_t I = 0; I < s.nQB; ++I) {
                auto V = visible(I, geo.bq, geo.bk, geo.Sq, geo.Skv, causal);
                auto F = forced(f, I, geo.bq, geo.bk, geo.Sq, geo.Skv, causal);
                auto row = meanRow(s, b, og, g, I);
                REQUIRE(byK.row(b, og, I) == bruteTopK(row, V, F, kAttr));
                int64_t K = 0;
                for (int64_t h = og * g; h < (og + 1) * g; ++h)
                  K = std::max(K, bud.at(b, h, I));
                REQUIRE(byBudget.row(b, og, I) == bruteTopK(row, V, F, K));
              }
        }
}

TEST_CASE("topk with shared and per-group budget operands", "[selection]") {
  Rng r(0xB10C0002);
  Scores s = randomScores(r, 2, 4, 130, 77, 16, 16, true);
  Forced f{1, 0, true};
  Budget shared{2, 1, s.nQB, {}}, perGroup{2, 2, s.nQB, {}};
  for (int64_t x = 0; x < 2 * s.nQB; ++x)
    shared.k.push_back(r.range(0, s.nKB));
  for (int64_t x = 0; x < 2 * 2 * s.nQB; ++x)
    perGroup.k.push_back(r.range(0, s.nKB));
  BlockSet a = selectTopK(s, &shared, std::nullopt, f, 2);
  BlockSet b = selectTopK(s, &perGroup, std::nullopt, f, 2);
  for (int64_t bb = 0; bb < 2; ++bb)
    for (int64_t og = 0; og < 2; ++og)
      for (int64_t I = 0; I < s.nQB; ++I) {
        auto V = visible(I, 16, 16, 130, 77, true);
        auto F = forced(f, I, 16, 16, 130, 77, true);
        auto row = meanRow(s, bb, og, 2, I);
        REQUIRE(a.row(bb, og, I) == bruteTopK(row, V, F, shared.at(bb, 0, I)));
        REQUIRE(b.row(bb, og, I) == bruteTopK(row, V, F, perGroup.at(bb, og, I)));
      }
}

TEST_CASE("topk budget 0 keeps only forced, budget nKB keeps every visible block", "[selection]") {
  Rng r(0xB10C0003);
  for (const Geometry &geo : kGeoms) {
    Scores s = randomScores(r, 2, 4, geo.Sq, geo.Skv, geo.bq, geo.bk, true);
    Forced f{1, 1, false};
    BlockSet none = selectTopK(s, nullptr, 0, f, 4);
    BlockSet all = selectTopK(s, nullptr, s.nKB, f, 2);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t I = 0; I < s.nQB; ++I) {
        for (int64_t h = 0; h < 4; ++h)
          REQUIRE(none.row(b, h, I) == forced(f, I, geo.bq, geo.bk, geo.Sq, geo.Skv, true));
        for (int64_t h = 0; h < 2; ++h)
          REQUIRE(all.row(b, h, I) == visible(I, geo.bq, geo.bk, geo.Sq, geo.Skv, true));
      }
  }
}

TEST_CASE("attention with a full topk budget equals dense causal attention",
          "[selection][attention]") {
  Rng r(0xB10C0004);
  for (const Geometry &geo : kGeoms) {
    Tensor q = randn({2, 4, geo.Sq, 8}, r), k = randn({2, 2, geo.Skv, 8}, r),
           v = randn({2, 2, geo.Skv, 8}, r);
    Tensor qp = pool(q, geo.bq, PoolKind::Mean), kp = pool(k, geo.bk, PoolKind::Mean);
    Scores s =
        blockScores(qp, kp, geo.bq, geo.bk, geo.bq, geo.bk, geo.Sq, geo.Skv, true, std::nullopt);
    AttentionParams p;
    p.mask.causal = true;
    AttentionResult dense = attention(q, k, v, nullptr, nullptr, p);
    for (int64_t heads : {4, 2}) {
      BlockSet all = selectTopK(s, nullptr, s.nKB, Forced{}, heads);
      AttentionResult sparse = attention(q, k, v, &all, nullptr, p);
      requireClose(sparse.out, dense.out);
      requireClose(sparse.lse, dense.lse);
    }
  }
}

TEST_CASE("budgets out of range throw and name both numbers", "[selection][errors]") {
  Scores s = makeScores(1, 2, 128, 1000, 128, 128, true); // nKB = 8
  REQUIRE_THROWS_WITH(selectTopK(s, nullptr, 9, Forced{}, 2),
                      Contains("budget k=9 is out of range [0, 8] (ceil(Skv/Bk) with "
                               "Skv=1000, Bk=128)"));
  REQUIRE_THROWS_WITH(selectTopK(s, nullptr, -1, Forced{}, 2),
                      Contains("budget k=-1 is out of range [0, 8]"));
  Budget bud{1, 2, 1, {3, 12}};
  REQUIRE_THROWS_WITH(selectTopK(s, &bud, std::nullopt, Forced{}, 2),
                      Contains("budget k=12 is out of range [0, 8]"));
  REQUIRE_THROWS_WITH(selectTopK(s, &bud, std::nullopt, Forced{}, 2), Contains("head 1"));
  REQUIRE_THROWS_WITH(selectCumulative(s, 0.5, nullptr, 9, Forced{}, 2),
                      Contains("budget k=9 is out of range [0, 8]"));
  REQUIRE_NOTHROW(selectTopK(s, nullptr, 8, Forced{}, 2));
  REQUIRE_THROWS_WITH(selectTopK(s, nullptr, std::nullopt, Forced{}, 2),
                      Contains("needs a budget"));
  REQUIRE_THROWS_WITH(selectTopK(s, nullptr, 2, Forced{}, 3), Contains("3 heads"));
  REQUIRE_THROWS_WITH(selectCumulative(s, 1.5, nullptr, std::nullopt, Forced{}, 2),
                      Contains("tau=1.5"));
  REQUIRE_THROWS_WITH(selectCumulative(s, 0.5, nullptr, std::nullopt, Forced{}, 2, -1),
                      Contains("slack must be >= 0, got -1"));
  Budget otherBatch{2, 1, 1, {1, 1}};
  REQUIRE_THROWS_WITH(selectTopK(s, &otherBatch, std::nullopt, Forced{}, 2), Contains("B=2"));
}

TEST_CASE("ties go to the lower block index", "[selection]") {
  Scores s = makeScores(1, 2, 16, 80, 16, 16, false); // nKB = 5, one row
  const double head0[] = {0.5, 0.9, 0.5, 0.9, 0.5};
  for (int64_t J = 0; J < 5; ++J) {
    s.at(0, 0, 0, J) = head0[J];
    s.at(0, 1, 0, J) = 0.25; // all equal
  }
  REQUIRE(selectTopK(s, nullptr, 3, Forced{}, 2).row(0, 0, 0) == std::vector<int32_t>{0, 1, 3});
  REQUIRE(selectTopK(s, nullptr, 2, Forced{}, 2).row(0, 1, 0) == std::vector<int32_t>{0, 1});
  REQUIRE(selectTopK(s, nullptr, 2, Forced{0, 0, true}, 2).row(0, 1, 0) ==
          std::vector<int32_t>{0, 4}); // diag(0) = (15 + 80 - 16) / 16 = 4
  // Group average of mirrored heads: every block ties.
  Scores m = makeScores(1, 2, 16, 48, 16, 16, false);
  const double a[] = {0.1, 0.2, 0.3};
  for (int64_t J = 0; J < 3; ++J) {
    m.at(0, 0, 0, J) = a[J];
    m.at(0, 1, 0, J) = a[2 - J];
  }
  REQUIRE(selectTopK(m, nullptr, 1, Forced{}, 1).row(0, 0, 0) == std::vector<int32_t>{0});
  // Cumulative: among equal scores the prefix grows from the lowest index.
  REQUIRE(selectCumulative(s, 0.5, nullptr, std::nullopt, Forced{}, 2).row(0, 1, 0) ==
          std::vector<int32_t>{0, 1, 2});
}

TEST_CASE("cumulative selection matches brute-force prefixes", "[selection]") {
  Rng r(0xB10C0005);
  for (const Geometry &geo : kGeoms)
    for (const Forced &f : kForced)
      for (int64_t outHeads : {4, 2, 1})
        for (double tau : {0.3, 0.77, 0.95}) {
          Scores s = randomScores(r, 2, 4, geo.Sq, geo.Skv, geo.bq, geo.bk, true, 0.2);
          int64_t g = 4 / outHeads, capK = r.range(0, s.nKB);
          BlockSet plain = selectCumulative(s, tau, nullptr, std::nullopt, f, outHeads);
          BlockSet capped = selectCumulative(s, tau, nullptr, capK, f, outHeads);
          int64_t slack = r.range(1, 3);
          BlockSet slacked = selectCumulative(s, tau, nullptr, std::nullopt, f, outHeads, slack);
          BlockSet slackCapped = selectCumulative(s, tau, nullptr, capK, f, outHeads, slack);
          requireSortedUnique(plain);
          requireSortedUnique(slacked);
          for (int64_t b = 0; b < 2; ++b)
            for (int64_t og = 0; og < outHeads; ++og)
              for (int64_t I = 0; I < s.nQB; ++I) {
                auto V = visible(I, geo.bq, geo.bk, geo.Sq, geo.Skv, true);
                auto F = forced(f, I, geo.bq, geo.bk, geo.Sq, geo.Skv, true);
                auto row = meanRow(s, b, og, g, I);
                REQUIRE(plain.row(b, og, I) == bruteCumulative(row, V, F, tau, std::nullopt));
                REQUIRE(capped.row(b, og, I) == bruteCumulative(row, V, F, tau, capK));
                auto us = static_cast<size_t>(slack);
                REQUIRE(slacked.row(b, og, I) == bruteCumulative(row, V, F, tau, std::nullopt, us));
                REQUIRE(slackCapped.row(b, og, I) == bruteCumulative(row, V, F, tau, capK, us));
              }
        }
}

TEST_CASE("cumulative tau 0 keeps forced only, tau 1 keeps every block with mass", "[selection]") {
  Rng r(0xB10C0006);
  for (const Geometry &geo : kGeoms)
    for (const Forced &f : kForced) {
      Scores s = randomScores(r, 2, 4, geo.Sq, geo.Skv, geo.bq, geo.bk, true, 0.4);
      BlockSet zero = selectCumulative(s, 0.0, nullptr, std::nullopt, f, 4);
      BlockSet one = selectCumulative(s, 1.0, nullptr, std::nullopt, f, 4);
      for (int64_t b = 0; b < 2; ++b)
        for (int64_t h = 0; h < 4; ++h)
          for (int64_t I = 0; I < s.nQB; ++I) {
            auto F = forced(f, I, geo.bq, geo.bk, geo.Sq, geo.Skv, true);
            REQUIRE(zero.row(b, h, I) == F);
            std::vector<int32_t> massive;
            for (int32_t J : visible(I, geo.bq, geo.bk, geo.Sq, geo.Skv, true))
              if (s.at(b, h, I, J) > 0.0 || inList(F, J))
                massive.push_back(J);
            REQUIRE(one.row(b, h, I) == massive);
          }
    }
}

TEST_CASE("head budget counts cumulative blocks; flattest shares within a batch only",
          "[selection][budget]") {
  Rng r(0xB10C0007);
  Scores s = makeScores(2, 4, 130, 130, 16, 16, true);
  for (int64_t h = 0; h < 4; ++h)
    for (int64_t I = 0; I < s.nQB; ++I)
      for (int64_t J = 0; J <= I; ++J) {
        s.at(0, h, I, J) = 1.0 + 0.01 * r.uniform();              // batch 0: flat
        s.at(1, h, I, J) = J == I - (h % 2) ? 50.0 : r.uniform(); // batch 1: peaked
      }
  Forced f{1, 0, true};
  double tau = 0.8;
  Budget per = headBudget(s, tau, f, false);
  Budget flat = headBudget(s, tau, f, true);
  REQUIRE(per.H == 4);
  REQUIRE(flat.H == 1);
  bool batchesDiffer = false;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t I = 0; I < s.nQB; ++I) {
      auto V = visible(I, 16, 16, 130, 130, true);
      auto F = forced(f, I, 16, 16, 130, 130, true);
      int64_t mx = 0;
      for (int64_t h = 0; h < 4; ++h) {
        auto kh = static_cast<int64_t>(
            bruteCumulative(meanRow(s, b, h, 1, I), V, F, tau, std::nullopt).size());
        REQUIRE(per.at(b, h, I) == kh);
        mx = std::max(mx, kh);
      }
      REQUIRE(flat.at(b, 0, I) == mx);
      batchesDiffer = batchesDiffer || flat.at(0, 0, I) != flat.at(1, 0, I);
    }
  REQUIRE(batchesDiffer);
  // The shared budget drives topk to exactly the brute-force result.
  BlockSet sel = selectTopK(s, &flat, std::nullopt, f, 4);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < 4; ++h)
      for (int64_t I = 0; I < s.nQB; ++I)
        REQUIRE(sel.row(b, h, I) ==
                bruteTopK(meanRow(s, b, h, 1, I), visible(I, 16, 16, 130, 130, true),
                          forced(f, I, 16, 16, 130, 130, true), flat.at(b, 0, I)));
}

TEST_CASE("static block sets hold exactly the blocks the token mask touches",
          "[selection][static]") {
  Rng r(0xB10C0008);
  const Mask masks[] = {{false, 0, 0}, {true, 0, 0}, {true, 20, 0}, {true, 7, 3}, {true, 40, 17}};
  for (const Geometry &geo : kGeoms)
    for (const Mask &m : masks) {
      BlockSet bs = staticBlocks(2, 3, geo.Sq, geo.Skv, geo.bq, geo.bk, m);
      requireSortedUnique(bs);
      for (int64_t I = 0; I < bs.nQB; ++I) {
        std::vector<int32_t> want;
        for (int64_t J = 0; J < bs.nKB; ++J) {
          bool any = false;
          for (int64_t i = I * geo.bq; i < std::min(geo.Sq, (I + 1) * geo.bq) && !any; ++i)
            for (int64_t j = J * geo.bk; j < std::min(geo.Skv, (J + 1) * geo.bk) && !any; ++j)
              any = tokenAllowed(m.causal, m.window, m.sinks, i, j, geo.Sq, geo.Skv);
          if (any)
            want.push_back(static_cast<int32_t>(J));
        }
        for (int64_t b = 0; b < 2; ++b)
          for (int64_t h = 0; h < 3; ++h)
            REQUIRE(bs.row(b, h, I) == want);
      }
      // Intersecting with the mask's own blocks must not change attention.
      Tensor q = randn({2, 3, geo.Sq, 8}, r), k = randn({2, 3, geo.Skv, 8}, r),
             v = randn({2, 3, geo.Skv, 8}, r);
      AttentionParams p;
      p.mask = m;
      REQUIRE(attention(q, k, v, &bs, nullptr, p).out.data ==
              attention(q, k, v, nullptr, nullptr, p).out.data);
    }
}

TEST_CASE("union and intersection are per-row set algebra", "[selection][algebra]") {
  Rng r(0xB10C0009);
  for (int trial = 0; trial < 10; ++trial) {
    BlockSet a = randomBlocks(r, 2, 4, 77, 130, 16, 16, 0.4);
    BlockSet b = randomBlocks(r, 2, 4, 77, 130, 16, 16, 0.4);
    BlockSet u = unite(a, b), x = intersect(a, b);
    requireSortedUnique(u);
    requireSortedUnique(x);
    for (size_t row = 0; row < a.lists.size(); ++row) {
      std::set<int32_t> sa(a.lists[row].begin(), a.lists[row].end()),
          sb(b.lists[row].begin(), b.lists[row].end()), su = sa, sx;
      su.insert(sb.begin(), sb.end());
      for (int32_t J : sa)
        if (sb.count(J))
          sx.insert(J);
      REQUIRE(u.lists[row] == std::vector<int32_t>(su.begin(), su.end()));
      REQUIRE(x.lists[row] == std::vector<int32_t>(sx.begin(), sx.end()));
    }
  }
  BlockSet a = randomBlocks(r, 2, 4, 77, 130, 16, 16, 0.4);
  BlockSet otherHeads = randomBlocks(r, 2, 2, 77, 130, 16, 16, 0.4);
  BlockSet otherBlocks = randomBlocks(r, 2, 4, 77, 130, 16, 32, 0.4);
  REQUIRE_THROWS_WITH(unite(a, otherHeads), Contains("same one"));
  REQUIRE_THROWS_AS(intersect(a, otherBlocks), Error);
}
