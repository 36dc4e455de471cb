//===- sattn-compile.cpp - a variant to CUDA C++, PTX or cubin -----------===//
//
// `sattn-compile FILE.mlir --emit=cuda|ptx|cubin [--arch=sm_90a|sm_80] -o OUT`
// (design §7): lowers the variant (unless it already is kernel-level IR),
// emits one CUDA module holding every kernel, and compiles it with NVRTC.
// Needs no GPU. Errors start with `error:`; OUT is written only on success.
// `--time` reports on stderr where the compile went: lowering and emission,
// then NVRTC split into its front end, libNVVM and ptxas.
//
//===----------------------------------------------------------------------===//
#include "codegen/DynLib.h"
#include "codegen/Emitter.h"
#include "codegen/Nvrtc.h"
#include "tools/RegisterSattn.h"
#include "tools/ToolSupport.h"

#include "mlir/Pass/PassManager.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <cstdio>
#include <unistd.h>

using namespace sattn;
using namespace sattn::tools;

namespace {

const char *kUsage =
    "usage: sattn-compile FILE.mlir --emit=cuda|ptx|cubin [--arch=sm_90a|sm_80|...] "
    "[--dtype=bf16|fp16] [--time] -o OUT\n";

struct Options {
  std::string file, out, emit = "ptx", arch = "sm_90a", dtype;
  bool time = false;
};

Options parse(int argc, char **argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i], v;
    auto value = [&](const std::string &flag) -> std::string {
      if (a.size() > flag.size() && a.compare(0, flag.size() + 1, flag + "=") == 0)
        return a.substr(flag.size() + 1);
      if (a == flag && i + 1 < argc && argv[i + 1][0] != '-')
        return argv[++i];
      throw ToolError(flag + " needs a value");
    };
    if (a == "--help" || a == "-h") {
      llvm::outs() << kUsage;
      std::exit(0);
    } else if (a == "--emit" || a.rfind("--emit=", 0) == 0) {
      o.emit = value("--emit");
    } else if (a == "--arch" || a.rfind("--arch=", 0) == 0) {
      o.arch = value("--arch");
    } else if (a == "--dtype" || a.rfind("--dtype=", 0) == 0) {
      o.dtype = value("--dtype");
      if (o.dtype != "bf16" && o.dtype != "fp16")
        throw ToolError("--dtype must be bf16 or fp16, got '" + o.dtype + "'");
    } else if (a == "--time") {
      o.time = true;
    } else if (a == "-o" || a.rfind("-o=", 0) == 0) {
      o.out = value("-o");
    } else if (a.rfind("-", 0) == 0) {
      throw ToolError("unknown option '" + a + "' (see --help)");
    } else if (o.file.empty()) {
      o.file = a;
    } else {
      throw ToolError("more than one input file");
    }
  }
  if (o.file.empty())
    throw ToolError("no input file (see --help)");
  if (o.out.empty())
    throw ToolError("no output; pass -o OUT");
  if (o.emit != "cuda" && o.emit != "ptx" && o.emit != "cubin")
    throw ToolError("--emit must be cuda, ptx or cubin, got '" + o.emit + "'");
  return o;
}

void writeAtomically(const std::string &path, const std::string &data) {
  // A unique temporary beside the output, so concurrent runs cannot race.
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(tmp, ec, llvm::sys::fs::OF_None);
    if (ec)
      throw ToolError("cannot write '" + path + "': " + ec.message());
    os << data;
    os.close();
    if (os.has_error())
      throw ToolError("cannot write '" + path + "': " + os.error().message());
  }
  if (std::error_code ec = llvm::sys::fs::rename(tmp, path))
    throw ToolError("cannot write '" + path + "': " + ec.message());
}

double msSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

int run(int argc, char **argv) {
  Options o = parse(argc, argv);
  auto start = std::chrono::steady_clock::now();
  codegen::Arch arch;
  try {
    arch = codegen::Arch::parse(o.arch);
  } catch (const std::invalid_argument &e) {
    throw ToolError(e.what());
  }
  mlir::DialectRegistry registry;
  registerSattnDialects(registry);
  mlir::MLIRContext ctx(registry);
  DiagnosticPrinter diagnostics(ctx);
  mlir::OwningOpRef<mlir::ModuleOp> module = loadModule(o.file, ctx);

  bool lowered = false;
  module->walk([&](LaunchOp) { lowered = true; });
  if (!lowered) {
    mlir::PassManager pm(&ctx);
    LowerToKernelsOptions lo;
    lo.dtype = o.dtype;
    lo.arch = arch.name;
    buildLowerToKernelsPipeline(pm, lo);
    if (mlir::failed(pm.run(*module)))
      throw ToolError("lowering '" + o.file + "' failed (see the diagnostics above)");
  }
  mlir::func::FuncOp func;
  for (auto f : module->getOps<mlir::func::FuncOp>())
    if (f->hasAttr("sattn.spec"))
      func = f;
  if (!func)
    throw ToolError("'" + o.file + "' holds no sattn variant");
  mlir::FailureOr<std::string> cuda = codegen::emitCuda(func);
  if (mlir::failed(cuda))
    throw ToolError("code generation failed (see the diagnostics above)");
  double lowerMs = msSince(start);
  char line[256];
  if (o.emit == "cuda") {
    writeAtomically(o.out, *cuda);
    if (o.time) {
      std::snprintf(line, sizeof line, "time: lower+emit %.1f ms\n", lowerMs);
      llvm::errs() << line;
    }
    return 0;
  }
  codegen::Nvrtc &nvrtc = codegen::Nvrtc::get();
  codegen::CompileOutput compiled =
      nvrtc.compile(*cuda, func.getSymName().str(), arch,
                    o.emit == "ptx" ? codegen::Emit::Ptx : codegen::Emit::Cubin, o.time);
  if (!compiled.log.empty())
    llvm::errs() << "warning: NVRTC: " << compiled.log << "\n";
  writeAtomically(o.out, compiled.binary);
  if (o.time) {
    std::snprintf(line, sizeof line, "time: lower+emit %.1f ms, NVRTC %.1f ms", lowerMs,
                  compiled.compileMs);
    llvm::errs() << line;
    if (const auto &p = compiled.phases) {
      std::snprintf(line, sizeof line, " (front end %.0f ms, NVVM %.0f ms, ptxas %.0f ms)",
                    p->frontendMs, p->nvvmMs, p->ptxasMs);
      llvm::errs() << line;
    }
    llvm::errs() << "\n";
  }
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception &e) {
    llvm::errs() << "error: " << e.what() << "\n";
  }
  return 1;
}
