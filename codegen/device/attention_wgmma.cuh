//===- attention_wgmma.cuh - Hopper (sm_90a) wgmma attention forward (§2) -===//
//
// attn_fwd_wgmma<Cfg>: sattn.attention forward on Hopper's warpgroup MMA
// (wgmma.mma_async), for head dims 64 and 128, bf16 / fp16. Same Cfg
// constants, launch grid convention and §2 semantics as attn_fwd_mma
// (attention_mma.cuh); only the matrix core and the tiling differ:
//
//   CTA        = NWG consumer warpgroups (128 threads each), 64 query rows per
//                warpgroup, all rows of the CTA in one block-set row. NWG = 2
//                (128 rows) except with a block set of SET_BQ <= 64 (then 1,
//                64 rows, two CTAs per SM). No producer warps: every thread
//                issues its share of the cp.async copies (see "Why" below).
//   key tile   = BN keys (128; 64 with a block set of SET_BQ or SET_BK <= 64).
//   smem       = Q (NWG x 64 rows), K in 2 stages, V in 3 stages, each tile in
//                the 128-byte-swizzle layout of wgmma: 64-element panels of
//                the head dim, [panel][row][128 B], 16-byte chunk c of row r
//                stored at chunk c ^ (r % 8); base rounded up to 1024 B.
//   S = Q.K^T  wgmma m64nBNk16, A = Q and B = K from smem (K-major
//              descriptors, SBO 1024 B), fp32 accumulators in registers.
//   softmax    online, log2 domain, fp32, per thread rows g and g + 8 of its
//              warp's 16-row slice (same fragment layout as mma.m16n8).
//   O += P.V   wgmma m64nDk16 in the RS form: P packed from the S accumulators
//              straight into A fragments, V from smem (N-major descriptor,
//              LBO = BN * 128 B between 64-wide panels, SBO 1024 B).
//
// Per key tile (one __syncthreads): wait for its cp.async group, proxy fence,
// barrier; each warpgroup issues S_n = Q.K_n^T and then the pending
// O += P_{n-1}.V_{n-1} (two commit groups); the copies of tile n + 1 are
// issued; wait_group 1 (S_n ready) -> mask + online softmax of S_n while the
// tensor cores still run P_{n-1}.V_{n-1}; wait_group 0 -> rescale O, pack P_n.
// V therefore needs three stages (V_{n-1} is read while V_{n+1} lands).
//
// Key schedule, tile classification (skip / full / partial per warpgroup),
// masks, block sets, patterns, LSE, GQA, strides and empty rows are those of
// attn_fwd_mma. Query sets are not supported (attn_fwd).
//
// Why no producer warpgroup / TMA: K/V copies by cp.async keep the kernel's
// only argument the AttnParams block (no host-built tensor maps), accept any
// element strides (16-byte-misaligned views fall back to element loads), and
// avoid mbarrier / setmaxnreg role code; overlapping softmax with the P.V
// wgmma inside each warpgroup recovers most of what warp specialisation buys.
//
// Keeping ptxas from serializing the wgmma pipeline (warnings C7513 / C7514 /
// C7518 / C7520, each one puts a wait behind every wgmma):
//   - every wgmma, fence, commit and wait of the key loop is unconditional;
//     a skipped tile runs its S product and a fully masked softmax (P = 0);
//   - descriptors derive only from warp-uniform values (the warpgroup index
//     is broadcast with a shuffle), so they live in uniform registers;
//   - registers a pending wgmma reads (O, P) are written only behind its
//     wait_group, pinned there with empty asm operands (fence_regs);
//   - the first S wgmma binds its accumulators write-only ("=f").
// 150 to 249 registers across configurations (D = 128 about 240), no spills.
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

/// Launch contract of attn_fwd_wgmma<Cfg> (hasBlocks = Cfg::HAS_BLOCKS,
/// setBq / setBk = Cfg::SET_BQ / SET_BK, ignored without a block set):
///   kernel    __launch_bounds__(kAttnWgmmaThreads, kAttnWgmmaMinBlocks)
///             (the largest CTA; the 128-thread variant still fits two CTAs
///             per SM under it), compiled for sm_90a (compute capability 9.0)
///   blockDim  attn_wgmma_threads(hasBlocks, setBq)            (256 or 128)
///   grid      (nTiles, Hq, B), nTiles = cdiv(Sq, rows) with
///             rows = attn_wgmma_rows(hasBlocks, setBq), or with a block set
///             nQB * cdiv(SET_BQ, rows)       (attn_wgmma_grid_x does both)
///   smem      attn_wgmma_smem_bytes(HEAD_DIM, hasBlocks, setBq, setBk)
///             dynamic bytes (always above 48 KB: raise the limit)
/// A launch with another blockDim traps.
enum : int {
  kAttnWgmmaThreads = 256,      // upper bound of blockDim (__launch_bounds__)
  kAttnWgmmaMinBlocks = 1,      // second argument of __launch_bounds__
  kAttnWgmmaWarpgroupRows = 64, // query rows per consumer warpgroup
  kAttnWgmmaKStages = 2,
  kAttnWgmmaVStages = 3,
};

