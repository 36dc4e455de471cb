//===- attention_bwd.cuh - sattn.attention backward on tensor cores -------===//
//
// Gradients of L = sum(dO * O) for O = attention(q, k, v) (semantics §2,
// docs/training.md), FlashAttention-2 style, for head dims 64 and 128 (and
// 96 on the mma.sync forms), bf16 / fp16, the masks (causal, window,
// sinks), static block patterns, block sets (per head or per GQA group),
// query sets and vertical-slash sets, GQA. Two forms of the dK/dV and dQ
// kernels share the schedule, masking and epilogues: mma.sync on tiles with
// padded rows (sm_80, head dim 96), and on sm_90a (attn_bwd_dkdv_wg,
// attn_bwd_dq_wg) wgmma: the CTA's 4 warps are
// one warpgroup whose m64 accumulators have the mma.sync fragment layout,
// the tiles sit in the 128-byte-swizzle layout, and the two products of a
// tile that read the same operand pair (S and dP) are issued as one group
// (an overlapped schedule — P while dP runs, dV before dS — measured no
// faster on two-warpgroup CTAs: docs/performance.md, 2026-12-07 tenth).
// With s = scale q.k, P = exp(s - LSE) (the forward's saved LSE), dP =
// dO.v, delta = rowsum(dO * O), dS = P (dP - delta):
//
//   attn_bwd_delta     delta per query row (one warp per row).
//   attn_bwd_transpose per (b, set head, KV block J) the query blocks
//                      whose lists name J, ascending (one thread each: a
//                      binary search per list; no host synchronisation):
//                      counted, prefix-summed (attn_bwd_transpose_scan),
//                      then written compactly.
//   attn_bwd_dkdv      one CTA per 64-key tile of (b, KV head) — on sm_90a
//                      two warpgroups of 64 keys each when the module's Cfg
//                      says so (BwdKeyWgsOf: they share the query walk and
//                      its Q / dO stages) — K and V stay
//                      in shared memory; for every query head of the GQA
//                      group and every 64-row query tile that can see the
//                      keys (mask bounds, or the transposed list), Q, dO,
//                      LSE, delta are double-buffered with cp.async and
//                      each warp (16 keys) computes S^T = K Q^T, P^T,
//                      dP^T = V dO^T, dS^T, then dV += P^T dO and
//                      dK += dS^T Q in registers. dK/dV of a KV head sum
//                      over its query heads in a fixed order. Fast mode
//                      (Cfg::ATOMIC_DQ; dq_accum set): dS goes through
//                      shared memory and each warp adds dS K for 16 query
//                      rows to dq_accum with fp32 atomics (wgmma: dS as
//                      register A fragments, K read N-major, one vector
//                      reduction per column pair) — one pass, no second
//                      computation of S and dP.
//   attn_bwd_dq        deterministic mode: one CTA per 64 query rows (sm_90a:
//                      or 128, two warpgroups sharing the K / V stages:
//                      BwdRowWgsOf), the
//                      forward's own key schedule (attention_common.cuh);
//                      recomputes S, P, dP, dS and sums dQ = dS K in
//                      registers in key order: same bits on every run.
//   attn_bwd_dq_convert  fast mode: dq_accum * scale -> dq (dtype).
//   attn_bwd_split_rows  query sets (OmniSparse): delta, and the LSE of
//                      each of two passes. The gradient is a sum over
//                      disjoint rows, so the backward runs twice: the
//                      active pass (the op's mask and block set, lazy rows
//                      at LSE -inf so P = 0) writes dq/dk/dv, then the lazy
//                      pass (causal + lazy window + lazy sinks, active rows
//                      at -inf) adds to them (AttnBwdParams::accumulate).
//                      Unlike the forward, rows are not packed: each pass
//                      computes its tiles for every row (docs/training.md).
//   vertical-slash sets (MInference, semantics §12b): the pairs split into
//                      band keys and kept columns. attn_bwd_dkdv walks, per
//                      key tile, the query blocks whose bands meet it (a
//                      key counts when its distance lies in an interval);
//                      attn_bwd_dkdv_cols does the same for 64 gathered
//                      columns of a query head (a column counts for a block
//                      when its distance lies in no interval) into dkc /
//                      dvc, which attn_bwd_vs_scatter adds to dk / dv, one
//                      launch per head of a GQA group; attn_bwd_dq follows
//                      the forward's schedule (bands and gathered columns).
//
// Which (row, key) pairs count is decided exactly as in the forward: tile
// classification skip / full / partial, the exact predicate (mask, pattern,
// range ends) in partial tiles; rows past the end and rows with no allowed
// key (LSE = -inf) get P = 0.
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_DEVICE_ATTENTION_BWD_CUH
#define SATTN_DEVICE_ATTENTION_BWD_CUH

#include "params.cuh"

namespace sattn {
namespace dev {

enum : int {
  kAttnBwdThreads = 128, // 4 warps
  kAttnBwdTile = 64,     // keys per dK/dV warpgroup, query rows per tile
  kAttnBwdDeltaRows = 4, // rows per attn_bwd_delta CTA (one warp each)
  kAttnBwdTransposeThreads = 128,
  kAttnBwdRingBytes = 64, // the stage and dS rings' mbarriers (two warpgroups per CTA)
};

/// Warpgroups per sm_90a dK/dV CTA: Cfg::BWD_KEY_WGS when the backward
/// module's Cfg defines it (Backward.cpp: 2 where the CTA's 128 keys share
/// one query walk), else 1.
template <class C, class = void> struct BwdKeyWgsOf {
  static constexpr int value = 1;
};
template <class C> struct BwdKeyWgsOf<C, decltype(void(C::BWD_KEY_WGS))> {
  static constexpr int value = C::BWD_KEY_WGS;
};
/// Warpgroups per sm_90a deterministic dQ CTA (64 query rows each, sharing
/// the K / V stages): Cfg::BWD_ROW_WGS when defined, else 1.
template <class C, class = void> struct BwdRowWgsOf {
  static constexpr int value = 1;
};
template <class C> struct BwdRowWgsOf<C, decltype(void(C::BWD_ROW_WGS))> {
  static constexpr int value = C::BWD_ROW_WGS;
};

/// Dynamic shared memory of attn_bwd_dkdv: K, V, two stages of Q and dO
/// (rows padded by 8 elements), the dS tile [64][72] and two stages of the
/// rows' LSE and delta.
constexpr int attn_bwd_dkdv_smem_bytes(int headDim) {
  return (6 * kAttnBwdTile * (headDim + 8) + kAttnBwdTile * (kAttnBwdTile + 8)) * 2 +
         4 * kAttnBwdTile * 4;
}
/// Dynamic shared memory of attn_bwd_dq: two stages of K and V, Q and dO.
constexpr int attn_bwd_dq_smem_bytes(int headDim) {
  return 6 * kAttnBwdTile * (headDim + 8) * 2;
}
/// The wgmma forms (sm_90a): the same tiles unpadded in the swizzled
/// layout (dK/dV in the atomic mode: with the padded dS tile), plus 1 KB
/// to align the base to 1024 bytes.
/// keyWgs: warpgroups per dK/dV CTA, each with its own 64 keys (K and V
/// tiles) and both reading the same Q / dO stages (BwdKeyWgsOf).
constexpr int attn_bwd_dkdv_wg_smem_bytes(int headDim, bool atomicDq, int keyWgs = 1) {
  // The atomic mode's dS tile: [64 queries][64 keys + 8] (one warpgroup),
  // or two swizzled [64][128] buffers (two, see DkDv::ds_put).
  return ((2 * keyWgs + 4) * kAttnBwdTile * headDim +
          (atomicDq ? (keyWgs > 1 ? 2 * kAttnBwdTile * kAttnBwdTile * keyWgs
                                  : kAttnBwdTile * (kAttnBwdTile + 8))
                    : 0)) *
             2 +
         4 * kAttnBwdTile * 4 + (keyWgs > 1 ? kAttnBwdRingBytes : 0) + 1024;
}
/// The atomic mode's two-warpgroup dK/dV CTA with TMA dQ reductions
/// (p.dq_tma, DkDv::reduce_dq): the staging tiles follow the floats and
/// barriers (`floatsAt`: their byte offset from the aligned base) at the
/// next 1024-byte boundary, one [64][D] fp32 tile per warpgroup.
constexpr int attn_bwd_dq_stage_offset(int floatsAt) {
  return (floatsAt + 4 * kAttnBwdTile * 4 + kAttnBwdRingBytes + 1023) / 1024 * 1024;
}
constexpr int attn_bwd_dq_stage_smem_bytes(int headDim, int keyWgs) {
  return attn_bwd_dq_stage_offset((2 * keyWgs + 4) * kAttnBwdTile * headDim * 2 +
                                  2 * kAttnBwdTile * kAttnBwdTile * keyWgs * 2) +
         keyWgs * kAttnBwdTile * headDim * 4 + 1024;
}
constexpr int attn_bwd_dq_wg_smem_bytes(int headDim, int rowWgs = 1) {
  return (4 + 2 * rowWgs) * kAttnBwdTile * headDim * 2 + (rowWgs > 1 ? kAttnBwdRingBytes : 0) +
         1024;
}

} // namespace dev
} // namespace sattn

#if defined(__CUDACC__)

#include "attention_common.cuh"
#include "masks.cuh"
#include "ptx.cuh"
#include "tma.cuh"
#include "types.cuh"
#include "wgmma.cuh"

