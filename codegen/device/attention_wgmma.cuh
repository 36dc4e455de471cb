//===- attention_wgmma.cuh - Hopper (sm_90a) wgmma attention forward (§2) -===//
//
// attn_fwd_wgmma<Cfg>: sattn.attention forward on Hopper's warpgroup MMA
// (wgmma.mma_async), for head dims 64 and 128, bf16 / fp16. Same Cfg
// constants, launch grid convention and §2 semantics as attn_fwd_mma
// (attention_mma.cuh); only the matrix core, the loads and the tiling differ.
//
// Warp-specialised CTA (FlashAttention-3 style):
//   warpgroup 0   producer: one thread issues TMA tensor loads of Q and of
//                 every K / V tile into a ring of stages, each completing on
//                 a "full" mbarrier; it waits on the stage's "empty" mbarrier
//                 before reusing it. Gives its registers back (setmaxnreg).
//   warpgroups 1..NWG  consumers, 64 query rows each (NWG = 2, 128 rows,
//                 except with a block set of SET_BQ <= 64: 1, 64 rows, two
//                 CTAs per SM; Cfg::CONSUMER_WGS = 3, an autotuner choice at
//                 head dim 64 without sets: 192 rows). They take the
//                 producer's registers.
//   key tile   = BN keys (128; 64 with a block set of SET_BQ or SET_BK <= 64).
//   smem       = Q (NWG x 64 rows), K in 2 stages, V in 3 stages, each tile in
//                the 128-byte-swizzle layout of wgmma that TMA writes:
//                64-element panels of the head dim, [panel][row][128 B],
//                16-byte chunk c of row r at chunk c ^ (r % 8); base rounded
//                up to 1024 B; then the mbarriers.
//   S = Q.K^T  wgmma m64nBNk16, A = Q and B = K from smem (K-major
//              descriptors, SBO 1024 B), fp32 accumulators in registers.
//   softmax    online, log2 domain, fp32, per thread rows g and g + 8 of its
//              warp's 16-row slice (same fragment layout as mma.m16n8).
//   O += P.V   wgmma m64nDk16 in the RS form: P packed from the S accumulators
//              straight into A fragments, V from smem (N-major descriptor,
//              LBO = BN * 128 B between 64-wide panels, SBO 1024 B).
//
// Persistent CTAs: a work item is one row tile of one (batch, head), in
// head-major order with a head's longest causal tiles first. The producer
// takes the next item from an atomic counter (AttnParams::next_item; static
// round-robin without one) and hands it to the consumers through a
// two-slot mbarrier ring; stage and phase counters run on across items, so
// the next item's Q and K/V loads overlap the current item's last tiles and
// its O epilogue (the consumers free Q after an item's last S product).
// Taking items in order keeps the items in flight within a narrow window of
// heads, whose K/V then stay in L2.
//
// Consumer loop, per key tile n (no CTA-wide barrier anywhere): wait K_n
// and V_{n-1} full; issue S_n = Q.K_n^T and then the pending
// O += P_{n-1}.V_{n-1} (two commit groups); wait_group 1 (S_n ready) ->
// release K_n, mask + online softmax of S_n while the tensor cores still run
// P_{n-1}.V_{n-1}; wait_group 0 -> release V_{n-1}, rescale O, pack P_n.
// V_{n-1} is read while V_n and V_{n+1} land, hence three V stages.
//
// TMA needs strides that are multiples of 16 bytes (AttnParams::tma = 1 and
// the three tensor maps, see attn_wgmma_tma_box); otherwise (tma = 0) the
// producer warpgroup's 128 threads copy the tiles with cp.async (16-byte
// aligned rows) or element loads, arriving on the same "full" barriers.
// Keys past a tile's range but inside the box are loaded (TMA boxes have a
// fixed size) and masked exactly; keys past the sequence end read as zero.
//
// Key schedule, tile classification (skip / full / partial per warpgroup),
// masks, block sets, patterns, LSE, GQA, strides and empty rows are those of
// attn_fwd_mma, from the same code (attention_common.cuh). The wgmma,
// descriptor, mbarrier, TMA and fence wrappers are in wgmma.cuh.
//
// Query sets (OmniSparse, Cfg::HAS_QUERIES): rows are packed, so skipped
// rows cost nothing. The rows of each group (a block-set row, else 128
// rows) are split into its active rows, then its lazy rows, 64 per work
// item (one consumer warpgroup, two CTAs per SM, 64-key tiles). The 128
// producer threads gather the item's Q rows with cp.async (rows listed in
// shared memory, row_map) while thread 0 still issues the K/V TMAs; O rows
// are scattered to their places. Active rows attend to the group's block
// list under the op's mask, lazy rows to the lazy policy's keys (causal,
// last LAZY_WINDOW keys, first LAZY_SINKS); both in one launch, each mask
// evaluated at the row's own position. No host synchronisation: the
// group's part of the query set is found on the device (attn_common::lower_bound_int).
//
// Keeping ptxas from serializing the wgmma pipeline (warnings C7513 / C7514 /
// C7518 / C7520, each one puts a wait behind every wgmma):
//   - every wgmma, fence, commit and wait of the key loop is unconditional;
//     a skipped tile runs its S product and a fully masked softmax (P = 0);
//     barrier arrivals between them are predicated, not branched;
//   - descriptors derive only from warp-uniform values (the warpgroup index
//     is broadcast with a shuffle), so they live in uniform registers;
//   - registers a pending wgmma reads (O, P) are written only behind its
//     wait_group, pinned there with empty asm operands (fence_regs);
//   - the first S wgmma binds its accumulators write-only ("=f").
//
// Host side: everything above the `__CUDACC__` guard is plain C++ that g++
// can include (launch shape functions below). On targets other than sm_90a
// the kernel body is a trap, so a module holding it still compiles there.
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_DEVICE_ATTENTION_WGMMA_CUH
#define SATTN_DEVICE_ATTENTION_WGMMA_CUH

#include "params.cuh"

#if defined(__CUDACC__)
#define SATTN_WGMMA_HD __host__ __device__
#else
#define SATTN_WGMMA_HD
#endif

