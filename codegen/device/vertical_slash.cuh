//===- vertical_slash.cuh - FlexPrefill lines and head-wide prefixes ------===//
//
// sattn.vertical_slash (semantics §12a) runs as phases of one template,
// kernels <name>_stats, _lse, _lines, _slash, _pick and <name> itself:
//   _stats  per key tile of kVsKeys keys and per last row, the tile's max
//           logit and exp-sum (log2 units) on tensor cores;
//   _lse    per row the merge of its tiles' stats, one warp per row in a
//           fixed order (log2 LSE);
//   _lines  per key tile the exact probabilities of the last rows, summed
//           per key (vertical) and per diagonal of the tile (slash
//           partials), in a fixed order (no atomics: the same bits on
//           every run);
//   _slash  per distance the sum of the tiles' partials, in tile order;
//   _pick   per (batch, head) one CTA: coverage counts of both lines,
//           block-pooled lines, the query-aware test, the picked columns
//           and diagonals;
//   <name>  per (batch, head, query block) the row of the block set.
// (select_cumulative_head, §6 `per head`, lives in select_head.cuh.)
//
// The prefixes are found without sorting (prefix_cut): a binary search
// over the bit pattern of the smallest kept value (values are >= 0, so bit
// order is value order) with float64 sums, then the entries equal to it are
// taken in index order, the order §6 breaks ties by.
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_DEVICE_VERTICAL_SLASH_CUH
#define SATTN_DEVICE_VERTICAL_SLASH_CUH

#include "params.cuh"

namespace sattn {
namespace dev {

/// Launch contracts. _stats and _lines: grid (nTiles = cdiv(Skv, kVsKeys),
/// Hq, B), kVsThreads, dynamic smem vs_tile_smem_bytes(D, LAST). _lse: grid
/// (cdiv(n', kVsThreads / 32), Hq, B). _slash: grid (cdiv(Skv, kVsThreads), Hq,
/// B). _pick: grid (Hq, B), kVsPickThreads, dynamic smem vs_pick_smem_bytes.
/// rows (<name>): grid (nQB, Hq, B), kVsThreads, dynamic smem nKB bytes.
enum : int {
  kVsThreads = 128,
  kVsKeys = 64,
  kVsChunk = 64, ///< last rows per pass of _lines (its probability tile)
  kVsPickThreads = 512,
};

#if defined(__CUDACC__)
#define SATTN_VS_HD __host__ __device__
#else
#define SATTN_VS_HD
#endif

SATTN_VS_HD constexpr int vs_tile_smem_bytes(int headDim, int last) {
  return kVsKeys * (headDim + 8) * 2 + kVsChunk * (kVsKeys + 1) * 4 + (last + kVsKeys - 1) * 4;
}
SATTN_VS_HD constexpr long long vs_pick_smem_bytes(int nKB, int headDim) {
  return 3ll * nKB * 4 + headDim * 4 + 2ll * nKB;
}

} // namespace dev
} // namespace sattn

#if defined(__CUDACC__)

#include "masks.cuh"
#include "ptx.cuh"
#include "types.cuh"

