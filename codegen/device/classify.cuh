//===- classify.cuh - OmniSparse lazy / active query rows (semantics §10) -===//
//
// classify_queries<Cfg>: the query set of sattn.classify_queries, from the
// mean-pooled keys a `pool` launch wrote just before. One launch:
//
//   1. per row an online softmax over the visible key groups
//      (t * KEY_GROUP <= i') that also sums the near groups (sinks or the
//      local window), so the row's near mass is near / total without a
//      second pass. The lazy flag goes to a workspace byte per row.
//      Head dims that are multiples of 16 (up to 256) use tensor cores:
//      each warp holds 16 rows of Q as mma.m16n8k16 A fragments, the CTA
//      stages tiles of pooled keys (double-buffered, cp.async) that `pool`
//      already split into two 16-bit halves (k = hi + lo, hi = k rounded to
//      the input type; split_mma.cuh), and
//      S = Q.hi^T + Q.lo^T in fp32 keeps the logits within ~1e-5 of fp32
//      (Q itself is exact in 16 bits). Other head dims: one lane per key
//      group on CUDA cores.
//   2. the last CTA of a (batch, head) to finish (an atomic counter, zero at
//      launch) numbers the lazy rows in order, keeps every KEEP_EVERY-th of
//      them active, and writes the active rows ascending with their count.
//
// fp32 accumulation (the reference is float64): a row whose mass sits
// within ~1e-5 of THETA can classify differently; the GPU tests allow
// exactly those (rows within 1e-4).
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_DEVICE_CLASSIFY_CUH
#define SATTN_DEVICE_CLASSIFY_CUH

#include "params.cuh"

namespace sattn {
namespace dev {

/// Launch contract: blockDim kClassifyThreads, grid (cdiv(Sq,
/// classify_rows(HEAD_DIM)), Hq, B), classify_smem_bytes(HEAD_DIM) bytes of
/// dynamic shared memory.
/// Two CTAs per SM (<= 128 registers), so one CTA's barrier waits overlap
/// the other's math.
enum : int { kClassifyThreads = 256, kClassifyMinBlocks = 2 };

/// Whether classify_queries uses tensor cores for this head dim.
constexpr bool classify_mma(int headDim) { return headDim % 16 == 0 && headDim <= 256; }
/// Query rows per CTA: 16 per warp (tensor cores) or 4 per warp.
constexpr int classify_rows(int headDim) {
  return classify_mma(headDim) ? kClassifyThreads / 2 : kClassifyThreads / 8;
}
/// Pooled keys per shared-memory tile (tensor cores).
constexpr int classify_key_tile(int headDim) { return headDim <= 128 ? 64 : 32; }
/// Dynamic shared memory: two stages of the key tile as 16-bit hi and lo
/// halves, rows padded by 8 values (tensor cores); none on CUDA cores.
constexpr int classify_smem_bytes(int headDim) {
  return classify_mma(headDim) ? 2 * 2 * classify_key_tile(headDim) * (headDim + 8) * 2 : 0;
}

} // namespace dev
} // namespace sattn

#if defined(__CUDACC__)

#include "ptx.cuh"
#include "split_mma.cuh"
#include "types.cuh"

