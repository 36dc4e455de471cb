//===- VerticalSlash.cpp - FlexPrefill vertical-slash selection (§12a) ----===//
//
// The exact attention of the last queries, summed per key (vertical) and
// per distance (slash); coverage budgets from those lines; block-pooled
// lines; the square-root Jensen-Shannon test that makes a head query-aware;
// and the expansion of the picked columns and diagonals into a block set.
//
//===----------------------------------------------------------------------===//

#include "runtime/reference/Reference.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace sattn::ref {

namespace {

void checkParams(const VerticalSlashParams &p) {
  if (p.last <= 0 || p.unit <= 0 || p.minBlocks < 0 || p.maxBlocks < 0)
    throw Error(fmt::format("vertical_slash needs last >= 1, unit >= 1, min_blocks >= 0 and "
                            "max_blocks >= 0; got last={} unit={} min_blocks={} max_blocks={}",
                            p.last, p.unit, p.minBlocks, p.maxBlocks));
  if (!(p.gamma >= 0.0 && p.gamma <= 1.0))
    throw Error(fmt::format("vertical_slash gamma={} is out of range [0, 1]", p.gamma));
  if (!(p.jsd >= 0.0))
    throw Error(fmt::format("vertical_slash jsd={} must be non-negative", p.jsd));
}

/// c(x) of §12a: the shortest prefix of x sorted descending reaching gamma
/// of its sum (summed in that order).
int64_t coverCount(std::vector<double> x, double gamma) {
  std::sort(x.begin(), x.end(), [](double a, double b) { return a > b; });
  double total = 0.0;
  for (double v : x)
    total += v;
  double sum = 0.0, target = gamma * total;
  size_t c = 0;
  while (c < x.size() && sum < target)
    sum += x[c++];
  return static_cast<int64_t>(c);
}

/// The first n entries of "0, then the others by descending score, ties to
/// the lower index" (§12a picks), as a membership mask.
std::vector<char> pick(const std::vector<double> &score, int64_t n) {
  std::vector<int64_t> ord;
  for (int64_t i = 1; i < static_cast<int64_t>(score.size()); ++i)
    ord.push_back(i);
  std::stable_sort(ord.begin(), ord.end(), [&](int64_t a, int64_t b) {
    return score[static_cast<size_t>(a)] > score[static_cast<size_t>(b)];
  });
  ord.insert(ord.begin(), 0);
  std::vector<char> m(score.size(), 0);
  for (int64_t i = 0; i < std::min<int64_t>(n, static_cast<int64_t>(ord.size())); ++i)
    m[static_cast<size_t>(ord[static_cast<size_t>(i)])] = 1;
  return m;
}

/// sqrt of the Jensen-Shannon divergence with 0 ln 0 = 0.
double sqrtJsd(const std::vector<double> &a, const std::vector<double> &b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    double m = 0.5 * (a[i] + b[i]);
    if (a[i] > 0.0)
      s += 0.5 * a[i] * std::log(a[i] / m);
    if (b[i] > 0.0)
      s += 0.5 * b[i] * std::log(b[i] / m);
  }
  return std::sqrt(std::max(0.0, s));
}

} // namespace

Lines lastQLines(const Tensor &q, const Tensor &k, const VerticalSlashParams &p) {
  checkParams(p);
  detail::checkQK(q, k, "q", "k");
  const int64_t B = q.dim(0), Hq = q.dim(1), Sq = q.dim(2), D = q.dim(3);
  const int64_t Hkv = k.dim(1), Skv = k.dim(2), g = Hq / Hkv;
  const double scale = detail::resolveScale(p.scale, D);
  const int64_t n = std::min(p.last, Sq);
  Lines out{Tensor({B, Hq, Skv}), Tensor({B, Hq, Skv})};
  std::vector<double> row;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h)
      for (int64_t i = Sq - n; i < Sq; ++i) {
        const int64_t ip = i + Skv - Sq;
        if (ip < 0)
          continue; // sees no key: adds nothing
        row.assign(static_cast<size_t>(std::min(ip, Skv - 1) + 1), 0.0);
        for (int64_t j = 0; j < static_cast<int64_t>(row.size()); ++j) {
          double s = 0.0;
          for (int64_t d = 0; d < D; ++d)
            s += q.at(b, h, i, d) * k.at(b, h / g, j, d);
          row[static_cast<size_t>(j)] = scale * s;
        }
        detail::softmaxInPlace(row);
        for (int64_t j = 0; j < static_cast<int64_t>(row.size()); ++j) {
          double x = row[static_cast<size_t>(j)] / static_cast<double>(n);
          out.vertical.at3(b, h, j) += x;
          out.slash.at3(b, h, ip - j) += x;
        }
      }
  return out;
}

