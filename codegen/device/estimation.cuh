//===- estimation.cuh - token pooling and pooled block scores (§3, §4) ----===//
//
// The cheap estimators in front of block selection: `pool` averages (or
// takes the max / min of) groups of consecutive tokens, and `block_scores`
// turns pooled queries and keys into the block-level attention estimate
// S[I, J] of docs/semantics.md §4. Both follow the float64 reference in
// runtime/reference/Estimation.cpp step for step, in fp32.
//
// block_scores runs on tensor cores (split-precision mma.sync, see
// split_mma.cuh) when the head dim is a multiple of 16 up to 256 and the
// pooled rows of a query block (BQ / Q_GROUP) divide 64 and the pooled keys
// of a KV block (BK / K_GROUP) divide or are a multiple of the key tile;
// other shapes take the CUDA-core version. Every output element is summed
// in a fixed order (fixed threads, fixed shuffle trees, no atomics), so the
// scores are bitwise reproducible from run to run (selection breaks ties on
// them).
//
// Host side: everything above the `__CUDACC__` guard is plain C++.
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_DEVICE_ESTIMATION_CUH
#define SATTN_DEVICE_ESTIMATION_CUH

#include "params.cuh"

namespace sattn {
namespace dev {

/// Pooled query rows per CTA of the tensor-core block_scores (16 per warp).
/// Three CTAs per SM (the register cap this sets, 168, holds the batched
/// key loads of split_mma::stage_rows without spills): each CTA waits on
/// its key tile's loads between barriers, and the other CTAs' mma fill
/// that wait.
enum : int { kScoresMmaRows = kScoresThreads / 2, kScoresMinBlocks = 3 };

/// Pooled keys per shared-memory tile of the tensor-core block_scores.
constexpr int scores_key_tile(int headDim) { return headDim <= 128 ? 64 : 32; }

/// Whether block_scores runs on tensor cores: `rows` = BQ / Q_GROUP pooled
/// rows per query block, `groups` = BK / K_GROUP pooled keys per KV block.
constexpr bool scores_mma(int headDim, int rows, int groups) {
  return headDim % 16 == 0 && headDim <= 256 && rows > 0 && kScoresMmaRows % rows == 0 &&
         groups > 0 &&
         (scores_key_tile(headDim) % groups == 0 || groups % scores_key_tile(headDim) == 0);
}

/// Dynamic shared memory of the tensor-core block_scores: the key tile as
/// two 16-bit halves (rows padded by 8 values), the rows' max and
/// 1 / denominator, and the next item.
constexpr int scores_mma_smem_bytes(int headDim) {
  return 2 * scores_key_tile(headDim) * (headDim + 8) * 2 + kScoresMmaRows * 8 + 16;
}

/// Whether the tensor-core block_scores takes its one-pass form (a
/// workspace slot per persistent CTA) or the two-pass one (max and
/// denominator, then probabilities; a grid of row tiles). The one-pass
/// output phase reads the slot with one float per pooled row of a query
/// block: with fewer than kScoresOnePassRows rows per block those reads are
/// sector-wasting and its cost exceeds the saved GEMM pass (measured: 64-token
/// pooling over 64-blocks, one row per block, 0.97 -> 3.08 ms at 128k), so
/// such shapes keep the two-pass kernel.
enum : int { kScoresOnePassRows = 8 };
constexpr bool scores_one_pass(int rows) { return rows >= kScoresOnePassRows; }

/// Dynamic shared memory of the two-pass tensor-core block_scores: the key
/// tile as two 16-bit halves and the probability tile.
constexpr int scores_2pass_smem_bytes(int headDim) {
  return 2 * scores_key_tile(headDim) * (headDim + 8) * 2 +
         kScoresMmaRows * (scores_key_tile(headDim) + 8) * 4;
}

/// Work items of the tensor-core block_scores: kScoresMmaRows pooled rows
/// of one (batch, head) each.
constexpr long long scores_mma_items(long long nq, int heads, int batch) {
  return (nq + kScoresMmaRows - 1) / kScoresMmaRows * heads * batch;
}

/// Persistent CTAs: kScoresMinBlocks per SM, never more than the items.
constexpr long long scores_mma_grid(long long items, int sms) {
  return items < static_cast<long long>(kScoresMinBlocks) * sms
             ? items
             : static_cast<long long>(kScoresMinBlocks) * sms;
}

/// Workspace floats: per CTA, one log-sum-exp per (pooled row, KV block).
constexpr long long scores_ws_floats(long long ctas, int nKB) {
  return ctas * kScoresMmaRows * static_cast<long long>(nKB);
}

} // namespace dev
} // namespace sattn

