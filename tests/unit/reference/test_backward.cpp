//===- test_backward.cpp - §2 attention gradients vs finite differences ---===//
//
// attentionBackward() against central finite differences of
// f = sum(dout ⊙ attention(q, k, v).out), perturbing every element of q, k
// and v, on shapes small enough to do so: dense, causal with Sq != Skv,
// window + sinks, per-head and per-group block sets, lazy rows under both
// policies, a vertical-slash set, empty rows, GQA and MQA. The key sets do
// not depend on the perturbed values, so f is smooth and the differences
// converge; the gradients must match to 1e-6 in relative L2 norm.
//
//===----------------------------------------------------------------------===//

#include "Brute.h"

using namespace brute;
using Catch::Matchers::Contains;

namespace {

struct Case {
  int64_t B, Hq, Hkv, Sq, Skv, D;
};

const Case kSmall{2, 4, 2, 7, 9, 5};

/// One attention call and its upstream gradient.
struct Problem {
  Tensor q, k, v, dout;
  const BlockSet *blocks = nullptr;
  const QuerySet *queries = nullptr;
  AttentionParams p;
};

Problem randomProblem(const Case &c, Rng &r) {
  Problem pr;
  pr.q = randn({c.B, c.Hq, c.Sq, c.D}, r);
  pr.k = randn({c.B, c.Hkv, c.Skv, c.D}, r);
  pr.v = randn({c.B, c.Hkv, c.Skv, c.D}, r);
  pr.dout = randn({c.B, c.Hq, c.Sq, c.D}, r);
  return pr;
}

double loss(const Problem &pr) {
  AttentionResult o = attention(pr.q, pr.k, pr.v, pr.blocks, pr.queries, pr.p);
  double f = 0.0;
  for (size_t x = 0; x < o.out.data.size(); ++x)
    f += pr.dout.data[x] * o.out.data[x];
  return f;
}

/// Central differences of loss() with respect to every element of pr.*which.
Tensor numericGrad(Problem pr, Tensor Problem::*which) {
  const double eps = 1e-6;
  Tensor &x = pr.*which;
  Tensor g(x.shape);
  for (size_t n = 0; n < x.data.size(); ++n) {
    double keep = x.data[n];
    x.data[n] = keep + eps;
    double up = loss(pr);
    x.data[n] = keep - eps;
    double down = loss(pr);
    x.data[n] = keep;
    g.data[n] = (up - down) / (2 * eps);
  }
  return g;
}

double norm(const Tensor &t) {
  double s = 0.0;
  for (double x : t.data)
    s += x * x;
  return std::sqrt(s);
}

/// ‖num − ana‖ / ‖num‖ ≤ 1e-6 for dq, dk and dv; returns the analytic ones.
AttentionGrads requireMatchesFiniteDifferences(const Problem &pr) {
  AttentionGrads g = attentionBackward(pr.q, pr.k, pr.v, pr.dout, pr.blocks, pr.queries, pr.p);
  const std::pair<const char *, Tensor Problem::*> inputs[] = {
      {"q", &Problem::q}, {"k", &Problem::k}, {"v", &Problem::v}};
  const Tensor *analytic[] = {&g.dq, &g.dk, &g.dv};
  for (int n = 0; n < 3; ++n) {
    const Tensor &ana = *analytic[n];
    Tensor num = numericGrad(pr, inputs[n].second);
    INFO("gradient of " << inputs[n].first);
    requireNoNaN(ana);
    REQUIRE(ana.shape == num.shape);
    Tensor diff(num.shape);
    for (size_t x = 0; x < num.data.size(); ++x)
      diff.data[x] = num.data[x] - ana.data[x];
    double ref = norm(num), err = norm(diff);
    INFO("|num| = " << ref << ", |num - ana| = " << err);
    // f independent of the input: both differences are bitwise equal.
    if (ref == 0.0)
      REQUIRE(norm(ana) == 0.0);
    else
      REQUIRE(err / ref <= 1e-6);
  }
  return g;
}

/// Rows (b, h, i) of t that are all zero.
bool rowIsZero(const Tensor &t, int64_t b, int64_t h, int64_t i) {
  for (int64_t d = 0; d < t.dim(3); ++d)
    if (t.at(b, h, i, d) != 0.0)
      return false;
  return true;
}

QuerySet randomQuerySet(Rng &r, const Case &c, std::vector<std::vector<char>> &isActive) {
  QuerySet qs{c.B, c.Hq, c.Sq, std::vector<std::vector<int32_t>>(static_cast<size_t>(c.B * c.Hq))};
  isActive.assign(qs.active.size(), std::vector<char>(static_cast<size_t>(c.Sq), 0));
  for (size_t bh = 0; bh < qs.active.size(); ++bh)
    for (int64_t i = 0; i < c.Sq; ++i)
      if (r.coin(0.4)) {
        qs.active[bh].push_back(static_cast<int32_t>(i));
        isActive[bh][static_cast<size_t>(i)] = 1;
      }
  return qs;
}

} // namespace

