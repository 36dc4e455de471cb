//===- attention_common.cuh - parts shared by the attention kernels (§2) --===//
//
// What attn_fwd (attention.cuh), attn_fwd_mma (attention_mma.cuh) and
// attn_fwd_wgmma (attention_wgmma.cuh) have in common, so the three cannot
// drift apart:
//   - the Cfg contract checks (CfgCheck, TensorCoreCfgCheck);
//   - the CTA's query rows: TILE consecutive rows of one (batch, head), all
//     in one block-set row (cta_rows, block_set_row);
//   - the key ranges a CTA visits: the causal / window bounds and the
//     separate sinks range of its rows (mask_ranges), the runs of
//     consecutive listed blocks of a block set (block_run);
//   - for the tensor-core kernels, the tile schedule built from those
//     (KeySchedule: pattern-based tile skipping included), the per-warp(group)
//     tile classification skip / full / partial (classify_tile), the Q/K/V
//     views (bind_qkv) and the O / LSE epilogue of one fragment row
//     (store_row).
// Ranges and tiles only need to be supersets of the allowed keys: inside a
// tile the kernels mask every (row, key) exactly (§2).
//
// Everything is __forceinline__ and templated on Cfg, and written so that
// each kernel compiles to the same SASS as with the logic in place (checked
// instruction for instruction when this header was split out; see the note
// at the tile schedule on how values are passed).
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_DEVICE_ATTENTION_COMMON_CUH
#define SATTN_DEVICE_ATTENTION_COMMON_CUH

#include "masks.cuh"
#include "params.cuh"
#include "ptx.cuh"
#include "types.cuh"

