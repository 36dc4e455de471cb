// RUN: sattn-compile %s --emit=cuda --arch=sm_80 -o %t.cu && FileCheck %s < %t.cu
// RUN: sattn-compile %s --emit=cuda --arch=sm_90a -o %t90.cu && FileCheck %s --check-prefix=HOPPER < %t90.cu
// The emitter writes one config struct and one extern "C" wrapper per
// launch, instantiating the device template with the launch's constants.

// CHECK: // sattn module for @topk, key {{[0-9a-f]+}}
// Only the headers of the instantiated templates are included:
// CHECK-NOT: #include "sattn.cuh"
// CHECK: #include "attention_mma.cuh"
// CHECK-NEXT: #include "estimation.cuh"
// CHECK-NEXT: #include "selection.cuh"
// CHECK-LABEL: struct k0_pool_cfg {
// CHECK: static constexpr sattn::dev::DType DTYPE = sattn::dev::DType::fp16;
// CHECK: static constexpr int GROUP = 16;
// CHECK: static constexpr sattn::dev::PoolKind KIND = sattn::dev::PoolKind::mean;
// CHECK: extern "C" __global__ void __launch_bounds__(sattn::dev::kPoolThreads)
// CHECK-NEXT: k0_pool(const __grid_constant__ sattn::dev::PoolParams p) {
// CHECK-NEXT: sattn::dev::pool<k0_pool_cfg>(p);
// CHECK-LABEL: struct k2_block_scores_cfg {
// CHECK: static constexpr float SCALE = 1.250000000e-01f;
// CHECK-LABEL: struct k3_select_cumulative_cfg {
// CHECK: static constexpr int OUT_HEADS = 2;
// CHECK: static constexpr float TAU = 9.000000000e-01f;
// CHECK: sattn::dev::select_cumulative<k3_select_cumulative_cfg>(p);
// CHECK-LABEL: struct k4_attn_fwd_mma_cfg {
// CHECK: static constexpr bool HAS_BLOCKS = true;
// CHECK: static constexpr int SET_HEADS = 2;
// CHECK: extern "C" __global__ void __launch_bounds__(sattn::dev::kAttnMmaThreads, sattn::dev::kAttnMmaMinBlocks)
// CHECK: sattn::dev::attn_fwd_mma<k4_attn_fwd_mma_cfg>(p);
// CHECK-NOT: sattn.launch
// Hopper takes the wgmma kernel (no tunable row tile):
// HOPPER: #include "attention_wgmma.cuh"
// HOPPER-LABEL: struct k4_attn_fwd_wgmma_cfg {
// HOPPER-NOT: TILE_M
// HOPPER: extern "C" __global__ void __launch_bounds__(sattn::dev::AttnWgmmaLaunch<k4_attn_fwd_wgmma_cfg>::threads, sattn::dev::AttnWgmmaLaunch<k4_attn_fwd_wgmma_cfg>::min_blocks)
// HOPPER-NEXT: k4_attn_fwd_wgmma(const __grid_constant__ sattn::dev::AttnParams p) {
func.func @topk(%q: tensor<?x4x?x64xf16>, %k: tensor<?x2x?x64xf16>, %v: tensor<?x2x?x64xf16>) -> tensor<?x4x?x64xf16> {
  %qp = sattn.pool mean %q group 16 : tensor<?x4x?x64xf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 16 : tensor<?x2x?x64xf16> -> tensor<?x2x?x64xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 16 : i64, k_group = 16 : i64, causal}
      : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xf16>, tensor<?x2x?x64xf16> -> !sattn.scores<bq = 64, bk = 64, heads = 4>
  %bs = sattn.select_blocks cumulative %s {tau = 0.9 : f64} : !sattn.scores<bq = 64, bk = 64, heads = 4> -> !sattn.blocks<bq = 64, bk = 64, heads = 2>
  %o = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 64, bk = 64, heads = 2> {causal}
      : tensor<?x4x?x64xf16>, tensor<?x2x?x64xf16>, tensor<?x2x?x64xf16> -> tensor<?x4x?x64xf16>
  return %o : tensor<?x4x?x64xf16>
}
