//===- ToolSupport.h - shared plumbing of the sattn command-line tools ----===//
//
// Loading a variant from a file with located diagnostics that start with
// `error:` (design §7), and the exception type tools use to stop with a
// message and an exit code.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"

#include <stdexcept>
#include <string>

namespace sattn::tools {

/// Thrown to stop a tool: the message is printed after `error: `.
struct ToolError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Routes MLIR diagnostics to stderr as `error: FILE:LINE:COL: message`.
class DiagnosticPrinter {
public:
  explicit DiagnosticPrinter(mlir::MLIRContext &ctx);
  ~DiagnosticPrinter();

private:
  mlir::MLIRContext &ctx;
  mlir::DiagnosticEngine::HandlerID id;
};

/// Parses and verifies FILE; throws ToolError if it cannot be read or is
/// not valid sattn IR (the located diagnostics are already printed).
mlir::OwningOpRef<mlir::ModuleOp> loadModule(const std::string &path, mlir::MLIRContext &ctx);

/// The one variant (func.func holding sattn ops) of the module.
mlir::func::FuncOp findVariant(mlir::ModuleOp module, const std::string &path);

/// Verifies the module again after a tool changed it.
void reverify(mlir::ModuleOp module, const std::string &what);

} // namespace sattn::tools
