//===- SattnDialect.td - the sattn dialect definition ------*- tablegen -*-===//
//
// The dialect in which a sparse-attention variant is written: one func.func
// of small semantic ops (estimate, budget, select, attend) that the passes
// lower to an ordered list of kernel launches.
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_DIALECT_TD
#define SATTN_DIALECT_TD

include "mlir/IR/OpBase.td"

def Sattn_Dialect : Dialect {
  let name = "sattn";
  let cppNamespace = "::sattn";
  let summary = "Sparse attention: estimation, selection and fused attention";
  let description = [{
    A variant is one `func.func` whose arguments are the Q, K, V tensors
    (`[B, H, S, D]`, batch and sequence lengths dynamic, heads and head dim
    static) and whose body composes the ops below. The exact semantics of
    every op (alignment, tie-breaks, budgets, empty rows) are in
    `docs/semantics.md`; the CPU reference executor implements them in
    float64.

    Further arguments are named by a `sattn.name` argument attribute (else
    `argN`). A `!sattn.blocks` argument is a block set the caller supplies
    at run time: one int32 tensor `[B, heads, cdiv(Sq, bq), cap]` of KV
    block indices per (batch, head, query block), `-1` for unused slots, in
    any order, repeats allowed; `Sq`, `Skv` are those of the attention that
    consumes it (semantics §14).

    ```mlir
    func.func @v(%q: tensor<?x8x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>,
                 %blocks: !sattn.blocks<bq = 128, bk = 128, heads = 8> {sattn.name = "blocks"})
    ```
  }];
  let useDefaultTypePrinterParser = 1;
  let useDefaultAttributePrinterParser = 1;
}

#endif // SATTN_DIALECT_TD