namespace sattn {
namespace dev {
namespace vs_detail {

using namespace ptx;

/// The kept entries of a shortest prefix: candidates with bits > cut, the
/// candidates equal to it with index <= tieLast, and every forced entry.
/// `count` is the number of kept candidates.
struct Cut {
  unsigned cut;
  int tieLast;
  int count;
};

/// Block-wide (every thread calls it) shortest prefix over entries [0, n):
/// entry(t, v) returns 0 (absent), 1 (forced) or 2 (candidate) and sets
/// v >= 0; COUNT weighs each candidate 1 instead of v. `target(total,
/// forced)` is the mass (count) the prefix must reach.
template <bool COUNT, class Entry, class Target>
__device__ Cut prefix_cut(int n, Entry entry, Target target, double *dred, int *ired) {
  const int tid = threadIdx.x, nt = blockDim.x;
  const int per = (n + nt - 1) / nt, lo = min(n, tid * per), hi = min(n, lo + per);
  auto w = [](float v) { return COUNT ? 1.0 : static_cast<double>(v); };
  // The sums stride over the entries (coalesced loads; ~33 passes of the
  // binary search read the whole line); only the tie passes below need each
  // thread's contiguous range [lo, hi), for index order.
  double total = 0.0, forced = 0.0;
  for (int t = tid; t < n; t += nt) {
    float v = 0.f;
    int k = entry(t, v);
    if (k > 0)
      total += k == 1 ? static_cast<double>(v) : w(v);
    if (k == 1)
      forced += COUNT ? 0.0 : static_cast<double>(v);
  }
  total = block_sum(total, dred);
  forced = block_sum(forced, dred);
  const double goal = target(total, forced);
  auto massAtLeast = [&](unsigned x) {
    double s = 0.0;
    // Unrolled: up to 8 independent loads in flight per thread (one CTA per
    // head reads the whole line ~33 times; latency, not bandwidth, bounds it).
#pragma unroll 8
    for (int t = tid; t < n; t += nt) {
      float v = 0.f;
      if (entry(t, v) == 2 && __float_as_uint(v) >= x)
        s += w(v);
    }
    return forced + block_sum(s, dred);
  };
  unsigned cut;
  long long need;
  if (forced >= goal) {
    cut = 0xffffffffu, need = 0;
  } else if (massAtLeast(0u) < goal) {
    cut = 0u, need = 1ll << 40; // rounding: every candidate
  } else {
    unsigned a = 0u, z = 0x7f800001u; // massAtLeast(a) >= goal > massAtLeast(z)
    while (z - a > 1u) {
      unsigned m = a + (z - a) / 2;
      if (massAtLeast(m) >= goal)
        a = m;
      else
        z = m;
    }
    cut = a;
    double acc = massAtLeast(a + 1u);
    int eq = 0;
    for (int t = lo; t < hi; ++t) {
      float v = 0.f;
      eq += entry(t, v) == 2 && __float_as_uint(v) == cut;
    }
    int eqTotal;
    block_exclusive_scan(eq, ired, eqTotal);
    const double v = COUNT ? 1.0 : static_cast<double>(__uint_as_float(cut));
    long long k = 0;
    while (acc < goal && k < eqTotal) // one at a time, as the reference adds them
      acc += v, ++k;
    need = k;
  }
  // The index of the need-th candidate equal to the cut, and the count.
  __shared__ int tieLast;
  int eq = 0, above = 0;
  for (int t = lo; t < hi; ++t) {
    float v = 0.f;
    if (entry(t, v) == 2) {
      unsigned bits = __float_as_uint(v);
      above += bits > cut;
      eq += bits == cut;
    }
  }
  int eqTotal, aboveTotal;
  const int before = block_exclusive_scan(eq, ired, eqTotal);
  block_exclusive_scan(above, ired, aboveTotal);
  if (tid == 0)
    tieLast = -1;
  __syncthreads();
  if (need > before && need <= before + eq) {
    int seen = before;
    for (int t = lo; t < hi; ++t) {
      float v = 0.f;
      if (entry(t, v) == 2 && __float_as_uint(v) == cut && ++seen == need)
        tieLast = t;
    }
  } else if (tid == 0 && need > eqTotal && eqTotal > 0) {
    tieLast = n;
  }
  __syncthreads();
  return Cut{cut, tieLast,
             aboveTotal +
                 static_cast<int>(need < eqTotal ? need : static_cast<long long>(eqTotal))};
}

/// Writes row `row` of `out`: the J in [0, n) with keep(J), ascending.
template <class Keep>
__device__ void write_row(const BlockSetView &out, i64 row, int n, Keep keep) {
  __shared__ int red[kVsThreads / 32];
  int at = 0;
  int *idx = out.indices + row * out.cap;
  for (int J0 = 0; J0 < n; J0 += kVsThreads) {
    const int J = J0 + threadIdx.x;
    const bool k = J < n && keep(J);
    int total;
    const int pos = at + block_exclusive_scan(k ? 1 : 0, red, total);
    if (k && pos < out.cap)
      idx[pos] = J;
    at += total;
  }
  if (threadIdx.x == 0)
    out.counts[row] = min(at, out.cap);
}

/// _stats / _lines: one key tile against every last row of one head.
template <class Cfg, bool LINES> struct Tile {
  static constexpr DType T = Cfg::DTYPE;
  static constexpr int D = Cfg::HEAD_DIM, G = Cfg::HEADS / Cfg::KV_HEADS;
  static constexpr int NT = kVsThreads, NW = NT / 32, BN = kVsKeys, CH = kVsChunk;
  static constexpr int LDS = D + 8, KD = D / 16, CPR = D / 8, NN = BN / 8, PL = BN + 1;
  static constexpr int ND = Cfg::LAST + BN - 1; ///< diagonals of one tile
  static constexpr float kC = Cfg::SCALE * 1.4426950408889634f;
  static_assert(D % 16 == 0 && D <= 256,
                "vertical_slash: head dim must be a multiple of 16 <= 256");
  static_assert(CH == NW * 16, "vertical_slash: one 16-row group per warp per chunk");

  __device__ static void run(const VsParams &p, unsigned char *smem) {
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane >> 2, t = lane & 3;
    const int tile = blockIdx.x, h = blockIdx.y, b = blockIdx.z, hk = h / G;
    const int j0 = tile * BN, n = p.q.S, Skv = p.k.S, nv = min(BN, Skv - j0);
    const u32 kb = smem_addr(smem);
    float *P = reinterpret_cast<float *>(smem + BN * LDS * 2);
    float *diag = P + CH * PL;
    const u16 *kBase = static_cast<const u16 *>(p.k.ptr) + b * p.k.sb + hk * p.k.sh +
                       static_cast<i64>(j0) * p.k.ss;
    // 16-byte loads where the key rows allow them (the usual case), else
    // 16-bit ones; uniform across the CTA.
    const bool k16 = ((reinterpret_cast<unsigned long long>(kBase) | (p.k.ss * 2)) & 15) == 0;
    for (int c = tid; c < BN * CPR; c += NT) {
      int r = c / CPR, k = c % CPR;
      u32 x[4] = {0u, 0u, 0u, 0u};
      if (r < nv) {
        const u16 *src = kBase + static_cast<i64>(r) * p.k.ss + k * 8;
        if (k16) {
          const uint4 v = __ldg(reinterpret_cast<const uint4 *>(src));
          x[0] = v.x, x[1] = v.y, x[2] = v.z, x[3] = v.w;
        } else {
          for (int e = 0; e < 4; ++e)
            x[e] = static_cast<u32>(src[2 * e]) | (static_cast<u32>(src[2 * e + 1]) << 16);
        }
      }
      st_shared16(kb + (r * LDS + k * 8) * 2, x[0], x[1], x[2], x[3]);
    }
    // Query rows as 32-bit pairs where aligned (base and row stride).
    const bool q4 =
        ((reinterpret_cast<unsigned long long>(p.q.ptr) | (p.q.sb | p.q.sh | p.q.ss) * 2) & 3) == 0;
    for (int d = tid; d < ND; d += NT)
      diag[d] = 0.f;
    __syncthreads();
    const i64 head = static_cast<i64>(b) * Cfg::HEADS + h;
    const u32 kLane = kb + (((lane & 7) + (lane >> 4) * 8) * LDS + ((lane >> 3) & 1) * 8) * 2;
    float colAcc = 0.f;
    for (int c0 = 0; c0 < n; c0 += CH) {
      // Rows c0 + 16 warp + {g, g + 8}: row r sits at key position Skv - n + r.
      int rr[2];
      float lse2[2];
      const u16 *qrow[2];
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        rr[hh] = c0 + warp * 16 + g + 8 * hh;
        qrow[hh] = nullptr;
        lse2[hh] = 0.f;
        if (rr[hh] < n) {
          if (LINES)
            lse2[hh] = p.lse2[head * n + rr[hh]];
          if (!LINES || lse2[hh] != neg_inf())
            qrow[hh] = static_cast<const u16 *>(p.q.ptr) + b * p.q.sb + h * p.q.sh +
                       static_cast<i64>(rr[hh]) * p.q.ss;
        }
      }
      float sc[NN][4];
#pragma unroll
      for (int x = 0; x < NN; ++x)
#pragma unroll
        for (int y = 0; y < 4; ++y)
          sc[x][y] = 0.f;
#pragma unroll
      for (int kk = 0; kk < KD; ++kk) {
        u32 qf[4];
#pragma unroll
        for (int x = 0; x < 4; ++x) {
          const u16 *r = qrow[x & 1];
          int d = kk * 16 + (x >> 1) * 8 + 2 * t;
          qf[x] = !r   ? 0u
                  : q4 ? __ldg(reinterpret_cast<const u32 *>(r + d))
                       : static_cast<u32>(r[d]) | (static_cast<u32>(r[d + 1]) << 16);
        }
#pragma unroll
        for (int np = 0; np < NN / 2; ++np) {
          u32 bk[4];
          ldsm_x4(bk, kLane + (np * 16 * LDS + kk * 16) * 2);
          mma16816<T>(sc[2 * np], qf, bk[0], bk[1]);
          mma16816<T>(sc[2 * np + 1], qf, bk[2], bk[3]);
        }
      }
      auto ok = [&](int hh, int jj) { return qrow[hh] && jj < nv && j0 + jj <= Skv - n + rr[hh]; };
      if constexpr (!LINES) {
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          float m = neg_inf();
#pragma unroll
          for (int x = 0; x < NN; ++x)
#pragma unroll
            for (int e = 0; e < 2; ++e)
              if (ok(hh, x * 8 + 2 * t + e))
                m = fmaxf(m, sc[x][2 * hh + e] * kC);
          m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
          m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
          float l = 0.f;
#pragma unroll
          for (int x = 0; x < NN; ++x)
#pragma unroll
            for (int e = 0; e < 2; ++e)
              if (ok(hh, x * 8 + 2 * t + e))
                l += ex2(sc[x][2 * hh + e] * kC - m);
          l += __shfl_xor_sync(0xffffffffu, l, 1);
          l += __shfl_xor_sync(0xffffffffu, l, 2);
          if (t == 0 && rr[hh] < n) {
            float *st = p.stats + ((head * p.nTiles + tile) * n + rr[hh]) * 2;
            st[0] = m, st[1] = l;
          }
        }
      } else {
        // Probabilities of this chunk into P, then column and diagonal sums.
#pragma unroll
        for (int x = 0; x < NN; ++x)
#pragma unroll
          for (int y = 0; y < 4; ++y) {
            const int hh = y >> 1, jj = x * 8 + 2 * t + (y & 1);
            P[(warp * 16 + g + 8 * hh) * PL + jj] =
                ok(hh, jj) ? ex2(fmaf(sc[x][y], kC, -lse2[hh])) : 0.f;
          }
        __syncthreads();
        const int rows = min(CH, n - c0);
        if (tid < BN)
          for (int r = 0; r < rows; ++r)
            colAcc += P[r * PL + tid];
        // Local diagonal e = r - c + BN - 1 in [0, CH + BN - 1).
        for (int e = tid; e < CH + BN - 1; e += NT) {
          float s = 0.f;
          for (int r = max(0, e - (BN - 1)); r < min(rows, e + 1); ++r)
            s += P[r * PL + (r - e + BN - 1)];
          diag[c0 + e] += s;
        }
        __syncthreads();
      }
    }
    if constexpr (!LINES)
      return;
    const float inv = 1.f / static_cast<float>(n);
    if (tid < nv)
      p.vert[head * Skv + j0 + tid] = colAcc * inv;
    float *part = p.part + (head * p.nTiles + tile) * ND;
    for (int e = tid; e < ND; e += NT)
      part[e] = diag[e] * inv;
  }
};

} // namespace vs_detail

