//===- Passes.td - sattn lowering passes -------------------*- tablegen -*-===//
//
// The passes of design §4. Canonicalisation is MLIR's own `canonicalize`
// driven by the op patterns of dialect/SattnCanonicalize.cpp; the pipeline
// `sattn-lower-to-kernels` chains everything (passes/Pipeline.cpp).
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_PASSES_TD
#define SATTN_PASSES_TD

include "mlir/Pass/PassBase.td"

def SattnFuseStaticMasks : Pass<"sattn-fuse-static-masks", "mlir::func::FuncOp"> {
  let summary = "turn static block sets into in-kernel predicates";
  let description = [{
    An attention whose block set comes from `sattn.static_blocks` gets the
    pattern as a `block_pattern` attribute and loses the block-set operand,
    so no index lists are built at all. Exact: the kernel evaluates the
    same block-level rule (semantics §8).

    Before:
    ```mlir
    %bs = sattn.static_blocks %q, %k {causal, window = 256 : i64} : ... -> !sattn.blocks<bq = 64, bk = 64, heads = 4>
    %o = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 64, bk = 64, heads = 4> {causal} : ...
    ```
    After:
    ```mlir
    %o = sattn.attention %q, %k, %v {block_pattern = #sattn.block_pattern<bq = 64, bk = 64, causal = true, window = 256>, causal} : ...
    ```
  }];
  let dependentDialects = ["::sattn::SattnDialect"];
}

def SattnSpecialize : Pass<"sattn-specialize", "mlir::ModuleOp"> {
  let summary = "bind static facts; the result is the JIT cache key";
  let description = [{
    Checks that head counts and head dim are static, optionally rebinds the
    element type of Q/K/V/O (`dtype=bf16|fp16`), bounds every block list
    (`cap`, from a static top-k or `max-kv-blocks`) and records the facts
    and a SHA-256 of the specialised function as `sattn.spec`:

    ```mlir
    func.func @v(...) attributes {sattn.spec = {arch = "sm_90a", dtype = "bf16",
        head_dim = 128 : i64, heads = 32 : i64, key = "9f2c...", kv_heads = 8 : i64}}
    ```
  }];
  let options = [
    Option<"dtype", "dtype", "std::string", /*default=*/"\"\"",
           "element type to bind Q/K/V/O to: bf16 or fp16 (empty: keep the IR's)">,
    Option<"maxKvBlocks", "max-kv-blocks", "int64_t", /*default=*/"0",
           "upper bound on blocks per list when the budget is dynamic (0: ceil(Skv/bk))">,
    Option<"arch", "arch", "std::string", /*default=*/"\"sm_90a\"",
           "target GPU architecture; selects the kernel family (sm_90a: wgmma)">,
  ];
  let dependentDialects = ["::sattn::SattnDialect"];
}

def SattnOutlineKernels : Pass<"sattn-outline-kernels", "mlir::ModuleOp"> {
  let summary = "lower semantic ops to ordered kernel launches";
  let description = [{
    Replaces every semantic op of a specialised function by a `sattn.launch`
    naming its device template and compile-time constants, in program
    order, and records the workspace plan (every launch result the
    function does not return) as `sattn.workspace`.

    With `fuse-estimation` (the default), a `sattn.scores` whose every use is
    a per-query-head `select_blocks` or a `head_budget` gets no launch of its
    own: each consumer becomes one `scores_select_*` / `scores_head_budget`
    launch that computes the scores rows it needs in shared memory
    (codegen/device/fused_select.cuh), so the scores grid never reaches
    global memory.

    Before:
    ```mlir
    %o = sattn.attention %q, %k, %v {causal} : ...
    ```
    After:
    ```mlir
    %o = sattn.launch "k0_attn_fwd" = "attn_fwd" {CAUSAL = true, HEAD_DIM = 128 : i64, ...} (%q, %k, %v) : ...
    ```
  }];
  let options = [
    Option<"fuseEstimation", "fuse-estimation", "bool", /*default=*/"true",
           "fuse a sattn.scores into its per-row selections (no scores grid in memory)">,
  ];
  let dependentDialects = ["::sattn::SattnDialect"];
}

#endif // SATTN_PASSES_TD
