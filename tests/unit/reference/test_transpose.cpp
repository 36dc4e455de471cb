//===- test_transpose.cpp - Block sets read by KV block -------------------===//
//
// transposeBlockSet against pair-by-pair membership: (I, J) is in row
// (b, h, I) of the source iff I is in column (b, h, J) of the transpose,
// columns ascending and duplicate-free, on random sets of many shapes
// (nQB != nKB, empty and full rows, B > 1, sets built per query head and per
// KV group). The membership checker is itself shown to reject wrong
// transposes (a dropped last query block, mixed heads or batches, unsorted
// or repeated columns), and transposing twice gives back the source. A
// malformed source is an Error naming the row.
//
//===----------------------------------------------------------------------===//

#include "Brute.h"

#include <string>

using namespace brute;
using Catch::Matchers::Contains;

namespace {

/// Empty when t is exactly the transpose of s; otherwise the first thing wrong.
std::string mismatch(const BlockSet &s, const TransposedBlockSet &t) {
  if (t.B != s.B || t.H != s.H || t.nQB != s.nQB || t.nKB != s.nKB || t.bq != s.bq ||
      t.bk != s.bk || t.Sq != s.Sq || t.Skv != s.Skv)
    return "geometry differs from the source";
  if (static_cast<int64_t>(t.lists.size()) != s.B * s.H * s.nKB)
    return "wrong number of columns: " + std::to_string(t.lists.size());
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h)
      for (int64_t J = 0; J < s.nKB; ++J) {
        const std::vector<int32_t> &col = t.col(b, h, J);
        for (size_t x = 0; x < col.size(); ++x) {
          if (col[x] < 0 || col[x] >= s.nQB)
            return "column entry out of range";
          if (x > 0 && col[x] <= col[x - 1])
            return "column (" + std::to_string(b) + ", " + std::to_string(h) + ", " +
                   std::to_string(J) + ") not ascending without duplicates";
        }
        for (int64_t I = 0; I < s.nQB; ++I)
          if (inList(s.row(b, h, I), J) != inList(col, I))
            return "pair (b=" + std::to_string(b) + ", h=" + std::to_string(h) +
                   ", I=" + std::to_string(I) + ", J=" + std::to_string(J) + ") is " +
                   (inList(col, I) ? "only in the transpose" : "only in the source");
      }
  return "";
}

/// The inverse by brute force: row (b, h, I) = every J whose column holds I.
std::vector<std::vector<int32_t>> rowsOf(const TransposedBlockSet &t) {
  std::vector<std::vector<int32_t>> rows(static_cast<size_t>(t.B * t.H * t.nQB));
  for (int64_t b = 0; b < t.B; ++b)
    for (int64_t h = 0; h < t.H; ++h)
      for (int64_t I = 0; I < t.nQB; ++I)
        for (int64_t J = 0; J < t.nKB; ++J)
          if (inList(t.col(b, h, J), I))
            rows[static_cast<size_t>((b * t.H + h) * t.nQB + I)].push_back(static_cast<int32_t>(J));
  return rows;
}

/// The transpose read as a block set of the swapped geometry (queries and
/// keys exchanged), so that transposeBlockSet can be applied to it again.
BlockSet asBlockSet(const TransposedBlockSet &t) {
  BlockSet s;
  s.B = t.B, s.H = t.H, s.nQB = t.nKB, s.nKB = t.nQB;
  s.bq = t.bk, s.bk = t.bq, s.Sq = t.Skv, s.Skv = t.Sq;
  s.lists = t.lists;
  return s;
}

/// Rows drawn empty, full or random (each block with probability p).
BlockSet mixedRows(Rng &r, int64_t B, int64_t H, int64_t Sq, int64_t Skv, int64_t bq, int64_t bk,
                   double p) {
  BlockSet s = makeBlockSet(B, H, Sq, Skv, bq, bk);
  for (auto &l : s.lists) {
    int64_t mode = r.range(0, 3); // 0 empty, 1 full, else random
    for (int64_t J = 0; J < s.nKB; ++J)
      if (mode == 1 || (mode >= 2 && r.coin(p)))
        l.push_back(static_cast<int32_t>(J));
  }
  return s;
}

void checkRoundTrip(const BlockSet &s) {
  TransposedBlockSet t = transposeBlockSet(s);
  CHECK(mismatch(s, t).empty());
  CHECK(rowsOf(t) == s.lists);
  TransposedBlockSet tt = transposeBlockSet(asBlockSet(t));
  CHECK(tt.lists == s.lists);
  CHECK((tt.nQB == s.nKB && tt.nKB == s.nQB && tt.Sq == s.Skv && tt.bq == s.bk));
}

} // namespace

