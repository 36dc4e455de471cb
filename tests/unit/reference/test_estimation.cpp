//===- test_estimation.cpp - §3 pool, §4 scores, §10 classify, §11 slim ---===//
//
// The estimators against explicit per-element loops: pooling groups found by
// scanning every token, scores accumulated pair by pair with a naive softmax,
// query classification and KV slimming recomputed from the rules, plus the
// invariants each must keep (mass thresholds, forced tokens, minimality).
//
//===----------------------------------------------------------------------===//

#include "Brute.h"

using namespace brute;
using Catch::Matchers::Contains;

namespace {

/// Naive softmax of the logits where `vis` holds; all zero if none.
std::vector<double> naiveSoftmax(const std::vector<double> &logit, const std::vector<char> &vis) {
  double z = 0.0;
  for (size_t t = 0; t < logit.size(); ++t)
    if (vis[t])
      z += std::exp(logit[t]);
  std::vector<double> p(logit.size(), 0.0);
  for (size_t t = 0; t < logit.size(); ++t)
    if (vis[t])
      p[t] = std::exp(logit[t]) / z;
  return p;
}

/// Mean of the keys whose index / c == t, found by scanning every key.
Tensor brutePoolMean(const Tensor &k, int64_t c) {
  int64_t B = k.shape[0], H = k.shape[1], S = k.shape[2], D = k.shape[3];
  Tensor out({B, H, ceilDiv(S, c), D});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < out.shape[2]; ++t)
        for (int64_t d = 0; d < D; ++d) {
          double sum = 0.0;
          int64_t n = 0;
          for (int64_t s = 0; s < S; ++s)
            if (s / c == t) {
              sum += k.at(b, h, s, d);
              ++n;
            }
          out.at(b, h, t, d) = sum / static_cast<double>(n);
        }
  return out;
}

} // namespace

TEST_CASE("pooling mean, max and min with a partial last group", "[pool]") {
  Rng r(0xE571001);
  Tensor x = randn({2, 3, 77, 5}, r);
  for (int64_t c : {1, 4, 16, 77, 100}) {
    Tensor mean = pool(x, c, PoolKind::Mean), mx = pool(x, c, PoolKind::Max),
           mn = pool(x, c, PoolKind::Min);
    REQUIRE(mean.shape == std::vector<int64_t>{2, 3, ceilDiv(77, c), 5});
    requireClose(mean, brutePoolMean(x, c));
    Tensor wantMax(mx.shape), wantMin(mn.shape);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t h = 0; h < 3; ++h)
        for (int64_t t = 0; t < mx.shape[2]; ++t)
          for (int64_t d = 0; d < 5; ++d) {
            double hi = -1e300, lo = 1e300;
            for (int64_t s = 0; s < 77; ++s)
              if (s / c == t) {
                hi = std::max(hi, x.at(b, h, s, d));
                lo = std::min(lo, x.at(b, h, s, d));
              }
            wantMax.at(b, h, t, d) = hi;
            wantMin.at(b, h, t, d) = lo;
          }
    REQUIRE(mx.data == wantMax.data);
    REQUIRE(mn.data == wantMin.data);
  }
  // 77 = 4 * 19 + 1: the last group of 4 is the single token 76.
  Tensor last = pool(x, 4, PoolKind::Mean);
  for (int64_t d = 0; d < 5; ++d)
    REQUIRE(last.at(1, 2, 19, d) == x.at(1, 2, 76, d));
  REQUIRE_THROWS_WITH(pool(x, 0, PoolKind::Max), Contains("group size 0"));
}

