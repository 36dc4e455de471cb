//===- SattnAttrs.td - enums and attributes ----------------*- tablegen -*-===//
//
// Keyword enums (printed bare in op syntax) and the structured attributes
// shared by several ops: forced blocks and fused static block patterns.
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_ATTRS_TD
#define SATTN_ATTRS_TD

include "dialect/SattnDialect.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def Sattn_PoolKind : I32EnumAttr<"PoolKind", "how a group of tokens is pooled", [
  I32EnumAttrCase<"mean", 0>, I32EnumAttrCase<"max", 1>, I32EnumAttrCase<"min", 2>]> {
  let cppNamespace = "::sattn";
}

def Sattn_SelectRule : I32EnumAttr<"SelectRule", "block selection rule", [
  I32EnumAttrCase<"topk", 0>, I32EnumAttrCase<"cumulative", 1>]> {
  let cppNamespace = "::sattn";
}

def Sattn_SelectScope : I32EnumAttr<"SelectScope", "what one cumulative prefix covers", [
  I32EnumAttrCase<"row", 0>, I32EnumAttrCase<"head", 1>]> {
  let cppNamespace = "::sattn";
}

def Sattn_BudgetShare : I32EnumAttr<"BudgetShare", "how heads share a budget", [
  I32EnumAttrCase<"none", 0>, I32EnumAttrCase<"flattest", 1>]> {
  let cppNamespace = "::sattn";
}

def Sattn_LazyPolicy : I32EnumAttr<"LazyPolicy", "what lazy query rows attend to", [
  I32EnumAttrCase<"local", 0>, I32EnumAttrCase<"zero", 1>]> {
  let cppNamespace = "::sattn";
}

class Sattn_Attr<string name, string attrMnemonic> : AttrDef<Sattn_Dialect, name> {
  let mnemonic = attrMnemonic;
}

def Sattn_ForcedAttr : Sattn_Attr<"Forced", "forced"> {
  let summary = "blocks a selection always keeps (semantics §5)";
  let description = [{
    `sink = n`: the first n KV blocks; `local = n`: the n blocks ending at
    the diagonal block; `diagonal`: the diagonal block. Each is intersected
    with the blocks the row may see. Example:
    `#sattn.forced<sink = 1, local = 2, diagonal = true>`.
  }];
  let parameters = (ins DefaultValuedParameter<"int64_t", "0">:$sink,
                        DefaultValuedParameter<"int64_t", "0">:$local,
                        DefaultValuedParameter<"bool", "false">:$diagonal);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Sattn_BlockPatternAttr : Sattn_Attr<"BlockPattern", "block_pattern"> {
  let summary = "a static block set evaluated in the kernel (no index lists)";
  let description = [{
    Produced by `sattn-fuse-static-masks` from a `sattn.static_blocks`
    operand: KV block J is attended by query block I iff some (i, j) of the
    pair is allowed by the token mask (causal, window, sinks) — semantics §8.
    Example: `#sattn.block_pattern<bq = 64, bk = 64, causal = true, window = 512>`.
  }];
  let parameters = (ins "int64_t":$bq, "int64_t":$bk,
                        DefaultValuedParameter<"bool", "false">:$causal,
                        DefaultValuedParameter<"int64_t", "0">:$window,
                        DefaultValuedParameter<"int64_t", "0">:$sinks);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

#endif // SATTN_ATTRS_TD
