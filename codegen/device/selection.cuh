//===- selection.cuh - block selection, head budgets, set algebra (§5-§9) -===//
//
// Device versions of runtime/reference/Selection.cpp. Every selection row is
// decided by the one order `ord` of docs/semantics.md §6 — forced blocks
// ascending, then the other visible blocks by descending score with ties to
// the lower index — and the rules differ only in how long a prefix of it
// they keep:
//   select_topk        |F| + max(0, K - |F|), K clipped to the visible blocks;
//   select_cumulative  the shortest prefix holding F with mass >= TAU * total,
//                      optionally capped at max(K, |F|);
//   head_budget        the cumulative length itself, per query head.
// blocks_from_list turns a user list (semantics §14) into the same sorted,
// duplicate-free form, through a bitmap of the row's KV blocks.
// One warp handles one row: it builds the row (averaged over a GQA group for
// per-group results), finds the kept prefix of `ord` — its length by a radix
// search over the score bits (top-k: by counts; the cumulative rules: by
// 64-bit fixed-point masses, exact and order-independent) — and writes the
// kept blocks in ascending order.
//
// First versions: simple and obviously right before fast.
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_DEVICE_SELECTION_CUH
#define SATTN_DEVICE_SELECTION_CUH

#include "masks.cuh"
#include "params.cuh"
#include "types.cuh"

