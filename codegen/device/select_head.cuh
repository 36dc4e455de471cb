//===- select_head.cuh - head-wide cumulative selection (§6 `per head`) ---===//
//
// select_blocks cumulative ... per head keeps, per (batch, head), the
// shortest prefix of the head's whole nQB x nKB grid (scores by descending
// value, ties by ascending flat index) whose mass with the forced blocks
// reaches tau of the visible mass. A head's grid has up to ~10^6 entries at
// 128k tokens, so the prefix is found by a radix select spread over the GPU
// instead of one CTA per head:
//
//   _hist   (pass 0..3) grid (nChunks, H, B): each CTA histograms one chunk
//           of the grid by the next 8 bits of the score's bit pattern
//           (scores are >= 0, so bit order is value order), among the
//           candidates whose higher bits equal the prefix found so far;
//           pass 0 also sums the chunk's visible and forced mass;
//   _digit  (pass 0..3) grid (H, B): sums the chunks' histograms and walks
//           the bins from the top until the mass reaches tau: that bin is
//           the next 8 bits of the cut (the smallest kept value). After
//           pass 3 the cut is exact and the number of entries equal to it
//           that the prefix needs is known;
//   _tie    grid (nChunks, H, B): per chunk the entries equal to the cut
//           (only when some but not all of them are kept);
//   _tielast grid (H, B): the flat index of the last kept one;
//   <name>  grid (nQB, H, B): row I of the block set.
// Every sum runs in a fixed order (lanes of a warp in lane order, then the
// warps, then the chunks, then the bins): the same bits on every run, no
// float atomics. Four passes read the grid four times; the CTA-per-head
// binary search it replaces read it ~33 times on 32 CTAs (16.7 ms at 128k,
// docs/performance.md 2026-12-05).
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_DEVICE_SELECT_HEAD_CUH
#define SATTN_DEVICE_SELECT_HEAD_CUH

#include "params.cuh"

#if defined(__CUDACC__)
#define SATTN_SH_HD __host__ __device__
#else
#define SATTN_SH_HD
#endif

namespace sattn {
namespace dev {

enum : int {
  kSelHeadThreads = 256, ///< every kernel of select_head.cuh; one thread per bin
  kSelHeadBins = 256,    ///< 8 bits per pass
  kSelHeadPasses = 4,
  kSelHeadStride = kSelHeadBins + 2, ///< doubles per chunk: bins, visible and forced mass
  kSelHeadChunkMin = 16384,          ///< entries per chunk at least
  kSelHeadChunksMax = 64,
};

/// Chunks per head for a grid of n entries (the launcher sizes its workspace
/// with it: masses [B, H, chunks, kSelHeadStride] doubles, counts [B, H,
/// chunks, kSelHeadBins] ints, state [B, H, 4] doubles and ints).
SATTN_SH_HD constexpr int sel_head_chunks(long long n) {
  const long long c = (n + kSelHeadChunkMin - 1) / kSelHeadChunkMin;
  return c < 1 ? 1 : (c > kSelHeadChunksMax ? kSelHeadChunksMax : static_cast<int>(c));
}

} // namespace dev
} // namespace sattn

#if defined(__CUDACC__)

#include "masks.cuh"
#include "types.cuh"
#include "vertical_slash.cuh" // vs_detail::write_row