namespace sattn {
namespace dev {

/// What fixes the CTA shape of attn_fwd_wgmma<Cfg>: whether a block set is
/// given and its query / key block sizes (Cfg::HAS_BLOCKS, SET_BQ, SET_BK;
/// ignored without one), whether a query set is (Cfg::HAS_QUERIES), and
/// the consumer warpgroups asked for (Cfg::CONSUMER_WGS; 0: the rule of
/// attn_wgmma_warpgroups).
struct AttnWgmmaShape {
  bool blocks;
  int setBq, setBk;
  bool queries;
  int consumers = 0;
};

/// Launch contract of attn_fwd_wgmma<Cfg> (s: its AttnWgmmaShape):
///   kernel    __launch_bounds__(attn_wgmma_threads(s), attn_wgmma_min_blocks(s))
///             (AttnWgmmaLaunch<Cfg>::threads / ::min_blocks), compiled for
///             sm_90a (compute capability 9.0)
///   blockDim  attn_wgmma_threads(s)                       (512, 384 or 256)
///   grid      (G, 1, 1), any G >= 1: persistent CTAs; CTA c runs the work
///             items c, c + G, c + 2G, ... of attn_wgmma_items(..) (one item
///             = one row tile of one (batch, head)). attn_wgmma_grid gives
///             G = min(items, SMs x CTAs per SM).
///   smem      attn_wgmma_smem_bytes(HEAD_DIM, s) dynamic bytes (always
///             above 48 KB: raise the limit)
///   params    AttnParams with tma = 1 and tq / tk / tv encoded as described
///             at attn_wgmma_tma_box, or tma = 0
/// A launch with another blockDim traps.
enum : int {
  kAttnWgmmaThreads = 512,      // largest blockDim: producer + 3 consumer warpgroups
  kAttnWgmmaWarpgroupRows = 64, // query rows per consumer warpgroup
  kAttnWgmmaKStages = 2,
  kAttnWgmmaVStages = 3,
  kAttnWgmmaBarrierBytes = 512, // mbarriers, work-item slots, the gathered rows of a query set
  kAttnWgmmaQueryGroup = 128,   // query-set row groups without a block set
};

/// Consumer warpgroups per CTA: 1 when a block-set row has <= 64 rows or
/// with a query set (its row tiles are packed per 64 rows, see
/// attn_wgmma_tiles), else 2 — or s.consumers where the shape allows it
/// (attn_wgmma_consumers_valid: 3 at head dim 64 without sets, 192-row
/// tiles, so each K / V tile feeds 50 % more MMA work per softmax where
/// D = 64 is short of tensor-core work).
SATTN_WGMMA_HD constexpr int attn_wgmma_warpgroups(AttnWgmmaShape s) {
  return s.consumers > 0 ? s.consumers : s.queries || (s.blocks && s.setBq <= 64) ? 1 : 2;
}
/// Whether s.consumers may be asked for at this head dim: 0 (the rule)
/// always; 3 at head dim 64 without a block or query set (a consumer's 160
/// registers hold a 128-key S tile and a D = 64 O tile, not D = 128's).
SATTN_WGMMA_HD constexpr bool attn_wgmma_consumers_valid(int headDim, AttnWgmmaShape s) {
  return s.consumers == 0 || (s.consumers == 3 && headDim == 64 && !s.blocks && !s.queries);
}
/// Producer warpgroup + consumers.
SATTN_WGMMA_HD constexpr int attn_wgmma_threads(AttnWgmmaShape s) {
  return 128 * (attn_wgmma_warpgroups(s) + 1);
}
/// CTAs per SM the kernel is compiled for (second __launch_bounds__ value).
SATTN_WGMMA_HD constexpr int attn_wgmma_min_blocks(AttnWgmmaShape s) {
  return attn_wgmma_warpgroups(s) == 1 ? 2 : 1;
}
/// setmaxnreg of the producer: 56 keeps its cp.async path from spilling;
/// with three consumers 32 (as FlashAttention-3 does) so they reach 160.
SATTN_WGMMA_HD constexpr int attn_wgmma_producer_regs(AttnWgmmaShape s) {
  return attn_wgmma_warpgroups(s) >= 3 ? 32 : 56;
}
/// Registers per thread at launch under those bounds (65536 per SM,
/// multiples of 8), and what each consumer may grow to once the producer
/// has given its share back: 168 -> 224 (two consumers), 128 -> 160
/// (three), 128 -> 200 (one consumer, two CTAs per SM).
SATTN_WGMMA_HD constexpr int attn_wgmma_launch_regs(AttnWgmmaShape s) {
  return 65536 / (attn_wgmma_threads(s) * attn_wgmma_min_blocks(s)) / 8 * 8;
}
SATTN_WGMMA_HD constexpr int attn_wgmma_consumer_regs(AttnWgmmaShape s) {
  return (attn_wgmma_launch_regs(s) +
          (attn_wgmma_launch_regs(s) - attn_wgmma_producer_regs(s)) / attn_wgmma_warpgroups(s)) /
         8 * 8;
}
SATTN_WGMMA_HD constexpr int attn_wgmma_rows(AttnWgmmaShape s) {
  return kAttnWgmmaWarpgroupRows * attn_wgmma_warpgroups(s);
}
/// Keys per pipelined K/V tile: 64 for one-consumer CTAs (two of them fit
/// an SM's shared memory), else 128.
SATTN_WGMMA_HD constexpr int attn_wgmma_key_tile(AttnWgmmaShape s) {
  return s.queries || (s.blocks && (s.setBq <= 64 || s.setBk <= 64)) ? 64 : 128;
}
/// TMA boxes the kernel loads with (tma = 1): the tensor maps describe the
/// [B, H, S, D] views as 4-d tensors {D, S, H, B} (innermost first; strides
/// ss, sh, sb in bytes, each a multiple of 16), element type bf16 / fp16,
/// 128-byte swizzle, zero fill past the ends, box {64, rows, 1, 1} with
/// rows = kAttnWgmmaWarpgroupRows for tq and attn_wgmma_tma_box for tk / tv.
/// With a query set Q rows are gathered by the producer threads (tq unused).
SATTN_WGMMA_HD constexpr int attn_wgmma_tma_box(AttnWgmmaShape s) { return attn_wgmma_key_tile(s); }
/// Dynamic shared memory in bytes: Q, 2 K stages, 3 V stages, the
/// mbarriers, plus 1 KB to round the base up to the 1024-byte swizzle
/// period. Dense: 198144 B for D = 128, 99840 B for D = 64.
SATTN_WGMMA_HD constexpr int attn_wgmma_smem_bytes(int headDim, AttnWgmmaShape s) {
  return (attn_wgmma_rows(s) + (kAttnWgmmaKStages + kAttnWgmmaVStages) * attn_wgmma_key_tile(s)) *
             headDim * 2 +
         kAttnWgmmaBarrierBytes + 1024;
}
/// Rows per query-set row group: a block-set row (SET_BQ) or
/// kAttnWgmmaQueryGroup. Each group's active rows are packed into tiles of
/// 64, then its lazy rows: at most cdiv(group, 64) + 1 tiles.
SATTN_WGMMA_HD constexpr int attn_wgmma_query_group(AttnWgmmaShape s) {
  return s.blocks ? s.setBq : kAttnWgmmaQueryGroup;
}
SATTN_WGMMA_HD constexpr int attn_wgmma_query_slots(AttnWgmmaShape s) {
  return (attn_wgmma_query_group(s) + kAttnWgmmaWarpgroupRows - 1) / kAttnWgmmaWarpgroupRows + 1;
}
/// Row tiles per (batch, head): cdiv(Sq, rows), with a block set
/// nQB * cdiv(SET_BQ, rows) (nQB: block-set rows), with a query set
/// (groups) * attn_wgmma_query_slots (some of them empty at run time).
SATTN_WGMMA_HD constexpr int attn_wgmma_tiles(int Sq, AttnWgmmaShape s, int nQB) {
  return s.queries ? (s.blocks ? nQB : (Sq + kAttnWgmmaQueryGroup - 1) / kAttnWgmmaQueryGroup) *
                         attn_wgmma_query_slots(s)
         : s.blocks ? nQB * ((s.setBq + attn_wgmma_rows(s) - 1) / attn_wgmma_rows(s))
                    : (Sq + attn_wgmma_rows(s) - 1) / attn_wgmma_rows(s);
}
/// Work items of a launch: every row tile of every (batch, head).
SATTN_WGMMA_HD constexpr long long attn_wgmma_items(int Sq, AttnWgmmaShape s, int nQB, int H,
                                                    int B) {
  return static_cast<long long>(attn_wgmma_tiles(Sq, s, nQB)) * H * B;
}
/// Persistent grid: as many CTAs as fit on the GPU at once (numSMs SMs),
/// never more than there are items.
SATTN_WGMMA_HD constexpr int attn_wgmma_grid(long long items, int numSMs, AttnWgmmaShape s) {
  return items < static_cast<long long>(numSMs) * attn_wgmma_min_blocks(s)
             ? static_cast<int>(items)
             : numSMs * attn_wgmma_min_blocks(s);
}

/// Whether attn_fwd_wgmma handles this attention: head dim 64 / 128 and a
/// Hopper GPU (wgmma exists only on sm_90a; Blackwell runs the portable
/// compute_90 PTX, which has no wgmma).
SATTN_WGMMA_HD constexpr bool attn_wgmma_supported(int headDim, int ccMajor = 9) {
  return ccMajor == 9 && (headDim == 64 || headDim == 128);
}

/// Cfg::CONSUMER_WGS when the config declares it, else 0 (the rule).
template <class C, class = void> struct ConsumerWgsOf { static constexpr int value = 0; };
template <class C> struct ConsumerWgsOf<C, decltype(void(C::CONSUMER_WGS))> {
  static constexpr int value = C::CONSUMER_WGS;
};

/// The same shape from a Cfg (device side).
template <class Cfg> struct AttnWgmmaLaunch {
  // A vertical-slash set runs 64-row CTAs over 64-key tiles, like a block
  // set of 64 x 64 blocks (one row tile per 64 query rows).
  static constexpr AttnWgmmaShape shape =
      VSlashOf<Cfg>::value
          ? AttnWgmmaShape{true, 64, 64, false}
          : AttnWgmmaShape{Cfg::HAS_BLOCKS, Cfg::SET_BQ, Cfg::SET_BK, Cfg::HAS_QUERIES,
                           ConsumerWgsOf<Cfg>::value};
  static constexpr int threads = attn_wgmma_threads(shape);
  static constexpr int min_blocks = attn_wgmma_min_blocks(shape);
  static constexpr int rows = attn_wgmma_rows(shape);
  static constexpr int key_tile = attn_wgmma_key_tile(shape);
  static constexpr int smem_bytes = attn_wgmma_smem_bytes(Cfg::HEAD_DIM, shape);
};

} // namespace dev
} // namespace sattn

