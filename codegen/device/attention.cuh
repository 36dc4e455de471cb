//===- attention.cuh - first correct sparse attention forward (§2) --------===//
//
// attn_fwd<Cfg>: the reference-grade GPU kernel of sattn.attention, written
// to be obviously right rather than fast (a Hopper kernel replaces it).
//
// One CTA = kAttnRowsPerCta consecutive query rows of one (batch, head),
// all in one block-set row, so they share one key schedule. Each warp owns
// RPW of those rows. Per key tile (staged raw in shared memory by the whole
// CTA, K then V in the same buffer):
//   scores: lanes split the tile's keys, each computes full q.k dots;
//   softmax: fp32 online softmax per row in the log2 domain;
//   P.V: lanes split the head dim, accumulators stay in registers.
// The CTA visits only key ranges that may hold an allowed key: the causal /
// window / sinks bounds of its rows, the listed blocks of a block set, and
// for lazy rows of a query set a second pass over the lazy policy's keys.
// Inside a tile every (row, key) is still masked exactly, so the ranges
// only need to be disjoint supersets of the allowed keys. Row ranges, mask
// ranges, block-set runs and the common Cfg checks come from
// attention_common.cuh (shared with the tensor-core kernels).
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_DEVICE_ATTENTION_CUH
#define SATTN_DEVICE_ATTENTION_CUH

#include "attention_common.cuh"
#include "masks.cuh"
#include "params.cuh"
#include "types.cuh"

