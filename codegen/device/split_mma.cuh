//===- split_mma.cuh - fp32-accurate logits on 16-bit tensor cores --------===//
//
// The estimators (classify_queries, block_scores) compute logits of pooled
// fp32 rows. Rounding a pooled key to bf16 would cost ~3 significant digits
// of every logit, and the selection rules compare sums of exponentials of
// them; so each fp32 value x is split into two 16-bit halves,
//   x = hi + lo,  hi = round16(x),  lo = round16(x - hi),
// and a dot product is the sum of the partial mma.m16n8k16 products
// (hi.hi + hi.lo [+ lo.hi]), all accumulated in fp32. With bf16 halves this
// keeps 16 mantissa bits (relative error ~2e-5 per logit) at 2-3x the mma
// work, which is small next to loading the keys.
//
// Layout: a key tile of NK rows of D values per half in shared memory, rows
// padded to LD = D + 8 16-bit values so the ldmatrix reads are conflict-free.
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_DEVICE_SPLIT_MMA_CUH
#define SATTN_DEVICE_SPLIT_MMA_CUH

#include "ptx.cuh"
#include "types.cuh"

namespace sattn {
namespace dev {
namespace split_mma {

using ptx::u32;

/// Splits two fp32 values into packed 16-bit halves: a = hi.x + lo.x, ...
template <DType T> __device__ __forceinline__ void split2(float a, float b, u32 &hi, u32 &lo) {
  hi = ptx::pack2<T>(a, b);
  const unsigned short h0 = hi & 0xffffu, h1 = hi >> 16;
  lo = ptx::pack2<T>(a - load_elem<T>(&h0, 0), b - load_elem<T>(&h1, 0));
}

/// One fp32 value as its two 16-bit halves (the bits of hi and lo).
template <DType T>
__device__ __forceinline__ void split1(float x, unsigned short &hi, unsigned short &lo) {
  hi = static_cast<unsigned short>(ptx::pack2<T>(x, 0.f) & 0xffffu);
  lo = static_cast<unsigned short>(ptx::pack2<T>(x - load_elem<T>(&hi, 0), 0.f) & 0xffffu);
}

/// Starts copying rows [t0, t0 + NK) of pre-split halves (`hiRows`,
/// `loRows`: D 16-bit values per row, 16-byte aligned) into the padded
/// shared tiles with cp.async; rows at or past `tEnd` are zero-filled.
/// Commits one group; wait with ptx::cp_async_wait_all.
template <int NK, int D, int NT>
__device__ __forceinline__ void prefetch_halves(const unsigned short *hiRows,
                                                const unsigned short *loRows, int t0, int tEnd,
                                                unsigned short *hi, unsigned short *lo) {
  constexpr int LD = D + 8, CH = D / 8; // 16-byte chunks per row
  for (int x = threadIdx.x; x < 2 * NK * CH; x += NT) {
    const int half = x / (NK * CH), y = x % (NK * CH), r = y / CH, c = (y % CH) * 8;
    const bool in = t0 + r < tEnd;
    const unsigned short *src = half ? loRows : hiRows;
    ptx::cp_async16(ptx::smem_addr((half ? lo : hi) + r * LD + c),
                    src + (in ? static_cast<i64>(t0 + r) * D + c : 0), in ? 16 : 0);
  }
  ptx::cp_async_commit();
}

/// Splits fp32 rows [t0, t0 + NK) of `rows` (D floats each, 16-byte
/// aligned; zero at or past `tEnd`) into hi / lo halves in shared memory,
/// rows padded to D + 8 values. Called by NT threads, numbered `tid`
/// (all of the CTA by default).
/// Each thread issues a batch of loads before it converts and stores any:
/// the stores go through generic pointers that could alias `rows`, so a
/// load-convert-store loop would wait out one L2 latency per float4.
template <DType T, int NK, int D, int NT>
__device__ __forceinline__ void stage_rows(const float *rows, int t0, int tEnd, unsigned short *hi,
                                           unsigned short *lo, int tid = threadIdx.x) {
  constexpr int LD = D + 8, N4 = NK * D / 4, BATCH = 8;
  for (int x0 = tid; x0 < N4; x0 += BATCH * NT) {
    float4 v[BATCH];
#pragma unroll
    for (int i = 0; i < BATCH; ++i) {
      const int x = x0 + i * NT, r = x / (D / 4), c = (x % (D / 4)) * 4;
      v[i] = make_float4(0.f, 0.f, 0.f, 0.f);
      if (x < N4 && t0 + r < tEnd)
        v[i] = __ldg(reinterpret_cast<const float4 *>(rows + static_cast<i64>(t0 + r) * D + c));
    }
#pragma unroll
    for (int i = 0; i < BATCH; ++i) {
      const int x = x0 + i * NT, r = x / (D / 4), c = (x % (D / 4)) * 4;
      if (x >= N4)
        break;
      u32 h[2], l[2];
      split2<T>(v[i].x, v[i].y, h[0], l[0]);
      split2<T>(v[i].z, v[i].w, h[1], l[1]);
      *reinterpret_cast<uint2 *>(&hi[r * LD + c]) = make_uint2(h[0], h[1]);
      *reinterpret_cast<uint2 *>(&lo[r * LD + c]) = make_uint2(l[0], l[1]);
    }
  }
}

/// acc[j] (n-tile j: keys 8j..8j+7 of the staged tile) += A . K^T for this
/// warp's 16 rows, K = hi + lo. A is given as KD fragments `ahi` (and
/// `alo` when A_SPLIT: A = ahi + alo, the lo.lo product is dropped).
template <DType T, int NK, int D, bool A_SPLIT>
__device__ __forceinline__ void logits(float (&acc)[NK / 8][4], const u32 (&ahi)[D / 16][4],
                                       const u32 (&alo)[D / 16][4], const unsigned short *hi,
                                       const unsigned short *lo) {
  using namespace ptx;
  constexpr int LD = D + 8;
  const int lane = threadIdx.x % 32, lr = lane & 7, mat = lane >> 3;
  // Shared addresses from one base: offsets below are constants per step.
  const u32 hiLane = smem_addr(hi) + 2 * ((mat >> 1) * 8 * LD + lr * LD + (mat & 1) * 8);
  const u32 loLane = smem_addr(lo) + 2 * ((mat >> 1) * 8 * LD + lr * LD + (mat & 1) * 8);
#pragma unroll
  for (int j = 0; j < NK / 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      acc[j][e] = 0.f;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk)
#pragma unroll
    for (int j = 0; j < NK / 8; j += 2) {
      // Matrices: (n-tile j, dims lo / hi 8), (n-tile j + 1, lo / hi).
      const u32 step = 2 * (j * 8 * LD + kk * 16);
      u32 bh[4], bl[4];
      ldsm_x4(bh, hiLane + step);
      ldsm_x4(bl, loLane + step);
      mma16816<T>(acc[j], ahi[kk], bh[0], bh[1]);
      mma16816<T>(acc[j], ahi[kk], bl[0], bl[1]);
      mma16816<T>(acc[j + 1], ahi[kk], bh[2], bh[3]);
      mma16816<T>(acc[j + 1], ahi[kk], bl[2], bl[3]);
      if constexpr (A_SPLIT) {
        mma16816<T>(acc[j], alo[kk], bh[0], bh[1]);
        mma16816<T>(acc[j + 1], alo[kk], bh[2], bh[3]);
      }
    }
}

} // namespace split_mma
} // namespace dev
} // namespace sattn

#endif // SATTN_DEVICE_SPLIT_MMA_CUH
