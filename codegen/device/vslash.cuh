//===- vslash.cuh - MInference token-level vertical-slash (§12b) ----------===//
//
// sattn.vslash runs as the phases of vertical_slash.cuh that compute the
// lines of the last queries (<name>_stats, _lse, _lines, _slash: the same
// device code as FlexPrefill's) and then its own kernel:
//   vslash  per (batch, head) one CTA: the kept columns and slashes (a
//           count cut over each line: prefix_cut<COUNT>, forced entries
//           first, ties to the lower index, no sort), written ascending,
//           and the slashes merged into distance intervals [d, d + BQ).
// An attention given the set first gathers the kept columns' K and V into
// contiguous per-head rows (vslash_gather, a companion of the attention
// launch), so its key loop reads bands and columns alike as contiguous
// tiles (attention_common.cuh, vslash schedule).
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_DEVICE_VSLASH_CUH
#define SATTN_DEVICE_VSLASH_CUH

#include "params.cuh"
#include "vertical_slash.cuh"

namespace sattn {
namespace dev {

/// Launch contracts. vslash: grid (Hq, B), kVsPickThreads threads, no
/// dynamic smem; the line phases as in vertical_slash.cuh.
/// vslash_gather: grid (cdiv(nv * HEAD_DIM / 8, kVsGatherThreads), Hq, B).
enum : int { kVsGatherThreads = 256 };

} // namespace dev
} // namespace sattn

#if defined(__CUDACC__)

namespace sattn {
namespace dev {

template <class Cfg> struct VSlashChecks {
  static_assert(Cfg::LAST >= 1 && Cfg::LAST <= 1024, "vslash: LAST must lie in [1, 1024]");
  static_assert(Cfg::VERTICAL >= 0 && Cfg::SLASH >= 0 && Cfg::SINK_COLUMNS >= 0 &&
                    Cfg::LOCAL_SLASHES >= 1 && Cfg::BQ >= 1,
                "vslash: VERTICAL, SLASH, SINK_COLUMNS >= 0, LOCAL_SLASHES, BQ >= 1");
  static constexpr bool ok = true;
};

namespace vs_detail {

/// Writes the kept entries of [0, n) ascending to out (the thread chunks of
/// prefix_cut, so each thread writes one run); returns how many.
template <class Keep> __device__ int compact(int n, int *out, int *ired, Keep keep) {
  const int per = (n + blockDim.x - 1) / blockDim.x, lo = min(n, int(threadIdx.x) * per),
            hi = min(n, lo + per);
  int cnt = 0;
  for (int t = lo; t < hi; ++t)
    cnt += keep(t);
  int total;
  int at = block_exclusive_scan(cnt, ired, total);
  for (int t = lo; t < hi; ++t)
    if (keep(t))
      out[at++] = t;
  return total;
}

} // namespace vs_detail

/// Per (batch, head): columns C and the distance intervals of §12b.
template <class Cfg> __device__ void vslash(const VsParams &p) {
  static_assert(VSlashChecks<Cfg>::ok, "");
  __shared__ double dred[kVsPickThreads / 32];
  __shared__ int ired[kVsPickThreads / 32];
  const int h = blockIdx.x, b = blockIdx.y;
  const int Skv = p.k.S;
  const i64 head = static_cast<i64>(b) * Cfg::HEADS + h;
  for (int which = 0; which < 2; ++which) {
    const float *x = (which ? p.slash : p.vert) + head * Skv;
    const int F = min(which ? Cfg::LOCAL_SLASHES : Cfg::SINK_COLUMNS, Skv);
    const int n = which ? p.ns : p.nv; // min(Skv, max(count, forced)), from the host
    auto val = [&](int t) { return fmaxf(x[t], 0.f); };
    vs_detail::Cut c = vs_detail::prefix_cut<true>(
        Skv,
        [&](int t, float &v) {
          v = val(t);
          return t < F ? 1 : 2;
        },
        [&](double, double) { return static_cast<double>(n - F); }, dred, ired);
    auto keep = [&](int t) {
      if (t < F)
        return true;
      const unsigned bits = __float_as_uint(val(t));
      return bits > c.cut || (bits == c.cut && t <= c.tieLast);
    };
    vs_detail::compact(Skv, (which ? p.dlist : p.cols) + head * n, ired, keep);
  }
  // Intervals: a kept distance starts one unless it lies within BQ of the
  // previous kept distance (touching bands merge).
  __syncthreads(); // the distances written above are visible to the block
  const int *d = p.dlist + head * p.ns;
  const int m = p.ns, per = (m + blockDim.x - 1) / blockDim.x;
  const int lo = min(m, int(threadIdx.x) * per), hi = min(m, lo + per);
  auto starts = [&](int k) { return k == 0 || d[k] > d[k - 1] + Cfg::BQ; };
  int cnt = 0;
  for (int k = lo; k < hi; ++k)
    cnt += starts(k);
  int total;
  int at = block_exclusive_scan(cnt, ired, total);
  int *ivl = p.ivl + head * p.ns * 2;
  for (int k = lo; k < hi; ++k) {
    if (starts(k))
      ivl[2 * at++] = d[k];
    if (k == m - 1 || starts(k + 1))
      ivl[2 * (at - 1) + 1] = d[k] + Cfg::BQ;
  }
  if (threadIdx.x == 0)
    p.ivl_count[head] = total;
}

/// An attention's vertical-slash columns: kc / vc[b, h, c, :] = k / v[b,
/// h / G, cols[c], :] (Cfg: the attention's).
template <class Cfg> __device__ void vslash_gather(const AttnParams &p) {
  constexpr int D = Cfg::HEAD_DIM, CPR = D / 8, G = Cfg::HEADS / Cfg::KV_HEADS;
  const int h = blockIdx.y, b = blockIdx.z, nv = p.vs.nv;
  const int idx = blockIdx.x * kVsGatherThreads + threadIdx.x;
  if (idx >= nv * CPR)
    return;
  const int c = idx / CPR, ch = idx % CPR;
  const i64 bh = static_cast<i64>(b) * Cfg::HEADS + h;
  const int j = p.vs.cols[bh * nv + c];
  const i64 dst = (bh * nv + c) * D + ch * 8;
  const Tensor4 *src[2] = {&p.k, &p.v};
  void *dstBase[2] = {p.vs.kc, p.vs.vc};
  for (int w = 0; w < 2; ++w) {
    const ptx::u16 *s = static_cast<const ptx::u16 *>(src[w]->ptr) +
                        offset(*src[w], b, h / G, j, ch * 8);
    ptx::u16 *o = static_cast<ptx::u16 *>(dstBase[w]) + dst;
#pragma unroll
    for (int e = 0; e < 8; ++e)
      o[e] = s[e];
  }
}

} // namespace dev
} // namespace sattn

#endif // __CUDACC__

#endif // SATTN_DEVICE_VSLASH_CUH