namespace sattn {
namespace dev {
namespace classify_detail {

/// Online (max, total, near) merge of two partial softmax sums, logits in
/// the log2 domain (scaled by log2 e: ex2 instead of exp).
__device__ __forceinline__ void merge(float &m, float &l, float &n, float m2, float l2, float n2) {
  float M = fmaxf(m, m2);
  if (M == neg_inf())
    return;
  float a = ptx::ex2(m - M), c = ptx::ex2(m2 - M);
  l = l * a + l2 * c;
  n = n * a + n2 * c;
  m = M;
}

/// Whether key group t is near row position ip (sinks or the local window).
template <class Cfg> __device__ __forceinline__ bool near_group(int t, int ip, int Skv) {
  return t * Cfg::KEY_GROUP < Cfg::SINKS ||
         min((t + 1) * Cfg::KEY_GROUP, Skv) - 1 > ip - Cfg::WINDOW;
}

/// The softmax scale in the log2 domain.
template <class Cfg> constexpr float scale_log2() {
  return static_cast<float>(Cfg::SCALE) * 1.4426950408889634f;
}

/// Step 1 on tensor cores: rows [r0, r1) of (b, h), 16 per warp; the
/// lazy flag of each. See the file comment.
template <class Cfg>
__device__ __forceinline__ void classify_rows_mma(const ClassifyParams &p, int b, int h, int r0,
                                                  int r1, unsigned char *lazy) {
  using namespace ptx;
  constexpr int D = Cfg::HEAD_DIM, KD = D / 16, NT = kClassifyThreads;
  constexpr int NK = classify_key_tile(D), LD = D + 8; // padded rows: conflict-free ldmatrix
  constexpr DType T = Cfg::DTYPE;
  // Two stages of the key tile, each as hi and lo halves [NK][LD].
  extern __shared__ __align__(16) unsigned short sattn_classify_smem[];
  unsigned short *tiles = sattn_classify_smem;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane >> 2, tq = lane & 3;
  const int hk = h / (Cfg::HEADS / Cfg::KV_HEADS), Sq = p.q.S, Skv = p.Skv;
  // The pooled keys as split by `pool` (SPLIT): hi [B, KV_HEADS, nG, D],
  // then lo of the same shape.
  const unsigned short *khiG = reinterpret_cast<const unsigned short *>(p.kp);
  const unsigned short *kloG = khiG + static_cast<i64>(gridDim.z) * Cfg::KV_HEADS * p.nG * D;
  const i64 head = (static_cast<i64>(b) * Cfg::KV_HEADS + hk) * p.nG * D;
  // This warp's rows and their A fragments (zero past the end).
  const int wr = r0 + warp * 16;
  u32 qa[KD][4];
#pragma unroll
  for (int kk = 0; kk < KD; ++kk)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int i = wr + g + (e & 1) * 8, d = kk * 16 + 2 * tq + (e >> 1) * 8;
      float x0 = 0.f, x1 = 0.f;
      if (i < r1) {
        x0 = load_elem<T>(p.q.ptr, offset(p.q, b, h, i, d));
        x1 = load_elem<T>(p.q.ptr, offset(p.q, b, h, i, d + 1));
      }
      qa[kk][e] = pack2<T>(x0, x1);
    }
  int ip[2], vis[2];
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    ip[hh] = wr + g + 8 * hh + Skv - Sq;
    vis[hh] = wr + g + 8 * hh >= r1 || ip[hh] < 0 ? 0 : min(p.nG, ip[hh] / Cfg::KEY_GROUP + 1);
  }
  float m[2] = {neg_inf(), neg_inf()}, l[2] = {0.f, 0.f}, n[2] = {0.f, 0.f};
  // Key groups any row of the CTA sees (rows ascending: the last one's).
  const int ipLast = r1 - 1 + Skv - Sq;
  const int tEnd = ipLast < 0 ? 0 : min(p.nG, ipLast / Cfg::KEY_GROUP + 1);
  // Double-buffered: the next tile is copied (cp.async) during this one's math.
  auto stage = [&](int it) { return tiles + (it & 1) * 2 * NK * LD; };
  if (tEnd > 0)
    split_mma::prefetch_halves<NK, D, NT>(khiG + head, kloG + head, 0, tEnd, stage(0),
                                          stage(0) + NK * LD);
  for (int t0 = 0, it = 0; t0 < tEnd; t0 += NK, ++it) {
    cp_async_wait_all();
    __syncthreads(); // tile `it` has landed; every warp is done with the one before
    if (t0 + NK < tEnd)
      split_mma::prefetch_halves<NK, D, NT>(khiG + head, kloG + head, t0 + NK, tEnd, stage(it + 1),
                                            stage(it + 1) + NK * LD);
    const unsigned short *khi = stage(it), *klo = stage(it) + NK * LD;
    // No row of this warp sees this tile (nor, rows ascending, the rest).
    if (__all_sync(0xffffffffu, t0 >= vis[0] && t0 >= vis[1]))
      continue;
    float acc[NK / 8][4];
    split_mma::logits<T, NK, D, false>(acc, qa, qa, khi, klo);
    // Per row half: the tile's max first, so the running sums are rescaled
    // once per tile rather than per logit. Most tiles are fully visible to
    // the row and far from it (no sink, outside the window): those take a
    // path with no per-key tests.
    constexpr float SL2 = scale_log2<Cfg>();
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const int v = vis[hh];
      if (t0 >= v)
        continue; // this row sees none of the tile's keys
      const bool plain = t0 + NK <= v && t0 * Cfg::KEY_GROUP >= Cfg::SINKS &&
                         min((t0 + NK) * Cfg::KEY_GROUP, Skv) - 1 <= ip[hh] - Cfg::WINDOW;
      float tm = neg_inf();
#pragma unroll
      for (int j = 0; j < NK / 8; ++j)
#pragma unroll
        for (int x = 0; x < 2; ++x)
          if (plain || t0 + j * 8 + 2 * tq + x < v)
            tm = fmaxf(tm, acc[j][2 * hh + x]);
      if (tm == neg_inf())
        continue; // this lane's keys of the tile are all past the row
      tm *= SL2;  // the scale is positive: the max commutes with it
      if (tm > m[hh]) {
        const float a = ex2(m[hh] - tm); // 0 on the first visible tile
        l[hh] *= a, n[hh] *= a, m[hh] = tm;
      }
      const float mh = m[hh];
      float l0 = 0.f, l1 = 0.f, nn = 0.f;
      if (plain) {
#pragma unroll
        for (int j = 0; j < NK / 8; ++j) {
          l0 += ex2(fmaf(acc[j][2 * hh], SL2, -mh));
          l1 += ex2(fmaf(acc[j][2 * hh + 1], SL2, -mh));
        }
      } else {
#pragma unroll
        for (int j = 0; j < NK / 8; ++j)
#pragma unroll
          for (int x = 0; x < 2; ++x) {
            const int t = t0 + j * 8 + 2 * tq + x;
            if (t < v) {
              const float e = ex2(fmaf(acc[j][2 * hh + x], SL2, -mh));
              l0 += e;
              nn += near_group<Cfg>(t, ip[hh], Skv) ? e : 0.f;
            }
          }
      }
      l[hh] += l0 + l1;
      n[hh] += nn;
    }
  }
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    for (int o = 1; o < 4; o <<= 1) {
      float m2 = __shfl_xor_sync(0xffffffffu, m[hh], o),
            l2 = __shfl_xor_sync(0xffffffffu, l[hh], o),
            n2 = __shfl_xor_sync(0xffffffffu, n[hh], o);
      classify_detail::merge(m[hh], l[hh], n[hh], m2, l2, n2);
    }
    const int i = wr + g + 8 * hh;
    if (tq == 0 && i < r1) {
      float mass = l[hh] > 0.f ? n[hh] / l[hh] : 0.f;
      lazy[i] = mass >= static_cast<float>(Cfg::THETA) ? 1 : 0;
    }
  }
}