namespace sattn {
namespace dev {
namespace attn_bwd_detail {

using namespace ptx;

constexpr float kLog2e = 1.4426950408889634f;

/// LSE (natural log) -> the log2-domain offset P = 2^(s log2e - x); +inf
/// for a row with no allowed key, so its P is 0.
__device__ __forceinline__ float lse2_of(float lse) {
  return lse == neg_inf() ? __int_as_float(0x7f800000) : lse * kLog2e;
}

/// The dynamic shared memory rounded up to the 1024-byte swizzle period
/// (the *_wg_smem_bytes sizes include the slack).
__device__ __forceinline__ unsigned char *align1024(unsigned char *smem) {
  return smem + ((1024u - (smem_addr(smem) & 1023u)) & 1023u);
}

/// Common constants and loaders of the two tensor-core backward kernels.
/// WG: the sm_90a form (wgmma, tiles in the 128-byte-swizzle layout, TILE
/// = 64 x D elements); else mma.sync on tiles with rows padded by 8.
template <class Cfg, bool WG> struct Base {
  static constexpr DType T = Cfg::DTYPE;
  static constexpr int D = Cfg::HEAD_DIM;
  static constexpr int NT = kAttnBwdThreads;
  static constexpr int BT = kAttnBwdTile;
  static constexpr int LDS = D + 8;     // smem row stride (elements)
  static constexpr int TILE = WG ? BT * D : BT * LDS; // elements of one 64-row tile
  static constexpr int KD = D / 16;     // k-steps over the head dim
  static constexpr int ND = D / 8;      // n-tiles over the head dim
  static constexpr int G = Cfg::HEADS / Cfg::KV_HEADS;
  static constexpr float kC = Cfg::SCALE * kLog2e;

  /// Stages 64 rows of D elements from src (row stride ss) at smem address
  /// dst; rows >= valid are zero-filled. WG: 16-byte chunk k of row r goes
  /// to panel k / 8 ([64 rows][128 B]), chunk (k % 8) ^ (r % 8) of its row
  /// (the layout wgmma descriptors with 128-byte swizzle read).
  /// NTH threads (tid < NTH) share the copies.
  template <int NTH = NT>
  __device__ __forceinline__ static void load_rows(u32 dst, const u16 *src, i64 ss, int valid,
                                                   bool vec, int tid) {
    constexpr int CPR = D / 8;
    constexpr int PER = BT * CPR / NTH;
    static_assert(BT * CPR % NTH == 0, "load_rows: chunks must split evenly over the threads");
#pragma unroll
    for (int it = 0; it < PER; ++it) {
      int c = tid + it * NTH;
      int r = c / CPR, k = c % CPR;
      u32 d = WG ? dst + (k >> 3) * (BT * 128) + r * 128 + (((k & 7) ^ (r & 7)) << 4)
                 : dst + (r * LDS + k * 8) * 2;
      bool in = r < valid;
      const u16 *g = src + (in ? static_cast<i64>(r) * ss : 0) + k * 8;
      stage_chunk16(d, g, in, vec);
    }
  }

  /// sm_90a, two warpgroups per CTA: the two stages of the tile walk as a
  /// ring with a "full" and an "empty" mbarrier each, in place of one CTA
  /// barrier per tile. Every thread copies its share of a stage and arrives
  /// on its full barrier (once for its cp.async copies, once — release — for
  /// its plain stores: LSE, delta, rows not 16-byte aligned); every thread
  /// arrives on the empty barrier after its products read the stage; a
  /// stage is refilled once both warpgroups released it. So a warpgroup may
  /// run up to a tile ahead of the other — one's exponentials under the
  /// other's products — where the CTA barrier made them meet every tile.
  struct StageRing {
    u32 bars;         // full[2], then empty[2]: 8 bytes each
    u32 fph = 0, eph = 0; // parity of the next wait, bit s for stage s
    __device__ __forceinline__ u32 full(int st) const { return bars + 8 * st; }
    __device__ __forceinline__ u32 empty(int st) const { return bars + 16 + 8 * st; }
    /// Thread 0 initialises the barriers at shared address at (8-byte
    /// aligned, 32 bytes): FULL and EMPTY arrivals complete a phase. A
    /// __syncthreads must follow.
    template <int FULL, int EMPTY> __device__ __forceinline__ void init(u32 at, int tid) {
      bars = at;
      if (tid == 0) {
#pragma unroll
        for (int st = 0; st < 2; ++st) {
          mbar_init(full(st), FULL);
          mbar_init(empty(st), EMPTY);
        }
        fence_mbar_init();
      }
    }
    /// This thread's copies into stage st are issued.
    __device__ __forceinline__ void filled(int st) const {
      cp_async_mbar_arrive(full(st));
      mbar_arrive(full(st));
    }
    /// Stage st holds its tile, visible to wgmma (the async proxy).
    __device__ __forceinline__ void wait_full(int st) {
      mbar_wait(full(st), (fph >> st) & 1u);
      fph ^= 1u << st;
      fence_proxy_async();
    }
    /// This thread is done reading stage st.
    __device__ __forceinline__ void release(int st) const { mbar_arrive(empty(st)); }
    /// Every thread released stage st's last tile.
    __device__ __forceinline__ void wait_empty(int st) {
      mbar_wait(empty(st), (eph >> st) & 1u);
      eph ^= 1u << st;
    }
  };

  /// The tile walk's step before computing on stage s: stage s holds its
  /// tile and, when `more`, `load` has issued the next tile's copies into
  /// stage s ^ 1 — through the ring with NWG > 1 (waiting for both
  /// warpgroups to release s ^ 1 unless it is still unused: `first`), else
  /// with one CTA barrier (stage s visible; everyone done with stage s ^ 1
  /// and the dS tile).
  template <int NWG, class Load>
  __device__ __forceinline__ static void next_stage(StageRing &ring, int s, bool more, bool first,
                                                    const Load &load) {
    if constexpr (NWG > 1) {
      if (more) {
        if (!first)
          ring.wait_empty(s ^ 1);
        load();
        ring.filled(s ^ 1);
      }
      ring.wait_full(s);
    } else {
      cp_async_wait_all();
      if constexpr (WG)
        fence_proxy_async(); // the copies, visible to wgmma's async proxy
      __syncthreads();
      if (more) {
        load();
        cp_async_commit();
      }
    }
  }

  /// Exact §2 membership of key j for row i given the tile's own bounds
  /// (rows < r1, keys < k1); the block set is implied by the schedule.
  __device__ __forceinline__ static bool allowed(int i, int j, int r1, int k1, int Sq, int Skv) {
    if (i >= r1 || j >= k1)
      return false;
    if (!token_allowed<Cfg::CAUSAL, Cfg::WINDOW, Cfg::SINKS>(i, j, Sq, Skv))
      return false;
    if constexpr (Cfg::HAS_PATTERN)
      return pattern_block(Cfg::P_CAUSAL, Cfg::P_WINDOW, Cfg::P_SINKS, i / Cfg::P_BQ, j / Cfg::P_BK,
                           Cfg::P_BQ, Cfg::P_BK, Sq, Skv);
    return true;
  }

  /// sm_90a: d1 = A1 B1ᵀ and d2 = A2 B2ᵀ over the head dim for 64-row
  /// K-major tiles at shared addresses a1, b1, a2, b2 (S and dP, or their
  /// transposes), issued as one commit group and waited for.
  __device__ __forceinline__ static void two_products(float (&d1)[BT / 2], float (&d2)[BT / 2],
                                                      u32 a1, u32 b1, u32 a2, u32 b2) {
    const u64 da1 = make_desc(a1, 16, 1024), db1 = make_desc(b1, 16, 1024);
    const u64 da2 = make_desc(a2, 16, 1024), db2 = make_desc(b2, 16, 1024);
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < KD; ++kk) {
      const u64 o = kstep_offset<BT>(kk);
      if (kk == 0) {
        wgmma_ss<T, BT, 0>(d1, da1 + o, db1 + o);
        wgmma_ss<T, BT, 0>(d2, da2 + o, db2 + o);
      } else {
        wgmma_ss<T, BT, 1>(d1, da1 + o, db1 + o);
        wgmma_ss<T, BT, 1>(d2, da2 + o, db2 + o);
      }
    }
    wg_commit();
    wg_wait<0>();
    fence_regs(d1);
    fence_regs(d2);
  }

  /// The A fragment of k-step kk (16 columns) from accumulator tiles c
  /// [n-tile of 8][4] (mma.sync m16n8 and wgmma m64 alike), in T.
  template <int N>
  __device__ __forceinline__ static void pack_a(u32 (&a)[4], const float (&c)[N][4], int kk) {
    a[0] = pack2<T>(c[2 * kk][0], c[2 * kk][1]);
    a[1] = pack2<T>(c[2 * kk][2], c[2 * kk][3]);
    a[2] = pack2<T>(c[2 * kk + 1][0], c[2 * kk + 1][1]);
    a[3] = pack2<T>(c[2 * kk + 1][2], c[2 * kk + 1][3]);
  }

