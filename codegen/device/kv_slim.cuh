//===- kv_slim.cuh - OmniSparse decode KV slimming (semantics §11) --------===//
//
// sattn.kv_slim runs as three launches:
//   1. kv_slim_lse (decode.cuh): the LSE of the observation rows over all
//      their visible keys (the decode kernel without V);
//   2. kv_slim_scores: per KV head and key, the sum over the group's heads
//      and the observation rows of exp(scale q.k - LSE), the exact §11
//      score. One CTA per 64 keys walks every 16-row group on tensor
//      cores and reduces columns in a fixed order (no atomics, so the
//      scores are the same bits on every run);
//   3. kv_slim_select: per (batch, KV head) one CTA keeps the forced tokens
//      and the shortest prefix of the other segment tokens by descending
//      score (ties to the lower index) reaching tau of the segment's mass.
//      The prefix is found without sorting: a binary search over the
//      score's bit pattern (scores are >= 0, so bit order is value order)
//      for the smallest kept score, sums in float64, then the tokens equal
//      to it are taken in index order. Kept tokens are written ascending.
//
// Segment ranges are clipped to [0, Skv) on the device (it cannot report
// errors without a sync); the host paths validate them.
//
// kv_compact (the runtime's Program::slim, not a step of sattn.kv_slim
// itself): copies each (batch, KV head)'s kept K/V rows into a ragged
// slimmed cache, one contiguous run of rows per head, or appends new rows
// to one. The emitter adds it beside every kv_slim_select kernel.
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_DEVICE_KV_SLIM_CUH
#define SATTN_DEVICE_KV_SLIM_CUH

#include "params.cuh"
#include "decode.cuh"

namespace sattn {
namespace dev {

/// kv_slim_scores: blockDim kSlimThreads, grid (cdiv(Skv, kSlimKeys), Hkv,
/// B), dynamic smem slim_scores_smem_bytes(D). kv_slim_select: blockDim
/// kSlimSelectThreads, grid (Hkv, B), no dynamic smem.
/// kv_compact: blockDim kCompactThreads, grid as KvCompactParams says.
enum : int {
  kSlimThreads = 128,
  kSlimKeys = 64,
  kSlimSelectThreads = 512,
  kCompactThreads = 128,
  kCompactRows = 64,
};

SATTN_DECODE_HD constexpr int slim_scores_smem_bytes(int headDim) {
  return kSlimKeys * (headDim + 8) * 2 + (kSlimThreads / 32) * kSlimKeys * 4;
}

} // namespace dev
} // namespace sattn

#if defined(__CUDACC__)

