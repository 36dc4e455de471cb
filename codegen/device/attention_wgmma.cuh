//===- attention_wgmma.cuh - Hopper (sm_90a) wgmma attention forward (§2) -===//
//
// attn_fwd_wgmma<Cfg>: sattn.attention forward on Hopper's warpgroup MMA
// (wgmma.mma_async), for head dims 64 and 128, bf16 / fp16. Same Cfg
// constants, launch grid convention and §2 semantics as attn_fwd_mma
// (attention_mma.cuh); only the matrix core and the tiling differ:
//
//   CTA        = NWG consumer warpgroups (128 threads each), 64 query rows per
//                warpgroup, all rows of the CTA in one block-set row. NWG = 2
//                (128 rows) except with a block set of SET_BQ <= 64 (then 1,
//                64 rows, two CTAs per SM). No producer warps: every thread
//                issues its share of the cp.async copies (see "Why" below).
//   key tile   = BN keys (128; 64 with a block set of SET_BQ or SET_BK <= 64).
//   smem       = Q (NWG x 64 rows), K in 2 stages, V in 3 stages, each tile in
//                the 128-byte-swizzle layout of wgmma: 64-element panels of
//                the head dim, [panel][row][128 B], 16-byte chunk c of row r
//                stored at chunk c ^ (r % 8); base rounded up to 1024 B.
//   S = Q.K^T  wgmma m64nBNk16, A = Q and B = K from smem (K-major
//              descriptors, SBO 1024 B), fp32 accumulators in registers.
//   softmax    online, log2 domain, fp32, per thread rows g and g + 8 of its
//              warp's 16-row slice (same fragment layout as mma.m16n8).
//   O += P.V   wgmma m64nDk16 in the RS form: P packed from the S accumulators
//              straight into A fragments, V from smem (N-major descriptor,
//              LBO = BN * 128 B between 64-wide panels, SBO 1024 B).
//
// Per key tile (one __syncthreads): wait for its cp.async group, proxy fence,
// barrier; each warpgroup issues S_n = Q.K_n^T and then the pending
// O += P_{n-1}.V_{n-1} (two commit groups); the copies of tile n + 1 are
// issued; wait_group 1 (S_n ready) -> mask + online softmax of S_n while the
// tensor cores still run P_{n-1}.V_{n-1}; wait_group 0 -> rescale O, pack P_n.
// V therefore needs three stages (V_{n-1} is read while V_{n+1} lands).
//
// Key schedule, tile classification (skip / full / partial per warpgroup),
// masks, block sets, patterns, LSE, GQA, strides and empty rows are those of
// attn_fwd_mma, from the same code (attention_common.cuh). Query sets are
// not supported (attn_fwd). The wgmma, descriptor and fence wrappers are in
// wgmma.cuh.
//
// Why no producer warpgroup / TMA: K/V copies by cp.async keep the kernel's
// only argument the AttnParams block (no host-built tensor maps), accept any
// element strides (16-byte-misaligned views fall back to element loads), and
// avoid mbarrier / setmaxnreg role code; overlapping softmax with the P.V
// wgmma inside each warpgroup recovers most of what warp specialisation buys.
//
// Keeping ptxas from serializing the wgmma pipeline (warnings C7513 / C7514 /
// C7518 / C7520, each one puts a wait behind every wgmma):
//   - every wgmma, fence, commit and wait of the key loop is unconditional;
//     a skipped tile runs its S product and a fully masked softmax (P = 0);
//   - descriptors derive only from warp-uniform values (the warpgroup index
//     is broadcast with a shuffle), so they live in uniform registers;
//   - registers a pending wgmma reads (O, P) are written only behind its
//     wait_group, pinned there with empty asm operands (fence_regs);
//   - the first S wgmma binds its accumulators write-only ("=f").
// 150 to 249 registers across configurations (D = 128 about 240), no spills.
//
// Host side: everything above the `__CUDACC__` guard is plain C++ that g++
// can include (launch shape functions below). On targets other than sm_90a
// the kernel body is a trap, so a module holding it still compiles there.
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_DEVICE_ATTENTION_WGMMA_CUH
#define SATTN_DEVICE_ATTENTION_WGMMA_CUH

