//===- Executor.cpp - compile a Plan's kernels and launch them ------------===//
//
// CompiledProgram: NVRTC (through the disk cache) and module loading, then
// runs through detail::Run (Run.h, LaunchOmniSparse.cpp), which fills each
// launch's parameter block. Workspace buffers come from the stream-ordered
// allocator, so they are freed in order after the kernels that use them.
//
//===----------------------------------------------------------------------===//
#include "runtime/gpu/Executor.h"

#include "codegen/Emitter.h"
#include "codegen/Nvrtc.h"
#include "runtime/gpu/Driver.h"
#include "runtime/gpu/Run.h"

#include <chrono>
#include <cstdio>
#include <exception>
#include <sstream>
#include <thread>

namespace sattn::gpu {

using detail::compileCached;
using detail::Run;

namespace {
double msSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}
} // namespace

std::string detail::compileCached(const std::string &source, const std::string &name,
                                  const codegen::Arch &arch, const cache::DiskCache &cache,
                                  cache::Outcome *outcome) {
  codegen::Nvrtc &nvrtc = codegen::Nvrtc::get();
  const std::string tag = "sattn " SATTN_VERSION "\nnvrtc " + nvrtc.cacheTag() + "\narch " +
                          arch.name + (arch.ptxForDriver ? " ptx" : "") + "\n";
  return cache.getOrCreate(
      tag + source,
      [&] {
        return nvrtc
            .compile(source, name, arch,
                     arch.ptxForDriver ? codegen::Emit::Ptx : codegen::Emit::Cubin)
            .binary;
      },
      outcome);
}

std::string detail::cfgStruct(const Launch &l, const std::string &name) {
  std::ostringstream os;
  os << "struct " << name << " {\n";
  for (const auto &[key, value] : l.consts) {
    if (const bool *b = std::get_if<bool>(&value)) {
      os << "  static constexpr bool " << key << " = " << (*b ? "true" : "false") << ";\n";
    } else if (const int64_t *i = std::get_if<int64_t>(&value)) {
      os << "  static constexpr int " << key << " = " << *i << ";\n";
    } else if (const double *d = std::get_if<double>(&value)) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.9ef", *d);
      os << "  static constexpr float " << key << " = " << buf << ";\n";
    } else if (const char *type = codegen::enumTypeOf(key)) {
      os << "  static constexpr sattn::dev::" << type << " " << key << " = sattn::dev::" << type
         << "::" << std::get<std::string>(value) << ";\n";
    }
  }
  os << "};\n";
  return os.str();
}

std::string copyLoadSource(const Launch &l) {
  const std::string name = l.kernel + "_copy", cfg = name + "_cfg";
  std::ostringstream os;
  os << "// sattn: " << l.kernel << " with the producer's copy loads (TMA = 0)\n"
     << "#include \"attention_wgmma.cuh\"\n"
     << detail::cfgStruct(l, name + "_base") << "struct " << cfg << " : " << name
     << "_base {\n  static constexpr int TMA = 0;\n};\n"
     << "extern \"C\" __global__ void __launch_bounds__(sattn::dev::AttnWgmmaLaunch<" << cfg
     << ">::threads, sattn::dev::AttnWgmmaLaunch<" << cfg << ">::min_blocks)\n"
     << name << "(const __grid_constant__ sattn::dev::AttnParams p) {\n"
     << "  sattn::dev::attn_fwd_wgmma<" << cfg << ">(p);\n}\n";
  return os.str();
}

CUfunction CompiledProgram::copyLoadKernel(const Launch &l) const {
  std::lock_guard<std::mutex> lock(copyMutex);
  auto it = copyKernels.find(l.kernel);
  if (it != copyKernels.end())
    return it->second;
  Driver &drv = Driver::get();
  const codegen::Arch arch = codegen::Arch::forCapability(drv.major(), drv.minor());
  const std::string name = l.kernel + "_copy";
  const std::string binary =
      compileCached(copyLoadSource(l), p.name + "_copy", arch, diskCache, nullptr);
  CUmodule m = nullptr;
  drv.check(drv.cuModuleLoadData_(&m, binary.c_str()), "loading the copy-load attention kernel");
  copyModules.push_back(m);
  CUfunction f;
  drv.check(drv.cuModuleGetFunction_(&f, m, name.c_str()), ("finding kernel " + name).c_str());
  return copyKernels[l.kernel] = f;
}

CompiledProgram::CompiledProgram(Plan plan, const std::string &cuda, const cache::DiskCache &cache)
    : p(std::move(plan)), diskCache(cache) {
  load({cuda}, cache);
}

