//===- estimation.cuh - token pooling and pooled block scores (§3, §4) ----===//
//
// The cheap estimators in front of block selection: `pool` averages (or
// takes the max / min of) groups of consecutive tokens, and `block_scores`
// turns pooled queries and keys into the block-level attention estimate
// S[I, J] of docs/semantics.md §4. Both follow the float64 reference in
// runtime/reference/Estimation.cpp step for step, in fp32.
//
// First versions: simple and obviously right before fast. Every output
// element is produced by one fixed thread in a fixed order, so the results
// are bitwise reproducible from run to run (selection breaks ties on them).
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_DEVICE_ESTIMATION_CUH
#define SATTN_DEVICE_ESTIMATION_CUH

#include "masks.cuh"
#include "params.cuh"
#include "types.cuh"

namespace sattn {
namespace dev {

namespace estimation_detail {

/// Block-wide max / sum of one value per thread, the same result in every
/// thread. `red` holds NT / 32 floats; the leading barrier lets the previous
/// reduction's readers finish before it is overwritten. Every thread folds
/// the warp partials in the same order, so the result is deterministic.
template <int NT, bool MAX> __device__ __forceinline__ float block_reduce(float x, float *red) {
  x = MAX ? warp_max(x) : warp_sum(x);
  __syncthreads();
  if (threadIdx.x % 32 == 0)
    red[threadIdx.x / 32] = x;
  __syncthreads();
  float r = red[0];
#pragma unroll
  for (int w = 1; w < NT / 32; ++w)
    r = MAX ? fmaxf(r, red[w]) : r + red[w];
  return r;
}

/// scale * q . k for one pooled key row (fp32, d ascending). q is in shared
/// memory (a broadcast read); k is one contiguous row of D floats. Scalar
/// loads: workspace buffers carry no alignment promise beyond 4 bytes.
template <int D>
__device__ __forceinline__ float scaled_dot(const float *q, const float *k, float scale) {
  float acc = 0.0f;
#pragma unroll 4
  for (int d = 0; d < D; ++d)
    acc = fmaf(q[d], k[d], acc);
  return scale * acc;
}

} // namespace estimation_detail

//===----------------------------------------------------------------------===//
// pool (§3)
//===----------------------------------------------------------------------===//

/// One CTA per (pooled row r, head h, batch b); threads stride over the head
/// dimension and walk the group's tokens in order, like the reference.
/// grid (nOut, IN_HEADS, B), block kPoolThreads, no dynamic shared memory.
/// in: Tensor4 of DTYPE [B, IN_HEADS, S, D]; out: fp32 contiguous
/// [B, IN_HEADS, nOut, D]. The last group may be partial and pools only the
/// tokens it has.
template <class Cfg> __device__ void pool(const PoolParams &p) {
  static_assert(Cfg::GROUP > 0, "pool: GROUP (tokens per group) must be positive");
  static_assert(Cfg::IN_HEADS > 0, "pool: IN_HEADS must be positive");
  static_assert(Cfg::HEAD_DIM > 0, "pool: HEAD_DIM must be positive");
  static_assert(Cfg::KIND == PoolKind::mean || Cfg::KIND == PoolKind::max ||
                    Cfg::KIND == PoolKind::min,
                "pool: KIND must be mean, max or min");
  constexpr int D = Cfg::HEAD_DIM;

  const int r = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int lo = r * Cfg::GROUP;
  // The host launches exactly nOut = cdiv(S, GROUP) rows; stay inside anyway.
  if (r >= p.nOut || lo >= p.in.S)
    return;
  const int hi = min(p.in.S, lo + Cfg::GROUP);
  float *out = p.out + ((static_cast<i64>(b) * Cfg::IN_HEADS + h) * p.nOut + r) * D;

  for (int d = threadIdx.x; d < D; d += kPoolThreads) {
    float acc = load_elem<Cfg::DTYPE>(p.in.ptr, offset(p.in, b, h, lo, d));
    for (int s = lo + 1; s < hi; ++s) {
      const float e = load_elem<Cfg::DTYPE>(p.in.ptr, offset(p.in, b, h, s, d));
      if (Cfg::KIND == PoolKind::mean)
        acc += e;
      else if (Cfg::KIND == PoolKind::max)
        acc = fmaxf(acc, e);
      else
        acc = fminf(acc, e);
    }
    out[d] = Cfg::KIND == PoolKind::mean ? acc / static_cast<float>(hi - lo) : acc;
  }
}

//===----------------------------------------------------------------------===//
// block_scores (§4)
//===----------------------------------------------------------------------===//

/// One CTA per (query block I, query head h, batch b). For each pooled row
/// r of block I, in ascending order:
///   1. threads stride over the visible pooled key groups t (a prefix:
///      t * K_GROUP <= r' when causal) for the max logit (block reduction);
///   2. again for the softmax denominator (block reduction);
///   3. thread `tid` owns KV blocks J = tid, tid + NT, ... and adds the
///      probabilities of J's groups into acc[J] (dynamic shared memory,
///      nKB floats). Owning J instead of using atomics fixes the summation
///      order, so scores are bitwise reproducible.
/// Logits are recomputed in every pass instead of stored: the number of
/// groups per row is unbounded (K_GROUP = 1 means unpooled keys).
/// Finally S[I, J] = acc[J] / n_I; every entry of the row is written, zeros
/// included (invisible blocks, rows that see nothing).
/// grid (nQB, HEADS, B), block kScoresThreads, dynamic smem nKB * 4 bytes.
template <class Cfg> __device__ void block_scores(const ScoresParams &p) {
  static_assert(Cfg::HEADS > 0 && Cfg::KV_HEADS > 0 && Cfg::HEADS % Cfg::KV_HEADS == 0,
                "block_scores: HEADS must be a multiple of KV_HEADS (GQA)");
  static_assert(Cfg::HEAD_DIM > 0, "block_scores: HEAD_DIM must be positive");
  static_assert(Cfg::BQ > 0 && Cfg::BK > 0, "block_scores: block sizes must be positive");
  static_assert(Cfg::Q_GROUP > 0 && Cfg::BQ % Cfg::Q_GROUP == 0,
                "block_scores: Q_GROUP must divide BQ (semantics sec. 4: cq | Bq)");
  static_assert(Cfg::K_GROUP > 0 && Cfg::BK % Cfg::K_GROUP == 0,
                "block_scores: K_GROUP must divide BK (semantics sec. 4: ck | Bk)");
  static_assert(kScoresThreads % 32 == 0 && kScoresThreads <= 1024,
                "block_scores: kScoresThreads must be whole warps");
  constexpr int NT = kScoresThreads;
  constexpr int D = Cfg::HEAD_DIM;
  constexpr int CQ = Cfg::Q_GROUP, CK = Cfg::K_GROUP;
  constexpr int GQA = Cfg::HEADS / Cfg::KV_HEADS;
  constexpr int ROWS = Cfg::BQ / CQ;   // pooled rows of a full query block
  constexpr int GROUPS = Cfg::BK / CK; // pooled key groups of a KV block

  extern __shared__ float sattn_scores_acc[]; // [nKB]
  __shared__ float qs[D];
  __shared__ float red[NT / 32];
  float *acc = sattn_scores_acc;

  const int I = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int tid = threadIdx.x;
  const int nKB = p.nKB, nk = p.nk;
  const float scale = Cfg::SCALE;

  for (int J = tid; J < nKB; J += NT)
    acc[J] = 0.0f;

  // Pooled rows of block I: r * CQ / BQ == I (CQ | BQ makes this a range).
  const int r0 = I * ROWS, r1 = min(r0 + ROWS, p.nq);
  const float *qrow = p.qp + ((static_cast<i64>(b) * Cfg::HEADS + h) * p.nq) * D;
  const float *kbase = p.kp + ((static_cast<i64>(b) * Cfg::KV_HEADS + h / GQA) * nk) * D;

  // scale * qp[r] . kp[t], recomputed by each pass (see above).
  auto logit = [&](int t) {
    return estimation_detail::scaled_dot<D>(qs, kbase + static_cast<i64>(t) * D, scale);
  };

  for (int r = r0; r < r1; ++r) {
    // Block-uniform: T depends on r alone, so every thread takes the same
    // path through the barriers below.
    const int rp = min((r + 1) * CQ - 1, p.Sq - 1) + p.Skv - p.Sq; // last query of r
    const int T = !Cfg::CAUSAL ? nk : rp < 0 ? 0 : min(nk, rp / CK + 1);
    if (T == 0)
      continue; // sees no key group: its probabilities are all 0

    __syncthreads(); // the previous row's readers of qs are done
    for (int d = tid; d < D; d += NT)
      qs[d] = qrow[static_cast<i64>(r) * D + d];
    __syncthreads();

    float m = neg_inf();
    for (int t = tid; t < T; t += NT)
      m = fmaxf(m, logit(t));
    m = estimation_detail::block_reduce<NT, true>(m, red);

    float s = 0.0f;
    for (int t = tid; t < T; t += NT)
      s += expf(logit(t) - m);
    s = estimation_detail::block_reduce<NT, false>(s, red);
    const float inv = 1.0f / s; // s >= 1: the max logit contributes exp(0)

    for (int J = tid; J < nKB; J += NT) {
      const int t0 = J * GROUPS, t1 = min(t0 + GROUPS, T); // empty past the visible prefix
      float part = 0.0f;
      for (int t = t0; t < t1; ++t)
        part += expf(logit(t) - m) * inv;
      acc[J] += part;
    }
  }

  // acc[J] was only ever touched by thread J % NT: no barrier needed.
  const int nI = r1 - r0;
  float *out = p.out + ((static_cast<i64>(b) * Cfg::HEADS + h) * p.nQB + I) * nKB;
  for (int J = tid; J < nKB; J += NT)
    out[J] = nI > 0 ? acc[J] / static_cast<float>(nI) : 0.0f;
}

} // namespace dev
} // namespace sattn

#endif // SATTN_DEVICE_ESTIMATION_CUH
