//===- VariantSignature.cpp - names of a variant's function arguments -----===//
#include "dialect/VariantSignature.h"

#include "mlir/IR/BuiltinAttributes.h"

namespace sattn {

std::string argName(mlir::func::FuncOp func, unsigned index) {
  if (auto name = func.getArgAttrOfType<mlir::StringAttr>(index, "sattn.name"))
    return name.str();
  static const char *kDefault[] = {"q", "k", "v"};
  if (index < 3)
    return kDefault[index];
  return "arg" + std::to_string(index);
}

} // namespace sattn