#if defined(__CUDACC__)

#include "masks.cuh"
#include "split_mma.cuh"
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

/// §4c (Quest): scale times the largest q . k over keys between lo and hi
/// elementwise, max(q_d lo_d, q_d hi_d) per dim; lo / hi as in scaled_dot.
template <int D>
__device__ __forceinline__ float scaled_bound(const float *q, const float *lo, const float *hi,
                                              float scale) {
  float acc = 0.0f;
#pragma unroll 4
  for (int d = 0; d < D; ++d)
    acc += fmaxf(q[d] * lo[d], q[d] * hi[d]);
  return scale * acc;
}

} // namespace estimation_detail

/// sattn.mean_scores (semantics §4b): out = sum_i W_i * in_i with the
/// weights normalised at compile time; each element summed in operand
/// order, so the result is bitwise reproducible. Grid-stride loop.
template <class Cfg> __device__ void mean_scores(const MeanScoresParams &p) {
  static_assert(Cfg::N >= 2 && Cfg::N <= 4, "mean_scores: 2 to 4 inputs");
  const float w[4] = {Cfg::W0, Cfg::W1, Cfg::W2, Cfg::W3};
  for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < p.n;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    float acc = 0.f;
#pragma unroll
    for (int i = 0; i < Cfg::N; ++i)
      acc = fmaf(w[i], p.in[i][e], acc);
    p.out[e] = acc;
  }
}

//===----------------------------------------------------------------------===//
// pool (§3)
//===----------------------------------------------------------------------===//

/// One CTA per (pooled row r, head h, batch b); threads stride over the head
/// dimension and walk the group's tokens in order, like the reference.
/// grid (nOut, IN_HEADS, B), block kPoolThreads, no dynamic shared memory.
/// in: Tensor4 of DTYPE [B, IN_HEADS, S, D]; out: fp32 contiguous
/// [B, IN_HEADS, nOut, D], or with SPLIT (classify_queries' own pooling)
/// the same bytes as two 16-bit arrays of that shape, hi then lo
/// (split_mma.cuh). The last group may be partial and pools only the tokens
/// it has.
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
    // Loads in batches of 8 ahead of the in-order fold: one memory latency
    // per batch instead of one per token, the reference's summation order.
    constexpr int U = 8;
    for (int s0 = lo + 1; s0 < hi; s0 += U) {
      float e[U];
#pragma unroll
      for (int u = 0; u < U; ++u)
        e[u] = s0 + u < hi ? load_elem<Cfg::DTYPE>(p.in.ptr, offset(p.in, b, h, s0 + u, d)) : 0.f;
#pragma unroll
      for (int u = 0; u < U; ++u) {
        if (s0 + u >= hi)
          break;
        if (Cfg::KIND == PoolKind::mean)
          acc += e[u];
        else if (Cfg::KIND == PoolKind::max)
          acc = fmaxf(acc, e[u]);
        else
          acc = fminf(acc, e[u]);
      }
    }
    const float x = Cfg::KIND == PoolKind::mean ? acc / static_cast<float>(hi - lo) : acc;
    if constexpr (Cfg::SPLIT) {
      unsigned short *h16 = reinterpret_cast<unsigned short *>(p.out);
      const i64 half = static_cast<i64>(gridDim.z) * Cfg::IN_HEADS * p.nOut * D;
      const i64 at = ((static_cast<i64>(b) * Cfg::IN_HEADS + h) * p.nOut + r) * D + d;
      split_mma::split1<Cfg::DTYPE>(x, h16[at], h16[half + at]);
    } else {
      out[d] = x;
    }
  }
}

//===----------------------------------------------------------------------===//
// block_scores (§4)
//===----------------------------------------------------------------------===//