namespace sattn {
namespace dev {
namespace attn_common {

// ------------------------------------------------------------ Cfg checks --

/// Checks of the Cfg constants every attention kernel reads. A struct, not a
/// constexpr function: nvcc treats constexpr functions as host-only, while
/// static_asserts in a class template fire wherever it is instantiated
/// (`static_assert(CfgCheck<Cfg>::ok, ...)`).
template <class Cfg> struct CfgCheck {
  static_assert(Cfg::DTYPE == DType::bf16 || Cfg::DTYPE == DType::fp16,
                "sattn attention: DTYPE must be bf16 or fp16");
  static_assert(Cfg::KV_HEADS > 0 && Cfg::HEADS % Cfg::KV_HEADS == 0,
                "sattn attention: HEADS must be a multiple of KV_HEADS");
  static_assert(Cfg::WINDOW >= 0 && Cfg::SINKS >= 0,
                "sattn attention: WINDOW and SINKS must be >= 0");
  static_assert(!Cfg::HAS_BLOCKS || (Cfg::SET_BQ > 0 && Cfg::SET_BK > 0),
                "sattn attention: a block set needs positive SET_BQ and SET_BK");
  static_assert(!Cfg::HAS_BLOCKS || Cfg::SET_HEADS == Cfg::HEADS || Cfg::SET_HEADS == Cfg::KV_HEADS,
                "sattn attention: a block set is per head (SET_HEADS = HEADS) or per group "
                "(= KV_HEADS)");
  static_assert(!(Cfg::HAS_BLOCKS && Cfg::HAS_PATTERN),
                "sattn attention: a block pattern cannot be combined with a block set");
  static_assert(!Cfg::HAS_PATTERN ||
                    (Cfg::P_BQ > 0 && Cfg::P_BK > 0 && Cfg::P_WINDOW >= 0 && Cfg::P_SINKS >= 0),
                "sattn attention: a block pattern needs P_BQ, P_BK > 0 and P_WINDOW, P_SINKS >= 0");
  static constexpr bool ok = true;
};

/// CfgCheck plus what the tensor-core kernels (attn_fwd_mma, attn_fwd_wgmma,
/// the backward) leave to attn_fwd; QUERY_SETS: whether the kernel takes
/// query sets. Head dims 64 and 128, and 96 on mma.sync (WGMMA false: the
/// backward and its recomputed forward; the wgmma tiles are 128-byte swizzle
/// panels of 64 columns).
template <class Cfg, bool QUERY_SETS, bool WGMMA = false> struct TensorCoreCfgCheck : CfgCheck<Cfg> {
  static_assert(Cfg::HEAD_DIM == 64 || Cfg::HEAD_DIM == 128 || (!WGMMA && Cfg::HEAD_DIM == 96),
                "tensor-core attention: HEAD_DIM must be 64 or 128 (96 on mma.sync; use attn_fwd "
                "for other head dims)");
  static_assert(QUERY_SETS || !Cfg::HAS_QUERIES,
                "attn_fwd_mma: query sets are not supported (use attn_fwd or attn_fwd_wgmma)");
};

// ------------------------------------------------------------ query rows --

/// Rows [row0, rowEnd) of CTA tile tIdx for TILE rows per CTA: with a block
/// set, cdiv(SET_BQ, TILE) tiles per block-set row (the last one may be short
/// or empty: row0 >= rowEnd), else plain tiles of TILE rows.
template <class Cfg, int TILE>
__device__ __forceinline__ void cta_rows(int tIdx, int Sq, int &row0, int &rowEnd) {
  if constexpr (Cfg::HAS_BLOCKS) {
    constexpr int kTilesPerBlock = (Cfg::SET_BQ + TILE - 1) / TILE;
    int I = tIdx / kTilesPerBlock;
    row0 = I * Cfg::SET_BQ + TILE * (tIdx % kTilesPerBlock);
    rowEnd = min(min(row0 + TILE, (I + 1) * Cfg::SET_BQ), Sq);
  } else {
    row0 = tIdx * TILE;
    rowEnd = min(row0 + TILE, Sq);
  }
}

/// Index of the block-set row [b, set head, I] of CTA tile tIdx (with a
/// block set). Idx is the caller's type of tIdx: the division stays signed
/// or unsigned as written there.
template <class Cfg, int TILE, class Idx>
__device__ __forceinline__ i64 block_set_row(const AttnParams &p, int b, int h, Idx tIdx) {
  constexpr int kTilesPerBlock = (Cfg::SET_BQ + TILE - 1) / TILE;
  constexpr int G = Cfg::HEADS / Cfg::KV_HEADS;
  int hb = Cfg::SET_HEADS == Cfg::HEADS ? h : h / G;
  return (static_cast<i64>(b) * Cfg::SET_HEADS + hb) * p.blocks.nQB + tIdx / kTilesPerBlock;
}

// ------------------------------------------------------------ key ranges --

/// Half-open key range [lo, hi); empty when lo >= hi.
struct Range {
  int lo, hi;
};

/// Two disjoint key ranges that together hold every key that the mask
/// "j <= i' (causal), j > i' - window (windowed), or j < sinks" can allow to
/// a row with i' in [ipLo, ipHi]. r[1] is the causal/window span; r[0] the
/// part of the sinks below it, so no key is visited twice.
__device__ __forceinline__ void mask_ranges(bool causal, bool windowed, int window, int sinks,
                                            int ipLo, int ipHi, int Skv, Range (&r)[2]) {
  int hi = causal ? min(Skv, ipHi + 1) : Skv;
  int lo = windowed ? max(0, ipLo - window + 1) : 0;
  r[1] = Range{lo, hi};
  r[0] = Range{0, windowed ? min(min(sinks, lo), hi) : 0};
}

/// The run of consecutive listed blocks starting at list[x] (x < cnt), as
/// one contiguous key range of BK-key blocks; advances x past it.
template <int BK>
__device__ __forceinline__ Range block_run(const int *list, int &x, int cnt, int Skv) {
  int J = list[x], last = J;
  while (++x < cnt && list[x] == last + 1)
    ++last;
  return Range{J * BK, min((last + 1) * BK, Skv)};
}

// ------------------------------------------- tensor-core tile schedule --
//
// These work on the CTA state object `c` of attn_fwd_mma / attn_fwd_wgmma
// (their Fwd), through its members p, b, h, Sq, Skv, row0, rowEnd (the
// CTA's rows), wr0, wr1 (the calling warp's or warpgroup's rows) and sched.
// They read those in place, as the member functions they replace did: LLVM
// canonicalises expressions over function arguments differently from
// expressions over loads, so passing the values would change the code.

constexpr int kPatPairs = 32; // pattern checks beyond this many block pairs: "maybe"

/// Key schedule state (CTA-uniform): runs of listed blocks (block set; else
/// all keys) x the two mask ranges, cut into tiles of BN keys by next_tile.
/// With a vertical-slash set (§12b) the segments are instead, from the
/// farthest band down to the diagonal one: the kept columns below a band
/// (src = 1: indices into the gathered rows kc / vc), then the band's keys
/// (src = 0); vx counts the bands still to visit, pc the next column, e the
/// CTA's query block's last position + 1.
struct KeySchedule {
  Range mr0, mr1; // separate members: no run-time index into the object
  const int *list;
  int cnt, x, runA, runE, q, jn, jhi;
  const int *ivl, *cols;
  int nv, vx, pc, e, phase, src;
};

/// Index of the first of ascending a[0, n) that is >= x (n if none).
__device__ __forceinline__ int lower_bound_int(const int *a, int n, int x, int stride = 1) {
  int lo = 0;
  while (n > 0) {
    const int half = n >> 1;
    if (a[(lo + half) * stride] < x)
      lo += half + 1, n -= half + 1;
    else
      n = half;
  }
  return lo;
}

/// Pattern blocks met by rows [r0, r1) x keys [j0, j1): whether any / all
/// pairs are admitted. Too many pairs: any = true, all = false.
template <class Cfg, class Cta>
__device__ __forceinline__ void pattern_pairs(const Cta &c, int r0, int r1, int j0, int j1,
                                              bool &any, bool &all) {
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
                               Cfg::P_BK, c.Sq, c.Skv);
        any |= a;
        all &= a;
      }
  }
}

