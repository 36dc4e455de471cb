//===- test_block_list.cpp - §14 block sets given as input ----------------===//
//
// blockSetFromList against std::set built from the raw list: any order,
// repeats and -1 padding give the sorted, duplicate-free set; every shape
// or value outside the contract is an Error naming the input, the row, the
// value and the valid range. Attention over a list equals attention over
// the computed set it describes.
//
//===----------------------------------------------------------------------===//

#include "Brute.h"

using namespace brute;
using Catch::Matchers::Contains;

namespace {

/// A list [B, H, nQB, cap] from rows given in (b, h, I) order, -1 padded.
Tensor listOf(int64_t B, int64_t H, int64_t nQB, int64_t cap,
              const std::vector<std::vector<int>> &rows) {
  Tensor t({B, H, nQB, cap}, -1.0);
  REQUIRE(static_cast<int64_t>(rows.size()) == B * H * nQB);
  for (size_t r = 0; r < rows.size(); ++r)
    for (size_t s = 0; s < rows[r].size(); ++s)
      t.data[r * static_cast<size_t>(cap) + s] = rows[r][s];
  return t;
}

} // namespace

TEST_CASE("block lists: sorted, duplicate-free sets; -1 and repeats ignored", "[block_list]") {
  // B=1, H=2, Sq=40, Skv=50, 16x16 blocks: nQB = 3, nKB = 4.
  Tensor list = listOf(1, 2, 3, 5,
                       {{3, 1, 1, -1, 0},
                        {-1, -1, -1, -1, -1},
                        {2},
                        {0, 1, 2, 3, 3},
                        {-1, 3, -1, 0, -1},
                        {1, 1, 1, 1, 1}});
  BlockSet s = blockSetFromList(list, "input 'blocks'", 1, 2, 40, 50, 16, 16);
  CHECK(s.B == 1);
  CHECK(s.H == 2);
  CHECK(s.nQB == 3);
  CHECK(s.nKB == 4);
  CHECK(s.bq == 16);
  CHECK(s.bk == 16);
  CHECK(s.Sq == 40);
  CHECK(s.Skv == 50);
  CHECK(s.row(0, 0, 0) == std::vector<int32_t>{0, 1, 3});
  CHECK(s.row(0, 0, 1).empty());
  CHECK(s.row(0, 0, 2) == std::vector<int32_t>{2});
  CHECK(s.row(0, 1, 0) == std::vector<int32_t>{0, 1, 2, 3});
  CHECK(s.row(0, 1, 1) == std::vector<int32_t>{0, 3});
  CHECK(s.row(0, 1, 2) == std::vector<int32_t>{1});
}

TEST_CASE("block lists: random lists against std::set", "[block_list]") {
  Rng r(77);
  for (int trial = 0; trial < 50; ++trial) {
    int64_t B = r.range(1, 3), H = r.range(1, 4), bq = r.range(1, 20), bk = r.range(1, 20);
    int64_t Sq = r.range(0, 90), Skv = r.range(0, 90), cap = r.range(1, 12);
    int64_t nQB = ceilDiv(Sq, bq), nKB = ceilDiv(Skv, bk);
    Tensor list({B, H, nQB, cap});
    for (double &x : list.data)
      x = static_cast<double>(r.range(-1, nKB - 1));
    BlockSet s = blockSetFromList(list, "l", B, H, Sq, Skv, bq, bk);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t I = 0; I < nQB; ++I) {
          std::set<int32_t> want;
          for (int64_t x = 0; x < cap; ++x)
            if (list.at(b, h, I, x) >= 0)
              want.insert(static_cast<int32_t>(list.at(b, h, I, x)));
          CHECK(s.row(b, h, I) == std::vector<int32_t>(want.begin(), want.end()));
        }
  }
}