namespace estimation_detail {

/// CUDA-core version. One CTA per (query block I, query head h, batch b).
/// For each pooled row
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
template <class Cfg> __device__ __forceinline__ void block_scores_simt(const ScoresParams &p) {
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
  // With BOUND (Quest, §4c) kp is the key groups' minimum and kp_max their
  // maximum, and the logit is the upper bound.
  const float *kmax =
      Cfg::BOUND ? p.kp_max + ((static_cast<i64>(b) * Cfg::KV_HEADS + h / GQA) * nk) * D : nullptr;
  auto logit = [&](int t) {
    if constexpr (Cfg::BOUND)
      return estimation_detail::scaled_bound<D>(qs, kbase + static_cast<i64>(t) * D,
                                                kmax + static_cast<i64>(t) * D, scale);
    else
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

/// The pooled keys of (b, h)'s KV head: nk rows of HEAD_DIM floats.
template <class Cfg>
__device__ __forceinline__ const float *scores_key_rows(const ScoresParams &p, int b, int h) {
  return p.kp +
         ((static_cast<i64>(b) * Cfg::KV_HEADS + h / (Cfg::HEADS / Cfg::KV_HEADS)) * p.nk) *
             Cfg::HEAD_DIM;
}

/// The pooled query rows r0 .. r1 - 1 of (b, h) on the tensor cores: this
/// warp's 16 rows (r0 + 16 warp ...) as split A fragments (qp = hi + lo),
/// the pooled keys each of its two 8-row halves sees (t * K_GROUP <= the
/// row's last query position), and `tEnd`, the keys the last row sees — the
/// range the kernels stage (rows ascending: the last sees the most).
template <class Cfg> struct ScoresRowTile {
  static constexpr int D = Cfg::HEAD_DIM, KD = D / 16;
  ptx::u32 qh[KD][4], ql[KD][4];
  int vis[2], tEnd;
  const float *kbase; ///< the (b, kv head) slice of the pooled keys

  /// Pooled keys row r sees (0 past r1).
  __device__ __forceinline__ static int visible(const ScoresParams &p, int r, int r1) {
    if (r >= r1)
      return 0;
    if (!Cfg::CAUSAL)
      return p.nk;
    const int rp = min((r + 1) * Cfg::Q_GROUP - 1, p.Sq - 1) + p.Skv - p.Sq;
    return rp < 0 ? 0 : min(p.nk, rp / Cfg::K_GROUP + 1);
  }

  __device__ __forceinline__ ScoresRowTile(const ScoresParams &p, int b, int h, int r0, int r1) {
    const int lane = threadIdx.x % 32, g = lane >> 2, tq = lane & 3;
    const float *qrow = p.qp + ((static_cast<i64>(b) * Cfg::HEADS + h) * p.nq) * D;
    kbase = scores_key_rows<Cfg>(p, b, h);
    const int wr = r0 + threadIdx.x / 32 * 16;
#pragma unroll
    for (int kk = 0; kk < KD; ++kk)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = wr + g + (e & 1) * 8, d = kk * 16 + 2 * tq + (e >> 1) * 8;
        float2 x = make_float2(0.f, 0.f);
        if (r < r1)
          x = *reinterpret_cast<const float2 *>(qrow + static_cast<i64>(r) * D + d);
        split_mma::split2<DType::bf16>(x.x, x.y, qh[kk][e], ql[kk][e]);
      }
    vis[0] = visible(p, wr + g, r1);
    vis[1] = visible(p, wr + g + 8, r1);
    tEnd = visible(p, r1 - 1, r1);
  }
};

/// Tensor-core version, one GEMM pass. A work item is kScoresMmaRows
/// consecutive pooled rows of (head h, batch b), i.e. whole query blocks;
/// warp w holds rows 16w..16w+15 as split A fragments (qp = hi + lo).
/// Persistent CTAs take items last rows first (under a causal mask they see
/// the most keys; the heads of a row tile are consecutive, so a GQA group
/// reads its keys from L2) from an atomic counter. Per key tile, staged as
/// hi + lo halves, the split mma (hi.hi + hi.lo + lo.hi) gives the logits;
/// each (row, KV block) leaves its log-sum-exp (log2 domain) in the CTA's
/// workspace slot, [KV block][row], and folds (max, sum) into the row's
/// online max and denominator. A KV block longer than a tile (GROUPS > NK)
/// is carried in registers across its tiles. After the last tile,
///   S[I, J] = sum over the rows r of I of 2^(lse[r, J] - M_r) / L_r / n_I,
/// summed in row order; blocks past the last tile are zeros. Every value
/// is reduced in a fixed order (fixed lanes, fixed shuffle trees), so the
/// scores are the same bits on every run. The max-then-sum scheme this
/// replaces ran the split mma twice.
/// grid scores_mma_grid(items, SMs), block kScoresThreads, dynamic smem
/// scores_mma_smem_bytes(HEAD_DIM), p.ws and p.next_item as in ScoresParams.
template <class Cfg> __device__ __forceinline__ void block_scores_mma(const ScoresParams &p) {
  using ptx::ex2;
  using ptx::u32;
  constexpr int D = Cfg::HEAD_DIM, NT = kScoresThreads, R = kScoresMmaRows;
  constexpr int NK = scores_key_tile(D), LD = D + 8;
  constexpr int ROWS = Cfg::BQ / Cfg::Q_GROUP, GROUPS = Cfg::BK / Cfg::K_GROUP;
  constexpr int IPC = R / ROWS;                          // query blocks per item
  constexpr DType T = DType::bf16;                       // fp32 range for both halves
  constexpr float kC = Cfg::SCALE * 1.4426950408889634f; // logits in the log2 domain
  static_assert(scores_mma(D, ROWS, GROUPS), "block_scores_mma: unsupported shape");
  extern __shared__ __align__(16) unsigned char sattn_scores_smem[];
  unsigned short *khi = reinterpret_cast<unsigned short *>(sattn_scores_smem);
  unsigned short *klo = khi + NK * LD;
  float *rowM = reinterpret_cast<float *>(klo + NK * LD); // [R]
  float *rowInvL = rowM + R;                              // [R]
  int *itemSlot = reinterpret_cast<int *>(rowInvL + R);

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane >> 2, tq = lane & 3;
  const int nq = p.nq, nKB = p.nKB, nQB = p.nQB;
  const int rowTiles = (nq + R - 1) / R, perTile = Cfg::HEADS * p.B, nItems = rowTiles * perTile;
  float *ws = p.ws + static_cast<i64>(blockIdx.x) * R * nKB; // [nKB][R]
  const float ninf = neg_inf();
  // (m, l) += (m2, l2): softmax partials, l relative to 2^m.
  auto merge = [ninf](float &m, float &l, float m2, float l2) {
    if (m2 == ninf)
      return;
    if (m2 > m) {
      l = l * ex2(m - m2) + l2;
      m = m2;
    } else {
      l += l2 * ex2(m2 - m);
    }
  };
  // The partials of a quad's 4 lanes merged (lane 0's order is the one
  // kept: the result is the same bits on every run).
  auto quadMerge = [&merge](float &m, float &l) {
#pragma unroll
    for (int o = 1; o < 4; o <<= 1) {
      const float m2 = __shfl_xor_sync(0xffffffffu, m, o);
      const float l2 = __shfl_xor_sync(0xffffffffu, l, o);
      merge(m, l, m2, l2);
    }
  };

  for (int item = blockIdx.x; item < nItems;) {
    const int c = rowTiles - 1 - item / perTile, bh = item % perTile;
    const int b = bh / Cfg::HEADS, h = bh % Cfg::HEADS;
    const int r0 = c * R, r1 = min(nq, r0 + R), I0 = c * IPC;
    const ScoresRowTile<Cfg> rt(p, b, h, r0, r1);
    const auto &qh = rt.qh, &ql = rt.ql;
    const int(&vis)[2] = rt.vis;
    const int tEnd = rt.tEnd;
    const float *kbase = rt.kbase;

    // Row partials (per lane until the final quad merge) and, for KV
    // blocks longer than a tile, the carried block partial.
    float rm[2] = {ninf, ninf}, rl[2] = {0.f, 0.f};
    float cm[2] = {ninf, ninf}, cs[2] = {0.f, 0.f};
    for (int t0 = 0; t0 < tEnd; t0 += NK) {
      __syncthreads(); // the previous tile is consumed
      split_mma::stage_rows<T, NK, D, NT>(kbase, t0, tEnd, khi, klo);
      __syncthreads();
      // A warp none of whose rows sees the tile skips the mma but still
      // writes its (row, block) entries, as -inf.
      const bool seen = !__all_sync(0xffffffffu, t0 >= vis[0] && t0 >= vis[1]);
      float acc[NK / 8][4];
      if (seen)
        split_mma::logits<T, NK, D, true>(acc, qh, ql, khi, klo);
      else
#pragma unroll
        for (int j = 0; j < NK / 8; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            acc[j][e] = 0.f;
      // Logit of n-tile j, row half hh, column e of the lane's pair (log2
      // domain), -inf where the row does not see the key.
      auto z = [&](int j, int hh, int e) {
        const int t = t0 + j * 8 + 2 * tq + e;
        return seen && t < vis[hh] ? acc[j][2 * hh + e] * kC : ninf;
      };
      // The (row, block) entry: its log-sum-exp from (max m, sum s).
      auto put = [&](int J, int hh, float m, float s) {
        if (J < nKB)
          ws[static_cast<i64>(J) * R + warp * 16 + g + 8 * hh] = m == ninf ? ninf : m + ptx::lg2(s);
      };
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        if constexpr (GROUPS == 1) {
          // Every pooled key is its own KV block.
#pragma unroll
          for (int j = 0; j < NK / 8; ++j)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
              const float v = z(j, hh, e);
              const int J = t0 + j * 8 + 2 * tq + e;
              if (J < nKB) // the block's log-sum-exp is its one logit
                ws[static_cast<i64>(J) * R + warp * 16 + g + 8 * hh] = v;
              merge(rm[hh], rl[hh], v, 1.f);
            }
        } else if constexpr (GROUPS < 8) {
          // A block is the lane's pair (GROUPS 2) or two lanes' (GROUPS 4).
#pragma unroll
          for (int j = 0; j < NK / 8; ++j) {
            const float z0 = z(j, hh, 0), z1 = z(j, hh, 1);
            float m = fmaxf(z0, z1);
            if constexpr (GROUPS == 4)
              m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
            float s = m == ninf ? 0.f : ex2(z0 - m) + ex2(z1 - m);
            if constexpr (GROUPS == 4)
              s += __shfl_xor_sync(0xffffffffu, s, 1);
            if (tq % (GROUPS / 2) == 0) {
              put((t0 + j * 8 + 2 * tq) / GROUPS, hh, m, s);
              merge(rm[hh], rl[hh], m, s);
            }
          }
        } else if constexpr (GROUPS <= NK) {
          // A block is NPB whole n-tiles, spread over the 4 lanes of a quad.
          constexpr int NPB = GROUPS / 8;
#pragma unroll
          for (int bi = 0; bi < NK / GROUPS; ++bi) {
            float m = ninf;
#pragma unroll
            for (int nt = 0; nt < NPB; ++nt)
#pragma unroll
              for (int e = 0; e < 2; ++e)
                m = fmaxf(m, z(bi * NPB + nt, hh, e));
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
            float s = 0.f;
            if (m != ninf)
#pragma unroll
              for (int nt = 0; nt < NPB; ++nt)
#pragma unroll
                for (int e = 0; e < 2; ++e)
                  s += ex2(z(bi * NPB + nt, hh, e) - m);
            s += __shfl_xor_sync(0xffffffffu, s, 1);
            s += __shfl_xor_sync(0xffffffffu, s, 2);
            if (tq == 0) {
              put(t0 / GROUPS + bi, hh, m, s);
              merge(rm[hh], rl[hh], m, s);
            }
          }
        } else {
          // A block spans several tiles: fold the lane's values into the
          // carried partial; the quad merges it when the block ends.
          float m = ninf;
#pragma unroll
          for (int j = 0; j < NK / 8; ++j)
#pragma unroll
            for (int e = 0; e < 2; ++e)
              m = fmaxf(m, z(j, hh, e));
          if (m != ninf) {
            float s = 0.f;
#pragma unroll
            for (int j = 0; j < NK / 8; ++j)
#pragma unroll
              for (int e = 0; e < 2; ++e)
                s += ex2(z(j, hh, e) - m);
            merge(cm[hh], cs[hh], m, s);
          }
        }
      }
      if constexpr (GROUPS > NK) {
        if ((t0 + NK) % GROUPS == 0 || t0 + NK >= tEnd) { // block-uniform
#pragma unroll
          for (int hh = 0; hh < 2; ++hh) {
            quadMerge(cm[hh], cs[hh]);
            if (tq == 0) {
              put(t0 / GROUPS, hh, cm[hh], cs[hh]);
              merge(rm[hh], rl[hh], cm[hh], cs[hh]);
            }
            cm[hh] = ninf, cs[hh] = 0.f;
          }
        }
      }
    }
    // Row max and 1 / denominator from the quad's partials.
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      quadMerge(rm[hh], rl[hh]);
      if (tq == 0) {
        const int lr = warp * 16 + g + 8 * hh;
        rowM[lr] = rm[hh];
        rowInvL[lr] = rl[hh] > 0.f ? 1.f / rl[hh] : 0.f; // rows that see nothing add 0
      }
    }
    __syncthreads(); // the slot's entries and the row stats are written

    // Per (query block, KV block): the block's rows' probabilities in row
    // order; KV blocks no tile reached are invisible to every row: zero.
    const int covered = (tEnd + NK - 1) / NK * NK; // pooled keys the tiles spanned
    const int Jw = min(nKB, (covered + GROUPS - 1) / GROUPS);
    float *out = p.out + ((static_cast<i64>(b) * Cfg::HEADS + h) * nQB) * nKB;
    for (int x = tid; x < IPC * nKB; x += NT) {
      const int il = x / nKB, J = x % nKB, I = I0 + il;
      if (I >= nQB)
        break;
      float sum = 0.f;
      if (J < Jw)
        for (int rr = 0; rr < ROWS && r0 + il * ROWS + rr < r1; ++rr) {
          const int lr = il * ROWS + rr;
          const float e = ws[static_cast<i64>(J) * R + lr];
          if (e != ninf)
            sum += ex2(e - rowM[lr]) * rowInvL[lr];
        }
      const int rows = min(nq, (I + 1) * ROWS) - I * ROWS;
      out[static_cast<i64>(I) * nKB + J] = sum / static_cast<float>(rows);
    }
    if (tid == 0)
      *itemSlot = gridDim.x + atomicAdd(p.next_item, 1);
    __syncthreads(); // also: the slot and row stats are free for the next item
    item = *itemSlot;
  }
}