/// Step 1 on CUDA cores (head dims that are not multiples of 16, or > 256):
/// a warp per row, a lane per key group.
template <class Cfg>
__device__ __forceinline__ void classify_rows_simt(const ClassifyParams &p, int b, int h, int r0,
                                                   int r1, unsigned char *lazy) {
  constexpr int D = Cfg::HEAD_DIM, NW = kClassifyThreads / 32;
  __shared__ float qs[NW][D];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int hk = h / (Cfg::HEADS / Cfg::KV_HEADS), Sq = p.q.S, Skv = p.Skv;
  const float *kp = p.kp + (static_cast<i64>(b) * Cfg::KV_HEADS + hk) * p.nG * D;
  for (int i = r0 + warp; i < r1; i += NW) {
    for (int d = lane; d < D; d += 32)
      qs[warp][d] = load_elem<Cfg::DTYPE>(p.q.ptr, offset(p.q, b, h, i, d));
    __syncwarp();
    const int ip = i + Skv - Sq;
    const int vis = ip < 0 ? 0 : min(p.nG, ip / Cfg::KEY_GROUP + 1);
    float m = neg_inf(), l = 0.f, n = 0.f;
    for (int t = lane; t < vis; t += 32) {
      const float *kr = kp + static_cast<i64>(t) * D;
      float s = 0.f;
#pragma unroll 8
      for (int d = 0; d < D; ++d)
        s = fmaf(qs[warp][d], kr[d], s);
      s *= scale_log2<Cfg>();
      classify_detail::merge(m, l, n, s, 1.f, near_group<Cfg>(t, ip, Skv) ? 1.f : 0.f);
    }
    for (int o = 16; o > 0; o >>= 1) {
      float m2 = __shfl_xor_sync(0xffffffffu, m, o), l2 = __shfl_xor_sync(0xffffffffu, l, o),
            n2 = __shfl_xor_sync(0xffffffffu, n, o);
      classify_detail::merge(m, l, n, m2, l2, n2);
    }
    if (lane == 0) {
      float mass = l > 0.f ? n / l : 0.f;
      lazy[i] = mass >= static_cast<float>(Cfg::THETA) ? 1 : 0;
    }
    __syncwarp();
  }
}

} // namespace classify_detail

