//===- classify.cuh - OmniSparse lazy / active query rows (semantics §10) -===//
//
// classify_queries<Cfg>: the query set of sattn.classify_queries, from the
// mean-pooled keys a `pool` launch wrote just before. One launch:
//
//   1. every warp takes query rows; per row the lanes walk the visible key
//      groups (t * KEY_GROUP <= i') with an online softmax that also sums
//      the near groups (sinks or the local window), so the row's near mass
//      is near / total without a second pass. The lazy flag goes to a
//      workspace byte per row.
//   2. the last CTA of a (batch, head) to finish (an atomic counter, zero at
//      launch) numbers the lazy rows in order, keeps every KEEP_EVERY-th of
//      them active, and writes the active rows ascending with their count.
//
// fp32 throughout (the reference is float64): a row whose mass sits within
// ~1e-6 of THETA can classify differently; the GPU tests allow exactly those.
// First version: CUDA cores, not tensor cores (docs/performance.md).
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_DEVICE_CLASSIFY_CUH
#define SATTN_DEVICE_CLASSIFY_CUH

#include "params.cuh"

namespace sattn {
namespace dev {

/// Launch contract: blockDim kClassifyThreads, grid (cdiv(Sq,
/// kClassifyRows), Hq, B), no dynamic shared memory.
enum : int { kClassifyThreads = 256, kClassifyRows = 32 };

} // namespace dev
} // namespace sattn

#if defined(__CUDACC__)

#include "types.cuh"

namespace sattn {
namespace dev {
namespace classify_detail {

/// Online (max, total, near) merge of two partial softmax sums.
__device__ __forceinline__ void merge(float &m, float &l, float &n, float m2, float l2, float n2) {
  float M = fmaxf(m, m2);
  if (M == neg_inf())
    return;
  float a = __expf(m - M), c = __expf(m2 - M);
  l = l * a + l2 * c;
  n = n * a + n2 * c;
  m = M;
}

} // namespace classify_detail

/// sattn.classify_queries. Launch: see kClassifyThreads.
template <class Cfg> __device__ void classify_queries(const ClassifyParams &p) {
  constexpr int D = Cfg::HEAD_DIM, NT = kClassifyThreads, NW = NT / 32;
  constexpr int G = Cfg::HEADS / Cfg::KV_HEADS, C = Cfg::KEY_GROUP;
  static_assert(C > 0 && Cfg::WINDOW >= 0 && Cfg::SINKS >= 0 && Cfg::KEEP_EVERY >= 0,
                "classify_queries: KEY_GROUP > 0 and WINDOW, SINKS, KEEP_EVERY >= 0");
  __shared__ float qs[NW][D];
  __shared__ int red[NW];
  __shared__ int lastFlag;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int h = blockIdx.y, b = blockIdx.z, hk = h / G;
  const int Sq = p.q.S, Skv = p.Skv;
  const float *kp = p.kp + (static_cast<i64>(b) * Cfg::KV_HEADS + hk) * p.nG * D;
  const i64 bh = static_cast<i64>(b) * Cfg::HEADS + h;
  unsigned char *lazy = p.lazy + bh * Sq;

  const int r0 = blockIdx.x * kClassifyRows, r1 = min(Sq, r0 + kClassifyRows);
  for (int i = r0 + warp; i < r1; i += NW) {
    for (int d = lane; d < D; d += 32)
      qs[warp][d] = load_elem<Cfg::DTYPE>(p.q.ptr, offset(p.q, b, h, i, d));
    __syncwarp();
    const int ip = i + Skv - Sq;
    const int vis = ip < 0 ? 0 : min(p.nG, ip / C + 1);
    float m = neg_inf(), l = 0.f, n = 0.f;
    for (int t = lane; t < vis; t += 32) {
      const float *kr = kp + static_cast<i64>(t) * D;
      float s = 0.f;
#pragma unroll 8
      for (int d = 0; d < D; ++d)
        s = fmaf(qs[warp][d], kr[d], s);
      s *= Cfg::SCALE;
      bool near = t * C < Cfg::SINKS || min((t + 1) * C, Skv) - 1 > ip - Cfg::WINDOW;
      classify_detail::merge(m, l, n, s, 1.f, near ? 1.f : 0.f);
    }
    for (int o = 16; o > 0; o >>= 1) {
      float m2 = __shfl_xor_sync(0xffffffffu, m, o), l2 = __shfl_xor_sync(0xffffffffu, l, o),
            n2 = __shfl_xor_sync(0xffffffffu, n, o);
      classify_detail::merge(m, l, n, m2, l2, n2);
    }
    if (lane == 0) {
      float mass = l > 0.f ? n / l : 0.f;
      lazy[i] = mass >= static_cast<float>(Cfg::THETA) ? 1 : 0;
    }
    __syncwarp();
  }

  // The last CTA of this (b, h) numbers the lazy rows and writes the set.
  __threadfence();
  __syncthreads();
  if (tid == 0)
    lastFlag = atomicAdd(p.done + bh, 1) == static_cast<int>(gridDim.x) - 1;
  __syncthreads();
  if (!lastFlag)
    return;
  __threadfence();
  const volatile unsigned char *flags = lazy;
  const int per = (Sq + NT - 1) / NT, lo = min(Sq, tid * per), hi = min(Sq, lo + per);
  int nLazy = 0;
  for (int i = lo; i < hi; ++i)
    nLazy += flags[i];
  int lazyTotal, activeTotal;
  int m = block_exclusive_scan(nLazy, red, lazyTotal); // lazy rows before this range
  auto active = [&](int i, int &lazySeen) {
    if (!flags[i])
      return true;
    bool keep = Cfg::KEEP_EVERY > 0 && lazySeen % Cfg::KEEP_EVERY == Cfg::KEEP_EVERY - 1;
    ++lazySeen;
    return keep;
  };
  int nActive = 0, seen = m;
  for (int i = lo; i < hi; ++i)
    nActive += active(i, seen);
  int at = block_exclusive_scan(nActive, red, activeTotal);
  int *rows = p.q_rows + bh * Sq;
  seen = m;
  for (int i = lo; i < hi; ++i)
    if (active(i, seen))
      rows[at++] = i;
  if (tid == 0)
    p.q_counts[bh] = activeTotal;
}

} // namespace dev
} // namespace sattn

#endif // __CUDACC__

#endif // SATTN_DEVICE_CLASSIFY_CUH