#include "params.cuh"

#if defined(__CUDACC__)
#define SATTN_WGMMA_HD __host__ __device__
#else
#define SATTN_WGMMA_HD
#endif

namespace sattn {
namespace dev {

/// Launch contract of attn_fwd_wgmma<Cfg> (hasBlocks = Cfg::HAS_BLOCKS,
/// setBq / setBk = Cfg::SET_BQ / SET_BK, ignored without a block set):
///   kernel    __launch_bounds__(kAttnWgmmaThreads, kAttnWgmmaMinBlocks)
///             (the largest CTA; the 128-thread variant still fits two CTAs
///             per SM under it), compiled for sm_90a (compute capability 9.0)
///   blockDim  attn_wgmma_threads(hasBlocks, setBq)            (256 or 128)
///   grid      (nTiles, Hq, B), nTiles = cdiv(Sq, rows) with
///             rows = attn_wgmma_rows(hasBlocks, setBq), or with a block set
///             nQB * cdiv(SET_BQ, rows)       (attn_wgmma_grid_x does both)
///   smem      attn_wgmma_smem_bytes(HEAD_DIM, hasBlocks, setBq, setBk)
///             dynamic bytes (always above 48 KB: raise the limit)
/// A launch with another blockDim traps.
enum : int {
  kAttnWgmmaThreads = 256,      // upper bound of blockDim (__launch_bounds__)
  kAttnWgmmaMinBlocks = 1,      // second argument of __launch_bounds__
  kAttnWgmmaWarpgroupRows = 64, // query rows per consumer warpgroup
  kAttnWgmmaKStages = 2,
  kAttnWgmmaVStages = 3,
};

/// Consumer warpgroups per CTA: 1 when a block-set row has <= 64 rows.
SATTN_WGMMA_HD constexpr int attn_wgmma_warpgroups(bool hasBlocks, int setBq) {
  return hasBlocks && setBq <= 64 ? 1 : 2;
}
SATTN_WGMMA_HD constexpr int attn_wgmma_threads(bool hasBlocks, int setBq) {
  return 128 * attn_wgmma_warpgroups(hasBlocks, setBq);
}
SATTN_WGMMA_HD constexpr int attn_wgmma_rows(bool hasBlocks, int setBq) {
  return kAttnWgmmaWarpgroupRows * attn_wgmma_warpgroups(hasBlocks, setBq);
}
/// Keys per pipelined K/V tile.
SATTN_WGMMA_HD constexpr int attn_wgmma_key_tile(bool hasBlocks, int setBq, int setBk) {
  return hasBlocks && (setBq <= 64 || setBk <= 64) ? 64 : 128;
}
/// Dynamic shared memory in bytes: Q, 2 K stages, 3 V stages, plus 1 KB to
/// round the base up to the 1024-byte swizzle period. Dense: 197632 B for
/// D = 128, 99328 B for D = 64.
SATTN_WGMMA_HD constexpr int attn_wgmma_smem_bytes(int headDim, bool hasBlocks = false,
                                                   int setBq = 0, int setBk = 0) {
  return (attn_wgmma_rows(hasBlocks, setBq) +
          (kAttnWgmmaKStages + kAttnWgmmaVStages) * attn_wgmma_key_tile(hasBlocks, setBq, setBk)) *
             headDim * 2 +
         1024;
}
/// grid.x of attn_fwd_wgmma (nQB: block-set rows, only with a block set).
SATTN_WGMMA_HD constexpr int attn_wgmma_grid_x(int Sq, bool hasBlocks, int setBq, int nQB) {
  return hasBlocks
             ? nQB * ((setBq + attn_wgmma_rows(hasBlocks, setBq) - 1) /
                      attn_wgmma_rows(hasBlocks, setBq))
             : (Sq + attn_wgmma_rows(hasBlocks, setBq) - 1) / attn_wgmma_rows(hasBlocks, setBq);
}
/// Whether attn_fwd_wgmma handles this attention: head dim 64 / 128, no
/// query set, and a Hopper GPU (wgmma exists only on sm_90a; Blackwell runs
/// the portable compute_90 PTX, which has no wgmma).
SATTN_WGMMA_HD constexpr bool attn_wgmma_supported(int headDim, bool hasQueries, int ccMajor = 9) {
  return ccMajor == 9 && !hasQueries && (headDim == 64 || headDim == 128);
}

/// The same shape from a Cfg (device side).
template <class Cfg> struct AttnWgmmaLaunch {
  static constexpr int threads = attn_wgmma_threads(Cfg::HAS_BLOCKS, Cfg::SET_BQ);
  static constexpr int rows = attn_wgmma_rows(Cfg::HAS_BLOCKS, Cfg::SET_BQ);
  static constexpr int key_tile = attn_wgmma_key_tile(Cfg::HAS_BLOCKS, Cfg::SET_BQ, Cfg::SET_BK);
  static constexpr int smem_bytes =
      attn_wgmma_smem_bytes(Cfg::HEAD_DIM, Cfg::HAS_BLOCKS, Cfg::SET_BQ, Cfg::SET_BK);
};

} // namespace dev
} // namespace sattn

