//===- masks.cuh - token masks and block visibility (semantics §1, §5) ----===//
//
// Device versions of the rules of docs/semantics.md §1 and §5, shared by
// the attention, estimation and selection kernels so they cannot disagree.
// All positions are bottom-right aligned: row i sits at i + Skv - Sq.
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_DEVICE_MASKS_CUH
#define SATTN_DEVICE_MASKS_CUH

#include "params.cuh"

namespace sattn {
namespace dev {

/// Key j is allowed for row i by causal / window / sinks (window 0: none).
template <bool CAUSAL, int WINDOW, int SINKS>
__device__ __forceinline__ bool token_allowed(int i, int j, int Sq, int Skv) {
  int ip = i + Skv - Sq;
  if (CAUSAL && j > ip)
    return false;
  if (WINDOW > 0 && j <= ip - WINDOW && !(j < SINKS))
    return false;
  return true;
}

/// Same rule with the mask given at run time (static block patterns).
__device__ __forceinline__ bool token_allowed_rt(bool causal, int window, int sinks, int i, int j,
                                                 int Sq, int Skv) {
  int ip = i + Skv - Sq;
  if (causal && j > ip)
    return false;
  if (window > 0 && j <= ip - window && !(j < sinks))
    return false;
  return true;
}

/// Diagonal key dk(I) of query block I (may be negative).
__device__ __forceinline__ int diagonal_key(int I, int bq, int Sq, int Skv) {
  int last = min((I + 1) * bq - 1, Sq - 1);
  return last + Skv - Sq;
}

/// Number of visible KV blocks of query block I: they are 0 .. n-1.
__device__ __forceinline__ int visible_blocks(bool causal, int I, int bq, int bk, int Sq, int Skv,
                                              int nKB) {
  if (!causal)
    return nKB;
  int dk = diagonal_key(I, bq, Sq, Skv);
  return dk < 0 ? 0 : min(dk / bk + 1, nKB);
}

/// Whether block J of row I is forced by sink / local / diagonal (§5),
/// given that J is visible. diag < 0 means the row has no diagonal.
__device__ __forceinline__ bool forced_block(int J, int diag, int fSink, int fLocal, bool fDiag) {
  if (J < fSink)
    return true;
  if (diag >= 0 && fLocal > 0 && J > diag - fLocal && J <= diag)
    return true;
  return fDiag && J == diag;
}

/// Whether the static pattern admits KV block J for query block I (§8):
/// some (i, j) of the pair is allowed by the token mask.
__device__ __forceinline__ bool pattern_block(bool causal, int window, int sinks, int I, int J,
                                              int bq, int bk, int Sq, int Skv) {
  int i0 = I * bq, i1 = min((I + 1) * bq, Sq) - 1;
  int j0 = J * bk, j1 = min((J + 1) * bk, Skv) - 1;
  if (i0 > i1 || j0 > j1)
    return false;
  int ip0 = i0 + Skv - Sq, ip1 = i1 + Skv - Sq;
  // Causal: the smallest key must be visible to the last row.
  if (causal && j0 > ip1)
    return false;
  if (window == 0)
    return true;
  // Sinks: any key j < sinks with j <= ip1 (causal) in the block.
  if (j0 < sinks && j0 <= ip1)
    return true;
  // Window: some row i with j in (ip - W, ip]: the largest key seen by the
  // last row's window must reach j0, and the block's last key must exceed
  // the first row's window start.
  int hi = min(j1, ip1);
  return hi >= j0 && hi > ip0 - window;
}

} // namespace dev
} // namespace sattn

#endif // SATTN_DEVICE_MASKS_CUH
