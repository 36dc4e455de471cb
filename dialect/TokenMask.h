//===- TokenMask.h - the causal/window/sinks token mask as a value --------===//
//
// The token mask of semantics §1 as a small value type, with the one
// question the passes ask of it: does mask M allow every (i, j) that mask A
// allows? Used to drop block sets that keep everything a mask allows.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstdint>

namespace sattn {

struct TokenMask {
  bool causal = false;
  int64_t window = 0; // 0: no window
  int64_t sinks = 0;  // only meaningful with a window

  bool isDense() const { return !causal && window == 0; }

  /// True when every pair allowed by `a` is allowed by *this.
  bool covers(const TokenMask &a) const {
    if (!causal)
      return true; // dense allows everything
    if (!a.causal)
      return false;
    if (window == 0)
      return true; // causal covers every causal mask
    if (a.window == 0)
      return false;
    return a.window <= window && a.sinks <= sinks;
  }
  bool operator==(const TokenMask &o) const {
    return causal == o.causal && window == o.window && sinks == o.sinks;
  }
};

} // namespace sattn