/// Tensor-core version in two GEMM passes, for query blocks of fewer than
/// kScoresOnePassRows pooled rows (see scores_one_pass). One CTA per kScoresMmaRows consecutive
/// pooled rows of (head h, batch b), i.e. whole query blocks; warp w holds rows 16w..16w+15 as
/// split A fragments (qp = hi + lo). Two passes over the key tiles the CTA's last row sees, each
/// tile staged as hi + lo halves:
///   1. logits by split mma (hi.hi + hi.lo + lo.hi) -> per row online max
///      and softmax denominator;
///   2. the same logits -> probabilities p = exp(s - m) / l, written to a
///      shared [rows x keys] tile; then each warp sums whole query blocks,
///      lanes down columns and xor shuffles across a KV block's columns.
///      A KV block longer than a tile (GROUPS > NK) is carried in a
///      register across its tiles.
/// S[I, J] = sum / n_I; blocks past the last tile are written as zeros.
/// Pooled keys the last pooled row of query blocks I0 .. I0 + ipc - 1
/// sees: the key range the two-pass body stages (rows are ascending, the
/// last sees the most).
template <class Cfg>
__device__ __forceinline__ int scores_2pass_key_end(const ScoresParams &p, int I0, int ipc) {
  constexpr int ROWS = Cfg::BQ / Cfg::Q_GROUP;
  const int r1 = min(p.nq, I0 * ROWS + ipc * ROWS);
  return ScoresRowTile<Cfg>::visible(p, r1 - 1, r1);
}

