//===- ShapeFacts.cpp - static facts of [B, H, S, D] tensors --------------===//
//
// Verifier helpers shared by the ops of SattnOps.cpp: they word every
// message the same way so diagnostics read alike across ops.
//
//===----------------------------------------------------------------------===//
#include "dialect/ShapeFacts.h"

using namespace mlir;

namespace sattn {

Bhsd Bhsd::of(Type t) {
  auto rt = llvm::cast<RankedTensorType>(t);
  return {rt.getDimSize(0), rt.getDimSize(1), rt.getDimSize(2), rt.getDimSize(3)};
}

bool staticMismatch(int64_t a, int64_t b) {
  return !ShapedType::isDynamic(a) && !ShapedType::isDynamic(b) && a != b;
}

LogicalResult verifyStaticHeads(Operation *op, llvm::StringRef what, Type t) {
  Bhsd s = Bhsd::of(t);
  if (ShapedType::isDynamic(s.heads))
    return op->emitOpError() << what << " must have a static head count (dimension 1)";
  if (ShapedType::isDynamic(s.dim))
    return op->emitOpError() << what << " must have a static head dim (dimension 3)";
  return success();
}

LogicalResult verifyQkv(Operation *op, Type q, Type k, Type v) {
  if (failed(verifyStaticHeads(op, "q", q)) || failed(verifyStaticHeads(op, "k", k)))
    return failure();
  Bhsd sq = Bhsd::of(q), sk = Bhsd::of(k);
  if (staticMismatch(sq.batch, sk.batch))
    return op->emitOpError() << "batch of q (" << sq.batch << ") and k (" << sk.batch << ") differ";
  if (sq.dim != sk.dim)
    return op->emitOpError() << "head dim of q (" << sq.dim << ") and k (" << sk.dim << ") differ";
  if (sq.heads % sk.heads != 0)
    return op->emitOpError() << "query heads (" << sq.heads << ") must be a multiple of KV heads ("
                             << sk.heads << ")";
  if (v && llvm::cast<ShapedType>(v).getShape() != llvm::cast<ShapedType>(k).getShape())
    return op->emitOpError() << "k and v must have the same shape";
  if (v && llvm::cast<ShapedType>(v).getElementType() != llvm::cast<ShapedType>(k).getElementType())
    return op->emitOpError() << "k and v must have the same element type";
  if (llvm::cast<ShapedType>(q).getElementType() != llvm::cast<ShapedType>(k).getElementType())
    return op->emitOpError() << "q and k must have the same element type";
  return success();
}

LogicalResult verifyUnitInterval(Operation *op, llvm::StringRef name, double value) {
  if (!(value >= 0.0 && value <= 1.0))
    return op->emitOpError() << name << " = " << value << " must lie in [0, 1]";
  return success();
}

LogicalResult verifyKnownAttributes(Operation *op) {
  for (NamedAttribute a : op->getDiscardableAttrs()) {
    if (a.getName().getValue().contains('.'))
      continue;
    std::string known;
    if (std::optional<RegisteredOperationName> info = op->getRegisteredInfo())
      for (StringAttr n : info->getAttributeNames())
        if (n.getValue() != "operandSegmentSizes")
          known += (known.empty() ? "" : ", ") + n.getValue().str();
    return op->emitOpError() << "has no attribute '" << a.getName().getValue()
                             << "' (it takes: " << (known.empty() ? "none" : known) << ")";
  }
  return success();
}

} // namespace sattn