namespace sattn {
namespace dev {
namespace sh_detail {

/// State of one head's search in p.hstate / p.istate.
enum : int { kSearching = 0, kResolved = 1, kNeedsTie = 2 };

/// Entry x of a head's grid: 0 absent (not visible), 1 forced, 2 candidate;
/// v >= 0 its score.
template <class Cfg>
__device__ __forceinline__ int entry(const SelectParams &p, const float *grid, int x, float &v) {
  const int I = x / p.nKB, J = x % p.nKB;
  if (J >= visible_blocks(Cfg::CAUSAL, I, Cfg::BQ, Cfg::BK, p.Sq, p.Skv, p.nKB))
    return 0;
  v = fmaxf(grid[x], 0.f);
  const int dk = diagonal_key(I, Cfg::BQ, p.Sq, p.Skv);
  return forced_block(J, dk >= 0 ? dk / Cfg::BK : -1, Cfg::F_SINK, Cfg::F_LOCAL, Cfg::F_DIAG) ? 1
                                                                                              : 2;
}

/// [lo, hi) of chunk c of n entries.
__device__ __forceinline__ void chunk_range(int n, int nChunks, int c, int &lo, int &hi) {
  const int per = (n + nChunks - 1) / nChunks;
  lo = min(n, c * per), hi = min(n, lo + per);
}

__device__ __forceinline__ void resolve(const SelectParams &p, i64 head, unsigned cut, int tieLast) {
  p.cut[head * 2] = static_cast<int>(cut);
  p.cut[head * 2 + 1] = tieLast;
  p.istate[head * 4] = kResolved;
}

} // namespace sh_detail

/// Pass p.pass of the radix select: chunk blockIdx.x's histogram.
template <class Cfg> __device__ void select_cumulative_head_hist(const SelectParams &p) {
  static_assert(Cfg::TAU >= 0 && Cfg::TAU <= 1, "cumulative selection: TAU must lie in [0, 1]");
  constexpr int NW = kSelHeadThreads / 32;
  __shared__ double wm[NW][kSelHeadBins];
  __shared__ int wc[NW][kSelHeadBins];
  __shared__ double dred[NW];
  const int chunk = blockIdx.x, h = blockIdx.y, b = blockIdx.z, tid = threadIdx.x;
  const int warp = tid / 32, lane = tid % 32, pass = p.pass;
  const i64 head = static_cast<i64>(b) * Cfg::HEADS + h;
  if (pass > 0 && p.istate[head * 4] != sh_detail::kSearching)
    return; // uniform over the CTA
  const int n = p.nQB * p.nKB;
  int lo, hi;
  sh_detail::chunk_range(n, p.nChunks, chunk, lo, hi);
  const float *grid = p.scores + head * p.nQB * p.nKB;
  const int shift = 24 - 8 * pass;
  const unsigned prefix = pass ? static_cast<unsigned>(p.istate[head * 4 + 1]) : 0u;
  const unsigned hiMask = pass ? (0xffffffffu << (shift + 8)) : 0u;
  for (int i = lane; i < kSelHeadBins; i += 32)
    wm[warp][i] = 0.0, wc[warp][i] = 0;
  __syncwarp();
  double visible = 0.0, forced = 0.0;
  for (int base = lo + warp * 32; base < hi; base += NW * 32) { // uniform per warp
    const int x = base + lane;
    int d = -1;
    float v = 0.f;
    if (x < hi) {
      const int k = sh_detail::entry<Cfg>(p, grid, x, v);
      if (k > 0)
        visible += v;
      if (k == 1)
        forced += v;
      const unsigned bits = __float_as_uint(v);
      if (k == 2 && (bits & hiMask) == (prefix & hiMask))
        d = static_cast<int>((bits >> shift) & (kSelHeadBins - 1));
    }
    // Lanes with the same bin: every lane sums its group in lane order,
    // the group's first lane adds it to the warp's bin.
    const unsigned grp = __match_any_sync(0xffffffffu, d);
    double s = 0.0;
    for (int l = 0; l < 32; ++l) {
      const double y = __shfl_sync(0xffffffffu, static_cast<double>(v), l);
      if ((grp >> l) & 1u)
        s += y;
    }
    if (d >= 0 && lane == __ffs(grp) - 1)
      wm[warp][d] += s, wc[warp][d] += __popc(grp);
    __syncwarp();
  }
  __syncthreads();
  double *out = p.hmass + (head * p.nChunks + chunk) * kSelHeadStride;
  int *cnt = p.hcount + (head * p.nChunks + chunk) * kSelHeadBins;
  for (int i = tid; i < kSelHeadBins; i += kSelHeadThreads) {
    double m = 0.0;
    int c = 0;
    for (int w = 0; w < NW; ++w)
      m += wm[w][i], c += wc[w][i];
    out[i] = m, cnt[i] = c;
  }
  if (pass == 0) {
    visible = block_sum(visible, dred);
    forced = block_sum(forced, dred);
    if (tid == 0)
      out[kSelHeadBins] = visible, out[kSelHeadBins + 1] = forced;
  }
}

/// Pass p.pass: the next 8 bits of the cut of head (blockIdx.y, blockIdx.x).
template <class Cfg> __device__ void select_cumulative_head_digit(const SelectParams &p) {
  __shared__ double bm[kSelHeadBins];
  __shared__ int bc[kSelHeadBins];
  const int h = blockIdx.x, b = blockIdx.y, tid = threadIdx.x, pass = p.pass;
  const i64 head = static_cast<i64>(b) * Cfg::HEADS + h;
  if (pass > 0 && p.istate[head * 4] != sh_detail::kSearching)
    return;
  const double *hm = p.hmass + head * p.nChunks * kSelHeadStride;
  const int *hc = p.hcount + head * p.nChunks * kSelHeadBins;
  for (int i = tid; i < kSelHeadBins; i += kSelHeadThreads) {
    double m = 0.0;
    int c = 0;
    for (int ch = 0; ch < p.nChunks; ++ch)
      m += hm[ch * kSelHeadStride + i], c += hc[ch * kSelHeadBins + i];
    bm[i] = m, bc[i] = c;
  }
  __syncthreads();
  if (tid != 0)
    return;
  double *hs = p.hstate + head * 4;
  int *is = p.istate + head * 4;
  if (pass == 0) {
    double visible = 0.0, forced = 0.0, cand = 0.0;
    for (int ch = 0; ch < p.nChunks; ++ch)
      visible += hm[ch * kSelHeadStride + kSelHeadBins],
          forced += hm[ch * kSelHeadStride + kSelHeadBins + 1];
    for (int i = 0; i < kSelHeadBins; ++i)
      cand += bm[i];
    const double goal = static_cast<double>(Cfg::TAU) * visible;
    hs[0] = goal, hs[1] = forced, hs[2] = forced; // goal, forced, mass kept above the prefix
    is[0] = sh_detail::kSearching, is[1] = 0;
    if (forced >= goal) // the forced blocks alone reach it: no candidate
      return sh_detail::resolve(p, head, 0xffffffffu, -1);
    if (forced + cand < goal) // rounding: every candidate (ties at 0 too)
      return sh_detail::resolve(p, head, 0u, p.nQB * p.nKB);
  }
  const double goal = hs[0];
  double acc = hs[2];
  int d = kSelHeadBins - 1;
  for (; d > 0; --d) { // the top bin whose mass reaches the goal (else bin 0)
    if (acc + bm[d] >= goal)
      break;
    acc += bm[d];
  }
  const int shift = 24 - 8 * pass;
  const unsigned cut = static_cast<unsigned>(is[1]) | (static_cast<unsigned>(d) << shift);
  hs[2] = acc, is[1] = static_cast<int>(cut);
  if (pass + 1 < kSelHeadPasses)
    return;
  // The cut is exact: take the entries equal to it one at a time, as the
  // reference adds them, until the goal is reached.
  const int eqTotal = bc[d];
  const double v = static_cast<double>(__uint_as_float(cut));
  int need = 0;
  while (acc < goal && need < eqTotal)
    acc += v, ++need;
  if (need == 0)
    return sh_detail::resolve(p, head, cut, -1);
  if (need == eqTotal)
    return sh_detail::resolve(p, head, cut, p.nQB * p.nKB);
  is[0] = sh_detail::kNeedsTie, is[2] = need;
}

/// Per chunk, the candidates equal to the cut (only if some are kept).
template <class Cfg> __device__ void select_cumulative_head_tie(const SelectParams &p) {
  __shared__ int ired[kSelHeadThreads / 32];
  const int chunk = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const i64 head = static_cast<i64>(b) * Cfg::HEADS + h;
  if (p.istate[head * 4] != sh_detail::kNeedsTie)
    return;
  const unsigned cut = static_cast<unsigned>(p.istate[head * 4 + 1]);
  const float *grid = p.scores + head * p.nQB * p.nKB;
  int lo, hi;
  sh_detail::chunk_range(p.nQB * p.nKB, p.nChunks, chunk, lo, hi);
  int eq = 0;
  for (int x = lo + threadIdx.x; x < hi; x += kSelHeadThreads) {
    float v = 0.f;
    eq += sh_detail::entry<Cfg>(p, grid, x, v) == 2 && __float_as_uint(v) == cut;
  }
  int total;
  block_exclusive_scan(eq, ired, total);
  if (threadIdx.x == 0)
    p.hcount[(head * p.nChunks + chunk) * kSelHeadBins] = total;
}

/// The flat index of the need-th candidate equal to the cut.
template <class Cfg> __device__ void select_cumulative_head_tielast(const SelectParams &p) {
  __shared__ int ired[kSelHeadThreads / 32];
  __shared__ int where[2];
  const int h = blockIdx.x, b = blockIdx.y, tid = threadIdx.x;
  const i64 head = static_cast<i64>(b) * Cfg::HEADS + h;
  if (p.istate[head * 4] != sh_detail::kNeedsTie)
    return;
  const unsigned cut = static_cast<unsigned>(p.istate[head * 4 + 1]);
  const int need = p.istate[head * 4 + 2];
  if (tid == 0) {
    int before = 0, ch = 0;
    for (; ch < p.nChunks; ++ch) {
      const int c = p.hcount[(head * p.nChunks + ch) * kSelHeadBins];
      if (before + c >= need)
        break;
      before += c;
    }
    where[0] = min(ch, p.nChunks - 1), where[1] = need - before; // rank within the chunk
  }
  __syncthreads();
  int lo, hi;
  sh_detail::chunk_range(p.nQB * p.nKB, p.nChunks, where[0], lo, hi);
  const float *grid = p.scores + head * p.nQB * p.nKB;
  // Contiguous sub-ranges per thread, so ranks follow the flat index.
  const int per = (hi - lo + kSelHeadThreads - 1) / kSelHeadThreads;
  const int a = min(hi, lo + tid * per), z = min(hi, a + per);
  auto isTie = [&](int x) {
    float v = 0.f;
    return sh_detail::entry<Cfg>(p, grid, x, v) == 2 && __float_as_uint(v) == cut;
  };
  int eq = 0;
  for (int x = a; x < z; ++x)
    eq += isTie(x);
  int total;
  int seen = block_exclusive_scan(eq, ired, total);
  const int rank = where[1];
  if (rank > seen && rank <= seen + eq)
    for (int x = a; x < z; ++x)
      if (isTie(x) && ++seen == rank)
        sh_detail::resolve(p, head, cut, x);
}

/// Row I of the block set, from the head's cut.
template <class Cfg> __device__ void select_cumulative_head(const SelectParams &p) {
  const int I = blockIdx.x, h = blockIdx.y, b = blockIdx.z, nKB = p.nKB;
  const i64 head = static_cast<i64>(b) * Cfg::HEADS + h;
  const unsigned cut = static_cast<unsigned>(p.cut[head * 2]);
  const int tieLast = p.cut[head * 2 + 1];
  const float *row = p.scores + (head * p.nQB + I) * nKB;
  const int nV = visible_blocks(Cfg::CAUSAL, I, Cfg::BQ, Cfg::BK, p.Sq, p.Skv, nKB);
  const int dk = diagonal_key(I, Cfg::BQ, p.Sq, p.Skv);
  const int diag = dk >= 0 ? dk / Cfg::BK : -1;
  vs_detail::write_row(p.out, head * p.nQB + I, nV, [&](int J) {
    const unsigned bits = __float_as_uint(fmaxf(row[J], 0.f));
    return forced_block(J, diag, Cfg::F_SINK, Cfg::F_LOCAL, Cfg::F_DIAG) || bits > cut ||
           (bits == cut && I * nKB + J <= tieLast);
  });
}

} // namespace dev
} // namespace sattn

#endif // __CUDACC__

#endif // SATTN_DEVICE_SELECT_HEAD_CUH