  /// 16-bit row pair store of (v0, v1) at columns d, d + 1 of row `row`.
  /// With `add`, the values already there are added (bwd accumulate).
  __device__ __forceinline__ static void store2(u16 *row, int d, float v0, float v1, bool vec,
                                                bool add) {
    if (add) {
      v0 += load_elem<T>(row, d);
      v1 += load_elem<T>(row, d + 1);
    }
    if (vec) {
      *reinterpret_cast<u32 *>(row + d) = pack2<T>(v0, v1);
    } else {
      store_elem<T>(row, d, v0);
      store_elem<T>(row, d + 1, v1);
    }
  }
};

// ------------------------------------------------------------- dK / dV --

/// COLS: the gathered columns of a vertical-slash set (one CTA per 64
/// columns of a (b, query head)); else the op's keys: the mask and block
/// set, or a vertical-slash set's bands (key tiles of a (b, KV head)).
template <class Cfg, bool WG, bool COLS = false> struct DkDv : Base<Cfg, WG> {
  using B_ = Base<Cfg, WG>;
  using B_::BT, B_::D, B_::G, B_::KD, B_::LDS, B_::ND, B_::NT, B_::T, B_::TILE, B_::kC;
  static constexpr bool VS = VSlashOf<Cfg>::value;
  static constexpr int VBQ = VSlashOf<Cfg>::bq; // query block of the set (a multiple of 64)
  static_assert(!COLS || VS, "attn_bwd_dkdv_cols: the attention has no vertical-slash set");
  static_assert(!VS || (VBQ > 0 && VBQ % kAttnBwdTile == 0),
                "attn_bwd: a vertical-slash set needs a query block that is a multiple of 64");
  static constexpr int NQ = BT / 8;  // n-tiles of S^T over the queries
  static constexpr int KQ = BT / 16; // k-steps over the queries
  static constexpr int LDD = BT + 8; // dS tile row stride
  // Warpgroups per CTA (sm_90a, op keys only): each owns 64 keys — its K /
  // V tiles and dK / dV registers — and all read the same Q / dO stages, so
  // a CTA of two stages the query side once per 128 keys. In the atomic mode
  // (DS2) the two also share the dQ product: both put their dS half into
  // one [64 queries][128 keys] buffer and one of them adds dS K over the
  // 128 keys to dq_accum — one reduction per query tile and 128 keys.
  static constexpr int NWG = WG && !COLS && !VS ? BwdKeyWgsOf<Cfg>::value : 1;
  static constexpr int CT = NT * NWG; // threads of the CTA
  static constexpr int CK = BT * NWG; // keys of the CTA
  static_assert(NWG == 1 || NWG == 2, "attn_bwd_dkdv: 1 or 2 key warpgroups per CTA");
  static constexpr bool DS2 = WG && Cfg::ATOMIC_DQ && NWG > 1;
  static_assert(!Cfg::HAS_BLOCKS || NWG == 1 || Cfg::SET_BK % CK == 0,
                "attn_bwd_dkdv: a CTA's keys must lie in one KV block of the set");
  // smem (elements): K[NWG], V[NWG], Q[2], dO[2], dS [query][key] (mma.sync,
  // and wgmma in the atomic mode), then floats lse2[2][64], delta[2][64]
  // and the rings' mbarriers; last, DS2 with p.dq_tma only, each warpgroup's
  // fp32 dQ staging tile (reduce_dq) from the next 1024-byte boundary — the
  // launch without it keeps the smaller size (attn_bwd_dq_stage_smem_bytes).
  static constexpr int OFF_K = 0, OFF_V = NWG * TILE, OFF_Q = 2 * NWG * TILE,
                       OFF_DO = OFF_Q + 2 * TILE, OFF_DS = OFF_DO + 2 * TILE,
                       OFF_F = OFF_DS + (WG && !Cfg::ATOMIC_DQ ? 0 : DS2 ? 2 * BT * CK : BT * LDD);
  static constexpr int STG_BYTES = BT * D * 4; // one warpgroup's staging tile
  static constexpr int STG_AT = attn_bwd_dq_stage_offset(OFF_F * 2);
  static_assert(!DS2 || D % 32 == 0, "attn_bwd_dkdv: dQ staging boxes are 32 columns wide");

  const AttnBwdParams &p;
  u32 sbase;
  float *fsm; // lse2[2][64], delta[2][64]
  // [kc0, kc1): the CTA's keys (the query walk's bounds); [k0, k1): this
  // warpgroup's (wgi) 64 of them, possibly none at the end; warp: within it.
  int b, hk, Sq, Skv, kc0, kc1, k0, k1, tid, wgi, warp, lane;
  bool qVec, doVec;
  // The query-tile walk: per head hh of the group, either mask-bounded
  // 64-row tiles [rBase, rHi) or, with a block set, the transposed list.
  int hh, rNext, rHi, lx, lcnt, blkEnd;
  const int *lrows;
  // Vertical-slash bands: the walked head's distance intervals, the next one.
  const int *ivl;
  int ivn, vx;

  float dk[ND][4], dv[ND][4];
  // DS2: the dS buffers' ring (buffer and owner of walk tile n: n & 1).
  typename B_::StageRing dsr;
  int dsTile = 0;

  __device__ __forceinline__ DkDv(const AttnBwdParams &p_, unsigned char *smem)
      : p(p_), sbase(smem_addr(smem)), fsm(reinterpret_cast<float *>(smem + OFF_F * 2)) {}

  /// Vertical-slash sets: e = dk(I) + 1 of the query block I holding rows
  /// [r0, r0 + 64) (§12b; 64-row tiles never straddle a block).
  __device__ __forceinline__ int vs_e(int r0) const {
    return min((r0 / VBQ + 1) * VBQ, Sq) + Skv - Sq;
  }

  /// Whether distance d lies in one of the n ascending intervals iv.
  __device__ __forceinline__ static bool in_bands(const int *iv, int n, int d) {
    const int x = attn_common::lower_bound_int(iv + 1, n, d + 1, 2); // first with hi > d
    return x < n && iv[2 * x] <= d;
  }

  /// Tile kind for rows [r0, r1) x keys [k0, k1): 0 skip, 1 full, 2 partial
  /// (k0, k1: the CTA's keys for the walk, a warpgroup's for its products).
  __device__ __forceinline__ int classify(int r0, int r1, int k0, int k1) const {
    if constexpr (VS) {
      const int e = vs_e(r0);
      if (e <= 0)
        return 0; // the block's rows see nothing
      if constexpr (COLS)
        return 2; // per-column visibility (probs)
      // Band keys: distances e - k1 .. e - 1 - k0 against the intervals.
      const int ipA = r0 + Skv - Sq, ipB = r1 - 1 + Skv - Sq;
      if (k0 > ipB)
        return 0;
      const int dmin = e - k1, dmax = e - 1 - k0;
      const int x = attn_common::lower_bound_int(ivl + 1, ivn, dmin + 1, 2);
      if (x >= ivn || ivl[2 * x] > dmax)
        return 0;
      const bool full = ivl[2 * x] <= dmin && dmax < ivl[2 * x + 1] && k1 - k0 == BT &&
                        r1 - r0 == BT && k1 - 1 <= ipA;
      return full ? 1 : 2;
    }
    const int ipA = r0 + Skv - Sq, ipB = r1 - 1 + Skv - Sq;
    if (Cfg::CAUSAL && k0 > ipB)
      return 0;
    if (Cfg::WINDOW > 0 && k1 - 1 <= ipA - Cfg::WINDOW && k0 >= Cfg::SINKS)
      return 0;
    bool any = true, all = true;
    if constexpr (Cfg::HAS_PATTERN)
      attn_common::pattern_pairs<Cfg>(*this, r0, r1, k0, k1, any, all);
    if (!any)
      return 0;
    bool full = all && k1 - k0 == BT && r1 - r0 == BT;
    if (Cfg::CAUSAL)
      full = full && k1 - 1 <= ipA;
    if (Cfg::WINDOW > 0)
      full = full && (k0 > ipB - Cfg::WINDOW || k1 - 1 < Cfg::SINKS);
    return full ? 1 : 2;
  }

  /// Starts the walk for head hh (rNext, rHi or the list).
  __device__ __forceinline__ void start_head() {
    if constexpr (VS) {
      const i64 bh = static_cast<i64>(b) * Cfg::HEADS + hk * G + hh;
      ivl = p.f.vs.ivl + bh * p.f.vs.ivCap * 2;
      ivn = p.f.vs.ivl_count[bh];
      vx = 0, rNext = 0, rHi = 0;
      if constexpr (COLS) {
        // Rows whose diagonal passes the tile's first (lowest) column; the
        // rows below see none of the tile.
        const int j = p.f.vs.cols[bh * p.f.vs.nv + kc0];
        rNext = max(0, j + 1 - (Skv - Sq)) / BT * BT, rHi = Sq;
      }
    } else if constexpr (Cfg::HAS_BLOCKS) {
      const int h = hk * G + hh;
      const int hb = Cfg::SET_HEADS == Cfg::HEADS ? h : hk;
      const int J = kc0 / Cfg::SET_BK;
      const i64 col = (static_cast<i64>(b) * Cfg::SET_HEADS + hb) * p.f.blocks.nKB + J;
      lcnt = p.t_counts[col];
      lrows = p.t_rows + (static_cast<i64>(b) * Cfg::SET_HEADS + hb) * p.f.blocks.nQB * p.f.blocks.cap +
              p.t_offsets[col];
      lx = 0, rNext = 0, blkEnd = 0;
    } else {
      const int off = Skv - Sq;
      int lo = Cfg::CAUSAL ? max(0, kc0 - off) : 0;
      int hi = Sq;
      if (Cfg::WINDOW > 0 && kc0 >= Cfg::SINKS)
        hi = min(Sq, kc1 + Cfg::WINDOW - 1 - off);
      rNext = lo / BT * BT, rHi = hi;
    }
  }

  /// Next (head, rows [r0, r1), kind) with kind != 0; false when done.
  __device__ __forceinline__ bool next(int &h, int &r0, int &r1, int &kind) {
    for (;;) {
      if (hh >= G)
        return false;
      if constexpr (VS && !COLS) {
        // Band x = [lo, hi) holds keys [e - hi, e - lo) of block I: it meets
        // keys [k0, k1) for k0 + lo < e_I <= k1 - 1 + hi, a run of blocks
        // that moves up with x (rNext never goes back).
        if (rNext >= rHi) {
          if (vx >= ivn) {
            if (++hh < G)
              start_head();
            continue;
          }
          const int lo = ivl[2 * vx], hi = ivl[2 * vx + 1];
          ++vx;
          const int t = kc0 + lo - (Skv - Sq), u = kc1 - 1 + hi - (Skv - Sq);
          if (t >= Sq) { // no block ends past t; later bands lie further away
            vx = ivn;
            continue;
          }
          rNext = max(rNext, (t < 0 ? 0 : t / VBQ) * VBQ);
          rHi = u >= Sq ? Sq : u / VBQ * VBQ;
          continue;
        }
        r0 = rNext, r1 = min(r0 + BT, rHi);
      } else if constexpr (Cfg::HAS_BLOCKS) {
        if (rNext >= blkEnd) {
          if (lx >= lcnt) {
            if (++hh < G)
              start_head();
            continue;
          }
          const int I = lrows[lx++];
          rNext = I * Cfg::SET_BQ;
          blkEnd = min((I + 1) * Cfg::SET_BQ, Sq);
          continue;
        }
        r0 = rNext, r1 = min(r0 + BT, blkEnd);
      } else {
        if (rNext >= rHi) {
          if (COLS)
            hh = G; // one query head per CTA
          else if (++hh < G)
            start_head();
          continue;
        }
        r0 = rNext, r1 = min(r0 + BT, Sq);
      }
      rNext = r1;
      kind = classify(r0, r1, kc0, kc1);
      if (kind != 0) {
        h = hk * G + hh;
        return true;
      }
    }
  }

  /// Q, dO, LSE and delta of (head h, rows [r0, r1)) into stage s.
  __device__ __forceinline__ void load_q(int s, int h, int r0, int r1) {
    const u16 *q = attn_common::slice(p.f.q, b, h) + static_cast<i64>(r0) * p.f.q.ss;
    const u16 *dO = attn_common::slice(p.dout, b, h) + static_cast<i64>(r0) * p.dout.ss;
    B_::template load_rows<CT>(sbase + (OFF_Q + s * TILE) * 2, q, p.f.q.ss, r1 - r0, qVec, tid);
    B_::template load_rows<CT>(sbase + (OFF_DO + s * TILE) * 2, dO, p.dout.ss, r1 - r0, doVec,
                               tid);
    if (tid < BT) {
      const int i = r0 + tid;
      const i64 row = (static_cast<i64>(b) * Cfg::HEADS + h) * Sq + i;
      fsm[s * BT + tid] = i < r1 ? lse2_of(p.f.lse[row]) : __int_as_float(0x7f800000);
      fsm[2 * BT + s * BT + tid] = i < r1 ? p.delta[row] : 0.f;
    }
  }

  /// P^T (fp32) in place of S^T (sc), element (key kw + g + 8 (e >> 1),
  /// query 8 n + 2 t + (e & 1)) at [n][e], kw = k0 + 16 warp: the fragment
  /// layout of mma.sync m16n8 and of wgmma m64.
  __device__ __forceinline__ void probs_p(float (&sc)[NQ][4], int s, int h, int r0, int r1,
                                          int kind) const {
    const int g = lane >> 2, t = lane & 3;
    const float *lse2 = fsm + s * BT;
    const int kw = k0 + warp * 16;
    // Vertical-slash sets: whether this thread's two keys (columns) count
    // for the tile's query block: a band key when its distance is in the
    // intervals; a column when it is not (then it lies below the block).
    bool kin[2] = {true, true};
    (void)kin;
    if constexpr (VS) {
      if (kind == 2) {
        const i64 bh = static_cast<i64>(b) * Cfg::HEADS + h;
        const int *iv = p.f.vs.ivl + bh * p.f.vs.ivCap * 2;
        const int n = p.f.vs.ivl_count[bh], e = vs_e(r0);
#pragma unroll
        for (int hr = 0; hr < 2; ++hr) {
          const int c = kw + g + hr * 8;
          if constexpr (COLS) {
            // Not in a band: since distance 0 is always kept (§12b, local
            // slashes >= 1), R holds [0, BQ), so such a column lies below
            // the block's first row and needs no per-row causal test.
            const int d = c < k1 ? e - 1 - p.f.vs.cols[bh * p.f.vs.nv + c] : -1;
            kin[hr] = d >= 0 && !in_bands(iv, n, d);
          } else {
            kin[hr] = in_bands(iv, n, e - 1 - c);
          }
        }
      }
    }
#pragma unroll
    for (int n = 0; n < NQ; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int ql = n * 8 + 2 * t + (e & 1);
        float pr = ex2(fmaf(sc[n][e], kC, -lse2[ql]));
        if constexpr (COLS) { // a visible column lies below every row of the block
          if (kind == 2 && !(r0 + ql < r1 && kin[e >> 1]))
            pr = 0.f;
        } else if constexpr (VS) {
          if (kind == 2 &&
              !(B_::allowed(r0 + ql, kw + g + (e >> 1) * 8, r1, k1, Sq, Skv) && kin[e >> 1]))
            pr = 0.f;
        } else if (kind == 2 && !B_::allowed(r0 + ql, kw + g + (e >> 1) * 8, r1, k1, Sq, Skv)) {
          pr = 0.f;
        }
        sc[n][e] = pr;
      }
  }

  /// dS^T = P^T (dP^T - delta) in place of dP^T (dp), the layout of probs_p.
  __device__ __forceinline__ void probs_ds(const float (&sc)[NQ][4], float (&dp)[NQ][4],
                                           int s) const {
    const int t = lane & 3;
    const float *delta = fsm + 2 * BT + s * BT;
#pragma unroll
    for (int n = 0; n < NQ; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        dp[n][e] = sc[n][e] * (dp[n][e] - delta[n * 8 + 2 * t + (e & 1)]);
  }

  /// P^T and dS^T in place of S^T (sc) and dP^T (dp).
  __device__ __forceinline__ void probs(float (&sc)[NQ][4], float (&dp)[NQ][4], int s, int h,
                                        int r0, int r1, int kind) const {
    probs_p(sc, s, h, r0, r1, kind);
    probs_ds(sc, dp, s);
  }

  /// sm_90a: the warpgroup's 64 keys as one m64 tile. S^T = K Q^T and
  /// dP^T = V dO^T (both operands K-major from shared memory), then
  /// dV += P^T dO and dK += dS^T Q with P^T / dS^T from registers and dO / Q
  /// read N-major (the forward's P.V form).
  __device__ __forceinline__ void compute_wg(int s, int h, int r0, int r1, int kind) {
    if constexpr (NWG > 1) { // the walk's kind is the CTA's; this warpgroup's own
      kind = k0 < k1 ? classify(r0, r1, k0, k1) : 0;
      if (kind == 0) {
        if constexpr (DS2) { // its dS half is zero; the tile's dQ still runs
          float none[NQ][4];
          ds_put<true>(none);
          dq_pair(h, r0, r1);
        }
        return;
      }
    }
    const u32 kb = sbase + (OFF_K + wgi * TILE) * 2, vb = sbase + (OFF_V + wgi * TILE) * 2;
    const u32 qb = sbase + (OFF_Q + s * TILE) * 2, dob = sbase + (OFF_DO + s * TILE) * 2;
    float sc[NQ][4], dp[NQ][4];
    float(&scf)[NQ * 4] = reinterpret_cast<float(&)[NQ * 4]>(sc);
    float(&dpf)[NQ * 4] = reinterpret_cast<float(&)[NQ * 4]>(dp);
    float(&dkf)[ND * 4] = reinterpret_cast<float(&)[ND * 4]>(dk);
    float(&dvf)[ND * 4] = reinterpret_cast<float(&)[ND * 4]>(dv);
    u32 pa[KQ][4], sa[KQ][4];
    // 16 queries per k-step = two 8-row swizzle atoms = 2048 B.
    const u64 on = make_desc(dob, BT * 128, 1024), qn = make_desc(qb, BT * 128, 1024);
    B_::two_products(scf, dpf, kb, qb, vb, dob); // S^T = K Q^T, dP^T = V dO^T
    probs(sc, dp, s, h, r0, r1, kind);
#pragma unroll
    for (int kk = 0; kk < KQ; ++kk) {
      B_::pack_a(pa[kk], sc, kk);
      B_::pack_a(sa[kk], dp, kk);
    }
    fence_regs(dkf);
    fence_regs(dvf);
    fence_regs(pa);
    fence_regs(sa);
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < KQ; ++kk) {
      wgmma_rs<T, D>(dvf, pa[kk], on + static_cast<u64>((kk * 2048) >> 4));
      wgmma_rs<T, D>(dkf, sa[kk], qn + static_cast<u64>((kk * 2048) >> 4));
    }
    wg_commit();
    if constexpr (DS2)
      ds_put<false>(dp); // fast mode: while dV / dK run (dp is no wgmma operand)
    else if constexpr (Cfg::ATOMIC_DQ)
      store_ds(dp);
    wg_wait<0>();
    fence_regs(dkf);
    fence_regs(dvf);
    fence_regs(pa);
    fence_regs(sa);
    if constexpr (DS2) {
      dq_pair(h, r0, r1);
    } else if constexpr (Cfg::ATOMIC_DQ) {
      __syncthreads(); // every warp's dS rows are in place
      dq_wg(h, r0, r1);
    }
  }

  __device__ __forceinline__ void compute(int s, int h, int r0, int r1, int kind) {
    if constexpr (WG) {
      compute_wg(s, h, r0, r1, kind);
      return;
    }
    const u32 kb = sbase + OFF_K * 2, vb = sbase + OFF_V * 2;
    const u32 qb = sbase + (OFF_Q + s * TILE) * 2, dob = sbase + (OFF_DO + s * TILE) * 2;
    // ldmatrix lane offsets: A rows (16 keys of this warp) from [key][d];
    // B (n = query, k = d) from [query][d]; B (k = query, n = d) transposed.
    const u32 aOff = ((warp * 16 + (lane & 15)) * LDS + (lane >> 4) * 8) * 2;
    const u32 bOff = (((lane & 7) + (lane >> 4) * 8) * LDS + ((lane >> 3) & 1) * 8) * 2;
    const u32 tOff = (((lane & 7) + ((lane >> 3) & 1) * 8) * LDS + (lane >> 4) * 8) * 2;

    // S^T = K Q^T and dP^T = V dO^T: [16 keys] x [64 queries] per warp.
    float sc[NQ][4], dp[NQ][4];
#pragma unroll
    for (int n = 0; n < NQ; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        sc[n][e] = 0.f, dp[n][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < KD; ++kk) {
      u32 ak[4], av[4];
      ldsm_x4(ak, kb + aOff + kk * 32);
      ldsm_x4(av, vb + aOff + kk * 32);
#pragma unroll
      for (int np = 0; np < NQ / 2; ++np) {
        u32 bq[4], bd[4];
        ldsm_x4(bq, qb + bOff + (np * 16 * LDS + kk * 16) * 2);
        ldsm_x4(bd, dob + bOff + (np * 16 * LDS + kk * 16) * 2);
        mma16816<T>(sc[2 * np], ak, bq[0], bq[1]);
        mma16816<T>(sc[2 * np + 1], ak, bq[2], bq[3]);
        mma16816<T>(dp[2 * np], av, bd[0], bd[1]);
        mma16816<T>(dp[2 * np + 1], av, bd[2], bd[3]);
      }
    }

    probs(sc, dp, s, h, r0, r1, kind);

    // dV += P^T dO, dK += dS^T Q (k = queries).
#pragma unroll
    for (int kk = 0; kk < KQ; ++kk) {
      u32 pa[4], sa[4];
      B_::pack_a(pa, sc, kk);
      B_::pack_a(sa, dp, kk);
#pragma unroll
      for (int dq = 0; dq < D / 16; ++dq) {
        u32 bo[4], bq[4];
        ldsm_x4_t(bo, dob + tOff + (kk * 16 * LDS + dq * 16) * 2);
        ldsm_x4_t(bq, qb + tOff + (kk * 16 * LDS + dq * 16) * 2);
        mma16816<T>(dv[2 * dq], pa, bo[0], bo[1]);
        mma16816<T>(dv[2 * dq + 1], pa, bo[2], bo[3]);
        mma16816<T>(dk[2 * dq], sa, bq[0], bq[1]);
        mma16816<T>(dk[2 * dq + 1], sa, bq[2], bq[3]);
      }
    }

    if constexpr (!Cfg::ATOMIC_DQ)
      return; // deterministic mode: attn_bwd_dq computes dQ
    // Fast mode: dS [query][key] into shared memory, then each warp adds
    // dS K for queries 16 warp .. + 15 to dq_accum (unscaled).
    store_ds(dp);
    __syncthreads();
    const u32 dsa = ds_frag_addr();
    constexpr int HALF = ND / 2; // n-tiles per pass: fewer live registers
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float o[HALF][4];
#pragma unroll
      for (int n = 0; n < HALF; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          o[n][e] = 0.f;
#pragma unroll
      for (int kk = 0; kk < BT / 16; ++kk) {
        u32 a[4];
        ldsm_x4(a, dsa + kk * 32);
#pragma unroll
        for (int dq = 0; dq < HALF / 2; ++dq) {
          u32 bk[4];
          ldsm_x4_t(bk, kb + tOff + (kk * 16 * LDS + (half * HALF / 2 + dq) * 16) * 2);
          mma16816<T>(o[2 * dq], a, bk[0], bk[1]);
          mma16816<T>(o[2 * dq + 1], a, bk[2], bk[3]);
        }
      }
      add_dq(o, half * HALF * 8, h, r0, r1);
    }
  }

  /// Fast mode: dS [query][key] in T into the shared dS tile, from this
  /// thread's dS^T fragments (the layout of probs).
  __device__ __forceinline__ void store_ds(const float (&ds)[NQ][4]) const {
    const int g = lane >> 2, t = lane & 3;
    u16 *dst = reinterpret_cast<u16 *>(fsm) - (OFF_F - OFF_DS);
#pragma unroll
    for (int n = 0; n < NQ; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int ql = n * 8 + 2 * t + (e & 1), kl = warp * 16 + g + (e >> 1) * 8;
        store_elem<T>(dst, ql * LDD + kl, ds[n][e]);
      }
  }

  /// Two-warpgroup fast mode (DS2): this warpgroup's dS^T fragments (ZERO:
  /// zeros) into its 64 key columns of walk tile dsTile's buffer — dS
  /// [query][128 keys] in the swizzled K-major A layout of wgmma (64-key
  /// panels of [64 rows][128 B], 16-byte chunk c of row r at c ^ (r % 8)) —
  /// once the buffer's owner is done with its tile before; then visible to
  /// the async proxy, and this thread's arrival on the buffer's full barrier.
  template <bool ZERO> __device__ __forceinline__ void ds_put(const float (&ds)[NQ][4]) {
    const int sd = dsTile & 1;
    if (dsTile >= 2)
      dsr.wait_empty(sd);
    u16 *buf = reinterpret_cast<u16 *>(fsm) - (OFF_F - OFF_DS) + sd * BT * CK;
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int n = 0; n < NQ; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int ql = n * 8 + 2 * t + (e & 1), c = wgi * BT + warp * 16 + g + (e >> 1) * 8;
        const int at = (c >> 6) * (BT * 64) + ql * 64 + ((((c & 63) >> 3) ^ (ql & 7)) << 3) + (c & 7);
        store_elem<T>(buf, at, ZERO ? 0.f : ds[n][e]);
      }
    fence_proxy_async(); // the stores, visible to the owner's wgmma
    mbar_arrive(dsr.full(sd));
  }

  /// DS2: the owner of walk tile dsTile's buffer (tiles alternate between
  /// the warpgroups) adds dS K over the CTA's 128 keys (A: the buffer, B:
  /// both warpgroups' K tiles read N-major) for the tile's 64 rows to
  /// dq_accum, then frees the buffer. The other warpgroup goes on.
  __device__ __forceinline__ void dq_pair(int h, int r0, int r1) {
    const int sd = dsTile & 1;
    ++dsTile;
    if (sd != wgi)
      return;
    dsr.wait_full(sd); // both halves stored (fence_proxy_async included)
    const u64 ad = make_desc(sbase + (OFF_DS + sd * BT * CK) * 2, 16, 1024);
    float o[ND][4];
    float(&of)[ND * 4] = reinterpret_cast<float(&)[ND * 4]>(o);
    zero_acc(of);
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < CK / 16; ++kk) { // 16 keys per k-step; KQ steps per K tile
      const u64 kn = make_desc(sbase + (OFF_K + (kk / KQ) * TILE) * 2, BT * 128, 1024);
      wgmma_ss_tb<T, D>(of, ad + kstep_offset<BT>(kk),
                        kn + static_cast<u64>(((kk % KQ) * 2048) >> 4));
    }
    wg_commit();
    wg_wait<0>();
    fence_regs(of);
    mbar_arrive(dsr.empty(sd)); // the buffer may be refilled
    if (p.dq_tma)
      reduce_dq(o, h, r0);
    else
      add_dq(o, 0, h, r0, r1);
  }

