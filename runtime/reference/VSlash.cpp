//===- VSlash.cpp - MInference token-level vertical-slash set (§12b) ------===//
//
// The kept columns and slash bands of every (batch, head), from the §12a
// lines of the last queries; the allowed keys and the token-level density
// of an attention given such a set are in Attention.cpp / Metrics.cpp.
//
//===----------------------------------------------------------------------===//

#include "runtime/reference/Reference.h"

#include <algorithm>
#include <fmt/format.h>

namespace sattn::ref {

namespace {

void checkParams(const VSlashParams &p, int64_t bq) {
  if (p.last <= 0 || p.vertical < 0 || p.slash < 0 || p.sinkColumns < 0 || p.localSlashes < 1)
    throw Error(fmt::format("vslash needs last >= 1, vertical, slash, sink_columns >= 0 and "
                            "local_slashes >= 1 (the diagonal); got last={} vertical={} "
                            "slash={} sink_columns={} local_slashes={}",
                            p.last, p.vertical, p.slash, p.sinkColumns, p.localSlashes));
  if (bq <= 0)
    throw Error(fmt::format("vslash needs a positive query block, got {}", bq));
}

/// The first n of "x < forced ascending, then the others by descending
/// score, ties to the lower index", ascending.
std::vector<int32_t> pickTokens(const Tensor &line, int64_t b, int64_t h, int64_t len,
                                int64_t forced, int64_t n) {
  forced = std::min(forced, len);
  std::vector<int32_t> ord;
  for (int64_t x = forced; x < len; ++x)
    ord.push_back(static_cast<int32_t>(x));
  std::stable_sort(ord.begin(), ord.end(),
                   [&](int32_t a, int32_t c) { return line.at3(b, h, a) > line.at3(b, h, c); });
  std::vector<int32_t> out;
  for (int64_t x = 0; x < forced; ++x)
    out.push_back(static_cast<int32_t>(x));
  out.insert(out.end(), ord.begin(), ord.end());
  out.resize(static_cast<size_t>(std::min<int64_t>(n, len)));
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace

VSlashSet vslashSelect(const Lines &lines, int64_t Sq, int64_t bq, const VSlashParams &p) {
  checkParams(p, bq);
  const Tensor &v = lines.vertical;
  if (v.shape.size() != 3 || lines.slash.shape != v.shape)
    throw Error("vslash lines must both be [B, Hq, Skv]");
  const int64_t B = v.dim(0), H = v.dim(1), Skv = v.dim(2);
  VSlashSet out;
  out.B = B, out.H = H, out.Sq = Sq, out.Skv = Skv, out.bq = bq;
  out.columns.resize(static_cast<size_t>(B * H));
  out.intervals.resize(static_cast<size_t>(B * H));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const size_t bh = static_cast<size_t>(b * H + h);
      out.columns[bh] =
          pickTokens(v, b, h, Skv, p.sinkColumns, std::max(p.vertical, p.sinkColumns));
      std::vector<int32_t> d =
          pickTokens(lines.slash, b, h, Skv, p.localSlashes, std::max(p.slash, p.localSlashes));
      auto &iv = out.intervals[bh];
      for (int32_t x : d) {
        const int32_t hi = static_cast<int32_t>(x + bq);
        if (!iv.empty() && x <= iv.back().second)
          iv.back().second = std::max(iv.back().second, hi);
        else
          iv.emplace_back(x, hi);
      }
    }
  return out;
}

VSlashSet vslash(const Tensor &q, const Tensor &k, int64_t bq, const VSlashParams &p) {
  checkParams(p, bq);
  VerticalSlashParams lp;
  lp.last = p.last;
  return vslashSelect(lastQLines(q, k, lp), q.dim(2), bq, p);
}

BlockSet vslashBlocks(const VSlashSet &vs) {
  BlockSet out;
  const int64_t bq = vs.bq;
  out.B = vs.B, out.H = vs.H, out.Sq = vs.Sq, out.Skv = vs.Skv, out.bq = bq, out.bk = bq;
  out.nQB = cdiv(vs.Sq, bq), out.nKB = cdiv(vs.Skv, bq);
  out.lists.resize(static_cast<size_t>(vs.B * vs.H * out.nQB));
  std::vector<char> hit(static_cast<size_t>(out.nKB));
  for (int64_t bh = 0; bh < vs.B * vs.H; ++bh)
    for (int64_t I = 0; I < out.nQB; ++I) {
      const int64_t e = diagonalKey(I, bq, vs.Sq, vs.Skv) + 1;
      if (e <= 0)
        continue;
      std::fill(hit.begin(), hit.end(), 0);
      for (auto [lo, hi] : vs.intervals[static_cast<size_t>(bh)]) {
        const int64_t a = std::max<int64_t>(0, e - hi), z = e - lo;
        for (int64_t J = a / bq; a < z && J <= (z - 1) / bq; ++J)
          hit[static_cast<size_t>(J)] = 1;
      }
      for (int32_t j : vs.columns[static_cast<size_t>(bh)])
        if (j < e)
          hit[static_cast<size_t>(j / bq)] = 1;
      auto &row = out.lists[static_cast<size_t>(bh * out.nQB + I)];
      for (int64_t J = 0; J < out.nKB; ++J)
        if (hit[static_cast<size_t>(J)])
          row.push_back(static_cast<int32_t>(J));
    }
  return out;
}

} // namespace sattn::ref