TEST_CASE("block scores match per-element loops", "[scores]") {
  Rng r(0xE571002);
  struct Cfg {
    int64_t Sq, Skv, cq, ck, bq, bk;
  };
  const Cfg cfgs[] = {{77, 130, 1, 1, 16, 16}, {77, 130, 4, 8, 16, 16},  {130, 77, 16, 16, 16, 16},
                      {130, 77, 2, 4, 16, 32}, {300, 300, 8, 8, 32, 16}, {5, 200, 1, 8, 16, 8}};
  for (const Cfg &c : cfgs)
    for (bool causal : {true, false})
      for (int64_t Hkv : {2, 1}) {
        INFO("Sq=" << c.Sq << " Skv=" << c.Skv << " cq=" << c.cq << " ck=" << c.ck
                   << " causal=" << causal << " Hkv=" << Hkv);
        int64_t nR = ceilDiv(c.Sq, c.cq), nT = ceilDiv(c.Skv, c.ck), g = 4 / Hkv;
        Tensor qp = randn({2, 4, nR, 8}, r), kp = randn({2, Hkv, nT, 8}, r);
        Scores s = blockScores(qp, kp, c.cq, c.ck, c.bq, c.bk, c.Sq, c.Skv, causal, 0.4);
        Scores want = makeScores(2, 4, c.Sq, c.Skv, c.bq, c.bk, causal);
        REQUIRE(s.nQB == want.nQB);
        REQUIRE(s.nKB == want.nKB);
        REQUIRE(s.causal == causal);
        for (int64_t b = 0; b < 2; ++b)
          for (int64_t h = 0; h < 4; ++h)
            for (int64_t I = 0; I < want.nQB; ++I) {
              int64_t nI = 0;
              for (int64_t rr = 0; rr < nR; ++rr)
                nI += rr * c.cq / c.bq == I;
              for (int64_t rr = 0; rr < nR; ++rr) {
                if (rr * c.cq / c.bq != I)
                  continue;
                int64_t pos = std::min((rr + 1) * c.cq - 1, c.Sq - 1) + c.Skv - c.Sq;
                std::vector<double> logit(static_cast<size_t>(nT));
                std::vector<char> vis(static_cast<size_t>(nT));
                for (int64_t t = 0; t < nT; ++t) {
                  logit[static_cast<size_t>(t)] = 0.4 * dotRows(qp, b, h, rr, kp, b, h / g, t);
                  vis[static_cast<size_t>(t)] = !causal || t * c.ck <= pos;
                }
                auto p = naiveSoftmax(logit, vis);
                for (int64_t t = 0; t < nT; ++t)
                  want.at(b, h, I, t * c.ck / c.bk) +=
                      p[static_cast<size_t>(t)] / static_cast<double>(nI);
              }
            }
        for (size_t x = 0; x < s.v.size(); ++x)
          REQUIRE(close(s.v[x], want.v[x]));
      }
}

TEST_CASE("Quest bound scores match per-element loops; equal keys give the dot product",
          "[scores][quest]") {
  Rng r(0xE571009);
  for (auto [Sq, Skv, ck, bq] : {std::tuple<int64_t, int64_t, int64_t, int64_t>{1, 130, 16, 16},
                                 {3, 77, 8, 16},
                                 {100, 100, 16, 32}})
    for (int64_t Hkv : {2, 1}) {
      INFO("Sq=" << Sq << " Skv=" << Skv << " ck=" << ck << " Hkv=" << Hkv);
      int64_t nT = ceilDiv(Skv, ck), g = 4 / Hkv;
      Tensor q = randn({2, 4, Sq, 8}, r), lo = randn({2, Hkv, nT, 8}, r), hi = lo;
      for (double &x : hi.data)
        x += std::fabs(r.normal()); // hi >= lo elementwise
      Scores s = blockScores(q, lo, 1, ck, bq, ck, Sq, Skv, true, 0.4, &hi);
      Scores want = makeScores(2, 4, Sq, Skv, bq, ck, true);
      for (int64_t b = 0; b < 2; ++b)
        for (int64_t h = 0; h < 4; ++h)
          for (int64_t i = 0; i < Sq; ++i) {
            int64_t I = i / bq, nI = std::min(Sq, (I + 1) * bq) - I * bq, pos = i + Skv - Sq;
            std::vector<double> logit(static_cast<size_t>(nT));
            std::vector<char> vis(static_cast<size_t>(nT));
            for (int64_t t = 0; t < nT; ++t) {
              double u = 0.0;
              for (int64_t d = 0; d < 8; ++d)
                u += std::max(q.at(b, h, i, d) * lo.at(b, h / g, t, d),
                              q.at(b, h, i, d) * hi.at(b, h / g, t, d));
              logit[static_cast<size_t>(t)] = 0.4 * u;
              vis[static_cast<size_t>(t)] = t * ck <= pos;
            }
            auto p = naiveSoftmax(logit, vis);
            for (int64_t t = 0; t < nT; ++t)
              want.at(b, h, I, t) += p[static_cast<size_t>(t)] / static_cast<double>(nI);
          }
      for (size_t x = 0; x < s.v.size(); ++x)
        REQUIRE(close(s.v[x], want.v[x]));
      // A group whose minimum equals its maximum is one key: the bound is the
      // dot product, so bound scores are the plain scores.
      Scores same = blockScores(q, lo, 1, ck, bq, ck, Sq, Skv, true, 0.4, &lo);
      Scores plain = blockScores(q, lo, 1, ck, bq, ck, Sq, Skv, true, 0.4);
      for (size_t x = 0; x < same.v.size(); ++x)
        REQUIRE(close(same.v[x], plain.v[x]));
    }
  Tensor q = randn({1, 2, 4, 8}, r), lo = randn({1, 2, 3, 8}, r), shortHi = randn({1, 2, 2, 8}, r);
  REQUIRE_THROWS_WITH(blockScores(q, lo, 1, 16, 16, 16, 4, 40, true, std::nullopt, &shortHi),
                      Contains("maximum is [1, 2, 2, 8]"));
}

