//===- test_attention.cpp - §1/§2 masks and attention vs brute force ------===//
//
// attention() against a dense [Sq, Skv] mask evaluated token by token from
// the rules and a naive softmax: causal / window / sinks masks, lengths that
// are not block multiples, Sq != Skv (empty rows), GQA and MQA, per-head and
// per-group block sets, lazy query rows, and the input errors.
//
//===----------------------------------------------------------------------===//

#include "Brute.h"

using namespace brute;
using Catch::Matchers::Contains;

namespace {

const double kInf = std::numeric_limits<double>::infinity();

struct Case {
  int64_t B, Hq, Hkv, Sq, Skv, D;
};

// Not block multiples, both Sq < Skv and Sq > Skv, GQA, MQA, batch > 1.
const Case kCases[] = {{2, 4, 2, 77, 130, 16}, {2, 4, 1, 130, 77, 8}, {1, 2, 2, 64, 64, 8},
                       {3, 4, 2, 1, 50, 8},    {2, 2, 1, 50, 3, 8},   {1, 3, 3, 33, 0, 8}};

struct Inputs {
  Tensor q, k, v;
};

Inputs randomInputs(const Case &c, Rng &r) {
  return {randn({c.B, c.Hq, c.Sq, c.D}, r), randn({c.B, c.Hkv, c.Skv, c.D}, r),
          randn({c.B, c.Hkv, c.Skv, c.D}, r)};
}

void requireEmptyRowsClean(const AttentionResult &got) {
  requireNoNaN(got.out);
  requireNoNaN(got.lse);
  int64_t D = got.out.shape[3];
  for (size_t row = 0; row < got.lse.data.size(); ++row)
    if (got.lse.data[row] == -kInf)
      for (int64_t d = 0; d < D; ++d)
        REQUIRE(got.out.data[row * static_cast<size_t>(D) + static_cast<size_t>(d)] == 0.0);
}

} // namespace

TEST_CASE("Tensor shape and fill", "[values]") {
  Tensor t({2, 3, 4}, 1.5);
  REQUIRE(t.numel() == 24);
  REQUIRE(t.data.size() == 24);
  REQUIRE(t.data[23] == 1.5);
  REQUIRE(Tensor({0, 5}).numel() == 0);
  REQUIRE_THROWS_WITH(Tensor({2, -1}), Contains("negative"));
}

TEST_CASE("token mask and block helpers follow §1 and §5", "[masks]") {
  Rng r(0xA77E1);
  for (int trial = 0; trial < 40; ++trial) {
    int64_t Sq = r.range(1, 90), Skv = r.range(1, 90), bq = r.range(1, 20), bk = r.range(1, 20);
    bool causal = r.coin(0.7);
    int64_t W = causal ? r.range(0, 30) : 0, n = W > 0 ? r.range(0, 10) : 0;
    Mask m{causal, W, n};
    for (int64_t i = 0; i < Sq; ++i)
      for (int64_t j = -1; j <= Skv; ++j)
        REQUIRE(allowed(m, i, j, Sq, Skv) == tokenAllowed(causal, W, n, i, j, Sq, Skv));
    Forced f{r.range(0, 3), r.range(0, 3), r.coin(0.5)};
    for (int64_t I = 0; I < ceilDiv(Sq, bq); ++I) {
      REQUIRE(visibleBlocks(I, bq, bk, Sq, Skv, causal) == visible(I, bq, bk, Sq, Skv, causal));
      REQUIRE(forcedBlocks(f, I, bq, bk, Sq, Skv, causal) == forced(f, I, bq, bk, Sq, Skv, causal));
    }
  }
  REQUIRE(cdiv(130, 16) == 9);
  REQUIRE(diagonalKey(0, 16, 130, 77) == 15 + 77 - 130); // negative: no diagonal
  REQUIRE(visibleBlocks(0, 16, 16, 130, 77, true).empty());
}

TEST_CASE("attention with token masks matches a dense brute-force mask", "[attention]") {
  Rng r(0x5EED0001);
  const Mask masks[] = {{false, 0, 0}, {true, 0, 0}, {true, 20, 0}, {true, 9, 4}};
  for (const Case &c : kCases)
    for (const Mask &m : masks) {
      INFO("B=" << c.B << " Hq=" << c.Hq << " Hkv=" << c.Hkv << " Sq=" << c.Sq << " Skv=" << c.Skv
                << " causal=" << m.causal << " W=" << m.window << " n=" << m.sinks);
      Inputs in = randomInputs(c, r);
      AttentionParams p;
      p.mask = m;
      AttentionResult got = attention(in.q, in.k, in.v, nullptr, nullptr, p);
      AttentionResult want = naiveAttention(
          in.q, in.k, in.v,
          [&](int64_t, int64_t, int64_t i, int64_t j) {
            return tokenAllowed(m.causal, m.window, m.sinks, i, j, c.Sq, c.Skv);
          },
          1.0 / std::sqrt(static_cast<double>(c.D)));
      requireClose(got.out, want.out);
      requireClose(got.lse, want.lse);
      requireEmptyRowsClean(got);
    }
}

