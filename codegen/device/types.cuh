//===- types.cuh - element loads/stores for bf16 and fp16 -----------------===//
//
// The device library compiles under NVRTC with no host or toolkit headers
// (the runtime embeds it; no cuda_bf16.h on disk is needed), so 16-bit
// floats are handled as raw bits with PTX conversions (sm_80+).
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_DEVICE_TYPES_CUH
#define SATTN_DEVICE_TYPES_CUH

#include "params.cuh"

namespace sattn {
namespace dev {

/// Reads element `idx` of a bf16/fp16 array as fp32.
template <DType T> __device__ __forceinline__ float load_elem(const void *base, i64 idx) {
  unsigned short bits = static_cast<const unsigned short *>(base)[idx];
  if (T == DType::bf16)
    return __uint_as_float(static_cast<unsigned int>(bits) << 16);
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(bits));
  return f;
}

/// Writes fp32 `x` rounded to nearest even as bf16/fp16.
template <DType T> __device__ __forceinline__ void store_elem(void *base, i64 idx, float x) {
  unsigned short bits;
  if (T == DType::bf16)
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(bits) : "f"(x));
  else
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(bits) : "f"(x));
  static_cast<unsigned short *>(base)[idx] = bits;
}

/// Element offset of (b, h, s, d) in a Tensor4 view.
__device__ __forceinline__ i64 offset(const Tensor4 &t, int b, int h, int s, int d) {
  return b * t.sb + h * t.sh + s * t.ss + d;
}

/// Whether every row of t starts on a B-byte boundary (16-bit elements).
template <int B> __device__ __forceinline__ bool rows_aligned(const Tensor4 &t) {
  return ((reinterpret_cast<unsigned long long>(t.ptr) |
           static_cast<unsigned long long>(t.sb | t.sh | t.ss) * 2) &
          (B - 1)) == 0;
}

__device__ __forceinline__ float neg_inf() { return __int_as_float(0xff800000); }

__device__ __forceinline__ float warp_sum(float x) {
  for (int o = 16; o > 0; o >>= 1)
    x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

__device__ __forceinline__ float warp_max(float x) {
  for (int o = 16; o > 0; o >>= 1)
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}

/// Block-wide sum of a double (every thread gets it), summed over the
/// warps in a fixed order so the result has the same bits on every run.
/// `red` holds blockDim.x / 32 doubles.
__device__ __forceinline__ double block_sum(double x, double *red) {
  for (int o = 16; o > 0; o >>= 1)
    x += __shfl_xor_sync(0xffffffffu, x, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
  __syncthreads();
  if (lane == 0)
    red[warp] = x;
  __syncthreads();
  double s = 0.0;
  for (int i = 0; i < nw; ++i)
    s += red[i];
  return s;
}

/// Block-wide exclusive prefix sum of one int per thread; `total` gets the
/// block's sum. `red` holds blockDim.x / 32 ints; the leading barrier lets
/// the previous call's readers finish before it is overwritten.
__device__ __forceinline__ int block_exclusive_scan(int x, int *red, int &total) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
  int inc = x;
  for (int o = 1; o < 32; o <<= 1) {
    int y = __shfl_up_sync(0xffffffffu, inc, o);
    if (lane >= o)
      inc += y;
  }
  __syncthreads();
  if (lane == 31)
    red[warp] = inc;
  __syncthreads();
  int before = 0;
  total = 0;
  for (int i = 0; i < nw; ++i) {
    if (i < warp)
      before += red[i];
    total += red[i];
  }
  return before + inc - x;
}

} // namespace dev
} // namespace sattn

#endif // SATTN_DEVICE_TYPES_CUH