/// Key tiles of the two-pass body, staged by the body's own threads
/// between CTA barriers (block_scores). begin(t0) makes tile t0 readable at
/// khi / klo (hi / lo halves, rows padded to D + 8); end() releases it;
/// sync() is the barrier of the body's threads around the probability tile.
template <int D> struct SelfStagedKeys {
  static constexpr int NK = scores_key_tile(D);
  unsigned short *khi, *klo;
  __device__ __forceinline__ void begin(const float *kbase, int t0, int tEnd) {
    __syncthreads(); // the previous tile (and its probabilities) are consumed
    split_mma::stage_rows<DType::bf16, NK, D, kScoresThreads>(kbase, t0, tEnd, khi, klo);
    __syncthreads();
  }
  __device__ __forceinline__ void end() {}
  __device__ __forceinline__ void sync() { __syncthreads(); }
};

/// This body computes query blocks I0 .. I0 + ipc - 1 (ipc <= kScoresMmaRows
/// / ROWS; fewer leave warps without rows) of (b, h) into
/// out[(I - outI0) * nKB + J]: the (b, h) slice of the scores grid
/// (block_scores, outI0 = 0) or a shared-memory buffer of the ipc rows
/// (scores_select, fused_select.cuh, outI0 = I0). Run by threads 0 ..
/// kScoresThreads - 1; `keys` supplies the key tiles (SelfStagedKeys or
/// fused_select.cuh's producer-fed ones), P is the [kScoresMmaRows][NK + 8]
/// probability tile. Both passes walk the same tiles in the same order.
template <class Cfg, class Keys>
__device__ __forceinline__ void scores_2pass_rows(const ScoresParams &p, int b, int h, int I0,
                                                  int ipc, float *out, int outI0, Keys &keys,
                                                  float *P) {
  using ptx::u32;
  constexpr int D = Cfg::HEAD_DIM, NT = kScoresThreads, R = kScoresMmaRows;
  constexpr int NK = scores_key_tile(D), LDP = NK + 8;
  constexpr int ROWS = Cfg::BQ / Cfg::Q_GROUP, GROUPS = Cfg::BK / Cfg::K_GROUP;
  constexpr int IPC = R / ROWS;    // query blocks per CTA at most
  constexpr DType T = DType::bf16; // fp32 range for both halves
  static_assert(scores_mma(D, ROWS, GROUPS), "block_scores_mma_2pass: unsupported shape");
  static_assert(IPC <= NT || GROUPS <= NK, "block_scores_mma_2pass: one carried block per thread");

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane >> 2, tq = lane & 3;
  const int nq = p.nq, nKB = p.nKB;
  const int r0 = I0 * ROWS, r1 = min(nq, r0 + ipc * ROWS);
  const ScoresRowTile<Cfg> rt(p, b, h, r0, r1);
  const auto &qh = rt.qh, &ql = rt.ql;
  const int(&vis)[2] = rt.vis;
  const int tEnd = rt.tEnd; // = scores_2pass_key_end, which the fused producers use
  const float *kbase = rt.kbase;
  const float scale = Cfg::SCALE;

  // Pass 1: per-row max and denominator (each lane: its keys; then merged).
  float m[2] = {neg_inf(), neg_inf()}, l[2] = {0.f, 0.f};
  for (int t0 = 0; t0 < tEnd; t0 += NK) {
    keys.begin(kbase, t0, tEnd);
    if (!__all_sync(0xffffffffu, t0 >= vis[0] && t0 >= vis[1])) { // a row of this warp sees it
      float acc[NK / 8][4];
      split_mma::logits<T, NK, D, true>(acc, qh, ql, keys.khi, keys.klo);
      keys.end();
#pragma unroll
      for (int j = 0; j < NK / 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int hh = e >> 1, t = t0 + j * 8 + 2 * tq + (e & 1);
          if (t < vis[hh]) {
            const float s = acc[j][e] * scale;
            if (s > m[hh]) {
              l[hh] *= __expf(m[hh] - s);
              m[hh] = s;
            }
            l[hh] += __expf(s - m[hh]);
          }
        }
    } else {
      keys.end();
    }
  }
  float inv[2];
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    for (int o = 1; o < 4; o <<= 1) {
      const float m2 = __shfl_xor_sync(0xffffffffu, m[hh], o);
      const float l2 = __shfl_xor_sync(0xffffffffu, l[hh], o);
      const float M = fmaxf(m[hh], m2);
      if (M != neg_inf()) {
        l[hh] = l[hh] * __expf(m[hh] - M) + l2 * __expf(m2 - M);
        m[hh] = M;
      }
    }
    inv[hh] = l[hh] > 0.f ? 1.f / l[hh] : 0.f; // rows that see nothing add 0
  }

  // Pass 2: probabilities, summed per (query block, KV block).
  auto nI = [&](int I) { return static_cast<float>(min(nq, (I + 1) * ROWS) - I * ROWS); };
  float carry = 0.f;
  for (int t0 = 0; t0 < tEnd; t0 += NK) {
    keys.begin(kbase, t0, tEnd);
    float acc[NK / 8][4];
    const bool seen = !__all_sync(0xffffffffu, t0 >= vis[0] && t0 >= vis[1]);
    if (seen)
      split_mma::logits<T, NK, D, true>(acc, qh, ql, keys.khi, keys.klo);
    keys.end();
#pragma unroll
    for (int j = 0; j < NK / 8; ++j)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        float pr[2];
#pragma unroll
        for (int x = 0; x < 2; ++x) {
          const int t = t0 + j * 8 + 2 * tq + x;
          pr[x] = seen && t < vis[hh] ? __expf(acc[j][2 * hh + x] * scale - m[hh]) * inv[hh] : 0.f;
        }
        *reinterpret_cast<float2 *>(&P[(warp * 16 + g + 8 * hh) * LDP + j * 8 + 2 * tq]) =
            make_float2(pr[0], pr[1]);
      }
    keys.sync();
    if constexpr (GROUPS <= NK) {
      // Warp w sums query blocks w, w + 4, ...: lane l adds its CPL adjacent
      // columns down the block's rows (conflict-free rows of P), then the
      // lanes of one KV block fold their sums by xor shuffles. A fixed
      // order, so the same bits on every run.
      constexpr int CPL = NK / 32, LANES = GROUPS / CPL; // lanes per KV block
      for (int il = warp; il < ipc; il += NT / 32) {
        const int I = I0 + il;
        float s[CPL] = {};
        for (int rr = 0; rr < ROWS; ++rr)
#pragma unroll
          for (int x = 0; x < CPL; ++x)
            s[x] += P[(il * ROWS + rr) * LDP + lane * CPL + x];
        if constexpr (LANES == 0) { // GROUPS < CPL: every column its own KV block
#pragma unroll
          for (int x = 0; x < CPL; ++x) {
            const int J = (t0 + lane * CPL + x) / GROUPS;
            if (I < p.nQB && J < nKB)
              out[static_cast<i64>(I - outI0) * nKB + J] = s[x] / nI(I);
          }
        } else {
          float v = s[0];
#pragma unroll
          for (int x = 1; x < CPL; ++x)
            v += s[x];
#pragma unroll
          for (int o = 1; o < LANES; o <<= 1)
            v += __shfl_xor_sync(0xffffffffu, v, o);
          const int J = (t0 + lane * CPL) / GROUPS;
          if (lane % LANES == 0 && I < p.nQB && J < nKB)
            out[static_cast<i64>(I - outI0) * nKB + J] = v / nI(I);
        }
      }
    } else if (tid < ipc) {
      for (int rr = 0; rr < ROWS; ++rr)
#pragma unroll 8
        for (int x = 0; x < NK; ++x)
          carry += P[(tid * ROWS + rr) * LDP + x];
      const int I = I0 + tid, J = t0 / GROUPS;
      if ((t0 + NK) % GROUPS == 0 || t0 + NK >= tEnd) {
        if (I < p.nQB && J < nKB)
          out[static_cast<i64>(I - outI0) * nKB + J] = carry / nI(I);
        carry = 0.f;
      }
    }
  }
  // KV blocks no tile reached: invisible to every row of the CTA.
  const int covered = (tEnd + NK - 1) / NK * NK; // pooled keys the tiles spanned
  const int Jw = min(nKB, (covered + GROUPS - 1) / GROUPS);
  for (int e = tid; e < ipc * max(0, nKB - Jw); e += NT) {
    const int I = I0 + e / (nKB - Jw), J = Jw + e % (nKB - Jw);
    if (I < p.nQB)
      out[static_cast<i64>(I - outI0) * nKB + J] = 0.f;
  }
}


