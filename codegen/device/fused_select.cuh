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
// block_scores kernel — and then its four warps run the selection rule of
// selection.cuh on those rows, one row per warp at a time. A consumer that
// needs every head's result first (select_blocks topk with the budget of a
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

/// Shared memory of a scores_select CTA over `ipc` query blocks and nKB KV
/// blocks: the two-pass scores' key tile and probability tile, per warp a
/// tag row and a 256-bin histogram, then the ipc score rows.
constexpr long long scores_select_smem_bytes(int headDim, int nKB, int ipc) {
  return scores_2pass_smem_bytes(headDim) +
         static_cast<long long>(kScoresThreads / 32) * (nKB + 256) * 4 +
         static_cast<long long>(ipc) * nKB * 4;
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

/// grid (cdiv(nQB, ipc), HEADS, B), block kScoresThreads, dynamic smem
/// scores_select_smem_bytes(HEAD_DIM, nKB, ipc). CTAs are issued last rows
/// first (under a causal mask they see the most keys).
template <class Cfg, Rule RULE> __device__ __forceinline__ void run(const ScoresSelectParams &p) {
  static_assert(FusedChecks<Cfg>::ok, "");
  constexpr int NW = kScoresThreads / 32;
  extern __shared__ __align__(16) unsigned char sattn_fused_smem[];
  const int nKB = p.s.nKB, ipc = p.ipc;
  int *tags = reinterpret_cast<int *>(sattn_fused_smem + scores_2pass_smem_bytes(Cfg::HEAD_DIM));
  int *hists = tags + NW * nKB;
  float *rows = reinterpret_cast<float *>(hists + NW * 256);

  const int c = gridDim.x - 1 - blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int I0 = c * ipc;
  estimation_detail::scores_2pass_rows<Cfg>(p.s, b, h, I0, ipc, rows, I0, sattn_fused_smem);
  __syncthreads(); // every row is complete

  const int warp = threadIdx.x / 32;
  for (int il = warp; il < ipc && I0 + il < p.s.nQB; il += NW) {
    const int I = I0 + il;
    float *key = rows + static_cast<i64>(il) * nKB;
    const selection_detail::Row r = selection_detail::build_row<Cfg>(
        key, tags + warp * nKB, I, p.s.Sq, p.s.Skv, nKB, [&](int J) { return key[J]; });
    if constexpr (RULE == Rule::topk)
      selection_detail::topk_row<Cfg, 1>(p.sel, r, b, h, I, hists + warp * 256);
    else if constexpr (RULE == Rule::cumulative)
      selection_detail::cumulative_row<Cfg, 1>(p.sel, r, b, h, I);
    else
      selection_detail::budget_row<Cfg>(p.sel, r, b, h, I);
    __syncwarp(); // the warp's tag row and histogram are reused by its next row
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
