//===- VariantSignature.cpp - names and geometry of a variant's arguments -===//
#include "dialect/VariantSignature.h"

#include "dialect/SattnDialect.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;

namespace sattn {

std::string argName(func::FuncOp func, unsigned index) {
  if (auto name = func.getArgAttrOfType<StringAttr>(index, "sattn.name"))
    return name.str();
  static const char *kDefault[] = {"q", "k", "v"};
  if (index < 3)
    return kDefault[index];
  return "arg" + std::to_string(index);
}

std::pair<Value, Value> definingLengths(Value v) {
  Operation *def = v.getDefiningOp();
  if (!def)
    return {};
  return llvm::TypeSwitch<Operation *, std::pair<Value, Value>>(def)
      .Case([](ScoresOp s) { return std::pair(s.getQ(), s.getK()); })
      .Case([](AntidiagScoresOp s) { return std::pair(s.getQ(), s.getK()); })
      .Case([](MeanScoresOp s) { return definingLengths(s.getInputs().front()); })
      .Case([](StaticBlocksOp s) { return std::pair(s.getQ(), s.getK()); })
      .Case([](SelectBlocksOp s) { return definingLengths(s.getScores()); })
      .Case([](HeadBudgetOp s) { return definingLengths(s.getScores()); })
      .Case<UnionOp, IntersectOp>([](Operation *u) {
        std::pair<Value, Value> qk = definingLengths(u->getOperand(0));
        return qk.first ? qk : definingLengths(u->getOperand(1));
      })
      .Case([](LaunchOp l) {
        // The normalised copy of a user list (sattn-outline-kernels).
        if (l.getDeviceTemplate() == "blocks_from_list" && l.getArgs().size() == 3)
          return std::pair(l.getArgs()[1], l.getArgs()[2]);
        return std::pair<Value, Value>();
      })
      .Default([](Operation *) { return std::pair<Value, Value>(); });
}

std::pair<Value, Value> blockSetLengths(OpOperand &use) {
  Operation *user = use.getOwner();
  if (auto a = dyn_cast<AttentionOp>(user))
    return a.getBlocks() == use.get() ? std::pair(a.getQ(), a.getK()) : std::pair<Value, Value>();
  if (isa<UnionOp, IntersectOp>(user)) {
    Value other = user->getOperand(1 - use.getOperandNumber());
    if (std::pair<Value, Value> qk = definingLengths(other); qk.first)
      return qk;
    for (OpOperand &next : user->getResult(0).getUses())
      if (std::pair<Value, Value> qk = blockSetLengths(next); qk.first)
        return qk;
  }
  return {};
}

std::pair<Value, Value> blockSetLengths(Value v) {
  if (std::pair<Value, Value> qk = definingLengths(v); qk.first)
    return qk;
  for (OpOperand &use : v.getUses())
    if (std::pair<Value, Value> qk = blockSetLengths(use); qk.first)
      return qk;
  return {};
}

} // namespace sattn