TEST_CASE("block lists: out-of-range entries are errors naming the row", "[block_list]") {
  Tensor list = listOf(2, 1, 3, 2, {{0, -1}, {1, 0}, {2, 1}, {0, 0}, {4, 1}, {0, 0}});
  // nKB = cdiv(50, 16) = 4: valid entries are -1 .. 3.
  REQUIRE_THROWS_WITH(
      blockSetFromList(list, "input 'blocks'", 2, 1, 40, 50, 16, 16),
      Contains("input 'blocks' row (b=1, h=0, I=1) slot 0 holds 4, outside the valid range "
               "[-1, 3] (nKB = cdiv(Skv, bk) = cdiv(50, 16) = 4 KV blocks; -1 marks an unused "
               "slot); list only blocks 0 to 3 or pad with -1"));
  list.at(1, 0, 1, 0) = -2;
  REQUIRE_THROWS_WITH(blockSetFromList(list, "input 'blocks'", 2, 1, 40, 50, 16, 16),
                      Contains("row (b=1, h=0, I=1) slot 0 holds -2, outside the valid range"));
  list.at(1, 0, 1, 0) = 1.5;
  REQUIRE_THROWS_WITH(blockSetFromList(list, "input 'blocks'", 2, 1, 40, 50, 16, 16),
                      Contains("holds 1.5, which is not an integer KV block index"));
  list.at(1, 0, 1, 0) = 3; // the last block is fine
  CHECK(blockSetFromList(list, "input 'blocks'", 2, 1, 40, 50, 16, 16).row(1, 0, 1) ==
        std::vector<int32_t>{1, 3});
  // Skv = 0: no KV block exists, only -1 is valid.
  Tensor empty({1, 1, 1, 2}, -1.0);
  CHECK(blockSetFromList(empty, "e", 1, 1, 5, 0, 16, 16).row(0, 0, 0).empty());
  empty.data[1] = 0;
  REQUIRE_THROWS_WITH(blockSetFromList(empty, "e", 1, 1, 5, 0, 16, 16),
                      Contains("holds 0, outside the valid range [-1, -1]"));
}

TEST_CASE("block lists: wrong shapes are errors naming the expected one", "[block_list]") {
  auto build = [](std::vector<int64_t> shape) {
    return blockSetFromList(Tensor(std::move(shape), -1.0), "input 'blocks'", 2, 4, 40, 50, 16, 16);
  };
  CHECK_NOTHROW(build({2, 4, 3, 1}));
  REQUIRE_THROWS_WITH(build({2, 4, 3}),
                      Contains("input 'blocks' has shape [2, 4, 3] (rank 3) but must be [B, H, "
                               "nQB, cap] = [2, 4, 3, cap >= 1]"));
  REQUIRE_THROWS_WITH(build({1, 4, 3, 2}), Contains("dimension 0 (batch) is 1, expected 2"));
  REQUIRE_THROWS_WITH(build({2, 2, 3, 2}), Contains("dimension 1 (heads) is 2, expected 4"));
  REQUIRE_THROWS_WITH(
      build({2, 4, 4, 2}),
      Contains("nQB = cdiv(Sq, bq) = cdiv(40, 16) = 3 query blocks): dimension 2 (query blocks) "
               "is 4, expected 3"));
  REQUIRE_THROWS_WITH(build({2, 4, 3, 0}),
                      Contains("dimension 3 (cap) is 0; give at least one slot per row"));
}

TEST_CASE("block lists: attention over a list equals attention over the set it names",
          "[block_list]") {
  Rng r(5);
  // GQA 4/2, odd lengths, per-group and per-head sets, causal and not.
  for (int64_t setHeads : {2, 4})
    for (bool causal : {true, false}) {
      int64_t B = 2, Hq = 4, Hkv = 2, Sq = 37, Skv = 45, D = 8, bq = 8, bk = 16;
      Tensor q = randn({B, Hq, Sq, D}, r), k = randn({B, Hkv, Skv, D}, r),
             v = randn({B, Hkv, Skv, D}, r);
      Mask m{true, 20, 0};
      BlockSet computed = staticBlocks(B, setHeads, Sq, Skv, bq, bk, m);
      int64_t cap = computed.nKB + 3;
      Tensor list({B, setHeads, computed.nQB, cap}, -1.0);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < setHeads; ++h)
          for (int64_t I = 0; I < computed.nQB; ++I) {
            // Reversed, the first block repeated at the end, -1 padding between.
            std::vector<int32_t> row = computed.row(b, h, I);
            std::reverse(row.begin(), row.end());
            for (size_t x = 0; x < row.size(); ++x)
              list.at(b, h, I, static_cast<int64_t>(x)) = row[x];
            if (!row.empty())
              list.at(b, h, I, cap - 1) = row.back();
          }
      BlockSet given = blockSetFromList(list, "l", B, setHeads, Sq, Skv, bq, bk);
      CHECK(given.lists == computed.lists);
      AttentionParams p;
      p.mask.causal = causal;
      AttentionResult a = attention(q, k, v, &computed, nullptr, p);
      AttentionResult b = attention(q, k, v, &given, nullptr, p);
      CHECK(a.out.data == b.out.data);
    }
}