TEST_CASE("causal rows above the aligned diagonal are empty", "[attention]") {
  Rng r(0x5EED0002);
  Case c{1, 2, 1, 40, 25, 8}; // rows 0..14 have i' < 0
  Inputs in = randomInputs(c, r);
  AttentionParams p;
  p.mask.causal = true;
  AttentionResult got = attention(in.q, in.k, in.v, nullptr, nullptr, p);
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t i = 0; i < 40; ++i) {
      bool empty = i + 25 - 40 < 0;
      REQUIRE((got.lse.at3(0, h, i) == -kInf) == empty);
      if (empty)
        for (int64_t d = 0; d < 8; ++d)
          REQUIRE(got.out.at(0, h, i, d) == 0.0);
    }
}

TEST_CASE("attention with per-head and per-group block sets", "[attention][blocks]") {
  Rng r(0x5EED0003);
  const std::pair<int64_t, int64_t> blockSizes[] = {{16, 16}, {16, 32}, {32, 8}};
  for (const Case &c : kCases)
    for (auto [bq, bk] : blockSizes)
      for (int64_t H : {c.Hq, c.Hkv})
        for (bool causal : {false, true}) {
          INFO("Sq=" << c.Sq << " Skv=" << c.Skv << " blocks " << bq << "x" << bk << " H=" << H
                     << " causal=" << causal);
          Inputs in = randomInputs(c, r);
          BlockSet bs = randomBlocks(r, c.B, H, c.Sq, c.Skv, bq, bk, 0.5);
          AttentionParams p;
          p.mask.causal = causal;
          p.scale = 0.3;
          AttentionResult got = attention(in.q, in.k, in.v, &bs, nullptr, p);
          int64_t g = c.Hq / c.Hkv;
          AttentionResult want = naiveAttention(
              in.q, in.k, in.v,
              [&](int64_t b, int64_t h, int64_t i, int64_t j) {
                int64_t hb = H == c.Hq ? h : h / g;
                return tokenAllowed(causal, 0, 0, i, j, c.Sq, c.Skv) &&
                       inList(bs.lists[static_cast<size_t>((b * H + hb) * bs.nQB + i / bq)],
                              j / bk);
              },
              0.3);
          requireClose(got.out, want.out);
          requireClose(got.lse, want.lse);
          requireEmptyRowsClean(got);
        }
}

TEST_CASE("a block set holding every visible block changes nothing", "[attention][blocks]") {
  Rng r(0x5EED0004);
  const Mask masks[] = {{false, 0, 0}, {true, 0, 0}, {true, 13, 3}};
  for (const Case &c : kCases)
    for (const Mask &m : masks)
      for (int64_t H : {c.Hq, c.Hkv}) {
        Inputs in = randomInputs(c, r);
        BlockSet all = makeBlockSet(c.B, H, c.Sq, c.Skv, 16, 16);
        for (int64_t b = 0; b < c.B; ++b)
          for (int64_t h = 0; h < H; ++h)
            for (int64_t I = 0; I < all.nQB; ++I)
              all.row(b, h, I) = visible(I, 16, 16, c.Sq, c.Skv, m.causal);
        AttentionParams p;
        p.mask = m;
        AttentionResult with = attention(in.q, in.k, in.v, &all, nullptr, p);
        AttentionResult without = attention(in.q, in.k, in.v, nullptr, nullptr, p);
        // Same key sets, same arithmetic: bitwise equal.
        REQUIRE(with.out.data == without.out.data);
        REQUIRE(with.lse.data == without.lse.data);
      }
}

TEST_CASE("lazy rows follow the local and zero policies", "[attention][lazy]") {
  Rng r(0x5EED0005);
  for (const Case &c : kCases)
    for (LazyPolicy policy : {LazyPolicy::Local, LazyPolicy::Zero})
      for (bool withBlocks : {false, true}) {
        INFO("Sq=" << c.Sq << " Skv=" << c.Skv << " zero=" << (policy == LazyPolicy::Zero)
                   << " blocks=" << withBlocks);
        Inputs in = randomInputs(c, r);
        QuerySet qs;
        qs.B = c.B;
        qs.H = c.Hq;
        qs.Sq = c.Sq;
        qs.active.resize(static_cast<size_t>(c.B * c.Hq));
        std::vector<std::vector<char>> isActive(qs.active.size(),
                                                std::vector<char>(static_cast<size_t>(c.Sq)));
        for (size_t bh = 0; bh < qs.active.size(); ++bh)
          for (int64_t i = 0; i < c.Sq; ++i)
            if (r.coin(0.4)) {
              qs.active[bh].push_back(static_cast<int32_t>(i));
              isActive[bh][static_cast<size_t>(i)] = 1;
            }
        BlockSet bs = randomBlocks(r, c.B, c.Hq, c.Sq, c.Skv, 16, 16, 0.4);
        AttentionParams p;
        p.mask = {true, 0, 0};
        p.lazy = policy;
        p.lazyWindow = 11;
        p.lazySinks = 5;
        AttentionResult got = attention(in.q, in.k, in.v, withBlocks ? &bs : nullptr, &qs, p);
        AttentionResult want = naiveAttention(
            in.q, in.k, in.v,
            [&](int64_t b, int64_t h, int64_t i, int64_t j) {
              int64_t pos = i + c.Skv - c.Sq;
              if (!isActive[static_cast<size_t>(b * c.Hq + h)][static_cast<size_t>(i)]) {
                if (policy == LazyPolicy::Zero)
                  return false;
                return j <= pos && (j > pos - 11 || j < 5);
              }
              bool ok = j <= pos;
              if (withBlocks)
                ok = ok && inList(bs.lists[static_cast<size_t>((b * c.Hq + h) * bs.nQB + i / 16)],
                                  j / 16);
              return ok;
            },
            1.0 / std::sqrt(static_cast<double>(c.D)));
        requireClose(got.out, want.out);
        requireClose(got.lse, want.lse);
        requireEmptyRowsClean(got);
      }
}

