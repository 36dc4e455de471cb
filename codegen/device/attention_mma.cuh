//===- attention_mma.cuh - tensor-core sparse attention forward (§2) ------===//
//
// attn_fwd_mma<Cfg>: the FlashAttention-2-style kernel of sattn.attention for
// head dims 64 and 128 (the scalar attn_fwd of attention.cuh stays the
// fallback for other head dims and for query sets). Same Cfg constants and
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

#include "masks.cuh"
#include "types.cuh"

namespace sattn {
namespace dev {
namespace attn_mma_detail {

typedef unsigned int u32;
typedef unsigned short u16;

/// Shared-memory address (32-bit, .shared window) of a generic pointer.
__device__ __forceinline__ u32 smem_addr(const void *ptr) {
  u32 r;
  asm("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(r) : "l"(ptr));
  return r;
}

/// 16-byte global -> shared copy; bytes past `srcBytes` (0 or 16) are zero.
__device__ __forceinline__ void cp_async16(u32 dst, const void *src, int srcBytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(srcBytes)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
__device__ __forceinline__ void cp_async_wait_all() {
  asm volatile("cp.async.wait_group 0;\n" ::: "memory");
}
__device__ __forceinline__ void st_shared16(u32 dst, u32 a, u32 b, u32 c, u32 d) {
  asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};\n" ::"r"(dst), "r"(a), "r"(b), "r"(c),
               "r"(d)
               : "memory");
}

__device__ __forceinline__ void ldsm_x4(u32 (&r)[4], u32 addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_t(u32 (&r)[4], u32 addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

/// c += a . b for one m16n8k16 tile (fp32 accumulators).
template <DType T>
__device__ __forceinline__ void mma16816(float (&c)[4], const u32 (&a)[4], u32 b0, u32 b1) {
  if constexpr (T == DType::bf16)
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  else
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/// Two fp32 -> one register of two 16-bit values, `lo` in the low half.
template <DType T> __device__ __forceinline__ u32 pack2(float lo, float hi) {
  u32 r;
  if constexpr (T == DType::bf16)
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  else
    asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

/// 2^x (MUFU); 2^-inf = +0.
__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

/// Half-open key range [lo, hi); empty when lo >= hi.
struct Range {
  int lo, hi;
};

/// Same rule as attn_detail::mask_ranges (attention.cuh): two disjoint key
/// ranges holding every key the causal / window / sinks mask can allow to a
/// row with i' in [ipLo, ipHi]; r[0] is the sinks part below r[1].
__device__ __forceinline__ void mask_ranges(bool causal, bool windowed, int window, int sinks,
                                            int ipLo, int ipHi, int Skv, Range (&r)[2]) {
  int hi = causal ? min(Skv, ipHi + 1) : Skv;
  int lo = windowed ? max(0, ipLo - window + 1) : 0;
  r[1] = Range{lo, hi};
  r[0] = Range{0, windowed ? min(min(sinks, lo), hi) : 0};
}

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
  static constexpr int kPatPairs = 32; // pattern checks beyond this many block pairs: "maybe"

  static_assert(!QREG || BM * LDS <= 2 * TILE, "Q must fit in the second K/V stage");

  const AttnParams &p;
  u32 sbase; // shared address of the dynamic smem
  int b, h, hk, Sq, Skv, row0, rowEnd, warp, lane, tid;
  int wr0, wr1; // this warp's valid rows [wr0, wr1)
  bool warpActive;
  const u16 *qBase, *kBase, *vBase;
  bool qVec, kVec, vVec; // 16-byte aligned rows: cp.async; else element loads

  // Key schedule (CTA-uniform): runs of listed blocks x the two mask ranges.
  Range mr0, mr1; // separate members: no run-time index into the object
  const int *list;
  int cnt, x, runA, runE, q, jn, jhi;

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
      if (vec) {
        cp_async16(dst, g, in ? 16 : 0);
      } else {
        u32 w[4] = {0u, 0u, 0u, 0u};
        if (in)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            w[e] = static_cast<u32>(g[2 * e]) | (static_cast<u32>(g[2 * e + 1]) << 16);
        st_shared16(dst, w[0], w[1], w[2], w[3]);
      }
    }
  }

  /// K and V of keys [j0, j1) into stage s (rows past j1 - j0 zero).
  __device__ __forceinline__ void load_tile(int s, int j0, int j1) const {
    int n = j1 - j0;
    load_rows<BN>(2 * s * TILE, kBase + static_cast<i64>(j0) * p.k.ss, p.k.ss, n, kVec);
    load_rows<BN>((2 * s + 1) * TILE, vBase + static_cast<i64>(j0) * p.v.ss, p.v.ss, n, vVec);
  }

  // ------------------------------------------------------------- schedule --

  /// Pattern blocks met by rows [r0, r1) x keys [j0, j1): whether any / all
  /// pairs are admitted. Too many pairs: any = true, all = false.
  __device__ __forceinline__ void pattern_pairs(int r0, int r1, int j0, int j1, bool &any,
                                                bool &all) const {
    any = true, all = true;
    if constexpr (Cfg::HAS_PATTERN) {
      int I0 = r0 / Cfg::P_BQ, I1 = (r1 - 1) / Cfg::P_BQ;
      int J0 = j0 / Cfg::P_BK, J1 = (j1 - 1) / Cfg::P_BK;
      if ((I1 - I0 + 1) * (J1 - J0 + 1) > kPatPairs) {
        all = false;
        return;
      }
      any = false;
      for (int I = I0; I <= I1; ++I)
        for (int J = J0; J <= J1; ++J) {
          bool a = pattern_block(Cfg::P_CAUSAL, Cfg::P_WINDOW, Cfg::P_SINKS, I, J, Cfg::P_BQ,
                                 Cfg::P_BK, Sq, Skv);
          any |= a;
          all &= a;
        }
    }
  }

  /// Next non-empty [lo, hi) of (run x mask range); false when done.
  __device__ __forceinline__ bool next_segment() {
    for (;;) {
      if (q < 2) {
        Range r = q == 0 ? mr0 : mr1;
        int lo = max(runA, r.lo), hi = min(runE, r.hi);
        ++q;
        if (lo < hi) {
          jn = lo, jhi = hi;
          return true;
        }
        continue;
      }
      if constexpr (!Cfg::HAS_BLOCKS) {
        return false;
      } else {
        if (x >= cnt)
          return false;
        int J = list[x], last = J;
        // Runs of consecutive listed blocks are one contiguous key range.
        while (++x < cnt && list[x] == last + 1)
          ++last;
        runA = J * Cfg::SET_BK;
        runE = min((last + 1) * Cfg::SET_BK, Skv);
        q = 0;
      }
    }
  }

  /// Next key tile [j0, j1) of the CTA (j1 - j0 <= BN); false when done.
  __device__ __forceinline__ bool next_tile(int &j0, int &j1) {
    for (;;) {
      while (jn < jhi) {
        j0 = jn;
        j1 = min(jn + BN, jhi);
        jn = j1;
        bool any, all;
        pattern_pairs(row0, rowEnd, j0, j1, any, all);
        if (any)
          return true;
      }
      if (!next_segment())
        return false;
    }
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

  /// 0: no (row, key) of this warp allowed; 1: all allowed; 2: mixed.
  __device__ __forceinline__ int classify(int j0, int j1) const {
    int ipA = wr0 + Skv - Sq, ipB = wr1 - 1 + Skv - Sq;
    bool any, all;
    pattern_pairs(wr0, wr1, j0, j1, any, all);
    if (!any)
      return 0;
    if (Cfg::CAUSAL && j0 > ipB)
      return 0;
    if (Cfg::WINDOW > 0 && j1 - 1 <= ipA - Cfg::WINDOW && j0 >= Cfg::SINKS)
      return 0;
    bool full = all && j1 - j0 == BN;
    if (Cfg::CAUSAL)
      full = full && j0 + BN - 1 <= ipA;
    if (Cfg::WINDOW > 0)
      full = full && (j0 > ipB - Cfg::WINDOW || j0 + BN - 1 < Cfg::SINKS);
    return full ? 1 : 2;
  }

  /// One key tile [j0, j1) staged in stage `s`, for this warp's rows.
  __device__ __forceinline__ void compute(int s, int j0, int j1) {
    if (!warpActive)
      return;
    int kind = classify(j0, j1);
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
    u16 *oBase = static_cast<u16 *>(p.o.ptr) + offset(p.o, b, h, 0, 0);
    const bool oVec = ((reinterpret_cast<unsigned long long>(p.o.ptr) |
                        static_cast<unsigned long long>(p.o.sb | p.o.sh | p.o.ss) * 2) &
                       3) == 0;
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
        bool empty = !(l > 0.f); // no allowed key (l >= 1 otherwise)
        float inv = empty ? 0.f : 1.f / l;
        u16 *orow = oBase + static_cast<i64>(i) * p.o.ss;
#pragma unroll
        for (int dn = 0; dn < ND; ++dn) {
          int d = dn * 8 + 2 * t;
          float v0 = o[mt][dn][2 * hh] * inv, v1 = o[mt][dn][2 * hh + 1] * inv;
          if (oVec) {
            *reinterpret_cast<u32 *>(orow + d) = pack2<T>(v0, v1);
          } else {
            store_elem<T>(orow, d, v0);
            store_elem<T>(orow, d + 1, v1);
          }
        }
        if constexpr (Cfg::HAS_LSE)
          if (t == 0)
            p.lse[(static_cast<i64>(b) * Cfg::HEADS + h) * Sq + i] =
                empty ? neg_inf() : (mrow[mt][hh] + log2f(l)) * 0.6931471805599453f;
      }
  }

  __device__ __forceinline__ void run() {
    b = blockIdx.z, h = blockIdx.y, hk = h / G;
    Sq = p.q.S, Skv = p.k.S;
    tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int tIdx = blockIdx.x;
    constexpr int kTilesPerBlock = Cfg::HAS_BLOCKS ? (Cfg::SET_BQ + BM - 1) / BM : 1;
    if constexpr (Cfg::HAS_BLOCKS) {
      int I = tIdx / kTilesPerBlock;
      row0 = I * Cfg::SET_BQ + BM * (tIdx % kTilesPerBlock);
      rowEnd = min(min(row0 + BM, (I + 1) * Cfg::SET_BQ), Sq);
    } else {
      row0 = tIdx * BM;
      rowEnd = min(row0 + BM, Sq);
    }
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

    // Key schedule.
    int ipLo = row0 + Skv - Sq, ipHi = rowEnd - 1 + Skv - Sq;
    Range mr[2];
    mask_ranges(Cfg::CAUSAL, Cfg::WINDOW > 0, Cfg::WINDOW, Cfg::SINKS, ipLo, ipHi, Skv, mr);
    mr0 = mr[0], mr1 = mr[1];
    jn = 0, jhi = 0;
    if constexpr (Cfg::HAS_BLOCKS) {
      int hb = Cfg::SET_HEADS == Cfg::HEADS ? h : h / G;
      i64 rowId =
          (static_cast<i64>(b) * Cfg::SET_HEADS + hb) * p.blocks.nQB + tIdx / kTilesPerBlock;
      cnt = p.blocks.counts[rowId];
      list = p.blocks.indices + rowId * p.blocks.cap;
      x = 0, q = 2, runA = 0, runE = 0; // q = 2: start by reading the first run
    } else {
      list = nullptr, cnt = 0, x = 0;
      q = 0, runA = 0, runE = Skv;
    }

    int j0 = 0, j1 = 0;
    if (next_tile(j0, j1)) { // CTA-uniform
      qBase = static_cast<const u16 *>(p.q.ptr) + offset(p.q, b, h, 0, 0);
      kBase = static_cast<const u16 *>(p.k.ptr) + offset(p.k, b, hk, 0, 0);
      vBase = static_cast<const u16 *>(p.v.ptr) + offset(p.v, b, hk, 0, 0);
      auto aligned16 = [](const Tensor4 &t) {
        return ((reinterpret_cast<unsigned long long>(t.ptr) |
                 static_cast<unsigned long long>(t.sb | t.sh | t.ss) * 2) &
                15) == 0;
      };
      qVec = aligned16(p.q), kVec = aligned16(p.k), vVec = aligned16(p.v);

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
  constexpr int MT = Cfg::TILE_M / (kAttnMmaRowsPerWarp * (kAttnMmaThreads / 32));
  using F = attn_mma_detail::Fwd<Cfg, MT>;
  static_assert(Cfg::DTYPE == DType::bf16 || Cfg::DTYPE == DType::fp16,
                "attn_fwd_mma: DTYPE must be bf16 or fp16");
  static_assert(Cfg::HEAD_DIM == 64 || Cfg::HEAD_DIM == 128,
                "attn_fwd_mma: HEAD_DIM must be 64 or 128 (use attn_fwd for other head dims)");
  static_assert(!Cfg::HAS_QUERIES, "attn_fwd_mma: query sets are not supported (use attn_fwd)");
  static_assert(Cfg::KV_HEADS > 0 && Cfg::HEADS % Cfg::KV_HEADS == 0,
                "attn_fwd_mma: HEADS must be a multiple of KV_HEADS");
  static_assert(Cfg::WINDOW >= 0 && Cfg::SINKS >= 0, "attn_fwd_mma: WINDOW and SINKS must be >= 0");
  static_assert(Cfg::TILE_M == 64 || Cfg::TILE_M == 128,
                "attn_fwd_mma: TILE_M (query rows per CTA) must be 64 or 128");
  static_assert(MT * kAttnMmaRowsPerWarp * (kAttnMmaThreads / 32) == Cfg::TILE_M && MT >= 1,
                "attn_fwd_mma: TILE_M must be a multiple of 16 rows per warp");
  static_assert(F::SMEM_BYTES == attn_mma_smem_bytes(Cfg::HEAD_DIM, Cfg::TILE_M),
                "attn_fwd_mma: attn_mma_smem_bytes disagrees with the kernel's layout");
  static_assert(!Cfg::HAS_BLOCKS || (Cfg::SET_BQ > 0 && Cfg::SET_BK > 0),
                "attn_fwd_mma: a block set needs positive SET_BQ and SET_BK");
  static_assert(!Cfg::HAS_BLOCKS || Cfg::SET_HEADS == Cfg::HEADS || Cfg::SET_HEADS == Cfg::KV_HEADS,
                "attn_fwd_mma: a block set is per head (SET_HEADS = HEADS) or per group");
  static_assert(!(Cfg::HAS_BLOCKS && Cfg::HAS_PATTERN),
                "attn_fwd_mma: a block pattern cannot be combined with a block set");
  static_assert(!Cfg::HAS_PATTERN ||
                    (Cfg::P_BQ > 0 && Cfg::P_BK > 0 && Cfg::P_WINDOW >= 0 && Cfg::P_SINKS >= 0),
                "attn_fwd_mma: a block pattern needs P_BQ, P_BK > 0 and P_WINDOW, P_SINKS >= 0");
  extern __shared__ __align__(16) unsigned char sattn_mma_smem[];
  F(p, attn_mma_detail::smem_addr(sattn_mma_smem)).run();
}

} // namespace dev
} // namespace sattn

#endif // __CUDACC__

#endif // SATTN_DEVICE_ATTENTION_MMA_CUH