/// The two-pass scores grid: CTA c computes the query blocks of pooled rows
/// c * kScoresMmaRows ... of (h, b). CTAs are issued last rows first: under
/// a causal mask they see the most.
/// grid (cdiv(nq, kScoresMmaRows), HEADS, B), block kScoresThreads,
/// dynamic smem scores_2pass_smem_bytes(HEAD_DIM).
template <class Cfg> __device__ __forceinline__ void block_scores_mma_2pass(const ScoresParams &p) {
  constexpr int IPC = kScoresMmaRows / (Cfg::BQ / Cfg::Q_GROUP);
  constexpr int NK = scores_key_tile(Cfg::HEAD_DIM), LD = Cfg::HEAD_DIM + 8;
  extern __shared__ __align__(16) unsigned char sattn_scores_smem[];
  SelfStagedKeys<Cfg::HEAD_DIM> keys;
  keys.khi = reinterpret_cast<unsigned short *>(sattn_scores_smem);
  keys.klo = keys.khi + NK * LD;
  float *P = reinterpret_cast<float *>(keys.klo + NK * LD); // [R][NK + 8]
  const int c = gridDim.x - 1 - blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  scores_2pass_rows<Cfg>(p, b, h, c * IPC, IPC,
                         p.out + ((static_cast<i64>(b) * Cfg::HEADS + h) * p.nQB) * p.nKB, 0,
                         keys, P);
}

} // namespace estimation_detail

/// sattn.scores (block_scores): the tensor-core version where
/// scores_mma() holds and the logit is a dot product (not BOUND), else the
/// CUDA-core one (launch shapes differ; see each).
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
  if constexpr (!Cfg::BOUND &&
                scores_mma(Cfg::HEAD_DIM, Cfg::BQ / Cfg::Q_GROUP, Cfg::BK / Cfg::K_GROUP)) {
    if constexpr (scores_one_pass(Cfg::BQ / Cfg::Q_GROUP))
      estimation_detail::block_scores_mma<Cfg>(p);
    else
      estimation_detail::block_scores_mma_2pass<Cfg>(p);
  } else
    estimation_detail::block_scores_simt<Cfg>(p);
}

} // namespace dev
} // namespace sattn

#endif // __CUDACC__

#endif // SATTN_DEVICE_ESTIMATION_CUH
