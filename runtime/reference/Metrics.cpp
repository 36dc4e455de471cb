//===- Metrics.cpp - Recall, density and relative error -------------------===//
//
// The §13 quality metrics. recall and density ask detail::KeySets which
// keys a row attended, the very predicate attention() uses, so a metric can
// never describe a different sparsity pattern than the one that ran.
//
//===----------------------------------------------------------------------===//

#include "runtime/reference/Reference.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <limits>

namespace sattn::ref {

namespace {

struct Shapes {
  int64_t B, Hq, Hkv, Sq, Skv, D;
};

Shapes checkQK(const Tensor &q, const Tensor &k) {
  detail::checkTensor(q, "q", 4);
  detail::checkTensor(k, "k", 4);
  if (q.dim(0) != k.dim(0) || q.dim(3) != k.dim(3))
    throw Error(fmt::format("q [{}] and k [{}] differ in batch or head dim; they "
                            "must match",
                            fmt::join(q.shape, ", "), fmt::join(k.shape, ", ")));
  if (k.dim(1) <= 0 || q.dim(1) % k.dim(1) != 0)
    throw Error(fmt::format("Hq={} query heads cannot be grouped over Hkv={} KV "
                            "heads; Hq % Hkv must be 0 with Hkv > 0",
                            q.dim(1), k.dim(1)));
  return {q.dim(0), q.dim(1), k.dim(1), q.dim(2), k.dim(2), q.dim(3)};
}

} // namespace

double recall(const Tensor &q, const Tensor &k, const Attended &a, int64_t sampled) {
  Shapes s = checkQK(q, k);
  double scale = detail::resolveScale(a.params.scale, s.D);
  detail::KeySets sets(s.B, s.Hq, s.Hkv, s.Sq, s.Skv, a.blocks, a.queries, a.params);
  if (sampled < 1)
    throw Error(fmt::format("recall needs at least one sampled row, got {}", sampled));
  int64_t M = std::min<int64_t>(sampled, s.Sq), g = s.Hq / s.Hkv;
  bool causal = a.params.mask.causal;
  double sum = 0.0;
  int64_t rows = 0;
  std::vector<char> keys;
  std::vector<double> p;
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.Hq; ++h)
      for (int64_t m = 0; m < M; ++m) {
        int64_t i = m * s.Sq / M;
        int64_t ip = i + s.Skv - s.Sq;
        // The exact row: dense, or causal when the attention is causal.
        int64_t seen = causal ? std::clamp<int64_t>(ip + 1, 0, s.Skv) : s.Skv;
        if (seen == 0)
          continue;
        p.assign(static_cast<size_t>(seen), 0.0);
        for (int64_t j = 0; j < seen; ++j) {
          double dot = 0.0;
          for (int64_t d = 0; d < s.D; ++d)
            dot += q.at(b, h, i, d) * k.at(b, h / g, j, d);
          p[static_cast<size_t>(j)] = scale * dot;
        }
        detail::softmaxInPlace(p);
        sets.row(b, h, i, keys);
        double got = 0.0;
        for (int64_t j = 0; j < seen; ++j)
          if (keys[static_cast<size_t>(j)])
            got += p[static_cast<size_t>(j)];
        sum += got;
        ++rows;
      }
  // No row saw a key: nothing could be missed.
  return rows == 0 ? 1.0 : sum / static_cast<double>(rows);
}

namespace {

/// Marks KV blocks [lo / bk, hi / bk] of the key interval [lo, hi] (empty
/// when lo > hi) in a difference array over the blocks.
void coverKeys(std::vector<int32_t> &diff, int64_t lo, int64_t hi, int64_t bk) {
  if (lo > hi)
    return;
  ++diff[static_cast<size_t>(lo / bk)];
  --diff[static_cast<size_t>(hi / bk + 1)];
}

/// The keys a row attends when its mask is "j <= ip, and j > ip - window or
/// j < sinks" (window > 0), as two intervals marked in `diff`.
void coverWindow(std::vector<int32_t> &diff, int64_t ip, int64_t window, int64_t sinks, int64_t Skv,
                 int64_t bk) {
  int64_t last = std::min(ip, Skv - 1);
  int64_t winLo = std::max<int64_t>(0, ip - window + 1);
  coverKeys(diff, winLo, last, bk);
  coverKeys(diff, 0, std::min({sinks, winLo, last + 1}) - 1, bk);
}

} // namespace

