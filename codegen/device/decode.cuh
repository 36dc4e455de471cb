//===- decode.cuh - split-KV decode attention on tensor cores (§12) -------===//
//
// decode_attn<Cfg>: sattn.decode_attention, a few query rows per head over a
// long KV cache (full, paged, or through a kept-token list), and the first
// phase of sattn.kv_slim (kv_slim_lse: the same kernel without V, giving
// the observation rows' LSE). Decode reads every cached byte once and does
// little math per byte, so the kernel is organised around memory traffic:
//
//   rows   = the G = Hq / Hkv query heads of one KV head times the Sd query
//            rows, packed into 16-row groups (one m16 tile of mma.sync), so
//            the whole GQA group shares each K/V load (row r: head
//            hk * G + r / Sd, query row r % Sd).
//   CTA    = (split, KV head x row group, batch); 4 warps. The entries of a
//            (batch, KV head) -- cache positions, or list entries of a token
//            set -- are cut into `splits` equal chunks (a multiple of the
//            key tile), computed on the device from the real length, so a
//            slimmed cache spreads its fewer entries over all CTAs.
//   key tile = kDecodeKeyTile entries; each warp owns 16 keys of every
//            tile and its own online softmax. Loads:
//            - dense rows (a dense cache, or a slimmed cache's rows, dense
//              per head) on sm_90+: thread 0 issues one TMA box per
//              64-column panel of K and V into a p.stages-deep ring of
//              128-byte-swizzled tiles, completing the stage's mbarrier
//              (no per-thread address math, which bounded the cp.async
//              version at ~60 % of the HBM bandwidth);
//            - otherwise (paged rows through the page table, kept tokens
//              through the list, older GPUs): every thread gathers 16-byte
//              chunks with cp.async into a kDecodeStages-deep padded ring.
//   end    = the 4 warps merge through shared memory; with one split the
//            CTA writes O and LSE, else it writes a normalised partial and
//            its log2 LSE, and the last CTA of the (batch, KV head, row
//            group) to finish (an atomic counter, zero at launch) merges the
//            partials: no second launch, no host round trip.
//
// Host side: everything above the `__CUDACC__` guard is plain C++.
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_DEVICE_DECODE_CUH
#define SATTN_DEVICE_DECODE_CUH

#include "params.cuh"

#if defined(__CUDACC__)
#define SATTN_DECODE_HD __host__ __device__
#else
#define SATTN_DECODE_HD
#endif

namespace sattn {
namespace dev {

/// Launch contract of decode_attn / kv_slim_lse: blockDim kDecodeThreads,
/// grid (splits, Hkv * row_groups, B), dynamic smem decode_smem_bytes(D).
enum : int {
  kDecodeThreads = 128,
  kDecodeKeyTile = 64,
  kDecodeRows = 16, ///< packed query rows per CTA (one mma m-tile)
  kDecodeStages = 3,
  kDecodeMaxSplits = 128, ///< the split merge keeps one weight per split in smem
};

/// Dynamic shared memory: the K/V ring (rows padded by 16 bytes so every
/// ldmatrix is conflict-free); the warps' merge area reuses it.
SATTN_DECODE_HD constexpr int decode_smem_bytes(int headDim) {
  return kDecodeStages * 2 * kDecodeKeyTile * (headDim + 8) * 2;
}

/// The TMA path's ring (p.tma): `stages` of K and V tiles in 64-column
/// panels of 128-byte rows from a 1024-byte aligned base, then its
/// mbarriers. Its depth is a launch choice (1 CTA per SM takes a deeper
/// ring than 2); the cp.async ring's bytes are the floor (merge area).
enum : int { kDecodeMaxTmaStages = 8 };
SATTN_DECODE_HD constexpr int decode_tma_stage_bytes(int headDim) {
  return 2 * (headDim / 64) * kDecodeKeyTile * 128;
}
SATTN_DECODE_HD constexpr int decode_tma_smem_bytes(int headDim, int stages) {
  return 1024 + stages * decode_tma_stage_bytes(headDim) + 8 * kDecodeMaxTmaStages;
}

/// Whether the decode kernels handle this head dim (mma k-steps of 16).
SATTN_DECODE_HD constexpr bool decode_supported(int headDim) {
  return headDim % 16 == 0 && headDim >= 16 && headDim <= 256;
}

} // namespace dev
} // namespace sattn

