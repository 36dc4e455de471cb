//===- Specialize.cpp - bind static facts, compute the cache key ----------===//
//
// Design §4.5. After this pass every fact a kernel is compiled for is a
// constant in the IR: head counts, head dim, element type, block sizes
// (already in the types) and list capacities. The SHA-256 of the
// specialised function is the JIT cache key, so two variants that print
// alike share compiled kernels and any change of fact gives a new key.
//
//===----------------------------------------------------------------------===//
#include "passes/Passes.h"
#include "dialect/ShapeFacts.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/SHA256.h"
#include "llvm/Support/raw_ostream.h"

#define DEBUG_TYPE "sattn-specialize"

namespace sattn {
#define GEN_PASS_DEF_SATTNSPECIALIZE
#include "passes/Passes.h.inc"
} // namespace sattn

using namespace mlir;
using namespace sattn;

namespace {

/// The Q/K/V-like tensors of a function: every rank-4 bf16/f16 value.
bool isQkvTensor(Type t) {
  auto rt = llvm::dyn_cast<RankedTensorType>(t);
  return rt && rt.getRank() == 4 && (rt.getElementType().isBF16() || rt.getElementType().isF16());
}

Type rebind(Type t, Type elt) {
  if (!isQkvTensor(t))
    return t;
  return llvm::cast<RankedTensorType>(t).clone(elt);
}

std::string hexDigest(StringRef text) {
  auto hash = llvm::SHA256::hash(llvm::arrayRefFromStringRef(text));
  std::string out;
  llvm::raw_string_ostream os(out);
  for (uint8_t b : hash)
    os << llvm::format_hex_no_prefix(b, 2);
  return out;
}

struct SattnSpecializePass : sattn::impl::SattnSpecializeBase<SattnSpecializePass> {
  using SattnSpecializeBase::SattnSpecializeBase;

  void runOnOperation() override {
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (failed(specialize(func)))
        return signalPassFailure();
  }

  LogicalResult specialize(func::FuncOp func) {
    Builder b(func.getContext());
    // The variant's facts come from its attention-like ops.
    std::optional<Bhsd> q, k;
    Type elt;
    WalkResult walk = func.walk([&](Operation *op) {
      if (!isa<AttentionOp, DecodeAttentionOp>(op))
        return WalkResult::advance();
      Bhsd oq = Bhsd::of(op->getOperand(0).getType());
      Bhsd ok = Bhsd::of(op->getOperand(1).getType());
      Type oe = llvm::cast<ShapedType>(op->getOperand(0).getType()).getElementType();
      if (q && (q->heads != oq.heads || q->dim != oq.dim || k->heads != ok.heads || elt != oe)) {
        op->emitError() << "all attention ops of a variant must share heads, head dim "
                           "and element type";
        return WalkResult::interrupt();
      }
      q = oq, k = ok, elt = oe;
      return WalkResult::advance();
    });
    if (walk.wasInterrupted())
      return failure();
    if (!q)
      return success(); // not a variant (no attention): leave it alone

    static const char *kArchs[] = {"sm_90a", "sm_90", "sm_89", "sm_86", "sm_80"};
    if (!llvm::is_contained(kArchs, llvm::StringRef(arch)))
      return func.emitError() << "arch must be one of sm_90a, sm_90, sm_89, sm_86, sm_80, got '"
                              << arch << "'";
    if (!dtype.empty()) {
      if (dtype != "bf16" && dtype != "fp16")
        return func.emitError() << "dtype must be bf16 or fp16, got '" << dtype << "'";
      elt = dtype == "bf16" ? Type(b.getBF16Type()) : Type(b.getF16Type());
      rebindElementType(func, elt);
    }

    // List capacities bound the workspace of every selection.
    func.walk([&](SelectBlocksOp op) {
      int64_t forced = 0;
      if (auto f = op.getForcedAttr())
        forced = f.getSink() + f.getLocal() + (f.getDiagonal() ? 1 : 0);
      int64_t cap = 0;
      if (op.getKAttr())
        cap = std::max<int64_t>(op.getKAttr().getInt(), forced);
      else if (maxKvBlocks > 0)
        cap = maxKvBlocks;
      if (cap > 0)
        op.setCapAttr(b.getI64IntegerAttr(cap));
      else
        op.removeCapAttr();
    });

    func->removeAttr("sattn.spec");
    std::string text;
    llvm::raw_string_ostream os(text);
    func->print(os, OpPrintingFlags().printGenericOpForm().enableDebugInfo(false));
    NamedAttrList spec;
    spec.append("heads", b.getI64IntegerAttr(q->heads));
    spec.append("kv_heads", b.getI64IntegerAttr(k->heads));
    spec.append("head_dim", b.getI64IntegerAttr(q->dim));
    spec.append("arch", b.getStringAttr(arch));
    spec.append("dtype", b.getStringAttr(elt.isBF16() ? "bf16" : "fp16"));
    spec.append("key", b.getStringAttr(hexDigest(text)));
    func->setAttr("sattn.spec", spec.getDictionary(func.getContext()));
    return success();
  }

  /// Rewrites every Q/K/V/O tensor type (arguments, results, op results).
  void rebindElementType(func::FuncOp func, Type elt) {
    for (BlockArgument arg : func.getArguments())
      arg.setType(rebind(arg.getType(), elt));
    func.walk([&](Operation *op) {
      for (OpResult r : op->getResults())
        r.setType(rebind(r.getType(), elt));
    });
    SmallVector<Type> ins, outs;
    for (Type t : func.getArgumentTypes())
      ins.push_back(rebind(t, elt));
    for (Type t : func.getResultTypes())
      outs.push_back(rebind(t, elt));
    func.setType(FunctionType::get(func.getContext(), ins, outs));
  }
};

} // namespace