#if defined(__CUDACC__)

#include "attention_common.cuh"
#include "masks.cuh"
#include "ptx.cuh"
#include "types.cuh"
#include "wgmma.cuh"

namespace sattn {
namespace dev {
namespace attn_wgmma_detail {

using namespace ptx; // cp.async, pack2, ex2 (ptx.cuh); wgmma, fences, descriptors (wgmma.cuh)

template <class Cfg> struct Fwd {
  static constexpr DType T = Cfg::DTYPE;
  static constexpr int D = Cfg::HEAD_DIM;
  static constexpr int NWG = attn_wgmma_warpgroups(Cfg::HAS_BLOCKS, Cfg::SET_BQ);
  static constexpr int NT = 128 * NWG;
  static constexpr int WR = kAttnWgmmaWarpgroupRows; // rows per warpgroup
  static constexpr int BM = WR * NWG;                // rows per CTA
  static constexpr int BN = attn_wgmma_key_tile(Cfg::HAS_BLOCKS, Cfg::SET_BQ, Cfg::SET_BK);
  static constexpr int KD = D / 16;  // k-steps of Q.K^T over the head dim
  static constexpr int KN = BN / 16; // k-steps of P.V over the keys
  static constexpr int NS = BN / 2;  // S accumulators per thread
  static constexpr int NO = D / 2;   // O accumulators per thread
  // Shared memory (bytes from the 1024-aligned base): Q, K stages, V stages.
  static constexpr u32 Q_WG_BYTES = WR * D * 2; // one warpgroup's Q rows
  static constexpr u32 KV_BYTES = BN * D * 2;   // one K or V stage
  static constexpr u32 K_OFF = NWG * Q_WG_BYTES;
  static constexpr u32 V_OFF = K_OFF + kAttnWgmmaKStages * KV_BYTES;
  static constexpr u32 SMEM_BYTES = V_OFF + kAttnWgmmaVStages * KV_BYTES + 1024;
  static constexpr int G = Cfg::HEADS / Cfg::KV_HEADS;
  static constexpr float kC = Cfg::SCALE * 1.4426950408889634f; // scale * log2(e)
  // With a positive scale, max and exp work on raw scores (one FFMA each);
  // otherwise the scores are scaled first and the factor is 1.
  static constexpr bool kPos = Cfg::SCALE > 0.f;
  static constexpr float kF = kPos ? kC : 1.f;

  static_assert(Q_WG_BYTES % 1024 == 0 && KV_BYTES % 1024 == 0,
                "every tile must start on a 1024-byte swizzle period");

  // p, b, h, hk, Sq, Skv, row0, rowEnd, wr0, wr1, the Q/K/V views and sched
  // are read and written in place by the attn_common functions.
  const AttnParams &p;
  u32 sbase;                                           // 1024-aligned shared address of the tiles
  int b, h, hk, Sq, Skv, row0, rowEnd, tid, wg, wlane; // wlane: thread in warpgroup
  int wr0, wr1;                                        // this warpgroup's valid rows [wr0, wr1)
  bool wgActive;
  const u16 *qBase, *kBase, *vBase;
  bool qVec, kVec, vVec; // 16-byte aligned rows: cp.async; else element loads

  attn_common::KeySchedule sched; // CTA-uniform

  // Per-thread state: accumulators, P fragments, row statistics.
  float sc[NS];
  float o[NO];
  u32 pa[KN][4];
  float mrow[2], lrow[2];
  u32 pendV; // V stage of the P held in pa (P = 0 when nothing is pending)

  __device__ __forceinline__ Fwd(const AttnParams &p_, u32 sbase_) : p(p_), sbase(sbase_) {}

  // ---------------------------------------------------------------- loads --

  /// Stages NR rows of D elements from src (row stride ss) at shared address
  /// `dst` in the swizzled layout, R rows per [panel][row] block; rows >=
  /// valid are zero-filled (no global read).
  template <int NR, int R>
  __device__ __forceinline__ void load_rows(u32 dst, const u16 *src, i64 ss, int valid,
                                            bool vec) const {
    constexpr int CPR = D / 8;   // 16-byte chunks per row
    constexpr int RS = NT / CPR; // rows advanced per step
    constexpr int PER = NR / RS; // steps
    static_assert(NT % CPR == 0 && NR % RS == 0 && RS % 8 == 0 && R % RS == 0,
                  "tile chunks must divide evenly among the threads");
    // An opaque copy of the thread index: the per-thread offsets below are
    // recomputed at each call instead of being kept live across the key loop
    // (registers are the scarce resource of this kernel).
    int t = tid;
    asm volatile("" : "+r"(t));
    const int r0 = t / CPR, k = t % CPR;
    // Row r0 + s * RS: same r & 7 for every step (RS % 8 == 0), so the same
    // swizzled chunk; panel k / 8 of the [R rows][128 B] block r / R.
    const u32 a0 = dst + (k >> 3) * (R * 128) + (((k & 7) ^ (r0 & 7)) << 4);
    const u16 *g = src + static_cast<i64>(r0) * ss + k * 8;
    const i64 step = static_cast<i64>(RS) * ss;
#pragma unroll
    for (int it = 0; it < PER; ++it, g += step) {
      const int r = r0 + it * RS;
      const u32 a = a0 + (r / R) * (R * D * 2) + (r % R) * 128;
      const bool in = r < valid;
      if (vec) {
        cp_async16(a, in ? g : src, in ? 16 : 0);
      } else {
        u32 w[4] = {0u, 0u, 0u, 0u};
        if (in)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            w[e] = static_cast<u32>(g[2 * e]) | (static_cast<u32>(g[2 * e + 1]) << 16);
        st_shared16(a, w[0], w[1], w[2], w[3]);
      }
    }
  }

  __device__ __forceinline__ u32 k_stage(int n) const { return sbase + K_OFF + n * KV_BYTES; }
  __device__ __forceinline__ u32 v_stage(int n) const { return sbase + V_OFF + n * KV_BYTES; }

  /// K and V of keys [j0, j1) into K stage ks and V stage vs (rows past
  /// j1 - j0 zero).
  __device__ __forceinline__ void load_tile(int ks, int vs, int j0, int j1) const {
    int n = j1 - j0;
    load_rows<BN, BN>(k_stage(ks), kBase + static_cast<i64>(j0) * p.k.ss, p.k.ss, n, kVec);
    load_rows<BN, BN>(v_stage(vs), vBase + static_cast<i64>(j0) * p.v.ss, p.v.ss, n, vVec);
  }

  /// Next key tile [j0, j1) of the CTA; false when done.
  __device__ __forceinline__ bool next_tile(int &j0, int &j1) {
    return attn_common::next_tile<Cfg, BN>(*this, j0, j1);
  }

  // ----------------------------------------------------------------- math --

  /// Issues this warpgroup's wgmma work on the tile in K stage `ks`:
  /// S = Q.K^T, then (PV) the pending O += P.V of the previous tile, as two
  /// commit groups. Every wgmma operation of the loop is unconditional (a
  /// skipped tile still runs its S product, and P = 0 stands for "nothing
  /// pending"): wgmma under a branch the compiler cannot prove warpgroup-
  /// uniform gets serialized by ptxas (C7518 / C7520). Returns the tile's
  /// kind for this warpgroup (0: skip, 1: full, 2: partial).
  template <bool PV> __device__ __forceinline__ int issue(int ks, int j0, int j1) {
    int kind = wgActive ? attn_common::classify_tile<Cfg, BN>(*this, j0, j1) : 0;
    if constexpr (PV) {
      fence_regs(o);
      fence_regs(pa);
    }
    wg_fence();
    {
      const u64 qd = make_desc(sbase + wg * Q_WG_BYTES, 16, 1024);
      const u64 kd = make_desc(k_stage(ks), 16, 1024);
#pragma unroll
      for (int kk = 0; kk < KD; ++kk) {
        const u64 qo = kstep_offset<WR>(kk), ko = kstep_offset<BN>(kk);
        if (kk == 0)
          wgmma_ss<T, BN, 0>(sc, qd + qo, kd + ko);
        else
          wgmma_ss<T, BN, 1>(sc, qd + qo, kd + ko);
      }
      wg_commit();
    }
    if constexpr (PV)
      issue_pv();
    return kind;
  }

  /// O += P.V of the pending P (V stage pendV), one commit group.
  __device__ __forceinline__ void issue_pv() {
    const u64 vd = make_desc(pendV, BN * 128, 1024);
#pragma unroll
    for (int kk = 0; kk < KN; ++kk) // 16 keys = two 8-row swizzle atoms = 2048 B
      wgmma_rs<T, D>(o, pa[kk], vd + static_cast<u64>((kk * 2048) >> 4));
    wg_commit();
  }

  /// Completes the tile issued by issue<PV>(): mask + online softmax of S
  /// (while the tensor cores finish the pending P.V), then O rescale and P
  /// packing for the next P.V. `vs`: the tile's V stage.
  template <bool PV> __device__ __forceinline__ void complete(int kind, int vs, int j0, int j1) {
    float corr[2];
    if constexpr (PV)
      wg_wait<1>(); // S done; P.V may still run
    else
      wg_wait<0>();
    fence_regs(sc);
    {
      const int w = wlane >> 5, lane = wlane & 31, g = lane >> 2, t = lane & 3;
      if constexpr (!kPos) {
#pragma unroll
        for (int e = 0; e < NS; ++e)
          sc[e] *= kC;
      }
      // A skipped tile (kind 0) runs the same code fully masked: P = 0 and
      // corr = 1, so the next P.V adds exact zeros (no branch that would
      // make the compiler keep a second set of 64 registers for that case).
      if (kind != 1) {
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          // Row i allows key j iff j < hiEx and (no window, j > loW or
          // j < SINKS) [and the pattern admits (i, j)]: the rule of
          // token_allowed with the range end j1, relative to j0.
          const int i = wr0 + w * 16 + g + hh * 8, ip = i + Skv - Sq;
          const int hiEx = kind == 0 ? 0 : (Cfg::CAUSAL ? min(j1, ip + 1) : j1) - j0;
          const int loW = ip - Cfg::WINDOW - j0, sinkEx = Cfg::SINKS - j0;
#pragma unroll
          for (int n = 0; n < BN / 8; ++n)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
              const int jr = n * 8 + 2 * t + e;
              bool ok = jr < hiEx;
              if (Cfg::WINDOW > 0)
                ok = ok && (jr > loW || jr < sinkEx);
              if constexpr (Cfg::HAS_PATTERN)
                ok = ok && pattern_block(Cfg::P_CAUSAL, Cfg::P_WINDOW, Cfg::P_SINKS, i / Cfg::P_BQ,
                                         (j0 + jr) / Cfg::P_BK, Cfg::P_BQ, Cfg::P_BK, Sq, Skv);
              if (!ok)
                sc[n * 4 + 2 * hh + e] = neg_inf();
            }
        }
      }
      // Online softmax (log2 domain), rows g (hh = 0) and g + 8 (hh = 1).
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        float mx = neg_inf();
#pragma unroll
        for (int n = 0; n < BN / 8; ++n)
          mx = fmaxf(mx, fmaxf(sc[n * 4 + 2 * hh], sc[n * 4 + 2 * hh + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        float mNew = fmaxf(mrow[hh], mx * kF);
        // Nothing allowed yet: subtract 0 so 2^(-inf - base) = 0, not NaN.
        float base = mNew == neg_inf() ? 0.f : mNew;
        corr[hh] = ex2(mrow[hh] - base);
        mrow[hh] = mNew;
        float sum = 0.f;
#pragma unroll
        for (int n = 0; n < BN / 8; ++n)
#pragma unroll
          for (int e = 2 * hh; e < 2 * hh + 2; ++e) {
            float v = ex2(fmaf(sc[n * 4 + e], kF, -base));
            sc[n * 4 + e] = v;
            sum += v;
          }
        lrow[hh] = lrow[hh] * corr[hh] + sum;
      }
    }
    if constexpr (PV)
      wg_wait<0>();
    // Pin o and the P values behind the wait: the packing below overwrites
    // the registers the pending P.V reads (ptxas serializes every wgmma,
    // C7513, if a write to them can move above the wait).
    fence_regs(o);
    fence_regs(sc);
#pragma unroll
    for (int dn = 0; dn < D / 8; ++dn) {
      o[dn * 4 + 0] *= corr[0];
      o[dn * 4 + 1] *= corr[0];
      o[dn * 4 + 2] *= corr[1];
      o[dn * 4 + 3] *= corr[1];
    }
    // S accumulators of n-chunks 2kk, 2kk + 1 are exactly the A fragment of
    // k-step kk (rows g / g + 8, keys 16kk + 2t (+1) and 16kk + 8 + 2t (+1)).
#pragma unroll
    for (int kk = 0; kk < KN; ++kk) {
      pa[kk][0] = pack2<T>(sc[8 * kk + 0], sc[8 * kk + 1]);
      pa[kk][1] = pack2<T>(sc[8 * kk + 2], sc[8 * kk + 3]);
      pa[kk][2] = pack2<T>(sc[8 * kk + 4], sc[8 * kk + 5]);
      pa[kk][3] = pack2<T>(sc[8 * kk + 6], sc[8 * kk + 7]);
    }
    // This tile's V stage holds finite values (loaded, zero past the range)
    // and stays untouched until the next P.V has completed.
    pendV = v_stage(vs);
  }

  /// Issues and completes the last pending P.V.
  __device__ __forceinline__ void drain() {
    fence_regs(o);
    fence_regs(pa);
    wg_fence();
    issue_pv();
    wg_wait<0>();
    fence_regs(o);
  }

  /// Normalises and writes O (and LSE) of this warpgroup's valid rows.
  __device__ __forceinline__ void finish() {
    const int w = wlane >> 5, lane = wlane & 31, g = lane >> 2, t = lane & 3;
    u16 *oBase = attn_common::slice<u16>(p.o, b, h);
    const bool oVec = attn_common::rows_aligned<4>(p.o);
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      float l = lrow[hh];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      int i = wr0 + w * 16 + g + hh * 8;
      if (i >= wr1)
        continue;
      attn_common::store_row<Cfg>(*this, oBase, oVec, i, t, mrow[hh], l,
                                  [&](int dn, int e) { return o[dn * 4 + 2 * hh + e]; });
    }
  }

