//===- antidiag.cuh - XAttention antidiagonal block scores (§4a) ----------===//
//
// antidiag_scores<Cfg>: sattn.antidiag_scores, the correct-first CUDA-core
// version (the tensor-core one is open, issue #7). One CTA per (query
// block, head, batch); its regrouped rows (BQ / STRIDE rows of STRIDE·D
// values, queries reversed) are staged in shared memory as fp32. One warp
// per regrouped row computes each logit as a lane-split dot product with
// the column's STRIDE consecutive keys (coalesced rows of K) and a warp
// sum; pass 1 keeps the online max and denominator (log2 domain), pass 2
// recomputes the logits and sums the probabilities per KV block. Each
// warp owns a row of per-block partial sums, added in warp order at the
// end, so the scores are the same bits on every run.
//
// Host side: everything above the `__CUDACC__` guard is plain C++.
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_DEVICE_ANTIDIAG_CUH
#define SATTN_DEVICE_ANTIDIAG_CUH

#include "params.cuh"

namespace sattn {
namespace dev {

/// Launch contract: blockDim kAntidiagThreads, grid (nQB, Hq, B), dynamic
/// smem antidiag_smem_bytes(BQ, D, nKB).
enum : int { kAntidiagThreads = 128 };

constexpr long long antidiag_smem_bytes(int bq, int headDim, int nKB) {
  return 4ll * bq * headDim + 4ll * (kAntidiagThreads / 32) * nKB;
}

} // namespace dev
} // namespace sattn

#if defined(__CUDACC__)

#include "ptx.cuh"
#include "types.cuh"

namespace sattn {
namespace dev {

template <class Cfg> __device__ void antidiag_scores(const AntidiagParams &p) {
  using ptx::ex2;
  constexpr int S = Cfg::STRIDE, D = Cfg::HEAD_DIM, G = Cfg::HEADS / Cfg::KV_HEADS;
  constexpr int NT = kAntidiagThreads, NW = NT / 32, W = S * D;
  constexpr int RPB = Cfg::BQ / S, CPB = Cfg::BK / S; // regrouped rows / columns per block
  constexpr float kC = Cfg::SCALE / S * 1.4426950408889634f;
  static_assert(Cfg::HEADS % Cfg::KV_HEADS == 0, "antidiag_scores: HEADS % KV_HEADS must be 0");
  static_assert(S > 0 && Cfg::BQ % S == 0 && Cfg::BK % S == 0,
                "antidiag_scores: STRIDE must divide BQ and BK (semantics sec. 4a)");
  extern __shared__ float sattn_antidiag_smem[];
  float *rows = sattn_antidiag_smem;   // [RPB][W]
  float *part = rows + RPB * W;        // [NW][nKB]
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int I = blockIdx.x, h = blockIdx.y, b = blockIdx.z, hk = h / G;
  const int Sq = p.q.S, Skv = p.k.S, nC = (Skv + S - 1) / S, nKB = p.nKB;
  for (int x = tid; x < RPB * W; x += NT) {
    int rr = x / W, t = (x % W) / D, d = x % D;
    int i = (I * RPB + rr) * S + S - 1 - t; // queries reversed within the row
    rows[x] = i < Sq ? load_elem<Cfg::DTYPE>(p.q.ptr, offset(p.q, b, h, i, d)) : 0.f;
  }
  for (int x = tid; x < NW * nKB; x += NT)
    part[x] = 0.f;
  __syncthreads();
  // Logit (log2 domain) of regrouped row `row` and column c; every lane
  // returns the same value.
  auto logit = [&](const float *row, int c) {
    float acc = 0.f;
#pragma unroll 4
    for (int e = lane; e < W; e += 32) {
      int j = c * S + e / D;
      if (j < Skv)
        acc = fmaf(row[e], load_elem<Cfg::DTYPE>(p.k.ptr, offset(p.k, b, hk, j, e % D)), acc);
    }
    return warp_sum(acc) * kC;
  };
  for (int rr = warp; rr < RPB; rr += NW) {
    const int r = I * RPB + rr;
    if (r * S >= Sq)
      break; // past the last regrouped row
    const int last = min(r * S + S - 1, Sq - 1) + Skv - Sq;
    const int vis = !Cfg::CAUSAL ? nC : last < 0 ? 0 : min(nC, last / S + 1);
    const float *row = rows + rr * W;
    float m = neg_inf(), l = 0.f;
    for (int c = 0; c < vis; ++c) {
      float z = logit(row, c), mNew = fmaxf(m, z);
      l = l * ex2(m - mNew) + ex2(z - mNew);
      m = mNew;
    }
    float acc = 0.f, inv = l > 0.f ? 1.f / l : 0.f;
    int curJ = 0;
    for (int c = 0; c < vis; ++c) {
      float pr = ex2(logit(row, c) - m) * inv;
      int J = c / CPB;
      if (J != curJ) {
        if (lane == 0)
          part[warp * nKB + curJ] += acc;
        acc = 0.f, curJ = J;
      }
      acc += pr;
    }
    if (lane == 0 && vis > 0)
      part[warp * nKB + curJ] += acc;
  }
  __syncthreads();
  float *out = p.out + ((static_cast<i64>(b) * Cfg::HEADS + h) * p.nQB + I) * nKB;
  for (int J = tid; J < nKB; J += NT) {
    float s = 0.f;
#pragma unroll
    for (int w = 0; w < NW; ++w)
      s += part[w * nKB + J];
    out[J] = s;
  }
}

} // namespace dev
} // namespace sattn

#endif // __CUDACC__

#endif // SATTN_DEVICE_ANTIDIAG_CUH