/// Consumer warpgroups per CTA: 1 when a block-set row has <= 64 rows.
SATTN_WGMMA_HD constexpr int attn_wgmma_warpgroups(bool hasBlocks, int setBq) {
  return hasBlocks && setBq <= 64 ? 1 : 2;
}
SATTN_WGMMA_HD constexpr int attn_wgmma_threads(bool hasBlocks, int setBq) {
  return 128 * attn_wgmma_warpgroups(hasBlocks, setBq);
}
SATTN_WGMMA_HD constexpr int attn_wgmma_rows(bool hasBlocks, int setBq) {
  return kAttnWgmmaWarpgroupRows * attn_wgmma_warpgroups(hasBlocks, setBq);
}
/// Keys per pipelined K/V tile.
SATTN_WGMMA_HD constexpr int attn_wgmma_key_tile(bool hasBlocks, int setBq, int setBk) {
  return hasBlocks && (setBq <= 64 || setBk <= 64) ? 64 : 128;
}
/// Dynamic shared memory in bytes: Q, 2 K stages, 3 V stages, plus 1 KB to
/// round the base up to the 1024-byte swizzle period. Dense: 197632 B for
/// D = 128, 99328 B for D = 64.
SATTN_WGMMA_HD constexpr int attn_wgmma_smem_bytes(int headDim, bool hasBlocks = false,
                                                   int setBq = 0, int setBk = 0) {
  return (attn_wgmma_rows(hasBlocks, setBq) +
          (kAttnWgmmaKStages + kAttnWgmmaVStages) * attn_wgmma_key_tile(hasBlocks, setBq, setBk)) *
             headDim * 2 +
         1024;
}
/// grid.x of attn_fwd_wgmma (nQB: block-set rows, only with a block set).
SATTN_WGMMA_HD constexpr int attn_wgmma_grid_x(int Sq, bool hasBlocks, int setBq, int nQB) {
  return hasBlocks
             ? nQB * ((setBq + attn_wgmma_rows(hasBlocks, setBq) - 1) /
                      attn_wgmma_rows(hasBlocks, setBq))
             : (Sq + attn_wgmma_rows(hasBlocks, setBq) - 1) / attn_wgmma_rows(hasBlocks, setBq);
}
/// Whether attn_fwd_wgmma handles this attention: head dim 64 / 128, no
/// query set, and a Hopper GPU (wgmma exists only on sm_90a; Blackwell runs
/// the portable compute_90 PTX, which has no wgmma).
SATTN_WGMMA_HD constexpr bool attn_wgmma_supported(int headDim, bool hasQueries, int ccMajor = 9) {
  return ccMajor == 9 && !hasQueries && (headDim == 64 || headDim == 128);
}

/// The same shape from a Cfg (device side).
template <class Cfg> struct AttnWgmmaLaunch {
  static constexpr int threads = attn_wgmma_threads(Cfg::HAS_BLOCKS, Cfg::SET_BQ);
  static constexpr int rows = attn_wgmma_rows(Cfg::HAS_BLOCKS, Cfg::SET_BQ);
  static constexpr int key_tile = attn_wgmma_key_tile(Cfg::HAS_BLOCKS, Cfg::SET_BQ, Cfg::SET_BK);
  static constexpr int smem_bytes =
      attn_wgmma_smem_bytes(Cfg::HEAD_DIM, Cfg::HAS_BLOCKS, Cfg::SET_BQ, Cfg::SET_BK);
};

} // namespace dev
} // namespace sattn

#if defined(__CUDACC__)

#include "masks.cuh"
#include "types.cuh"

