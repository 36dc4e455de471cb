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

double recall(const Tensor &q, const Tensor &k, const Attended &a) {
  Shapes s = checkQK(q, k);
  double scale = detail::resolveScale(a.params.scale, s.D);
  detail::KeySets sets(s.B, s.Hq, s.Hkv, s.Sq, s.Skv, a.blocks, a.queries, a.params);
  int64_t M = std::min<int64_t>(256, s.Sq), g = s.Hq / s.Hkv;
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

double density(const Tensor &q, const Tensor &k, const Attended &a) {
  Shapes s = checkQK(q, k);
  detail::KeySets sets(s.B, s.Hq, s.Hkv, s.Sq, s.Skv, a.blocks, a.queries, a.params);
  int64_t bq = a.blocks ? a.blocks->bq : 128, bk = a.blocks ? a.blocks->bk : 128;
  int64_t nQB = cdiv(s.Sq, bq), nKB = cdiv(s.Skv, bk);
  bool causal = a.params.mask.causal;
  int64_t valid = 0;
  for (int64_t I = 0; I < nQB; ++I)
    valid += static_cast<int64_t>(visibleBlocks(I, bq, bk, s.Sq, s.Skv, causal).size());
  valid *= s.B * s.Hq;
  int64_t attended = 0;
  std::vector<char> keys, hit(static_cast<size_t>(nKB));
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.Hq; ++h)
      for (int64_t I = 0; I < nQB; ++I) {
        std::fill(hit.begin(), hit.end(), 0);
        for (int64_t i = I * bq; i < std::min(s.Sq, (I + 1) * bq); ++i) {
          sets.row(b, h, i, keys);
          for (int64_t j = 0; j < s.Skv; ++j)
            if (keys[static_cast<size_t>(j)])
              hit[static_cast<size_t>(j / bk)] = 1;
        }
        attended += std::count(hit.begin(), hit.end(), 1);
      }
  return valid == 0 ? 0.0 : static_cast<double>(attended) / static_cast<double>(valid);
}

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
