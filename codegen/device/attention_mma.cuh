//===- attention_mma.cuh - tensor-core sparse attention forward (§2) ------===//
//
// attn_fwd_mma<Cfg>: the FlashAttention-2-style kernel of sattn.attention for
// head dims 64 and 128 (the scalar attn_fwd of attention.cuh stays the
// fallback for other head dims, and for query sets off Hopper). Same Cfg constants and
// the same §2 semantics as attn_fwd; it differs only in the tiling:
//
//   CTA  = kAttnMmaRows consecutive query rows of one (batch, head), all in
//          one block-set row; kAttnMmaThreads threads = 4 warps.
//   warp = 16 * MT consecutive rows. Q is loaded once with cp.async and
//          ldmatrix into registers (A fragments of mma.m16n8k16).
//   key tile = kAttnMmaKeyTile keys; K and V tiles are double-buffered in
//          shared memory with cp.async (zero-filled past the range's end),
//          rows padded by 16 bytes so every ldmatrix is conflict-free.
//   per tile: S = Q.K^T (mma.sync, fp32 accumulators) -> scale, mask, online
//          softmax in the log2 domain in registers -> P packed to 16 bits in
//          registers as the A operand of O += P.V (V through ldmatrix.trans).
//
// The CTA visits the same key ranges as attn_fwd (causal / window / sinks
// bounds, the listed blocks of a block set, tiles the pattern cannot admit
// are skipped). Each warp then classifies a tile for its own rows: fully
// masked -> skipped, fully visible -> no per-element work, partial -> the
// exact §2 predicate per (row, key). So ranges and tiles only need to be
// supersets of the allowed keys. One barrier per key tile: the loads of
// tile n+1 are issued right after it and overlap the math of tile n.
// Row ranges, key schedule, tile classification, the O / LSE epilogue and
// the Cfg checks are shared with attn_fwd_wgmma (attention_common.cuh); the
// PTX wrappers are in ptx.cuh.
//
// Measured on one H100 SXM (bf16, B = 1, Hq = 16, S = 8192, cuda events):
// dense causal D = 128 211 TFLOPS (207 with LSE), non-causal D = 128 240,
// causal D = 64 197. 231 registers for D = 128, 165 for D = 64, no spills.
//
// Host side: everything above the `__CUDACC__` guard (the launch constants
// and attn_mma_smem_bytes) is plain C++ that g++ can include.
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_DEVICE_ATTENTION_MMA_CUH
#define SATTN_DEVICE_ATTENTION_MMA_CUH

#include "params.cuh"

#if defined(__CUDACC__)
#define SATTN_MMA_HD __host__ __device__
#else
#define SATTN_MMA_HD
#endif

namespace sattn {
namespace dev {

/// Launch contract of attn_fwd_mma: blockDim kAttnMmaThreads, grid
/// (nTiles, Hq, B) with nTiles = cdiv(Sq, TILE_M), or with a block set
/// nQB * cdiv(SET_BQ, TILE_M); dynamic shared memory
/// attn_mma_smem_bytes(HEAD_DIM, TILE_M) bytes (above 48 KB: raise the
/// limit). TILE_M (query rows per CTA) is the autotuned constant: 64 or 128.
enum : int {
  kAttnMmaThreads = 128, // 4 warps
  kAttnMmaRowsPerWarp = 16,
  kAttnMmaRows = 64,     // query rows per CTA = warps * rows per warp
  kAttnMmaKeyTile = 64,  // keys per pipelined K/V tile
  kAttnMmaMinBlocks = 2, // for __launch_bounds__(kAttnMmaThreads, kAttnMmaMinBlocks)
};

/// Whether attn_fwd_mma handles this attention (else use attn_fwd).
SATTN_MMA_HD constexpr bool attn_mma_supported(int headDim, bool hasQueries) {
  return !hasQueries && (headDim == 64 || headDim == 128);
}

/// Dynamic shared memory of attn_fwd_mma<Cfg> in bytes: two stages of K and
/// V tiles, rows padded by 8 elements. Q reuses the second stage at start
/// when its fragments fit in registers (16 rows per warp: always with 64
/// rows per CTA), else it has its own region. 69632 B for D = 128, 36864 B
/// for D = 64.
SATTN_MMA_HD constexpr int attn_mma_smem_bytes(int headDim, int tileM = kAttnMmaRows) {
  return (4 * kAttnMmaKeyTile * (headDim + 8) +
          ((tileM / (kAttnMmaRowsPerWarp * (kAttnMmaThreads / 32))) * headDim <= 128
               ? 0
               : tileM * (headDim + 8))) *
         2;
}

} // namespace dev
} // namespace sattn