#if defined(__CUDACC__)

#include "attention_common.cuh"
#include "masks.cuh"
#include "ptx.cuh"
#include "types.cuh"
#include "wgmma.cuh"

namespace sattn {
namespace dev {
namespace attn_wgmma_detail {

using namespace ptx; // cp.async, pack2, ex2 (ptx.cuh); wgmma, fences, descriptors (wgmma.cuh)

/// How the producer loads (Cfg::TMA): 1 by TMA only (launch with p.tma = 1),
/// 0 by the producer threads' copies only (p.tma ignored), absent: as p.tma
/// says at run time, both paths compiled. A one-path kernel compiles ~20 %
/// faster (NVVM and ptxas; docs/performance.md 2026-12-07 seventh): the
/// lowering builds TMA-only kernels (three-consumer ones keep both paths,
/// passes/KernelTable.cpp) and the runtime compiles the copy one the first
/// time a launch's views are not TMA-describable (CompiledProgram::
/// copyLoadKernel).
template <class C, class = void> struct TmaModeOf { static constexpr int value = -1; };
template <class C> struct TmaModeOf<C, decltype(void(C::TMA))> {
  static constexpr int value = C::TMA;
};
/// Cfg::PINGPONG (0 / 1) when the config declares it, else on: whether the
/// two consumer warpgroups take turns issuing their wgmma work.
template <class C, class = void> struct PingPongOf { static constexpr bool value = true; };
template <class C> struct PingPongOf<C, decltype(void(C::PINGPONG))> {
  static constexpr bool value = C::PINGPONG != 0;
};

template <class Cfg> struct Fwd {
  static constexpr DType T = Cfg::DTYPE;
  static constexpr int D = Cfg::HEAD_DIM;
  static constexpr AttnWgmmaShape SHAPE = AttnWgmmaLaunch<Cfg>::shape;
  static constexpr int NWG = attn_wgmma_warpgroups(SHAPE); // consumers
  static constexpr int NT = 128 * (NWG + 1);
  static constexpr int WR = kAttnWgmmaWarpgroupRows; // rows per consumer warpgroup
  static constexpr int BM = WR * NWG;                // rows per CTA
  static constexpr int BN = attn_wgmma_key_tile(SHAPE);
  static constexpr int KS = kAttnWgmmaKStages, VS = kAttnWgmmaVStages;
  static constexpr int KD = D / 16;  // k-steps of Q.K^T over the head dim
  static constexpr int KN = BN / 16; // k-steps of P.V over the keys
  static constexpr int NS = BN / 2;  // S accumulators per thread
  static constexpr int NO = D / 2;   // O accumulators per thread
  static constexpr int PANELS = D / 64;
  static constexpr int CONSUMER_REGS = attn_wgmma_consumer_regs(SHAPE);
  // Query set (QS): items are packed row tiles of one row group (QGR rows:
  // a block-set row, or kAttnWgmmaQueryGroup), QSLOTS per group: first the
  // group's active rows 64 at a time, then its lazy rows (see set_item).
  static constexpr bool QS = Cfg::HAS_QUERIES;
  static constexpr int QGR = attn_wgmma_query_group(SHAPE);
  static constexpr int QSLOTS = attn_wgmma_query_slots(SHAPE);
  static constexpr bool LAZY_LOCAL = QS && Cfg::LAZY == Lazy::local;
  // Ping-pong: consumer wg issues its tile-n work only after the other one
  // issued its tile n - 1 (named barriers 1 + wg), so one warpgroup's
  // softmax runs while the other's GEMMs occupy the tensor cores.
  static constexpr bool PP = NWG >= 2 && PingPongOf<Cfg>::value;
  static constexpr int TMA_MODE = TmaModeOf<Cfg>::value;
  /// Whether this launch loads by TMA (a constant unless TMA_MODE is -1).
  __device__ __forceinline__ bool tma_loads() const {
    if constexpr (TMA_MODE >= 0)
      return TMA_MODE == 1;
    else
      return p.tma != 0;
  }
  // Shared memory (bytes from the 1024-aligned base): Q, K stages, V stages,
  // then the mbarriers: Q full, K full / empty, V full / empty.
  static constexpr u32 Q_WG_BYTES = WR * D * 2; // one warpgroup's Q rows
  static constexpr u32 KV_BYTES = BN * D * 2;   // one K or V stage
  static constexpr u32 K_OFF = NWG * Q_WG_BYTES;
  static constexpr u32 V_OFF = K_OFF + KS * KV_BYTES;
  static constexpr u32 BAR_OFF = V_OFF + VS * KV_BYTES;
  static constexpr u32 SMEM_BYTES = BAR_OFF + kAttnWgmmaBarrierBytes + 1024;
  static constexpr int G = Cfg::HEADS / Cfg::KV_HEADS;
  static constexpr float kC = Cfg::SCALE * 1.4426950408889634f; // scale * log2(e)
  // With a positive scale, max and exp work on raw scores (one FFMA each);
  // otherwise the scores are scaled first and the factor is 1.
  static constexpr bool kPos = Cfg::SCALE > 0.f;
  static constexpr float kF = kPos ? kC : 1.f;

  static_assert(Q_WG_BYTES % 1024 == 0 && KV_BYTES % 1024 == 0,
                "every tile must start on a 1024-byte swizzle period");
  static_assert(!QS || NWG == 1, "query-set tiles are packed for one consumer warpgroup");
  static_assert(attn_wgmma_consumers_valid(D, SHAPE),
                "CONSUMER_WGS: three consumer warpgroups need head dim 64 and no block or query set");
  static_assert(CONSUMER_REGS >= 160 && CONSUMER_REGS <= 256 && CONSUMER_REGS % 8 == 0,
                "consumer register budget out of range");

  // p, b, h, hk, Sq, Skv, row0, rowEnd, wr0, wr1, the Q/K/V views and sched
  // are read and written in place by the attn_common functions.
  const AttnParams &p;
  u32 sbase;                                           // 1024-aligned shared address of the tiles
  int b, h, hk, Sq, Skv, row0, rowEnd, tid, wg, wlane; // wg: consumer index, wlane: thread in it
  int wr0, wr1;                                        // this warpgroup's valid rows [wr0, wr1)
  int nT, items;                                       // row tiles per (b, h); work items
  bool wgActive;
  const u16 *qBase, *kBase, *vBase;
  bool qVec, kVec, vVec; // 16-byte aligned rows: cp.async; else element loads

  attn_common::KeySchedule sched; // CTA-uniform

  // Query set (QS only): the item is slot qSlot of row group qGI, which
  // starts at row qG0; the (b, h)'s
  // active rows are qRows[0, count), those of the group qRows[qA, qA + qN).
  // The item's rows are entries [qFirst, qFirst + qCount) of the group's
  // active (lazy: its lazy) rows, ascending; row0 / rowEnd span them.
  const int *qRows;
  int qGI, qSlot, qG0, qA, qN, qFirst, qCount;
  bool lazy;
  int rowI[2]; // consumer: the rows (of the op) of this thread's fragment rows g, g + 8

  // Per-thread consumer state: accumulators, P fragments, row statistics.
  float sc[NS];
  float o[NO];
  u32 pa[KN][4];
  float mrow[2], lrow[2];
  u32 pendV; // V stage of the P held in pa (P = 0 when nothing is pending)

  __device__ __forceinline__ Fwd(const AttnParams &p_, u32 sbase_) : p(p_), sbase(sbase_) {}

  // ------------------------------------------------------------- barriers --

  __device__ __forceinline__ u32 bar(int i) const { return sbase + BAR_OFF + 8 * i; }
  __device__ __forceinline__ u32 q_full() const { return bar(0); }
  __device__ __forceinline__ u32 q_empty() const { return bar(1); }
  __device__ __forceinline__ u32 k_full(int s) const { return bar(2 + s); }
  __device__ __forceinline__ u32 k_empty(int s) const { return bar(2 + KS + s); }
  __device__ __forceinline__ u32 v_full(int s) const { return bar(2 + 2 * KS + s); }
  __device__ __forceinline__ u32 v_empty(int s) const { return bar(2 + 2 * KS + VS + s); }
  // Work-item hand-over from the producer to the consumers: two slots, each
  // a full / empty barrier pair and the item index (-1: no more items).
  static constexpr int ITEM_BAR = 2 + 2 * KS + 2 * VS;
  __device__ __forceinline__ u32 item_full(int s) const { return bar(ITEM_BAR + s); }
  __device__ __forceinline__ u32 item_empty(int s) const { return bar(ITEM_BAR + 2 + s); }
  // Slot 2 is the producer warpgroup's own (fetch_item, locate_rows). With
  // a query set a slot holds the item and qA, qN, row0, rowEnd.
  static constexpr int SLOT_BYTES = QS ? 32 : 4;
  __device__ __forceinline__ u32 item_slot(int s) const {
    return bar(ITEM_BAR + 4) + SLOT_BYTES * s;
  }
  // The producer's gathered-row table of the item in flight (QS): WR rows.
  static constexpr int ROW_MAP_OFF = 256;
  __device__ __forceinline__ u32 row_map() const { return sbase + BAR_OFF + ROW_MAP_OFF; }
  static_assert((ITEM_BAR + 4) * 8 + 3 * SLOT_BYTES <= ROW_MAP_OFF &&
                    ROW_MAP_OFF + (QS ? WR * 4 : 0) <= kAttnWgmmaBarrierBytes,
                "mbarriers, slots and the row table overflow kAttnWgmmaBarrierBytes");

  /// One thread: "full" barriers count one arrival (the TMA thread's
  /// expect_tx) or 128 (each producer thread's copies); "empty" barriers one
  /// arrival per consumer warp.
  __device__ __forceinline__ void init_barriers() const {
    const u32 fullCount = tma_loads() ? 1u : 128u;
    mbar_init(q_full(), QS ? 128u : fullCount); // gathered Q: every producer thread's copies
    mbar_init(q_empty(), 4 * NWG);
#pragma unroll
    for (int s = 0; s < 2; ++s)
      mbar_init(item_full(s), 1), mbar_init(item_empty(s), 4 * NWG);
#pragma unroll
    for (int s = 0; s < KS; ++s)
      mbar_init(k_full(s), fullCount), mbar_init(k_empty(s), 4 * NWG);
#pragma unroll
    for (int s = 0; s < VS; ++s)
      mbar_init(v_full(s), fullCount), mbar_init(v_empty(s), 4 * NWG);
    fence_mbar_init();
  }

  // ---------------------------------------------------------------- loads --

  /// Stages NR rows of D elements from src (row stride ss) at shared address
  /// `dst` in the swizzled layout, R rows per [panel][row] block; rows >=
  /// valid are zero-filled (no global read). Called by the 128 producer
  /// threads (t: thread index among them) when TMA is off.
  template <int NR, int R>
  __device__ __forceinline__ void load_rows(int t, u32 dst, const u16 *src, i64 ss, int valid,
                                            bool vec) const {
    constexpr int CPR = D / 8;    // 16-byte chunks per row
    constexpr int RS = 128 / CPR; // rows advanced per step
    constexpr int PER = NR / RS;  // steps
    static_assert(NR % RS == 0 && RS % 8 == 0 && R % RS == 0,
                  "tile chunks must divide evenly among the threads");
    const int r0 = t / CPR, k = t % CPR;
    // Row r0 + s * RS: same r & 7 for every step (RS % 8 == 0), so the same
    // swizzled chunk; panel k / 8 of the [R rows][128 B] block r / R.
    const u32 a0 = dst + (k >> 3) * (R * 128) + (((k & 7) ^ (r0 & 7)) << 4);
    const u16 *g = src + static_cast<i64>(r0) * ss + k * 8;
    const i64 step = static_cast<i64>(RS) * ss;
#pragma unroll 4
    for (int it = 0; it < PER; ++it, g += step) {
      const int r = r0 + it * RS;
      const u32 a = a0 + (r / R) * (R * D * 2) + (r % R) * 128;
      const bool in = r < valid;
      if (vec) // a row past the end names src: cp.async must not form an address beyond the view
        cp_async16(a, in ? g : src, in ? 16 : 0);
      else
        stage_chunk16(a, g, in, false);
    }
  }

  /// Query set: stages the item's WR gathered Q rows (row r of the tile is
  /// row row_map()[r] of the (b, h) slice base) at dst, as load_rows does;
  /// rows >= valid are zero-filled.
  __device__ __forceinline__ void gather_rows(int t, u32 dst, const u16 *base, i64 ss, int valid,
                                              bool vec) const {
    constexpr int CPR = D / 8, RS = 128 / CPR, PER = WR / RS;
    static_assert(WR % RS == 0 && RS % 8 == 0, "tile chunks must divide evenly among the threads");
    const int r0 = t / CPR, k = t % CPR;
    const u32 a0 = dst + (k >> 3) * (WR * 128) + (((k & 7) ^ (r0 & 7)) << 4);
#pragma unroll
    for (int it = 0; it < PER; ++it) {
      const int r = r0 + it * RS;
      const u32 a = a0 + r * 128;
      const bool in = r < valid;
      const u16 *g =
          base + (in ? static_cast<i64>(ld_shared_s32(row_map() + 4 * r)) * ss : 0) + k * 8;
      stage_chunk16(a, g, in, vec);
    }
  }

  /// The copies of one producer thread are complete: arrive on `full`.
  __device__ __forceinline__ void copies_arrive(u32 full, bool vec) const {
    if (vec)
      cp_async_mbar_arrive(full);
    else
      mbar_arrive(full);
  }

  __device__ __forceinline__ u32 k_stage(int n) const { return sbase + K_OFF + n * KV_BYTES; }
  __device__ __forceinline__ u32 v_stage(int n) const { return sbase + V_OFF + n * KV_BYTES; }

  /// TMA of rows [row, row + rows) of the (b, head) slice of `map` into the
  /// [panel][rows][128 B] tile at dst.
  template <int ROWS>
  __device__ __forceinline__ void tma_tile(u32 dst, const TmaDesc &map, int row, int head,
                                           u32 full) const {
#pragma unroll
    for (int pn = 0; pn < PANELS; ++pn)
      tma_load_4d(dst + pn * (ROWS * 128), &map, pn * 64, row, head, b, full);
  }

  /// K or V of keys [j0, j1) into the stage at dst, completing `full`: one
  /// TMA per head-dim panel, or the producer threads' copies (base, ss, vec:
  /// the (b, hk) slice, only read without TMA).
  __device__ __forceinline__ void load_kv(int pt, bool tma, u32 dst, const TmaDesc &map,
                                          const u16 *base, i64 ss, bool vec, int j0, int j1,
                                          u32 full, int head = -1) const {
    if (tma) {
      mbar_expect_tx(full, KV_BYTES);
      tma_tile<BN>(dst, map, j0, head < 0 ? hk : head, full);
    } else {
      load_rows<BN, BN>(pt, dst, base + static_cast<i64>(j0) * ss, ss, j1 - j0, vec);
      copies_arrive(full, vec);
    }
  }

  /// Kind of key tile [j0, j1) for this warpgroup's rows (0 skip, 1 full,
  /// 2 partial): attn_common::classify_tile, and for a query set's lazy
  /// rows the same rules with the lazy policy's causal window and sinks.
  __device__ __forceinline__ int classify(int j0, int j1) const {
    if constexpr (QS)
      if (lazy)
        return attn_common::classify_tile_as<Cfg, BN, true, Cfg::LAZY_WINDOW, Cfg::LAZY_SINKS,
                                             false>(*this, j0, j1);
    return attn_common::classify_tile<Cfg, BN>(*this, j0, j1);
  }

  /// Next key tile [j0, j1) of the CTA; false when done.
  __device__ __forceinline__ bool next_tile(int &j0, int &j1) {
    return attn_common::next_tile<Cfg, BN>(*this, j0, j1);
  }

  // ------------------------------------------------------- query sets --
  //
  // A query set's item (b, h, group, slot) packs rows of one row group: its
  // slot-th tile of 64 active rows, or after those its lazy rows, 64 at a
  // time (an item past both has no rows). Active rows attend with the op's
  // mask and the group's block-set row, lazy rows with the lazy policy;
  // masks are evaluated at each row's own position, and tile skipping uses
  // the span [row0, rowEnd) of the (ascending) rows, a superset.

  /// Row (of the op) of the item's m-th row, m < qCount. The m-th lazy
  /// row of the group is qG0 + m + c, c = the number of active rows below
  /// it: the k with a_k - qG0 - k <= m (a count that grows with m).
  __device__ __forceinline__ int tile_row(int m) const {
    const int *a = qRows + qA;
    if (!lazy)
      return a[qFirst + m];
    const int mm = qFirst + m;
    int lo = 0, hi = qN;
    while (lo < hi) {
      const int mid = (lo + hi) >> 1;
      if (a[mid] - qG0 - mid <= mm)
        lo = mid + 1;
      else
        hi = mid;
    }
    return qG0 + mm + lo;
  }

  /// Query set, item i: (b, h, hk), its row group (qGI, first row qG0), the
  /// slot within the group and the (b, h)'s active rows qRows.
  __device__ __forceinline__ void decode_item_q(int i) {
    const int hb = i / nT, r = i - hb * nT;
    h = hb % Cfg::HEADS, b = hb / Cfg::HEADS, hk = h / G;
    qGI = r / QSLOTS;
    qSlot = r - qGI * QSLOTS;
    if (Cfg::CAUSAL && !Cfg::HAS_BLOCKS) // later groups have longer rows: first
      qGI = nT / QSLOTS - 1 - qGI;
    qG0 = qGI * QGR;
    qRows = p.q_rows + (static_cast<i64>(b) * Cfg::HEADS + h) * Sq;
  }

  /// Query set, after decode_item_q with qA, qN known: the tile's part of
  /// the group (lazy, qFirst, qCount). false when the item has no rows.
  __device__ __forceinline__ bool set_tile_q() {
    const int nLazy = min(Sq, qG0 + QGR) - qG0 - qN, actTiles = (qN + WR - 1) / WR;
    lazy = qSlot >= actTiles;
    qFirst = (lazy ? qSlot - actTiles : qSlot) * WR;
    qCount = min(WR, (lazy ? nLazy : qN) - qFirst);
    return qCount > 0;
  }

  /// Query set: the key schedule of the rows [row0, rowEnd). Active rows:
  /// the op's mask and the group's block-set row (schedule_init with one
  /// tile per group); lazy rows: the lazy policy's ranges, no list.
  __device__ __forceinline__ void schedule_q() {
    if (!lazy) {
      attn_common::schedule_init<Cfg, QGR>(*this, qGI);
      return;
    }
    attn_common::KeySchedule &s = sched;
    attn_common::Range mr[2];
    attn_common::mask_ranges(true, true, Cfg::LAZY_WINDOW, Cfg::LAZY_SINKS, row0 + Skv - Sq,
                             rowEnd - 1 + Skv - Sq, Skv, mr);
    s.mr0 = mr[0], s.mr1 = mr[1];
    s.jn = 0, s.jhi = 0, s.list = nullptr, s.cnt = 0, s.x = 0, s.runA = 0, s.runE = Skv;
    s.q = LAZY_LOCAL ? 0 : 2; // Lazy::zero: no key at all
  }

  /// Producer (QS): where item i's rows are. Thread 0 finds the group's
  /// active rows (qA, qN) and shares them through slot 2; threads < WR
  /// write the tile's rows to row_map(); all then read row0 / rowEnd.
  /// Every producer thread calls it (two named barriers).
  __device__ __forceinline__ void locate_rows(int pt, int i) {
    constexpr int kProducerBar = 8;
    const u32 share = item_slot(2);
    if (i < items)
      decode_item_q(i);
    if (pt == 0 && i < items) {
      const int cnt = p.q_counts[static_cast<i64>(b) * Cfg::HEADS + h];
      const int a0 = attn_common::lower_bound_int(qRows, cnt, qG0);
      const int a1 =
          a0 + attn_common::lower_bound_int(qRows + a0, cnt - a0, min(Sq, qG0 + QGR));
      st_shared_s32(share + 4, a0);
      st_shared_s32(share + 8, a1 - a0);
    }
    named_sync<128>(kProducerBar);
    if (i >= items)
      return;
    qA = ld_shared_s32(share + 4), qN = ld_shared_s32(share + 8);
    if (!set_tile_q())
      return;
    if (pt < qCount)
      st_shared_s32(row_map() + 4 * pt, tile_row(pt));
    named_sync<128>(kProducerBar);
    row0 = ld_shared_s32(row_map());
    rowEnd = ld_shared_s32(row_map() + 4 * (qCount - 1)) + 1;
  }

  /// Work item i: its (b, h, hk), rows [row0, rowEnd) and the start of its
  /// key schedule. false when the item has no rows (a short last query
  /// block of a block-set row; a query set's empty slot). With a query set
  /// qA, qN, row0 and rowEnd are set beforehand (locate_rows / the slot).
  __device__ __forceinline__ bool set_item(int i) {
    if constexpr (QS) {
      decode_item_q(i);
      if (!set_tile_q())
        return false;
      schedule_q();
      return true;
    }
    const int hb = i / nT, r = i - hb * nT;
    h = hb % Cfg::HEADS, b = hb / Cfg::HEADS, hk = h / G;
    // Dense causal: within a head, the longest row tiles (largest index) first.
    const int tIdx = (Cfg::CAUSAL && !Cfg::HAS_BLOCKS) ? nT - 1 - r : r;
    attn_common::cta_rows<Cfg, BM>(tIdx, Sq, row0, rowEnd);
    if (row0 >= rowEnd)
      return false;
    attn_common::schedule_init<Cfg, BM>(*this, tIdx);
    return true;
  }

  /// The producer's next work item after `item`: dynamic (an atomic counter,
  /// items taken in order by whichever CTA is free, so the items in flight
  /// stay a narrow window of (batch, head)s whose K/V share L2, and the
  /// longest tiles of a head go first) or static round-robin without a
  /// counter. Without TMA all 128 producer threads need it: thread 0 reads
  /// the counter and shares it through a spare slot.
  __device__ __forceinline__ int fetch_item(int pt, int item) const {
    if (!p.next_item)
      return item + gridDim.x;
    if (tma_loads() && !QS) // only thread 0 produces
      return gridDim.x + atomicAdd(p.next_item, 1);
    // Named barrier of the producer warpgroup: above the consumers' ping-pong
    // ids (1 .. consumer warpgroups).
    constexpr int kProducerBar = 8;
    const u32 share = item_slot(2);
    if (pt == 0)
      st_shared_s32(share, gridDim.x + atomicAdd(p.next_item, 1));
    named_sync<128>(kProducerBar);
    const int next = ld_shared_s32(share);
    named_sync<128>(kProducerBar); // everyone read it before thread 0 writes again
    return next;
  }

  /// Producer warpgroup (pt: thread 0..127): for every work item of the CTA,
  /// Q (once the consumers released the previous item's Q), then K and V of
  /// every key tile into the stage rings, in the consumers' order. Stage
  /// and phase counters run on across items, so the next item's loads
  /// overlap the current item's last tiles and epilogue.
  /// With a query set every producer thread stays: they gather Q (thread 0
  /// alone still issues the K/V TMAs).
  __device__ __forceinline__ void produce(int pt) {
    const bool tma = tma_loads();
    if (tma && pt != 0 && !QS)
      return; // one thread issues every TMA
    if (tma) {
      tma_prefetch_map(&p.tq);
      tma_prefetch_map(&p.tk);
      tma_prefetch_map(&p.tv);
      if constexpr (VSlashOf<Cfg>::value)
        tma_prefetch_map(&p.tkc), tma_prefetch_map(&p.tvc);
    }
    int ks = 0, vs = 0, slot = 0;
    u32 kph = 0, vph = 0, qph = 0, sph = 0;
    for (int item = blockIdx.x;; item = fetch_item(pt, item)) {
      if constexpr (QS)
        locate_rows(pt, item);
      // Hand the item to the consumers (slot reused once they took it).
      if (pt == 0) {
        mbar_wait(item_empty(slot), sph ^ 1);
        st_shared_s32(item_slot(slot), item < items ? item : -1);
        if constexpr (QS) {
          st_shared_s32(item_slot(slot) + 4, qA);
          st_shared_s32(item_slot(slot) + 8, qN);
          st_shared_s32(item_slot(slot) + 12, row0);
          st_shared_s32(item_slot(slot) + 16, rowEnd);
        }
        mbar_arrive(item_full(slot)); // release: the index is visible with it
      }
      if (++slot == 2)
        slot = 0, sph ^= 1;
      if (item >= items)
        break;
      int j0, j1;
      if (!set_item(item) ||
          !next_tile(j0, j1)) // no key tile: no load (the consumers wait for none)
        continue;
      // A fresh barrier counts as having completed the phase before its
      // first: waiting for parity ph ^ 1 passes on the first round.
      mbar_wait(q_empty(), qph ^ 1);
      qph ^= 1;
      if constexpr (QS) {
        attn_common::bind_qkv(*this);
        gather_rows(pt, sbase, qBase, p.q.ss, qCount, qVec);
        copies_arrive(q_full(), qVec);
        if (tma && pt != 0)
          continue; // thread 0 issues the K/V TMAs
      } else if (tma) {
        mbar_expect_tx(q_full(), NWG * Q_WG_BYTES);
#pragma unroll
        for (int w = 0; w < NWG; ++w)
          tma_tile<WR>(sbase + w * Q_WG_BYTES, p.tq, row0 + w * WR, h, q_full());
      } else {
        attn_common::bind_qkv(*this);
        load_rows<BM, WR>(pt, sbase, qBase + static_cast<i64>(row0) * p.q.ss, p.q.ss, rowEnd - row0,
                          qVec);
        copies_arrive(q_full(), qVec);
      }
      do {
        if constexpr (VSlashOf<Cfg>::value) {
          if (sched.src) { // gathered columns: rows of kc / vc of this query head
            const i64 off = (static_cast<i64>(b) * Cfg::HEADS + h) * p.vs.nv * D;
            const u16 *kc = static_cast<const u16 *>(p.vs.kc) + off,
                      *vc = static_cast<const u16 *>(p.vs.vc) + off;
            mbar_wait(k_empty(ks), kph ^ 1);
            load_kv(pt, tma, k_stage(ks), p.tkc, kc, D, true, j0, j1, k_full(ks), h);
            mbar_wait(v_empty(vs), vph ^ 1);
            load_kv(pt, tma, v_stage(vs), p.tvc, vc, D, true, j0, j1, v_full(vs), h);
            if (++ks == KS)
              ks = 0, kph ^= 1;
            if (++vs == VS)
              vs = 0, vph ^= 1;
            continue;
          }
        }
        mbar_wait(k_empty(ks), kph ^ 1);
        load_kv(pt, tma, k_stage(ks), p.tk, kBase, p.k.ss, kVec, j0, j1, k_full(ks));
        mbar_wait(v_empty(vs), vph ^ 1);
        load_kv(pt, tma, v_stage(vs), p.tv, vBase, p.v.ss, vVec, j0, j1, v_full(vs));
        if (++ks == KS)
          ks = 0, kph ^= 1;
        if (++vs == VS)
          vs = 0, vph ^= 1;
      } while (next_tile(j0, j1));
    }
    if (!tma || QS)
      cp_async_wait_all(); // leave no copy of this thread in flight
  }

  // ----------------------------------------------------------------- math --

  /// Issues this warpgroup's wgmma work on the tile in K stage `ks`:
  /// S = Q.K^T, then (PV) the pending O += P.V of the previous tile, as two
  /// commit groups. Every wgmma operation of the loop is unconditional (a
  /// skipped tile still runs its S product, and P = 0 stands for "nothing
  /// pending"): wgmma under a branch the compiler cannot prove warpgroup-
  /// uniform gets serialized by ptxas (C7518 / C7520). Returns the tile's
  /// kind for this warpgroup (0: skip, 1: full, 2: partial).
  template <bool PV> __device__ __forceinline__ int issue(int ks, int j0, int j1) {
    int kind = wgActive ? classify(j0, j1) : 0;
    if constexpr (PV) {
      fence_regs(o);
      fence_regs(pa);
    }
    wg_fence();
    {
      const u64 qd = make_desc(sbase + wg * Q_WG_BYTES, 16, 1024);
      const u64 kd = make_desc(k_stage(ks), 16, 1024);
#pragma unroll
      for (int kk = 0; kk < KD; ++kk) {
        const u64 qo = kstep_offset<WR>(kk), ko = kstep_offset<BN>(kk);
        if (kk == 0)
          wgmma_ss<T, BN, 0>(sc, qd + qo, kd + ko);
        else
          wgmma_ss<T, BN, 1>(sc, qd + qo, kd + ko);
      }
      wg_commit();
    }
    if constexpr (PV)
      issue_pv();
    return kind;
  }

  /// O += P.V of the pending P (V stage pendV), one commit group.
  __device__ __forceinline__ void issue_pv() {
    const u64 vd = make_desc(pendV, BN * 128, 1024);
#pragma unroll
    for (int kk = 0; kk < KN; ++kk) // 16 keys = two 8-row swizzle atoms = 2048 B
      wgmma_rs<T, D>(o, pa[kk], vd + static_cast<u64>((kk * 2048) >> 4));
    wg_commit();
  }

  /// Completes the tile issued by issue<PV>(): mask + online softmax of S
  /// (while the tensor cores finish the pending P.V), then O rescale and P
  /// packing for the next P.V. `kEmpty` / `vEmpty`: the barriers that free
  /// the tile's K stage (S done) and the pending P.V's V stage (P.V done);
  /// `vs`: the tile's V stage; `last`: the item's last tile (frees Q).
  template <bool PV>
  __device__ __forceinline__ void complete(int kind, u32 kEmpty, u32 vEmpty, int vs, int j0, int j1,
                                           bool last) {
    float corr[2];
    if constexpr (PV)
      wg_wait<1>(); // S done; P.V may still run
    else
      wg_wait<0>();
    fence_regs(sc);
    const bool lead = (wlane & 31) == 0;
    mbar_arrive_if(kEmpty, lead); // this warp no longer reads the K stage
    // After the item's last S product its Q is free for the next item.
    mbar_arrive_if(q_empty(), lead && last);
    {
      const int w = wlane >> 5, lane = wlane & 31, g = lane >> 2, t = lane & 3;
      if constexpr (!kPos) {
#pragma unroll
        for (int e = 0; e < NS; ++e)
          sc[e] *= kC;
      }
      // A skipped tile (kind 0) runs the same code fully masked: P = 0 and
      // corr = 1, so the next P.V adds exact zeros (no branch that would
      // make the compiler keep a second set of 64 registers for that case).
      if (kind != 1) {
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          // Row i allows key j iff j < hiEx and (no window, j > loW or
          // j < SINKS) [and the pattern admits (i, j)]: the rule of
          // token_allowed with the range end j1, relative to j0.
          // A query set's lazy rows: causal, LAZY_WINDOW, LAZY_SINKS, no pattern.
          bool lz = false;
          if constexpr (QS)
            lz = lazy;
          const int i = QS ? rowI[hh] : wr0 + w * 16 + g + hh * 8, ip = i + Skv - Sq;
          const int hiEx = kind == 0 ? 0 : (Cfg::CAUSAL || lz ? min(j1, ip + 1) : j1) - j0;
          const int loW = ip - (lz ? Cfg::LAZY_WINDOW : Cfg::WINDOW) - j0;
          const int sinkEx = (lz ? Cfg::LAZY_SINKS : Cfg::SINKS) - j0;
#pragma unroll
          for (int n = 0; n < BN / 8; ++n)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
              const int jr = n * 8 + 2 * t + e;
              bool ok = jr < hiEx;
              if (Cfg::WINDOW > 0 || lz)
                ok = ok && (jr > loW || jr < sinkEx);
              if constexpr (Cfg::HAS_PATTERN)
                ok = ok &&
                     (lz || pattern_block(Cfg::P_CAUSAL, Cfg::P_WINDOW, Cfg::P_SINKS, i / Cfg::P_BQ,
                                          (j0 + jr) / Cfg::P_BK, Cfg::P_BQ, Cfg::P_BK, Sq, Skv));
              if (!ok)
                sc[n * 4 + 2 * hh + e] = neg_inf();
            }
        }
      }
      // Online softmax (log2 domain), rows g (hh = 0) and g + 8 (hh = 1).
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        float mx = neg_inf();
#pragma unroll
        for (int n = 0; n < BN / 8; ++n)
          mx = fmaxf(mx, fmaxf(sc[n * 4 + 2 * hh], sc[n * 4 + 2 * hh + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        float mNew = fmaxf(mrow[hh], mx * kF);
        // Nothing allowed yet: subtract 0 so 2^(-inf - base) = 0, not NaN.
        float base = mNew == neg_inf() ? 0.f : mNew;
        corr[hh] = ex2(mrow[hh] - base);
        mrow[hh] = mNew;
        float sum = 0.f;
#pragma unroll
        for (int n = 0; n < BN / 8; ++n)
#pragma unroll
          for (int e = 2 * hh; e < 2 * hh + 2; ++e) {
            float v = ex2(fmaf(sc[n * 4 + e], kF, -base));
            sc[n * 4 + e] = v;
            sum += v;
          }
        lrow[hh] = lrow[hh] * corr[hh] + sum;
      }
    }
    if constexpr (PV) {
      wg_wait<0>();
      mbar_arrive_if(vEmpty, lead); // the pending P.V no longer reads its V stage
    }
    // Pin o and the P values behind the wait: the packing below overwrites
    // the registers the pending P.V reads (ptxas serializes every wgmma,
    // C7513, if a write to them can move above the wait).
    fence_regs(o);
    fence_regs(sc);
#pragma unroll
    for (int dn = 0; dn < D / 8; ++dn) {
      o[dn * 4 + 0] *= corr[0];
      o[dn * 4 + 1] *= corr[0];
      o[dn * 4 + 2] *= corr[1];
      o[dn * 4 + 3] *= corr[1];
    }
    // S accumulators of n-chunks 2kk, 2kk + 1 are exactly the A fragment of
    // k-step kk (rows g / g + 8, keys 16kk + 2t (+1) and 16kk + 8 + 2t (+1)).
#pragma unroll
    for (int kk = 0; kk < KN; ++kk) {
      pa[kk][0] = pack2<T>(sc[8 * kk + 0], sc[8 * kk + 1]);
      pa[kk][1] = pack2<T>(sc[8 * kk + 2], sc[8 * kk + 3]);
      pa[kk][2] = pack2<T>(sc[8 * kk + 4], sc[8 * kk + 5]);
      pa[kk][3] = pack2<T>(sc[8 * kk + 6], sc[8 * kk + 7]);
    }
    pendV = v_stage(vs);
  }

  /// Issues and completes the last pending P.V.
  __device__ __forceinline__ void drain() {
    fence_regs(o);
    fence_regs(pa);
    wg_fence();
    issue_pv();
    wg_wait<0>();
    fence_regs(o);
  }

  /// Normalises and writes O (and LSE) of this warpgroup's valid rows.
  __device__ __forceinline__ void finish() {
    const int w = wlane >> 5, lane = wlane & 31, g = lane >> 2, t = lane & 3;
    u16 *oBase = attn_common::slice<u16>(p.o, b, h);
    const bool oVec = attn_common::rows_aligned<4>(p.o);
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      float l = lrow[hh];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      int i = wr0 + w * 16 + g + hh * 8;
      if constexpr (QS) {
        if (w * 16 + g + hh * 8 >= qCount)
          continue;
        i = rowI[hh];
      } else if (i >= wr1) {
        continue;
      }
      attn_common::store_row<Cfg>(*this, oBase, oVec, i, t, mrow[hh], l,
                                  [&](int dn, int e) { return o[dn * 4 + 2 * hh + e]; });
    }
  }