TEST_CASE("unpooled causal block scores are row-stochastic", "[scores]") {
  Rng r(0xE571003);
  Tensor q = randn({1, 2, 100, 8}, r), k = randn({1, 2, 100, 8}, r);
  Scores s = blockScores(q, k, 1, 1, 16, 16, 100, 100, true, std::nullopt);
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t I = 0; I < s.nQB; ++I) {
      double sum = 0.0;
      for (int64_t J = 0; J < s.nKB; ++J) {
        sum += s.at(0, h, I, J);
        if (J > I)
          REQUIRE(s.at(0, h, I, J) == 0.0); // invisible blocks get no mass
      }
      REQUIRE(close(sum, 1.0));
    }
  REQUIRE_THROWS_WITH(blockScores(q, k, 3, 1, 16, 16, 100, 100, true, std::nullopt),
                      Contains("cq=3"));
}

TEST_CASE("antidiagonal scores regroup as XAttention does", "[scores][xattention]") {
  // Hand-checked: stride 2, D 1. Row 0 holds queries (1, 2) in reverse,
  // column 0 keys (10, 100): the antidiagonal 2 * 10 + 1 * 100 = 120 (the
  // main diagonal would be 210); column 1 keys (1, 1): 2 + 1 = 3.
  {
    Tensor q({1, 1, 2, 1}), k({1, 1, 4, 1});
    q.data = {1, 2};
    k.data = {10, 100, 1, 1};
    Scores s = antidiagScores(q, k, 2, 2, 2, /*causal=*/false, 0.01);
    double p0 = 1.0 / (1.0 + std::exp((3.0 - 120.0) * 0.01 / 2));
    REQUIRE(s.nQB == 1);
    REQUIRE(s.nKB == 2);
    REQUIRE(close(s.at(0, 0, 0, 0), p0));
    REQUIRE(close(s.at(0, 0, 0, 1), 1.0 - p0));
  }
  // Against the regrouped tensors built explicitly (zero rows past the
  // ends), odd lengths, Sq < Skv, GQA, both masks.
  Rng r(0xE571004);
  struct Cfg {
    int64_t Sq, Skv, S, bq, bk;
  };
  const Cfg cfgs[] = {{64, 64, 8, 16, 16},
                      {77, 130, 4, 16, 8},
                      {130, 130, 16, 32, 32},
                      {100, 250, 8, 16, 32},
                      {5, 40, 2, 4, 8}};
  for (const Cfg &c : cfgs)
    for (bool causal : {true, false}) {
      INFO("Sq=" << c.Sq << " Skv=" << c.Skv << " stride=" << c.S << " causal=" << causal);
      const int64_t H = 4, Hkv = 2, D = 8, g = H / Hkv;
      Tensor q = randn({2, H, c.Sq, D}, r), k = randn({2, Hkv, c.Skv, D}, r);
      Scores s = antidiagScores(q, k, c.S, c.bq, c.bk, causal, std::nullopt);
      const int64_t nR = ceilDiv(c.Sq, c.S), nC = ceilDiv(c.Skv, c.S);
      Scores want = makeScores(2, H, c.Sq, c.Skv, c.bq, c.bk, causal);
      for (int64_t b = 0; b < 2; ++b)
        for (int64_t h = 0; h < H; ++h) {
          // qt[r] = concat_t q[r*S + S-1-t], kt[c] = concat_t k[c*S + t].
          std::vector<std::vector<double>> qt(size_t(nR), std::vector<double>(size_t(c.S * D)));
          std::vector<std::vector<double>> kt(size_t(nC), std::vector<double>(size_t(c.S * D)));
          for (int64_t rr = 0; rr < nR; ++rr)
            for (int64_t t = 0; t < c.S; ++t)
              for (int64_t d = 0; d < D; ++d) {
                int64_t i = rr * c.S + c.S - 1 - t;
                qt[size_t(rr)][size_t(t * D + d)] = i < c.Sq ? q.at(b, h, i, d) : 0.0;
              }
          for (int64_t cc = 0; cc < nC; ++cc)
            for (int64_t t = 0; t < c.S; ++t)
              for (int64_t d = 0; d < D; ++d) {
                int64_t j = cc * c.S + t;
                kt[size_t(cc)][size_t(t * D + d)] = j < c.Skv ? k.at(b, h / g, j, d) : 0.0;
              }
          for (int64_t rr = 0; rr < nR; ++rr) {
            int64_t last = std::min(rr * c.S + c.S - 1, c.Sq - 1) + c.Skv - c.Sq;
            std::vector<double> logit(size_t(nC), 0.0);
            std::vector<char> vis(static_cast<size_t>(nC));
            for (int64_t cc = 0; cc < nC; ++cc) {
              for (size_t x = 0; x < qt[0].size(); ++x)
                logit[size_t(cc)] += qt[size_t(rr)][x] * kt[size_t(cc)][x];
              logit[size_t(cc)] /= std::sqrt(double(D)) * double(c.S);
              vis[size_t(cc)] = !causal || cc * c.S <= last;
            }
            auto p = naiveSoftmax(logit, vis);
            for (int64_t cc = 0; cc < nC; ++cc)
              want.at(b, h, rr * c.S / c.bq, cc * c.S / c.bk) += p[size_t(cc)];
          }
        }
      for (size_t x = 0; x < s.v.size(); ++x)
        REQUIRE(close(s.v[x], want.v[x]));
    }
  Tensor q = randn({1, 2, 32, 8}, r), k = randn({1, 2, 32, 8}, r);
  REQUIRE_THROWS_WITH(antidiagScores(q, k, 3, 16, 16, true, std::nullopt), Contains("stride=3"));
}

