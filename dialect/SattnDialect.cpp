//===- SattnDialect.cpp - dialect registration, type and attr verifiers ---===//
//
// Registers the sattn types, attributes and ops, and verifies the static
// parameters of types and attributes (block sizes and head counts must be
// positive, forced block counts non-negative).
//
//===----------------------------------------------------------------------===//
#include "dialect/SattnDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace sattn;

#include "dialect/SattnDialect.cpp.inc"
#include "dialect/SattnEnums.cpp.inc"

#define GET_TYPEDEF_CLASSES
#include "dialect/SattnTypes.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dialect/SattnAttrs.cpp.inc"

void SattnDialect::initialize() {
  addTypes<
#define GET_TYPEDEF_LIST
#include "dialect/SattnTypes.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialect/SattnAttrs.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "dialect/SattnOps.cpp.inc"
      >();
}

namespace {
LogicalResult positive(function_ref<InFlightDiagnostic()> emitError, StringRef what, StringRef name,
                       int64_t v) {
  if (v <= 0)
    return emitError() << what << " " << name << " must be positive, got " << v;
  return success();
}
} // namespace

LogicalResult ScoresType::verify(function_ref<InFlightDiagnostic()> emitError, int64_t bq,
                                 int64_t bk, int64_t heads) {
  return success(succeeded(positive(emitError, "!sattn.scores", "bq", bq)) &&
                 succeeded(positive(emitError, "!sattn.scores", "bk", bk)) &&
                 succeeded(positive(emitError, "!sattn.scores", "heads", heads)));
}

LogicalResult BlocksType::verify(function_ref<InFlightDiagnostic()> emitError, int64_t bq,
                                 int64_t bk, int64_t heads) {
  return success(succeeded(positive(emitError, "!sattn.blocks", "bq", bq)) &&
                 succeeded(positive(emitError, "!sattn.blocks", "bk", bk)) &&
                 succeeded(positive(emitError, "!sattn.blocks", "heads", heads)));
}

LogicalResult BudgetType::verify(function_ref<InFlightDiagnostic()> emitError, int64_t bq,
                                 int64_t heads) {
  return success(succeeded(positive(emitError, "!sattn.budget", "bq", bq)) &&
                 succeeded(positive(emitError, "!sattn.budget", "heads", heads)));
}

LogicalResult QueriesType::verify(function_ref<InFlightDiagnostic()> emitError, int64_t heads) {
  return positive(emitError, "!sattn.queries", "heads", heads);
}

LogicalResult TokensType::verify(function_ref<InFlightDiagnostic()> emitError, int64_t heads) {
  return positive(emitError, "!sattn.tokens", "heads", heads);
}

LogicalResult VSlashType::verify(function_ref<InFlightDiagnostic()> emitError, int64_t bq,
                                 int64_t heads) {
  if (failed(positive(emitError, "!sattn.vslash", "heads", heads)))
    return failure();
  return positive(emitError, "!sattn.vslash", "bq", bq);
}

LogicalResult ForcedAttr::verify(function_ref<InFlightDiagnostic()> emitError, int64_t sink,
                                 int64_t local, bool diagonal) {
  if (sink < 0 || local < 0)
    return emitError() << "#sattn.forced sink and local must be non-negative, got sink = " << sink
                       << ", local = " << local;
  return success();
}

LogicalResult BlockPatternAttr::verify(function_ref<InFlightDiagnostic()> emitError, int64_t bq,
                                       int64_t bk, bool causal, int64_t window, int64_t sinks) {
  if (bq <= 0 || bk <= 0)
    return emitError() << "#sattn.block_pattern block sizes must be positive";
  if (window < 0 || sinks < 0)
    return emitError() << "#sattn.block_pattern window and sinks must be non-negative";
  if (window > 0 && !causal)
    return emitError() << "#sattn.block_pattern window needs causal";
  if (sinks > 0 && window == 0)
    return emitError() << "#sattn.block_pattern sinks need a window";
  return success();
}