#if defined(__CUDACC__)

#include "attention_common.cuh"
#include "masks.cuh"
#include "ptx.cuh"
#include "types.cuh"

namespace sattn {
namespace dev {
namespace attn_mma_detail {

using namespace ptx; // cp.async, ldmatrix, mma.sync, pack2, ex2 (ptx.cuh)

template <class Cfg, int MT> struct Fwd {
  static constexpr DType T = Cfg::DTYPE;
  static constexpr int D = Cfg::HEAD_DIM;
  static constexpr int NT = kAttnMmaThreads;
  static constexpr int NW = NT / 32;
  static constexpr int WR = 16 * MT; // rows per warp
  static constexpr int BM = WR * NW; // rows per CTA
  static constexpr int BN = kAttnMmaKeyTile;
  static constexpr int LDS = D + 8;     // smem row stride (elements): +16 B kills conflicts
  static constexpr int KD = D / 16;     // k-steps of Q.K^T over the head dim
  static constexpr int ND = D / 8;      // n-tiles of O over the head dim
  static constexpr int NN = BN / 8;     // n-tiles of S over the keys
  static constexpr int KN = BN / 16;    // k-steps of P.V over the keys
  static constexpr int TILE = BN * LDS; // elements of one K or V tile buffer
  // Q fragments stay in registers when they are few; otherwise Q stays in
  // smem (its own region) and is re-read per k-step.
  static constexpr bool QREG = MT * D <= 128;
  static constexpr int QOFF = QREG ? 2 * TILE : 4 * TILE; // Q region (elements)
  static constexpr int SMEM_BYTES = (4 * TILE + (QREG ? 0 : BM * LDS)) * 2;
  static constexpr int G = Cfg::HEADS / Cfg::KV_HEADS;
  static constexpr float kC = Cfg::SCALE * 1.4426950408889634f; // scale * log2(e)
  // With a positive scale, max and exp work on raw scores (one FFMA each);
  // otherwise the scores are scaled first and the factor is 1.
  static constexpr bool kPos = Cfg::SCALE > 0.f;
  static constexpr float kF = kPos ? kC : 1.f;

  static_assert(!QREG || BM * LDS <= 2 * TILE, "Q must fit in the second K/V stage");

  // p, b, h, hk, Sq, Skv, row0, rowEnd, wr0, wr1, the Q/K/V views and sched
  // are read and written in place by the attn_common functions.
  const AttnParams &p;
  u32 sbase; // shared address of the dynamic smem
  int b, h, hk, Sq, Skv, row0, rowEnd, warp, lane, tid;
  int wr0, wr1; // this warp's valid rows [wr0, wr1)
  bool warpActive;
  const u16 *qBase, *kBase, *vBase;
  bool qVec, kVec, vVec; // 16-byte aligned rows: cp.async; else element loads

  attn_common::KeySchedule sched; // CTA-uniform

  // Per-thread state.
  u32 qa[QREG ? MT : 1][QREG ? KD : 1][4];
  float o[MT][ND][4];
  float mrow[MT][2], lrow[MT][2];

  __device__ __forceinline__ Fwd(const AttnParams &p_, u32 sbase_) : p(p_), sbase(sbase_) {}

  // ---------------------------------------------------------------- loads --

  /// Stages NR rows of D elements from src (row stride ss) at smem element
  /// offset `dstOff`; rows >= valid are zero-filled (no global read).
  template <int NR>
  __device__ __forceinline__ void load_rows(int dstOff, const u16 *src, i64 ss, int valid,
                                            bool vec) const {
    constexpr int CPR = D / 8; // 16-byte chunks per row
    constexpr int PER = NR * CPR / NT;
    static_assert(NR * CPR % NT == 0, "tile chunks must divide among the threads");
#pragma unroll
    for (int it = 0; it < PER; ++it) {
      int c = tid + it * NT;
      int r = c / CPR, k = c % CPR;
      u32 dst = sbase + (dstOff + r * LDS + k * 8) * 2;
      bool in = r < valid;
      const u16 *g = src + (in ? static_cast<i64>(r) * ss : 0) + k * 8;
      stage_chunk16(dst, g, in, vec);
    }
  }

  /// K and V of keys [j0, j1) into stage s (rows past j1 - j0 zero). A
  /// vertical-slash set's column segments (sched.src) index the gathered
  /// rows of this query head (the backward's recomputed forward).
  __device__ __forceinline__ void load_tile(int s, int j0, int j1) const {
    int n = j1 - j0;
    if constexpr (VSlashOf<Cfg>::value) {
      if (sched.src) {
        load_rows<BN>(2 * s * TILE, attn_common::vs_row<Cfg>(p.vs, p.vs.kc, b, h, j0),
                      Cfg::HEAD_DIM, n, true);
        load_rows<BN>((2 * s + 1) * TILE, attn_common::vs_row<Cfg>(p.vs, p.vs.vc, b, h, j0),
                      Cfg::HEAD_DIM, n, true);
        return;
      }
    }
    load_rows<BN>(2 * s * TILE, kBase + static_cast<i64>(j0) * p.k.ss, p.k.ss, n, kVec);
    load_rows<BN>((2 * s + 1) * TILE, vBase + static_cast<i64>(j0) * p.v.ss, p.v.ss, n, vVec);
  }

  /// Next key tile [j0, j1) of the CTA; false when done.
  __device__ __forceinline__ bool next_tile(int &j0, int &j1) {
    return attn_common::next_tile<Cfg, BN>(*this, j0, j1);
  }

  // ----------------------------------------------------------------- math --

  /// Exact §2 membership of key j for row i (the block set is implied by the
  /// schedule; keys at or past j1 are outside the current range).
  __device__ __forceinline__ bool allowed(int i, int j, int j1) const {
    if (j >= j1)
      return false;
    if (!token_allowed<Cfg::CAUSAL, Cfg::WINDOW, Cfg::SINKS>(i, j, Sq, Skv))
      return false;
    if constexpr (Cfg::HAS_PATTERN)
      return pattern_block(Cfg::P_CAUSAL, Cfg::P_WINDOW, Cfg::P_SINKS, i / Cfg::P_BQ, j / Cfg::P_BK,
                           Cfg::P_BQ, Cfg::P_BK, Sq, Skv);
    return true;
  }

  /// One key tile [j0, j1) staged in stage `s`, for this warp's rows.
  __device__ __forceinline__ void compute(int s, int j0, int j1) {
    if (!warpActive)
      return;
    int kind = attn_common::classify_tile<Cfg, BN>(*this, j0, j1);
    if (kind == 0)
      return;
    const int g = lane >> 2, t = lane & 3;
    const u32 kb = sbase + 2 * s * TILE * 2, vb = kb + TILE * 2;

    // S = Q . K^T
    float sc[MT][NN][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int n = 0; n < NN; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          sc[mt][n][e] = 0.f;
    // ldmatrix lane offsets: K rows (keys) and 8-element chunk per lane.
    const u32 kLane = kb + (((lane & 7) + (lane >> 4) * 8) * LDS + ((lane >> 3) & 1) * 8) * 2;
#pragma unroll
    for (int kk = 0; kk < KD; ++kk) {
      u32 qf[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        if constexpr (QREG) {
#pragma unroll
          for (int e = 0; e < 4; ++e)
            qf[mt][e] = qa[mt][kk][e];
        } else {
          u32 qaddr =
              sbase +
              (QOFF + (warp * WR + mt * 16 + (lane & 15)) * LDS + (lane >> 4) * 8 + kk * 16) * 2;
          ldsm_x4(qf[mt], qaddr);
        }
      }
#pragma unroll
      for (int np = 0; np < NN / 2; ++np) {
        u32 bk[4];
        ldsm_x4(bk, kLane + (np * 16 * LDS + kk * 16) * 2);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          mma16816<T>(sc[mt][2 * np], qf[mt], bk[0], bk[1]);
          mma16816<T>(sc[mt][2 * np + 1], qf[mt], bk[2], bk[3]);
        }
      }
    }

    if constexpr (!kPos) {
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int n = 0; n < NN; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            sc[mt][n][e] *= kC;
    }

    if (kind == 2) {
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int n = 0; n < NN; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            int i = wr0 + mt * 16 + g + (e >> 1) * 8;
            int j = j0 + n * 8 + 2 * t + (e & 1);
            if (!allowed(i, j, j1))
              sc[mt][n][e] = neg_inf();
          }
    }

    // Online softmax (log2 domain), rows g and g + 8 of each m-tile.
    u32 pa[MT][KN][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        float mx = neg_inf();
#pragma unroll
        for (int n = 0; n < NN; ++n)
          mx = fmaxf(mx, fmaxf(sc[mt][n][2 * hh], sc[mt][n][2 * hh + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        float mNew = fmaxf(mrow[mt][hh], mx * kF);
        // Nothing allowed yet: subtract 0 so 2^(-inf - base) = 0, not NaN.
        float base = mNew == neg_inf() ? 0.f : mNew;
        float corr = ex2(mrow[mt][hh] - base);
        mrow[mt][hh] = mNew;
        float sum = 0.f;
#pragma unroll
        for (int n = 0; n < NN; ++n)
#pragma unroll
          for (int e = 2 * hh; e < 2 * hh + 2; ++e) {
            float w = ex2(fmaf(sc[mt][n][e], kF, -base));
            sc[mt][n][e] = w;
            sum += w;
          }
        lrow[mt][hh] = lrow[mt][hh] * corr + sum;
#pragma unroll
        for (int dn = 0; dn < ND; ++dn) {
          o[mt][dn][2 * hh] *= corr;
          o[mt][dn][2 * hh + 1] *= corr;
        }
      }
#pragma unroll
      for (int kk = 0; kk < KN; ++kk) {
        pa[mt][kk][0] = pack2<T>(sc[mt][2 * kk][0], sc[mt][2 * kk][1]);
        pa[mt][kk][1] = pack2<T>(sc[mt][2 * kk][2], sc[mt][2 * kk][3]);
        pa[mt][kk][2] = pack2<T>(sc[mt][2 * kk + 1][0], sc[mt][2 * kk + 1][1]);
        pa[mt][kk][3] = pack2<T>(sc[mt][2 * kk + 1][2], sc[mt][2 * kk + 1][3]);
      }
    }

    // O += P . V
    const u32 vLane = vb + (((lane & 7) + ((lane >> 3) & 1) * 8) * LDS + (lane >> 4) * 8) * 2;
#pragma unroll
    for (int kk = 0; kk < KN; ++kk) {
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        u32 bv[4];
        ldsm_x4_t(bv, vLane + (kk * 16 * LDS + dp * 16) * 2);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          mma16816<T>(o[mt][2 * dp], pa[mt][kk], bv[0], bv[1]);
          mma16816<T>(o[mt][2 * dp + 1], pa[mt][kk], bv[2], bv[3]);
        }
      }
    }
  }