namespace sattn {
namespace dev {

namespace selection_detail {

/// Row (b, h, I) of a block set: counts[row], indices[row * cap ...].
__device__ __forceinline__ i64 set_row(const BlockSetView &v, int b, int h, int I) {
  return (static_cast<i64>(b) * v.H + h) * v.nQB + I;
}

/// One selection row: its scores key[J] in shared memory (nKB floats) for
/// the visible blocks J < nV, of which nF are forced (semantics §5: the
/// sinks, the local blocks before the diagonal block `diag`, the diagonal);
/// which ones follows from J, so no per-entry class is stored.
struct Row {
  float *key;
  int nV, nF;
  int diag, fSink, fLocal;
  bool fDiag;
  __device__ __forceinline__ bool isFree(int J) const {
    return !forced_block(J, diag, fSink, fLocal, fDiag);
  }
};

/// Builds row I in key[] (shared memory, nKB entries) with one warp:
/// key[J] = score(J) for the visible J < nV. `score` may read key[J]
/// itself (a row computed in place).
template <class Cfg, class Score>
__device__ Row build_row(float *key, int I, int Sq, int Skv, int nKB, Score score) {
  const int dk = diagonal_key(I, Cfg::BQ, Sq, Skv);
  Row r{key, visible_blocks(Cfg::CAUSAL, I, Cfg::BQ, Cfg::BK, Sq, Skv, nKB), 0,
        dk >= 0 ? dk / Cfg::BK : -1, Cfg::F_SINK, Cfg::F_LOCAL, Cfg::F_DIAG};
  const int lane = threadIdx.x % 32;
  for (int J0 = 0; J0 < r.nV; J0 += 32) { // warp-uniform trip count for the ballot
    const int J = J0 + lane;
    if (J < r.nV)
      r.key[J] = score(J);
    r.nF += __popc(__ballot_sync(0xffffffffu, J < r.nV && !r.isFree(J)));
  }
  __syncwarp();
  return r;
}

/// Loads row (b, og, I) for a result head og that covers query heads
/// [og * G, (og + 1) * G): key[J] = their mean score (summed in head order,
/// then divided, like the reference), for J < nV.
template <class Cfg, int G> __device__ Row load_row(const SelectParams &p, int b, int og, int I) {
  extern __shared__ float sattn_select_smem[];
  return build_row<Cfg>(sattn_select_smem, I, p.Sq, p.Skv, p.nKB, [&](int J) {
                          float s = 0.0f;
                          for (int h = og * G; h < (og + 1) * G; ++h)
                            s += p.scores[((static_cast<i64>(b) * Cfg::HEADS + h) * p.nQB + I) *
                                              p.nKB +
                                          J];
                          if (G > 1)
                            s /= static_cast<float>(G);
                          return s;
                        });
}

/// Order-preserving bits of a score: a larger score has larger bits; +0
/// and -0 are one value (they compare equal in `before`); NaN sorts last.
__device__ __forceinline__ unsigned score_bits(float s) {
  if (s != s)
    return 0u;
  const unsigned u = __float_as_uint(s == 0.0f ? 0.0f : s);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/// Top-k without sorting: flag[J] (aliasing key) = whether visible block J
/// is forced or among the first m free blocks of `ord` (1 <= m <= the free
/// blocks). A radix select finds the m-th largest score's bits T, 8 bits a
/// pass (integer histograms, so the same answer on every run); every free
/// block above T is kept, and the free blocks equal to T in index order
/// until m — exactly the first m of `ord`. O(nV) per pass instead of the
/// O(nV log^2 nV) of sorting. `hist`: 256 ints of shared memory owned by
/// the calling warp.
__device__ inline void mark_topk(const Row &r, int m, int *hist) {
  const int lane = threadIdx.x % 32, nV = r.nV;
  float *key = r.key;
  auto isFree = [&](int J) { return r.isFree(J); };
  unsigned prefix = 0u, mask = 0u;
  int remaining = m; // entries still to take at or below the current prefix
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int i = lane; i < 256; i += 32)
      hist[i] = 0;
    __syncwarp();
    for (int J = lane; J < nV; J += 32) {
      const unsigned u = score_bits(key[J]);
      if (isFree(J) && (u & mask) == prefix)
        atomicAdd(&hist[(u >> shift) & 255u], 1);
    }
    __syncwarp();
    // Lane l holds digits 255 - 8l down to 248 - 8l: lanes in descending
    // digit order, so an inclusive scan over lanes counts from the top.
    int c[8], own = 0;
#pragma unroll
    for (int i = 0; i < 8; ++i)
      own += c[i] = hist[255 - 8 * lane - i];
    int incl = own;
    for (int o = 1; o < 32; o <<= 1) {
      const int y = __shfl_up_sync(0xffffffffu, incl, o);
      if (lane >= o)
        incl += y;
    }
    const int excl = incl - own;
    const int src = __ffs(__ballot_sync(0xffffffffu, excl < remaining && remaining <= incl)) - 1;
    int digit = 0, above = excl;
    if (lane == src)
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        if (above + c[i] >= remaining) {
          digit = 255 - 8 * lane - i;
          break;
        }
        above += c[i];
      }
    digit = __shfl_sync(0xffffffffu, digit, src);
    remaining -= __shfl_sync(0xffffffffu, above, src);
    prefix |= static_cast<unsigned>(digit) << shift;
    mask |= 255u << shift;
    __syncwarp(); // histogram reads done before the next pass clears it
  }
  int taken = 0;                        // free blocks equal to T kept so far, in index order
  for (int J0 = 0; J0 < nV; J0 += 32) { // warp-uniform trip count for the ballot
    const int J = J0 + lane;
    bool keep = false, eq = false;
    if (J < nV) {
      const unsigned u = score_bits(key[J]);
      keep = !isFree(J) || u > prefix;
      eq = isFree(J) && u == prefix;
    }
    const unsigned be = __ballot_sync(0xffffffffu, eq);
    if (eq && taken + __popc(be & ((1u << lane) - 1u)) < remaining)
      keep = true;
    taken += __popc(be);
    if (J < nV)
      key[J] = keep ? 1.0f : 0.0f;
  }
  __syncwarp();
}

/// Shared memory one warp's radix searches use: 256 bin counts, then 256
/// bin masses (64-bit; the block must be 8-byte aligned).
enum : int { kRadixScratchInts = 256 * 3 };

/// Fixed-point mass of a score: score * 2^shift truncated (NaN, negative: 0).
__device__ __forceinline__ unsigned long long fixed_mass(float s, int shift) {
  return s > 0.0f ? __float2ull_rz(ldexpf(s, shift)) : 0ull;
}

/// Cumulative-τ length of a built row (§6): the shortest prefix of `ord`
/// holding F whose mass is >= TAU * total, found without sorting. Masses are
/// added as 64-bit fixed-point integers (the row's largest score scaled to
/// 2^39, so <= 8192 blocks sum below 2^52 and the target is exact in double):
/// integer sums do not depend on their order, so warp-wide atomics give the
/// same bits on every run, and the sums are closer to the float64 reference
/// than a serial fp32 sum. With the forced mass F, the free blocks needed are
/// the fewest m whose top-m mass in `ord` reaches target - F: a radix search
/// over the score bits, 8 bits a pass, keeping per bin the count and the
/// mass of the free candidates under the prefix found so far; after four
/// passes the cut value T is exact, every free block above T is taken and
/// the ties at T (all of the same mass) in index order until the target.
/// O(nV) per pass instead of the O(nV log^2 nV) sort it replaces. `scratch`:
/// kRadixScratchInts ints of the calling warp. Returns |F| + m (nV when the
/// target is never reached).
__device__ inline int cumulative_length(const Row &r, float tau, int *scratch) {
  using u64 = unsigned long long;
  const int lane = threadIdx.x % 32;
  int *count = scratch;
  u64 *mass = reinterpret_cast<u64 *>(scratch + 256);
  auto isFree = [&](int J) { return r.isFree(J); };
  float mx = 0.0f;
  for (int J = lane; J < r.nV; J += 32)
    mx = fmaxf(mx, r.key[J]); // fmaxf drops NaN
  mx = warp_max(mx);
  if (!(mx > 0.0f))
    return r.nF; // no mass: the target is 0
  int ex;
  frexpf(mx, &ex);
  const int shift = 39 - ex; // mx * 2^shift lies in [2^38, 2^39)
  u64 total = 0, forced = 0;
  for (int J = lane; J < r.nV; J += 32) {
    const u64 v = fixed_mass(r.key[J], shift);
    total += v;
    forced += isFree(J) ? 0ull : v;
  }
  for (int o = 16; o > 0; o >>= 1) {
    total += __shfl_xor_sync(0xffffffffu, total, o);
    forced += __shfl_xor_sync(0xffffffffu, forced, o);
  }
  const u64 target = static_cast<u64>(ceil(static_cast<double>(tau) * static_cast<double>(total)));
  if (forced >= target)
    return r.nF;
  u64 need = target - forced; // > 0
  unsigned prefix = 0u, maskBits = 0u;
  int above = 0; // free blocks strictly above the prefix, all taken
  for (int shift8 = 24; shift8 >= 0; shift8 -= 8) {
    for (int i = lane; i < 256; i += 32)
      count[i] = 0, mass[i] = 0;
    __syncwarp();
    for (int J = lane; J < r.nV; J += 32) {
      const unsigned u = score_bits(r.key[J]);
      if (isFree(J) && (u & maskBits) == prefix) {
        const unsigned d = (u >> shift8) & 255u;
        atomicAdd(&count[d], 1);
        atomicAdd(&mass[d], fixed_mass(r.key[J], shift));
      }
    }
    __syncwarp();
    // Lane l holds digits 255 - 8l down to 248 - 8l (descending): an
    // inclusive scan over lanes sums the mass from the top digit down.
    u64 own = 0;
    for (int i = 0; i < 8; ++i)
      own += mass[255 - 8 * lane - i];
    u64 incl = own;
    for (int o = 1; o < 32; o <<= 1) {
      const u64 y = __shfl_up_sync(0xffffffffu, incl, o);
      if (lane >= o)
        incl += y;
    }
    const unsigned reach = __ballot_sync(0xffffffffu, incl >= need);
    if (!reach)
      return r.nV; // the free candidates cannot reach the target (never past pass 0)
    const int src = __ffs(reach) - 1;
    int digit = 0, cntAbove = 0;
    u64 massAbove = incl - own; // mass of the lanes before src
    if (lane == src)
      for (int i = 0; i < 8; ++i) {
        const int d = 255 - 8 * lane - i;
        if (massAbove + mass[d] >= need) {
          digit = d;
          break;
        }
        massAbove += mass[d];
        cntAbove += count[d];
      }
    // Counts of the bins above: the earlier lanes' whole ranges, then src's.
    int laneCount = 0;
    for (int i = 0; i < 8; ++i)
      laneCount += count[255 - 8 * lane - i];
    int before = lane < src ? laneCount : 0;
    for (int o = 16; o > 0; o >>= 1)
      before += __shfl_xor_sync(0xffffffffu, before, o);
    digit = __shfl_sync(0xffffffffu, digit, src);
    above += before + __shfl_sync(0xffffffffu, cntAbove, src);
    need -= __shfl_sync(0xffffffffu, massAbove, src);
    prefix |= static_cast<unsigned>(digit) << shift8;
    maskBits |= 255u << shift8;
    __syncwarp(); // bin reads done before the next pass clears them
  }
  // Every free block at T has the same mass v > 0 (a zero v reaches no
  // positive need, so T's bin could not have been chosen).
  float vT = 0.0f;
  for (int J = lane; J < r.nV; J += 32)
    if (isFree(J) && score_bits(r.key[J]) == prefix)
      vT = r.key[J];
  vT = warp_max(vT);
  const u64 v = fixed_mass(vT, shift);
  const int ties = static_cast<int>((need + v - 1) / v);
  return r.nF + above + ties;
}

/// Keeps F plus the first L - |F| free blocks of `ord` (flag[J] aliasing
/// key): mark_topk, or every forced / every visible block at the ends.
__device__ inline void mark_first(const Row &r, int L, int *hist) {
  if (r.nF < L && L < r.nV) {
    mark_topk(r, L - r.nF, hist);
  } else { // L == nF: the forced blocks; L == nV: every visible block
    for (int J = threadIdx.x % 32; J < r.nV; J += 32)
      r.key[J] = L >= r.nV || !r.isFree(J);
    __syncwarp();
  }
}

/// Writes the visible blocks J < nV with flag[J] != 0 to row `row` of
/// `out` in ascending order (ballot + prefix count per chunk of 32), never
/// past out.cap, and the clamped count.
__device__ inline void write_flagged(const BlockSetView &out, i64 row, const float *flag, int nV) {
  const int lane = threadIdx.x % 32;
  const int cap = out.cap;
  int *dst = out.indices + row * cap;
  int n = 0;
  for (int J0 = 0; J0 < nV; J0 += 32) {
    const int J = J0 + lane;
    const bool kept = J < nV && flag[J] != 0.0f;
    const unsigned bal = __ballot_sync(0xffffffffu, kept);
    const int pos = n + __popc(bal & ((1u << lane) - 1u));
    if (kept && pos < cap)
      dst[pos] = J;
    n += __popc(bal);
  }
  if (lane == 0)
    out.counts[row] = min(n, cap);
}

/// Budget of result head og (§6): the static k, or the budget operand
/// shared (1 head), per result head, or per query head (max over the group).
template <class Cfg, bool HAS_BUDGET, int G>
__device__ int row_budget(const SelectParams &p, int kStatic, int b, int og, int I) {
  if (!HAS_BUDGET)
    return kStatic;
  if (p.budgetHeads == 1)
    return p.budget[static_cast<i64>(b) * p.nQB + I];
  if (p.budgetHeads == Cfg::OUT_HEADS)
    return p.budget[(static_cast<i64>(b) * Cfg::OUT_HEADS + og) * p.nQB + I];
  int K = 0;
  for (int h = og * G; h < (og + 1) * G; ++h)
    K = max(K, p.budget[(static_cast<i64>(b) * Cfg::HEADS + h) * p.nQB + I]);
  return K;
}

/// Merges row (b, h, I) of two ascending lists in one thread. Equal values
/// are written once (also repeats within one list, which well-formed sets
/// never have). Counts are clamped to each operand's cap; the output stops
/// at out.cap. `out` must not alias an operand.
template <bool UNION> __device__ void merge_row(const SetBinParams &p) {
  if (threadIdx.x != 0)
    return;
  const int I = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const i64 ra = set_row(p.a, b, h, I), rb = set_row(p.b, b, h, I), ro = set_row(p.out, b, h, I);
  const int na = min(max(p.a.counts[ra], 0), p.a.cap);
  const int nb = min(max(p.b.counts[rb], 0), p.b.cap);
  const int *la = p.a.indices + ra * p.a.cap;
  const int *lb = p.b.indices + rb * p.b.cap;
  const int cap = p.out.cap;
  int *dst = p.out.indices + ro * cap;
  int n = 0, last = -1, i = 0, j = 0;
  auto emit = [&](int v) {
    if (n > 0 && v == last)
      return;
    dst[n++] = v;
    last = v;
  };
  while (i < na && j < nb && n < cap) {
    const int x = la[i], y = lb[j];
    if (UNION || x == y)
      emit(min(x, y));
    i += x <= y;
    j += y <= x;
  }
  if (UNION) {
    for (; i < na && n < cap; ++i)
      emit(la[i]);
    for (; j < nb && n < cap; ++j)
      emit(lb[j]);
  }
  p.out.counts[ro] = n;
}

/// Config checks shared by the selection templates. Class templates (not
/// constexpr functions, which nvcc treats as host-only without
/// --expt-relaxed-constexpr) so the static_asserts fire on instantiation.
template <class Cfg> struct SelectChecks {
  static_assert(Cfg::HEADS > 0 && Cfg::KV_HEADS > 0 && Cfg::HEADS % Cfg::KV_HEADS == 0,
                "selection: HEADS must be a multiple of KV_HEADS (GQA)");
  static_assert(Cfg::BQ > 0 && Cfg::BK > 0, "selection: block sizes must be positive");
  static_assert(Cfg::F_SINK >= 0 && Cfg::F_LOCAL >= 0,
                "selection: forced sink / local counts must be >= 0 (semantics sec. 5)");
  static_assert(kSelectThreads == 32, "selection kernels run one warp per row");
  static constexpr bool ok = true;
};

template <class Cfg> struct SelectOutChecks {
  static_assert(SelectChecks<Cfg>::ok, "");
  static_assert(Cfg::OUT_HEADS > 0 && Cfg::HEADS % Cfg::OUT_HEADS == 0,
                "selection: OUT_HEADS must divide HEADS (per-head or per-GQA-group sets)");
  static_assert(Cfg::CAP >= 0, "selection: CAP must be >= 0");
  static constexpr bool ok = true;
};

template <class Cfg> struct SetChecks {
  static_assert(Cfg::BQ > 0 && Cfg::BK > 0, "block sets: block sizes must be positive");
  static_assert(Cfg::SET_HEADS > 0, "block sets: SET_HEADS must be positive");
  static constexpr bool ok = true;
};

template <class Cfg> struct TauChecks {
  static_assert(Cfg::TAU >= 0 && Cfg::TAU <= 1, "cumulative selection: TAU must lie in [0, 1]");
  static constexpr bool ok = true;
};

/// Top-k (§6) of one built row: keep F plus the first max(0, K - |F|) of
/// V \ F in ord, K clipped to |V|, by radix select (mark_topk), skipped when
/// the answer is F alone or all of V; writes row (b, og, I) of p.out.
template <class Cfg, int G>
__device__ void topk_row(const SelectParams &p, Row r, int b, int og, int I, int *scratch) {
  int K = row_budget<Cfg, Cfg::HAS_BUDGET, G>(p, p.k, b, og, I);
  K = min(max(K, 0), r.nV); // the host range-checked K; clip to the visible blocks
  mark_first(r, r.nF + max(0, K - r.nF), scratch);
  write_flagged(p.out, set_row(p.out, b, og, I), r.key, r.nV);
}

/// Cumulative τ (§6) of one built row: the shortest prefix of ord holding F
/// with mass >= TAU * total, plus SLACK more blocks; with a cap (K >= 0 or
/// a budget operand) at most max(cap, |F|) blocks.
template <class Cfg, int G>
__device__ void cumulative_row(const SelectParams &p, Row r, int b, int og, int I, int *scratch) {
  constexpr bool HAS_CAP = Cfg::HAS_BUDGET || Cfg::K >= 0;
  int L = min(r.nV, cumulative_length(r, static_cast<float>(Cfg::TAU), scratch) + Cfg::SLACK);
  if (HAS_CAP) {
    const int cap = row_budget<Cfg, Cfg::HAS_BUDGET, G>(p, Cfg::K, b, og, I);
    L = min(L, max(cap, r.nF));
  }
  mark_first(r, L, scratch);
  write_flagged(p.out, set_row(p.out, b, og, I), r.key, r.nV);
}

/// Head budget (§7) of query head h's built row: k_h = its cumulative-τ
/// length. Share::none writes budget_out[b, h, I]; Share::flattest takes
/// the max over the heads of (b, I) into budget_out[b, 0, I] with atomicMax
/// (integer max: the same result in any order; the host zero-fills it).
template <class Cfg>
__device__ void budget_row(const SelectParams &p, Row r, int b, int h, int I, int *scratch) {
  const int L = cumulative_length(r, static_cast<float>(Cfg::TAU), scratch);
  if (threadIdx.x % 32 != 0)
    return;
  if (Cfg::SHARE == Share::none)
    p.budget_out[(static_cast<i64>(b) * Cfg::HEADS + h) * p.nQB + I] = L;
  else
    atomicMax(&p.budget_out[static_cast<i64>(b) * p.nQB + I], L); // never across the batch
}

template <class Cfg> struct BudgetChecks {
  static_assert(SelectChecks<Cfg>::ok, "");
  static_assert(TauChecks<Cfg>::ok, "");
  static_assert(Cfg::SHARE == Share::none || Cfg::SHARE == Share::flattest,
                "head_budget: SHARE must be none or flattest");
  static constexpr bool ok = true;
};

template <class Cfg> struct TopkChecks {
  static_assert(SelectOutChecks<Cfg>::ok, "");
  static_assert(Cfg::HAS_BUDGET || Cfg::K >= 0,
                "select_topk: needs a budget (K >= 0 or a budget operand)");
  static constexpr bool ok = true;
};

template <class Cfg> struct CumulativeChecks {
  static_assert(SelectOutChecks<Cfg>::ok, "");
  static_assert(TauChecks<Cfg>::ok, "");
  static_assert(Cfg::K >= -1, "select_cumulative: K is a cap >= 0, or -1 for none");
  static_assert(Cfg::SLACK >= 0, "select_cumulative: SLACK must be >= 0");
  static constexpr bool ok = true;
};

} // namespace selection_detail