TEST_CASE("classify_queries follows the lazy rule and keep_every", "[classify]") {
  Rng r(0xE571004);
  struct Cfg {
    int64_t Sq, Skv;
  };
  for (Cfg c : {Cfg{200, 200}, Cfg{77, 130}, Cfg{130, 77}})
    for (int64_t keepEvery : {0, 1, 3})
      for (double theta : {0.35, 0.6})
        for (int64_t W : {40, 0}) { // W = 0: only the clamp of a partial last group is near
          INFO("Sq=" << c.Sq << " Skv=" << c.Skv << " keep_every=" << keepEvery
                     << " theta=" << theta << " W=" << W);
          Tensor q = randn({2, 4, c.Sq, 8}, r, 1.5), k = randn({2, 2, c.Skv, 8}, r, 1.5);
          ClassifyParams p;
          p.keyGroup = 16;
          p.window = W;
          p.sinks = 10;
          p.theta = theta;
          p.keepEvery = keepEvery;
          QuerySet got = classifyQueries(q, k, p);
          REQUIRE(got.B == 2);
          REQUIRE(got.H == 4);
          REQUIRE(got.Sq == c.Sq);
          Tensor kp = brutePoolMean(k, 16);
          int64_t nT = kp.shape[2], lazyTotal = 0, activeTotal = 0;
          double scale = 1.0 / std::sqrt(8.0);
          for (int64_t b = 0; b < 2; ++b)
            for (int64_t h = 0; h < 4; ++h) {
              std::vector<int32_t> want;
              int64_t m = 0;
              for (int64_t i = 0; i < c.Sq; ++i) {
                int64_t pos = i + c.Skv - c.Sq;
                std::vector<double> logit(static_cast<size_t>(nT));
                std::vector<char> vis(static_cast<size_t>(nT));
                for (int64_t t = 0; t < nT; ++t) {
                  logit[static_cast<size_t>(t)] = scale * dotRows(q, b, h, i, kp, b, h / 2, t);
                  vis[static_cast<size_t>(t)] = t * 16 <= pos;
                }
                auto pr = naiveSoftmax(logit, vis);
                double mass = 0.0;
                for (int64_t t = 0; t < nT; ++t) {
                  int64_t lastKey = std::min((t + 1) * 16, c.Skv) - 1;
                  if (vis[static_cast<size_t>(t)] && (t * 16 < 10 || lastKey > pos - W))
                    mass += pr[static_cast<size_t>(t)];
                }
                if (mass >= theta) {
                  ++lazyTotal;
                  if (keepEvery > 0 && m % keepEvery == keepEvery - 1)
                    want.push_back(static_cast<int32_t>(i));
                  ++m;
                } else {
                  want.push_back(static_cast<int32_t>(i));
                }
              }
              activeTotal += static_cast<int64_t>(want.size());
              REQUIRE(got.active[static_cast<size_t>(b * 4 + h)] == want);
            }
          // Both classes occur, so the rule was really exercised.
          if (W > 0)
            REQUIRE(lazyTotal > 0);
          REQUIRE(activeTotal > 0);
          if (keepEvery == 1)
            REQUIRE(activeTotal == 2 * 4 * c.Sq);
        }
}