CompiledProgram::CompiledProgram(Plan plan, const std::vector<std::string> &parts,
                                 const cache::DiskCache &cache)
    : p(std::move(plan)), diskCache(cache) {
  if (parts.size() != p.launches.size())
    throw GpuError("internal: " + std::to_string(parts.size()) + " kernel modules for " +
                   std::to_string(p.launches.size()) + " launches");
  load(parts, cache);
}

void CompiledProgram::load(const std::vector<std::string> &parts, const cache::DiskCache &cache) {
  auto start = std::chrono::steady_clock::now();
  Driver &drv = Driver::get();
  drv.makeCurrent();
  codegen::Arch arch = codegen::Arch::forCapability(drv.major(), drv.minor());
  info.arch = arch.name;
  // A plan chosen for sm_90a holds wgmma kernels, which only Hopper runs;
  // the portable kernels of other plans run on any supported GPU.
  if (p.arch == "sm_90a" && arch.name != "sm_90a")
    throw GpuError("the variant was specialised for " + p.arch + " but this GPU (" + drv.name() +
                   ") is " + arch.name + "; lower it again with arch=" + arch.name);
  // Each part through the disk cache on its own thread: NVRTC programs are
  // independent, so a cold compile takes as long as its slowest kernel.
  std::vector<std::string> binaries(parts.size());
  std::vector<cache::Outcome> outcomes(parts.size(), cache::Outcome::Hit);
  std::vector<std::exception_ptr> errors(parts.size());
  auto work = [&](size_t i) {
    try {
      binaries[i] = compileCached(parts[i], p.name, arch, cache, &outcomes[i]);
    } catch (...) {
      errors[i] = std::current_exception();
    }
  };
  auto compileStart = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (size_t i = 1; i < parts.size(); ++i)
    threads.emplace_back(work, i);
  work(0);
  for (std::thread &t : threads)
    t.join();
  for (std::exception_ptr &e : errors)
    if (e)
      std::rethrow_exception(e);
  info.disk = cache::Outcome::Hit;
  for (cache::Outcome o : outcomes)
    if (o != cache::Outcome::Hit && info.disk != cache::Outcome::Corrupt)
      info.disk = o;
  // NVRTC wall time: what the caller waited for (0 when every part hit).
  if (info.disk != cache::Outcome::Hit)
    info.compileMs = msSince(compileStart);
  for (size_t i = 0; i < binaries.size(); ++i) {
    CUmodule m = nullptr;
    // cuModuleLoadData takes a cubin or NUL-terminated PTX.
    drv.check(drv.cuModuleLoadData_(&m, binaries[i].c_str()), "loading the compiled kernels");
    modules.push_back(m);
  }
  for (size_t li = 0; li < p.launches.size(); ++li) {
    const Launch &l = p.launches[li];
    CUmodule m = modules[parts.size() == 1 ? 0 : li];
    std::vector<std::string> names = {l.kernel};
    // The kernels the emitter writes beside it (codegen/Emitter.cpp
    // kCompanions): kv_slim's compaction for slim() and appendSlim(), the
    // phases of vertical_slash and of per-head selection.
    auto flag = [&](llvm::StringRef n) {
      auto it = l.consts.find(n.str());
      return it != l.consts.end() && std::holds_alternative<bool>(it->second) &&
             std::get<bool>(it->second);
    };
    for (std::string &c : codegen::companionKernels(l.deviceTemplate, l.kernel, flag))
      names.push_back(std::move(c));
    for (const std::string &name : names) {
      CUfunction f;
      drv.check(drv.cuModuleGetFunction_(&f, m, name.c_str()), ("finding kernel " + name).c_str());
      functions[name] = f;
    }
  }
  info.loadMs = msSince(start);
}

CompiledProgram::~CompiledProgram() {
  for (CUmodule m : modules)
    Driver::get().cuModuleUnload_(m);
  for (CUmodule m : copyModules)
    Driver::get().cuModuleUnload_(m);
  for (const BackwardModule &bm : bwdModules)
    if (bm.module)
      Driver::get().cuModuleUnload_(bm.module);
}

void CompiledProgram::run(const std::vector<DeviceTensor> &args,
                          const std::vector<DeviceTensor> &results, CUstream stream,
                          RunOptions *opts) const {
  Driver::get().makeCurrent();
  Run r(*this, functions, stream, opts);
  r.bindArgs(args);
  r.bindResults(results);
  r.execute();
  if (opts && opts->timePhases)
    lastPhases = r.phasesOut;
}

} // namespace sattn::gpu