#if defined(__CUDACC__)

#include "ptx.cuh"
#include "tma.cuh"
#include "types.cuh"

namespace sattn {
namespace dev {
namespace decode_detail {

using namespace ptx;

template <int N> __device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

template <class Cfg, bool WITH_V> struct Decode {
  static constexpr DType T = Cfg::DTYPE;
  static constexpr int D = Cfg::HEAD_DIM;
  static constexpr int G = Cfg::HEADS / Cfg::KV_HEADS;
  static constexpr int BN = kDecodeKeyTile, NT = kDecodeThreads, NW = NT / 32;
  static constexpr int NS = kDecodeStages;
  static constexpr int LDS = D + 8, KD = D / 16, ND = D / 8, CPR = D / 8;
  static constexpr int TILE = BN * LDS; // elements of one K or V tile
  // Tile layout, one per head dim so compute() has one address formula:
  // with D % 64 == 0 (SWZ) a K or V tile is D / 64 panels of BN rows x 128 B
  // with the 128-byte swizzle (16-byte chunk c of row r at chunk c ^ (r & 7))
  // from a 1024-byte aligned base -- what TMA writes, and what the cp.async
  // copies write too; other head dims use rows padded by 16 bytes (cp.async
  // only). Both are conflict-free for ldmatrix. With TMA, one mbarrier per
  // stage follows the ring.
  static constexpr bool SWZ = D % 64 == 0;
  static constexpr int PANEL = BN * 128, KV_SWZ = (D / 64) * PANEL;
  static_assert(!SWZ || 1024 + NS * 2 * KV_SWZ <= decode_smem_bytes(D),
                "decode: the swizzled cp.async ring must fit in its shared memory");
  static_assert(2 * KV_SWZ == decode_tma_stage_bytes(D), "decode: TMA stage size");
  static constexpr float kC = Cfg::SCALE * 1.4426950408889634f;
  static constexpr bool kPos = Cfg::SCALE > 0.f;
  static constexpr float kF = kPos ? kC : 1.f;
  static constexpr int kNoRow = -2147483647 - 1;
  static_assert(decode_supported(D), "decode: head dim must be a multiple of 16 in [16, 256]");
  static_assert(Cfg::HEADS % Cfg::KV_HEADS == 0, "decode: HEADS % KV_HEADS must be 0");
  static_assert(NW * 16 == BN, "decode: each warp owns 16 keys of a tile");
  static_assert(NW * kDecodeRows * (D + 2) * 4 <= decode_smem_bytes(D) &&
                    kDecodeRows * (kDecodeMaxSplits + 1) * 4 <= decode_smem_bytes(D),
                "decode: the merge areas must fit in the K/V ring");

  const DecodeParams &p;
  u32 sbase;
  float *sm;
  int b, hk, rg, split, tid, warp, lane;
  int Sd, R;  // query rows per head, packed rows G * Sd
  int L;      // cache length (positions < L)
  int e0, e1; // this CTA's entries
  int minPos; // smallest i' over the group's rows
  const u16 *kBase, *vBase;
  bool kVec, vVec;
  const int *toks;                // this (b, hk)'s kept-token list, or null
  const int *pages;               // this batch's page-table row, or null
  bool tma;                       // dense rows loaded by TMA (SWZ layouts only)
  u32 ring;                       // the ring's base (1024-aligned with SWZ)
  int nst;                        // ring depth: p.stages with TMA, else NS
  int tmaRow0, tmaHead, tmaBatch; // TMA coordinates of entry 0

  u32 qa[KD][4];
  float o[WITH_V ? ND : 1][4];
  float mrow[2], lrow[2];
  int rowPos[2]; // i' of rows g and g + 8, kNoRow when past R

  __device__ __forceinline__ Decode(const DecodeParams &p_, unsigned char *smem)
      : p(p_), sbase(smem_addr(smem)), sm(reinterpret_cast<float *>(smem)) {}

  __device__ __forceinline__ int position(int e) const { return toks ? __ldg(toks + e) : e; }

  /// Element offset of cache row `e` (an entry) from the K or V base; the
  /// base is the (b, hk) slice, or the tensor itself for a paged cache.
  __device__ __forceinline__ i64 row_offset(const Tensor4 &t, int pos, int pg) const {
    return pages ? pg * t.sb + hk * t.sh + static_cast<i64>(pos % p.page) * t.ss
                 : static_cast<i64>(pos) * t.ss;
  }

  /// Copies `PER` 16-byte chunks of kDecodeKeyTile rows from `base` into
  /// the tile at `tile`; rows past e1 are zero (so 0 * V never makes NaN).
  template <int PER>
  __device__ __forceinline__ void copy_rows(u32 tile, const Tensor4 &t, const u16 *base, bool vec,
                                            const int (&pos)[PER], const int (&pg)[PER],
                                            const bool (&in)[PER]) const {
#pragma unroll
    for (int it = 0; it < PER; ++it) {
      int c = tid + it * NT;
      int r = c / CPR, k = c % CPR;
      u32 dst = chunk(tile, r, k);
      const u16 *g = base + (in[it] ? row_offset(t, pos[it], pg[it]) : 0) + k * 8;
      if (vec) {
        cp_async16(dst, g, in[it] ? 16 : 0);
      } else {
        u32 w[4] = {0u, 0u, 0u, 0u};
        if (in[it])
#pragma unroll
          for (int x = 0; x < 4; ++x)
            w[x] = static_cast<u32>(g[2 * x]) | (static_cast<u32>(g[2 * x + 1]) << 16);
        st_shared16(dst, w[0], w[1], w[2], w[3]);
      }
    }
  }

  /// K and V of entries [e, e + kDecodeKeyTile) into stage s. The rows'
  /// positions (and pages) are all read before the first copy is issued:
  /// the copies' memory clobber would otherwise serialise each lookup
  /// behind the previous copy.
  __device__ __forceinline__ void load_tile(int s, int e) const {
    constexpr int PER = BN * CPR / NT;
    static_assert(BN * CPR % NT == 0, "decode: tile chunks must divide among the threads");
    int pos[PER], pg[PER];
    bool in[PER];
#pragma unroll
    for (int it = 0; it < PER; ++it) {
      int r = (tid + it * NT) / CPR;
      in[it] = e + r < e1;
      pos[it] = in[it] ? position(e + r) : 0;
    }
#pragma unroll
    for (int it = 0; it < PER; ++it)
      pg[it] = pages && in[it] ? __ldg(pages + pos[it] / p.page) : 0;
    copy_rows<PER>(k_stage(s), p.k, kBase, kVec, pos, pg, in);
    if constexpr (WITH_V)
      copy_rows<PER>(v_stage(s), p.v, vBase, vVec, pos, pg, in);
  }

  __device__ __forceinline__ u32 k_stage(int s) const {
    return SWZ ? ring + s * 2 * KV_SWZ : sbase + 2 * s * TILE * 2;
  }
  __device__ __forceinline__ u32 v_stage(int s) const {
    return k_stage(s) + (SWZ ? KV_SWZ : TILE * 2);
  }
  /// Shared address of the 16-byte chunk `c` (of D / 8) of tile row `r`.
  __device__ __forceinline__ u32 chunk(u32 tile, int r, int c) const {
    return SWZ ? tile + (c >> 3) * PANEL + r * 128 + (((c & 7) ^ (r & 7)) << 4)
               : tile + (r * LDS + c * 8) * 2;
  }

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  __device__ __forceinline__ u32 bar(int s) const { return ring + nst * 2 * KV_SWZ + 8 * s; }

  /// Thread 0: K (and V) of entries [e, e + BN) into stage s by TMA, one box
  /// per 64-column panel; rows past the tensor are zero-filled, rows past
  /// e1 inside it are masked in compute().
  __device__ __forceinline__ void load_tile_tma(int s, int e) const {
    mbar_expect_tx(bar(s), (WITH_V ? 2 : 1) * KV_SWZ);
#pragma unroll
    for (int pn = 0; pn < D / 64; ++pn) {
      tma_load_4d(k_stage(s) + pn * PANEL, &p.tk, pn * 64, tmaRow0 + e, tmaHead, tmaBatch, bar(s));
      if constexpr (WITH_V)
        tma_load_4d(v_stage(s) + pn * PANEL, &p.tv, pn * 64, tmaRow0 + e, tmaHead, tmaBatch,
                    bar(s));
    }
  }
#endif

  /// Packed row r -> (query head, query row), or false past R.
  __device__ __forceinline__ bool row_of(int r, int &h, int &qi) const {
    if (r >= R)
      return false;
    h = hk * G + r / Sd, qi = r % Sd;
    return true;
  }

  /// Q fragments of this warp's lanes (rows g, g + 8 of the group).
  __device__ __forceinline__ void load_q() {
    const int g = lane >> 2, t = lane & 3;
    const u16 *qrow[2] = {nullptr, nullptr};
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      int h, qi;
      rowPos[hh] = kNoRow;
      if (row_of(rg * kDecodeRows + g + 8 * hh, h, qi)) {
        qrow[hh] = static_cast<const u16 *>(p.q.ptr) + b * p.q.sb + h * p.q.sh +
                   static_cast<i64>(qi) * p.q.ss;
        rowPos[hh] = qi + L - Sd;
      }
    }
#pragma unroll
    for (int kk = 0; kk < KD; ++kk)
#pragma unroll
      for (int x = 0; x < 4; ++x) {
        const u16 *r = qrow[x & 1];
        int d = kk * 16 + (x >> 1) * 8 + 2 * t;
        qa[kk][x] = r ? static_cast<u32>(r[d]) | (static_cast<u32>(r[d + 1]) << 16) : 0u;
      }
  }

