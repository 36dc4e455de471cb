//===- SattnOps.td - semantic and kernel-level ops ---------*- tablegen -*-===//
//
// The semantic ops a variant is written in (pool, scores, budget, select,
// classify, attention, decode) and the kernel-level op the passes lower
// them to (launch). Exact semantics: docs/semantics.md, by section.
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_OPS_TD
#define SATTN_OPS_TD

include "dialect/SattnDialect.td"
include "dialect/SattnTypes.td"
include "dialect/SattnAttrs.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/IR/OpBase.td"
include "mlir/IR/CommonAttrConstraints.td"
include "mlir/IR/CommonTypeConstraints.td"
include "mlir/Interfaces/InferTypeOpInterface.td"

//===----------------------------------------------------------------------===//
// Type constraints
//===----------------------------------------------------------------------===//

def Sattn_QKVTensor : TensorRankOf<[BF16, F16], [4]>;
def Sattn_PooledTensor : TensorRankOf<[BF16, F16, F32], [4]>;
def Sattn_LseTensor : TensorRankOf<[F32], [3]>;
def Sattn_SegmentsTensor : TensorRankOf<[I32, I64], [3]>;
def Sattn_PageTable : TensorRankOf<[I32], [2]>;
def Sattn_SeqLens : TensorRankOf<[I32], [1]>;

def Sattn_PositiveI64 : ConfinedAttr<I64Attr, [IntPositive]>;
def Sattn_NonNegI64 : ConfinedAttr<I64Attr, [IntNonNegative]>;

class Sattn_Op<string mnemonic, list<Trait> traits = []>
    : Op<Sattn_Dialect, mnemonic, traits>;

//===----------------------------------------------------------------------===//
// Estimation
//===----------------------------------------------------------------------===//

