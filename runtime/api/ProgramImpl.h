//===- ProgramImpl.h - what a compiled sattn::Program holds ---------------===//
#pragma once

#include "sattn/sattn.h"

#include "dialect/SattnDialect.h"
#include "runtime/gpu/Executor.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"

#include <map>
#include <memory>
#include <mutex>

namespace sattn {

struct Program::Impl {
  Device device = Device::Cpu;
  std::unique_ptr<mlir::MLIRContext> context;
  mlir::OwningOpRef<mlir::ModuleOp> semantic, lowered;
  mlir::func::FuncOp func;                   ///< the semantic variant (CPU path)
  std::shared_ptr<gpu::CompiledProgram> gpu; ///< shared with the SlimCaches it built
  /// Autotuned alternatives: shape bucket -> program compiled with the
  /// bucket's winning configuration (all compiled at compile time, so a new
  /// length never compiles anything).
  std::map<std::string, std::shared_ptr<gpu::CompiledProgram>> tuned;
  std::string key, loweredText, cuda;
  std::vector<std::string> inputNames;
  CompileStats stats;
  /// Where the kv_slim / decode pair reads its inputs (SlimCache.cpp),
  /// found once on the first slim() / decode() instead of on every step.
  /// (A mutex, not std::call_once: the search throws for variants without
  /// the pair, and an exception must not unwind through pthread_once.)
  mutable std::mutex slimMutex;
  mutable std::shared_ptr<const struct SlimRoles> slimRoles;
};

} // namespace sattn