namespace sattn {
namespace dev {
namespace attn_detail {

/// What a row of the CTA does. Lazy rows (query set) ignore the block set,
/// the pattern and the op's own mask (semantics §2).
enum RowMode : int { kRowNone = 0, kRowActive = 1, kRowLazyLocal = 2, kRowLazyZero = 3 };

using attn_common::mask_ranges;
using attn_common::Range;

/// Whether ascending rows[0, n) holds i.
__device__ __forceinline__ bool sorted_contains(const int *rows, int n, int i) {
  int lo = 0, hi = n;
  while (lo < hi) {
    int mid = (lo + hi) >> 1, v = rows[mid];
    if (v == i)
      return true;
    if (v < i)
      lo = mid + 1;
    else
      hi = mid;
  }
  return false;
}

template <class Cfg> struct Fwd {
  static constexpr DType T = Cfg::DTYPE;
  static constexpr int D = Cfg::HEAD_DIM;
  static constexpr int EPL = D / 32;               // head-dim elements per lane
  static constexpr int NW = kAttnThreads / 32;     // warps per CTA
  static constexpr int RPW = kAttnRowsPerCta / NW; // rows per warp
  // 256-wide heads halve the tile so the CTA stays under 48 KB static smem.
  static constexpr int TK = D > 128 ? kAttnKeyTile / 2 : kAttnKeyTile;
  static constexpr int KPL = TK / 32; // keys per lane in the score phase
  // Key row stride: D/2 + 1 words is odd, so lane l reading key l hits bank
  // (l * stride + d/2) % 32, all distinct: conflict-free score loads.
  static constexpr int KS = D + 2;
  static constexpr int G = Cfg::HEADS / Cfg::KV_HEADS;          // query heads per KV head
  static constexpr float kC = Cfg::SCALE * 1.4426950408889634f; // scale * log2(e)

  struct alignas(16) Smem {
    float q[kAttnRowsPerCta][D]; // the CTA's queries in fp32 (0 past the last row)
    float p[NW][RPW][TK];        // each warp's softmax weights of the current tile
    unsigned short kv[TK * KS];  // raw 16-bit K, then V, of the current tile
  };

  const AttnParams &p;
  Smem &sm;
  int b, h, hk, Sq, Skv, row0, rowEnd, warp, lane;
  const unsigned short *kBase, *vBase; // (b, hk) slices of K and V
  int mode[RPW];                       // RowMode of row row0 + warp * RPW + r
  float m[RPW], l[RPW], acc[RPW][EPL]; // running max (log2 domain), sum, unnormalised O

  __device__ __forceinline__ Fwd(const AttnParams &p_, Smem &sm_) : p(p_), sm(sm_) {}

  /// Copies rows [j0, j0 + n) of a (b, hk) K/V slice into sm.kv: consecutive
  /// threads take consecutive elements of a row, so global loads coalesce.
  __device__ __forceinline__ void stage(const unsigned short *src, i64 ss, int j0, int n) {
    for (int x = threadIdx.x; x < n * D; x += kAttnThreads) {
      int jj = x / D, d = x % D;
      sm.kv[jj * KS + d] = src[(j0 + jj) * ss + d];
    }
  }

  /// Exact §2 membership of key j in A(row r) for this pass. The block set
  /// needs no test: the pass only visits keys of listed blocks.
  template <bool LAZY_PASS> __device__ __forceinline__ bool allowed(int r, int j) const {
    int i = row0 + warp * RPW + r;
    if constexpr (LAZY_PASS) {
      int ip = i + Skv - Sq;
      return mode[r] == kRowLazyLocal && j <= ip &&
             (j > ip - Cfg::LAZY_WINDOW || j < Cfg::LAZY_SINKS);
    } else {
      if (mode[r] != kRowActive)
        return false;
      if (!token_allowed<Cfg::CAUSAL, Cfg::WINDOW, Cfg::SINKS>(i, j, Sq, Skv))
        return false;
      if constexpr (Cfg::HAS_PATTERN)
        return pattern_block(Cfg::P_CAUSAL, Cfg::P_WINDOW, Cfg::P_SINKS, i / Cfg::P_BQ,
                             j / Cfg::P_BK, Cfg::P_BQ, Cfg::P_BK, Sq, Skv);
      return true;
    }
  }

  /// Scores of keys [j0, j1) (staged in sm.kv) and the online-softmax update:
  /// rescales acc/l to the new running max and leaves the tile's weights in
  /// sm.p[warp]. Lane l owns keys l + 32c of the tile.
  template <bool LAZY_PASS> __device__ __forceinline__ void scores(int j0, int j1) {
    float s[RPW][KPL];
#pragma unroll
    for (int r = 0; r < RPW; ++r)
#pragma unroll
      for (int c = 0; c < KPL; ++c)
        s[r][c] = 0.f;
#pragma unroll 4
    for (int d = 0; d < D; ++d) {
      float kf[KPL];
#pragma unroll
      for (int c = 0; c < KPL; ++c)
        kf[c] = load_elem<T>(sm.kv, (lane + 32 * c) * KS + d);
#pragma unroll
      for (int r = 0; r < RPW; ++r) {
        float qv = sm.q[warp * RPW + r][d]; // same address in all lanes: broadcast
#pragma unroll
        for (int c = 0; c < KPL; ++c)
          s[r][c] = fmaf(qv, kf[c], s[r][c]);
      }
    }
#pragma unroll
    for (int r = 0; r < RPW; ++r) {
      float tmax = neg_inf();
#pragma unroll
      for (int c = 0; c < KPL; ++c) {
        int j = j0 + lane + 32 * c;
        // Keys past j1 read stale smem: their value is dropped here, unused.
        s[r][c] = (j < j1 && allowed<LAZY_PASS>(r, j)) ? s[r][c] * kC : neg_inf();
        tmax = fmaxf(tmax, s[r][c]);
      }
      float mNew = fmaxf(m[r], warp_max(tmax));
      // Nothing allowed yet: subtract 0 so exp2(-inf - base) = 0, not NaN.
      float base = mNew == neg_inf() ? 0.f : mNew;
      float corr = exp2f(m[r] - base);
      float psum = 0.f;
#pragma unroll
      for (int c = 0; c < KPL; ++c) {
        float w = exp2f(s[r][c] - base);
        sm.p[warp][r][lane + 32 * c] = w;
        psum += w;
      }
      l[r] = l[r] * corr + warp_sum(psum);
#pragma unroll
      for (int e = 0; e < EPL; ++e)
        acc[r][e] *= corr;
      m[r] = mNew;
    }
  }

  /// acc += P . V over the n staged value rows; lane l owns dims l + 32e.
  __device__ __forceinline__ void accumulate(int n) {
    for (int jj = 0; jj < n; ++jj) {
      float vf[EPL];
#pragma unroll
      for (int e = 0; e < EPL; ++e)
        vf[e] = load_elem<T>(sm.kv, jj * KS + lane + 32 * e);
#pragma unroll
      for (int r = 0; r < RPW; ++r) {
        float w = sm.p[warp][r][jj];
#pragma unroll
        for (int e = 0; e < EPL; ++e)
          acc[r][e] = fmaf(w, vf[e], acc[r][e]);
      }
    }
  }

  /// One key tile [j0, j1), j1 - j0 <= TK. Every thread of the CTA calls
  /// it (barriers); `busy` (warp-uniform) skips warps with no row in the pass.
  template <bool LAZY_PASS> __device__ __forceinline__ void tile(int j0, int j1, bool busy) {
    int n = j1 - j0;
    __syncthreads(); // the previous tile's V (and the first tile: sm.q) is done with
    stage(kBase, p.k.ss, j0, n);
    __syncthreads();
    if (busy)
      scores<LAZY_PASS>(j0, j1);
    __syncthreads(); // all K reads finish before V overwrites the buffer
    stage(vBase, p.v.ss, j0, n);
    __syncthreads();
    if (busy)
      accumulate(n);
  }

  /// Whether the block pattern can admit any (row, key) of this CTA with
  /// key in [j0, j1). Only tried when the CTA and the tile span at most two
  /// pattern blocks each; otherwise say yes and leave it to allowed().
  __device__ __forceinline__ bool pattern_may_allow(int j0, int j1) const {
    if constexpr (Cfg::HAS_PATTERN && Cfg::P_BQ >= kAttnRowsPerCta && Cfg::P_BK >= TK) {
      for (int I = row0 / Cfg::P_BQ; I <= (rowEnd - 1) / Cfg::P_BQ; ++I)
        for (int J = j0 / Cfg::P_BK; J <= (j1 - 1) / Cfg::P_BK; ++J)
          if (pattern_block(Cfg::P_CAUSAL, Cfg::P_WINDOW, Cfg::P_SINKS, I, J, Cfg::P_BQ, Cfg::P_BK,
                            Sq, Skv))
            return true;
      return false;
    }
    return true;
  }

  /// Visits [a, e) intersected with the mask ranges, in key tiles.
  template <bool LAZY_PASS>
  __device__ __forceinline__ void sweep(int a, int e, const Range (&mr)[2], bool busy) {
#pragma unroll
    for (int q = 0; q < 2; ++q) {
      int lo = max(a, mr[q].lo), hi = min(e, mr[q].hi);
      for (int j0 = lo; j0 < hi; j0 += TK) {
        int j1 = min(j0 + TK, hi);
        if (LAZY_PASS || pattern_may_allow(j0, j1))
          tile<LAZY_PASS>(j0, j1, busy);
      }
    }
  }

  /// One pass over the keys of the active rows (LAZY_PASS false) or of the
  /// lazy-local rows. Rows of the other kind are masked out in it. All
  /// loop bounds are CTA-uniform, so the barriers in tile() match up.
  template <bool LAZY_PASS> __device__ __forceinline__ void pass() {
    bool busy = false; // same in all lanes: modes depend on rows only
#pragma unroll
    for (int r = 0; r < RPW; ++r)
      busy |= mode[r] == (LAZY_PASS ? kRowLazyLocal : kRowActive);
    int ipLo = row0 + Skv - Sq, ipHi = rowEnd - 1 + Skv - Sq;
    Range mr[2];
    if constexpr (LAZY_PASS)
      mask_ranges(true, true, Cfg::LAZY_WINDOW, Cfg::LAZY_SINKS, ipLo, ipHi, Skv, mr);
    else
      mask_ranges(Cfg::CAUSAL, Cfg::WINDOW > 0, Cfg::WINDOW, Cfg::SINKS, ipLo, ipHi, Skv, mr);
    if constexpr (!LAZY_PASS && Cfg::HAS_BLOCKS) {
      i64 rowId = attn_common::block_set_row<Cfg, kAttnRowsPerCta>(p, b, h, blockIdx.x);
      int cnt = p.blocks.counts[rowId];
      const int *list = p.blocks.indices + rowId * p.blocks.cap;
      for (int x = 0; x < cnt;) {
        Range run = attn_common::block_run<Cfg::SET_BK>(list, x, cnt, Skv);
        sweep<false>(run.lo, run.hi, mr, busy);
      }
    } else {
      sweep<LAZY_PASS>(0, Skv, mr, busy);
    }
  }

  /// The whole CTA: rows, Q, both passes, output.
  __device__ __forceinline__ void run() {
    b = blockIdx.z, h = blockIdx.y, hk = h / G;
    Sq = p.q.S, Skv = p.k.S;
    warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    attn_common::cta_rows<Cfg, kAttnRowsPerCta>(blockIdx.x, Sq, row0, rowEnd);
    if (row0 >= rowEnd) // a short last query block: whole CTA leaves together
      return;
    kBase = static_cast<const unsigned short *>(p.k.ptr) + offset(p.k, b, hk, 0, 0);
    vBase = static_cast<const unsigned short *>(p.v.ptr) + offset(p.v, b, hk, 0, 0);

    bool anyActive = false, anyLazy = false;
#pragma unroll
    for (int r = 0; r < RPW; ++r) {
      int i = row0 + warp * RPW + r;
      m[r] = neg_inf();
      l[r] = 0.f;
#pragma unroll
      for (int e = 0; e < EPL; ++e)
        acc[r][e] = 0.f;
      mode[r] = i < rowEnd ? kRowActive : kRowNone;
      if constexpr (Cfg::HAS_QUERIES) {
        int bh = b * Cfg::HEADS + h;
        if (i < rowEnd && !sorted_contains(p.q_rows + static_cast<i64>(bh) * Sq, p.q_counts[bh], i))
          mode[r] = Cfg::LAZY == Lazy::local ? kRowLazyLocal : kRowLazyZero;
      }
      anyActive |= mode[r] == kRowActive;
      anyLazy |= mode[r] == kRowLazyLocal;
    }

    for (int x = threadIdx.x; x < kAttnRowsPerCta * D; x += kAttnThreads) {
      int r = x / D, d = x % D, i = row0 + r;
      sm.q[r][d] = i < rowEnd ? load_elem<T>(p.q.ptr, offset(p.q, b, h, i, d)) : 0.f;
    }

    // Barrier-based votes keep the pass decisions CTA-uniform.
    if (__syncthreads_or(anyActive))
      pass<false>();
    if constexpr (Cfg::HAS_QUERIES && Cfg::LAZY == Lazy::local)
      if (__syncthreads_or(anyLazy))
        pass<true>();

#pragma unroll
    for (int r = 0; r < RPW; ++r) {
      if (mode[r] == kRowNone)
        continue;
      int i = row0 + warp * RPW + r;
      bool empty = l[r] == 0.f; // no allowed key (l >= 1 otherwise)
#pragma unroll
      for (int e = 0; e < EPL; ++e)
        store_elem<T>(p.o.ptr, offset(p.o, b, h, i, lane + 32 * e), empty ? 0.f : acc[r][e] / l[r]);
      if constexpr (Cfg::HAS_LSE)
        if (lane == 0)
          p.lse[(static_cast<i64>(b) * Cfg::HEADS + h) * Sq + i] =
              empty ? neg_inf() : (m[r] + log2f(l[r])) * 0.6931471805599453f;
    }
  }
};

} // namespace attn_detail

/// sattn.attention forward; launch contract in the header comment above and
/// in the runtime's launcher: blockDim kAttnThreads, grid (nTiles, Hq, B).
template <class Cfg> __device__ void attn_fwd(const AttnParams &p) {
  static_assert(attn_common::CfgCheck<Cfg>::ok, "attn_fwd: invalid Cfg");
  using F = attn_detail::Fwd<Cfg>;
  static_assert(Cfg::HEAD_DIM % 32 == 0 && Cfg::HEAD_DIM >= 32 && Cfg::HEAD_DIM <= 256,
                "attn_fwd: HEAD_DIM must be a multiple of 32 in [32, 256] (lanes split it)");
  static_assert(kAttnThreads % 32 == 0 && kAttnRowsPerCta % (kAttnThreads / 32) == 0,
                "attn_fwd: every warp must own the same number of rows");
  static_assert(F::TK % 32 == 0, "attn_fwd: key tile must be a multiple of the warp size");
  static_assert(sizeof(typename F::Smem) <= 48 * 1024,
                "attn_fwd: static shared memory exceeds 48 KB (host passes 0 dynamic bytes)");
  static_assert(!Cfg::HAS_QUERIES || (Cfg::LAZY_WINDOW >= 0 && Cfg::LAZY_SINKS >= 0),
                "attn_fwd: LAZY_WINDOW and LAZY_SINKS must be >= 0");
  __shared__ typename F::Smem sm;
  F(p, sm).run();
}

} // namespace dev
} // namespace sattn

#endif // SATTN_DEVICE_ATTENTION_CUH