/// Starts c.sched for CTA tile tIdx of TILE rows (c.row0, c.rowEnd set).
template <class Cfg, int TILE, class Cta>
__device__ __forceinline__ void schedule_init(Cta &c, int tIdx) {
  KeySchedule &s = c.sched;
  int ipLo = c.row0 + c.Skv - c.Sq, ipHi = c.rowEnd - 1 + c.Skv - c.Sq;
  Range mr[2];
  mask_ranges(Cfg::CAUSAL, Cfg::WINDOW > 0, Cfg::WINDOW, Cfg::SINKS, ipLo, ipHi, c.Skv, mr);
  s.mr0 = mr[0], s.mr1 = mr[1];
  s.jn = 0, s.jhi = 0;
  s.src = 0;
  if constexpr (VSlashOf<Cfg>::value) {
    constexpr int BQ = VSlashOf<Cfg>::bq;
    const i64 bh = static_cast<i64>(c.b) * Cfg::HEADS + c.h;
    const VSlashView &vs = c.p.vs;
    const int I = c.row0 / BQ;
    s.e = min((I + 1) * BQ, c.Sq) + c.Skv - c.Sq; // dk(I) + 1
    s.ivl = vs.ivl + bh * vs.ivCap * 2;
    s.cols = vs.cols + bh * vs.nv;
    s.nv = vs.nv;
    s.vx = lower_bound_int(s.ivl, vs.ivl_count[bh], s.e, 2); // bands with lo < e reach the block
    s.pc = 0, s.phase = 0;
    s.list = nullptr, s.cnt = 0, s.x = 0, s.q = 2, s.runA = 0, s.runE = 0;
    return;
  }
  if constexpr (Cfg::HAS_BLOCKS) {
    i64 rowId = block_set_row<Cfg, TILE>(c.p, c.b, c.h, tIdx);
    s.cnt = c.p.blocks.counts[rowId];
    s.list = c.p.blocks.indices + rowId * c.p.blocks.cap;
    s.x = 0, s.q = 2, s.runA = 0, s.runE = 0; // q = 2: start by reading the first run
  } else {
    s.list = nullptr, s.cnt = 0, s.x = 0;
    s.q = 0, s.runA = 0, s.runE = c.Skv;
  }
}