//===----------------------------------------------------------------------===//
// select_topk / select_cumulative (§6), head_budget (§7)
//===----------------------------------------------------------------------===//

/// Top-k (§6), selection_detail::topk_row. grid (nQB, OUT_HEADS, B), block
/// kSelectThreads (one warp), dynamic smem nKB * 4 bytes (the row).
template <class Cfg> __device__ void select_topk(const SelectParams &p) {
  static_assert(selection_detail::TopkChecks<Cfg>::ok, "");
  __shared__ int hist[256];
  constexpr int G = Cfg::HEADS / Cfg::OUT_HEADS;
  const int I = blockIdx.x, og = blockIdx.y, b = blockIdx.z;
  selection_detail::topk_row<Cfg, G>(p, selection_detail::load_row<Cfg, G>(p, b, og, I), b, og, I,
                                     hist);
}

/// Cumulative τ (§6), selection_detail::cumulative_row. Launch as select_topk.
template <class Cfg> __device__ void select_cumulative(const SelectParams &p) {
  static_assert(selection_detail::CumulativeChecks<Cfg>::ok, "");
  constexpr int G = Cfg::HEADS / Cfg::OUT_HEADS;
  const int I = blockIdx.x, og = blockIdx.y, b = blockIdx.z;
  __shared__ __align__(8) int scratch[selection_detail::kRadixScratchInts];
  selection_detail::cumulative_row<Cfg, G>(p, selection_detail::load_row<Cfg, G>(p, b, og, I), b,
                                           og, I, scratch);
}

