//===- test_metrics.cpp - §13 recall, density and relative error ----------===//
//
// Metrics against brute-force recomputation: recall from a naive softmax
// over the sampled rows, density by counting block pairs token by token,
// and the relative error from its formula; plus the fixed points (dense
// attention has recall 1 and error 0, causal attention has density 1).
//
//===----------------------------------------------------------------------===//

#include "Brute.h"

using namespace brute;
using Catch::Matchers::Contains;

namespace {

/// Recall with the attended set given by `attends` (token-level brute force).
double bruteRecall(const Tensor &q, const Tensor &k, bool causal, const KeyPred &attends,
                   int64_t rows = 256) {
  int64_t B = q.shape[0], Hq = q.shape[1], Sq = q.shape[2], D = q.shape[3];
  int64_t Hkv = k.shape[1], Skv = k.shape[2], M = std::min<int64_t>(rows, Sq);
  double scale = 1.0 / std::sqrt(static_cast<double>(D)), sum = 0.0;
  int64_t n = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h)
      for (int64_t m = 0; m < M; ++m) {
        auto i = static_cast<int64_t>(
            std::floor(static_cast<double>(m) * static_cast<double>(Sq) / static_cast<double>(M)));
        double z = 0.0, hit = 0.0;
        for (int64_t j = 0; j < Skv; ++j) {
          if (causal && j > i + Skv - Sq)
            continue;
          double e = std::exp(scale * dotRows(q, b, h, i, k, b, h / (Hq / Hkv), j));
          z += e;
          if (attends(b, h, i, j))
            hit += e;
        }
        if (z == 0.0)
          continue;
        sum += hit / z;
        ++n;
      }
  return sum / static_cast<double>(n);
}

/// Attended pairs / causally valid pairs, counted token by token.
double bruteDensity(int64_t B, int64_t Hq, int64_t Sq, int64_t Skv, int64_t bq, int64_t bk,
                    bool causal, const KeyPred &attends) {
  int64_t attended = 0, valid = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h)
      for (int64_t I = 0; I < ceilDiv(Sq, bq); ++I)
        for (int64_t J = 0; J < ceilDiv(Skv, bk); ++J) {
          bool any = false, ok = false;
          for (int64_t i = I * bq; i < std::min(Sq, (I + 1) * bq); ++i)
            for (int64_t j = J * bk; j < std::min(Skv, (J + 1) * bk); ++j) {
              any = any || attends(b, h, i, j);
              ok = ok || !causal || j <= i + Skv - Sq;
            }
          attended += any;
          valid += ok;
        }
  return static_cast<double>(attended) / static_cast<double>(valid);
}

} // namespace

TEST_CASE("dense attention has recall 1, error 0 and density 1", "[metrics]") {
  Rng r(0x3E7C001);
  for (bool causal : {true, false}) {
    Tensor q = randn({2, 4, 300, 8}, r), k = randn({2, 2, 300, 8}, r), v = randn({2, 2, 300, 8}, r);
    Attended a;
    a.params.mask.causal = causal;
    REQUIRE(close(recall(q, k, a), 1.0));
    REQUIRE(density(q, k, a) == 1.0); // 128x128 blocks, 3x3 of them
    AttentionResult o = attention(q, k, v, nullptr, nullptr, a.params);
    REQUIRE(relativeError(o.out, o.out) == 0.0);
  }
}

TEST_CASE("recall and density of a windowed attention", "[metrics]") {
  Rng r(0x3E7C002);
  struct Cfg {
    int64_t Sq, Skv;
  };
  for (Cfg c : {Cfg{300, 300}, Cfg{77, 130}, Cfg{130, 77}}) {
    Tensor q = randn({2, 4, c.Sq, 8}, r, 1.5), k = randn({2, 2, c.Skv, 8}, r, 1.5);
    Attended a;
    a.params.mask = {true, 50, 4};
    auto attends = [&](int64_t, int64_t, int64_t i, int64_t j) {
      return tokenAllowed(true, 50, 4, i, j, c.Sq, c.Skv);
    };
    REQUIRE(close(recall(q, k, a), bruteRecall(q, k, true, attends)));
    // 257 rows (the benchmarks' unaligned rows): other rows once Sq > 256.
    REQUIRE(close(recall(q, k, a, kUnalignedRecallRows),
                  bruteRecall(q, k, true, attends, kUnalignedRecallRows)));
    REQUIRE(close(density(q, k, a), bruteDensity(2, 4, c.Sq, c.Skv, 128, 128, true, attends)));
  }
}

TEST_CASE("recall and density of block-sparse attention with lazy rows", "[metrics]") {
  Rng r(0x3E7C003);
  const int64_t Sq = 150, Skv = 200;
  Tensor q = randn({2, 4, Sq, 8}, r), k = randn({2, 2, Skv, 8}, r);
  BlockSet bs = randomBlocks(r, 2, 2, Sq, Skv, 16, 32, 0.5); // per group
  QuerySet qs{2, 4, Sq, std::vector<std::vector<int32_t>>(8)};
  for (auto &l : qs.active)
    for (int64_t i = 0; i < Sq; ++i)
      if (r.coin(0.7))
        l.push_back(static_cast<int32_t>(i));
  for (LazyPolicy policy : {LazyPolicy::Local, LazyPolicy::Zero}) {
    Attended a;
    a.blocks = &bs;
    a.queries = &qs;
    a.params.mask.causal = true;
    a.params.lazy = policy;
    a.params.lazyWindow = 20;
    a.params.lazySinks = 3;
    auto attends = [&](int64_t b, int64_t h, int64_t i, int64_t j) {
      int64_t pos = i + Skv - Sq;
      if (!inList(qs.active[static_cast<size_t>(b * 4 + h)], i))
        return policy == LazyPolicy::Local && j <= pos && (j > pos - 20 || j < 3);
      return j <= pos &&
             inList(bs.lists[static_cast<size_t>((b * 2 + h / 2) * bs.nQB + i / 16)], j / 32);
    };
    REQUIRE(close(recall(q, k, a), bruteRecall(q, k, true, attends)));
    REQUIRE(close(density(q, k, a), bruteDensity(2, 4, Sq, Skv, 16, 32, true, attends)));
  }
}

