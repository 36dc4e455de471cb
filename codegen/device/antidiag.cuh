//===- antidiag.cuh - XAttention antidiagonal block scores (§4a) ----------===//
//
// antidiag_scores<Cfg>: sattn.antidiag_scores. Two implementations, picked
// at compile time by antidiag_mma() (AntidiagLaunch<Cfg> gives the launch):
//
// Tensor cores (antidiag_scores_mma). The logits of §4a are a GEMM: the
// regrouped queries (nR = cdiv(Sq, S) rows of S·D values, queries reversed
// within a row) times the regrouped keys (nC = cdiv(Skv, S) columns; column
// c is the S consecutive key rows c·S .. c·S+S-1, i.e. S·D contiguous
// values). So it is attention's Q·K^T with head dim S·D and no P·V. A work
// item is 128 regrouped rows of one (batch, head); a CTA of 8 warps (4 x 2,
// warp tile 32 x 64) walks its column tiles of 128 with mma.m16n8k16, the
// S·D reduction streamed in chunks of KC values (one query offset t and KC
// dims per chunk) through a 3-stage cp.async ring; causal tiles past the
// item's last visible column are never loaded. Each row's softmax needs
// its full max and denominator, which are known only after the last tile;
// so each tile leaves, per (row, KV block), the block's max and sum of
// exponentials (m, s) in the CTA's global workspace slot (L2-resident),
// and the item ends with two passes over the slot: per row M = max m,
// L = sum s·2^(m-M), then per (query block, KV block) the sum over the
// block's rows of s·2^(m-M)/L. One GEMM pass instead of the two a
// max-then-sum scheme needs. Persistent CTAs take items longest-first
// (last row tiles see the most causal columns) from an atomic counter;
// consecutive items are the heads of one GQA group, which share K in L2.
//
// CUDA cores (antidiag_scores_simt), for the shapes the tiling does not
// cover (KV blocks of fewer than 8 or more than 64 columns, query blocks
// whose rows do not tile 128, head dims not a multiple of 16): one CTA per
// (query block, head, batch), regrouped rows staged as fp32, one warp per
// row, a lane-split dot product per logit; pass 1 keeps the online max and
// denominator (log2 domain), pass 2 recomputes the logits and sums the
// probabilities per KV block. Warp-ordered partial sums make both kernels
// deterministic.
//
// Host side: everything above the `__CUDACC__` guard is plain C++.
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_DEVICE_ANTIDIAG_CUH
#define SATTN_DEVICE_ANTIDIAG_CUH

#include "params.cuh"

namespace sattn {
namespace dev {

/// CUDA-core launch contract: blockDim kAntidiagThreads, grid (nQB, Hq, B),
/// dynamic smem antidiag_smem_bytes(BQ, D, nKB).
/// Tensor-core launch contract: blockDim kAntidiagMmaThreads, grid
/// antidiag_mma_grid(items, SMs) persistent CTAs, dynamic smem
/// antidiag_mma_smem_bytes(D), AntidiagParams::ws of
/// antidiag_ws_floats(grid, nKB) floats, next_item zeroed.
enum : int {
  kAntidiagThreads = 128,
  kAntidiagMmaThreads = 256,
  kAntidiagRows = 128, // regrouped rows per work item
  kAntidiagCols = 128, // regrouped columns per tile
  kAntidiagStages = 3, // cp.async ring depth
};

constexpr long long antidiag_smem_bytes(int bq, int headDim, int nKB) {
  return 4ll * bq * headDim + 4ll * (kAntidiagThreads / 32) * nKB;
}

/// Values of the S·D reduction per pipeline stage: a chunk never straddles
/// two query offsets t, so it must divide D.
constexpr int antidiag_chunk(int headDim) {
  return headDim % 64 == 0 ? 64 : headDim % 32 == 0 ? 32 : 16;
}

/// Whether the tensor-core kernel covers the shape: a KV block's bk / stride
/// columns are whole n8 tiles inside one warp's 64 columns, and a query
/// block's bq / stride rows tile the 128-row item (each query block is then
/// finished by one CTA).
constexpr bool antidiag_mma(int headDim, int stride, int bq, int bk) {
  return headDim % 16 == 0 && headDim <= 256 && stride > 0 && bq % stride == 0 &&
         bk % stride == 0 && (bk / stride) % 8 == 0 && 64 % (bk / stride) == 0 &&
         kAntidiagRows % (bq / stride) == 0;
}

constexpr long long antidiag_mma_smem_bytes(int headDim) {
  return 2ll * kAntidiagStages * (kAntidiagRows + kAntidiagCols) * (antidiag_chunk(headDim) + 8) +
         8ll * kAntidiagRows + 16;
}

/// Work items (row tiles of every batch and head) of the tensor-core kernel.
constexpr long long antidiag_mma_items(long long Sq, int stride, int heads, int batch) {
  return (((Sq + stride - 1) / stride + kAntidiagRows - 1) / kAntidiagRows) * heads * batch;
}

/// Two CTAs per SM (the ring is ~110 KB), never more than the items.
constexpr long long antidiag_mma_grid(long long items, int sms) {
  return items < 2ll * sms ? items : 2ll * sms;
}

/// Workspace floats: per CTA, (m, s) per (row of an item, KV block).
constexpr long long antidiag_ws_floats(long long ctas, int nKB) {
  return 2 * ctas * kAntidiagRows * static_cast<long long>(nKB);
}

template <class Cfg> struct AntidiagLaunch {
  static constexpr bool mma = antidiag_mma(Cfg::HEAD_DIM, Cfg::STRIDE, Cfg::BQ, Cfg::BK);
  static constexpr int threads = mma ? kAntidiagMmaThreads : kAntidiagThreads;
  static constexpr int min_blocks = mma ? 2 : 1;
};

} // namespace dev
} // namespace sattn

