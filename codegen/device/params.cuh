//===- params.cuh - kernel parameter blocks shared by host and device -----===//
//
// The ABI between the runtime (host C++, compiled by g++) and the device
// templates (compiled by NVRTC): one plain struct per kernel family, passed
// by value as the only kernel argument. Only fixed-width scalars and raw
// pointers, no constructors: g++ (x86-64) and NVRTC (nvptx64) are both LP64
// with the same alignment rules, so one definition gives one layout (the
// GPU tests would catch any drift).
//
// Conventions: element strides (not bytes); Q/K/V/O have a contiguous last
// dimension; every selection structure is contiguous in the order its
// comment gives. Lengths are runtime values: a new sequence length never
// needs a new kernel.
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_DEVICE_PARAMS_CUH
#define SATTN_DEVICE_PARAMS_CUH

namespace sattn {
namespace dev {

typedef long long i64;

/// A [B, H, S, D] tensor view: element strides of B, H, S; D contiguous.
struct Tensor4 {
  void *ptr;
  i64 sb, sh, ss;
  int B, H, S, D;
};

/// Block set: counts [B, H, nQB] and indices [B, H, nQB, cap] (ascending,
/// only the first counts[] of each row meaningful). H is the set's heads.
struct BlockSetView {
  int *counts;
  int *indices;
  int B, H, nQB, nKB, cap;
};

/// An opaque TMA tensor map (CUtensorMap: 128 bytes, 64-byte aligned),
/// filled on the host by cuTensorMapEncodeTiled.
struct alignas(64) TmaDesc {
  unsigned long long raw[16];
};

/// sattn.attention (attn_fwd). lse is contiguous [B, Hq, Sq] fp32 when the
/// variant returns it. Query set: counts [B, Hq], rows [B, Hq, Sq].
/// attn_fwd_wgmma loads Q/K/V by TMA through tq / tk / tv when `tma` is 1
/// (see attn_wgmma_tma_box in attention_wgmma.cuh for the maps it expects);
/// with 0 (strides TMA cannot describe) it copies them with cp.async. The
/// other kernels ignore the three maps and next_item.
/// A token-level vertical-slash set (semantics §12b) as the attention
/// reads it, per (b, query head) bh: the nv kept columns cols[bh * nv ..]
/// (ascending), the ivl_count[bh] distance intervals ivl[(bh * ivCap + x)
/// * 2 + {0, 1}] = [lo, hi) (ascending), and the columns' K / V rows
/// gathered into contiguous kc / vc [B, Hq, nv, D] (attn <kernel>_vsgather).
struct VSlashView {
  const int *cols;
  const int *ivl;
  const int *ivl_count;
  int nv, ivCap;
  void *kc, *vc;
};

/// Cfg::HAS_VSLASH and Cfg::VS_BQ when an attention config declares them
/// (else false / 0): configs written before vertical-slash sets need not.
template <class C, class = void> struct VSlashOf {
  static constexpr bool value = false;
  static constexpr int bq = 0;
};
template <class C> struct VSlashOf<C, decltype(void(C::HAS_VSLASH))> {
  static constexpr bool value = C::HAS_VSLASH;
  static constexpr int bq = C::VS_BQ;
};

struct AttnParams {
  Tensor4 q, k, v, o;
  float *lse;
  BlockSetView blocks;
  int *q_counts;
  int *q_rows;
  int tma;
  /// attn_fwd_wgmma's work-item counter (one int, zero at launch) for
  /// dynamic scheduling; null: static round-robin.
  int *next_item;
  TmaDesc tq, tk, tv;
  /// With a vertical-slash set (Cfg::HAS_VSLASH): the set, and (tma = 1)
  /// the maps of kc / vc, laid out like tk / tv over [B, Hq, nv, D].
  VSlashView vs;
  TmaDesc tkc, tvc;
};

/// The backward kernels of sattn.attention (attention_bwd.cuh). `f` is the
/// forward's parameter block: q, k, v, its output O in `o`, its LSE
/// (natural log, [B, Hq, Sq] fp32) in `lse`, its block set in `blocks`.
/// dq / dk / dv are written in the forward's dtype; delta [B, Hq, Sq] fp32
/// is rowsum(dout * O); dq_accum [B, Hq, Sq, D] fp32 (zeroed) takes the
/// fast mode's atomic dQ, null in the deterministic mode. Per KV block
/// J of head (b, set head) bh, the query blocks whose lists name J
/// (ascending): t_counts[bh * nKB + J] of them at t_rows[bh * nQB * cap +
/// t_offsets[bh * nKB + J]] (compact: no larger than the block set's own
/// index array). attn_bwd_transpose counts (t_fill 0), then
/// attn_bwd_transpose_scan sums, then attn_bwd_transpose fills (t_fill 1).
struct AttnBwdParams {
  AttnParams f;
  Tensor4 dout, dq, dk, dv;
  float *delta;
  float *dq_accum;
  int *t_counts;
  int *t_offsets;
  int *t_rows;
  int t_fill;
  /// Nonzero: dq/dk/dv are added to what the buffers hold (the second pass
  /// of a query set) instead of written.
  int accumulate;
  /// Query sets (attn_bwd_split_rows): the active rows (q_counts [B, Hq],
  /// q_rows [B, Hq, Sq] ascending); out: the LSE of each pass, -inf on the
  /// rows of the other pass. o_lazy / lse_lazy_src: the lazy pass's
  /// recomputed O and LSE (null ptr when f.o / f.lse already hold every
  /// row's own, or when lazy rows write 0).
  const int *q_counts, *q_rows;
  float *lse_active, *lse_lazy;
  Tensor4 o_lazy;
  const float *lse_lazy_src;
  /// Vertical-slash sets (f.vs): dK / dV of the gathered columns [B, Hq,
  /// nv, D] in the dtype (attn_bwd_dkdv_cols), added to dk / dv at the
  /// columns' keys by attn_bwd_vs_scatter for query head vs_head of each
  /// GQA group (one launch per head of the group: a fixed order).
  Tensor4 dkc, dvc;
  int vs_head;
  /// The fast mode's two-warpgroup dK/dV kernel: when dq_tma, dq_accum as a
  /// 3-d fp32 map [B * Hq][Sq][D] with 128-byte-swizzled [64][32] boxes,
  /// which its dQ tiles are added through (TMA reductions), else
  /// red.global.
  int dq_tma;
  TmaDesc tdq;
};

/// sattn.pool: in is [B, H, S, D]; out contiguous [B, H, nOut, D] fp32.
struct PoolParams {
  Tensor4 in;
  float *out;
  int nOut;
};

/// sattn.scores: pooled q [B, Hq, nq, D] and k [B, Hkv, nk, D] contiguous
/// fp32; out contiguous [B, Hq, nQB, nKB] fp32. Sq/Skv are unpooled lengths.
/// With a Quest bound (BOUND), kp is the key groups' minimum and kp_max
/// their maximum, laid out like kp; else kp_max is null.
/// The tensor-core kernel also takes `ws`, gridDim.x slots of
/// scores_ws_floats(1, nKB) floats (a log-sum-exp per pooled row and KV
/// block), and `next_item`, an int zeroed before the launch (grid
/// scores_mma_grid); the CUDA-core kernel ignores both.
struct ScoresParams {
  const float *qp;
  const float *kp;
  float *out;
  int B, nq, nk, Sq, Skv, nQB, nKB;
  const float *kp_max;
  float *ws;
  int *next_item;
};

/// sattn.mean_scores: N (2..4) score grids of n floats each -> out.
struct MeanScoresParams {
  const float *in[4];
  float *out;
  long long n;
};

/// sattn.antidiag_scores: q [B, Hq, Sq, D], k [B, Hkv, Skv, D] -> out
/// contiguous [B, Hq, nQB, nKB] fp32 (semantics §4a).
/// The tensor-core kernel also takes `ws`, gridDim.x slots of
/// antidiag_ws_floats(1, nKB) floats (per-row, per-KV-block partial softmax
/// state), and `next_item`, an int zeroed before the launch (work items
/// handed out in order; grid antidiag_mma_grid).
struct AntidiagParams {
  Tensor4 q, k;
  float *out;
  int nQB, nKB;
  float *ws;
  int *next_item;
};

/// sattn.select_blocks (select_topk / select_cumulative) and
/// sattn.head_budget: scores [B, H, nQB, nKB]; budget [B, budgetHeads, nQB]
/// int32 or null; k is the static budget (-1 when a budget operand is used).
struct SelectParams {
  const float *scores;
  const int *budget;
  int budgetHeads;
  int B, H, nQB, nKB, Sq, Skv;
  int k;
  BlockSetView out;
  int *budget_out; // head_budget: [B, heads_out, nQB]
  /// select_cumulative_head (select_head.cuh): per (b, h) the cut of its
  /// prefix, [B, H, 2] ints (bit pattern of the smallest kept score, last
  /// kept flat index among the entries equal to it or -1); the radix
  /// select's workspace: per (b, h, chunk) bin masses and counts, per (b, h)
  /// its state; the pass its _hist / _digit launch runs.
  int *cut;
  double *hmass;
  int *hcount;
  double *hstate;
  int *istate;
  int nChunks, pass;
};

/// Fused estimation + selection (fused_select.cuh): the scores operands
/// (`s`, whose `out` is unused) and the selection's (`sel`, whose `scores`
/// is unused); `ipc` query blocks per CTA (scores_select_ipc).
struct ScoresSelectParams {
  ScoresParams s;
  SelectParams sel;
  int ipc;
};

/// sattn.vertical_slash (vertical_slash.cuh), one struct for its phases.
/// q is a view of the last n' = min(LAST, Sq) rows; k the keys; kp the
/// block-mean keys [B, Hkv, nKB, D] f32 and `aware` the query-aware set
/// (AWARE only). Workspace, all contiguous: stats [B, Hq, nTiles, n', 2]
/// (per key tile of kVsKeys and row: max and sum, log2 units), lse2
/// [B, Hq, n'] (log2), vert / slash [B, Hq, Skv], part [B, Hq, nTiles,
/// n' + kVsKeys - 1] (slash partials per tile), picks [B, Hq, 2, nKB]
/// (vertical then slash group flags) and aware_flag [B, Hq].
struct VsParams {
  Tensor4 q, k;
  const float *kp;
  BlockSetView aware;
  int Sq, nTiles, nQB, nKB;
  float *stats;
  float *lse2;
  float *vert;
  float *slash;
  float *part;
  unsigned char *picks;
  int *aware_flag;
  BlockSetView out;
  /// sattn.vslash (vslash.cuh) writes its set here instead of `out`, with
  /// dlist (B * Hq * ns ints) the kept distances before they become
  /// intervals.
  int *cols, *dlist, *ivl, *ivl_count;
  int nv, ns;
};

/// sattn.static_blocks.
struct StaticBlocksParams {
  int Sq, Skv;
  BlockSetView out;
};

/// sattn.union / sattn.intersect: a, b and out have the same shape.
struct SetBinParams {
  BlockSetView a, b, out;
};

/// blocks_from_list (a block-set argument, semantics §14): the user's list
/// [B, H, nQB, capIn] int32 with element strides sb, sh, sI and a
/// contiguous last dimension (-1: unused slot; any order, repeats allowed).
/// out gets the entries in [0, out.nKB), ascending and duplicate-free;
/// out.cap >= min(capIn, out.nKB) holds every one.
struct BlocksFromListParams {
  const int *list;
  i64 sb, sh, sI;
  int capIn;
  BlockSetView out;
};

/// sattn.decode_attention (decode_attn) and kv_slim's first phase
/// (kv_slim_lse, v and o unused). q, o [B, Hq, Sd, D]; k, v [B, Hkv, Skv,
/// D], or pages [P, Hkv, page, D] with page_table [B, max_pages] (row
/// stride pt_sb) and seq_lens [B]. With a token set, tok_counts [B, Hkv]
/// and tok_idx [B, Hkv, tok_cap] (ascending positions) name the entries.
/// lse [B, Hq, Sd] or null. With splits > 1: part_o [B, Hkv, row_groups,
/// splits, 16, D], part_lse [..., 16] (log2) and done [B, Hkv, row_groups]
/// (zero at launch) carry the split-KV merge.
struct DecodeParams {
  Tensor4 q, k, v, o;
  float *lse;
  const int *page_table;
  i64 pt_sb;
  const int *seq_lens;
  const int *tok_counts;
  const int *tok_idx;
  int tok_cap;
  int Skv;  ///< cache length (dense, tokens); paged: seq_lens
  int page; ///< tokens per page (paged)
  int splits, row_groups;
  float *part_o;
  float *part_lse;
  int *done;
  /// A slimmed (compacted) cache instead of k/v slices: entry e of (b, hk)
  /// is row rag_off[b * Hkv + hk] + e of k / v (rows of D, row stride
  /// k.ss), rag_len[b * Hkv + hk] entries, positions = entries. Null
  /// otherwise.
  const i64 *rag_off;
  const int *rag_len;
  /// sm_90+: 1 when tk / tv map the cache (4-d [B, Hkv, S, D] maps with
  /// 64 x kDecodeKeyTile boxes and the 128-byte swizzle; for a slimmed
  /// cache one [1, 1, rows, D] map) and the decode loads its dense rows by
  /// TMA; 0: cp.async (paged caches, token lists, other GPUs).
  int tma;
  int stages; ///< TMA ring depth (decode_tma_smem_bytes), when tma
  TmaDesc tk, tv;
};

/// kv_compact, two modes writing a slimmed cache (rows of D elements at
/// out_k / out_v, row rag_off[b * Hkv + hk] + e for entry e):
///  - compaction (tok_idx set): entry e < tok_counts[b, hk] is source row
///    tok_idx[b, hk, e] of k / v [B, Hkv, Skv, D]; grid (cdiv(tok_cap,
///    kCompactRows), Hkv, B);
///  - append (tok_idx null): the S rows of k / v [B, Hkv, S, D] go to
///    entries rag_len[b, hk] + i, then rag_len grows by S; grid (1, Hkv, B)
///    (one CTA per (b, hk), so the length is read before it is updated).
struct KvCompactParams {
  Tensor4 k, v;
  const int *tok_counts;
  const int *tok_idx;
  int tok_cap;
  void *out_k;
  void *out_v;
  const i64 *rag_off;
  int *rag_len;
};

/// kv_slim_scores: q the observation rows [B, Hq, w, D], k [B, Hkv, Skv,
/// D], lse [B, Hq, w] (natural log) -> score [B, Hkv, Skv].
struct SlimScoresParams {
  Tensor4 q, k;
  const float *lse;
  float *score;
};

/// kv_slim_select: score [B, Hkv, Skv]; segments [B, nSeg, 2] int32 or
/// int64 (element strides seg_sb, seg_sr; pairs contiguous) or null ->
/// tok_counts [B, Hkv], tok_idx [B, Hkv, Skv] (ascending).
struct SlimSelectParams {
  const float *score;
  const void *segments;
  i64 seg_sb, seg_sr;
  int nSeg, Skv;
  int *tok_counts;
  int *tok_idx;
};

/// sattn.classify_queries (classify_queries): q [B, Hq, Sq, D]; kp the
/// mean-pooled keys [B, Hkv, nG, D] fp32 contiguous; lazy [B, Hq, Sq] and
/// done [B, Hq] (zero at launch) are workspace; out q_counts [B, Hq],
/// q_rows [B, Hq, Sq] (active rows ascending).
struct ClassifyParams {
  Tensor4 q;
  const float *kp;
  int nG, Skv;
  unsigned char *lazy;
  int *done;
  int *q_counts;
  int *q_rows;
};

/// Threads per block of each kernel family (host and device agree here).
enum : int {
  kAttnThreads = 128,
  kAttnRowsPerCta = 16,
  kAttnKeyTile = 64,
  kPoolThreads = 128,
  kScoresThreads = 128,
  /// fused_select.cuh: the scores' kScoresThreads, then every warp selects.
  kFusedSelectThreads = 384,
  kMeanScoresThreads = 256,
  kSelectThreads = 32,
  kStaticThreads = 128,
  kSetBinThreads = 128,
  kListThreads = 128, ///< blocks_from_list: one warp per row, 4 rows per CTA
};

/// Element types and keyword constants the emitter writes as enumerators.
enum class DType : int { bf16 = 0, fp16 = 1 };
enum class PoolKind : int { mean = 0, max = 1, min = 2 };
enum class Lazy : int { local = 0, zero = 1 };
enum class Share : int { none = 0, flattest = 1 };

} // namespace dev
} // namespace sattn

#endif // SATTN_DEVICE_PARAMS_CUH
