//===- ptx.cuh - sm_80 PTX primitives of the tensor-core kernels ----------===//
//
// Thin inline-asm wrappers shared by attn_fwd_mma (attention_mma.cuh) and
// attn_fwd_wgmma (attention_wgmma.cuh): shared-memory addresses, cp.async
// copies, ldmatrix, mma.sync m16n8k16, fp32 -> 16-bit packing and ex2.
// The Hopper-only ones (wgmma, descriptors, proxy fences) are in wgmma.cuh.
// Written as asm rather than intrinsics because the library compiles under
// NVRTC with no toolkit headers (types.cuh).
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_DEVICE_PTX_CUH
#define SATTN_DEVICE_PTX_CUH

#include "params.cuh"

namespace sattn {
namespace dev {
namespace ptx {

typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned long long u64;

/// Shared-memory address (32-bit, .shared window) of a generic pointer.
__device__ __forceinline__ u32 smem_addr(const void *ptr) {
  u32 r;
  asm("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(r) : "l"(ptr));
  return r;
}

/// 16-byte global -> shared copy; bytes past `srcBytes` (0 or 16) are zero.
/// Named barrier `id` over `n` threads: wait for all (bar_sync), or count
/// this warp in without waiting (bar_arrive; producer / consumer handoffs).
__device__ __forceinline__ void bar_sync(int id, int n) {
  asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(n) : "memory");
}
__device__ __forceinline__ void bar_arrive(int id, int n) {
  asm volatile("bar.arrive %0, %1;" ::"r"(id), "r"(n) : "memory");
}

__device__ __forceinline__ void cp_async16(u32 dst, const void *src, int srcBytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(srcBytes)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
__device__ __forceinline__ void cp_async_wait_all() {
  asm volatile("cp.async.wait_group 0;\n" ::: "memory");
}
/// Waits until at most N committed cp.async groups are still in flight.
template <int N> __device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}
__device__ __forceinline__ void st_shared16(u32 dst, u32 a, u32 b, u32 c, u32 d) {
  asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};\n" ::"r"(dst), "r"(a), "r"(b), "r"(c),
               "r"(d)
               : "memory");
}
/// 8-byte shared store of two floats.
__device__ __forceinline__ void st_shared_f32x2(u32 dst, float a, float b) {
  asm volatile("st.shared.v2.f32 [%0], {%1, %2};\n" ::"r"(dst), "f"(a), "f"(b) : "memory");
}

/// One 16-byte chunk (8 16-bit elements) of a row into shared memory at
/// dst: cp.async when the rows are 16-byte aligned (vec), else element
/// loads and one 16-byte store (views whose rows are only 4-byte aligned);
/// zeros when !in (src is then any address cp.async may name).
__device__ __forceinline__ void stage_chunk16(u32 dst, const u16 *src, bool in, bool vec) {
  if (vec) {
    cp_async16(dst, src, in ? 16 : 0);
  } else {
    u32 w[4] = {0u, 0u, 0u, 0u};
    if (in)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        w[e] = static_cast<u32>(src[2 * e]) | (static_cast<u32>(src[2 * e + 1]) << 16);
    st_shared16(dst, w[0], w[1], w[2], w[3]);
  }
}

__device__ __forceinline__ void ldsm_x4(u32 (&r)[4], u32 addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_t(u32 (&r)[4], u32 addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

/// c += a . b for one m16n8k16 tile (fp32 accumulators).
template <DType T>
__device__ __forceinline__ void mma16816(float (&c)[4], const u32 (&a)[4], u32 b0, u32 b1) {
  if constexpr (T == DType::bf16)
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  else
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/// Two fp32 -> one register of two 16-bit values, `lo` in the low half.
template <DType T> __device__ __forceinline__ u32 pack2(float lo, float hi) {
  u32 r;
  if constexpr (T == DType::bf16)
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  else
    asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

/// 2^x (MUFU); 2^-inf = +0.
__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

/// log2(x) (MUFU) for x > 0.
__device__ __forceinline__ float lg2(float x) {
  float y;
  asm("lg2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

} // namespace ptx
} // namespace dev
} // namespace sattn

#endif // SATTN_DEVICE_PTX_CUH
