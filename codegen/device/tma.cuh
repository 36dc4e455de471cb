//===- tma.cuh - mbarriers and TMA tensor loads (sm_90) -------------------===//
//
// Transaction barriers and cp.async.bulk.tensor wrappers shared by the
// Hopper attention (attention_wgmma.cuh, through wgmma.cuh) and the decode
// kernels (decode.cuh). sm_90 instructions: callers reach them only in code
// compiled for sm_90 or later (the wrappers themselves are inline and are
// emitted only where used).
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_DEVICE_TMA_CUH
#define SATTN_DEVICE_TMA_CUH

#include "ptx.cuh"

namespace sattn {
namespace dev {
namespace ptx {

/// mbarrier (64-bit shared-memory transaction barrier) primitives; `bar` is
/// its shared address (8-byte aligned).
__device__ __forceinline__ void mbar_init(u32 bar, u32 count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
/// Makes barrier initialisations visible to the async proxy (TMA) and to
/// the other threads (with the __syncthreads that follows).
__device__ __forceinline__ void fence_mbar_init() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
__device__ __forceinline__ void mbar_arrive(u32 bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
/// Arrives when `pred` holds (a predicate, not a branch: keeps the wgmma
/// code around it free of divergent control flow).
__device__ __forceinline__ void mbar_arrive_if(u32 bar, bool pred) {
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %1, 0;\n@p mbarrier.arrive.shared::cta.b64 _, "
               "[%0];\n}\n" ::"r"(bar),
               "r"(static_cast<u32>(pred))
               : "memory");
}
/// Arrives and announces `bytes` of TMA transactions for the current phase.
__device__ __forceinline__ void mbar_expect_tx(u32 bar, u32 bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
               : "memory");
}
/// Arrives once every cp.async this thread issued so far has landed (the
/// arrival is counted in the barrier's initial count: .noinc).
__device__ __forceinline__ void cp_async_mbar_arrive(u32 bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}
/// Waits until the phase of parity `parity` has completed.
__device__ __forceinline__ void mbar_wait(u32 bar, u32 parity) {
  u32 done;
  do {
    asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
                 "selp.u32 %0, 1, 0, p;\n}\n"
                 : "=r"(done)
                 : "r"(bar), "r"(parity)
                 : "memory");
  } while (!done);
}

/// TMA: box of a 4-d tensor map at coordinates (c0 innermost .. c3) into
/// shared memory at dst, completing `bar`'s transaction count.
__device__ __forceinline__ void tma_load_4d(u32 dst, const void *map, int c0, int c1, int c2,
                                            int c3, u32 bar) {
  asm volatile("cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes"
               " [%0], [%1, {%2, %3, %4, %5}], [%6];\n" ::"r"(dst),
               "l"(map), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(bar)
               : "memory");
}
/// TMA reduction: adds (fp32 +) the box at shared address src into a 3-d
/// tensor map's box at (c0 innermost, c1, c2), as part of this thread's
/// open bulk group; rows past the map's extent are skipped. The L2 does the
/// adds on whole lines. Reuse src only after bulk_wait_read.
__device__ __forceinline__ void tma_reduce_add_3d(const void *map, u32 src, int c0, int c1,
                                                  int c2) {
  asm volatile("cp.reduce.async.bulk.tensor.3d.global.shared::cta.add.tile.bulk_group"
               " [%0, {%2, %3, %4}], [%1];\n" ::"l"(map),
               "r"(src), "r"(c0), "r"(c1), "r"(c2)
               : "memory");
}
/// Closes this thread's bulk group (the reductions issued since the last).
__device__ __forceinline__ void bulk_commit() {
  asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
}
/// Waits until at most N of this thread's bulk groups still read shared
/// memory (their sources may be overwritten; the kernel's end needs no more).
template <int N> __device__ __forceinline__ void bulk_wait_read() {
  asm volatile("cp.async.bulk.wait_group.read %0;\n" ::"n"(N) : "memory");
}
__device__ __forceinline__ void tma_prefetch_map(const void *map) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(map) : "memory");
}

} // namespace ptx
} // namespace dev
} // namespace sattn

#endif // SATTN_DEVICE_TMA_CUH