  /// DS2 with p.dq_tma: this warpgroup's dQ tile (rows r0 .. r0 + 63 of head
  /// h) into its fp32 staging buffer — D / 32 boxes of [64 rows][128 B] in
  /// the 128-byte swizzle (16-byte chunk c of row r at c ^ (r % 8)) — then
  /// one TMA reduce-add per box into dq_accum, issued by the warpgroup's
  /// first thread. The L2 adds whole lines, where red.global sent D / 2
  /// two-float atomics per thread and tile. Rows >= r1 add exact zeros
  /// (their P and dS are 0, given finite K and V); rows past Sq are clipped
  /// by the map.
  /// Bank conflicts: 8-byte stores are served by half-warps (rows g = 0..3
  /// or 4..7 of the m64 layout, 4 lanes each). Were every lane to store the
  /// same n-tile, rows g and g ^ 1 would land on the same two swizzled
  /// chunks (2-way conflict). So within a box lane g stores n-tile k ^ (g %
  /// 4) at step k: the chunk pair (k ^ g % 4) ^ (g / 2) differs for the four
  /// rows of each half-warp. The registers are permuted by two conditional
  /// swaps (selects), not indexed. Measured on an H100 (2026-12-07, S 16k):
  /// the permuted order 3-6 % faster than the plain one, and the TMA path
  /// 4-10 % faster than red.global.
  __device__ __forceinline__ void reduce_dq(const float (&o)[ND][4], int h, int r0) const {
    const bool issuer = tid % NT == 0;
    const u32 stg = sbase + STG_AT + wgi * STG_BYTES;
    if (issuer)
      bulk_wait_read<0>(); // this buffer's previous reduction has read it
    named_sync<NT>(1 + wgi);
    const int g = lane >> 2, t = lane & 3;
    const int s = g & 3;
#pragma unroll
    for (int bx = 0; bx < D / 32; ++bx)
#pragma unroll
      for (int hr = 0; hr < 2; ++hr) {
        float v[4][2];
#pragma unroll
        for (int j = 0; j < 4; ++j)
          v[j][0] = o[4 * bx + j][2 * hr], v[j][1] = o[4 * bx + j][2 * hr + 1];
        // v[k] <- v[k ^ s]
#pragma unroll
        for (int j = 0; j < 4; j += 2)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const float a = v[j][e], c = v[j + 1][e];
            v[j][e] = s & 1 ? c : a, v[j + 1][e] = s & 1 ? a : c;
          }
#pragma unroll
        for (int j = 0; j < 2; ++j)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const float a = v[j][e], c = v[j + 2][e];
            v[j][e] = s & 2 ? c : a, v[j + 2][e] = s & 2 ? a : c;
          }
        const int r = warp * 16 + g + 8 * hr;
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          const int chunk = 2 * (k ^ s) + (t >> 1); // 16-byte chunk in the 128-byte row
          st_shared_f32x2(stg + bx * (BT * 128) + r * 128 + ((chunk ^ (r & 7)) << 4) +
                              (t & 1) * 8,
                          v[k][0], v[k][1]);
        }
      }
    fence_proxy_async(); // the stores, visible to the TMA unit
    named_sync<NT>(1 + wgi);
    if (issuer) {
#pragma unroll
      for (int bx = 0; bx < D / 32; ++bx)
        tma_reduce_add_3d(&p.tdq, stg + bx * (BT * 128), bx * 32, r0, b * Cfg::HEADS + h);
      bulk_commit();
    }
  }

  /// Fast mode: this lane's ldmatrix address of the dS tile's A fragment
  /// (16 query rows per warp; + 32 bytes per k-step of 16 keys).
  __device__ __forceinline__ u32 ds_frag_addr() const {
    return sbase + (OFF_DS + (warp * 16 + (lane & 15)) * LDD + (lane >> 4) * 8) * 2;
  }

  /// Fast mode: adds a dQ fragment of this warp's 16 query rows (r0 + 16
  /// warp + g + 8 hr, the m16n8 / m64 accumulator layout), N n-tiles from
  /// column c0, to dq_accum (fp32 atomics: the order varies between runs).
  template <int N>
  __device__ __forceinline__ void add_dq(const float (&o)[N][4], int c0, int h, int r0,
                                         int r1) const {
    const int g = lane >> 2, t = lane & 3;
    float *acc = p.dq_accum + ((static_cast<i64>(b) * Cfg::HEADS + h) * Sq) * D;
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      const int i = r0 + warp * 16 + g + hr * 8;
      if (i < r1)
#pragma unroll
        for (int n = 0; n < N; ++n) {
          float *a = acc + static_cast<i64>(i) * D + c0 + n * 8 + 2 * t;
          if constexpr (WG) {
            red_add_f32x2(a, o[n][2 * hr], o[n][2 * hr + 1]);
          } else {
            atomicAdd(a, o[n][2 * hr]);
            atomicAdd(a + 1, o[n][2 * hr + 1]);
          }
        }
    }
  }

  /// sm_90a fast mode: dQ += dS K for the tile's 64 query rows, after
  /// store_ds and a CTA barrier: dS as register A fragments (ldmatrix, 16
  /// rows per warp), K read N-major (as dO in the dV product).
  __device__ __forceinline__ void dq_wg(int h, int r0, int r1) const {
    const u32 dsa = ds_frag_addr();
    u32 da[KQ][4];
#pragma unroll
    for (int kk = 0; kk < KQ; ++kk)
      ldsm_x4(da[kk], dsa + kk * 32);
    const u64 kn = make_desc(sbase + OFF_K * 2, BT * 128, 1024);
    float o[ND][4];
    float(&of)[ND * 4] = reinterpret_cast<float(&)[ND * 4]>(o);
    zero_acc(of);
    fence_regs(da);
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < KQ; ++kk) // 16 keys per k-step = 2048 B
      wgmma_rs<T, D>(of, da[kk], kn + static_cast<u64>((kk * 2048) >> 4));
    wg_commit();
    wg_wait<0>();
    fence_regs(of);
    fence_regs(da); // the A registers stay untouched until the product is done
    add_dq(o, 0, h, r0, r1);
  }

  __device__ __forceinline__ void run() {
    b = blockIdx.z, hk = COLS ? blockIdx.y / G : blockIdx.y;
    Sq = p.f.q.S, Skv = p.f.k.S;
    tid = threadIdx.x, wgi = tid / NT, warp = tid % NT / 32, lane = tid % 32;
    if constexpr (COLS) { // columns [kc0, kc1) of query head blockIdx.y
      kc0 = blockIdx.x * BT;
      kc1 = min(kc0 + BT, p.f.vs.nv);
    } else if constexpr (Cfg::HAS_BLOCKS) {
      constexpr int TPB = (Cfg::SET_BK + CK - 1) / CK; // CTAs per KV block
      const int J = blockIdx.x / TPB;
      kc0 = J * Cfg::SET_BK + CK * (blockIdx.x % TPB);
      kc1 = min(min(kc0 + CK, (J + 1) * Cfg::SET_BK), Skv);
    } else {
      kc0 = blockIdx.x * CK;
      kc1 = min(kc0 + CK, Skv);
    }
    if (kc0 >= kc1)
      return;
    k0 = kc0 + wgi * BT, k1 = min(k0 + BT, kc1); // empty (k0 >= k1) past the end
#pragma unroll
    for (int n = 0; n < ND; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        dk[n][e] = 0.f, dv[n][e] = 0.f;
    qVec = rows_aligned<16>(p.f.q);
    doVec = rows_aligned<16>(p.dout);

    hh = COLS ? blockIdx.y % G : 0;
    start_head();
    int h, r0, r1, kind;
    if (next(h, r0, r1, kind)) { // CTA-uniform
      const u32 kd = sbase + OFF_K * 2, vd = sbase + OFF_V * 2;
      if constexpr (COLS) { // the gathered rows of this query head
        const VSlashView &vs = p.f.vs;
        B_::load_rows(kd, attn_common::vs_row<Cfg>(vs, vs.kc, b, h, k0), D, k1 - k0, true, tid);
        B_::load_rows(vd, attn_common::vs_row<Cfg>(vs, vs.vc, b, h, k0), D, k1 - k0, true, tid);
      } else {
        const u16 *kBase = attn_common::slice(p.f.k, b, hk) + static_cast<i64>(kc0) * p.f.k.ss;
        const u16 *vBase = attn_common::slice(p.f.v, b, hk) + static_cast<i64>(kc0) * p.f.v.ss;
#pragma unroll
        for (int w = 0; w < NWG; ++w) { // one K and one V tile per warpgroup
          const i64 o = static_cast<i64>(w) * BT;
          const int valid = kc1 - kc0 - w * BT;
          B_::template load_rows<CT>(kd + w * TILE * 2, kBase + o * p.f.k.ss, p.f.k.ss, valid,
                                     rows_aligned<16>(p.f.k), tid);
          B_::template load_rows<CT>(vd + w * TILE * 2, vBase + o * p.f.v.ss, p.f.v.ss, valid,
                                     rows_aligned<16>(p.f.v), tid);
        }
      }
      load_q(0, h, r0, r1);
      typename B_::StageRing ring;
      if constexpr (NWG > 1) { // K, V and stage 0 are this thread's first fill
        ring.template init<2 * CT, CT>(sbase + OFF_F * 2 + 4 * BT * 4, tid);
        if constexpr (DS2) // both warpgroups fill a dS buffer, its owner empties it
          dsr.template init<CT, NT>(sbase + OFF_F * 2 + 4 * BT * 4 + 32, tid);
        __syncthreads(); // the barriers are initialised
        ring.filled(0);
      } else {
        cp_async_commit();
      }
      int s = 0;
      bool first = true;
      for (;;) {
        int nh = 0, n0 = 0, n1 = 0, nkind = 0;
        const bool more = next(nh, n0, n1, nkind);
        B_::template next_stage<NWG>(ring, s, more, first, [&] { load_q(s ^ 1, nh, n0, n1); });
        compute(s, h, r0, r1, kind);
        if constexpr (NWG > 1)
          ring.release(s);
        if (!more)
          break;
        h = nh, r0 = n0, r1 = n1, kind = nkind, s ^= 1, first = false;
      }
    }

    // dK (scaled) and dV of this warp's 16 keys; keys no row sees get 0.
    // Columns: into dkc / dvc of the query head (attn_bwd_vs_scatter adds them).
    const int g = lane >> 2, t = lane & 3;
    const Tensor4 &tk = COLS ? p.dkc : p.dk, &tv = COLS ? p.dvc : p.dv;
    const int hOut = COLS ? static_cast<int>(blockIdx.y) : hk;
    const bool add = !COLS && p.accumulate;
    u16 *dkBase = attn_common::slice<u16>(tk, b, hOut);
    u16 *dvBase = attn_common::slice<u16>(tv, b, hOut);
    const bool kv = rows_aligned<4>(tk), vv = rows_aligned<4>(tv);
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      const int j = k0 + warp * 16 + g + hr * 8;
      if (j >= k1)
        continue;
#pragma unroll
      for (int n = 0; n < ND; ++n) {
        const int d = n * 8 + 2 * t;
        B_::store2(dkBase + static_cast<i64>(j) * tk.ss, d, dk[n][2 * hr] * Cfg::SCALE,
                   dk[n][2 * hr + 1] * Cfg::SCALE, kv, add);
        B_::store2(dvBase + static_cast<i64>(j) * tv.ss, d, dv[n][2 * hr], dv[n][2 * hr + 1], vv,
                   add);
      }
    }
    // Shared memory must outlive the last dQ reductions' reads (after the
    // epilogue, so the issuing warps store their dK / dV first).
    if constexpr (DS2)
      if (p.dq_tma && tid % NT == 0)
        bulk_wait_read<0>();
  }
};

