//===- CpuExecutor.h - run a variant on the float64 reference -------------===//
//
// Interprets the semantic IR of a variant op by op with the reference
// kernels of runtime/reference/: the test oracle and the no-GPU fallback.
// Kernel-level IR (sattn.launch) is not interpreted: run the variant before
// lowering. Runtime problems in the inputs throw sattn::ref::Error.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/reference/Reference.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <memory>
#include <string>
#include <vector>

namespace sattn {

/// What the variant's last attention consumed: for metrics and for
/// `--dump-selection`. Null pointers where the variant has no such value.
struct SelectionInfo {
  std::shared_ptr<const ref::Tensor> q, k, v;
  std::shared_ptr<const ref::BlockSet> blocks;
  std::shared_ptr<const ref::QuerySet> queries;
  std::shared_ptr<const ref::Budget> budget;
  std::shared_ptr<const ref::TokenSet> tokens;
  std::shared_ptr<const ref::VSlashSet> vslash; ///< params.vslash points into it
  ref::AttentionParams params;
  bool decode = false;
};

struct CpuRunResult {
  /// The function's tensor results, in order (O, then LSE when returned).
  std::vector<std::shared_ptr<ref::Tensor>> results;
  SelectionInfo selection;
  /// Wall time of every op, in program order: (op name, milliseconds).
  std::vector<std::pair<std::string, double>> phaseMs;
  /// The kept tokens of the last sattn.kv_slim evaluated.
  std::shared_ptr<const ref::TokenSet> slimTokens;
};

/// Runs `func` with argument i bound to args[i] (rank-4 Q/K/V in BHSD, other
/// tensors as given: segments [B, n, 2], page tables, lengths). With
/// `stopAfter`, evaluation ends after that op and `results` stays empty;
/// arguments no evaluated op reads may then be null (Program::slim).
CpuRunResult runOnCpu(mlir::func::FuncOp func,
                      const std::vector<std::shared_ptr<ref::Tensor>> &args,
                      mlir::Operation *stopAfter = nullptr);

} // namespace sattn
