//===- SattnTypes.td - selection-structure types -----------*- tablegen -*-===//
//
// Compact selection structures passed between ops: scores, block sets,
// budgets, query sets and token sets. Each carries the static facts its
// consumers verify against (block sizes, head count); lengths stay dynamic.
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_TYPES_TD
#define SATTN_TYPES_TD

include "dialect/SattnDialect.td"
include "mlir/IR/AttrTypeBase.td"

class Sattn_Type<string name, string typeMnemonic, list<Trait> traits = []>
    : TypeDef<Sattn_Dialect, name, traits> {
  let mnemonic = typeMnemonic;
}

// Types keyed by (bq, bk, heads): scores and block sets.
class Sattn_BlockGridType<string name, string typeMnemonic>
    : Sattn_Type<name, typeMnemonic> {
  let parameters = (ins "int64_t":$bq, "int64_t":$bk, "int64_t":$heads);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Sattn_ScoresType : Sattn_BlockGridType<"Scores", "scores"> {
  let summary = "block-level attention estimate [B, heads, nQB, nKB]";
  let description = [{
    Estimated attention mass of every (query block, KV block) pair, query
    blocks of `bq` rows and KV blocks of `bk` keys (semantics §4). The
    compiler fuses producers and consumers so that on the GPU this tensor
    normally never reaches global memory.
  }];
}

def Sattn_BlocksType : Sattn_BlockGridType<"Blocks", "blocks"> {
  let summary = "block set: sorted KV block lists per (batch, head, query block)";
  let description = [{
    For every (batch, head, query block of `bq` rows) a sorted,
    duplicate-free list of KV blocks of `bk` keys, stored as counts plus
    indices. `heads` is the query head count (one list per head) or the KV
    head count (one list per GQA group). As a function argument it binds
    to a user list, int32 `[B, heads, nQB, cap]` padded with -1 (semantics
    §14).
  }];
}

def Sattn_BudgetType : Sattn_Type<"Budget", "budget"> {
  let summary = "number of KV blocks to keep per (batch, head, query block)";
  let description = [{
    `heads = 1` when one budget is shared by all heads of a row (OmniSparse
    "flattest head"), otherwise one budget per query head.
  }];
  let parameters = (ins "int64_t":$bq, "int64_t":$heads);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Sattn_QueriesType : Sattn_Type<"Queries", "queries"> {
  let summary = "query set: the active query rows of every (batch, head)";
  let parameters = (ins "int64_t":$heads);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Sattn_TokensType : Sattn_Type<"Tokens", "tokens"> {
  let summary = "token set: the kept KV tokens of every (batch, KV head)";
  let parameters = (ins "int64_t":$heads);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Sattn_VSlashType : Sattn_Type<"VSlash", "vslash"> {
  let summary = "token-level vertical-slash set: kept columns and slash bands per (batch, head)";
  let description = [{
    For every (batch, query head) the kept key columns (ascending) and the
    maximal distance intervals covered by the kept slashes, each slash
    widened to a band of `bq` distances (semantics §12b). An attention with
    this set runs query blocks of `bq` rows; each block attends the band of
    every kept slash through it plus the kept columns.
  }];
  let parameters = (ins "int64_t":$bq, "int64_t":$heads);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

#endif // SATTN_TYPES_TD
