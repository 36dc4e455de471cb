//===- AttnTma.h - TMA tensor maps of the attention kernels ---------------===//
//
// attn_fwd_wgmma loads Q, K and V by TMA through three tensor maps in its
// AttnParams (contract at attn_wgmma_tma_box, codegen/device/
// attention_wgmma.cuh). Header-only so the standalone kernel harness
// (bench/kernels) fills them exactly as the runtime does. The encoder is
// passed in: the runtime's comes from the dlopen'ed driver.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "codegen/device/params.cuh"

#include <cuda.h>

namespace sattn::gpu {

/// Encodes the map of view `t` (16-bit elements) with boxes of 64 x `rows`;
/// false when TMA cannot describe it (base not 16-byte aligned, a stride not
/// a positive multiple of 16 bytes or too large, or the driver refuses).
template <class EncodeFn>
bool encodeAttnTma(EncodeFn encode, const dev::Tensor4 &t, bool fp16, int rows, dev::TmaDesc &out) {
  static_assert(sizeof(dev::TmaDesc) == sizeof(CUtensorMap), "TmaDesc must match CUtensorMap");
  auto ok = [](long long strideElems) {
    long long bytes = strideElems * 2;
    return bytes > 0 && bytes % 16 == 0 && bytes < (1ll << 40);
  };
  if (reinterpret_cast<unsigned long long>(t.ptr) % 16 != 0 || !ok(t.ss) || !ok(t.sh) ||
      !ok(t.sb) || t.D % 64 != 0 || t.S <= 0 || t.H <= 0 || t.B <= 0)
    return false;
  cuuint64_t dims[4] = {cuuint64_t(t.D), cuuint64_t(t.S), cuuint64_t(t.H), cuuint64_t(t.B)};
  cuuint64_t strides[3] = {cuuint64_t(t.ss) * 2, cuuint64_t(t.sh) * 2, cuuint64_t(t.sb) * 2};
  cuuint32_t box[4] = {64, cuuint32_t(rows), 1, 1};
  cuuint32_t elemStrides[4] = {1, 1, 1, 1};
  CUresult r = encode(reinterpret_cast<CUtensorMap *>(&out),
                      fp16 ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 4,
                      t.ptr, dims, strides, box, elemStrides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                      CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                      CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS;
}

/// The fast backward's dQ accumulator ([heads][rows][D] contiguous fp32)
/// as a 3-d map for TMA reductions: boxes of [boxRows][32 floats] (128 B,
/// the 128-byte swizzle DkDv::reduce_dq stages in). False when D is not a
/// multiple of 32 or the driver refuses the map (the kernel then adds with
/// red.global).
template <class EncodeFn>
bool encodeDqAccumTma(EncodeFn encode, float *acc, long long heads, long long rows, int D,
                      int boxRows, dev::TmaDesc &out) {
  if (reinterpret_cast<unsigned long long>(acc) % 16 != 0 || D % 32 != 0 || heads <= 0 ||
      rows <= 0)
    return false;
  cuuint64_t dims[3] = {cuuint64_t(D), cuuint64_t(rows), cuuint64_t(heads)};
  cuuint64_t strides[2] = {cuuint64_t(D) * 4, cuuint64_t(rows) * D * 4};
  cuuint32_t box[3] = {32, cuuint32_t(boxRows), 1};
  cuuint32_t elemStrides[3] = {1, 1, 1};
  return encode(reinterpret_cast<CUtensorMap *>(&out), CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 3, acc,
                dims, strides, box, elemStrides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

/// Sets p.tma and the Q / K / V maps of attn_fwd_wgmma: Q boxes of
/// `qRows` rows, K / V boxes of `kvRows` (attn_wgmma_tma_box). Any view TMA
/// cannot describe turns TMA off for the launch (the kernel's cp.async path).
template <class EncodeFn>
void bindAttnTma(EncodeFn encode, dev::AttnParams &p, bool fp16, int qRows, int kvRows) {
  p.tma = encodeAttnTma(encode, p.q, fp16, qRows, p.tq) &&
                  encodeAttnTma(encode, p.k, fp16, kvRows, p.tk) &&
                  encodeAttnTma(encode, p.v, fp16, kvRows, p.tv)
              ? 1
              : 0;
}

} // namespace sattn::gpu