// ------------------------------------------------- dQ, deterministic --

template <class Cfg, bool WG> struct Dq : Base<Cfg, WG> {
  using B_ = Base<Cfg, WG>;
  using B_::BT, B_::D, B_::G, B_::KD, B_::LDS, B_::ND, B_::NT, B_::T, B_::TILE, B_::kC;
  static constexpr int NN = BT / 8;  // n-tiles of S over the keys
  static constexpr int KN = BT / 16; // k-steps of dS K over the keys
  // Warpgroups per CTA (sm_90a): each owns 64 query rows — its Q / dO tiles
  // and dQ registers — and all read the same K / V stages.
  static constexpr int NWG =
      WG && !VSlashOf<Cfg>::value ? BwdRowWgsOf<Cfg>::value : 1;
  static constexpr int CT = NT * NWG; // threads of the CTA
  static constexpr int CR = BT * NWG; // query rows of the CTA
  static_assert(NWG == 1 || NWG == 2, "attn_bwd_dq: 1 or 2 row warpgroups per CTA");
  static_assert(!Cfg::HAS_BLOCKS || NWG == 1 || Cfg::SET_BQ % CR == 0,
                "attn_bwd_dq: a CTA's rows must lie in one query block of the set");
  // smem (elements): K[2], V[2], then Q[NWG] and dO[NWG] (mma.sync: read
  // once into registers; WG: the A operands of S and dP, from shared memory).
  static constexpr int OFF_Q = 4 * TILE, OFF_DO = OFF_Q + NWG * TILE;

  // Members read in place by the attn_common schedule functions.
  const AttnParams &p;
  const AttnBwdParams &bp;
  u32 sbase;
  int b, h, hk, Sq, Skv, row0, rowEnd, warp, lane, tid, wgi;
  int wr0, wr1;
  attn_common::KeySchedule sched;

  u32 qa[KD][4], oa[KD][4];
  float dq[ND][4];
  float lse2[2], delta[2];

  __device__ __forceinline__ Dq(const AttnBwdParams &p_, unsigned char *smem)
      : p(p_.f), bp(p_), sbase(smem_addr(smem)) {}

  /// K / V of key tile [j0, j1) into stage s; a vertical-slash column
  /// segment (sched.src) reads the gathered rows of this query head.
  __device__ __forceinline__ void load_kv(int s, int j0, int j1) const {
    if constexpr (VSlashOf<Cfg>::value) {
      if (sched.src) {
        B_::template load_rows<CT>(sbase + 2 * s * TILE * 2,
                                   attn_common::vs_row<Cfg>(p.vs, p.vs.kc, b, h, j0), D, j1 - j0,
                                   true, tid);
        B_::template load_rows<CT>(sbase + (2 * s + 1) * TILE * 2,
                                   attn_common::vs_row<Cfg>(p.vs, p.vs.vc, b, h, j0), D, j1 - j0,
                                   true, tid);
        return;
      }
    }
    const u16 *kBase = attn_common::slice(p.k, b, hk) + static_cast<i64>(j0) * p.k.ss;
    const u16 *vBase = attn_common::slice(p.v, b, hk) + static_cast<i64>(j0) * p.v.ss;
    B_::template load_rows<CT>(sbase + 2 * s * TILE * 2, kBase, p.k.ss, j1 - j0,
                               rows_aligned<16>(p.k), tid);
    B_::template load_rows<CT>(sbase + (2 * s + 1) * TILE * 2, vBase, p.v.ss, j1 - j0,
                               rows_aligned<16>(p.v), tid);
  }

  /// dS = P (dP - delta) in place of dP, element (row wr0 + g + 8 (e >> 1),
  /// key j0 + 8 n + 2 t + (e & 1)) at [n][e] (mma.sync m16n8 and wgmma m64
  /// fragments alike).
  __device__ __forceinline__ void probs(const float (&sc)[NN][4], float (&dp)[NN][4], int j0,
                                        int j1, int kind) const {
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int n = 0; n < NN; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int hr = e >> 1;
        float pr = ex2(fmaf(sc[n][e], kC, -lse2[hr]));
        if (kind == 2 &&
            !B_::allowed(wr0 + g + hr * 8, j0 + n * 8 + 2 * t + (e & 1), wr1, j1, Sq, Skv))
          pr = 0.f;
        dp[n][e] = pr * (dp[n][e] - delta[hr]);
      }
  }

  /// sm_90a: the warpgroup's 64 rows as one m64 tile (warps without rows
  /// take part with P = 0). S = Q K^T and dP = dO V^T from shared memory,
  /// then dQ += dS K with dS from registers and K read N-major.
  __device__ __forceinline__ void compute_wg(int s, int j0, int j1) {
    // The tile's kind for the warpgroup's rows (each of its warps issues
    // the wgmma).
    const int w0 = wr0, w1 = wr1;
    wr0 = row0 + wgi * BT, wr1 = min(wr0 + BT, rowEnd);
    const int kind = wr0 < wr1 ? attn_common::classify_tile<Cfg, BT>(*this, j0, j1) : 0;
    wr0 = w0, wr1 = w1;
    if (kind == 0)
      return;
    const u32 kb = sbase + 2 * s * TILE * 2, vb = kb + TILE * 2;
    const u32 qb = sbase + (OFF_Q + wgi * TILE) * 2, dob = sbase + (OFF_DO + wgi * TILE) * 2;
    float sc[NN][4], dp[NN][4];
    float(&scf)[NN * 4] = reinterpret_cast<float(&)[NN * 4]>(sc);
    float(&dpf)[NN * 4] = reinterpret_cast<float(&)[NN * 4]>(dp);
    float(&dqf)[ND * 4] = reinterpret_cast<float(&)[ND * 4]>(dq);
    B_::two_products(scf, dpf, qb, kb, dob, vb); // S, dP
    probs(sc, dp, j0, j1, kind);
    u32 sa[KN][4];
#pragma unroll
    for (int kk = 0; kk < KN; ++kk)
      B_::pack_a(sa[kk], dp, kk);
    fence_regs(dqf);
    fence_regs(sa);
    wg_fence();
    const u64 kn = make_desc(kb, BT * 128, 1024);
#pragma unroll
    for (int kk = 0; kk < KN; ++kk) // 16 keys = two 8-row swizzle atoms = 2048 B
      wgmma_rs<T, D>(dqf, sa[kk], kn + static_cast<u64>((kk * 2048) >> 4));
    wg_commit();
    wg_wait<0>();
    fence_regs(dqf);
  }

  __device__ __forceinline__ void compute(int s, int j0, int j1) {
    if constexpr (WG) {
      compute_wg(s, j0, j1);
      return;
    }
    if (wr0 >= wr1)
      return;
    const int kind = attn_common::classify_tile<Cfg, BT>(*this, j0, j1);
    if (kind == 0)
      return;
    const u32 kb = sbase + 2 * s * TILE * 2, vb = kb + TILE * 2;
    const u32 bOff = (((lane & 7) + (lane >> 4) * 8) * LDS + ((lane >> 3) & 1) * 8) * 2;
    const u32 tOff = (((lane & 7) + ((lane >> 3) & 1) * 8) * LDS + (lane >> 4) * 8) * 2;

    // S = Q K^T and dP = dO V^T: [16 rows] x [64 keys] per warp.
    float sc[NN][4], dp[NN][4];
#pragma unroll
    for (int n = 0; n < NN; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        sc[n][e] = 0.f, dp[n][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < KD; ++kk)
#pragma unroll
      for (int np = 0; np < NN / 2; ++np) {
        u32 bk[4], bv[4];
        ldsm_x4(bk, kb + bOff + (np * 16 * LDS + kk * 16) * 2);
        ldsm_x4(bv, vb + bOff + (np * 16 * LDS + kk * 16) * 2);
        mma16816<T>(sc[2 * np], qa[kk], bk[0], bk[1]);
        mma16816<T>(sc[2 * np + 1], qa[kk], bk[2], bk[3]);
        mma16816<T>(dp[2 * np], oa[kk], bv[0], bv[1]);
        mma16816<T>(dp[2 * np + 1], oa[kk], bv[2], bv[3]);
      }

    probs(sc, dp, j0, j1, kind);

    // dQ += dS K (k = keys; K read transposed).
#pragma unroll
    for (int kk = 0; kk < KN; ++kk) {
      u32 sa[4];
      B_::pack_a(sa, dp, kk);
#pragma unroll
      for (int dn = 0; dn < D / 16; ++dn) {
        u32 bk[4];
        ldsm_x4_t(bk, kb + tOff + (kk * 16 * LDS + dn * 16) * 2);
        mma16816<T>(dq[2 * dn], sa, bk[0], bk[1]);
        mma16816<T>(dq[2 * dn + 1], sa, bk[2], bk[3]);
      }
    }
  }

  __device__ __forceinline__ void run() {
    b = blockIdx.z, h = blockIdx.y, hk = h / G;
    Sq = p.q.S, Skv = p.k.S;
    // warp: of the CTA (warpgroup wgi's rows are its 16-row slices too).
    tid = threadIdx.x, wgi = tid / NT, warp = tid / 32, lane = tid % 32;
    const int tIdx = blockIdx.x;
    attn_common::cta_rows<Cfg, CR>(tIdx, Sq, row0, rowEnd);
    if (row0 >= rowEnd)
      return;
    wr0 = row0 + warp * 16;
    wr1 = min(wr0 + 16, rowEnd);
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int n = 0; n < ND; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        dq[n][e] = 0.f;
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      const int i = wr0 + g + hr * 8;
      const i64 row = (static_cast<i64>(b) * Cfg::HEADS + h) * Sq + i;
      lse2[hr] = i < wr1 ? lse2_of(p.lse[row]) : __int_as_float(0x7f800000);
      delta[hr] = i < wr1 ? bp.delta[row] : 0.f;
    }

    attn_common::schedule_init<Cfg, CR>(*this, tIdx);
    int j0 = 0, j1 = 0;
    if (attn_common::next_tile<Cfg, BT>(*this, j0, j1)) {
#pragma unroll
      for (int w = 0; w < NWG; ++w) { // one Q and one dO tile per warpgroup
        const int r = row0 + w * BT;
        B_::template load_rows<CT>(sbase + (OFF_Q + w * TILE) * 2,
                                   attn_common::slice(p.q, b, h) + static_cast<i64>(r) * p.q.ss,
                                   p.q.ss, rowEnd - r, rows_aligned<16>(p.q), tid);
        B_::template load_rows<CT>(
            sbase + (OFF_DO + w * TILE) * 2,
            attn_common::slice(bp.dout, b, h) + static_cast<i64>(r) * bp.dout.ss, bp.dout.ss,
            rowEnd - r, rows_aligned<16>(bp.dout), tid);
      }
      load_kv(0, j0, j1);
      typename B_::StageRing ring;
      if constexpr (NWG > 1) { // Q, dO and stage 0 are this thread's first fill
        ring.template init<2 * CT, CT>(sbase + (OFF_DO + NWG * TILE) * 2, tid);
        __syncthreads(); // the barriers are initialised
        ring.filled(0);
      } else {
        cp_async_commit();
      }
      if constexpr (!WG) {
        cp_async_wait_all();
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < KD; ++kk) {
          const u32 a = ((warp * 16 + (lane & 15)) * LDS + (lane >> 4) * 8 + kk * 16) * 2;
          ldsm_x4(qa[kk], sbase + OFF_Q * 2 + a);
          ldsm_x4(oa[kk], sbase + OFF_DO * 2 + a);
        }
      }
      int s = 0;
      bool first = true;
      for (;;) {
        int n0 = 0, n1 = 0;
        const bool more = attn_common::next_tile<Cfg, BT>(*this, n0, n1);
        B_::template next_stage<NWG>(ring, s, more, first, [&] { load_kv(s ^ 1, n0, n1); });
        compute(s, j0, j1);
        if constexpr (NWG > 1)
          ring.release(s);
        if (!more)
          break;
        j0 = n0, j1 = n1, s ^= 1, first = false;
      }
    }
    if (wr0 >= wr1)
      return;
    u16 *dqBase = attn_common::slice<u16>(bp.dq, b, h);
    const bool vec = rows_aligned<4>(bp.dq);
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      const int i = wr0 + g + hr * 8;
      if (i >= wr1)
        continue;