  __device__ __forceinline__ void run() {
    b = blockIdx.z, h = blockIdx.y, hk = h / G;
    Sq = p.q.S, Skv = p.k.S;
    tid = threadIdx.x, wlane = tid % 128;
    // Broadcast so the compiler sees a warp-uniform value: the wgmma
    // descriptors derived from it then live in uniform registers (a per-thread
    // value would need R2UR moves between the wgmmas, which serializes them).
    wg = __shfl_sync(0xffffffffu, tid / 128, 0);
    // Dense causal: the longest row tiles (largest index) start first.
    const int tIdx = (Cfg::CAUSAL && !Cfg::HAS_BLOCKS)
                         ? static_cast<int>(gridDim.x - 1 - blockIdx.x)
                         : static_cast<int>(blockIdx.x);
    attn_common::cta_rows<Cfg, BM>(tIdx, Sq, row0, rowEnd);
    if (row0 >= rowEnd) // a short last query block: whole CTA leaves together
      return;
    wr0 = row0 + wg * WR;
    wr1 = min(wr0 + WR, rowEnd);
    wgActive = wr0 < wr1;

    pendV = 0;
#pragma unroll
    for (int hh = 0; hh < 2; ++hh)
      mrow[hh] = neg_inf(), lrow[hh] = 0.f;
#pragma unroll
    for (int e = 0; e < NO; ++e)
      o[e] = 0.f;
    // sc is first written by the zero-init wgmma, pa by complete<false>.

    attn_common::schedule_init<Cfg, BM>(*this, tIdx);

    int j0 = 0, j1 = 0;
    if (next_tile(j0, j1)) { // CTA-uniform
      attn_common::bind_qkv(*this);
      load_rows<BM, WR>(sbase, qBase + static_cast<i64>(row0) * p.q.ss, p.q.ss, rowEnd - row0,
                        qVec);
      load_tile(0, 0, j0, j1);
      cp_async_commit();

      int n0 = 0, n1 = 0;
      bool more = next_tile(n0, n1);
      cp_async_wait_all();
      fence_proxy_async(); // this thread's copies -> visible to wgmma
      __syncthreads();     // Q and tile 0 visible to all
      int kind = issue<false>(0, j0, j1);
      if (more) {
        load_tile(1, 1, n0, n1);
        cp_async_commit();
      }
      complete<false>(kind, 0, j0, j1);
      int ks = 0, vs = 0; // stages of the tile just done
      while (more) {
        j0 = n0, j1 = n1, ks ^= 1, vs = vs == kAttnWgmmaVStages - 1 ? 0 : vs + 1;
        more = next_tile(n0, n1);
        cp_async_wait_all();
        fence_proxy_async();
        // Tile (j0, j1) visible to all; the stages reloaded below (K of the
        // previous tile, V of the one before) are read by no wgmma any more.
        __syncthreads();
        kind = issue<true>(ks, j0, j1);
        if (more) {
          load_tile(ks ^ 1, vs == kAttnWgmmaVStages - 1 ? 0 : vs + 1, n0, n1);
          cp_async_commit();
        }
        complete<true>(kind, vs, j0, j1);
      }
      drain();
    }
    if (wgActive)
      finish();
  }
};

} // namespace attn_wgmma_detail

/// sattn.attention forward on Hopper warpgroup MMA (sm_90a only). Launch as
/// described at attn_wgmma_threads / attn_wgmma_grid_x /
/// attn_wgmma_smem_bytes (or AttnWgmmaLaunch<Cfg>).
template <class Cfg> __device__ void attn_fwd_wgmma(const AttnParams &p) {
  static_assert(attn_common::TensorCoreCfgCheck<Cfg>::ok, "attn_fwd_wgmma: invalid Cfg");
  using F = attn_wgmma_detail::Fwd<Cfg>;
  static_assert(F::SMEM_BYTES == static_cast<unsigned>(AttnWgmmaLaunch<Cfg>::smem_bytes),
                "attn_fwd_wgmma: attn_wgmma_smem_bytes disagrees with the kernel's layout");
  static_assert(F::SMEM_BYTES <= 227 * 1024, "attn_fwd_wgmma: too much shared memory");
  static_assert(F::NT <= kAttnWgmmaThreads, "attn_fwd_wgmma: kAttnWgmmaThreads is too small");
#if defined(__CUDA_ARCH__) && !defined(__CUDA_ARCH_FEAT_SM90_ALL)
  // No wgmma on this target (sm_80/86/89, or the portable compute_90 PTX run
  // on Blackwell): the module still compiles, but this kernel must not be
  // launched there (attn_wgmma_supported(..., ccMajor) is false).
  __trap();
#else
  extern __shared__ __align__(16) unsigned char sattn_wgmma_smem[];
  if (blockDim.x != F::NT) // launched with the wrong shape: fail loudly, not silently
    __trap();
  const ptx::u32 raw = ptx::smem_addr(sattn_wgmma_smem);
  F(p, (raw + 1023u) & ~1023u).run();
#endif
}

} // namespace dev
} // namespace sattn

#endif // __CUDACC__

#endif // SATTN_DEVICE_ATTENTION_WGMMA_CUH