/// The line phases (_stats .. _slash) read only LAST of the selection's
/// constants: sattn.vslash (vslash.cuh) runs them too.
template <class Cfg> struct VsLineChecks {
  static_assert(Cfg::LAST >= 1 && Cfg::LAST <= 1024, "vertical_slash: LAST must lie in [1, 1024]");
  static constexpr bool ok = true;
};

template <class Cfg> struct VsChecks : VsLineChecks<Cfg> {
  static_assert(Cfg::GAMMA >= 0.f && Cfg::GAMMA <= 1.f, "vertical_slash: GAMMA must lie in [0, 1]");
  static_assert(Cfg::UNIT >= 1 && Cfg::MIN_BLOCKS >= 0 && Cfg::MAX_BLOCKS >= 0,
                "vertical_slash: UNIT >= 1, MIN_BLOCKS and MAX_BLOCKS >= 0");
  static constexpr bool ok = true;
};

/// Phase 1: per tile and row, max and exp-sum (log2 units).
template <class Cfg> __device__ void vertical_slash_stats(const VsParams &p) {
  static_assert(VsLineChecks<Cfg>::ok, "");
  extern __shared__ __align__(16) unsigned char sattn_vs_smem[];
  vs_detail::Tile<Cfg, false>::run(p, sattn_vs_smem);
}