  /// Normalises and writes O (and LSE) of this warp's valid rows.
  __device__ __forceinline__ void finish() {
    const int g = lane >> 2, t = lane & 3;
    u16 *oBase = attn_common::slice<u16>(p.o, b, h);
    const bool oVec = attn_common::rows_aligned<4>(p.o);
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        float l = lrow[mt][hh];
        l += __shfl_xor_sync(0xffffffffu, l, 1);
        l += __shfl_xor_sync(0xffffffffu, l, 2);
        int i = wr0 + mt * 16 + g + hh * 8;
        if (i >= wr1)
          continue;
        attn_common::store_row<Cfg>(*this, oBase, oVec, i, t, mrow[mt][hh], l,
                                    [&](int dn, int e) { return o[mt][dn][2 * hh + e]; });
      }
  }

  __device__ __forceinline__ void run() {
    b = blockIdx.z, h = blockIdx.y, hk = h / G;
    Sq = p.q.S, Skv = p.k.S;
    tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int tIdx = blockIdx.x;
    attn_common::cta_rows<Cfg, BM>(tIdx, Sq, row0, rowEnd);
    if (row0 >= rowEnd) // a short last query block: whole CTA leaves together
      return;
    wr0 = row0 + warp * WR;
    wr1 = min(wr0 + WR, rowEnd);
    warpActive = wr0 < wr1;

#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
      for (int hh = 0; hh < 2; ++hh)
        mrow[mt][hh] = neg_inf(), lrow[mt][hh] = 0.f;
#pragma unroll
      for (int dn = 0; dn < ND; ++dn)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          o[mt][dn][e] = 0.f;
    }