  /// Ping-pong turns (PP): warpgroups issue in round-robin order; each waits
  /// for its predecessor's previous issue and lets its successor go after
  /// its own. The last warpgroup hands warpgroup 0 the first turn at the
  /// start; warpgroup 0 takes that extra hand-over back at the end, so every
  /// arrival is matched by a sync.
  __device__ __forceinline__ void turn_begin() const {
    if constexpr (PP)
      named_sync<256>(1 + wg);
  }
  __device__ __forceinline__ void turn_end() const {
    if constexpr (PP)
      named_arrive<256>(1 + (wg + 1) % NWG);
  }

  /// Consumer warpgroup `wg` (0 .. NWG-1): its 64 rows of every work item of
  /// the CTA, over every key tile; stage and phase counters run on across
  /// items as in produce().
  __device__ __forceinline__ void consume() {
    if (PP && wg == NWG - 1)
      named_arrive<256>(1); // warpgroup 0 goes first
    int ks = 0, vs = 0, slot = 0;
    u32 kph = 0, vph = 0, qph = 0, sph = 0;
    for (;;) {
      mbar_wait(item_full(slot), sph);
      const int item = ld_shared_s32(item_slot(slot));
      if constexpr (QS) {
        qA = ld_shared_s32(item_slot(slot) + 4), qN = ld_shared_s32(item_slot(slot) + 8);
        row0 = ld_shared_s32(item_slot(slot) + 12), rowEnd = ld_shared_s32(item_slot(slot) + 16);
      }
      __syncwarp();
      mbar_arrive_if(item_empty(slot), (wlane & 31) == 0);
      if (++slot == 2)
        slot = 0, sph ^= 1;
      if (item < 0)
        break;
      if (!set_item(item))
        continue;
      if constexpr (QS) {
        // One consumer; tile skipping works on the rows' span, the masks on
        // each row's own position (a row past qCount copies row0's).
        wr0 = row0, wr1 = rowEnd, wgActive = true;
        const int fr = (wlane >> 5) * 16 + ((wlane & 31) >> 2);
#pragma unroll
        for (int hh = 0; hh < 2; ++hh)
          rowI[hh] = fr + 8 * hh < qCount ? tile_row(fr + 8 * hh) : row0;
      } else {
        wr0 = row0 + wg * WR;
        wr1 = min(wr0 + WR, rowEnd);
        wgActive = wr0 < wr1;
      }
      pendV = 0;
#pragma unroll
      for (int hh = 0; hh < 2; ++hh)
        mrow[hh] = neg_inf(), lrow[hh] = 0.f;
#pragma unroll
      for (int e = 0; e < NO; ++e)
        o[e] = 0.f;
      // sc is first written by the zero-init wgmma, pa by complete<false>.

      int j0 = 0, j1 = 0;
      if (next_tile(j0, j1)) { // the same decision as in produce()
        int n0 = 0, n1 = 0;
        bool more = next_tile(n0, n1);
        mbar_wait(q_full(), qph);
        qph ^= 1;
        mbar_wait(k_full(ks), kph);
        fence_proxy_async(); // copies by other threads (no-TMA path) -> visible to wgmma
        turn_begin();
        int kind = issue<false>(ks, j0, j1);
        turn_end();
        complete<false>(kind, k_empty(ks), 0, vs, j0, j1, !more);
        // Stage and phase of the V stage the pending P.V reads.
        int pvs = vs;
        u32 pvph = vph;
        if (++ks == KS)
          ks = 0, kph ^= 1;
        if (++vs == VS)
          vs = 0, vph ^= 1;
        while (more) {
          j0 = n0, j1 = n1;
          more = next_tile(n0, n1);
          mbar_wait(k_full(ks), kph);
          mbar_wait(v_full(pvs), pvph);
          fence_proxy_async();
          turn_begin();
          kind = issue<true>(ks, j0, j1);
          turn_end();
          complete<true>(kind, k_empty(ks), v_empty(pvs), vs, j0, j1, !more);
          pvs = vs, pvph = vph;
          if (++ks == KS)
            ks = 0, kph ^= 1;
          if (++vs == VS)
            vs = 0, vph ^= 1;
        }
        mbar_wait(v_full(pvs), pvph);
        fence_proxy_async();
        drain();
        mbar_arrive_if(v_empty(pvs), (wlane & 31) == 0);
      }
      if (wgActive)
        finish();
    }
    if (PP && wg == 0)
      named_sync<256>(1); // the last warpgroup's hand-over after its last issue
  }