/// Phase 2: per row its log2 LSE over the tiles (-inf: sees no key). One
/// warp per row: lanes merge every 32nd tile's (max, sum) online, then an
/// xor tree merges the lanes (a fixed order: the same bits on every run).
template <class Cfg> __device__ void vertical_slash_lse(const VsParams &p) {
  const int lane = threadIdx.x % 32, h = blockIdx.y, b = blockIdx.z;
  const int r = blockIdx.x * (kVsThreads / 32) + threadIdx.x / 32, n = p.q.S;
  if (r >= n)
    return; // warp-uniform
  const i64 head = static_cast<i64>(b) * Cfg::HEADS + h;
  float m = neg_inf(), l = 0.f;
  auto merge = [&](float tm, float tl) {
    if (tm == neg_inf())
      return;
    if (tm > m) {
      l = l * ptx::ex2(m - tm) + tl; // m = -inf: l is 0 and stays 0
      m = tm;
    } else {
      l += tl * ptx::ex2(tm - m);
    }
  };
  for (int t = lane; t < p.nTiles; t += 32) {
    const float2 st =
        *reinterpret_cast<const float2 *>(p.stats + ((head * p.nTiles + t) * n + r) * 2);
    merge(st.x, st.y);
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m, o), l2 = __shfl_xor_sync(0xffffffffu, l, o);
    merge(m2, l2);
  }
  if (lane == 0)
    p.lse2[head * n + r] = m == neg_inf() ? neg_inf() : m + __log2f(l);
}

