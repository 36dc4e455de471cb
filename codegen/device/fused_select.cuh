//===- fused_select.cuh - block scores fused with their selection ---------===//
//
// Estimation -> budget -> selection without a scores grid in global memory
// (design §4.6, docs/architecture.md "Fused estimation"). The passes fuse a
// `sattn.scores` whose every consumer is a per-row selection — select_blocks
// topk / cumulative per query head, head_budget — into one launch per
// consumer:
//
//   scores_select_topk, scores_select_cumulative, scores_head_budget
//
// A CTA computes the two-pass tensor-core scores (estimation.cuh,
// scores_2pass_rows) of `ipc` consecutive query blocks of one (batch, head)
// into a shared-memory row buffer — the same code, so the same bits as the
// block_scores kernel — with its first four warps, while its other warps
// stage the key tiles into a double buffer (a CTA holding 64 score rows
// fills most of an SM's shared memory, so it is alone on its SM and must
// hide its own load latency). Then all kFusedSelectWarps warps run the
// selection rule of selection.cuh on the rows, one row per warp at a time
// (selection is latency-bound and has no other CTA to overlap with). A
// consumer that needs every head's result first (select_blocks topk with the budget of a
// `head_budget flattest`) is a second launch that recomputes the rows: the
// estimate is cheap next to the attention, and recomputing keeps the grid
// (B x H x nQB x nKB floats, 128 MB at 128k with 32 heads) out of memory.
//
// Fused only where block_scores itself takes the two-pass kernel (fewer
// than kScoresOnePassRows pooled rows per query block, dot-product logits)
// and the selection is per query head; the pass checks this.
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_DEVICE_FUSED_SELECT_CUH
#define SATTN_DEVICE_FUSED_SELECT_CUH

#include "estimation.cuh"

namespace sattn {
namespace dev {

/// Warps of a scores_select CTA: the first kScoresThreads threads compute
/// the scores, then every warp selects rows (selection is latency-bound, one
/// warp per row, and a CTA holding 64 score rows fills most of an SM's
/// shared memory, so its own warps are all the SM has).
enum : int {
  kFusedSelectWarps = kFusedSelectThreads / 32,
  kFusedRadixInts = 256 * 3, ///< a warp's radix scratch (selection.cuh kRadixScratchInts)
};

/// Shared memory of a scores_select CTA over `ipc` query blocks and nKB KV
/// blocks: two key tiles (hi + lo halves; the producer warps fill one while
/// the scores' warps read the other) and the probability tile, which the
/// per-warp radix scratch reuses once the scores are done, then the ipc
/// score rows.
constexpr long long scores_select_tiles_bytes(int headDim) {
  return 2LL * 2 * scores_key_tile(headDim) * (headDim + 8) * 2 +
         static_cast<long long>(kScoresMmaRows) * (scores_key_tile(headDim) + 8) * 4;
}
constexpr long long scores_select_scratch_bytes(int headDim, int nKB) {
  const long long tiles = scores_select_tiles_bytes(headDim);
  const long long select = static_cast<long long>(kFusedSelectWarps) * kFusedRadixInts * 4;
  return tiles > select ? tiles : select;
}
constexpr long long scores_select_smem_bytes(int headDim, int nKB, int ipc) {
  return scores_select_scratch_bytes(headDim, nKB) + static_cast<long long>(ipc) * nKB * 4;
}

/// Query blocks per scores_select CTA: all kScoresMmaRows / rows a
/// CTA's tile holds when their rows fit `limit` bytes of shared memory,
/// fewer when not (long sequences), 0 when not even one row fits.
constexpr int scores_select_ipc(int headDim, int rows, int nKB, long long limit) {
  const long long fixed = scores_select_smem_bytes(headDim, nKB, 0);
  const int most = kScoresMmaRows / rows;
  if (nKB <= 0)
    return limit >= fixed ? most : 0; // no keys: the rows are empty
  const long long fit = limit > fixed ? (limit - fixed) / (static_cast<long long>(nKB) * 4) : 0;
  return fit < most ? static_cast<int>(fit) : most;
}

} // namespace dev
} // namespace sattn

