//===- Session.cpp - compile variants, cache programs ---------------------===//
//
// A Session owns the choice of device, the disk cache and an in-memory map
// from (variant text, specialisation) to compiled programs, so compiling
// the same variant again costs one hash lookup. Each Program owns its own
// MLIRContext: programs outlive the compile call and may run on any thread.
//
//===----------------------------------------------------------------------===//
#include "runtime/api/ProgramImpl.h"

#include "codegen/Emitter.h"
#include "dialect/VariantSignature.h"
#include "passes/Passes.h"
#include "runtime/gpu/Driver.h"
#include "runtime/gpu/PlanFromIR.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>

namespace sattn {

Variant Variant::fromText(std::string mlir) { return Variant(std::move(mlir)); }

Variant Variant::fromFile(const std::string &path) {
  std::ifstream in(path);
  if (!in)
    throw Error("cannot read variant file '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return Variant(ss.str());
}

struct Session::Impl {
  Device device;
  std::string gpuName = "cpu";
  cache::DiskCache disk;
  std::mutex mutex;
  std::unordered_map<std::string, std::shared_ptr<Program>> programs;

  explicit Impl(const SessionOptions &o) : disk(o.cacheDir) {
    if (o.device) {
      device = *o.device;
    } else {
      std::string why;
      device = gpuUsable(&why) ? Device::Gpu : Device::Cpu;
    }
    if (device == Device::Gpu) {
      try {
        gpuName = gpu::Driver::get().name();
      } catch (const std::exception &e) {
        throw Error(std::string("a GPU session was requested but: ") + e.what());
      }
    }
  }

  static bool gpuUsable(std::string *why) {
    try {
      gpu::Driver::get();
      return true;
    } catch (const std::exception &e) {
      *why = e.what();
      return false;
    }
  }
};

namespace {

std::string dtypeName(DType t) { return t == DType::FP16 ? "fp16" : "bf16"; }

/// Collects diagnostics so they can become the message of an Error.
struct DiagnosticCollector {
  explicit DiagnosticCollector(mlir::MLIRContext &ctx)
      : handler(&ctx, [this](mlir::Diagnostic &d) {
          llvm::raw_string_ostream os(text);
          os << d.getLocation() << ": " << d.str() << "\n";
          return mlir::success();
        }) {}
  std::string text;
  mlir::ScopedDiagnosticHandler handler;
};

std::string print(mlir::Operation *op) {
  std::string s;
  llvm::raw_string_ostream os(s);
  op->print(os);
  return s;
}

} // namespace

Session::Session(SessionOptions options) : impl(std::make_unique<Impl>(options)) {}
Session::~Session() = default;
Device Session::device() const { return impl->device; }
std::string Session::deviceName() const { return impl->gpuName; }

std::shared_ptr<Program> Session::compile(const Variant &variant, const Specialization &spec) {
  std::string memo = (spec.dtype ? dtypeName(*spec.dtype) : "-") + "|" +
                     std::to_string(spec.maxKvBlocks) + "|" + variant.text();
  std::lock_guard<std::mutex> lock(impl->mutex);
  if (auto it = impl->programs.find(memo); it != impl->programs.end())
    return it->second;

  auto start = std::chrono::steady_clock::now();
  auto p = std::make_unique<Program::Impl>();
  p->device = impl->device;
  p->context = std::make_unique<mlir::MLIRContext>();
  p->context->loadDialect<SattnDialect, mlir::func::FuncDialect>();
  DiagnosticCollector diags(*p->context);
  p->semantic = mlir::parseSourceString<mlir::ModuleOp>(variant.text(), p->context.get());
  if (!p->semantic)
    throw Error("the variant is not valid sattn IR:\n" + diags.text);
  int count = 0;
  for (auto f : p->semantic->getOps<mlir::func::FuncOp>())
    if (!f.isExternal())
      p->func = f, ++count;
  if (count != 1)
    throw Error("a variant must hold exactly one func.func, this one holds " +
                std::to_string(count));
  // Rebind the element type first so the CPU path and the kernels agree.
  if (spec.dtype) {
    mlir::PassManager pm(p->context.get());
    SattnSpecializeOptions so;
    so.dtype = dtypeName(*spec.dtype);
    pm.addPass(createSattnSpecialize(so));
    if (mlir::failed(pm.run(*p->semantic)))
      throw Error("specialising the variant failed:\n" + diags.text);
  }
  for (unsigned i = 0; i < p->func.getNumArguments(); ++i)
    p->inputNames.push_back(argName(p->func, i));

  p->lowered = p->semantic->clone();
  mlir::PassManager pm(p->context.get());
  LowerToKernelsOptions lo;
  lo.maxKvBlocks = spec.maxKvBlocks;
  buildLowerToKernelsPipeline(pm, lo);
  if (mlir::failed(pm.run(*p->lowered)))
    throw Error("lowering the variant failed:\n" + diags.text);
  mlir::func::FuncOp lowered = *p->lowered->getOps<mlir::func::FuncOp>().begin();
  p->key = mlir::cast<mlir::StringAttr>(
               mlir::cast<mlir::DictionaryAttr>(lowered->getAttr("sattn.spec")).get("key"))
               .str();
  p->loweredText = print(*p->lowered);
  if (impl->device == Device::Gpu) {
    mlir::FailureOr<std::string> cuda = codegen::emitCuda(lowered);
    if (mlir::failed(cuda))
      throw Error("code generation failed:\n" + diags.text);
    p->cuda = *cuda;
    try {
      p->gpu =
          std::make_unique<gpu::CompiledProgram>(gpu::planFromIR(lowered), p->cuda, impl->disk);
    } catch (const std::exception &e) {
      throw Error(e.what());
    }
    const gpu::CompileInfo &ci = p->gpu->compileInfo();
    const char *disk[] = {"hit", "miss", "corrupt (recompiled)"};
    p->stats.diskCache = disk[int(ci.disk)];
    p->stats.nvrtcMs = ci.compileMs;
    p->stats.arch = ci.arch;
  }
  p->stats.totalMs =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  auto program = std::make_shared<Program>(std::move(p));
  impl->programs.emplace(memo, program);
  return program;
}

} // namespace sattn