  __device__ __forceinline__ void run() {
    Sq = p.q.S, Skv = p.k.S;
    tid = threadIdx.x;
    nT = VSlashOf<Cfg>::value ? (Sq + WR - 1) / WR
                              : attn_wgmma_tiles(Sq, SHAPE, Cfg::HAS_BLOCKS ? p.blocks.nQB : 0);
    items = nT * Cfg::HEADS * p.q.B;
    if (tid == 0)
      init_barriers();
    __syncthreads(); // barriers initialised before anyone uses them
    // Broadcast so the compiler sees a warp-uniform value: the wgmma
    // descriptors derived from it then live in uniform registers (a per-thread
    // value would need R2UR moves between the wgmmas, which serializes them).
    const int role = __shfl_sync(0xffffffffu, tid / 128, 0);
    if (role == 0) {
      setmaxnreg_dec<attn_wgmma_producer_regs(SHAPE)>();
      produce(tid);
    } else {
      setmaxnreg_inc<CONSUMER_REGS>();
      wg = role - 1;
      wlane = tid % 128;
      consume();
    }
  }
};

} // namespace attn_wgmma_detail

/// sattn.attention forward on Hopper warpgroup MMA (sm_90a only). Launch as
/// described at attn_wgmma_threads / attn_wgmma_grid /
/// attn_wgmma_smem_bytes (or AttnWgmmaLaunch<Cfg>).
template <class Cfg> __device__ void attn_fwd_wgmma(const AttnParams &p) {
  static_assert(attn_common::TensorCoreCfgCheck<Cfg, true, true>::ok, "attn_fwd_wgmma: invalid Cfg");
  using F = attn_wgmma_detail::Fwd<Cfg>;
  static_assert(F::SMEM_BYTES == static_cast<unsigned>(AttnWgmmaLaunch<Cfg>::smem_bytes),
                "attn_fwd_wgmma: attn_wgmma_smem_bytes disagrees with the kernel's layout");
  static_assert(F::SMEM_BYTES <= 227 * 1024, "attn_fwd_wgmma: too much shared memory");
  static_assert(F::NT <= kAttnWgmmaThreads, "attn_fwd_wgmma: kAttnWgmmaThreads is too small");
#if defined(__CUDA_ARCH__) && !defined(__CUDA_ARCH_FEAT_SM90_ALL)
  // No wgmma on this target (sm_80/86/89, or the portable compute_90 PTX run
  // on Blackwell): the module still compiles, but this kernel must not be
  // launched there (attn_wgmma_supported(..., ccMajor) is false).
  __trap();
#else
  extern __shared__ __align__(16) unsigned char sattn_wgmma_smem[];
  if (blockDim.x != F::NT) // launched with the wrong shape: fail loudly, not silently
    __trap();
  if (F::TMA_MODE == 1 && !p.tma) // a TMA-only kernel without tensor maps
    __trap();
  const ptx::u32 raw = ptx::smem_addr(sattn_wgmma_smem);
  F(p, (raw + 1023u) & ~1023u).run();
#endif
}

} // namespace dev
} // namespace sattn

#endif // __CUDACC__

#endif // SATTN_DEVICE_ATTENTION_WGMMA_CUH