/// Head budget (§7), selection_detail::budget_row. grid (nQB, HEADS, B),
/// block 32, dynamic smem nKB * 4 bytes.
template <class Cfg> __device__ void head_budget(const SelectParams &p) {
  static_assert(selection_detail::BudgetChecks<Cfg>::ok, "");
  const int I = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  __shared__ __align__(8) int scratch[selection_detail::kRadixScratchInts];
  selection_detail::budget_row<Cfg>(p, selection_detail::load_row<Cfg, 1>(p, b, h, I), b, h, I,
                                    scratch);
}

//===----------------------------------------------------------------------===//
// static_blocks (§8)
//===----------------------------------------------------------------------===//

/// Row I of the static pattern (every (b, h) gets the same list): threads
/// test chunks of NT consecutive blocks with pattern_block and place the
/// hits by a block-wide prefix count (warp ballots + per-warp totals), so
/// the list comes out ascending. grid (nQB, OUT_HEADS, B), block
/// kStaticThreads, no dynamic shared memory.
template <class Cfg> __device__ void static_blocks(const StaticBlocksParams &p) {
  static_assert(Cfg::BQ > 0 && Cfg::BK > 0, "static_blocks: block sizes must be positive");
  static_assert(Cfg::OUT_HEADS > 0, "static_blocks: OUT_HEADS must be positive");
  static_assert(Cfg::WINDOW >= 0 && Cfg::SINKS >= 0,
                "static_blocks: WINDOW and SINKS must be >= 0");
  static_assert(Cfg::WINDOW == 0 || Cfg::CAUSAL,
                "static_blocks: a window needs causal (semantics sec. 1)");
  static_assert(Cfg::SINKS == 0 || Cfg::WINDOW > 0,
                "static_blocks: sinks need a window (semantics sec. 1)");
  static_assert(kStaticThreads % 32 == 0 && kStaticThreads <= 1024,
                "static_blocks: kStaticThreads must be whole warps");
  constexpr int NT = kStaticThreads, NW = NT / 32;
  __shared__ int warpHits[NW];

  const int I = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int tid = threadIdx.x, lane = tid % 32, w = tid / 32;
  const i64 row = selection_detail::set_row(p.out, b, h, I);
  const int cap = p.out.cap, nKB = p.out.nKB;
  int *dst = p.out.indices + row * cap;

  int n = 0; // hits in earlier chunks (block-uniform)
  for (int J0 = 0; J0 < nKB; J0 += NT) {
    const int J = J0 + tid;
    const bool hit = J < nKB && pattern_block(Cfg::CAUSAL, Cfg::WINDOW, Cfg::SINKS, I, J, Cfg::BQ,
                                              Cfg::BK, p.Sq, p.Skv);
    const unsigned bal = __ballot_sync(0xffffffffu, hit);
    __syncthreads(); // the previous chunk's readers of warpHits are done
    if (lane == 0)
      warpHits[w] = __popc(bal);
    __syncthreads();
    int earlier = 0, chunk = 0;
#pragma unroll
    for (int v = 0; v < NW; ++v) {
      earlier += v < w ? warpHits[v] : 0;
      chunk += warpHits[v];
    }
    const int pos = n + earlier + __popc(bal & ((1u << lane) - 1u));
    if (hit && pos < cap)
      dst[pos] = J;
    n += chunk;
  }
  if (tid == 0)
    p.out.counts[row] = min(n, cap);
}