#if defined(__CUDACC__)

#include "ptx.cuh"
#include "types.cuh"

namespace sattn {
namespace dev {

template <class Cfg> __device__ __forceinline__ void antidiag_scores_simt(const AntidiagParams &p) {
  using ptx::ex2;
  constexpr int S = Cfg::STRIDE, D = Cfg::HEAD_DIM, G = Cfg::HEADS / Cfg::KV_HEADS;
  constexpr int NT = kAntidiagThreads, NW = NT / 32, W = S * D;
  constexpr int RPB = Cfg::BQ / S, CPB = Cfg::BK / S; // regrouped rows / columns per block
  constexpr float kC = Cfg::SCALE / S * 1.4426950408889634f;
  static_assert(Cfg::HEADS % Cfg::KV_HEADS == 0, "antidiag_scores: HEADS % KV_HEADS must be 0");
  static_assert(S > 0 && Cfg::BQ % S == 0 && Cfg::BK % S == 0,
                "antidiag_scores: STRIDE must divide BQ and BK (semantics sec. 4a)");
  extern __shared__ float sattn_antidiag_smem[];
  float *rows = sattn_antidiag_smem; // [RPB][W]
  float *part = rows + RPB * W;      // [NW][nKB]
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

namespace antidiag_detail {

/// 8 elements (16 bytes) of t at (b, h, s, d .. d+7) into shared `dst`, or
/// zeros when !valid: cp.async when rows are 16-byte aligned, else plain
/// loads and one shared store (views with odd strides).
__device__ __forceinline__ void copy8(ptx::u32 dst, const Tensor4 &t, int b, int h, int s, int d,
                                      bool valid, bool aligned) {
  const unsigned short *base = static_cast<const unsigned short *>(t.ptr);
  if (aligned) {
    ptx::cp_async16(dst, base + (valid ? offset(t, b, h, s, d) : 0), valid ? 16 : 0);
    return;
  }
  ptx::u32 w[4] = {0u, 0u, 0u, 0u};
  if (valid) {
    const unsigned short *src = base + offset(t, b, h, s, d);
#pragma unroll
    for (int e = 0; e < 4; ++e)
      w[e] = ptx::u32(src[2 * e]) | (ptx::u32(src[2 * e + 1]) << 16);
  }
  ptx::st_shared16(dst, w[0], w[1], w[2], w[3]);
}

/// Columns [0, result) of regrouped row r are visible (semantics §4a: a
/// column is visible when its first key is visible to the row's last query).
template <bool CAUSAL, int S>
__device__ __forceinline__ int visible_cols(int r, int Sq, int Skv, int nC) {
  if (!CAUSAL)
    return nC;
  const int last = min(r * S + S - 1, Sq - 1) + Skv - Sq;
  return last < 0 ? 0 : min(nC, last / S + 1);
}

} // namespace antidiag_detail

template <class Cfg> __device__ __forceinline__ void antidiag_scores_mma(const AntidiagParams &p) {
  using ptx::u32;
  constexpr DType T = Cfg::DTYPE;
  constexpr int S = Cfg::STRIDE, D = Cfg::HEAD_DIM, G = Cfg::HEADS / Cfg::KV_HEADS;
  constexpr int KC = antidiag_chunk(D), NKC = S * D / KC, LDS = KC + 8, CH = KC / 8;
  constexpr int TM = kAntidiagRows, TN = kAntidiagCols, NT = kAntidiagMmaThreads;
  constexpr int ST = kAntidiagStages, STAGE = (TM + TN) * LDS * 2; // bytes
  constexpr int RPB = Cfg::BQ / S, CPB = Cfg::BK / S, NPB = CPB / 8, BPW = 64 / CPB;
  constexpr float kC = Cfg::SCALE / S * 1.4426950408889634f;
  static_assert(Cfg::HEADS % Cfg::KV_HEADS == 0, "antidiag_scores: HEADS % KV_HEADS must be 0");
  static_assert(antidiag_mma(D, S, Cfg::BQ, Cfg::BK), "antidiag_scores_mma: unsupported shape");
  static_assert(NT == 256 && TM == 128 && TN == 128, "warp grid 4 x 2 of 32 x 64 tiles");
  extern __shared__ __align__(16) unsigned char sattn_antidiag_mma_smem[];
  const u32 sbase = ptx::smem_addr(sattn_antidiag_mma_smem);
  float *rowM = reinterpret_cast<float *>(sattn_antidiag_mma_smem + ST * STAGE);
  float *rowInvL = rowM + TM;
  int *itemSlot = reinterpret_cast<int *>(rowInvL + TM);
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, q4 = lane % 4;
  const int wm = warp % 4, wn = warp / 4;
  const int Sq = p.q.S, Skv = p.k.S, nKB = p.nKB, nQB = p.nQB;
  const int nR = (Sq + S - 1) / S, nC = (Skv + S - 1) / S, rowTiles = (nR + TM - 1) / TM;
  const int perTile = Cfg::HEADS * p.q.B, nItems = rowTiles * perTile;
  float2 *ws = reinterpret_cast<float2 *>(p.ws) + static_cast<i64>(blockIdx.x) * TM * nKB;
  const bool qAl = rows_aligned<16>(p.q), kAl = rows_aligned<16>(p.k);
  // ldmatrix lane offsets (bytes in a stage): A = this warp's 32 rows of Q,
  // B = its 64 columns of K, both [row][KC] with LDS-padded rows.
  const u32 aLane = ((wm * 32 + (lane & 15)) * LDS + (lane >> 4) * 8) * 2;
  const u32 bLane =
      (TM * LDS + (wn * 64 + (lane & 7) + (lane >> 4) * 8) * LDS + ((lane >> 3) & 1) * 8) * 2;

  for (int item = blockIdx.x; item < nItems;) {
    // Last row tiles first (under causality they see the most columns);
    // within a tile, the heads of a GQA group are consecutive.
    const int rt = rowTiles - 1 - item / perTile, bh = item % perTile;
    const int b = bh / Cfg::HEADS, h = bh % Cfg::HEADS, hk = h / G, R0 = rt * TM;
    const int cEnd =
        antidiag_detail::visible_cols<Cfg::CAUSAL, S>(min(R0 + TM, nR) - 1, Sq, Skv, nC);
    const int nT = (cEnd + TN - 1) / TN, steps = nT * NKC;

    // Stage `step` = (column tile step / NKC, chunk step % NKC): query
    // offset t = chunk·KC / D, dims [d0, d0 + KC).
    auto load = [&](int step) {
      const int tile = step / NKC, kc = step % NKC, t = kc * KC / D, d0 = kc * KC % D;
      const u32 qs = sbase + (step % ST) * STAGE, ks = qs + TM * LDS * 2;
#pragma unroll 2
      for (int x = tid; x < (TM + TN) * CH; x += NT) {
        const int row = x / CH, c8 = (x % CH) * 8;
        if (row < TM) {
          const int i = (R0 + row) * S + S - 1 - t; // reversed within the row
          antidiag_detail::copy8(qs + (row * LDS + c8) * 2, p.q, b, h, i, d0 + c8, i < Sq, qAl);
        } else {
          const int n = row - TM, j = (tile * TN + n) * S + t;
          antidiag_detail::copy8(ks + (n * LDS + c8) * 2, p.k, b, hk, j, d0 + c8, j < Skv, kAl);
        }
      }
    };
#pragma unroll
    for (int s = 0; s < ST - 1; ++s) {
      if (s < steps)
        load(s);
      ptx::cp_async_commit();
    }
    float acc[2][8][4];
    auto clear = [&] {
#pragma unroll
      for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int n = 0; n < 8; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            acc[mt][n][e] = 0.f;
    };
    clear();

    for (int step = 0; step < steps; ++step) {
      ptx::cp_async_wait<ST - 2>();
      __syncthreads(); // stage `step` landed; every warp is done with step - 1's slot
      if (step + ST - 1 < steps)
        load(step + ST - 1);
      ptx::cp_async_commit();
      const u32 st = sbase + (step % ST) * STAGE;
#pragma unroll
      for (int kk = 0; kk < KC / 16; ++kk) {
        u32 a[2][4];
#pragma unroll
        for (int mt = 0; mt < 2; ++mt)
          ptx::ldsm_x4(a[mt], st + aLane + (mt * 16 * LDS + kk * 16) * 2);
#pragma unroll
        for (int np = 0; np < 4; ++np) {
          u32 bf[4];
          ptx::ldsm_x4(bf, st + bLane + (np * 16 * LDS + kk * 16) * 2);
#pragma unroll
          for (int mt = 0; mt < 2; ++mt) {
            ptx::mma16816<T>(acc[mt][2 * np], a[mt], bf[0], bf[1]);
            ptx::mma16816<T>(acc[mt][2 * np + 1], a[mt], bf[2], bf[3]);
          }
        }
      }
      if (step % NKC != NKC - 1)
        continue;
      // Tile done: (m, s) of each (row, KV block) of this warp's columns.
      // A row's values of one n8 tile sit in the 4 lanes of a quad.
      const int c0 = (step / NKC) * TN + wn * 64;
#pragma unroll
      for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int hf = 0; hf < 2; ++hf) {
          const int lr = wm * 32 + mt * 16 + hf * 8 + g;
          const int lim = antidiag_detail::visible_cols<Cfg::CAUSAL, S>(R0 + lr, Sq, Skv, nC);
#pragma unroll
          for (int bi = 0; bi < BPW; ++bi) {
            float z[NPB][2], m = neg_inf();
#pragma unroll
            for (int nt = 0; nt < NPB; ++nt)
#pragma unroll
              for (int e = 0; e < 2; ++e) {
                const int c = c0 + (bi * NPB + nt) * 8 + 2 * q4 + e;
                z[nt][e] = c < lim ? acc[mt][bi * NPB + nt][hf * 2 + e] * kC : neg_inf();
                m = fmaxf(m, z[nt][e]);
              }
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
            float sum = 0.f;
            if (m != neg_inf())
#pragma unroll
              for (int nt = 0; nt < NPB; ++nt)
#pragma unroll
                for (int e = 0; e < 2; ++e)
                  sum += ptx::ex2(z[nt][e] - m);
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            sum += __shfl_xor_sync(0xffffffffu, sum, 2);
            const int J = c0 / CPB + bi;
            if (q4 == 0 && J < nKB)
              ws[lr * nKB + J] = make_float2(m, sum);
          }
        }
      clear();
    }
    ptx::cp_async_wait_all();
    __syncthreads(); // the slot's (m, s) are written

    // Per row: M = max m, 1 / L with L = sum s·2^(m - M), one warp per row.
    const int nJ = min(nKB, nT * (TN / CPB));
    for (int lr = warp; lr < TM; lr += NT / 32) {
      const float2 *row = ws + lr * nKB;
      float M = neg_inf(), L = 0.f;
      for (int J = lane; J < nJ; J += 32)
        M = fmaxf(M, row[J].x);
      M = warp_max(M);
      for (int J = lane; J < nJ; J += 32) {
        const float2 e = row[J];
        if (e.y > 0.f)
          L += e.y * ptx::ex2(e.x - M);
      }
      L = warp_sum(L);
      if (lane == 0)
        rowM[lr] = M, rowInvL[lr] = L > 0.f ? 1.f / L : 0.f;
    }
    __syncthreads();
    // Per (query block, KV block): the block's rows' probabilities, summed
    // in row order (deterministic); KV blocks past the last tile are 0.
    float *out = p.out + (static_cast<i64>(b) * Cfg::HEADS + h) * nQB * nKB;
    const int I0 = R0 / RPB;
    for (int x = tid; x < (TM / RPB) * nKB; x += NT) {
      const int qb = x / nKB, J = x % nKB, I = I0 + qb;
      if (I >= nQB)
        break;
      float sum = 0.f;
      if (J < nJ)
        for (int rr = 0; rr < RPB && R0 + qb * RPB + rr < nR; ++rr) {
          const int lr = qb * RPB + rr;
          const float2 e = ws[lr * nKB + J];
          if (e.y > 0.f)
            sum += e.y * ptx::ex2(e.x - rowM[lr]) * rowInvL[lr];
        }
      out[static_cast<i64>(I) * nKB + J] = sum;
    }
    if (tid == 0)
      *itemSlot = gridDim.x + atomicAdd(p.next_item, 1);
    __syncthreads(); // also: the slot and row stats are free for the next item
    item = *itemSlot;
  }
}

template <class Cfg> __device__ void antidiag_scores(const AntidiagParams &p) {
  if constexpr (AntidiagLaunch<Cfg>::mma)
    antidiag_scores_mma<Cfg>(p);
  else
    antidiag_scores_simt<Cfg>(p);
}

} // namespace dev
} // namespace sattn

#endif // __CUDACC__

#endif // SATTN_DEVICE_ANTIDIAG_CUH