#pragma unroll
      for (int n = 0; n < ND; ++n)
        B_::store2(dqBase + static_cast<i64>(i) * bp.dq.ss, n * 8 + 2 * t,
                   dq[n][2 * hr] * Cfg::SCALE, dq[n][2 * hr + 1] * Cfg::SCALE, vec,
                   bp.accumulate);
    }
  }
};

/// sum_d dO[b, h, i, d] O[b, h, i, d] by one warp (every lane gets it).
template <class Cfg>
__device__ __forceinline__ float row_dot(const Tensor4 &dout, const Tensor4 &o, int b, int h, int i,
                                         int lane) {
  float s = 0.f;
  for (int d = lane; d < Cfg::HEAD_DIM; d += 32)
    s += load_elem<Cfg::DTYPE>(dout.ptr, offset(dout, b, h, i, d)) *
         load_elem<Cfg::DTYPE>(o.ptr, offset(o, b, h, i, d));
  return warp_sum(s);
}

} // namespace attn_bwd_detail

/// delta[b, h, i] = sum_d dO[i, d] O[i, d]. Grid (cdiv(Sq, kAttnBwdDeltaRows),
/// Hq, B), blockDim 32 * kAttnBwdDeltaRows.
template <class Cfg> __device__ void attn_bwd_delta(const AttnBwdParams &p) {
  const int b = blockIdx.z, h = blockIdx.y, lane = threadIdx.x % 32;
  const int i = blockIdx.x * kAttnBwdDeltaRows + threadIdx.x / 32;
  const int Sq = p.f.q.S;
  if (i >= Sq)
    return;
  const float s = attn_bwd_detail::row_dot<Cfg>(p.dout, p.f.o, b, h, i, lane);
  if (lane == 0)
    p.delta[(static_cast<i64>(b) * Cfg::HEADS + h) * Sq + i] = s;
}