/// sattn.classify_queries. Launch: see kClassifyThreads.
template <class Cfg> __device__ void classify_queries(const ClassifyParams &p) {
  constexpr int D = Cfg::HEAD_DIM, NT = kClassifyThreads, NW = NT / 32, ROWS = classify_rows(D);
  static_assert(Cfg::KEY_GROUP > 0 && Cfg::WINDOW >= 0 && Cfg::SINKS >= 0 && Cfg::KEEP_EVERY >= 0,
                "classify_queries: KEY_GROUP > 0 and WINDOW, SINKS, KEEP_EVERY >= 0");
  __shared__ int red[NW];
  __shared__ int lastFlag;
  const int tid = threadIdx.x, h = blockIdx.y, b = blockIdx.z, Sq = p.q.S;
  const i64 bh = static_cast<i64>(b) * Cfg::HEADS + h;
  unsigned char *lazy = p.lazy + bh * Sq;
  const int r0 = blockIdx.x * ROWS, r1 = min(Sq, r0 + ROWS);
  if constexpr (classify_mma(D))
    classify_detail::classify_rows_mma<Cfg>(p, b, h, r0, r1, lazy);
  else
    classify_detail::classify_rows_simt<Cfg>(p, b, h, r0, r1, lazy);

  // The last CTA of this (b, h) numbers the lazy rows and writes the set.
  __threadfence();
  __syncthreads();
  if (tid == 0)
    lastFlag = atomicAdd(p.done + bh, 1) == static_cast<int>(gridDim.x) - 1;
  __syncthreads();
  if (!lastFlag)
    return;
  __threadfence();
  const volatile unsigned char *flags = lazy;
  const int per = (Sq + NT - 1) / NT, lo = min(Sq, tid * per), hi = min(Sq, lo + per);
  int nLazy = 0;
  for (int i = lo; i < hi; ++i)
    nLazy += flags[i];
  int lazyTotal, activeTotal;
  int m = block_exclusive_scan(nLazy, red, lazyTotal); // lazy rows before this range
  auto active = [&](int i, int &lazySeen) {
    if (!flags[i])
      return true;
    bool keep = Cfg::KEEP_EVERY > 0 && lazySeen % Cfg::KEEP_EVERY == Cfg::KEEP_EVERY - 1;
    ++lazySeen;
    return keep;
  };
  int nActive = 0, seen = m;
  for (int i = lo; i < hi; ++i)
    nActive += active(i, seen);
  int at = block_exclusive_scan(nActive, red, activeTotal);
  int *rows = p.q_rows + bh * Sq;
  seen = m;
  for (int i = lo; i < hi; ++i)
    if (active(i, seen))
      rows[at++] = i;
  if (tid == 0)
    p.q_counts[bh] = activeTotal;
}

} // namespace dev
} // namespace sattn

#endif // __CUDACC__

#endif // SATTN_DEVICE_CLASSIFY_CUH