//===----------------------------------------------------------------------===//
// block_set_union / block_set_intersect (§9)
//===----------------------------------------------------------------------===//

/// Per-row set union (§9). grid (nQB, SET_HEADS, B), block kSetBinThreads,
/// no dynamic shared memory; one thread merges.
template <class Cfg> __device__ void block_set_union(const SetBinParams &p) {
  static_assert(selection_detail::SetChecks<Cfg>::ok, "");
  selection_detail::merge_row<true>(p);
}

/// Per-row set intersection (§9); launch as block_set_union.
template <class Cfg> __device__ void block_set_intersect(const SetBinParams &p) {
  static_assert(selection_detail::SetChecks<Cfg>::ok, "");
  selection_detail::merge_row<false>(p);
}

//===----------------------------------------------------------------------===//
// blocks_from_list (§14)
//===----------------------------------------------------------------------===//

/// A user list to the normalised form every consumer reads: one warp per
/// row (b, h, I), kListThreads / 32 rows per CTA; grid
/// (cdiv(nQB, kListThreads / 32), SET_HEADS, B), block kListThreads,
/// dynamic smem (kListThreads / 32) * cdiv(nKB, 32) * 4 bytes (one bitmap
/// of nKB bits per row). The warp sets bit J of its bitmap for every entry
/// J in [0, nKB) — entries outside are dropped: the device cannot report
/// them without a sync, and blocks past the end hold no keys — then writes
/// the set bits in ascending order (a warp prefix count over the words).
/// The result depends neither on the order or repeats of the list nor on
/// the thread schedule.
template <class Cfg> __device__ void blocks_from_list(const BlocksFromListParams &p) {
  static_assert(selection_detail::SetChecks<Cfg>::ok, "");
  static_assert(kListThreads % 32 == 0 && kListThreads <= 1024,
                "blocks_from_list: kListThreads must be whole warps");
  constexpr int kRows = kListThreads / 32;
  extern __shared__ unsigned sattn_list_bits[];
  const int lane = threadIdx.x % 32, w = threadIdx.x / 32;
  const int I = blockIdx.x * kRows + w, h = blockIdx.y, b = blockIdx.z;
  const BlockSetView &out = p.out;
  if (I >= out.nQB)
    return; // whole warp; the warps of a CTA never synchronise with each other
  const int nKB = out.nKB, nWords = (nKB + 31) / 32;
  unsigned *bits = sattn_list_bits + w * nWords;
  for (int x = lane; x < nWords; x += 32)
    bits[x] = 0u;
  __syncwarp();
  const int *src = p.list + b * p.sb + h * p.sh + I * p.sI;
  for (int s = lane; s < p.capIn; s += 32) {
    const int J = src[s];
    if (J >= 0 && J < nKB)
      atomicOr(&bits[J >> 5], 1u << (J & 31));
  }
  __syncwarp();
  const i64 row = selection_detail::set_row(out, b, h, I);
  const int cap = out.cap;
  int *dst = out.indices + row * cap;
  int n = 0; // set bits in earlier chunks (warp-uniform)
  for (int x0 = 0; x0 < nWords; x0 += 32) {
    const int x = x0 + lane;
    unsigned word = x < nWords ? bits[x] : 0u;
    const int c = __popc(word);
    int incl = c;
#pragma unroll
    for (int d = 1; d < 32; d <<= 1) {
      const int y = __shfl_up_sync(0xffffffffu, incl, d);
      if (lane >= d)
        incl += y;
    }
    int pos = n + incl - c;
    while (word) {
      const int bit = __ffs(static_cast<int>(word)) - 1;
      if (pos < cap)
        dst[pos] = x * 32 + bit;
      ++pos;
      word &= word - 1u;
    }
    n += __shfl_sync(0xffffffffu, incl, 31);
  }
  if (lane == 0)
    out.counts[row] = min(n, cap);
}

} // namespace dev
} // namespace sattn

#endif // SATTN_DEVICE_SELECTION_CUH