namespace sattn {
namespace dev {
namespace attn_wgmma_detail {

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
__device__ __forceinline__ void st_shared16(u32 dst, u32 a, u32 b, u32 c, u32 d) {
  asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};\n" ::"r"(dst), "r"(a), "r"(b), "r"(c),
               "r"(d)
               : "memory");
}
/// Makes this thread's completed generic-proxy shared-memory writes (cp.async
/// included, after its wait) visible to the async proxy that wgmma reads.
__device__ __forceinline__ void fence_proxy_async() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

// wgmma ordering primitives (warpgroup-wide, .sync.aligned).
__device__ __forceinline__ void wg_fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wg_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int N> __device__ __forceinline__ void wg_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
/// Pins register values at this point (no compiler motion of their reads or
/// writes across it): used around wgmma issue and wait.
template <int N> __device__ __forceinline__ void fence_regs(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
    asm volatile("" : "+f"(r[i])::"memory");
}
template <int N> __device__ __forceinline__ void fence_regs(u32 (&r)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      asm volatile("" : "+r"(r[i][e])::"memory");
}

/// wgmma shared-memory matrix descriptor, 128-byte swizzle (layout type 1),
/// base offset 0 (every tile starts on a 1024-byte boundary).
__device__ __forceinline__ u64 make_desc(u32 addr, u32 lbo, u32 sbo) {
  return static_cast<u64>((addr & 0x3FFFF) >> 4) | (static_cast<u64>(lbo >> 4) << 16) |
         (static_cast<u64>(sbo >> 4) << 32) | (1ull << 62);
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

/// Half-open key range [lo, hi); empty when lo >= hi.
struct Range {
  int lo, hi;
};

/// Two disjoint key ranges holding every key the causal / window / sinks
/// mask can allow to a row with i' in [ipLo, ipHi] (the rule of
/// attn_detail::mask_ranges); r[0] is the sinks part below r[1].
__device__ __forceinline__ void mask_ranges(bool causal, bool windowed, int window, int sinks,
                                            int ipLo, int ipHi, int Skv, Range (&r)[2]) {
  int hi = causal ? min(Skv, ipHi + 1) : Skv;
  int lo = windowed ? max(0, ipLo - window + 1) : 0;
  r[1] = Range{lo, hi};
  r[0] = Range{0, windowed ? min(min(sinks, lo), hi) : 0};
}

/// d[0..32) (+)= A(desc) . B(desc), m64n64k16, both K-major; SD = 0 overwrites d.
/// SD = 0 binds d as write-only ("=f"): a fresh accumulator, so the previous
/// tile's softmax writes to d never count as inputs of this wgmma (C7513).
template <DType T, int SD>
__device__ __forceinline__ void wgmma_ss_n64(float (&d)[32], u64 da, u64 db) {
  if constexpr (T == DType::bf16 && SD == 0)
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
                 "{"
                 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
                 "}, %32, %33, p, 1, 1, 0, 0;\n}\n"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3]), "=f"(d[4]), "=f"(d[5]),
                   "=f"(d[6]), "=f"(d[7]), "=f"(d[8]), "=f"(d[9]), "=f"(d[10]), "=f"(d[11]),
                   "=f"(d[12]), "=f"(d[13]), "=f"(d[14]), "=f"(d[15]), "=f"(d[16]), "=f"(d[17]),
                   "=f"(d[18]), "=f"(d[19]), "=f"(d[20]), "=f"(d[21]), "=f"(d[22]), "=f"(d[23]),
                   "=f"(d[24]), "=f"(d[25]), "=f"(d[26]), "=f"(d[27]), "=f"(d[28]), "=f"(d[29]),
                   "=f"(d[30]), "=f"(d[31])
                 : "l"(da), "l"(db), "r"(SD));
  else if constexpr (T == DType::fp16 && SD == 0)
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 "
                 "{"
                 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
                 "}, %32, %33, p, 1, 1, 0, 0;\n}\n"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3]), "=f"(d[4]), "=f"(d[5]),
                   "=f"(d[6]), "=f"(d[7]), "=f"(d[8]), "=f"(d[9]), "=f"(d[10]), "=f"(d[11]),
                   "=f"(d[12]), "=f"(d[13]), "=f"(d[14]), "=f"(d[15]), "=f"(d[16]), "=f"(d[17]),
                   "=f"(d[18]), "=f"(d[19]), "=f"(d[20]), "=f"(d[21]), "=f"(d[22]), "=f"(d[23]),
                   "=f"(d[24]), "=f"(d[25]), "=f"(d[26]), "=f"(d[27]), "=f"(d[28]), "=f"(d[29]),
                   "=f"(d[30]), "=f"(d[31])
                 : "l"(da), "l"(db), "r"(SD));
  else if constexpr (T == DType::bf16 && SD == 1)
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
                 "{"
                 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
                 "}, %32, %33, p, 1, 1, 0, 0;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]),
                   "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]),
                   "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]),
                   "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
                   "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]),
                   "+f"(d[30]), "+f"(d[31])
                 : "l"(da), "l"(db), "r"(SD));
  else
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 "
                 "{"
                 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
                 "}, %32, %33, p, 1, 1, 0, 0;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]),
                   "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]),
                   "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]),
                   "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
                   "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]),
                   "+f"(d[30]), "+f"(d[31])
                 : "l"(da), "l"(db), "r"(SD));
}

/// d[0..32) += A(regs) . B(desc), m64n64k16, B N-major (transposed).
template <DType T>
__device__ __forceinline__ void wgmma_rs_n64(float (&d)[32], const u32 (&a)[4], u64 db) {
  if constexpr (T == DType::bf16)
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
                 "{"
                 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
                 "}, {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]),
                   "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]),
                   "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]),
                   "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
                   "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]),
                   "+f"(d[30]), "+f"(d[31])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1));
  else
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 "
                 "{"
                 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
                 "}, {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]),
                   "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]),
                   "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]),
                   "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
                   "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]),
                   "+f"(d[30]), "+f"(d[31])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1));
}

