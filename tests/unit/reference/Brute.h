//===- Brute.h - Brute-force oracles of the reference tests ---------------===//
//
// Test-only formulations of docs/semantics.md written from the text, not
// from the kernels: token masks evaluated pair by pair, softmax without the
// max shift, selections by repeated arg-max. The kernels are checked against
// these, so nothing here may call a kernel helper except the Values.h types.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/reference/Reference.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <set>

namespace brute {

using namespace sattn::ref;

struct Rng {
  std::mt19937_64 gen;
  explicit Rng(uint64_t seed) : gen(seed) {}
  double normal(double sd = 1.0) { return std::normal_distribution<double>(0.0, sd)(gen); }
  double uniform() { return std::uniform_real_distribution<double>(0.0, 1.0)(gen); }
  /// Inclusive range.
  int64_t range(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(gen);
  }
  bool coin(double p) { return std::bernoulli_distribution(p)(gen); }
};

inline Tensor randn(std::vector<int64_t> shape, Rng &r, double sd = 1.0) {
  Tensor t(std::move(shape));
  for (double &x : t.data)
    x = r.normal(sd);
  return t;
}

inline int64_t ceilDiv(int64_t a, int64_t b) { return a / b + (a % b != 0 ? 1 : 0); }

/// §1 token mask, pair by pair.
inline bool tokenAllowed(bool causal, int64_t W, int64_t n, int64_t i, int64_t j, int64_t Sq,
                         int64_t Skv) {
  if (j < 0 || j >= Skv)
    return false;
  if (!causal)
    return true;
  int64_t pos = i + Skv - Sq;
  if (j > pos)
    return false;
  bool inWindow = W == 0 || j > pos - W;
  bool sink = W > 0 && j < n;
  return inWindow || sink;
}

/// §1 visible blocks: J is visible iff its first key is <= the aligned
/// position of the block's last row.
inline std::vector<int32_t> visible(int64_t I, int64_t bq, int64_t bk, int64_t Sq, int64_t Skv,
                                    bool causal) {
  std::vector<int32_t> out;
  int64_t nKB = ceilDiv(Skv, bk);
  int64_t lastPos = std::min((I + 1) * bq, Sq) - 1 + Skv - Sq;
  for (int64_t J = 0; J < nKB; ++J)
    if (!causal || J * bk <= lastPos)
      out.push_back(static_cast<int32_t>(J));
  return out;
}

/// §5 forced blocks.
inline std::vector<int32_t> forced(const Forced &f, int64_t I, int64_t bq, int64_t bk, int64_t Sq,
                                   int64_t Skv, bool causal) {
  int64_t lastPos = std::min((I + 1) * bq, Sq) - 1 + Skv - Sq;
  std::vector<int32_t> out;
  for (int32_t J : visible(I, bq, bk, Sq, Skv, causal)) {
    bool keep = J < f.sink;
    if (lastPos >= 0) {
      int64_t diag = lastPos / bk;
      keep = keep || (J <= diag && J > diag - f.local) || (f.diagonal && J == diag);
    }
    if (keep)
      out.push_back(J);
  }
  return out;
}

using KeyPred = std::function<bool(int64_t b, int64_t h, int64_t i, int64_t j)>;

inline double dotRows(const Tensor &a, int64_t a0, int64_t a1, int64_t a2, const Tensor &b,
                      int64_t b0, int64_t b1, int64_t b2) {
  double s = 0.0;
  for (int64_t d = 0; d < a.shape[3]; ++d)
    s += a.at(a0, a1, a2, d) * b.at(b0, b1, b2, d);
  return s;
}

/// Naive attention: plain exp (inputs are small), allowed keys from `allow`.
inline AttentionResult naiveAttention(const Tensor &q, const Tensor &k, const Tensor &v,
                                      const KeyPred &allow, double scale) {
  int64_t B = q.shape[0], Hq = q.shape[1], Sq = q.shape[2], D = q.shape[3];
  int64_t Hkv = k.shape[1], Skv = k.shape[2], g = Hq / Hkv;
  AttentionResult r{Tensor({B, Hq, Sq, D}),
                    Tensor({B, Hq, Sq}, -std::numeric_limits<double>::infinity())};
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h)
      for (int64_t i = 0; i < Sq; ++i) {
        double z = 0.0;
        std::vector<double> acc(static_cast<size_t>(D), 0.0);
        for (int64_t j = 0; j < Skv; ++j) {
          if (!allow(b, h, i, j))
            continue;
          double e = std::exp(scale * dotRows(q, b, h, i, k, b, h / g, j));
          z += e;
          for (int64_t d = 0; d < D; ++d)
            acc[static_cast<size_t>(d)] += e * v.at(b, h / g, j, d);
        }
        if (z == 0.0)
          continue;
        for (int64_t d = 0; d < D; ++d)
          r.out.at(b, h, i, d) = acc[static_cast<size_t>(d)] / z;
        r.lse.at3(b, h, i) = std::log(z);
      }
  return r;
}