/// Phase 3: vertical line and slash partials per tile.
template <class Cfg> __device__ void vertical_slash_lines(const VsParams &p) {
  extern __shared__ __align__(16) unsigned char sattn_vs_smem[];
  vs_detail::Tile<Cfg, true>::run(p, sattn_vs_smem);
}

/// Phase 4: slash[d] = the tiles' partials of distance d, in tile order.
template <class Cfg> __device__ void vertical_slash_slash(const VsParams &p) {
  constexpr int ND = Cfg::LAST + kVsKeys - 1;
  const int d = blockIdx.x * kVsThreads + threadIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int n = p.q.S, Skv = p.k.S;
  if (d >= Skv)
    return;
  const i64 head = static_cast<i64>(b) * Cfg::HEADS + h;
  // Tile t's diagonal e holds distance Skv - n - t * kVsKeys + e - (kVsKeys - 1).
  const int base = d - Skv + n + kVsKeys - 1; // e = base + t * kVsKeys
  float s = 0.f;
  int t0 =
      base >= ND ? (base - ND) / kVsKeys + 1 : (base < 0 ? (-base + kVsKeys - 1) / kVsKeys : 0);
  for (int t = t0; t < p.nTiles; ++t) {
    const int e = base + t * kVsKeys;
    if (e >= ND)
      break;
    if (e >= 0)
      s += p.part[(head * p.nTiles + t) * ND + e];
  }
  p.slash[head * Skv + d] = s;
}