  /// Keys [wk0, wk0 + 16) of the tile in stage s (entry eBase) for this warp.
  __device__ __forceinline__ void compute(int s, int eBase) {
    const int nv = min(BN, e1 - eBase);
    const int wk0 = warp * 16;
    if (wk0 >= nv)
      return;
    const int t = lane & 3;
    const u32 kb = k_stage(s), vb = v_stage(s);
    float sc[2][4];
#pragma unroll
    for (int n = 0; n < 2; ++n)
#pragma unroll
      for (int x = 0; x < 4; ++x)
        sc[n][x] = 0.f;
    const int kRow = (lane & 7) + (lane >> 4) * 8 + wk0, kCol = (lane >> 3) & 1;
#pragma unroll
    for (int kk = 0; kk < KD; ++kk) {
      u32 bk[4];
      ldsm_x4(bk, chunk(kb, kRow, 2 * kk + kCol));
      mma16816<T>(sc[0], qa[kk], bk[0], bk[1]);
      mma16816<T>(sc[1], qa[kk], bk[2], bk[3]);
    }
    if constexpr (!kPos) {
#pragma unroll
      for (int n = 0; n < 2; ++n)
#pragma unroll
        for (int x = 0; x < 4; ++x)
          sc[n][x] *= kC;
    }
    // Masking: entries past the range, rows past R, and (when a key may sit
    // after some row's position) the causal rule j <= i'.
    const int last = eBase + min(wk0 + 16, nv) - 1;
    // Rows past R need no mask: their Q is zero, their softmax is their own
    // and they are never written.
    bool partial = wk0 + 16 > nv || position(last) > minPos;
    if (partial) {
#pragma unroll
      for (int n = 0; n < 2; ++n)
#pragma unroll
        for (int x = 0; x < 4; ++x) {
          int jj = wk0 + n * 8 + 2 * t + (x & 1);
          int rp = rowPos[x >> 1];
          if (jj >= nv || rp == kNoRow || position(eBase + jj) > rp)
            sc[n][x] = neg_inf();
        }
    }
    // Online softmax (log2 domain), rows g and g + 8.
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      float mx =
          fmaxf(fmaxf(sc[0][2 * hh], sc[0][2 * hh + 1]), fmaxf(sc[1][2 * hh], sc[1][2 * hh + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      float mNew = fmaxf(mrow[hh], mx * kF);
      float base = mNew == neg_inf() ? 0.f : mNew; // nothing allowed yet: no NaN
      float corr = ex2(mrow[hh] - base);
      mrow[hh] = mNew;
      float sum = 0.f;
#pragma unroll
      for (int n = 0; n < 2; ++n)
#pragma unroll
        for (int x = 2 * hh; x < 2 * hh + 2; ++x) {
          float w = ex2(fmaf(sc[n][x], kF, -base));
          sc[n][x] = w;
          sum += w;
        }
      lrow[hh] = lrow[hh] * corr + sum;
      if constexpr (WITH_V) {
#pragma unroll
        for (int dn = 0; dn < ND; ++dn) {
          o[dn][2 * hh] *= corr;
          o[dn][2 * hh + 1] *= corr;
        }
      }
    }
    if constexpr (WITH_V) {
      u32 pa[4] = {pack2<T>(sc[0][0], sc[0][1]), pack2<T>(sc[0][2], sc[0][3]),
                   pack2<T>(sc[1][0], sc[1][1]), pack2<T>(sc[1][2], sc[1][3])};
      const int vRow = (lane & 7) + ((lane >> 3) & 1) * 8 + wk0, vCol = lane >> 4;
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        u32 bv[4];
        ldsm_x4_t(bv, chunk(vb, vRow, 2 * dp + vCol));
        mma16816<T>(o[2 * dp], pa, bv[0], bv[1]);
        mma16816<T>(o[2 * dp + 1], pa, bv[2], bv[3]);
      }
    }
  }

  /// Writes row r's final O (normalised) and LSE (natural log).
  __device__ __forceinline__ void store_final(int r, int d, float ov, bool lseToo, float lse2) {
    int h, qi;
    if (!row_of(r, h, qi))
      return;
    if constexpr (WITH_V)
      store_elem<T>(p.o.ptr, offset(p.o, b, h, qi, d), ov);
    if (lseToo && p.lse)
      p.lse[(static_cast<i64>(b) * Cfg::HEADS + h) * Sd + qi] =
          lse2 == neg_inf() ? neg_inf() : lse2 * 0.6931471805599453f;
  }

  /// Merges the warps, then the splits (last CTA), and writes the result.
  __device__ __forceinline__ void finish() {
    const int g = lane >> 2, t = lane & 3;
    float *ms = sm, *ls = sm + NW * kDecodeRows, *os = sm + 2 * NW * kDecodeRows;
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      float l = lrow[hh];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      int r = g + 8 * hh;
      if (t == 0)
        ms[warp * kDecodeRows + r] = mrow[hh], ls[warp * kDecodeRows + r] = l;
      if constexpr (WITH_V)
#pragma unroll
        for (int dn = 0; dn < ND; ++dn)
#pragma unroll
          for (int e = 0; e < 2; ++e)
            os[(warp * kDecodeRows + r) * D + dn * 8 + 2 * t + e] = o[dn][2 * hh + e];
    }
    __syncthreads();
    const int r0 = rg * kDecodeRows;
    const i64 part = ((static_cast<i64>(b) * Cfg::KV_HEADS + hk) * p.row_groups + rg);
    constexpr int DW = WITH_V ? D : 1; // columns merged per row
    for (int idx = tid; idx < kDecodeRows * DW; idx += NT) {
      int r = idx / DW, d = idx % DW;
      float M = neg_inf();
#pragma unroll
      for (int w = 0; w < NW; ++w)
        M = fmaxf(M, ms[w * kDecodeRows + r]);
      float l = 0.f, acc = 0.f;
      if (M != neg_inf())
#pragma unroll
        for (int w = 0; w < NW; ++w) {
          float f = ex2(ms[w * kDecodeRows + r] - M);
          l += ls[w * kDecodeRows + r] * f;
          if constexpr (WITH_V)
            acc += os[(w * kDecodeRows + r) * D + d] * f;
        }
      bool empty = !(l > 0.f);
      float ov = empty ? 0.f : acc / l;
      float lse2 = empty ? neg_inf() : M + log2f(l);
      if (p.splits == 1) {
        store_final(r0 + r, d, ov, d == 0, lse2);
      } else {
        i64 at = (part * p.splits + split) * kDecodeRows + r;
        if constexpr (WITH_V)
          p.part_o[at * D + d] = ov;
        if (d == 0)
          p.part_lse[at] = lse2;
      }
    }
    if (p.splits == 1)
      return;
    // The last CTA of this (b, hk, rg) to get here merges every split.
    __threadfence();
    __syncthreads();
    __shared__ int lastFlag;
    if (tid == 0)
      lastFlag = atomicAdd(p.done + part, 1) == p.splits - 1;
    __syncthreads();
    if (!lastFlag)
      return;
    __threadfence();
    // Split weights of every row into shared memory first (the loads are
    // independent, so they overlap), then one pass over the partial O.
    float *wt = sm, *rowLse = sm + kDecodeRows * kDecodeMaxSplits;
    const int S = p.splits;
    const i64 at0 = part * S * kDecodeRows;
    for (int idx = tid; idx < kDecodeRows * S; idx += NT) {
      int r = idx / S, s = idx % S;
      wt[r * kDecodeMaxSplits + s] = __ldcg(p.part_lse + at0 + s * kDecodeRows + r);
    }
    __syncthreads();
    if (tid < kDecodeRows) {
      float *w = wt + tid * kDecodeMaxSplits;
      float M = neg_inf();
      for (int s = 0; s < S; ++s)
        M = fmaxf(M, w[s]);
      float tot = 0.f;
      for (int s = 0; s < S; ++s) {
        float f = M == neg_inf() ? 0.f : ex2(w[s] - M);
        w[s] = f;
        tot += f;
      }
      for (int s = 0; s < S; ++s)
        w[s] = tot > 0.f ? w[s] / tot : 0.f;
      rowLse[tid] = tot > 0.f ? M + log2f(tot) : neg_inf();
    }
    __syncthreads();
    // Each thread owns columns d of all 16 rows: 16 independent loads per
    // split keep the latency of the partials (in L2) overlapped.
    for (int d = tid; d < DW; d += NT) {
      float acc[kDecodeRows];
#pragma unroll
      for (int r = 0; r < kDecodeRows; ++r)
        acc[r] = 0.f;
      if constexpr (WITH_V) {
        const float *src = p.part_o + at0 * D + d;
#pragma unroll 2
        for (int s = 0; s < S; ++s)
#pragma unroll
          for (int r = 0; r < kDecodeRows; ++r)
            acc[r] += wt[r * kDecodeMaxSplits + s] *
                      __ldcg(src + (static_cast<i64>(s) * kDecodeRows + r) * D);
      }
#pragma unroll
      for (int r = 0; r < kDecodeRows; ++r)
        if (r0 + r < R)
          store_final(r0 + r, d, acc[r], d == 0, rowLse[r]);
    }
  }