inline bool close(double a, double b, double tol = 1e-12) {
  if (std::isnan(a) || std::isnan(b))
    return false;
  if (std::isinf(a) || std::isinf(b))
    return a == b;
  return std::abs(a - b) <= tol * std::max({1.0, std::abs(a), std::abs(b)});
}

/// One assertion per tensor: shapes equal, no NaN, every element close.
inline void requireClose(const Tensor &got, const Tensor &want, double tol = 1e-12) {
  REQUIRE(got.shape == want.shape);
  REQUIRE(got.data.size() == want.data.size());
  size_t bad = 0, first = 0;
  for (size_t x = 0; x < got.data.size(); ++x)
    if (!close(got.data[x], want.data[x], tol) && bad++ == 0)
      first = x;
  INFO("mismatches: " << bad << ", first at flat " << first << ": got "
                      << (bad ? got.data[first] : 0.0) << " want "
                      << (bad ? want.data[first] : 0.0));
  REQUIRE(bad == 0);
}

inline void requireNoNaN(const Tensor &t) {
  REQUIRE(std::none_of(t.data.begin(), t.data.end(), [](double x) { return std::isnan(x); }));
}

inline bool inList(const std::vector<int32_t> &l, int64_t x) {
  return std::find(l.begin(), l.end(), x) != l.end();
}

inline BlockSet makeBlockSet(int64_t B, int64_t H, int64_t Sq, int64_t Skv, int64_t bq,
                             int64_t bk) {
  BlockSet s;
  s.B = B;
  s.H = H;
  s.Sq = Sq;
  s.Skv = Skv;
  s.bq = bq;
  s.bk = bk;
  s.nQB = ceilDiv(Sq, bq);
  s.nKB = ceilDiv(Skv, bk);
  s.lists.resize(static_cast<size_t>(B * H * s.nQB));
  return s;
}

/// Each block independently with probability p.
inline BlockSet randomBlocks(Rng &r, int64_t B, int64_t H, int64_t Sq, int64_t Skv, int64_t bq,
                             int64_t bk, double p) {
  BlockSet s = makeBlockSet(B, H, Sq, Skv, bq, bk);
  for (auto &l : s.lists)
    for (int64_t J = 0; J < s.nKB; ++J)
      if (r.coin(p))
        l.push_back(static_cast<int32_t>(J));
  return s;
}

inline Scores makeScores(int64_t B, int64_t H, int64_t Sq, int64_t Skv, int64_t bq, int64_t bk,
                         bool causal) {
  Scores s;
  s.B = B;
  s.H = H;
  s.Sq = Sq;
  s.Skv = Skv;
  s.bq = bq;
  s.bk = bk;
  s.nQB = ceilDiv(Sq, bq);
  s.nKB = ceilDiv(Skv, bk);
  s.causal = causal;
  s.v.assign(static_cast<size_t>(B * H * s.nQB * s.nKB), 0.0);
  return s;
}

inline void requireSortedUnique(const BlockSet &s) {
  for (const auto &l : s.lists)
    REQUIRE(std::adjacent_find(l.begin(), l.end(), [](int32_t a, int32_t b) { return a >= b; }) ==
            l.end());
}

} // namespace brute