// The attended keys of every row are at most two intervals (semantics §2:
// a causal prefix, or a window plus sinks; lazy rows: their window plus
// sinks), intersected with the row's block list for active rows. So each
// query block's attended KV blocks come from interval covers in difference
// arrays, one for active rows (then masked by the block list) and one for
// lazy rows: O(rows + block pairs) instead of a pass over every key of every
// row, which makes the metric usable at 128k. test_metrics.cpp checks it
// against the token-by-token count of detail::KeySets' predicate.
namespace {
/// §12b density: attended (row, key) pairs / causally valid pairs. Per
/// query block the rows are positions [a, e); a band's keys [x0, x1) add
/// sum_ip max(0, min(x1, ip + 1) - x0); the columns outside the bands lie
/// below a and count for every row.
double vslashDensity(const Dims &s, const VSlashSet &vs) {
  double valid = 0.0, attended = 0.0;
  const int64_t nQB = cdiv(s.Sq, vs.bq);
  for (int64_t I = 0; I < nQB; ++I) {
    const int64_t e = diagonalKey(I, vs.bq, s.Sq, s.Skv) + 1;
    const int64_t a = I * vs.bq + s.Skv - s.Sq, rows = e - a;
    if (e <= 0)
      continue;
    auto causalPairs = [&](int64_t x0, int64_t x1) { // rows ip in [max(a, 0), e), keys [x0, x1)
      double n = 0.0;
      for (int64_t ip = std::max<int64_t>(a, x0); ip < e; ++ip)
        n += static_cast<double>(std::min(x1, ip + 1) - x0);
      return n;
    };
    valid += causalPairs(0, s.Skv) * static_cast<double>(s.B * s.Hq);
    for (size_t bh = 0; bh < vs.columns.size(); ++bh) {
      const auto &cols = vs.columns[bh];
      int64_t inBands = 0;
      for (auto [lo, hi] : vs.intervals[bh]) {
        const int64_t x0 = std::max<int64_t>(0, e - hi), x1 = std::min(e - lo, s.Skv);
        if (x0 >= x1)
          continue;
        attended += causalPairs(x0, x1);
        inBands += std::lower_bound(cols.begin(), cols.end(), x1) -
                   std::lower_bound(cols.begin(), cols.end(), x0);
      }
      const int64_t below = std::lower_bound(cols.begin(), cols.end(), e) - cols.begin();
      attended += static_cast<double>((below - inBands) * rows);
    }
  }
  return valid > 0.0 ? attended / valid : 0.0;
}
} // namespace

