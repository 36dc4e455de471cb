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
#include "runtime/gpu/DeviceBuffer.h"
#include "runtime/gpu/Driver.h"
#include "codegen/Nvrtc.h"
#include "runtime/gpu/PlanFromIR.h"
#include "runtime/io/Dtype.h"
#include "runtime/tune/Tuning.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <algorithm>
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
  std::unique_ptr<tune::Database> tuning;
  std::string arch, toolchain;

  explicit Impl(const SessionOptions &o) : disk(o.cacheDir) {
    if (o.device) {
      device = *o.device;
    } else {
      std::string why;
      device = gpuUsable(&why) ? Device::Gpu : Device::Cpu;
    }
    if (device == Device::Gpu) {
      try {
        gpu::Driver &d = gpu::Driver::get();
        gpuName = d.name();
        arch = codegen::Arch::forCapability(d.major(), d.minor()).name;
        toolchain = "nvrtc " + codegen::Nvrtc::get().version() + ", sattn " SATTN_VERSION;
      } catch (const std::exception &e) {
        throw Error(std::string("a GPU session was requested but: ") + e.what());
      }
      tuning = std::make_unique<tune::Database>(disk.directory() + "/tuning.json");
    }
  }

  /// The module of `lowered` with launch `kernel` set to `config`, compiled.
  std::shared_ptr<gpu::CompiledProgram> build(mlir::ModuleOp lowered, const std::string &kernel,
                                              const tune::Config &config) {
    mlir::OwningOpRef<mlir::ModuleOp> copy(lowered.clone());
    mlir::func::FuncOp f = *copy->getOps<mlir::func::FuncOp>().begin();
    if (!kernel.empty())
      tune::applyConfig(f, kernel, config);
    mlir::FailureOr<std::vector<std::string>> parts = codegen::emitCudaParts(f);
    if (mlir::failed(parts))
      throw Error("code generation failed for " + tune::describe(config));
    return std::make_shared<gpu::CompiledProgram>(gpu::planFromIR(f), *parts, disk);
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
std::string Session::tuningDatabase() const {
  return impl->tuning ? impl->tuning->path() : std::string();
}
Session::~Session() = default;
Device Session::device() const { return impl->device; }
std::string Session::deviceName() const { return impl->gpuName; }

size_t Session::releaseWorkspace() {
  if (impl->device != Device::Gpu)
    return 0;
  try {
    return gpu::Driver::get().releaseWorkspace();
  } catch (const std::exception &e) {
    throw Error(e.what());
  }
}

std::shared_ptr<Program> Session::compile(const Variant &variant, const Specialization &spec) {
  // SATTN_TUNE_CONFIG="K=V,...": every launch whose template declares
  // these knobs runs them where the shape allows (rejectReason), instead of
  // the heuristic and the tuning database — A/B runs and the GPU tests of
  // every configuration. Part of the memo key, as is the fusion switch.
  tune::Config forced;
  try {
    forced = tune::forcedConfig();
  } catch (const std::exception &e) {
    throw Error(e.what());
  }
  const char *fuseEnv = std::getenv("SATTN_FUSE_ESTIMATION");
  std::string memo = (spec.dtype ? dtypeName(*spec.dtype) : "-") + "|" +
                     std::to_string(spec.maxKvBlocks) + "|" + (fuseEnv ? fuseEnv : "") + "|" +
                     tune::describe(forced) + "|" + variant.text();
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
  if (!impl->arch.empty())
    lo.arch = impl->arch; // kernels for the GPU this session runs on
  // SATTN_FUSE_ESTIMATION=0 keeps every sattn.scores a launch of its own
  // (benchmarks compare both; docs/architecture.md "Fused estimation").
  if (fuseEnv)
    lo.fuseEstimation = std::string(fuseEnv) != "0";
  buildLowerToKernelsPipeline(pm, lo);
  if (mlir::failed(pm.run(*p->lowered)))
    throw Error("lowering the variant failed:\n" + diags.text);
  mlir::func::FuncOp lowered = *p->lowered->getOps<mlir::func::FuncOp>().begin();
  if (!forced.empty() && impl->device == Device::Gpu) {
    try {
      tune::applyForced(lowered, forced);
    } catch (const std::exception &e) {
      throw Error(std::string("SATTN_TUNE_CONFIG: ") + e.what());
    }
  }
  p->key = mlir::cast<mlir::StringAttr>(
               mlir::cast<mlir::DictionaryAttr>(lowered->getAttr("sattn.spec")).get("key"))
               .str();
  p->loweredText = print(*p->lowered);
  if (impl->device == Device::Gpu) {
    mlir::FailureOr<std::string> cuda = codegen::emitCuda(lowered);
    if (mlir::failed(cuda))
      throw Error("code generation failed:\n" + diags.text);
    p->cuda = *cuda;
    mlir::FailureOr<std::vector<std::string>> parts = codegen::emitCudaParts(lowered);
    if (mlir::failed(parts))
      throw Error("code generation failed:\n" + diags.text);
    try {
      p->gpu = std::make_unique<gpu::CompiledProgram>(gpu::planFromIR(lowered), *parts, impl->disk);
    } catch (const std::exception &e) {
      throw Error(e.what());
    }
    // Compile every tuned configuration now, so running never compiles
    // (none when SATTN_TUNE_CONFIG forces one).
    try {
      for (const gpu::Launch &l : p->gpu->plan().launches) {
        if (!forced.empty() || tune::candidates(l.deviceTemplate).empty())
          continue;
        for (const tune::Entry &e :
             impl->tuning->lookup(impl->gpuName, impl->arch, impl->toolchain, tune::signature(l)))
          if (tune::rejectReason(l, e.config).empty())
            p->tuned[e.bucket] = impl->build(*p->lowered, l.kernel, e.config);
      }
    } catch (const Error &) {
      throw;
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

//===----------------------------------------------------------------------===//
// Autotuning
//===----------------------------------------------------------------------===//

namespace sattn {

namespace {

using gpu::contiguousStrides;
using gpu::DeviceBuffer;

/// Median milliseconds of `runOnce` over `reps` CUDA-event timings.
double medianMs(const std::function<void()> &runOnce, CUstream stream, int warmup, int reps) {
  gpu::Driver &d = gpu::Driver::get();
  for (int i = 0; i < warmup; ++i)
    runOnce();
  CUevent a, b;
  d.check(d.cuEventCreate_(&a, CU_EVENT_DEFAULT), "creating a timing event");
  d.check(d.cuEventCreate_(&b, CU_EVENT_DEFAULT), "creating a timing event");
  std::vector<float> times;
  for (int i = 0; i < reps; ++i) {
    d.check(d.cuEventRecord_(a, stream), "recording an event");
    runOnce();
    d.check(d.cuEventRecord_(b, stream), "recording an event");
    d.check(d.cuEventSynchronize_(b), "waiting for a candidate");
    float ms = 0;
    d.check(d.cuEventElapsedTime_(&ms, a, b), "timing a candidate");
    times.push_back(ms);
  }
  d.cuEventDestroy_(a);
  d.cuEventDestroy_(b);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

} // namespace

std::vector<TuneResult> Session::tune(const Variant &variant, const std::vector<TuneShape> &shapes,
                                      const Specialization &spec,
                                      const std::function<void(const TuneResult &)> &progress) {
  if (impl->device != Device::Gpu)
    throw Error("tuning times kernels on a GPU; this session runs on the CPU");
  std::shared_ptr<Program> base = compile(variant, spec);
  Program::Impl &p = *base->impl;
  const gpu::Plan &plan = p.gpu->plan();
  if (plan.args.size() != 3)
    throw Error("only variants taking q, k, v can be tuned (this one takes " +
                std::to_string(plan.args.size()) + " inputs)");
  gpu::Driver &d = gpu::Driver::get();
  d.makeCurrent();
  gpu::Elem elem = plan.dtype == "bf16" ? gpu::Elem::BF16 : gpu::Elem::FP16;
  std::vector<TuneResult> results;
  auto report = [&](const TuneResult &r) {
    results.push_back(r);
    if (progress)
      progress(r);
  };
  try {
    for (const TuneShape &ts : shapes) {
      if (ts.batch <= 0 || ts.seqQ <= 0 || ts.seqKv <= 0)
        throw Error("tuning shapes need positive batch and lengths");
      const gpu::ValueInfo &qi = plan.values[plan.args[0]], &ki = plan.values[plan.args[1]];
      std::vector<int64_t> qs{ts.batch, qi.heads, ts.seqQ, qi.dim},
          ks{ts.batch, ki.heads, ts.seqKv, ki.dim};
      // Random (never zero) inputs: zeros would time an unrepresentative path.
      std::vector<std::unique_ptr<DeviceBuffer>> mem;
      std::vector<gpu::DeviceTensor> args, outs;
      uint32_t seed = 12345;
      for (const auto &shape : {qs, ks, ks}) {
        size_t n = size_t(shape[0] * shape[1] * shape[2] * shape[3]);
        std::vector<uint16_t> bits(n);
        for (uint16_t &x : bits) {
          seed = seed * 1664525u + 1013904223u;
          float f = float(int32_t(seed >> 8) % 2001 - 1000) / 500.0f; // [-2, 2]
          x = elem == gpu::Elem::BF16 ? io::floatToBf16Bits(f) : io::floatToHalfBits(f);
        }
        mem.push_back(std::make_unique<DeviceBuffer>(n * 2, "allocating tuning inputs"));
        d.check(d.cuMemcpyHtoDAsync_(mem.back()->ptr, bits.data(), n * 2, nullptr),
                "uploading tuning inputs");
        d.check(d.cuStreamSynchronize_(nullptr), "uploading tuning inputs");
        args.push_back({mem.back()->ptr, elem, shape, contiguousStrides(shape)});
      }
      for (size_t r = 0; r < plan.results.size(); ++r)
        outs.push_back(gpu::allocateResult(plan, r, ts.batch, ts.seqQ, elem, mem));
      tune::Shape shape{ts.batch * qi.heads, ts.seqQ, ts.seqKv};
      for (const gpu::Launch &l : plan.launches) {
        std::vector<tune::Config> space = tune::candidates(l.deviceTemplate);
        if (space.empty())
          continue;
        std::optional<std::pair<tune::Config, double>> best;
        for (const tune::Config &c : space) {
          TuneResult r{l.kernel, tune::bucket(shape), tune::describe(c)};
          r.rejected = tune::rejectReason(l, c);
          if (r.rejected.empty()) {
            std::shared_ptr<gpu::CompiledProgram> prog = impl->build(*p.lowered, l.kernel, c);
            r.ms = medianMs([&] { prog->run(args, outs, nullptr); }, nullptr, 3, 15);
            if (!best || r.ms < best->second)
              best = {c, r.ms};
          }
          report(r);
        }
        if (best) {
          impl->tuning->record({impl->gpuName, impl->arch, impl->toolchain, tune::signature(l),
                                tune::bucket(shape), best->first, best->second});
          TuneResult win{
              l.kernel, tune::bucket(shape), tune::describe(best->first), best->second, true, ""};
          report(win);
        }
      }
    }
    impl->tuning->save();
  } catch (const Error &) {
    throw;
  } catch (const std::exception &e) {
    throw Error(e.what());
  }
  // Later compiles must see the new winners.
  std::lock_guard<std::mutex> lock(impl->mutex);
  impl->programs.clear();
  return results;
}

} // namespace sattn