BlockSet verticalSlashSelect(const Lines &lines, const Tensor &q, const Tensor &k, int64_t bq,
                             int64_t bk, const BlockSet *aware, const Tensor *kPooled,
                             const VerticalSlashParams &p) {
  checkParams(p);
  detail::checkQK(q, k, "q", "k");
  const int64_t B = q.dim(0), Hq = q.dim(1), Sq = q.dim(2), D = q.dim(3);
  const int64_t Hkv = k.dim(1), Skv = k.dim(2), g = Hq / Hkv;
  if (bq <= 0 || bk <= 0)
    throw Error(fmt::format("vertical_slash needs positive blocks, got {}x{}", bq, bk));
  const int64_t nQB = cdiv(Sq, bq), nKB = cdiv(Skv, bk);
  for (const Tensor *t : {&lines.vertical, &lines.slash})
    if (t->shape != std::vector<int64_t>{B, Hq, Skv})
      throw Error(
          fmt::format("vertical_slash lines must be [B, Hq, Skv] = [{}, {}, {}]", B, Hq, Skv));
  if (aware) {
    if (!kPooled)
      throw Error("vertical_slash with an aware set needs the block-mean keys");
    if (aware->B != B || aware->H != Hq || aware->nQB != nQB || aware->nKB != nKB)
      throw Error(fmt::format("vertical_slash aware set is {}x{}x{}x{} but the result is "
                              "{}x{}x{}x{}",
                              aware->B, aware->H, aware->nQB, aware->nKB, B, Hq, nQB, nKB));
    if (kPooled->shape != std::vector<int64_t>{B, Hkv, nKB, D})
      throw Error(fmt::format("vertical_slash block-mean keys must be [B, Hkv, nKB, D] = "
                              "[{}, {}, {}, {}]",
                              B, Hkv, nKB, D));
  }
  const double scale = detail::resolveScale(p.scale, D);
  const int64_t n = std::min(p.last, Sq);
  const int64_t cap = p.maxBlocks == 0 ? nKB : std::min(p.maxBlocks, nKB);
  BlockSet out;
  out.B = B, out.H = Hq, out.nQB = nQB, out.nKB = nKB, out.bq = bq, out.bk = bk, out.Sq = Sq,
  out.Skv = Skv;
  out.lists.resize(static_cast<size_t>(B * Hq * nQB));
  std::vector<double> v(static_cast<size_t>(Skv)), sl(static_cast<size_t>(Skv));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h) {
      for (int64_t j = 0; j < Skv; ++j)
        v[static_cast<size_t>(j)] = lines.vertical.at3(b, h, j),
        sl[static_cast<size_t>(j)] = lines.slash.at3(b, h, j);
      auto budget = [&](const std::vector<double> &x) {
        return std::min(std::max(coverCount(x, p.gamma) / p.unit + 1, p.minBlocks), cap);
      };
      int64_t kv = budget(v), ks = budget(sl);
      std::vector<double> V(static_cast<size_t>(nKB)), L(static_cast<size_t>(nKB));
      for (int64_t j = 0; j < Skv; ++j) {
        V[static_cast<size_t>(j / bk)] += v[static_cast<size_t>(j)];
        // σ(d) = nKB − 1 − (Skv − 1 − d) / Bk, d = j.
        L[static_cast<size_t>(nKB - 1 - (Skv - 1 - j) / bk)] += sl[static_cast<size_t>(j)];
      }
      bool isAware = false;
      if (aware) {
        std::vector<double> qbar(static_cast<size_t>(D)), e(static_cast<size_t>(nKB));
        for (int64_t i = Sq - n; i < Sq; ++i)
          for (int64_t d = 0; d < D; ++d)
            qbar[static_cast<size_t>(d)] += q.at(b, h, i, d) / static_cast<double>(n);
        for (int64_t J = 0; J < nKB; ++J) {
          double s = 0.0;
          for (int64_t d = 0; d < D; ++d)
            s += qbar[static_cast<size_t>(d)] * kPooled->at(b, h / g, J, d);
          e[static_cast<size_t>(J)] = scale * s;
        }
        detail::softmaxInPlace(e);
        isAware = sqrtJsd(e, V) < p.jsd;
        if (isAware)
          kv = ks = std::min(p.minBlocks, nKB);
      }
      std::vector<char> vm = pick(V, kv), sm = pick(L, ks);
      for (int64_t I = 0; I < nQB; ++I) {
        std::vector<int32_t> &dst = out.row(b, h, I);
        const int64_t dk = diagonalKey(I, bq, Sq, Skv);
        if (dk < 0)
          continue;
        const int64_t diag = dk / bk;
        std::vector<char> keep(static_cast<size_t>(diag + 1), 0);
        for (int64_t J = 0; J <= diag; ++J)
          keep[static_cast<size_t>(J)] =
              vm[static_cast<size_t>(J)] || sm[static_cast<size_t>(diag - J)];
        if (isAware)
          for (int32_t J : aware->row(b, h, I))
            if (J <= diag)
              keep[static_cast<size_t>(J)] = 1;
        for (int64_t J = 0; J <= diag; ++J)
          if (keep[static_cast<size_t>(J)])
            dst.push_back(static_cast<int32_t>(J));
      }
    }
  return out;
}

BlockSet verticalSlash(const Tensor &q, const Tensor &k, int64_t bq, int64_t bk,
                       const BlockSet *aware, const Tensor *kPooled, const VerticalSlashParams &p) {
  return verticalSlashSelect(lastQLines(q, k, p), q, k, bq, bk, aware, kPooled, p);
}

} // namespace sattn::ref