double density(const Dims &s, const Attended &a) {
  if (a.params.vslash)
    return vslashDensity(s, *a.params.vslash);
  const Mask &mask = a.params.mask;
  const AttentionParams &p = a.params;
  int64_t bq = a.blocks ? a.blocks->bq : 128, bk = a.blocks ? a.blocks->bk : 128;
  int64_t nQB = cdiv(s.Sq, bq), nKB = cdiv(s.Skv, bk);
  int64_t valid = 0;
  for (int64_t I = 0; I < nQB; ++I)
    valid += static_cast<int64_t>(visibleBlocks(I, bq, bk, s.Sq, s.Skv, mask.causal).size());
  valid *= s.B * s.Hq;
  if (valid == 0)
    return 0.0;
  std::vector<char> activeRow;
  std::vector<int32_t> act(static_cast<size_t>(nKB + 1)), lazy(static_cast<size_t>(nKB + 1));
  std::vector<char> inRow(static_cast<size_t>(nKB));
  int64_t attended = 0;
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.Hq; ++h) {
      if (a.queries) {
        activeRow.assign(static_cast<size_t>(s.Sq), 0);
        for (int32_t i : a.queries->active.at(static_cast<size_t>(b * s.Hq + h)))
          if (i >= 0 && i < s.Sq)
            activeRow[static_cast<size_t>(i)] = 1;
      }
      for (int64_t I = 0; I < nQB; ++I) {
        std::fill(act.begin(), act.end(), 0);
        std::fill(lazy.begin(), lazy.end(), 0);
        for (int64_t i = I * bq; i < std::min(s.Sq, (I + 1) * bq); ++i) {
          int64_t ip = i + s.Skv - s.Sq;
          if (a.queries && !activeRow[static_cast<size_t>(i)]) {
            if (p.lazy == LazyPolicy::Local)
              coverWindow(lazy, ip, p.lazyWindow, p.lazySinks, s.Skv, bk);
          } else if (!mask.causal) {
            coverKeys(act, 0, s.Skv - 1, bk);
          } else if (mask.window <= 0) {
            coverKeys(act, 0, std::min(ip, s.Skv - 1), bk);
          } else {
            coverWindow(act, ip, mask.window, mask.sinks, s.Skv, bk);
          }
        }
        if (a.blocks) {
          std::fill(inRow.begin(), inRow.end(), 0);
          int64_t hb = a.blocks->H == s.Hq ? h : h / (s.Hq / s.Hkv);
          for (int32_t J : a.blocks->row(b, hb, I))
            inRow[static_cast<size_t>(J)] = 1;
        }
        int32_t ca = 0, cl = 0;
        for (int64_t J = 0; J < nKB; ++J) {
          ca += act[static_cast<size_t>(J)], cl += lazy[static_cast<size_t>(J)];
          bool hitActive = ca > 0 && (!a.blocks || inRow[static_cast<size_t>(J)]);
          attended += hitActive || cl > 0;
        }
      }
    }
  return static_cast<double>(attended) / static_cast<double>(valid);
}

double density(const Tensor &q, const Tensor &k, const Attended &a) {
  Shapes s = checkQK(q, k);
  // Builds the key sets only to validate the block and query sets.
  detail::KeySets sets(s.B, s.Hq, s.Hkv, s.Sq, s.Skv, a.blocks, a.queries, a.params);
  return density(Dims{s.B, s.Hq, s.Hkv, s.Sq, s.Skv}, a);
}

namespace {
/// Entries in `lists` / (B * H * n): the share of rows or tokens a set keeps.
double listShare(const std::vector<std::vector<int32_t>> &lists, int64_t B, int64_t H, int64_t n) {
  double kept = 0.0;
  for (const auto &l : lists)
    kept += static_cast<double>(l.size());
  double all = static_cast<double>(B) * static_cast<double>(H) * static_cast<double>(n);
  return all > 0.0 ? kept / all : 0.0;
}
} // namespace

double activeFraction(const QuerySet &qs) { return listShare(qs.active, qs.B, qs.H, qs.Sq); }

double keptFraction(const TokenSet &ts) { return listShare(ts.kept, ts.B, ts.H, ts.Skv); }

double relativeError(const Tensor &out, const Tensor &ref) {
  detail::checkTensor(out, "out", -1);
  detail::checkTensor(ref, "reference out", -1);
  if (out.shape != ref.shape)
    throw Error(fmt::format("relative error compares out [{}] with reference [{}]; "
                            "the shapes must match",
                            fmt::join(out.shape, ", "), fmt::join(ref.shape, ", ")));
  // Scaled sums of squares so huge values cannot overflow the norms.
  double mx = 0.0;
  for (size_t x = 0; x < out.data.size(); ++x)
    mx = std::max({mx, std::abs(out.data[x]), std::abs(ref.data[x])});
  if (mx == 0.0)
    return 0.0;
  double num = 0.0, den = 0.0;
  for (size_t x = 0; x < out.data.size(); ++x) {
    double d = (out.data[x] - ref.data[x]) / mx, r = ref.data[x] / mx;
    num += d * d;
    den += r * r;
  }
  if (den == 0.0)
    return std::numeric_limits<double>::infinity(); // any error against a zero reference
  return std::sqrt(num) / std::sqrt(den);
}

} // namespace sattn::ref