TEST_CASE("backward: dense non-causal attention", "[backward]") {
  Rng r(0xBAC0001);
  for (const Case &c : {kSmall, Case{1, 3, 1, 6, 4, 3}}) { // GQA, then MQA with Sq > Skv
    INFO("Hq=" << c.Hq << " Hkv=" << c.Hkv << " Sq=" << c.Sq << " Skv=" << c.Skv);
    Problem pr = randomProblem(c, r);
    requireMatchesFiniteDifferences(pr);
    pr.p.scale = 0.7;
    requireMatchesFiniteDifferences(pr);
  }
}

TEST_CASE("backward: causal, window and sinks masks", "[backward]") {
  Rng r(0xBAC0002);
  const Mask masks[] = {{true, 0, 0}, {true, 3, 2}, {true, 1, 0}};
  for (const Mask &m : masks) {
    INFO("causal=" << m.causal << " W=" << m.window << " n=" << m.sinks);
    Problem pr = randomProblem(kSmall, r); // Sq = 7 < Skv = 9
    pr.p.mask = m;
    requireMatchesFiniteDifferences(pr);
  }
}

TEST_CASE("backward: per-head and per-group block sets", "[backward][blocks]") {
  Rng r(0xBAC0003);
  const Case &c = kSmall;
  for (int64_t H : {c.Hq, c.Hkv})
    for (bool causal : {false, true}) {
      INFO("H=" << H << " causal=" << causal);
      Problem pr = randomProblem(c, r);
      BlockSet bs = randomBlocks(r, c.B, H, c.Sq, c.Skv, 2, 3, 0.5);
      pr.blocks = &bs;
      pr.p.mask.causal = causal;
      requireMatchesFiniteDifferences(pr);
    }
}

TEST_CASE("backward: lazy rows follow the local and zero policies", "[backward][lazy]") {
  Rng r(0xBAC0004);
  const Case &c = kSmall;
  for (LazyPolicy policy : {LazyPolicy::Local, LazyPolicy::Zero})
    for (bool withBlocks : {false, true}) {
      bool zero = policy == LazyPolicy::Zero;
      INFO("zero=" << zero << " blocks=" << withBlocks);
      Problem pr = randomProblem(c, r);
      std::vector<std::vector<char>> isActive;
      QuerySet qs = randomQuerySet(r, c, isActive);
      BlockSet bs = randomBlocks(r, c.B, c.Hq, c.Sq, c.Skv, 2, 3, 0.5);
      pr.queries = &qs;
      pr.blocks = withBlocks ? &bs : nullptr;
      pr.p.mask.causal = true;
      pr.p.lazy = policy;
      pr.p.lazyWindow = 2;
      pr.p.lazySinks = 1;
      AttentionGrads g = requireMatchesFiniteDifferences(pr);
      // Every lazy row sees key 0 (a sink, i' >= 2), so only Zero empties it.
      for (int64_t b = 0; b < c.B; ++b)
        for (int64_t h = 0; h < c.Hq; ++h)
          for (int64_t i = 0; i < c.Sq; ++i)
            if (!isActive[static_cast<size_t>(b * c.Hq + h)][static_cast<size_t>(i)])
              REQUIRE(rowIsZero(g.dq, b, h, i) == zero);
    }
}

TEST_CASE("backward: vertical-slash key sets", "[backward][vslash]") {
  Rng r(0xBAC0005);
  Problem pr = randomProblem(kSmall, r);
  VSlashParams vp;
  vp.last = 4;
  vp.vertical = 3;
  vp.slash = 2;
  vp.sinkColumns = 1;
  vp.localSlashes = 1;
  VSlashSet vs = vslash(pr.q, pr.k, 2, vp);
  pr.p.mask.causal = true;
  pr.p.vslash = &vs;
  requireMatchesFiniteDifferences(pr);
}