TEST_CASE("transpose: a hand-checked set", "[transpose]") {
  // B=1, H=2, Sq=40, Skv=70, 16x16 blocks: nQB = 3, nKB = 5.
  BlockSet s = makeBlockSet(1, 2, 40, 70, 16, 16);
  s.row(0, 0, 0) = {0, 2, 4};
  s.row(0, 0, 1) = {};
  s.row(0, 0, 2) = {0, 1, 2, 3, 4};
  s.row(0, 1, 0) = {1};
  s.row(0, 1, 1) = {1, 4};
  s.row(0, 1, 2) = {4};
  TransposedBlockSet t = transposeBlockSet(s);
  CHECK((t.B == 1 && t.H == 2 && t.nQB == 3 && t.nKB == 5));
  CHECK((t.bq == 16 && t.bk == 16 && t.Sq == 40 && t.Skv == 70));
  REQUIRE(t.lists.size() == 10);
  CHECK(t.col(0, 0, 0) == std::vector<int32_t>{0, 2});
  CHECK(t.col(0, 0, 1) == std::vector<int32_t>{2});
  CHECK(t.col(0, 0, 2) == std::vector<int32_t>{0, 2});
  CHECK(t.col(0, 0, 3) == std::vector<int32_t>{2});
  CHECK(t.col(0, 0, 4) == std::vector<int32_t>{0, 2});
  CHECK(t.col(0, 1, 0).empty());
  CHECK(t.col(0, 1, 1) == std::vector<int32_t>{0, 1});
  CHECK(t.col(0, 1, 2).empty());
  CHECK(t.col(0, 1, 3).empty());
  CHECK(t.col(0, 1, 4) == std::vector<int32_t>{1, 2});
  CHECK(mismatch(s, t).empty());
}

TEST_CASE("transpose: random sets against pair membership", "[transpose]") {
  Rng r(2024);
  // Fixed shapes first (nQB < nKB, nQB > nKB, one block, no blocks), then random ones.
  struct Shape {
    int64_t B, H, Sq, Skv, bq, bk;
  };
  std::vector<Shape> shapes = {{1, 1, 40, 100, 16, 16}, {2, 3, 100, 40, 16, 16},
                               {3, 2, 64, 64, 64, 64},  {2, 2, 1, 1, 16, 16},
                               {2, 2, 0, 50, 16, 16},   {2, 2, 50, 0, 16, 16},
                               {1, 4, 37, 45, 8, 16},   {2, 1, 45, 37, 16, 8}};
  for (int trial = 0; trial < 60; ++trial)
    shapes.push_back({r.range(1, 3), r.range(1, 4), r.range(0, 90), r.range(0, 90), r.range(1, 20),
                      r.range(1, 20)});
  for (const Shape &sh : shapes)
    for (double p : {0.0, 0.3, 0.8, 1.0}) {
      INFO("B=" << sh.B << " H=" << sh.H << " Sq=" << sh.Sq << " Skv=" << sh.Skv << " blocks "
                << sh.bq << "x" << sh.bk << " p=" << p);
      checkRoundTrip(randomBlocks(r, sh.B, sh.H, sh.Sq, sh.Skv, sh.bq, sh.bk, p));
      checkRoundTrip(mixedRows(r, sh.B, sh.H, sh.Sq, sh.Skv, sh.bq, sh.bk, p));
    }
}

TEST_CASE("transpose: selected sets per query head and per KV group", "[transpose]") {
  Rng r(31);
  const int64_t B = 2, Hq = 4, Hkv = 2;
  for (bool causal : {true, false})
    for (int64_t outHeads : {Hq, Hkv}) {
      INFO("causal=" << causal << " heads=" << outHeads);
      int64_t Sq = 70, Skv = 110, bq = 16, bk = 8;
      Scores s = makeScores(B, Hq, Sq, Skv, bq, bk, causal);
      for (double &x : s.v)
        x = r.uniform();
      BlockSet top = selectTopK(s, nullptr, int64_t{3}, Forced{1, 1, true}, outHeads);
      REQUIRE(top.H == outHeads);
      checkRoundTrip(top);
      BlockSet cum = selectCumulative(s, 0.6, nullptr, std::nullopt, Forced{}, outHeads);
      checkRoundTrip(cum);
      checkRoundTrip(staticBlocks(B, outHeads, Sq, Skv, bq, bk,
                                  Mask{causal, causal ? 30 : 0, causal ? 4 : 0}));
    }
}

