//===- ToolSupport.cpp - shared plumbing of the sattn command-line tools --===//
#include "tools/ToolSupport.h"

#include "dialect/SattnDialect.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;

namespace sattn::tools {

namespace {
const char *severityName(DiagnosticSeverity s) {
  switch (s) {
  case DiagnosticSeverity::Error:
    return "error";
  case DiagnosticSeverity::Warning:
    return "warning";
  case DiagnosticSeverity::Note:
    return "note";
  case DiagnosticSeverity::Remark:
    return "remark";
  }
  return "error";
}

void printLocated(llvm::raw_ostream &os, const char *severity, Location loc,
                  const std::string &msg) {
  os << severity << ": ";
  if (auto fl = llvm::dyn_cast<FileLineColLoc>(loc))
    os << fl.getFilename().getValue() << ":" << fl.getLine() << ":" << fl.getColumn() << ": ";
  os << msg << "\n";
}
} // namespace

DiagnosticPrinter::DiagnosticPrinter(MLIRContext &c) : ctx(c) {
  id = ctx.getDiagEngine().registerHandler([](Diagnostic &d) {
    printLocated(llvm::errs(), severityName(d.getSeverity()), d.getLocation(), d.str());
    for (Diagnostic &note : d.getNotes())
      printLocated(llvm::errs(), "note", note.getLocation(), note.str());
    return success();
  });
}

DiagnosticPrinter::~DiagnosticPrinter() { ctx.getDiagEngine().eraseHandler(id); }

OwningOpRef<ModuleOp> loadModule(const std::string &path, MLIRContext &ctx) {
  auto file = llvm::MemoryBuffer::getFile(path, /*IsText=*/false);
  if (!file)
    throw ToolError("cannot read '" + path + "': " + file.getError().message());
  llvm::SourceMgr sm;
  sm.AddNewSourceBuffer(std::move(*file), llvm::SMLoc());
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sm, ParserConfig(&ctx));
  if (!module)
    throw ToolError("'" + path + "' is not valid sattn IR (see the diagnostics above)");
  return module;
}

func::FuncOp findVariant(ModuleOp module, const std::string &path) {
  func::FuncOp found;
  int count = 0;
  for (auto f : module.getOps<func::FuncOp>()) {
    bool hasSattn = false;
    f.walk([&](Operation *op) { hasSattn |= isa<SattnDialect>(op->getDialect()); });
    if (hasSattn && !f.isExternal())
      found = f, ++count;
  }
  if (count == 0)
    throw ToolError("'" + path + "' holds no function with sattn ops");
  if (count > 1)
    throw ToolError("'" + path + "' holds " + std::to_string(count) +
                    " variants; put one func.func per file");
  bool lowered = false;
  found.walk([&](LaunchOp) { lowered = true; });
  if (lowered)
    throw ToolError("'" + path +
                    "' is already lowered to kernel launches; give the "
                    "semantic IR (before sattn-outline-kernels)");
  return found;
}

void reverify(ModuleOp module, const std::string &what) {
  if (failed(verify(module)))
    throw ToolError(what + " made the variant invalid (see the diagnostics above)");
}

} // namespace sattn::tools