namespace {

struct SlimCase {
  int64_t Sq, Skv, observe, sinks, recent;
  double tau;
  bool segments;
};

/// §11 recomputed: scores, forced tokens, repeated arg-max prefix.
std::vector<std::vector<int32_t>> bruteSlim(const Tensor &q, const Tensor &k, const Segments *seg,
                                            const SlimCase &c,
                                            std::vector<std::vector<double>> &scoresOut) {
  int64_t B = q.shape[0], Hq = q.shape[1], Hkv = k.shape[1], g = Hq / Hkv;
  double scale = 1.0 / std::sqrt(static_cast<double>(q.shape[3]));
  std::vector<std::vector<int32_t>> kept;
  scoresOut.clear();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t hk = 0; hk < Hkv; ++hk) {
      std::vector<double> score(static_cast<size_t>(c.Skv), 0.0);
      for (int64_t h = hk * g; h < (hk + 1) * g; ++h)
        for (int64_t i = std::max<int64_t>(0, c.Sq - c.observe); i < c.Sq; ++i) {
          int64_t pos = i + c.Skv - c.Sq;
          std::vector<double> logit(static_cast<size_t>(c.Skv));
          std::vector<char> vis(static_cast<size_t>(c.Skv));
          for (int64_t j = 0; j < c.Skv; ++j) {
            logit[static_cast<size_t>(j)] = scale * dotRows(q, b, h, i, k, b, hk, j);
            vis[static_cast<size_t>(j)] = j <= pos;
          }
          auto p = naiveSoftmax(logit, vis);
          for (int64_t j = 0; j < c.Skv; ++j)
            score[static_cast<size_t>(j)] += p[static_cast<size_t>(j)];
        }
      std::vector<char> inSeg(static_cast<size_t>(c.Skv), seg ? 0 : 1);
      if (seg)
        for (auto [lo, hi] : seg->ranges[static_cast<size_t>(b)])
          for (int64_t t = lo; t < hi; ++t)
            inSeg[static_cast<size_t>(t)] = 1;
      double total = 0.0, sum = 0.0;
      std::vector<char> keep(static_cast<size_t>(c.Skv), 0);
      std::vector<int64_t> rest;
      for (int64_t t = 0; t < c.Skv; ++t) {
        bool f = !inSeg[static_cast<size_t>(t)] || t < c.sinks || t >= c.Skv - c.recent;
        if (inSeg[static_cast<size_t>(t)])
          total += score[static_cast<size_t>(t)];
        if (f) {
          keep[static_cast<size_t>(t)] = 1;
          if (inSeg[static_cast<size_t>(t)])
            sum += score[static_cast<size_t>(t)];
        } else {
          rest.push_back(t);
        }
      }
      while (sum < c.tau * total && !rest.empty()) {
        size_t best = 0;
        for (size_t x = 1; x < rest.size(); ++x)
          if (score[static_cast<size_t>(rest[x])] > score[static_cast<size_t>(rest[best])])
            best = x;
        keep[static_cast<size_t>(rest[best])] = 1;
        sum += score[static_cast<size_t>(rest[best])];
        rest.erase(rest.begin() + static_cast<std::ptrdiff_t>(best));
      }
      std::vector<int32_t> list;
      for (int64_t t = 0; t < c.Skv; ++t)
        if (keep[static_cast<size_t>(t)])
          list.push_back(static_cast<int32_t>(t));
      kept.push_back(list);
      scoresOut.push_back(score);
    }
  return kept;
}

} // namespace