TEST_CASE("backward: rows with an empty key set give zero, not NaN", "[backward]") {
  Rng r(0xBAC0006);
  Case c{2, 4, 2, 9, 6, 5}; // causal, Sq > Skv: rows 0..2 have i' < 0
  Problem pr = randomProblem(c, r);
  pr.p.mask.causal = true;
  AttentionGrads g = requireMatchesFiniteDifferences(pr);
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.Hq; ++h)
      for (int64_t i = 0; i < c.Sq; ++i)
        if (i + c.Skv - c.Sq < 0)
          REQUIRE(rowIsZero(g.dq, b, h, i));
        else if (i + c.Skv - c.Sq > 0) // one key alone: P = 1 has no gradient
          REQUIRE(!rowIsZero(g.dq, b, h, i));
  // No key at all: every gradient is zero.
  Problem none = randomProblem({1, 2, 1, 3, 0, 4}, r);
  AttentionGrads z = attentionBackward(none.q, none.k, none.v, none.dout, nullptr, nullptr, none.p);
  REQUIRE(z.dq.shape == none.q.shape);
  REQUIRE(norm(z.dq) == 0.0);
  REQUIRE(z.dk.data.empty());
  REQUIRE(z.dv.data.empty());
}

TEST_CASE("backward: gradients are non-trivial and obey the softmax identities", "[backward]") {
  Rng r(0xBAC0007);
  const Case &c = kSmall;
  Problem pr = randomProblem(c, r);
  AttentionGrads g = attentionBackward(pr.q, pr.k, pr.v, pr.dout, nullptr, nullptr, pr.p);
  REQUIRE(norm(g.dq) > 0.1);
  REQUIRE(norm(g.dk) > 0.1);
  REQUIRE(norm(g.dv) > 0.1);
  // Dense rows: sum_j P_j = 1 gives sum_j dv_j = sum of dout over the KV
  // head's query rows, and sum_j dS_j = 0 gives sum_j dk_j = 0.
  int64_t g0 = c.Hq / c.Hkv;
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t hk = 0; hk < c.Hkv; ++hk)
      for (int64_t d = 0; d < c.D; ++d) {
        double dvSum = 0.0, dkSum = 0.0, doutSum = 0.0;
        for (int64_t j = 0; j < c.Skv; ++j) {
          dvSum += g.dv.at(b, hk, j, d);
          dkSum += g.dk.at(b, hk, j, d);
        }
        for (int64_t h = hk * g0; h < (hk + 1) * g0; ++h)
          for (int64_t i = 0; i < c.Sq; ++i)
            doutSum += pr.dout.at(b, h, i, d);
        REQUIRE(close(dvSum, doutSum, 1e-12));
        REQUIRE(std::abs(dkSum) <= 1e-12);
      }
}

TEST_CASE("backward: malformed inputs are errors with a message", "[backward][errors]") {
  Rng r(0xBAC0008);
  Problem pr = randomProblem(kSmall, r);
  const AttentionParams &p = pr.p;
  REQUIRE_NOTHROW(attentionBackward(pr.q, pr.k, pr.v, pr.dout, nullptr, nullptr, p));
  Tensor narrow = randn({2, 4, 7, 4}, r);
  REQUIRE_THROWS_AS(attentionBackward(pr.q, pr.k, pr.v, narrow, nullptr, nullptr, p), Error);
  REQUIRE_THROWS_WITH(attentionBackward(pr.q, pr.k, pr.v, narrow, nullptr, nullptr, p),
                      Contains("dout has shape [2, 4, 7, 4]") && Contains("[2, 4, 7, 5]"));
  REQUIRE_THROWS_WITH(attentionBackward(pr.q, pr.k, pr.v, randn({2, 4, 7}, r), nullptr, nullptr, p),
                      Contains("dout has shape [2, 4, 7]"));
  Tensor nan = pr.dout;
  nan.data[3] = std::nan("");
  REQUIRE_THROWS_WITH(attentionBackward(pr.q, pr.k, pr.v, nan, nullptr, nullptr, p),
                      Contains("dout") && Contains("non-finite"));
  REQUIRE_THROWS_WITH(
      attentionBackward(pr.q, pr.k, randn({2, 2, 9, 4}, r), pr.dout, nullptr, nullptr, p),
      Contains("same shape"));
  BlockSet other = randomBlocks(r, 2, 4, 11, 9, 4, 4, 0.5); // built for Sq = 11
  REQUIRE_THROWS_WITH(attentionBackward(pr.q, pr.k, pr.v, pr.dout, &other, nullptr, p),
                      Contains("Sq=11"));
}