/// d[0..64) (+)= A(desc) . B(desc), m64n128k16, both K-major; SD = 0 overwrites d.
/// SD = 0 binds d as write-only ("=f"): a fresh accumulator, so the previous
/// tile's softmax writes to d never count as inputs of this wgmma (C7513).
template <DType T, int SD>
__device__ __forceinline__ void wgmma_ss_n128(float (&d)[64], u64 da, u64 db) {
  if constexpr (T == DType::bf16 && SD == 0)
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
                 "{"
                 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
                 "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
                 "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
                 "}, %64, %65, p, 1, 1, 0, 0;\n}\n"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3]), "=f"(d[4]), "=f"(d[5]),
                   "=f"(d[6]), "=f"(d[7]), "=f"(d[8]), "=f"(d[9]), "=f"(d[10]), "=f"(d[11]),
                   "=f"(d[12]), "=f"(d[13]), "=f"(d[14]), "=f"(d[15]), "=f"(d[16]), "=f"(d[17]),
                   "=f"(d[18]), "=f"(d[19]), "=f"(d[20]), "=f"(d[21]), "=f"(d[22]), "=f"(d[23]),
                   "=f"(d[24]), "=f"(d[25]), "=f"(d[26]), "=f"(d[27]), "=f"(d[28]), "=f"(d[29]),
                   "=f"(d[30]), "=f"(d[31]), "=f"(d[32]), "=f"(d[33]), "=f"(d[34]), "=f"(d[35]),
                   "=f"(d[36]), "=f"(d[37]), "=f"(d[38]), "=f"(d[39]), "=f"(d[40]), "=f"(d[41]),
                   "=f"(d[42]), "=f"(d[43]), "=f"(d[44]), "=f"(d[45]), "=f"(d[46]), "=f"(d[47]),
                   "=f"(d[48]), "=f"(d[49]), "=f"(d[50]), "=f"(d[51]), "=f"(d[52]), "=f"(d[53]),
                   "=f"(d[54]), "=f"(d[55]), "=f"(d[56]), "=f"(d[57]), "=f"(d[58]), "=f"(d[59]),
                   "=f"(d[60]), "=f"(d[61]), "=f"(d[62]), "=f"(d[63])
                 : "l"(da), "l"(db), "r"(SD));
  else if constexpr (T == DType::fp16 && SD == 0)
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 "
                 "{"
                 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
                 "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
                 "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
                 "}, %64, %65, p, 1, 1, 0, 0;\n}\n"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3]), "=f"(d[4]), "=f"(d[5]),
                   "=f"(d[6]), "=f"(d[7]), "=f"(d[8]), "=f"(d[9]), "=f"(d[10]), "=f"(d[11]),
                   "=f"(d[12]), "=f"(d[13]), "=f"(d[14]), "=f"(d[15]), "=f"(d[16]), "=f"(d[17]),
                   "=f"(d[18]), "=f"(d[19]), "=f"(d[20]), "=f"(d[21]), "=f"(d[22]), "=f"(d[23]),
                   "=f"(d[24]), "=f"(d[25]), "=f"(d[26]), "=f"(d[27]), "=f"(d[28]), "=f"(d[29]),
                   "=f"(d[30]), "=f"(d[31]), "=f"(d[32]), "=f"(d[33]), "=f"(d[34]), "=f"(d[35]),
                   "=f"(d[36]), "=f"(d[37]), "=f"(d[38]), "=f"(d[39]), "=f"(d[40]), "=f"(d[41]),
                   "=f"(d[42]), "=f"(d[43]), "=f"(d[44]), "=f"(d[45]), "=f"(d[46]), "=f"(d[47]),
                   "=f"(d[48]), "=f"(d[49]), "=f"(d[50]), "=f"(d[51]), "=f"(d[52]), "=f"(d[53]),
                   "=f"(d[54]), "=f"(d[55]), "=f"(d[56]), "=f"(d[57]), "=f"(d[58]), "=f"(d[59]),
                   "=f"(d[60]), "=f"(d[61]), "=f"(d[62]), "=f"(d[63])
                 : "l"(da), "l"(db), "r"(SD));
  else if constexpr (T == DType::bf16 && SD == 1)
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
                 "{"
                 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
                 "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
                 "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
                 "}, %64, %65, p, 1, 1, 0, 0;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]),
                   "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]),
                   "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]),
                   "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
                   "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]),
                   "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]),
                   "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]),
                   "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
                   "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]),
                   "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]),
                   "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
                 : "l"(da), "l"(db), "r"(SD));
  else
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 "
                 "{"
                 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
                 "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
                 "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
                 "}, %64, %65, p, 1, 1, 0, 0;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]),
                   "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]),
                   "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]),
                   "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
                   "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]),
                   "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]),
                   "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]),
                   "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
                   "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]),
                   "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]),
                   "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
                 : "l"(da), "l"(db), "r"(SD));
}

/// d[0..64) += A(regs) . B(desc), m64n128k16, B N-major (transposed).
template <DType T>
__device__ __forceinline__ void wgmma_rs_n128(float (&d)[64], const u32 (&a)[4], u64 db) {
  if constexpr (T == DType::bf16)
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
                 "{"
                 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
                 "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
                 "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
                 "}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]),
                   "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]),
                   "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]),
                   "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
                   "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]),
                   "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]),
                   "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]),
                   "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
                   "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]),
                   "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]),
                   "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1));
  else
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 "
                 "{"
                 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
                 "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
                 "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
                 "}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]),
                   "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]),
                   "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]),
                   "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
                   "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]),
                   "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]),
                   "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]),
                   "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
                   "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]),
                   "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]),
                   "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1));
}

/// d (+)= A . B over one k-step of 16 for N = 64 or 128 (A from smem).
template <DType T, int N, int SD>
__device__ __forceinline__ void wgmma_ss(float (&d)[N / 2], u64 da, u64 db) {
  static_assert(N == 64 || N == 128, "wgmma_ss: N must be 64 or 128");
  if constexpr (N == 64)
    wgmma_ss_n64<T, SD>(d, da, db);
  else
    wgmma_ss_n128<T, SD>(d, da, db);
}
/// d += A . B over one k-step of 16 for N = 64 or 128 (A from registers).
template <DType T, int N>
__device__ __forceinline__ void wgmma_rs(float (&d)[N / 2], const u32 (&a)[4], u64 db) {
  static_assert(N == 64 || N == 128, "wgmma_rs: N must be 64 or 128");
  if constexpr (N == 64)
    wgmma_rs_n64<T>(d, a, db);
  else
    wgmma_rs_n128<T>(d, a, db);
}