namespace sattn {
namespace dev {
namespace slim_detail {

using namespace ptx;

template <class Cfg> struct Scores {
  static constexpr DType T = Cfg::DTYPE;
  static constexpr int D = Cfg::HEAD_DIM, G = Cfg::HEADS / Cfg::KV_HEADS;
  static constexpr int NT = kSlimThreads, NW = NT / 32, BN = kSlimKeys;
  static constexpr int LDS = D + 8, KD = D / 16, CPR = D / 8, NN = BN / 8;
  static constexpr float kC = Cfg::SCALE * 1.4426950408889634f;
  static_assert(decode_supported(D), "kv_slim: head dim must be a multiple of 16 in [16, 256]");

  __device__ static void run(const SlimScoresParams &p, unsigned char *smem) {
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane >> 2, t = lane & 3;
    const int j0 = blockIdx.x * BN, hk = blockIdx.y, b = blockIdx.z;
    const int Skv = p.k.S, w = p.q.S, R = G * w, groups = (R + 15) / 16;
    const int nv = min(BN, Skv - j0);
    const u32 kb = smem_addr(smem);
    float *colsum = reinterpret_cast<float *>(smem + BN * LDS * 2);
    const u16 *kBase = static_cast<const u16 *>(p.k.ptr) + b * p.k.sb + hk * p.k.sh +
                       static_cast<i64>(j0) * p.k.ss;
    const bool vec = rows_aligned<16>(p.k);
    for (int c = tid; c < BN * CPR; c += NT) {
      int r = c / CPR, k = c % CPR;
      u32 dst = kb + (r * LDS + k * 8) * 2;
      bool in = r < nv;
      const u16 *src = kBase + (in ? static_cast<i64>(r) * p.k.ss : 0) + k * 8;
      if (vec) {
        cp_async16(dst, src, in ? 16 : 0);
      } else {
        u32 x[4] = {0u, 0u, 0u, 0u};
        if (in)
          for (int e = 0; e < 4; ++e)
            x[e] = static_cast<u32>(src[2 * e]) | (static_cast<u32>(src[2 * e + 1]) << 16);
        st_shared16(dst, x[0], x[1], x[2], x[3]);
      }
    }
    cp_async_commit();
    cp_async_wait_all();
    __syncthreads();

    float col[NN][2];
#pragma unroll
    for (int n = 0; n < NN; ++n)
      col[n][0] = col[n][1] = 0.f;
    const u32 kLane = kb + (((lane & 7) + (lane >> 4) * 8) * LDS + ((lane >> 3) & 1) * 8) * 2;
    for (int grp = warp; grp < groups; grp += NW) {
      int ip[2];
      float lse2[2];
      const u16 *qrow[2] = {nullptr, nullptr};
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        int r = grp * 16 + g + 8 * hh;
        ip[hh] = -1;
        lse2[hh] = 0.f;
        if (r < R) {
          int h = hk * G + r / w, qi = r % w;
          float l = p.lse[(static_cast<i64>(b) * Cfg::HEADS + h) * w + qi];
          if (l != neg_inf()) { // a row that sees no key adds nothing
            ip[hh] = qi + Skv - w;
            lse2[hh] = l * 1.4426950408889634f;
            qrow[hh] = static_cast<const u16 *>(p.q.ptr) + b * p.q.sb + h * p.q.sh +
                       static_cast<i64>(qi) * p.q.ss;
          }
        }
      }
      float sc[NN][4];
#pragma unroll
      for (int n = 0; n < NN; ++n)
#pragma unroll
        for (int x = 0; x < 4; ++x)
          sc[n][x] = 0.f;
#pragma unroll
      for (int kk = 0; kk < KD; ++kk) {
        u32 qf[4];
#pragma unroll
        for (int x = 0; x < 4; ++x) {
          const u16 *r = qrow[x & 1];
          int d = kk * 16 + (x >> 1) * 8 + 2 * t;
          qf[x] = r ? static_cast<u32>(r[d]) | (static_cast<u32>(r[d + 1]) << 16) : 0u;
        }
#pragma unroll
        for (int np = 0; np < NN / 2; ++np) {
          u32 bk[4];
          ldsm_x4(bk, kLane + (np * 16 * LDS + kk * 16) * 2);
          mma16816<T>(sc[2 * np], qf, bk[0], bk[1]);
          mma16816<T>(sc[2 * np + 1], qf, bk[2], bk[3]);
        }
      }
#pragma unroll
      for (int n = 0; n < NN; ++n)
#pragma unroll
        for (int x = 0; x < 4; ++x) {
          int jj = n * 8 + 2 * t + (x & 1);
          int rp = ip[x >> 1];
          bool ok = jj < nv && j0 + jj <= rp;
          col[n][x & 1] += ok ? ex2(fmaf(sc[n][x], kC, -lse2[x >> 1])) : 0.f;
        }
    }
    // Columns: sum the 8 row lanes (g), then the warps, in a fixed order.
#pragma unroll
    for (int n = 0; n < NN; ++n)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        float v = col[n][e];
        v += __shfl_xor_sync(0xffffffffu, v, 4);
        v += __shfl_xor_sync(0xffffffffu, v, 8);
        v += __shfl_xor_sync(0xffffffffu, v, 16);
        if (g == 0)
          colsum[warp * BN + n * 8 + 2 * t + e] = v;
      }
    __syncthreads();
    if (tid < nv) {
      float s = 0.f;
#pragma unroll
      for (int x = 0; x < NW; ++x)
        s += colsum[x * BN + tid];
      p.score[(static_cast<i64>(b) * Cfg::KV_HEADS + hk) * Skv + j0 + tid] = s;
    }
  }
};

template <class Cfg> struct Select {
  static constexpr int NT = kSlimSelectThreads;
  const SlimSelectParams &p;
  int b, Skv, lo, hi; // this thread's tokens [lo, hi)
  const float *score;

  __device__ __forceinline__ bool in_segment(int t) const {
    if constexpr (!Cfg::HAS_SEGMENTS) {
      return true;
    } else {
      for (int s = 0; s < p.nSeg; ++s) {
        i64 at = b * p.seg_sb + s * p.seg_sr;
        i64 a, z;
        if constexpr (Cfg::SEG64) {
          a = static_cast<const long long *>(p.segments)[at];
          z = static_cast<const long long *>(p.segments)[at + 1];
        } else {
          a = static_cast<const int *>(p.segments)[at];
          z = static_cast<const int *>(p.segments)[at + 1];
        }
        if (t >= a && t < z)
          return true;
      }
      return false;
    }
  }
  /// 0: not in the segment (forced), 1: forced segment token, 2: candidate.
  __device__ __forceinline__ int kind(int t) const {
    if (!in_segment(t))
      return 0;
    return (t < Cfg::SINKS || t >= Skv - Cfg::RECENT) ? 1 : 2;
  }
  __device__ __forceinline__ unsigned bits(int t) const {
    return __float_as_uint(fmaxf(score[t], 0.f)); // >= 0: bit order is value order
  }

  __device__ void run(double *dred, int *ired) {
    const int tid = threadIdx.x, hk = blockIdx.x;
    b = blockIdx.y, Skv = p.Skv;
    const i64 row = static_cast<i64>(b) * gridDim.x + hk;
    score = p.score + row * Skv;
    int per = (Skv + NT - 1) / NT;
    lo = min(Skv, tid * per), hi = min(Skv, lo + per);

    double total = 0.0, forced = 0.0;
    for (int t = lo; t < hi; ++t) {
      int k = kind(t);
      float s = fmaxf(score[t], 0.f);
      if (k > 0)
        total += s;
      if (k == 1)
        forced += s;
    }
    total = block_sum(total, dred);
    forced = block_sum(forced, dred);
    const double target = Cfg::TAU * total;
    // Largest bit pattern x with forced + sum(candidates >= x) >= target.
    unsigned cut;   // candidates with bits > cut are kept
    long long need; // ... and the first `need` with bits == cut
    auto massAtLeast = [&](unsigned x) {
      double s = 0.0;
      for (int t = lo; t < hi; ++t)
        if (kind(t) == 2 && bits(t) >= x)
          s += score[t];
      return forced + block_sum(s, dred);
    };
    if (forced >= target) {
      cut = 0xffffffffu, need = 0; // nothing beyond the forced tokens
    } else if (massAtLeast(0u) < target) {
      cut = 0u, need = 1ll << 40; // rounding: keep every candidate
    } else {
      unsigned a = 0u, z = 0x7f800001u; // massAtLeast(a) >= target > massAtLeast(z)
      while (z - a > 1u) {
        unsigned m = a + (z - a) / 2;
        if (massAtLeast(m) >= target)
          a = m;
        else
          z = m;
      }
      cut = a;
      double acc = massAtLeast(a + 1u);
      int eq = 0;
      for (int t = lo; t < hi; ++t)
        eq += kind(t) == 2 && bits(t) == cut;
      int eqTotal;
      block_exclusive_scan(eq, ired, eqTotal);
      // The tokens equal to the cut, added one at a time as the reference does.
      double v = __uint_as_float(cut);
      long long n = 0;
      while (acc < target && n < eqTotal)
        acc += v, ++n;
      need = n;
    }
    // Keep flags in index order: forced, above the cut, or among the first
    // `need` tokens equal to it.
    int eq = 0, certain = 0;
    for (int t = lo; t < hi; ++t) {
      int k = kind(t);
      if (k < 2 || bits(t) > cut)
        ++certain;
      else if (bits(t) == cut)
        ++eq;
    }
    int eqTotal, keptTotal;
    int eqBefore = block_exclusive_scan(eq, ired, eqTotal);
    long long eqKeep = need - eqBefore;
    eqKeep = eqKeep < 0 ? 0 : (eqKeep > eq ? eq : eqKeep);
    int at = block_exclusive_scan(certain + static_cast<int>(eqKeep), ired, keptTotal);
    int *out = p.tok_idx + row * Skv;
    int eqSeen = 0;
    for (int t = lo; t < hi; ++t) {
      int k = kind(t);
      bool keep = k < 2 || bits(t) > cut;
      if (!keep && bits(t) == cut)
        keep = eqSeen++ < eqKeep;
      if (keep)
        out[at++] = t;
    }
    if (tid == 0)
      p.tok_counts[row] = keptTotal;
  }
};

/// Copies rows of D 16-bit elements: entry e of [e0, e1) from source row
/// src(e) of k and v to destination row dst0 + e. Each thread moves
/// 16-byte chunks; all sources of a pass are read before any store.
template <class Cfg> struct Compact {
  static constexpr int D = Cfg::HEAD_DIM, CPR = D / 8, NT = kCompactThreads;
  static_assert(D % 8 == 0, "kv_compact: head dim must be a multiple of 8");

  __device__ static void copy(const Tensor4 &t, const u16 *src, u16 *dst, i64 srcRow, i64 dstRow,
                              int k, bool vec) {
    const u16 *s = src + srcRow * t.ss + k * 8;
    u16 *d = dst + dstRow * D + k * 8;
    if (vec) {
      *reinterpret_cast<uint4 *>(d) = __ldg(reinterpret_cast<const uint4 *>(s));
    } else {
#pragma unroll
      for (int x = 0; x < 8; ++x)
        d[x] = s[x];
    }
  }

  __device__ static void run(const KvCompactParams &p) {
    const int hk = blockIdx.y, b = blockIdx.z, tid = threadIdx.x;
    const i64 row = static_cast<i64>(b) * Cfg::KV_HEADS + hk;
    const bool append = p.tok_idx == nullptr;
    int e0, e1;
    i64 dst0 = p.rag_off[row];
    const int *idx = nullptr;
    if (append) {
      e0 = 0, e1 = p.k.S;
      dst0 += p.rag_len[row];
    } else {
      const int n = min(max(p.tok_counts[row], 0), p.tok_cap);
      e0 = min(n, static_cast<int>(blockIdx.x) * kCompactRows);
      e1 = min(n, e0 + kCompactRows);
      idx = p.tok_idx + row * p.tok_cap;
    }
    const u16 *kSrc = static_cast<const u16 *>(p.k.ptr) + b * p.k.sb + hk * p.k.sh;
    const u16 *vSrc = static_cast<const u16 *>(p.v.ptr) + b * p.v.sb + hk * p.v.sh;
    u16 *kDst = static_cast<u16 *>(p.out_k), *vDst = static_cast<u16 *>(p.out_v);
    const bool kVec = rows_aligned<16>(p.k), vVec = rows_aligned<16>(p.v);
    for (int c = e0 * CPR + tid; c < e1 * CPR; c += NT) {
      const int e = c / CPR, k = c % CPR;
      const i64 src = idx ? __ldg(idx + e) : e;
      copy(p.k, kSrc, kDst, src, dst0 + e, k, kVec);
      copy(p.v, vSrc, vDst, src, dst0 + e, k, vVec);
    }
    if (append) {
      __syncthreads(); // every thread has read rag_len
      if (tid == 0)
        p.rag_len[row] += p.k.S;
    }
  }
};

} // namespace slim_detail

/// sattn.kv_slim, phase 2: per-token scores. Launch: see kSlimThreads.
template <class Cfg> __device__ void kv_slim_scores(const SlimScoresParams &p) {
  extern __shared__ __align__(16) unsigned char sattn_slim_smem[];
  slim_detail::Scores<Cfg>::run(p, sattn_slim_smem);
}

/// sattn.kv_slim, phase 3: the kept tokens. Launch: see kSlimSelectThreads.
template <class Cfg> __device__ void kv_slim_select(const SlimSelectParams &p) {
  static_assert(Cfg::TAU >= 0.f && Cfg::TAU <= 1.f, "kv_slim: TAU must lie in [0, 1]");
  __shared__ double dred[kSlimSelectThreads / 32];
  __shared__ int ired[kSlimSelectThreads / 32];
  slim_detail::Select<Cfg>{p}.run(dred, ired);
}

/// Program::slim's compaction and SlimCache::append. Launch: see
/// KvCompactParams.
template <class Cfg> __device__ void kv_compact(const KvCompactParams &p) {
  slim_detail::Compact<Cfg>::run(p);
}

} // namespace dev
} // namespace sattn

#endif // __CUDACC__

#endif // SATTN_DEVICE_KV_SLIM_CUH
