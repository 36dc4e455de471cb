//===- sattn-run.cpp - run a sattn variant on .npy inputs -----------------===//
//
// The contract of design §7: read a variant and its .npy inputs, run it on
// a device, write O (and LSE) as float32 .npy, optionally check against the
// CPU reference, dump the selection and print a JSON report. Every error
// starts with `error:`; nothing is written unless the run succeeded.
//
//===----------------------------------------------------------------------===//
#include "runtime/io/Npy.h"
#include "runtime/reference/Reference.h"
#include "codegen/DynLib.h"
#include "runtime/gpu/Driver.h"
#include "tools/GpuRun.h"
#include "tools/InputBinding.h"
#include "tools/RegisterSattn.h"
#include "tools/RunOptions.h"
#include "tools/RunReport.h"
#include "tools/ToolSupport.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

using namespace sattn;
using namespace sattn::tools;

namespace {

/// Element type name of the variant's q argument ("bf16" or "fp16").
std::string variantDtype(mlir::func::FuncOp func) {
  auto t = llvm::cast<mlir::ShapedType>(func.getArgument(0).getType());
  return t.getElementType().isBF16() ? "bf16" : "fp16";
}

/// O as written (float32), compared with the float64 reference.
double relErrAsWritten(const ref::Tensor &out) {
  ref::Tensor written = out;
  for (double &x : written.data)
    x = double(float(x));
  return ref::relativeError(written, out);
}

int run(int argc, char **argv) {
  RunOptions opts = parseRunOptions(argc, argv);
  if (opts.help) {
    llvm::outs() << kRunUsage;
    return 0;
  }

  mlir::DialectRegistry registry;
  registerSattnDialects(registry);
  mlir::MLIRContext ctx(registry);
  DiagnosticPrinter diagnostics(ctx);
  mlir::OwningOpRef<mlir::ModuleOp> module = loadModule(opts.file, ctx);
  mlir::func::FuncOp func = findVariant(*module, opts.file);
  if (func.getNumArguments() == 0 || func.getNumResults() == 0 ||
      !llvm::isa<mlir::RankedTensorType>(func.getArgument(0).getType()))
    throw ToolError("the variant must take q as its first argument and return O");

  applyParams(func, opts);
  reverify(*module, "--param");
  std::string dtype = opts.dtype.value_or(variantDtype(func));
  if (dtype != variantDtype(func)) {
    // Rebinding the element type is what sattn-specialize does for the GPU.
    mlir::PassManager pm(&ctx);
    SattnSpecializeOptions so;
    so.dtype = dtype;
    pm.addPass(createSattnSpecialize(so));
    if (mlir::failed(pm.run(*module)))
      throw ToolError("--dtype=" + dtype + " could not be applied to the variant");
  }
  if (opts.lse && func.getNumResults() < 2)
    throw ToolError("--lse given but the variant does not return an LSE (add a second "
                    "result to its attention and return it)");

  std::vector<std::shared_ptr<ref::Tensor>> args = bindInputs(func, opts, dtype);
  std::vector<std::shared_ptr<ref::Tensor>> outputs;
  std::vector<std::pair<std::string, double>> phases;
  std::optional<CompileReport> compile;
  RunMetrics metrics;
  SelectionInfo selection;
  std::string device = "cpu";
  if (opts.device == "gpu") {
    GpuRunResult g = runOnGpu(*module, dtype, args, bool(opts.dumpSelection));
    outputs = g.results, phases = g.phaseMs, device = "gpu: " + g.device;
    const char *disk[] = {"hit", "miss", "corrupt (recompiled)"};
    compile = CompileReport{g.compile.arch, disk[int(g.compile.disk)], g.compile.compileMs,
                            g.compile.loadMs};
    const gpu::SelectionSets &sets = g.selection;
    selection.blocks = sets.blocks, selection.queries = sets.queries;
    selection.tokens = sets.tokens, selection.decode = !sets.prefill;
    for (const auto &[kernel, value] : g.dumps)
      if (auto *b = std::get_if<ref::Budget>(&value))
        selection.budget = std::make_shared<ref::Budget>(*b);
    if (opts.check) {
      // The oracle: the same variant on the same (rounded) inputs in float64.
      CpuRunResult ref = runOnCpu(func, args);
      metrics = computeMetrics(ref);
      metrics.relErr = ref::relativeError(*outputs[0], *ref.results[0]);
    }
    // The density of what the GPU itself selected (it may differ from the
    // reference's selection where fp32 scores tie).
    if (std::optional<double> d = sets.density())
      metrics.density = d;
    if (sets.tokens)
      metrics.kvKept = ref::keptFraction(*sets.tokens);
    metrics.nanCount = 0;
    for (const auto &t : outputs)
      for (double x : t->data)
        metrics.nanCount += std::isnan(x) ? 1 : 0;
  } else {
    CpuRunResult result = runOnCpu(func, args);
    metrics = computeMetrics(result);
    if (opts.check)
      metrics.relErr = relErrAsWritten(*result.results[0]);
    outputs = result.results, phases = result.phaseMs, selection = result.selection;
  }

  // Only now, with the run complete, touch the output paths.
  const ref::Tensor &o = *outputs[0];
  io::writeNpyF32(opts.out, o.shape, o.data);
  if (opts.lse)
    io::writeNpyF32(*opts.lse, outputs[1]->shape, outputs[1]->data);
  if (opts.dumpSelection)
    dumpSelection(selection, *opts.dumpSelection);
  if (opts.json)
    llvm::outs() << renderJson(device, metrics, phases, compile) << "\n";
  if (metrics.nanCount > 0) {
    llvm::errs() << "error: the output holds " << metrics.nanCount << " NaN values\n";
    return 1;
  }
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  try {
    return run(argc, argv);
  } catch (const ToolError &e) {
    llvm::errs() << "error: " << e.what() << "\n";
  } catch (const ref::Error &e) {
    llvm::errs() << "error: " << e.what() << "\n";
  } catch (const io::NpyError &e) {
    llvm::errs() << "error: " << e.what() << "\n";
  } catch (const std::bad_alloc &) {
    llvm::errs() << "error: out of memory; the CPU reference holds every tensor in float64 "
                    "— try smaller inputs\n";
  } catch (const std::exception &e) {
    llvm::errs() << "error: " << e.what() << "\n";
  }
  return 1;
}