TEST_CASE("large logits do not overflow", "[attention][numerics]") {
  // logits 0, s*1e6, 2*s*1e6: a plain exp would overflow to inf.
  Tensor q({1, 1, 1, 8}), k({1, 1, 3, 8}), v({1, 1, 3, 8});
  q.at(0, 0, 0, 0) = 1e6;
  for (int64_t j = 0; j < 3; ++j) {
    k.at(0, 0, j, 0) = static_cast<double>(j);
    for (int64_t d = 0; d < 8; ++d)
      v.at(0, 0, j, d) = static_cast<double>(10 * j + d);
  }
  AttentionParams p;
  p.mask.causal = true;
  AttentionResult got = attention(q, k, v, nullptr, nullptr, p);
  double s = 1.0 / std::sqrt(8.0);
  REQUIRE(close(got.lse.at3(0, 0, 0), 2e6 * s));
  for (int64_t d = 0; d < 8; ++d)
    REQUIRE(got.out.at(0, 0, 0, d) == static_cast<double>(20 + d));
  requireNoNaN(got.out);
}

TEST_CASE("attention rejects malformed inputs with a message", "[attention][errors]") {
  Rng r(0x5EED0006);
  Tensor q = randn({2, 4, 10, 8}, r), k = randn({2, 2, 12, 8}, r), v = randn({2, 2, 12, 8}, r);
  AttentionParams p;
  REQUIRE_NOTHROW(attention(q, k, v, nullptr, nullptr, p));
  REQUIRE_THROWS_WITH(attention(randn({2, 4, 10, 4}, r), k, v, nullptr, nullptr, p),
                      Contains("head dim"));
  REQUIRE_THROWS_WITH(attention(q, k, randn({2, 2, 12, 4}, r), nullptr, nullptr, p),
                      Contains("same shape"));
  REQUIRE_THROWS_WITH(attention(randn({2, 3, 10, 8}, r), k, v, nullptr, nullptr, p),
                      Contains("Hq % Hkv"));
  REQUIRE_THROWS_WITH(attention(randn({1, 4, 10, 8}, r), k, v, nullptr, nullptr, p),
                      Contains("batch"));
  BlockSet other = randomBlocks(r, 2, 4, 11, 12, 4, 4, 0.5); // built for Sq = 11
  REQUIRE_THROWS_WITH(attention(q, k, v, &other, nullptr, p), Contains("Sq=11"));
  BlockSet badHeads = randomBlocks(r, 2, 3, 10, 12, 4, 4, 0.5);
  REQUIRE_THROWS_WITH(attention(q, k, v, &badHeads, nullptr, p), Contains("3 heads"));
  BlockSet outOfRange = randomBlocks(r, 2, 4, 10, 12, 4, 4, 0.5);
  outOfRange.lists[0].push_back(3);
  REQUIRE_THROWS_WITH(attention(q, k, v, &outOfRange, nullptr, p),
                      Contains("KV block 3 outside [0, 3)"));
  QuerySet qs{2, 4, 10, std::vector<std::vector<int32_t>>(8)};
  qs.active[5].push_back(10);
  REQUIRE_THROWS_WITH(attention(q, k, v, nullptr, &qs, p), Contains("row 10"));
  AttentionParams windowNoCausal;
  windowNoCausal.mask.window = 4;
  REQUIRE_THROWS_WITH(attention(q, k, v, nullptr, nullptr, windowNoCausal),
                      Contains("needs causal"));
  Tensor nan = q;
  nan.data[7] = std::nan("");
  REQUIRE_THROWS_WITH(attention(nan, k, v, nullptr, nullptr, p), Contains("non-finite"));
  Tensor truncated = q;
  truncated.data.pop_back();
  REQUIRE_THROWS_AS(attention(truncated, k, v, nullptr, nullptr, p), Error);
}
