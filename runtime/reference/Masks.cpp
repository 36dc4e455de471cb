//===- Masks.cpp - Positions, token masks and block visibility ------------===//
//
// The §1 and §5 helpers of docs/semantics.md: bottom-right alignment, the
// causal / window / sink token mask, the diagonal block of a query block and
// the visible and forced KV blocks of a query-block row. Every kernel derives
// its notion of "may see" from these few functions so that the selection
// kernels and attention cannot drift apart.
//
//===----------------------------------------------------------------------===//

#include "runtime/reference/Reference.h"

#include <algorithm>
#include <fmt/format.h>

namespace sattn::ref {

int64_t cdiv(int64_t a, int64_t b) {
  if (b <= 0)
    throw Error(fmt::format("cdiv({}, {}): the divisor (a block or group size) must "
                            "be positive",
                            a, b));
  if (a < 0)
    throw Error(fmt::format("cdiv({}, {}): the length must be >= 0", a, b));
  return (a + b - 1) / b;
}

int64_t diagonalKey(int64_t I, int64_t bq, int64_t Sq, int64_t Skv) {
  return std::min((I + 1) * bq - 1, Sq - 1) + Skv - Sq;
}

bool allowed(const Mask &m, int64_t i, int64_t j, int64_t Sq, int64_t Skv) {
  if (j < 0 || j >= Skv)
    return false;
  if (!m.causal)
    return true;
  int64_t ip = i + Skv - Sq; // bottom-right alignment
  if (j > ip)
    return false;
  if (m.window <= 0)
    return true;
  return j > ip - m.window || j < m.sinks;
}

std::vector<int32_t> visibleBlocks(int64_t I, int64_t bq, int64_t bk, int64_t Sq, int64_t Skv,
                                   bool causal) {
  int64_t nKB = cdiv(Skv, bk);
  int64_t last = nKB - 1;
  if (causal) {
    int64_t dk = diagonalKey(I, bq, Sq, Skv);
    if (dk < 0)
      return {};
    last = dk / bk;
  }
  std::vector<int32_t> out;
  for (int64_t J = 0; J <= last; ++J)
    out.push_back(static_cast<int32_t>(J));
  return out;
}

std::vector<int32_t> forcedBlocks(const Forced &f, int64_t I, int64_t bq, int64_t bk, int64_t Sq,
                                  int64_t Skv, bool causal) {
  if (f.sink < 0 || f.local < 0)
    throw Error(
        fmt::format("forced blocks sink={} local={}: counts must be >= 0", f.sink, f.local));
  std::vector<int32_t> visible = visibleBlocks(I, bq, bk, Sq, Skv, causal);
  int64_t dk = diagonalKey(I, bq, Sq, Skv);
  // Without a diagonal key (non-causal rows above the aligned diagonal) there
  // is no diag(I), so only the sink rule can force anything.
  bool hasDiag = dk >= 0;
  int64_t diag = hasDiag ? dk / bk : -1;
  std::vector<int32_t> out;
  for (int32_t J : visible) {
    bool keep = J < f.sink;
    if (hasDiag && f.local > 0 && J > diag - f.local && J <= diag)
      keep = true;
    if (hasDiag && f.diagonal && J == diag)
      keep = true;
    if (keep)
      out.push_back(J);
  }
  return out;
}

namespace detail {

void checkMask(const Mask &m) {
  if (m.window < 0 || m.sinks < 0)
    throw Error(fmt::format("mask window={} sinks={}: both must be >= 0 (window 0 "
                            "means no window)",
                            m.window, m.sinks));
  if (m.window > 0 && !m.causal)
    throw Error(fmt::format("mask window={} needs causal (semantics §1); set causal "
                            "or drop the window",
                            m.window));
  if (m.sinks > 0 && m.window == 0)
    throw Error(fmt::format("mask sinks={} need a window (semantics §1); set a "
                            "window or drop the sinks",
                            m.sinks));
}

} // namespace detail
} // namespace sattn::ref