  __device__ __forceinline__ void run() {
    tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    split = blockIdx.x, hk = blockIdx.y % Cfg::KV_HEADS, rg = blockIdx.y / Cfg::KV_HEADS;
    b = blockIdx.z;
    Sd = p.q.S, R = G * Sd;
    const i64 bh = static_cast<i64>(b) * Cfg::KV_HEADS + hk;
    const bool ragged = p.rag_off != nullptr;
    toks = p.tok_idx && !ragged ? p.tok_idx + bh * p.tok_cap : nullptr;
    pages = p.page_table && !ragged ? p.page_table + b * p.pt_sb : nullptr;
    L = ragged ? __ldg(p.rag_len + bh) : p.seq_lens ? __ldg(p.seq_lens + b) : p.Skv;
    int n = toks ? __ldg(p.tok_counts + bh) : L;
    n = max(0, min(n, toks ? p.tok_cap : L));
    int chunk = (n + p.splits - 1) / p.splits;
    chunk = (chunk + BN - 1) / BN * BN;
    e0 = min(n, split * chunk), e1 = min(n, e0 + chunk);
    // Smallest position i' over the group's rows (the causal test of a
    // tile is skipped when every key sits at or before it).
    int r0 = rg * kDecodeRows, minQi = Sd;
    for (int r = r0; r < min(r0 + kDecodeRows, R); ++r)
      minQi = min(minQi, r % Sd);
    minPos = minQi + L - Sd;
    if (ragged) { // a slimmed cache: this head's rows from rag_off on
      const i64 r0 = __ldg(p.rag_off + bh);
      kBase = static_cast<const u16 *>(p.k.ptr) + r0 * p.k.ss;
      vBase = WITH_V ? static_cast<const u16 *>(p.v.ptr) + r0 * p.v.ss : nullptr;
    } else if (!pages) {
      kBase = static_cast<const u16 *>(p.k.ptr) + b * p.k.sb + hk * p.k.sh;
      vBase = static_cast<const u16 *>(p.v.ptr) + b * p.v.sb + hk * p.v.sh;
    } else {
      kBase = static_cast<const u16 *>(p.k.ptr);
      vBase = static_cast<const u16 *>(p.v.ptr);
    }
    kVec = rows_aligned<16>(p.k);
    vVec = WITH_V && rows_aligned<16>(p.v);
    // TMA reads dense rows: a dense cache's (b, hk) slice or a slimmed
    // cache's run of rows (one [1, 1, rows, D] map).
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    tma = SWZ && p.tma != 0 && !toks && !pages;
#else
    tma = false; // folds every TMA branch away on older GPUs
#endif
    ring = SWZ ? (sbase + 1023u) & ~1023u : sbase;
    nst = tma ? max(2, min(p.stages, static_cast<int>(kDecodeMaxTmaStages))) : NS;
    tmaRow0 = ragged ? static_cast<int>(__ldg(p.rag_off + bh)) : 0;
    tmaHead = ragged ? 0 : hk, tmaBatch = ragged ? 0 : b;
    mrow[0] = mrow[1] = neg_inf();
    lrow[0] = lrow[1] = 0.f;
    if constexpr (WITH_V)
#pragma unroll
      for (int dn = 0; dn < ND; ++dn)
#pragma unroll
        for (int x = 0; x < 4; ++x)
          o[dn][x] = 0.f;
    load_q();
    const int nTiles = e1 > e0 ? (e1 - e0 + BN - 1) / BN : 0;
    // One key loop for both load paths (compute() is inlined once): tile
    // `it` sits in stage st; after the wait, the __syncthreads orders the
    // reuse of the stage computed in the previous iteration (stage sx),
    // which then receives tile it + nst - 1.
    init_barriers();
    for (int s = 0; s < nst - 1; ++s)
      issue(s, s < nTiles ? e0 + s * BN : -1);
    int st = 0, phase = 0;
    for (int it = 0; it < nTiles; ++it) {
      wait_tile(st, phase);
      __syncthreads();
      const int nx = it + nst - 1, sx = st == 0 ? nst - 1 : st - 1;
      issue(sx, nx < nTiles ? e0 + nx * BN : -1);
      compute(st, e0 + it * BN);
      if (++st == nst)
        st = 0, phase ^= 1;
    }
    if (!tma)
      cp_async_wait<0>();
    __syncthreads(); // the ring becomes the merge area
    finish();
  }