TEST_CASE("kv_slim keeps forced tokens plus the shortest high-score prefix", "[slim]") {
  Rng r(0xE571005);
  const SlimCase cases[] = {{40, 150, 16, 4, 20, 0.9, false},  {40, 150, 16, 4, 20, 0.6, true},
                            {150, 150, 64, 2, 10, 0.95, true}, {10, 90, 64, 0, 0, 0.5, false},
                            {120, 60, 8, 4, 8, 0.8, true},     {30, 80, 0, 4, 8, 0.8, false}};
  for (const SlimCase &c : cases) {
    INFO("Sq=" << c.Sq << " Skv=" << c.Skv << " observe=" << c.observe << " tau=" << c.tau
               << " segments=" << c.segments);
    Tensor q = randn({2, 4, c.Sq, 8}, r, 1.5), k = randn({2, 2, c.Skv, 8}, r, 1.5);
    // Duplicated keys give exactly equal scores: ties must go to the lower index.
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t hk = 0; hk < 2; ++hk)
        for (int64_t t = 31; t < 37; ++t)
          for (int64_t d = 0; d < 8; ++d)
            k.at(b, hk, t, d) = k.at(b, hk, 30, d);
    Segments seg;
    seg.ranges = {{{10, c.Skv / 3}, {c.Skv / 2, c.Skv - 5}}, {{0, c.Skv / 2}}};
    SlimParams p;
    p.observe = c.observe;
    p.tau = c.tau;
    p.sinks = c.sinks;
    p.recent = c.recent;
    const Segments *sp = c.segments ? &seg : nullptr;
    TokenSet got = kvSlim(q, k, sp, p);
    REQUIRE(got.B == 2);
    REQUIRE(got.H == 2);
    REQUIRE(got.Skv == c.Skv);
    std::vector<std::vector<double>> scores;
    auto want = bruteSlim(q, k, sp, c, scores);
    for (size_t x = 0; x < want.size(); ++x) {
      const auto &kept = got.kept[x];
      REQUIRE(kept == want[x]);
      // Invariants, stated independently of the selection order.
      std::vector<char> inSeg(static_cast<size_t>(c.Skv), sp ? 0 : 1);
      if (sp)
        for (auto [lo, hi] : seg.ranges[x / 2])
          for (int64_t t = lo; t < hi; ++t)
            inSeg[static_cast<size_t>(t)] = 1;
      double total = 0.0, keptMass = 0.0;
      for (int64_t t = 0; t < c.Skv; ++t) {
        bool isKept = inList(kept, t);
        if (!inSeg[static_cast<size_t>(t)] || t < c.sinks || t >= c.Skv - c.recent)
          REQUIRE(isKept);
        if (inSeg[static_cast<size_t>(t)]) {
          total += scores[x][static_cast<size_t>(t)];
          if (isKept)
            keptMass += scores[x][static_cast<size_t>(t)];
        }
      }
      REQUIRE(keptMass >= c.tau * total * (1 - 1e-12));
    }
  }
}