TEST_CASE("transpose: the membership check rejects wrong transposes", "[transpose]") {
  Rng r(8);
  // B=2, H=2, nQB = 4, nKB = 6; the last query block's rows are full, the
  // heads and batches differ, so every corruption below changes some pair.
  BlockSet s = randomBlocks(r, 2, 2, 60, 90, 16, 16, 0.5);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < 2; ++h)
      s.row(b, h, 3) = {0, 1, 2, 3, 4, 5};
  s.row(0, 0, 0) = {0, 1};
  s.row(0, 1, 0) = {2};
  s.row(1, 0, 0) = {3, 4};
  const TransposedBlockSet t = transposeBlockSet(s);
  REQUIRE(mismatch(s, t).empty());

  TransposedBlockSet dropLast = t; // a loop bound of nQB - 1
  for (auto &col : dropLast.lists)
    col.erase(std::remove(col.begin(), col.end(), 3), col.end());
  CHECK_THAT(mismatch(s, dropLast), Contains("I=3") && Contains("only in the source"));

  TransposedBlockSet mixedHeads = t; // every head reading head 0
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t J = 0; J < 6; ++J)
      mixedHeads.col(b, 1, J) = t.col(b, 0, J);
  CHECK_FALSE(mismatch(s, mixedHeads).empty());

  TransposedBlockSet mixedBatches = t; // batch 1 reading batch 0
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t J = 0; J < 6; ++J)
      mixedBatches.col(1, h, J) = t.col(0, h, J);
  CHECK_FALSE(mismatch(s, mixedBatches).empty());

  TransposedBlockSet unsorted = t;
  std::reverse(unsorted.col(0, 0, 0).begin(), unsorted.col(0, 0, 0).end());
  REQUIRE(unsorted.col(0, 0, 0).size() >= 2);
  CHECK_THAT(mismatch(s, unsorted), Contains("not ascending"));

  TransposedBlockSet repeated = t;
  repeated.col(1, 1, 5).push_back(3);
  CHECK_THAT(mismatch(s, repeated), Contains("not ascending"));

  TransposedBlockSet shortLists = t; // columns counted per query block
  shortLists.lists.resize(static_cast<size_t>(2 * 2 * 4));
  CHECK_THAT(mismatch(s, shortLists), Contains("wrong number of columns"));
}

TEST_CASE("transpose: malformed block sets are errors naming the row", "[transpose]") {
  // nQB = 3, nKB = 4.
  BlockSet s = makeBlockSet(2, 2, 40, 50, 16, 16);
  CHECK_NOTHROW(transposeBlockSet(s));
  s.row(1, 0, 2) = {0, 3};
  CHECK_NOTHROW(transposeBlockSet(s));

  BlockSet bad = s;
  bad.row(1, 0, 2) = {0, 4};
  REQUIRE_THROWS_AS(transposeBlockSet(bad), Error);
  REQUIRE_THROWS_WITH(transposeBlockSet(bad),
                      Contains("block set row (b=1, h=0, I=2) names KV block 4 outside [0, 4)"));
  bad.row(1, 0, 2) = {-1, 2};
  REQUIRE_THROWS_WITH(transposeBlockSet(bad), Contains("names KV block -1 outside [0, 4)"));

  bad = s;
  bad.row(0, 1, 1) = {2, 1};
  REQUIRE_THROWS_WITH(transposeBlockSet(bad),
                      Contains("row (b=0, h=1, I=1) is not ascending without duplicates (1 "
                               "follows 2)"));
  bad.row(0, 1, 1) = {0, 2, 2, 3};
  REQUIRE_THROWS_WITH(transposeBlockSet(bad),
                      Contains("row (b=0, h=1, I=1) is not ascending without duplicates (2 "
                               "follows 2)"));

  bad = s;
  bad.lists.pop_back();
  REQUIRE_THROWS_WITH(transposeBlockSet(bad),
                      Contains("block set holds 11 lists but B*H*nQB = 12"));

  bad = s;
  bad.nKB = 5;
  REQUIRE_THROWS_WITH(transposeBlockSet(bad),
                      Contains("block set has 3x5 blocks but Sq=40, Skv=50 with blocks 16x16 "
                               "need 3x4"));
  bad = s;
  bad.bk = 0;
  REQUIRE_THROWS_WITH(transposeBlockSet(bad), Contains("invalid geometry"));
}