/// Phase 5: per (batch, head) the budgets, the query-aware test and the picks.
template <class Cfg> __device__ void vertical_slash_pick(const VsParams &p) {
  static_assert(VsChecks<Cfg>::ok, "");
  extern __shared__ __align__(16) unsigned char sattn_vs_smem[];
  __shared__ double dred[kVsPickThreads / 32];
  __shared__ int ired[kVsPickThreads / 32];
  __shared__ int budgets[2];
  constexpr int BK = Cfg::BK, D = Cfg::HEAD_DIM, G = Cfg::HEADS / Cfg::KV_HEADS;
  const int h = blockIdx.x, b = blockIdx.y, tid = threadIdx.x, NT = blockDim.x;
  const int Skv = p.k.S, nKB = p.nKB, n = p.q.S;
  const i64 head = static_cast<i64>(b) * Cfg::HEADS + h;
  float *V = reinterpret_cast<float *>(sattn_vs_smem), *L = V + nKB, *e = L + nKB;
  float *qbar = e + nKB;
  const float *vert = p.vert + head * Skv, *slash = p.slash + head * Skv;
  const int cap = Cfg::MAX_BLOCKS == 0 ? nKB : min(Cfg::MAX_BLOCKS, nKB);
  // Coverage budgets of the token lines.
  for (int which = 0; which < 2; ++which) {
    const float *x = which ? slash : vert;
    vs_detail::Cut c = vs_detail::prefix_cut<false>(
        Skv,
        [&](int t, float &v) {
          v = fmaxf(x[t], 0.f);
          return 2;
        },
        [](double total, double) { return static_cast<double>(Cfg::GAMMA) * total; }, dred, ired);
    if (tid == 0)
      budgets[which] = min(max(c.count / Cfg::UNIT + 1, Cfg::MIN_BLOCKS), cap);
  }
  // Pooled lines: V per KV block, L per slash group (fixed summation order).
  for (int J = tid; J < nKB; J += NT) {
    float s = 0.f;
    for (int j = J * BK; j < min(Skv, (J + 1) * BK); ++j)
      s += vert[j];
    V[J] = s;
    const int m = nKB - 1 - J; // group J holds distances with (Skv - 1 - d) / BK == m
    float z = 0.f;
    for (int d = max(0, Skv - (m + 1) * BK); d <= Skv - 1 - m * BK; ++d)
      z += slash[d];
    L[J] = z;
  }
  __syncthreads();
  int aware = 0;
  if (Cfg::AWARE) {
    for (int d = tid; d < D; d += NT) {
      float s = 0.f;
      for (int r = 0; r < n; ++r)
        s += load_elem<Cfg::DTYPE>(p.q.ptr,
                                   b * p.q.sb + h * p.q.sh + static_cast<i64>(r) * p.q.ss + d);
      qbar[d] = s / static_cast<float>(n);
    }
    __syncthreads();
    const float *kp = p.kp + (static_cast<i64>(b) * Cfg::KV_HEADS + h / G) * nKB * D;
    float m = neg_inf();
    for (int J = tid; J < nKB; J += NT) {
      float s = 0.f;
      for (int d = 0; d < D; ++d)
        s += qbar[d] * kp[static_cast<i64>(J) * D + d];
      e[J] = s * Cfg::SCALE;
      m = fmaxf(m, e[J]);
    }
    // Block max through dred (every thread reads all warps' maxima).
    for (int o = 16; o > 0; o >>= 1)
      m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    __syncthreads();
    if (tid % 32 == 0)
      dred[tid / 32] = m;
    __syncthreads();
    float mx = neg_inf();
    for (int i = 0; i < NT / 32; ++i)
      mx = fmaxf(mx, static_cast<float>(dred[i]));
    double z = 0.0;
    for (int J = tid; J < nKB; J += NT)
      z += exp(static_cast<double>(e[J] - mx));
    z = block_sum(z, dred);
    double js = 0.0;
    for (int J = tid; J < nKB; J += NT) {
      const double a = exp(static_cast<double>(e[J] - mx)) / z, c = V[J], mu = 0.5 * (a + c);
      if (a > 0.0)
        js += 0.5 * a * log(a / mu);
      if (c > 0.0)
        js += 0.5 * c * log(c / mu);
    }
    js = block_sum(js, dred);
    aware = sqrt(fmax(js, 0.0)) < static_cast<double>(Cfg::JSD);
    if (aware && tid == 0)
      budgets[0] = budgets[1] = min(Cfg::MIN_BLOCKS, nKB);
    __syncthreads();
  }
  if (tid == 0)
    p.aware_flag[head] = aware;
  // Picks: entry 0 first, then the others by descending value.
  unsigned char *picks = p.picks + head * 2 * nKB;
  for (int which = 0; which < 2; ++which) {
    const float *x = which ? L : V;
    const int k = budgets[which];
    unsigned char *out = picks + which * nKB;
    if (k == 0) {
      for (int J = tid; J < nKB; J += NT)
        out[J] = 0;
      __syncthreads();
      continue;
    }
    vs_detail::Cut c = vs_detail::prefix_cut<true>(
        nKB,
        [&](int J, float &v) {
          v = fmaxf(x[J], 0.f);
          return J == 0 ? 1 : 2;
        },
        [&](double, double) { return static_cast<double>(k - 1); }, dred, ired);
    for (int J = tid; J < nKB; J += NT) {
      const unsigned bits = __float_as_uint(fmaxf(x[J], 0.f));
      out[J] = J == 0 || bits > c.cut || (bits == c.cut && J <= c.tieLast);
    }
    __syncthreads();
  }
}