TEST_CASE("kv_slim rejects bad segments and tau", "[slim][errors]") {
  Rng r(0xE571006);
  Tensor q = randn({2, 2, 8, 8}, r), k = randn({2, 1, 20, 8}, r);
  Segments wrongBatches;
  wrongBatches.ranges = {{{0, 5}}};
  REQUIRE_THROWS_WITH(kvSlim(q, k, &wrongBatches, SlimParams{}), Contains("B=2"));
  Segments outside;
  outside.ranges = {{{0, 5}}, {{3, 21}}};
  REQUIRE_THROWS_WITH(kvSlim(q, k, &outside, SlimParams{}), Contains("[3, 21)"));
  SlimParams badTau;
  badTau.tau = -0.1;
  REQUIRE_THROWS_WITH(kvSlim(q, k, nullptr, badTau), Contains("tau=-0.1"));
  REQUIRE_THROWS_WITH(kvSlim(q, randn({2, 3, 20, 8}, r), nullptr, SlimParams{}),
                      Contains("Hq % Hkv"));
}

TEST_CASE("mean_scores is the weighted mean of grids of one shape", "[scores][unisparse]") {
  Rng rng(31);
  Tensor q = randn({1, 4, 70, 8}, rng), k = randn({1, 2, 70, 8}, rng);
  Scores a = blockScores(pool(q, 4, PoolKind::Mean), pool(k, 4, PoolKind::Mean), 4, 4, 16, 16, 70,
                         70, true, std::nullopt);
  Scores b = blockScores(pool(q, 16, PoolKind::Mean), pool(k, 16, PoolKind::Mean), 16, 16, 16, 16,
                         70, 70, true, std::nullopt);
  Scores m = meanScores({&a, &b}, {1.0, 3.0});
  REQUIRE(m.v.size() == a.v.size());
  CHECK(m.causal);
  for (size_t e = 0; e < m.v.size(); ++e)
    CHECK(m.v[e] == Approx((a.v[e] + 3 * b.v[e]) / 4).epsilon(1e-14));
  // Equal weights by default; each row still sums to one (both grids do).
  Scores e = meanScores({&a, &b}, {});
  for (int64_t h = 0; h < e.H; ++h)
    for (int64_t I = 0; I < e.nQB; ++I) {
      double row = 0;
      for (int64_t J = 0; J < e.nKB; ++J)
        row += e.at(0, h, I, J);
      CHECK(row == Approx(1.0).epsilon(1e-12));
    }
  Scores other = blockScores(pool(q, 4, PoolKind::Mean), pool(k, 4, PoolKind::Mean), 4, 4, 32, 32,
                             70, 70, true, std::nullopt);
  CHECK_THROWS_WITH(meanScores({&a, &other}, {}), Contains("they must match"));
  Scores acausal = blockScores(pool(q, 4, PoolKind::Mean), pool(k, 4, PoolKind::Mean), 4, 4, 16, 16,
                               70, 70, false, std::nullopt);
  CHECK_THROWS_WITH(meanScores({&a, &acausal}, {}), Contains("cannot be mixed"));
  CHECK_THROWS_WITH(meanScores({&a, &b}, {1.0}), Contains("1 weights for 2 grids"));
}