TEST_CASE("density of a top-1 causal selection is the fraction it must be", "[metrics]") {
  Rng r(0x3E7C004);
  const int64_t Sq = 130, Skv = 130;
  Scores s = makeScores(1, 2, Sq, Skv, 16, 16, true);
  for (double &x : s.v)
    x = r.uniform();
  BlockSet one = selectTopK(s, nullptr, 1, Forced{}, 2);
  Tensor q = randn({1, 2, Sq, 8}, r), k = randn({1, 2, Skv, 8}, r);
  Attended a;
  a.blocks = &one;
  a.params.mask.causal = true;
  // Query block I sees I + 1 blocks and attends exactly one of them.
  int64_t nQB = 9, valid = 0;
  for (int64_t I = 0; I < nQB; ++I)
    valid += I + 1;
  REQUIRE(close(density(q, k, a), static_cast<double>(nQB) / static_cast<double>(valid)));
  // And a causal static block set keeps the density at exactly 1.
  BlockSet causal = staticBlocks(1, 2, Sq, Skv, 16, 16, Mask{true, 0, 0});
  a.blocks = &causal;
  REQUIRE(density(q, k, a) == 1.0);
  REQUIRE(close(recall(q, k, a), 1.0));
}

TEST_CASE("density from intervals equals the token-by-token count", "[metrics]") {
  // The fast density (interval covers) against bruteDensity over the very
  // predicate attention() uses, on random masks, block and query sets.
  Rng r(0x3E7C006);
  for (int trial = 0; trial < 60; ++trial) {
    const int64_t B = 2, Hq = 4, Hkv = r.coin(0.5) ? 2 : 4;
    const int64_t Sq = 1 + int64_t(r.uniform() * 200), Skv = 1 + int64_t(r.uniform() * 200);
    const int64_t bq = r.coin(0.5) ? 16 : 32, bk = r.coin(0.5) ? 16 : 64;
    Attended a;
    a.params.mask.causal = r.coin(0.7);
    if (a.params.mask.causal && r.coin(0.5))
      a.params.mask.window = 1 + int64_t(r.uniform() * 70),
      a.params.mask.sinks = int64_t(r.uniform() * 9);
    BlockSet bs = randomBlocks(r, B, r.coin(0.5) ? Hq : Hkv, Sq, Skv, bq, bk, 0.4);
    if (r.coin(0.7))
      a.blocks = &bs;
    QuerySet qs{B, Hq, Sq, std::vector<std::vector<int32_t>>(size_t(B * Hq))};
    for (auto &l : qs.active)
      for (int64_t i = 0; i < Sq; ++i)
        if (r.coin(0.5))
          l.push_back(static_cast<int32_t>(i));
    if (r.coin(0.6))
      a.queries = &qs;
    a.params.lazy = r.coin(0.8) ? LazyPolicy::Local : LazyPolicy::Zero;
    a.params.lazyWindow = int64_t(r.uniform() * 80), a.params.lazySinks = int64_t(r.uniform() * 6);
    Tensor q({B, Hq, Sq, 4}), k({B, Hkv, Skv, 4});
    detail::KeySets sets(B, Hq, Hkv, Sq, Skv, a.blocks, a.queries, a.params);
    std::vector<char> keys;
    auto attends = [&](int64_t b, int64_t h, int64_t i, int64_t j) {
      sets.row(b, h, i, keys);
      return keys[static_cast<size_t>(j)] != 0;
    };
    int64_t dbq = a.blocks ? bq : 128, dbk = a.blocks ? bk : 128;
    INFO("trial " << trial << " Sq " << Sq << " Skv " << Skv << " causal " << a.params.mask.causal
                  << " window " << a.params.mask.window << " blocks " << bool(a.blocks)
                  << " queries " << bool(a.queries));
    bool anyValid = false;
    for (int64_t I = 0; I < ceilDiv(Sq, dbq); ++I)
      anyValid = anyValid || !visibleBlocks(I, dbq, dbk, Sq, Skv, a.params.mask.causal).empty();
    if (!anyValid) {
      REQUIRE(density(q, k, a) == 0.0);
      continue;
    }
    REQUIRE(close(density(q, k, a),
                  bruteDensity(B, Hq, Sq, Skv, dbq, dbk, a.params.mask.causal, attends)));
  }
}

TEST_CASE("relative error is the Frobenius ratio", "[metrics]") {
  Rng r(0x3E7C005);
  Tensor a = randn({2, 3, 7, 5}, r), b = randn({2, 3, 7, 5}, r);
  double num = 0.0, den = 0.0;
  for (size_t x = 0; x < a.data.size(); ++x) {
    num += (a.data[x] - b.data[x]) * (a.data[x] - b.data[x]);
    den += b.data[x] * b.data[x];
  }
  REQUIRE(close(relativeError(a, b), std::sqrt(num / den)));
  Tensor zero({2, 3, 7, 5});
  REQUIRE(relativeError(zero, zero) == 0.0);
  REQUIRE(std::isinf(relativeError(a, zero)));
  REQUIRE_THROWS_WITH(relativeError(a, Tensor({2, 3, 7, 4})), Contains("shapes must match"));
}