/// Phase 6 (the template's own kernel): row I of the block set.
template <class Cfg> __device__ void vertical_slash(const VsParams &p) {
  extern __shared__ __align__(16) unsigned char sattn_vs_smem[];
  const int I = blockIdx.x, h = blockIdx.y, b = blockIdx.z, nKB = p.nKB;
  const i64 head = static_cast<i64>(b) * Cfg::HEADS + h;
  const i64 row = head * p.nQB + I;
  const int dk = diagonal_key(I, Cfg::BQ, p.Sq, p.k.S);
  const int diag = dk >= 0 ? dk / Cfg::BK : -1;
  const unsigned char *vm = p.picks + head * 2 * nKB, *sm = vm + nKB;
  unsigned char *qa = sattn_vs_smem;
  const bool aware = Cfg::AWARE && p.aware_flag[head];
  if (aware) {
    for (int J = threadIdx.x; J < nKB; J += kVsThreads)
      qa[J] = 0;
    __syncthreads();
    const i64 arow = (static_cast<i64>(b) * p.aware.H + h) * p.aware.nQB + I;
    const int cnt = min(p.aware.counts[arow], p.aware.cap);
    for (int x = threadIdx.x; x < cnt; x += kVsThreads) {
      const int J = p.aware.indices[arow * p.aware.cap + x];
      if (J >= 0 && J < nKB)
        qa[J] = 1;
    }
    __syncthreads();
  }
  vs_detail::write_row(p.out, row, diag + 1,
                       [&](int J) { return vm[J] || sm[diag - J] || (aware && qa[J]); });
}

} // namespace dev
} // namespace sattn

#endif // __CUDACC__

#endif // SATTN_DEVICE_VERTICAL_SLASH_CUH