    attn_common::schedule_init<Cfg, BM>(*this, tIdx);

    int j0 = 0, j1 = 0;
    if (next_tile(j0, j1)) { // CTA-uniform
      attn_common::bind_qkv(*this);
      load_rows<BM>(QOFF, qBase + static_cast<i64>(row0) * p.q.ss, p.q.ss, rowEnd - row0, qVec);
      load_tile(0, j0, j1);
      cp_async_commit();
      if constexpr (QREG) {
        // Q sits in stage 1: read it into registers before stage 1 is reused
        // (the barrier at the top of the first iteration orders that).
        cp_async_wait_all();
        __syncthreads();
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
          for (int kk = 0; kk < KD; ++kk)
            ldsm_x4(qa[mt][kk], sbase + (QOFF + (warp * WR + mt * 16 + (lane & 15)) * LDS +
                                         (lane >> 4) * 8 + kk * 16) *
                                            2);
      }

      int s = 0;
      for (;;) {
        int n0 = 0, n1 = 0;
        bool more = next_tile(n0, n1);
        cp_async_wait_all();
        __syncthreads(); // tile (j0, j1) visible to all; everyone done with stage s ^ 1
        if (more) {
          load_tile(s ^ 1, n0, n1);
          cp_async_commit();
        }
        compute(s, j0, j1);
        if (!more)
          break;
        j0 = n0, j1 = n1, s ^= 1;
      }
    }
    if (warpActive)
      finish();
  }
};

} // namespace attn_mma_detail