/// Query sets: per row, whether it is active (binary search of its
/// head's active list), delta from the row's own O (o_lazy for a lazy row
/// when given), and the LSE of each pass: lse_active = the row's LSE on an
/// active row, -inf on a lazy one (P = 0 there), lse_lazy the other way
/// round. Grid and block as attn_bwd_delta.
template <class Cfg> __device__ void attn_bwd_split_rows(const AttnBwdParams &p) {
  const int b = blockIdx.z, h = blockIdx.y, lane = threadIdx.x % 32;
  const int i = blockIdx.x * kAttnBwdDeltaRows + threadIdx.x / 32;
  const int Sq = p.f.q.S;
  if (i >= Sq)
    return;
  const i64 head = static_cast<i64>(b) * Cfg::HEADS + h, row = head * Sq + i;
  const int cnt = p.q_counts[head];
  const int *rows = p.q_rows + head * Sq;
  const int x = attn_common::lower_bound_int(rows, cnt, i);
  const bool active = x < cnt && rows[x] == i;
  const bool fromLazy = !active && p.o_lazy.ptr != nullptr;
  const Tensor4 &o = fromLazy ? p.o_lazy : p.f.o;
  const float s = attn_bwd_detail::row_dot<Cfg>(p.dout, o, b, h, i, lane);
  if (lane == 0) {
    const float lse = fromLazy ? p.lse_lazy_src[row] : p.f.lse[row];
    p.delta[row] = s;
    p.lse_active[row] = active ? lse : neg_inf();
    p.lse_lazy[row] = active ? neg_inf() : lse;
  }
}