  /// TMA: thread 0 sets up one mbarrier per stage.
  __device__ __forceinline__ void init_barriers() const {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (tma) {
      if (tid == 0) {
        for (int s = 0; s < nst; ++s)
          mbar_init(bar(s), 1);
        fence_mbar_init();
      }
      __syncthreads();
    }
#endif
  }

  /// Loads the tile at entry e (none when e < 0) into stage s: by TMA from
  /// thread 0, or by every thread's cp.async as one commit group (empty
  /// groups keep the group count that wait_tile relies on).
  __device__ __forceinline__ void issue(int s, int e) const {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (tma) {
      if (tid == 0 && e >= 0)
        load_tile_tma(s, e);
      return;
    }
#endif
    if (e >= 0)
      load_tile(s, e);
    cp_async_commit();
  }

  /// Waits until the tile in stage s (use parity `phase`) has landed.
  __device__ __forceinline__ void wait_tile(int s, int phase) const {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (tma) {
      mbar_wait(bar(s), phase);
      return;
    }
#endif
    cp_async_wait<NS - 2>();
  }
};

} // namespace decode_detail

/// sattn.decode_attention. Launch: see kDecodeThreads.
template <class Cfg> __device__ void decode_attn(const DecodeParams &p) {
  extern __shared__ __align__(16) unsigned char sattn_decode_smem[];
  decode_detail::Decode<Cfg, true>(p, sattn_decode_smem).run();
}

/// sattn.kv_slim, phase 1: LSE of the observation rows (q = those rows).
template <class Cfg> __device__ void kv_slim_lse(const DecodeParams &p) {
  extern __shared__ __align__(16) unsigned char sattn_decode_smem[];
  decode_detail::Decode<Cfg, false>(p, sattn_decode_smem).run();
}

} // namespace dev
} // namespace sattn

#endif // __CUDACC__

#endif // SATTN_DEVICE_DECODE_CUH
