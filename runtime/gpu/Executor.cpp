//===- Executor.cpp - compile a Plan's kernels and launch them ------------===//
//
// CompiledProgram: NVRTC (through the disk cache) and module loading, then
// runs through detail::Run (Run.h, LaunchOmniSparse.cpp), which fills each
// launch's parameter block. Workspace buffers come from the stream-ordered
// allocator, so they are freed in order after the kernels that use them.
//
//===----------------------------------------------------------------------===//
#include "runtime/gpu/Executor.h"

#include "codegen/Nvrtc.h"
#include "runtime/gpu/Driver.h"
#include "runtime/gpu/Run.h"

#include <chrono>

namespace sattn::gpu {

using detail::Run;

namespace {
double msSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}
} // namespace

CompiledProgram::CompiledProgram(Plan plan, const std::string &cuda, const cache::DiskCache &cache)
    : p(std::move(plan)) {
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
  codegen::Nvrtc &nvrtc = codegen::Nvrtc::get();
  std::string key = "sattn " SATTN_VERSION "\nnvrtc " + nvrtc.cacheTag() + "\narch " + arch.name +
                    (arch.ptxForDriver ? " ptx" : "") + "\n" + cuda;
  std::string cubin = cache.getOrCreate(
      key,
      [&] {
        auto t = std::chrono::steady_clock::now();
        std::string bin =
            nvrtc
                .compile(cuda, p.name, arch,
                         arch.ptxForDriver ? codegen::Emit::Ptx : codegen::Emit::Cubin)
                .binary;
        info.compileMs = msSince(t);
        return bin;
      },
      &info.disk);
  // cuModuleLoadData takes a cubin or NUL-terminated PTX.
  drv.check(drv.cuModuleLoadData_(&module, cubin.c_str()), "loading the compiled kernels");
  for (const Launch &l : p.launches) {
    CUfunction f;
    drv.check(drv.cuModuleGetFunction_(&f, module, l.kernel.c_str()),
              ("finding kernel " + l.kernel).c_str());
    functions[l.kernel] = f;
    // The compaction kernel the emitter writes beside each kv_slim_select
    // (codegen/Emitter.cpp kCompanions), for slim() and appendSlim().
    if (l.deviceTemplate == "kv_slim_select") {
      std::string name = l.kernel + "_compact";
      drv.check(drv.cuModuleGetFunction_(&f, module, name.c_str()),
                ("finding kernel " + name).c_str());
      functions[name] = f;
    }
  }
  info.loadMs = msSince(start);
}

CompiledProgram::~CompiledProgram() {
  if (module)
    Driver::get().cuModuleUnload_(module);
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