/// Per (b, set head, KV block J): the query blocks I whose (ascending)
/// lists hold J, ascending: t_fill 0 counts them into t_counts, t_fill 1
/// writes them at the offsets attn_bwd_transpose_scan made of the counts.
/// Grid (cdiv(nKB, kAttnBwdTransposeThreads), SET_HEADS, B), blockDim
/// kAttnBwdTransposeThreads.
template <class Cfg> __device__ void attn_bwd_transpose(const AttnBwdParams &p) {
  if constexpr (Cfg::HAS_BLOCKS) {
    const BlockSetView &bs = p.f.blocks;
    const int J = blockIdx.x * kAttnBwdTransposeThreads + threadIdx.x;
    if (J >= bs.nKB)
      return;
    const i64 head = static_cast<i64>(blockIdx.z) * Cfg::SET_HEADS + blockIdx.y;
    int *out = p.t_fill ? p.t_rows + head * bs.nQB * bs.cap + p.t_offsets[head * bs.nKB + J]
                        : nullptr;
    int n = 0;
    for (int I = 0; I < bs.nQB; ++I) {
      const i64 row = head * bs.nQB + I;
      const int *list = bs.indices + row * bs.cap;
      const int cnt = bs.counts[row];
      const int x = attn_common::lower_bound_int(list, cnt, J);
      if (x < cnt && list[x] == J) {
        if (out)
          out[n] = I;
        ++n;
      }
    }
    if (!p.t_fill)
      p.t_counts[head * bs.nKB + J] = n;
  }
}

/// t_offsets of each (b, set head): the exclusive prefix sum of its
/// t_counts over J (at most nQB * cap, the head's share of t_rows). Grid
/// (SET_HEADS, B), blockDim kAttnBwdTransposeThreads.
template <class Cfg> __device__ void attn_bwd_transpose_scan(const AttnBwdParams &p) {
  __shared__ int red[kAttnBwdTransposeThreads / 32];
  const int n = p.f.blocks.nKB;
  const i64 head = static_cast<i64>(blockIdx.y) * Cfg::SET_HEADS + blockIdx.x;
  const int *cnt = p.t_counts + head * n;
  int *off = p.t_offsets + head * n;
  const int per = (n + kAttnBwdTransposeThreads - 1) / kAttnBwdTransposeThreads;
  const int lo = min(n, static_cast<int>(threadIdx.x) * per), hi = min(n, lo + per);
  int sum = 0;
  for (int J = lo; J < hi; ++J)
    sum += cnt[J];
  int total;
  int at = block_exclusive_scan(sum, red, total);
  for (int J = lo; J < hi; ++J) {
    off[J] = at;
    at += cnt[J];
  }
}

/// dK, dV (and, with Cfg::ATOMIC_DQ, the fast mode's atomic dQ). Grid (nKT,
/// KV_HEADS, B) with nKT = cdiv(Skv, kAttnBwdTile), or with a block set
/// nKB * cdiv(SET_BK, kAttnBwdTile); blockDim kAttnBwdThreads; dynamic smem
/// attn_bwd_dkdv_smem_bytes(HEAD_DIM).
template <class Cfg> __device__ void attn_bwd_dkdv(const AttnBwdParams &p) {
  static_assert(attn_common::TensorCoreCfgCheck<Cfg, false>::ok, "attn_bwd_dkdv: invalid Cfg");
  extern __shared__ __align__(16) unsigned char sattn_bwd_smem[];
  attn_bwd_detail::DkDv<Cfg, false>(p, sattn_bwd_smem).run();
}

/// attn_bwd_dkdv on wgmma (sm_90a; both modes). Grid as attn_bwd_dkdv with
/// 64 * W keys per CTA, blockDim kAttnBwdThreads * W (W = BwdKeyWgsOf<Cfg>,
/// 1 in the atomic mode); dynamic smem
/// attn_bwd_dkdv_wg_smem_bytes(HEAD_DIM, ATOMIC_DQ, W).
template <class Cfg> __device__ void attn_bwd_dkdv_wg(const AttnBwdParams &p) {
  static_assert(attn_common::TensorCoreCfgCheck<Cfg, false, true>::ok, "attn_bwd_dkdv_wg: invalid Cfg");
  using K = attn_bwd_detail::DkDv<Cfg, true>;
  static_assert(!K::DS2 || attn_bwd_dq_stage_smem_bytes(Cfg::HEAD_DIM, K::NWG) ==
                               K::STG_AT + K::NWG * K::STG_BYTES + 1024,
                "attn_bwd_dkdv_wg: the staged launch size must match the layout");
  static_assert(!K::DS2 || attn_bwd_dq_stage_smem_bytes(Cfg::HEAD_DIM, K::NWG) <= 227 * 1024,
                "attn_bwd_dkdv_wg: the dQ staging tiles do not fit in shared memory");
  extern __shared__ __align__(16) unsigned char sattn_bwd_smem[];
  attn_bwd_detail::DkDv<Cfg, true>(p, attn_bwd_detail::align1024(sattn_bwd_smem)).run();
}

/// Vertical-slash sets: dK, dV of the gathered columns into p.dkc / p.dvc
/// (and the fast mode's atomic dQ of the column pairs). Grid (cdiv(nv,
/// kAttnBwdTile), Hq, B); block and smem as attn_bwd_dkdv.
template <class Cfg> __device__ void attn_bwd_dkdv_cols(const AttnBwdParams &p) {
  static_assert(attn_common::TensorCoreCfgCheck<Cfg, false>::ok, "attn_bwd_dkdv_cols: invalid Cfg");
  extern __shared__ __align__(16) unsigned char sattn_bwd_smem[];
  attn_bwd_detail::DkDv<Cfg, false, true>(p, sattn_bwd_smem).run();
}

/// attn_bwd_dkdv_cols on wgmma (sm_90a, both modes); smem as
/// attn_bwd_dkdv_wg.
template <class Cfg> __device__ void attn_bwd_dkdv_cols_wg(const AttnBwdParams &p) {
  static_assert(attn_common::TensorCoreCfgCheck<Cfg, false, true>::ok,
                "attn_bwd_dkdv_cols_wg: invalid Cfg");
  extern __shared__ __align__(16) unsigned char sattn_bwd_smem[];
  attn_bwd_detail::DkDv<Cfg, true, true>(p, attn_bwd_detail::align1024(sattn_bwd_smem)).run();
}

/// dk / dv at the keys of query head vs_head's columns (of each GQA group)
/// += its dkc / dvc rows. A head's columns are distinct keys, so no two
/// threads of a launch meet; the heads of a group are separate launches.
/// Grid (cdiv(nv * HEAD_DIM / 2, 256), KV_HEADS, B), blockDim 256.
template <class Cfg> __device__ void attn_bwd_vs_scatter(const AttnBwdParams &p) {
  constexpr int D = Cfg::HEAD_DIM;
  constexpr DType DT = Cfg::DTYPE;
  const int b = blockIdx.z, hk = blockIdx.y, nv = p.f.vs.nv;
  const int h = hk * (Cfg::HEADS / Cfg::KV_HEADS) + p.vs_head;
  const i64 x = (static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x) * 2;
  if (x >= static_cast<i64>(nv) * D)
    return;
  const int c = static_cast<int>(x / D), d = static_cast<int>(x % D);
  const int j = p.f.vs.cols[(static_cast<i64>(b) * Cfg::HEADS + h) * nv + c];
  const i64 ok = offset(p.dk, b, hk, j, d), ov = offset(p.dv, b, hk, j, d);
  const i64 ck = offset(p.dkc, b, h, c, d), cv = offset(p.dvc, b, h, c, d);
#pragma unroll
  for (int e = 0; e < 2; ++e) {
    store_elem<DT>(p.dk.ptr, ok + e,
                   load_elem<DT>(p.dk.ptr, ok + e) + load_elem<DT>(p.dkc.ptr, ck + e));
    store_elem<DT>(p.dv.ptr, ov + e,
                   load_elem<DT>(p.dv.ptr, ov + e) + load_elem<DT>(p.dvc.ptr, cv + e));
  }
}

/// Deterministic dQ. Grid (nTiles, Hq, B) as attn_fwd_mma with TILE_M 64;
/// blockDim kAttnBwdThreads; dynamic smem attn_bwd_dq_smem_bytes(HEAD_DIM).
template <class Cfg> __device__ void attn_bwd_dq(const AttnBwdParams &p) {
  static_assert(attn_common::TensorCoreCfgCheck<Cfg, false>::ok, "attn_bwd_dq: invalid Cfg");
  extern __shared__ __align__(16) unsigned char sattn_bwd_smem[];
  attn_bwd_detail::Dq<Cfg, false>(p, sattn_bwd_smem).run();
}

/// attn_bwd_dq on wgmma (sm_90a). Grid as attn_bwd_dq with 64 * W rows
/// per CTA, blockDim kAttnBwdThreads * W (W = BwdRowWgsOf<Cfg>); dynamic
/// smem attn_bwd_dq_wg_smem_bytes(HEAD_DIM, W).
template <class Cfg> __device__ void attn_bwd_dq_wg(const AttnBwdParams &p) {
  static_assert(attn_common::TensorCoreCfgCheck<Cfg, false, true>::ok, "attn_bwd_dq_wg: invalid Cfg");
  extern __shared__ __align__(16) unsigned char sattn_bwd_smem[];
  attn_bwd_detail::Dq<Cfg, true>(p, attn_bwd_detail::align1024(sattn_bwd_smem)).run();
}

/// Fast mode: dq = dq_accum * SCALE in the dtype. Grid (cdiv(Sq * D / 2,
/// 256), Hq, B), blockDim 256.
template <class Cfg> __device__ void attn_bwd_dq_convert(const AttnBwdParams &p) {
  constexpr int D = Cfg::HEAD_DIM;
  const int b = blockIdx.z, h = blockIdx.y, Sq = p.f.q.S;
  const i64 x = (static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x) * 2;
  if (x >= static_cast<i64>(Sq) * D)
    return;
  const int i = static_cast<int>(x / D), d = static_cast<int>(x % D);
  const float *acc = p.dq_accum + ((static_cast<i64>(b) * Cfg::HEADS + h) * Sq + i) * D + d;
  const i64 o = offset(p.dq, b, h, i, d);
  store_elem<Cfg::DTYPE>(p.dq.ptr, o, acc[0] * Cfg::SCALE);
  store_elem<Cfg::DTYPE>(p.dq.ptr, o + 1, acc[1] * Cfg::SCALE);
}

} // namespace dev
} // namespace sattn

#endif // __CUDACC__

#endif // SATTN_DEVICE_ATTENTION_BWD_CUH