def Sattn_PoolOp : Sattn_Op<"pool", [Pure]> {
  let summary = "pool groups of tokens (composite tokens, page bounds)";
  let description = [{
    Pools Q or K over groups of `group` consecutive tokens with `mean`,
    `max` or `min` (semantics §3); the last group may be partial. Several
    granularities give UniSparse composite tokens; min/max per page give
    Quest bounds.

    ```mlir
    %kp = sattn.pool mean %k group 64 : tensor<?x8x?x128xbf16> -> tensor<?x8x?x128xf32>
    ```
  }];
  let arguments = (ins Sattn_PooledTensor:$input, Sattn_PoolKind:$kind,
                       Sattn_PositiveI64:$group);
  let results = (outs Sattn_PooledTensor:$result);
  let assemblyFormat = [{
    $kind $input `group` $group attr-dict `:` type($input) `->` type($result)
  }];
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Sattn_ScoresOp : Sattn_Op<"scores", [Pure]> {
  let summary = "block-level attention estimate from pooled Q and K";
  let description = [{
    Softmax of `scale · q_pooled · k_pooledᵀ` per pooled query row over the
    visible pooled key groups (causal when `causal` is set: a key group is
    visible iff its first key is visible to the row's last query), summed
    into `bq × bk` blocks and averaged over the pooled rows of a block
    (semantics §4). `q`, `k` are the unpooled tensors and give the lengths.
    `q_group` / `k_group` are the pooling granularities and must divide the
    block sizes of the result type.

    With `bound %k_max` (Quest), `k_pooled` holds the elementwise minimum
    and `k_max` the maximum of each key group, and the logit is the upper
    bound `scale · Σ_d max(q_d · min_d, q_d · max_d)` of every logit in the
    group (semantics §4c); the pooled operands may be function arguments
    (page metadata kept beside a KV cache).

    ```mlir
    %s = sattn.scores %qp, %kp of %q, %k {q_group = 64, k_group = 64, causal}
        : tensor<?x32x?x128xf32>, tensor<?x8x?x128xf32>, tensor<?x32x?x128xbf16>,
          tensor<?x8x?x128xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 32>
    %u = sattn.scores %qp, %kmin bound %kmax of %q, %k {k_group = 16, causal}
        : tensor<?x32x?x128xf32>, tensor<?x8x?x128xf32> bound tensor<?x8x?x128xf32>,
          tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16>
        -> !sattn.scores<bq = 64, bk = 16, heads = 32>
    ```
  }];
  let arguments = (ins Sattn_PooledTensor:$q_pooled, Sattn_PooledTensor:$k_pooled,
                       Optional<Sattn_PooledTensor>:$k_max,
                       Sattn_QKVTensor:$q, Sattn_QKVTensor:$k,
                       DefaultValuedAttr<Sattn_PositiveI64, "1">:$q_group,
                       DefaultValuedAttr<Sattn_PositiveI64, "1">:$k_group,
                       UnitAttr:$causal, OptionalAttr<F64Attr>:$scale);
  let results = (outs Sattn_ScoresType:$result);
  let assemblyFormat = [{
    $q_pooled `,` $k_pooled (`bound` $k_max^)? `of` $q `,` $k attr-dict `:` type($q_pooled) `,`
    type($k_pooled) (`bound` type($k_max)^)? `,` type($q) `,` type($k) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Sattn_AntidiagScoresOp : Sattn_Op<"antidiag_scores", [Pure]> {
  let summary = "XAttention block estimate: strided antidiagonal sums";
  let description = [{
    XAttention's estimate (semantics §4a). Queries are regrouped into rows
    of `stride` consecutive queries in reverse order and keys into columns of
    `stride` consecutive keys, so one dot product of a row and a column is
    the antidiagonal sum of a `stride × stride` tile; logits are that sum
    times `scale / stride` (scale defaults to 1/√D); a causal column is
    visible when its first key is visible to the row's last query. Each row
    takes a softmax over its visible columns, and block (I, J) sums the
    probabilities of the rows of query block I on the columns of KV block J.
    `stride` must divide both block sizes of the result type.

    ```mlir
    %s = sattn.antidiag_scores %q, %k {stride = 8, causal}
        : tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16>
        -> !sattn.scores<bq = 128, bk = 128, heads = 32>
    ```
  }];
  let arguments = (ins Sattn_QKVTensor:$q, Sattn_QKVTensor:$k, Sattn_PositiveI64:$stride,
                       UnitAttr:$causal, OptionalAttr<F64Attr>:$scale);
  let results = (outs Sattn_ScoresType:$result);
  let assemblyFormat = [{
    $q `,` $k attr-dict `:` type($q) `,` type($k) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Sattn_MeanScoresOp : Sattn_Op<"mean_scores", [Pure, SameOperandsAndResultType]> {
  let summary = "weighted mean of block estimates (multi-granularity scores)";
  let description = [{
    Element-wise `sum_i w_i * s_i / sum_i w_i` of two to four block-score
    grids of one type (semantics §4b); `weights` defaults to all ones. The
    operands must agree on causality. UniSparse averages the scores of its
    composite-token granularities this way; any mix of estimators (pooled,
    antidiagonal) can be combined before one selection.

    ```mlir
    %s = sattn.mean_scores %s16, %s64 : !sattn.scores<bq = 128, bk = 128, heads = 32>
    ```
  }];
  let arguments = (ins Variadic<Sattn_ScoresType>:$inputs,
                       OptionalAttr<DenseF64ArrayAttr>:$weights);
  let results = (outs Sattn_ScoresType:$result);
  let assemblyFormat = "$inputs attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Sattn_HeadBudgetOp : Sattn_Op<"head_budget", [Pure]> {
  let summary = "per-head KV budget at a recall target, optionally shared";
  let description = [{
    For every (batch, head, query block) `k_h` is the number of blocks the
    cumulative rule at `tau` keeps, forced blocks counted (semantics §7).
    `flattest` shares `max_h k_h` over the query heads of a row (OmniSparse);
    `none` keeps one budget per head.

    ```mlir
    %b = sattn.head_budget flattest %s {tau = 0.95 : f64,
        forced = #sattn.forced<sink = 1, diagonal = true>}
        : !sattn.scores<bq = 128, bk = 128, heads = 32> -> !sattn.budget<bq = 128, heads = 1>
    ```
  }];
  let arguments = (ins Sattn_ScoresType:$scores, Sattn_BudgetShare:$share,
                       F64Attr:$tau, OptionalAttr<Sattn_ForcedAttr>:$forced);
  let results = (outs Sattn_BudgetType:$result);
  let assemblyFormat = [{
    $share $scores attr-dict `:` type($scores) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Selection
//===----------------------------------------------------------------------===//

def Sattn_SelectBlocksOp : Sattn_Op<"select_blocks", [Pure]> {
  let summary = "pick KV blocks per query block from scores";
  let description = [{
    `topk`: keep the forced blocks plus the best remaining blocks up to a
    budget `K` (attribute `k` or a `!sattn.budget` operand; must lie in
    `[0, ceil(Skv/bk)]`). `cumulative`: keep the shortest prefix (forced
    first) whose mass reaches `tau` of the row total, capped by `k` or a
    budget operand when given. Ties go to the lower block index. A result
    with fewer heads than the scores selects once per GQA group from the
    group's mean scores (semantics §6). `cumulative` with `slack = s` keeps
    `s` more blocks past the threshold (XAttention's reference selects one
    more in prefill, docs/patterns/xattention.md). `per head` (attribute
    `scope`) runs one cumulative prefix over the head's whole grid instead of one per
    row (FlexPrefill's query-aware blocks). `cap`, set by
    `sattn-specialize`, bounds the list length for workspace sizing.

    ```mlir
    %bs = sattn.select_blocks topk %s {k = 8 : i64, forced = #sattn.forced<sink = 1, diagonal = true>}
        : !sattn.scores<bq = 128, bk = 128, heads = 32> -> !sattn.blocks<bq = 128, bk = 128, heads = 32>
    ```
  }];
  let arguments = (ins Sattn_ScoresType:$scores, Optional<Sattn_BudgetType>:$budget,
                       Sattn_SelectRule:$rule, OptionalAttr<I64Attr>:$k,
                       OptionalAttr<F64Attr>:$tau,
                       OptionalAttr<Sattn_ForcedAttr>:$forced,
                       OptionalAttr<Sattn_PositiveI64>:$cap,
                       DefaultValuedAttr<Sattn_NonNegI64, "0">:$slack,
                       DefaultValuedAttr<Sattn_SelectScope, "SelectScope::row">:$scope);
  let results = (outs Sattn_BlocksType:$result);
  let assemblyFormat = [{
    $rule $scores (`per` $scope^)? (`budget` $budget^ `:` type($budget))? attr-dict `:`
    type($scores) `->` type($result)
  }];
  let hasVerifier = 1;
  let hasCanonicalizer = 1;
}

def Sattn_StaticBlocksOp : Sattn_Op<"static_blocks", [Pure]> {
  let summary = "block set of a static pattern (no estimation)";
  let description = [{
    Block J is in row I iff some (i, j) of the pair is allowed by the token
    mask: `causal`, a sliding `window` of W keys (needs `causal`) and
    `sinks` (needs a window); none of them means dense (semantics §8).
    `sattn-fuse-static-masks` turns it into an in-kernel predicate.

    ```mlir
    %bs = sattn.static_blocks %q, %k {causal, window = 4096 : i64, sinks = 128 : i64}
        : tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16> -> !sattn.blocks<bq = 128, bk = 128, heads = 32>
    ```
  }];
  let arguments = (ins Sattn_QKVTensor:$q, Sattn_QKVTensor:$k, UnitAttr:$causal,
                       DefaultValuedAttr<Sattn_NonNegI64, "0">:$window,
                       DefaultValuedAttr<Sattn_NonNegI64, "0">:$sinks);
  let results = (outs Sattn_BlocksType:$result);
  let assemblyFormat = [{
    $q `,` $k attr-dict `:` type($q) `,` type($k) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Sattn_VerticalSlashOp : Sattn_Op<"vertical_slash", [Pure, AttrSizedOperandSegments]> {
  let summary = "FlexPrefill vertical-slash blocks from the last queries' attention";
  let description = [{
    From the exact causal attention of the last `last` queries, vertical
    (per key) and slash (per distance) mass; per head a coverage budget
    `floor(c / unit) + 1` clamped to `[min_blocks, max_blocks]`, where `c`
    is the number of keys (distances) reaching `gamma` of the mass; then
    block 0 and the best other KV blocks by vertical mass, the diagonal and
    the best other block diagonals by slash mass, expanded to every query
    block (semantics §12a). With `aware %qa, %kp` a head whose pooled
    estimate (mean of the last queries against the block-mean keys `%kp`)
    lies within square-root Jensen-Shannon divergence `jsd` of its pooled
    vertical mass is query-aware: both budgets drop to `min_blocks` and the
    head's rows of `%qa` are added. The lines stay on the device: only the
    block set leaves the op.

    ```mlir
    %vs = sattn.vertical_slash %q, %k aware %qa, %kp {gamma = 0.9 : f64, min_blocks = 4 : i64}
        : tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16>
          aware !sattn.blocks<bq = 128, bk = 128, heads = 32>, tensor<?x8x?x128xf32>
        -> !sattn.blocks<bq = 128, bk = 128, heads = 32>
    ```
  }];
  let arguments = (ins Sattn_QKVTensor:$q, Sattn_QKVTensor:$k,
                       Optional<Sattn_BlocksType>:$aware,
                       Optional<Sattn_PooledTensor>:$k_pooled,
                       DefaultValuedAttr<Sattn_PositiveI64, "128">:$last,
                       DefaultValuedAttr<F64Attr, "0.9">:$gamma,
                       DefaultValuedAttr<Sattn_PositiveI64, "128">:$unit,
                       DefaultValuedAttr<Sattn_NonNegI64, "1">:$min_blocks,
                       DefaultValuedAttr<Sattn_NonNegI64, "0">:$max_blocks,
                       DefaultValuedAttr<F64Attr, "0.1">:$jsd);
  let results = (outs Sattn_BlocksType:$result);
  let assemblyFormat = [{
    $q `,` $k (`aware` $aware^ `,` $k_pooled)? attr-dict `:` type($q) `,` type($k)
    (`aware` type($aware)^ `,` type($k_pooled))? `->` type($result)
  }];
  let hasVerifier = 1;
}

def Sattn_VSlashOp : Sattn_Op<"vslash", [Pure]> {
  let summary = "MInference token-level vertical-slash set from the last queries' attention";
  let description = [{
    From the exact causal attention of the last `last` queries, vertical
    (per key) and slash (per distance) mass; per head the first
    `sink_columns` keys plus the best other keys by vertical mass
    (`vertical` in all), and the first `local_slashes` distances plus the
    best other distances by slash mass (`slash` in all). Each kept slash
    becomes a band of `bq` distances (semantics §12b); an attention given
    the set attends, per query block, the bands through it and the kept
    columns, at token granularity.

    ```mlir
    %vs = sattn.vslash %q, %k {vertical = 1000 : i64, slash = 6096 : i64}
        : tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16> -> !sattn.vslash<bq = 64, heads = 32>
    ```
  }];
  let arguments = (ins Sattn_QKVTensor:$q, Sattn_QKVTensor:$k,
                       DefaultValuedAttr<Sattn_PositiveI64, "64">:$last,
                       DefaultValuedAttr<Sattn_NonNegI64, "1000">:$vertical,
                       DefaultValuedAttr<Sattn_NonNegI64, "6096">:$slash,
                       DefaultValuedAttr<Sattn_NonNegI64, "30">:$sink_columns,
                       DefaultValuedAttr<Sattn_PositiveI64, "100">:$local_slashes);
  let results = (outs Sattn_VSlashType:$result);
  let assemblyFormat = "$q `,` $k attr-dict `:` type($q) `,` type($k) `->` type($result)";
  let hasVerifier = 1;
}

class Sattn_BlockSetBinOp<string mnemonic, string what>
    : Sattn_Op<mnemonic, [Pure, Commutative, SameOperandsAndResultType]> {
  let summary = what # " of two block sets";
  let description = [{
    Per (batch, head, query block), the set }] # what # [{ of the two lists
    (semantics §9). Both operands have the same block sizes and heads.

    ```mlir
    %u = sattn.}] # mnemonic # [{ %a, %b : !sattn.blocks<bq = 128, bk = 128, heads = 32>
    ```
  }];
  let arguments = (ins Sattn_BlocksType:$lhs, Sattn_BlocksType:$rhs);
  let results = (outs Sattn_BlocksType:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
  let hasVerifier = 1;
  let hasFolder = 1;
  let hasCanonicalizer = 1;
}

def Sattn_UnionOp : Sattn_BlockSetBinOp<"union", "union">;
def Sattn_IntersectOp : Sattn_BlockSetBinOp<"intersect", "intersection">;

def Sattn_ClassifyQueriesOp : Sattn_Op<"classify_queries", [Pure]> {
  let summary = "lazy/active query selection (OmniSparse)";
  let description = [{
    Estimates each query row's attention over keys mean-pooled in groups of
    `key_group`; a row whose mass on the `sinks` first keys and the last
    `window` keys reaches `theta` is lazy, and every `keep_every`-th lazy row
    stays active. The result holds the active rows (semantics §10).

    ```mlir
    %qs = sattn.classify_queries %q, %k {theta = 0.9 : f64, window = 1024 : i64}
        : tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16> -> !sattn.queries<heads = 32>
    ```
  }];
  let arguments = (ins Sattn_QKVTensor:$q, Sattn_QKVTensor:$k,
                       DefaultValuedAttr<Sattn_PositiveI64, "64">:$key_group,
                       DefaultValuedAttr<Sattn_PositiveI64, "1024">:$window,
                       DefaultValuedAttr<Sattn_NonNegI64, "64">:$sinks,
                       DefaultValuedAttr<F64Attr, "0.9">:$theta,
                       DefaultValuedAttr<Sattn_NonNegI64, "8">:$keep_every,
                       OptionalAttr<F64Attr>:$scale);
  let results = (outs Sattn_QueriesType:$result);
  let assemblyFormat = [{
    $q `,` $k attr-dict `:` type($q) `,` type($k) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

def Sattn_AttentionOp : Sattn_Op<"attention", [Pure, AttrSizedOperandSegments]> {
  let summary = "fused attention with optional block set, query set and masks";
  let description = [{
    Attention of Q over K, V (GQA when K/V have fewer heads) restricted to
    the token mask (`causal`, `window`, `sinks`), the optional block set and
    the optional fused `block_pattern`, or to a token-level vertical-slash
    set (`vslash`, semantics §12b; causal only). With a query set, lazy rows follow
    the `lazy` policy: `local` attends to the first `lazy_sinks` and the last
    `lazy_window` keys, `zero` writes 0. Returns O and optionally the
    natural-log LSE (semantics §2).

    ```mlir
    %o, %lse = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 128, bk = 128, heads = 32> {causal}
        : tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>
        -> tensor<?x32x?x128xbf16>, tensor<?x32x?xf32>
    ```
  }];
  let arguments = (ins Sattn_QKVTensor:$q, Sattn_QKVTensor:$k, Sattn_QKVTensor:$v,
                       Optional<Sattn_BlocksType>:$blocks,
                       Optional<Sattn_QueriesType>:$queries,
                       Optional<Sattn_VSlashType>:$vslash, UnitAttr:$causal,
                       DefaultValuedAttr<Sattn_NonNegI64, "0">:$window,
                       DefaultValuedAttr<Sattn_NonNegI64, "0">:$sinks,
                       OptionalAttr<F64Attr>:$scale,
                       OptionalAttr<Sattn_BlockPatternAttr>:$block_pattern,
                       DefaultValuedAttr<Sattn_LazyPolicy, "::sattn::LazyPolicy::local">:$lazy,
                       DefaultValuedAttr<Sattn_PositiveI64, "1024">:$lazy_window,
                       DefaultValuedAttr<Sattn_NonNegI64, "64">:$lazy_sinks);
  let results = (outs Sattn_QKVTensor:$out, Optional<Sattn_LseTensor>:$lse);
  let assemblyFormat = [{
    $q `,` $k `,` $v (`blocks` $blocks^ `:` type($blocks))?
    (`queries` $queries^ `:` type($queries))? (`vslash` $vslash^ `:` type($vslash))?
    (`lazy` $lazy^)? attr-dict `:`
    type($q) `,` type($k) `,` type($v) `->` type(results)
  }];
  let hasVerifier = 1;
  let hasCanonicalizer = 1;
}

//===----------------------------------------------------------------------===//
// Decode
//===----------------------------------------------------------------------===//

def Sattn_KvSlimOp : Sattn_Op<"kv_slim", [Pure]> {
  let summary = "decode KV-cache slimming: tokens to keep per KV head";
  let description = [{
    Scores every cached token by the exact attention probabilities of the
    last `observe` prompt queries, summed over the GQA group; inside the
    segment keeps the fewest tokens reaching `tau`, and always keeps tokens
    outside the segment, the first `sinks` and the last `recent` tokens
    (semantics §11).

    ```mlir
    %ts = sattn.kv_slim %q, %k {tau = 0.95 : f64}
        : tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16> -> !sattn.tokens<heads = 8>
    ```
  }];
  let arguments = (ins Sattn_QKVTensor:$q, Sattn_QKVTensor:$k,
                       Optional<Sattn_SegmentsTensor>:$segments,
                       DefaultValuedAttr<Sattn_PositiveI64, "64">:$observe,
                       DefaultValuedAttr<F64Attr, "0.95">:$tau,
                       DefaultValuedAttr<Sattn_NonNegI64, "4">:$sinks,
                       DefaultValuedAttr<Sattn_NonNegI64, "64">:$recent,
                       OptionalAttr<F64Attr>:$scale);
  let results = (outs Sattn_TokensType:$result);
  let assemblyFormat = [{
    $q `,` $k (`segments` $segments^ `:` type($segments))? attr-dict `:`
    type($q) `,` type($k) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Sattn_DecodeAttentionOp
    : Sattn_Op<"decode_attention", [Pure, AttrSizedOperandSegments]> {
  let summary = "decode step over a full, paged or slimmed KV cache";
  let description = [{
    A few query rows attend causally (bottom-right) to the cache. With
    `tokens`, only the kept tokens of each KV head are read. With `pages`,
    K/V are `[P, Hkv, page, D]` pages addressed by a page table `[B, maxP]`
    and per-batch lengths `[B]` (semantics §12).

    ```mlir
    %o = sattn.decode_attention %q, %k, %v tokens %ts : !sattn.tokens<heads = 8>
        : tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>
        -> tensor<?x32x1x128xbf16>
    ```
  }];
  let arguments = (ins Sattn_QKVTensor:$q, Sattn_QKVTensor:$k, Sattn_QKVTensor:$v,
                       Optional<Sattn_TokensType>:$tokens,
                       Optional<Sattn_PageTable>:$page_table,
                       Optional<Sattn_SeqLens>:$seq_lens,
                       OptionalAttr<F64Attr>:$scale);
  let results = (outs Sattn_QKVTensor:$out, Optional<Sattn_LseTensor>:$lse);
  let assemblyFormat = [{
    $q `,` $k `,` $v (`tokens` $tokens^ `:` type($tokens))?
    (`pages` $page_table^ `,` $seq_lens `:` type($page_table) `,` type($seq_lens))?
    attr-dict `:` type($q) `,` type($k) `,` type($v) `->` type(results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Kernel level
//===----------------------------------------------------------------------===//

def Sattn_LaunchOp : Sattn_Op<"launch"> {
  let summary = "one launch of a device template (kernel-level IR)";
  let description = [{
    Produced by `sattn-outline-kernels`: `kernel` names the launch (unique in
    the function), `device_template` the template of `codegen/device/` it
    instantiates, and `consts` its compile-time parameters. Operands and
    results keep their semantic types; results that are not returned by the
    function live in the workspace described by the function's
    `sattn.workspace` attribute.

    ```mlir
    %o = sattn.launch "k0" = "attn_fwd" {CAUSAL = true, HEAD_DIM = 128 : i64} (%q, %k, %v)
        : (tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>)
        -> tensor<?x32x?x128xbf16>
    ```
  }];
  let arguments = (ins StrAttr:$kernel, StrAttr:$device_template,
                       DictionaryAttr:$consts, Variadic<AnyType>:$args);
  let results = (outs Variadic<AnyType>:$results);
  let assemblyFormat = [{
    $kernel `=` $device_template $consts `(` $args `)` attr-dict `:`
    functional-type($args, $results)
  }];
  let hasVerifier = 1;
}

#endif // SATTN_OPS_TD