/// Next non-empty [lo, hi) of (run x mask range) into c.sched; false when done.
template <class Cfg, class Cta> __device__ __forceinline__ bool next_segment(Cta &c) {
  KeySchedule &s = c.sched;
  if constexpr (VSlashOf<Cfg>::value) {
    // §12b: band x covers distances [lo, hi), keys [e - hi, e - lo). The
    // kept columns between the previous band and it come first; those
    // inside it are skipped (they are band keys already).
    for (;;) {
      if (s.vx <= 0)
        return false;
      const int x = s.vx - 1;
      const int a = max(0, s.e - s.ivl[2 * x + 1]), z = s.e - s.ivl[2 * x];
      if (s.phase == 0) {
        s.phase = 1;
        const int pe = s.pc + lower_bound_int(s.cols + s.pc, s.nv - s.pc, a);
        if (pe > s.pc) {
          s.jn = s.pc, s.jhi = pe, s.src = 1, s.pc = pe;
          return true;
        }
        continue;
      }
      s.phase = 0, s.vx = x;
      s.pc += lower_bound_int(s.cols + s.pc, s.nv - s.pc, z);
      s.jn = a, s.jhi = z, s.src = 0;
      return true;
    }
  } else {
    for (;;) {
      if (s.q < 2) {
        Range r = s.q == 0 ? s.mr0 : s.mr1;
        int lo = max(s.runA, r.lo), hi = min(s.runE, r.hi);
        ++s.q;
        if (lo < hi) {
          s.jn = lo, s.jhi = hi;
          return true;
        }
        continue;
      }
      if constexpr (!Cfg::HAS_BLOCKS) {
        return false;
      } else {
        if (s.x >= s.cnt)
          return false;
        Range run = block_run<Cfg::SET_BK>(s.list, s.x, s.cnt, c.Skv);
        s.runA = run.lo;
        s.runE = run.hi;
        s.q = 0;
      }
    }
  }
}

/// Next key tile [j0, j1) of the CTA (j1 - j0 <= BN), skipping tiles the
/// pattern admits to none of its rows; false when done.
template <class Cfg, int BN, class Cta>
__device__ __forceinline__ bool next_tile(Cta &c, int &j0, int &j1) {
  KeySchedule &s = c.sched;
  for (;;) {
    while (s.jn < s.jhi) {
      j0 = s.jn;
      j1 = min(s.jn + BN, s.jhi);
      s.jn = j1;
      bool any, all;
      pattern_pairs<Cfg>(c, c.row0, c.rowEnd, j0, j1, any, all);
      if (any)
        return true;
    }
    if (!next_segment<Cfg>(c))
      return false;
  }
}

/// Kind of key tile [j0, j1) (at most BN keys) for rows [c.wr0, c.wr1) of
/// one warp or warpgroup under the mask (CAUSAL, WINDOW, SINKS) and, with
/// PATTERN, Cfg's block pattern: 0 no (row, key) allowed (skip), 1 all
/// allowed (no per-element work), 2 mixed (exact per-element mask).
template <class Cfg, int BN, bool CAUSAL, int WINDOW, int SINKS, bool PATTERN, class Cta>
__device__ __forceinline__ int classify_tile_as(const Cta &c, int j0, int j1) {
  int ipA = c.wr0 + c.Skv - c.Sq, ipB = c.wr1 - 1 + c.Skv - c.Sq;
  bool any = true, all = true;
  if constexpr (PATTERN)
    pattern_pairs<Cfg>(c, c.wr0, c.wr1, j0, j1, any, all);
  if (!any)
    return 0;
  if (CAUSAL && j0 > ipB)
    return 0;
  if (WINDOW > 0 && j1 - 1 <= ipA - WINDOW && j0 >= SINKS)
    return 0;
  bool full = all && j1 - j0 == BN;
  if (CAUSAL)
    full = full && j0 + BN - 1 <= ipA;
  if (WINDOW > 0)
    full = full && (j0 > ipB - WINDOW || j0 + BN - 1 < SINKS);
  return full ? 1 : 2;
}