/// sattn.attention forward on tensor cores (mma.sync; sm_80 and sm_90a).
/// Launch: blockDim kAttnMmaThreads, grid (nTiles, Hq, B) as described at
/// kAttnMmaRows, dynamic smem attn_mma_smem_bytes(HEAD_DIM).
template <class Cfg> __device__ void attn_fwd_mma(const AttnParams &p) {
  static_assert(attn_common::TensorCoreCfgCheck<Cfg, false>::ok, "attn_fwd_mma: invalid Cfg");
  static_assert(!VSlashOf<Cfg>::value || VSlashOf<Cfg>::bq % Cfg::TILE_M == 0,
                "attn_fwd_mma: a vertical-slash set's query block must be a multiple of TILE_M "
                "(a CTA's rows share one block's bands)");
  static_assert(Cfg::TILE_M == 64 || Cfg::TILE_M == 128,
                "attn_fwd_mma: TILE_M (query rows per CTA) must be 64 or 128");
  constexpr int MT = Cfg::TILE_M / (kAttnMmaRowsPerWarp * (kAttnMmaThreads / 32));
  using F = attn_mma_detail::Fwd<Cfg, MT>;
  static_assert(MT * kAttnMmaRowsPerWarp * (kAttnMmaThreads / 32) == Cfg::TILE_M && MT >= 1,
                "attn_fwd_mma: TILE_M must be a multiple of 16 rows per warp");
  static_assert(F::SMEM_BYTES == attn_mma_smem_bytes(Cfg::HEAD_DIM, Cfg::TILE_M),
                "attn_fwd_mma: attn_mma_smem_bytes disagrees with the kernel's layout");
  extern __shared__ __align__(16) unsigned char sattn_mma_smem[];
  F(p, ptx::smem_addr(sattn_mma_smem)).run();
}

} // namespace dev
} // namespace sattn

#endif // __CUDACC__

#endif // SATTN_DEVICE_ATTENTION_MMA_CUH