template <class Cfg> struct Fwd {
  static constexpr DType T = Cfg::DTYPE;
  static constexpr int D = Cfg::HEAD_DIM;
  static constexpr int NWG = attn_wgmma_warpgroups(Cfg::HAS_BLOCKS, Cfg::SET_BQ);
  static constexpr int NT = 128 * NWG;
  static constexpr int WR = kAttnWgmmaWarpgroupRows; // rows per warpgroup
  static constexpr int BM = WR * NWG;                // rows per CTA
  static constexpr int BN = attn_wgmma_key_tile(Cfg::HAS_BLOCKS, Cfg::SET_BQ, Cfg::SET_BK);
  static constexpr int KD = D / 16;  // k-steps of Q.K^T over the head dim
  static constexpr int KN = BN / 16; // k-steps of P.V over the keys
  static constexpr int NS = BN / 2;  // S accumulators per thread
  static constexpr int NO = D / 2;   // O accumulators per thread
  // Shared memory (bytes from the 1024-aligned base): Q, K stages, V stages.
  static constexpr u32 Q_WG_BYTES = WR * D * 2; // one warpgroup's Q rows
  static constexpr u32 KV_BYTES = BN * D * 2;   // one K or V stage
  static constexpr u32 K_OFF = NWG * Q_WG_BYTES;
  static constexpr u32 V_OFF = K_OFF + kAttnWgmmaKStages * KV_BYTES;
  static constexpr u32 SMEM_BYTES = V_OFF + kAttnWgmmaVStages * KV_BYTES + 1024;
  static constexpr int G = Cfg::HEADS / Cfg::KV_HEADS;
  static constexpr float kC = Cfg::SCALE * 1.4426950408889634f; // scale * log2(e)
  // With a positive scale, max and exp work on raw scores (one FFMA each);
  // otherwise the scores are scaled first and the factor is 1.
  static constexpr bool kPos = Cfg::SCALE > 0.f;
  static constexpr float kF = kPos ? kC : 1.f;
  static constexpr int kPatPairs = 32; // pattern checks beyond this many block pairs: "maybe"

  static_assert(Q_WG_BYTES % 1024 == 0 && KV_BYTES % 1024 == 0,
                "every tile must start on a 1024-byte swizzle period");

  const AttnParams &p;
  u32 sbase;                                           // 1024-aligned shared address of the tiles
  int b, h, hk, Sq, Skv, row0, rowEnd, tid, wg, wlane; // wlane: thread in warpgroup
  int wr0, wr1;                                        // this warpgroup's valid rows [wr0, wr1)
  bool wgActive;
  const u16 *qBase, *kBase, *vBase;
  bool qVec, kVec, vVec; // 16-byte aligned rows: cp.async; else element loads

  // Key schedule (CTA-uniform): runs of listed blocks x the two mask ranges.
  Range mr0, mr1;
  const int *list;
  int cnt, x, runA, runE, q, jn, jhi;

  // Per-thread state: accumulators, P fragments, row statistics.
  float sc[NS];
  float o[NO];
  u32 pa[KN][4];
  float mrow[2], lrow[2];
  u32 pendV; // V stage of the P held in pa (P = 0 when nothing is pending)

  __device__ __forceinline__ Fwd(const AttnParams &p_, u32 sbase_) : p(p_), sbase(sbase_) {}

  // ---------------------------------------------------------------- loads --

  /// Stages NR rows of D elements from src (row stride ss) at shared address
  /// `dst` in the swizzled layout, R rows per [panel][row] block; rows >=
  /// valid are zero-filled (no global read).
  template <int NR, int R>
  __device__ __forceinline__ void load_rows(u32 dst, const u16 *src, i64 ss, int valid,
                                            bool vec) const {
    constexpr int CPR = D / 8;   // 16-byte chunks per row
    constexpr int RS = NT / CPR; // rows advanced per step
    constexpr int PER = NR / RS; // steps
    static_assert(NT % CPR == 0 && NR % RS == 0 && RS % 8 == 0 && R % RS == 0,
                  "tile chunks must divide evenly among the threads");
    // An opaque copy of the thread index: the per-thread offsets below are
    // recomputed at each call instead of being kept live across the key loop
    // (registers are the scarce resource of this kernel).
    int t = tid;
    asm volatile("" : "+r"(t));
    const int r0 = t / CPR, k = t % CPR;
    // Row r0 + s * RS: same r & 7 for every step (RS % 8 == 0), so the same
    // swizzled chunk; panel k / 8 of the [R rows][128 B] block r / R.
    const u32 a0 = dst + (k >> 3) * (R * 128) + (((k & 7) ^ (r0 & 7)) << 4);
    const u16 *g = src + static_cast<i64>(r0) * ss + k * 8;
    const i64 step = static_cast<i64>(RS) * ss;
#pragma unroll
    for (int it = 0; it < PER; ++it, g += step) {
      const int r = r0 + it * RS;
      const u32 a = a0 + (r / R) * (R * D * 2) + (r % R) * 128;
      const bool in = r < valid;
      if (vec) {
        cp_async16(a, in ? g : src, in ? 16 : 0);
      } else {
        u32 w[4] = {0u, 0u, 0u, 0u};
        if (in)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            w[e] = static_cast<u32>(g[2 * e]) | (static_cast<u32>(g[2 * e + 1]) << 16);
        st_shared16(a, w[0], w[1], w[2], w[3]);
      }
    }
  }

  __device__ __forceinline__ u32 k_stage(int n) const { return sbase + K_OFF + n * KV_BYTES; }
  __device__ __forceinline__ u32 v_stage(int n) const { return sbase + V_OFF + n * KV_BYTES; }

  /// K and V of keys [j0, j1) into K stage ks and V stage vs (rows past
  /// j1 - j0 zero).
  __device__ __forceinline__ void load_tile(int ks, int vs, int j0, int j1) const {
    int n = j1 - j0;
    load_rows<BN, BN>(k_stage(ks), kBase + static_cast<i64>(j0) * p.k.ss, p.k.ss, n, kVec);
    load_rows<BN, BN>(v_stage(vs), vBase + static_cast<i64>(j0) * p.v.ss, p.v.ss, n, vVec);
  }

  // ------------------------------------------------------------- schedule --

  /// Pattern blocks met by rows [r0, r1) x keys [j0, j1): whether any / all
  /// pairs are admitted. Too many pairs: any = true, all = false.
  __device__ __forceinline__ void pattern_pairs(int r0, int r1, int j0, int j1, bool &any,
                                                bool &all) const {
    any = true, all = true;
    if constexpr (Cfg::HAS_PATTERN) {
      int I0 = r0 / Cfg::P_BQ, I1 = (r1 - 1) / Cfg::P_BQ;
      int J0 = j0 / Cfg::P_BK, J1 = (j1 - 1) / Cfg::P_BK;
      if ((I1 - I0 + 1) * (J1 - J0 + 1) > kPatPairs) {
        all = false;
        return;
      }
      any = false;
      for (int I = I0; I <= I1; ++I)
        for (int J = J0; J <= J1; ++J) {
          bool a = pattern_block(Cfg::P_CAUSAL, Cfg::P_WINDOW, Cfg::P_SINKS, I, J, Cfg::P_BQ,
                                 Cfg::P_BK, Sq, Skv);
          any |= a;
          all &= a;
        }
    }
  }

  /// Next non-empty [lo, hi) of (run x mask range); false when done.
  __device__ __forceinline__ bool next_segment() {
    for (;;) {
      if (q < 2) {
        Range r = q == 0 ? mr0 : mr1;
        int lo = max(runA, r.lo), hi = min(runE, r.hi);
        ++q;
        if (lo < hi) {
          jn = lo, jhi = hi;
          return true;
        }
        continue;
      }
      if constexpr (!Cfg::HAS_BLOCKS) {
        return false;
      } else {
        if (x >= cnt)
          return false;
        int J = list[x], last = J;
        // Runs of consecutive listed blocks are one contiguous key range.
        while (++x < cnt && list[x] == last + 1)
          ++last;
        runA = J * Cfg::SET_BK;
        runE = min((last + 1) * Cfg::SET_BK, Skv);
        q = 0;
      }
    }
  }

  /// Next key tile [j0, j1) of the CTA (j1 - j0 <= BN); false when done.
  __device__ __forceinline__ bool next_tile(int &j0, int &j1) {
    for (;;) {
      while (jn < jhi) {
        j0 = jn;
        j1 = min(jn + BN, jhi);
        jn = j1;
        bool any, all;
        pattern_pairs(row0, rowEnd, j0, j1, any, all);
        if (any)
          return true;
      }
      if (!next_segment())
        return false;
    }
  }

  // ----------------------------------------------------------------- math --

  /// 0: no (row, key) of this warpgroup allowed; 1: all allowed; 2: mixed.
  __device__ __forceinline__ int classify(int j0, int j1) const {
    int ipA = wr0 + Skv - Sq, ipB = wr1 - 1 + Skv - Sq;
    bool any, all;
    pattern_pairs(wr0, wr1, j0, j1, any, all);
    if (!any)
      return 0;
    if (Cfg::CAUSAL && j0 > ipB)
      return 0;
    if (Cfg::WINDOW > 0 && j1 - 1 <= ipA - Cfg::WINDOW && j0 >= Cfg::SINKS)
      return 0;
    bool full = all && j1 - j0 == BN;
    if (Cfg::CAUSAL)
      full = full && j0 + BN - 1 <= ipA;
    if (Cfg::WINDOW > 0)
      full = full && (j0 > ipB - Cfg::WINDOW || j0 + BN - 1 < Cfg::SINKS);
    return full ? 1 : 2;
  }

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
        // k-step kk: panel kk / 4 of 64 columns, 32-byte step kk % 4 inside
        // the swizzled 128-byte rows.
        const u64 qo = static_cast<u64>(((kk >> 2) * (WR * 128) + (kk & 3) * 32) >> 4);
        const u64 ko = static_cast<u64>(((kk >> 2) * (BN * 128) + (kk & 3) * 32) >> 4);
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
  /// packing for the next P.V. `vs`: the tile's V stage.
  template <bool PV> __device__ __forceinline__ void complete(int kind, int vs, int j0, int j1) {
    float corr[2];
    if constexpr (PV)
      wg_wait<1>(); // S done; P.V may still run
    else
      wg_wait<0>();
    fence_regs(sc);
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
          const int i = wr0 + w * 16 + g + hh * 8, ip = i + Skv - Sq;
          const int hiEx = kind == 0 ? 0 : (Cfg::CAUSAL ? min(j1, ip + 1) : j1) - j0;
          const int loW = ip - Cfg::WINDOW - j0, sinkEx = Cfg::SINKS - j0;
#pragma unroll
          for (int n = 0; n < BN / 8; ++n)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
              const int jr = n * 8 + 2 * t + e;
              bool ok = jr < hiEx;
              if (Cfg::WINDOW > 0)
                ok = ok && (jr > loW || jr < sinkEx);
              if constexpr (Cfg::HAS_PATTERN)
                ok = ok && pattern_block(Cfg::P_CAUSAL, Cfg::P_WINDOW, Cfg::P_SINKS, i / Cfg::P_BQ,
                                         (j0 + jr) / Cfg::P_BK, Cfg::P_BQ, Cfg::P_BK, Sq, Skv);
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
    if constexpr (PV)
      wg_wait<0>();
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
    // This tile's V stage holds finite values (loaded, zero past the range)
    // and stays untouched until the next P.V has completed.
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
    u16 *oBase = static_cast<u16 *>(p.o.ptr) + offset(p.o, b, h, 0, 0);
    const bool oVec = ((reinterpret_cast<unsigned long long>(p.o.ptr) |
                        static_cast<unsigned long long>(p.o.sb | p.o.sh | p.o.ss) * 2) &
                       3) == 0;
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      float l = lrow[hh];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      int i = wr0 + w * 16 + g + hh * 8;
      if (i >= wr1)
        continue;
      bool empty = !(l > 0.f); // no allowed key (l >= 1 otherwise)
      float inv = empty ? 0.f : 1.f / l;
      u16 *orow = oBase + static_cast<i64>(i) * p.o.ss;
#pragma unroll
      for (int dn = 0; dn < D / 8; ++dn) {
        int d = dn * 8 + 2 * t;
        float v0 = o[dn * 4 + 2 * hh] * inv, v1 = o[dn * 4 + 2 * hh + 1] * inv;
        if (oVec) {
          *reinterpret_cast<u32 *>(orow + d) = pack2<T>(v0, v1);
        } else {
          store_elem<T>(orow, d, v0);
          store_elem<T>(orow, d + 1, v1);
        }
      }
      if constexpr (Cfg::HAS_LSE)
        if (t == 0)
          p.lse[(static_cast<i64>(b) * Cfg::HEADS + h) * Sq + i] =
              empty ? neg_inf() : (mrow[hh] + log2f(l)) * 0.6931471805599453f;
    }
  }

  __device__ __forceinline__ void run() {
    b = blockIdx.z, h = blockIdx.y, hk = h / G;
    Sq = p.q.S, Skv = p.k.S;
    tid = threadIdx.x, wlane = tid % 128;
    // Broadcast so the compiler sees a warp-uniform value: the wgmma
    // descriptors derived from it then live in uniform registers (a per-thread
    // value would need R2UR moves between the wgmmas, which serializes them).
    wg = __shfl_sync(0xffffffffu, tid / 128, 0);
    constexpr int kTilesPerBlock = Cfg::HAS_BLOCKS ? (Cfg::SET_BQ + BM - 1) / BM : 1;
    // Dense causal: the longest row tiles (largest index) start first.
    const int tIdx = (Cfg::CAUSAL && !Cfg::HAS_BLOCKS)
                         ? static_cast<int>(gridDim.x - 1 - blockIdx.x)
                         : static_cast<int>(blockIdx.x);
    if constexpr (Cfg::HAS_BLOCKS) {
      int I = tIdx / kTilesPerBlock;
      row0 = I * Cfg::SET_BQ + BM * (tIdx % kTilesPerBlock);
      rowEnd = min(min(row0 + BM, (I + 1) * Cfg::SET_BQ), Sq);
    } else {
      row0 = tIdx * BM;
      rowEnd = min(row0 + BM, Sq);
    }
    if (row0 >= rowEnd) // a short last query block: whole CTA leaves together
      return;
    wr0 = row0 + wg * WR;
    wr1 = min(wr0 + WR, rowEnd);
    wgActive = wr0 < wr1;

    pendV = 0;
#pragma unroll
    for (int hh = 0; hh < 2; ++hh)
      mrow[hh] = neg_inf(), lrow[hh] = 0.f;
#pragma unroll
    for (int e = 0; e < NO; ++e)
      o[e] = 0.f;
    // sc is first written by the zero-init wgmma, pa by complete<false>.

    // Key schedule.
    int ipLo = row0 + Skv - Sq, ipHi = rowEnd - 1 + Skv - Sq;
    Range mr[2];
    mask_ranges(Cfg::CAUSAL, Cfg::WINDOW > 0, Cfg::WINDOW, Cfg::SINKS, ipLo, ipHi, Skv, mr);
    mr0 = mr[0], mr1 = mr[1];
    jn = 0, jhi = 0;
    if constexpr (Cfg::HAS_BLOCKS) {
      int hb = Cfg::SET_HEADS == Cfg::HEADS ? h : h / G;
      i64 rowId =
          (static_cast<i64>(b) * Cfg::SET_HEADS + hb) * p.blocks.nQB + tIdx / kTilesPerBlock;
      cnt = p.blocks.counts[rowId];
      list = p.blocks.indices + rowId * p.blocks.cap;
      x = 0, q = 2, runA = 0, runE = 0; // q = 2: start by reading the first run
    } else {
      list = nullptr, cnt = 0, x = 0;
      q = 0, runA = 0, runE = Skv;
    }

    int j0 = 0, j1 = 0;
    if (next_tile(j0, j1)) { // CTA-uniform
      qBase = static_cast<const u16 *>(p.q.ptr) + offset(p.q, b, h, 0, 0);
      kBase = static_cast<const u16 *>(p.k.ptr) + offset(p.k, b, hk, 0, 0);
      vBase = static_cast<const u16 *>(p.v.ptr) + offset(p.v, b, hk, 0, 0);
      auto aligned16 = [](const Tensor4 &t) {
        return ((reinterpret_cast<unsigned long long>(t.ptr) |
                 static_cast<unsigned long long>(t.sb | t.sh | t.ss) * 2) &
                15) == 0;
      };
      qVec = aligned16(p.q), kVec = aligned16(p.k), vVec = aligned16(p.v);

      load_rows<BM, WR>(sbase, qBase + static_cast<i64>(row0) * p.q.ss, p.q.ss, rowEnd - row0,
                        qVec);
      load_tile(0, 0, j0, j1);
      cp_async_commit();

      int n0 = 0, n1 = 0;
      bool more = next_tile(n0, n1);
      cp_async_wait_all();
      fence_proxy_async(); // this thread's copies -> visible to wgmma
      __syncthreads();     // Q and tile 0 visible to all
      int kind = issue<false>(0, j0, j1);
      if (more) {
        load_tile(1, 1, n0, n1);
        cp_async_commit();
      }
      complete<false>(kind, 0, j0, j1);
      int ks = 0, vs = 0; // stages of the tile just done
      while (more) {
        j0 = n0, j1 = n1, ks ^= 1, vs = vs == kAttnWgmmaVStages - 1 ? 0 : vs + 1;
        more = next_tile(n0, n1);
        cp_async_wait_all();
        fence_proxy_async();
        // Tile (j0, j1) visible to all; the stages reloaded below (K of the
        // previous tile, V of the one before) are read by no wgmma any more.
        __syncthreads();
        kind = issue<true>(ks, j0, j1);
        if (more) {
          load_tile(ks ^ 1, vs == kAttnWgmmaVStages - 1 ? 0 : vs + 1, n0, n1);
          cp_async_commit();
        }
        complete<true>(kind, vs, j0, j1);
      }
      drain();
    }
    if (wgActive)
      finish();
  }
};

} // namespace attn_wgmma_detail