/// classify_tile_as under the op's own mask and pattern (Cfg).
template <class Cfg, int BN, class Cta>
__device__ __forceinline__ int classify_tile(const Cta &c, int j0, int j1) {
  return classify_tile_as<Cfg, BN, Cfg::CAUSAL, Cfg::WINDOW, Cfg::SINKS, Cfg::HAS_PATTERN>(c, j0,
                                                                                           j1);
}

// ---------------------------------------------- tensor-core Q/K/V/O views --

using dev::rows_aligned; // types.cuh

/// The (b, h) slice of a 16-bit tensor (U: const ptx::u16 to read, ptx::u16
/// to write).
template <class U = const ptx::u16>
__device__ __forceinline__ U *slice(const Tensor4 &t, int b, int h) {
  return static_cast<U *>(t.ptr) + offset(t, b, h, 0, 0);
}

/// Row j of the gathered K or V rows (`base`: vs.kc or vs.vc, contiguous
/// [B, Hq, nv, D]) of query head (b, h) of a vertical-slash set.
template <class Cfg>
__device__ __forceinline__ const ptx::u16 *vs_row(const VSlashView &vs, const void *base, int b,
                                                  int h, int j) {
  return static_cast<const ptx::u16 *>(base) +
         ((static_cast<i64>(b) * Cfg::HEADS + h) * vs.nv + j) * Cfg::HEAD_DIM;
}

/// Sets c.qBase, c.kBase, c.vBase (the (b, h) / (b, hk) slices) and
/// c.qVec, c.kVec, c.vVec (16-byte aligned rows: cp.async, else element
/// loads) of a tensor-core CTA.
template <class Cta> __device__ __forceinline__ void bind_qkv(Cta &c) {
  c.qBase = slice(c.p.q, c.b, c.h);
  c.kBase = slice(c.p.k, c.b, c.hk);
  c.vBase = slice(c.p.v, c.b, c.hk);
  c.qVec = rows_aligned<16>(c.p.q);
  c.kVec = rows_aligned<16>(c.p.k);
  c.vVec = rows_aligned<16>(c.p.v);
}

/// Writes row i of O normalised by the row sum l (quad-reduced; 0 for a row
/// with no allowed key), and its LSE from the running max m (log2 domain).
/// The thread holds columns 8 dn + 2t + e of the row as acc(dn, e), e = 0,
/// 1 (the m16n8 accumulator layout); oBase: the (b, h) slice of O, oVec:
/// pairs of columns are 4-byte aligned.
template <class Cfg, class Cta, class Acc>
__device__ __forceinline__ void store_row(const Cta &c, ptx::u16 *oBase, bool oVec, int i, int t,
                                          float m, float l, const Acc &acc) {
  bool empty = !(l > 0.f); // no allowed key (l >= 1 otherwise)
  float inv = empty ? 0.f : 1.f / l;
  ptx::u16 *orow = oBase + static_cast<i64>(i) * c.p.o.ss;
#pragma unroll
  for (int dn = 0; dn < Cfg::HEAD_DIM / 8; ++dn) {
    int d = dn * 8 + 2 * t;
    float v0 = acc(dn, 0) * inv, v1 = acc(dn, 1) * inv;
    if (oVec) {
      *reinterpret_cast<ptx::u32 *>(orow + d) = ptx::pack2<Cfg::DTYPE>(v0, v1);
    } else {
      store_elem<Cfg::DTYPE>(orow, d, v0);
      store_elem<Cfg::DTYPE>(orow, d + 1, v1);
    }
  }
  if constexpr (Cfg::HAS_LSE)
    if (t == 0)
      c.p.lse[(static_cast<i64>(c.b) * Cfg::HEADS + c.h) * c.Sq + i] =
          empty ? neg_inf() : (m + log2f(l)) * 0.6931471805599453f;
}

} // namespace attn_common
} // namespace dev
} // namespace sattn

#endif // SATTN_DEVICE_ATTENTION_COMMON_CUH