#if defined(__CUDACC__)

#include "selection.cuh"

namespace sattn {
namespace dev {

namespace fused_select_detail {

enum class Rule { topk, cumulative, budget };

template <class Cfg> struct FusedChecks {
  static_assert(!Cfg::BOUND, "scores_select: bound (Quest) logits are not fused");
  static_assert(scores_mma(Cfg::HEAD_DIM, Cfg::BQ / Cfg::Q_GROUP, Cfg::BK / Cfg::K_GROUP) &&
                    !scores_one_pass(Cfg::BQ / Cfg::Q_GROUP),
                "scores_select: only the two-pass tensor-core scores are fused");
  static constexpr bool ok = true;
};

/// Named barriers: 1 among the scores' warps; FULL + s tile s of the
/// double buffer staged (producers arrive, scores' warps wait); EMPTY + s
/// tile s read (the reverse). 0 is __syncthreads.
enum : int { kBarScores = 1, kBarFull = 2, kBarEmpty = 4 };
using ptx::bar_arrive;
using ptx::bar_sync;

/// Key tiles for the scores' warps, staged by the producer warps into a
/// double buffer (the two passes' 2 * nT tiles in order; see `produce`).
/// Buffer s % 2 holds tile s; its release is only signalled for tiles a
/// producer will refill (s < last = 2 nT - 2), so no barrier is left with
/// pending arrivals.
template <int D> struct FedKeys {
  static constexpr int NK = scores_key_tile(D), TILE = 2 * NK * (D + 8);
  /// Key tiles of one pass over pooled keys [0, tEnd).
  __device__ __forceinline__ static int tiles(int tEnd) { return (tEnd + NK - 1) / NK; }
  unsigned short *base, *khi, *klo;
  int s, last;
  __device__ __forceinline__ void begin(const float *, int, int) {
    bar_sync(kBarScores, kScoresThreads); // every warp is done with the probability tile
    const int buf = s & 1;
    bar_sync(kBarFull + buf, kFusedSelectThreads);
    khi = base + buf * TILE;
    klo = khi + NK * (D + 8);
  }
  __device__ __forceinline__ void end() {
    if (s < last)
      bar_arrive(kBarEmpty + (s & 1), kFusedSelectThreads);
    ++s;
  }
  __device__ __forceinline__ void sync() { bar_sync(kBarScores, kScoresThreads); }
};

/// The producer warps (threads kScoresThreads ..): stage the key tiles of
/// both passes into the double buffer, split into hi / lo halves exactly as
/// block_scores stages them.
template <int D>
__device__ __forceinline__ void produce(const float *kbase, int tEnd, unsigned short *base) {
  constexpr int NK = FedKeys<D>::NK, NP = kFusedSelectThreads - kScoresThreads;
  const int nT = FedKeys<D>::tiles(tEnd), tid = threadIdx.x - kScoresThreads;
  for (int s = 0; s < 2 * nT; ++s) {
    const int buf = s & 1;
    if (s >= 2)
      bar_sync(kBarEmpty + buf, kFusedSelectThreads); // tile s - 2 is read
    unsigned short *hi = base + buf * FedKeys<D>::TILE;
    split_mma::stage_rows<DType::bf16, NK, D, NP>(kbase, (s % nT) * NK, tEnd, hi,
                                                  hi + NK * (D + 8), tid);
    bar_arrive(kBarFull + buf, kFusedSelectThreads);
  }
}

/// grid (cdiv(nQB, ipc), HEADS, B), block kFusedSelectThreads, dynamic
/// smem scores_select_smem_bytes(HEAD_DIM, nKB, ipc). CTAs are issued last
/// rows first (under a causal mask they see the most keys).
template <class Cfg, Rule RULE> __device__ __forceinline__ void run(const ScoresSelectParams &p) {
  static_assert(FusedChecks<Cfg>::ok, "");
  constexpr int D = Cfg::HEAD_DIM, NW = kFusedSelectWarps;
  static_assert(kFusedSelectThreads % 32 == 0 && kFusedSelectThreads > kScoresThreads, "");
  extern __shared__ __align__(16) unsigned char sattn_fused_smem[];
  const int nKB = p.s.nKB, ipc = p.ipc;
  static_assert(kFusedRadixInts == selection_detail::kRadixScratchInts, "");
  unsigned short *tiles = reinterpret_cast<unsigned short *>(sattn_fused_smem);
  // The radix scratch overlays the tiles, free after the barrier below.
  int *hists = reinterpret_cast<int *>(sattn_fused_smem);
  float *rows = reinterpret_cast<float *>(sattn_fused_smem + scores_select_scratch_bytes(D, nKB));

  const int c = gridDim.x - 1 - blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int I0 = c * ipc;
  const int tEnd = estimation_detail::scores_2pass_key_end<Cfg>(p.s, I0, ipc);
  if (threadIdx.x < kScoresThreads) {
    FedKeys<D> keys{tiles, nullptr, nullptr, 0, 2 * FedKeys<D>::tiles(tEnd) - 2};
    float *P = reinterpret_cast<float *>(tiles + 2 * FedKeys<D>::TILE);
    estimation_detail::scores_2pass_rows<Cfg>(p.s, b, h, I0, ipc, rows, I0, keys, P);
  } else {
    produce<D>(estimation_detail::scores_key_rows<Cfg>(p.s, b, h), tEnd, tiles);
  }
  __syncthreads(); // every row is complete; the tiles are free

  const int warp = threadIdx.x / 32;
  for (int il = warp; il < ipc && I0 + il < p.s.nQB; il += NW) {
    const int I = I0 + il;
    float *key = rows + static_cast<i64>(il) * nKB;
    const selection_detail::Row r = selection_detail::build_row<Cfg>(
        key, I, p.s.Sq, p.s.Skv, nKB, [&](int J) { return key[J]; });
    int *scratch = hists + warp * kFusedRadixInts;
    if constexpr (RULE == Rule::topk)
      selection_detail::topk_row<Cfg, 1>(p.sel, r, b, h, I, scratch);
    else if constexpr (RULE == Rule::cumulative)
      selection_detail::cumulative_row<Cfg, 1>(p.sel, r, b, h, I, scratch);
    else
      selection_detail::budget_row<Cfg>(p.sel, r, b, h, I, scratch);
    __syncwarp(); // the warp's scratch is reused by its next row
  }
}

} // namespace fused_select_detail

/// select_blocks topk of a fused sattn.scores (per query head).
template <class Cfg> __device__ void scores_select_topk(const ScoresSelectParams &p) {
  static_assert(selection_detail::TopkChecks<Cfg>::ok, "");
  static_assert(Cfg::OUT_HEADS == Cfg::HEADS, "scores_select_topk: per-query-head sets only");
  fused_select_detail::run<Cfg, fused_select_detail::Rule::topk>(p);
}

/// select_blocks cumulative of a fused sattn.scores (per query head).
template <class Cfg> __device__ void scores_select_cumulative(const ScoresSelectParams &p) {
  static_assert(selection_detail::CumulativeChecks<Cfg>::ok, "");
  static_assert(Cfg::OUT_HEADS == Cfg::HEADS, "scores_select_cumulative: per-query-head sets only");
  fused_select_detail::run<Cfg, fused_select_detail::Rule::cumulative>(p);
}

/// head_budget of a fused sattn.scores.
template <class Cfg> __device__ void scores_head_budget(const ScoresSelectParams &p) {
  static_assert(selection_detail::BudgetChecks<Cfg>::ok, "");
  fused_select_detail::run<Cfg, fused_select_detail::Rule::budget>(p);
}

} // namespace dev
} // namespace sattn

#endif // __CUDACC__

#endif // SATTN_DEVICE_FUSED_SELECT_CUH