/// sattn.attention forward on Hopper warpgroup MMA (sm_90a only). Launch as
/// described at attn_wgmma_threads / attn_wgmma_grid_x /
/// attn_wgmma_smem_bytes (or AttnWgmmaLaunch<Cfg>).
template <class Cfg> __device__ void attn_fwd_wgmma(const AttnParams &p) {
  using F = attn_wgmma_detail::Fwd<Cfg>;
  static_assert(Cfg::DTYPE == DType::bf16 || Cfg::DTYPE == DType::fp16,
                "attn_fwd_wgmma: DTYPE must be bf16 or fp16");
  static_assert(Cfg::HEAD_DIM == 64 || Cfg::HEAD_DIM == 128,
                "attn_fwd_wgmma: HEAD_DIM must be 64 or 128 (use attn_fwd for other head dims)");
  static_assert(!Cfg::HAS_QUERIES, "attn_fwd_wgmma: query sets are not supported (use attn_fwd)");
  static_assert(Cfg::KV_HEADS > 0 && Cfg::HEADS % Cfg::KV_HEADS == 0,
                "attn_fwd_wgmma: HEADS must be a multiple of KV_HEADS");
  static_assert(Cfg::WINDOW >= 0 && Cfg::SINKS >= 0,
                "attn_fwd_wgmma: WINDOW and SINKS must be >= 0");
  static_assert(F::SMEM_BYTES == static_cast<unsigned>(AttnWgmmaLaunch<Cfg>::smem_bytes),
                "attn_fwd_wgmma: attn_wgmma_smem_bytes disagrees with the kernel's layout");
  static_assert(F::SMEM_BYTES <= 227 * 1024, "attn_fwd_wgmma: too much shared memory");
  static_assert(F::NT <= kAttnWgmmaThreads, "attn_fwd_wgmma: kAttnWgmmaThreads is too small");
  static_assert(!Cfg::HAS_BLOCKS || (Cfg::SET_BQ > 0 && Cfg::SET_BK > 0),
                "attn_fwd_wgmma: a block set needs positive SET_BQ and SET_BK");
  static_assert(!Cfg::HAS_BLOCKS || Cfg::SET_HEADS == Cfg::HEADS || Cfg::SET_HEADS == Cfg::KV_HEADS,
                "attn_fwd_wgmma: a block set is per head (SET_HEADS = HEADS) or per group");
  static_assert(!(Cfg::HAS_BLOCKS && Cfg::HAS_PATTERN),
                "attn_fwd_wgmma: a block pattern cannot be combined with a block set");
  static_assert(!Cfg::HAS_PATTERN ||
                    (Cfg::P_BQ > 0 && Cfg::P_BK > 0 && Cfg::P_WINDOW >= 0 && Cfg::P_SINKS >= 0),
                "attn_fwd_wgmma: a block pattern needs P_BQ, P_BK > 0 and P_WINDOW, P_SINKS >= 0");
#if defined(__CUDA_ARCH__) && !defined(__CUDA_ARCH_FEAT_SM90_ALL)
  // No wgmma on this target (sm_80/86/89, or the portable compute_90 PTX run
  // on Blackwell): the module still compiles, but this kernel must not be
  // launched there (attn_wgmma_supported(..., ccMajor) is false).
  __trap();
#else
  extern __shared__ __align__(16) unsigned char sattn_wgmma_smem[];
  if (blockDim.x != F::NT) // launched with the wrong shape: fail loudly, not silently
    __trap();
  const attn_wgmma_detail::u32 raw = attn_wgmma_detail::smem_addr(sattn_wgmma_smem);
  F(p, (raw + 1023u) & ~1023u).run();
#endif
}

} // namespace dev
} // namespace sattn

#endif // __CUDACC__

#endif // SATTN_DEVICE_ATTENTION_WGMMA_CUH
