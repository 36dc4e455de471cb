//===- GpuRun.cpp - sattn-run's GPU device: upload, run, download ---------===//
//
// The command-line path onto the GPU: host float64 inputs are converted to
// the variant's 16-bit type, uploaded, run through the same executor the
// C++ API uses, and O/LSE come back as float64 for writing and checking.
//
//===----------------------------------------------------------------------===//
#include "tools/GpuRun.h"

#include "codegen/Emitter.h"
#include "codegen/Nvrtc.h"
#include "passes/Passes.h"
#include "runtime/gpu/DeviceBuffer.h"
#include "runtime/gpu/Driver.h"
#include "runtime/gpu/PlanFromIR.h"
#include "runtime/io/Dtype.h"
#include "runtime/tune/Tuning.h"
#include "tools/ToolSupport.h"

#include "mlir/IR/IRMapping.h"
#include "mlir/Pass/PassManager.h"

#include <cstdlib>

namespace sattn::tools {

namespace {

using gpu::contiguousStrides;
using gpu::DeviceBuffer;

/// SATTN_ROW_PAD (elements, 0..64; default 0), or a ToolError.
int64_t rowPad() {
  const char *env = std::getenv("SATTN_ROW_PAD");
  if (!env || !*env)
    return 0;
  char *end = nullptr;
  const long v = std::strtol(env, &end, 10);
  if (*end || v < 0 || v > 64)
    throw ToolError(std::string("SATTN_ROW_PAD must be an integer 0..64, got '") + env + "'");
  return v;
}

} // namespace

GpuRunResult runOnGpu(mlir::ModuleOp semantic, const std::string &dtype,
                      const std::vector<std::shared_ptr<ref::Tensor>> &args, bool dumpSelection,
                      const std::string &arch, bool fuseEstimation) {
  gpu::Driver &drv = gpu::Driver::get();
  drv.makeCurrent();
  mlir::OwningOpRef<mlir::ModuleOp> module(semantic.clone());
  mlir::PassManager pm(module->getContext());
  LowerToKernelsOptions lo;
  lo.dtype = dtype;
  lo.arch = arch.empty() ? codegen::Arch::forCapability(drv.major(), drv.minor()).name : arch;
  lo.fuseEstimation = fuseEstimation;
  buildLowerToKernelsPipeline(pm, lo);
  if (mlir::failed(pm.run(*module)))
    throw ToolError("lowering the variant failed (see the diagnostics above)");
  mlir::func::FuncOp func;
  for (auto f : module->getOps<mlir::func::FuncOp>())
    if (f->hasAttr("sattn.spec"))
      func = f;
  try { // SATTN_TUNE_CONFIG: a forced autotuner configuration
    tune::applyForced(func, tune::forcedConfig());
  } catch (const std::invalid_argument &e) {
    throw ToolError(e.what());
  }
  mlir::FailureOr<std::vector<std::string>> cuda = codegen::emitCudaParts(func);
  if (mlir::failed(cuda))
    throw ToolError("code generation failed (see the diagnostics above)");
  gpu::Plan plan = gpu::planFromIR(func);
  cache::DiskCache diskCache;
  gpu::CompiledProgram program(plan, *cuda, diskCache);

  gpu::Elem elem = dtype == "bf16" ? gpu::Elem::BF16 : gpu::Elem::FP16;
  std::vector<std::unique_ptr<DeviceBuffer>> buffers;
  std::vector<gpu::DeviceTensor> devArgs;
  CUstream stream;
  drv.check(drv.cuStreamCreate_(&stream, CU_STREAM_NON_BLOCKING), "creating a stream");
  for (size_t a = 0; a < args.size(); ++a) {
    const auto &t = args[a];
    gpu::ValueKind kind =
        a < plan.args.size() ? plan.values[plan.args[a]].kind : gpu::ValueKind::Tensor4;
    if (kind == gpu::ValueKind::Blocks || kind == gpu::ValueKind::Ints) {
      // Block lists (checked on the host by bindInputs), page tables,
      // lengths, segments: integers of the declared width, as given.
      bool wide = kind == gpu::ValueKind::Ints && plan.values[plan.args[a]].elem == gpu::Elem::I64;
      std::vector<int64_t> v64;
      std::vector<int32_t> v32;
      if (wide)
        v64.assign(t->data.begin(), t->data.end());
      else
        v32.assign(t->data.begin(), t->data.end());
      size_t bytes = size_t(t->numel()) * (wide ? 8 : 4);
      buffers.push_back(std::make_unique<DeviceBuffer>(bytes));
      drv.check(drv.cuMemcpyHtoDAsync_(buffers.back()->ptr,
                                       wide ? static_cast<const void *>(v64.data()) : v32.data(),
                                       bytes, stream),
                "uploading an integer input");
      drv.check(drv.cuStreamSynchronize_(stream), "uploading an integer input");
      devArgs.push_back({buffers.back()->ptr, wide ? gpu::Elem::I64 : gpu::Elem::I32, t->shape,
                         contiguousStrides(t->shape)});
      continue;
    }
    // SATTN_ROW_PAD=n: rank-4 inputs in rows of D + n elements (strides
    // that are no multiple of 16 bytes for odd n: what TMA cannot load), so
    // tests and sanitizer runs reach the kernels' strided paths.
    const int64_t pad = t->shape.size() == 4 ? rowPad() : 0;
    const int64_t rowLen = t->shape.empty() ? 0 : t->shape.back(), stride = rowLen + pad;
    const size_t rows = rowLen ? size_t(t->numel() / rowLen) : 0;
    std::vector<uint16_t> bits(rows * size_t(stride), 0);
    for (size_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < rowLen; ++c) {
        const float x = float(t->data[r * size_t(rowLen) + size_t(c)]);
        bits[r * size_t(stride) + size_t(c)] =
            elem == gpu::Elem::BF16 ? io::floatToBf16Bits(x) : io::floatToHalfBits(x);
      }
    buffers.push_back(std::make_unique<DeviceBuffer>(bits.size() * 2));
    drv.check(drv.cuMemcpyHtoDAsync_(buffers.back()->ptr, bits.data(), bits.size() * 2, stream),
              "uploading an input");
    drv.check(drv.cuStreamSynchronize_(stream), "uploading an input");
    std::vector<int64_t> strides = contiguousStrides(t->shape);
    if (pad) {
      const auto &sh = t->shape;
      strides = {sh[1] * sh[2] * stride, sh[2] * stride, stride, 1};
    }
    devArgs.push_back({buffers.back()->ptr, elem, t->shape, strides});
  }
  // Results: O like the q of the launch writing it, LSE [B, H, Sq] f32.
  // Poisoned so unwritten rows show.
  std::vector<gpu::DeviceTensor> devResults;
  std::vector<std::vector<int64_t>> shapes;
  for (size_t r = 0; r < plan.results.size(); ++r) {
    const ref::Tensor &q = *args.at(size_t(plan.resultArg[r]));
    devResults.push_back(gpu::allocateResult(plan, r, q.dim(0), q.dim(2), elem, buffers));
    const gpu::DeviceTensor &t = devResults.back();
    size_t bytes = size_t(t.strides[0] * t.shape[0]) * (t.elem == gpu::Elem::F32 ? 4 : 2);
    drv.check(drv.cuMemsetD32Async_(t.ptr, 0x7fc07fc0u, (bytes + 3) / 4, stream),
              "poisoning an output");
    shapes.push_back(t.shape);
  }
  std::map<std::string, gpu::HostValue> dumps;
  gpu::RunOptions ro;
  ro.timePhases = true;
  ro.dump = dumpSelection ? &dumps : nullptr;
  GpuRunResult out;
  for (const gpu::Launch &l : plan.launches)
    out.fusedEstimation |= llvm::StringRef(l.deviceTemplate).starts_with("scores_");
  ro.selection = &out.selection;
  program.run(devArgs, devResults, stream, &ro);

  out.device = drv.name();
  out.compile = program.compileInfo();
  out.phaseMs = program.phases();
  for (size_t r = 0; r < devResults.size(); ++r) {
    auto t = std::make_shared<ref::Tensor>(shapes[r]);
    size_t n = size_t(t->numel());
    if (devResults[r].elem == gpu::Elem::F32) {
      std::vector<float> host(n);
      drv.check(drv.cuMemcpyDtoHAsync_(host.data(), devResults[r].ptr, n * 4, stream),
                "copying back");
      drv.check(drv.cuStreamSynchronize_(stream), "copying back");
      t->data.assign(host.begin(), host.end());
    } else {
      std::vector<uint16_t> host(n);
      drv.check(drv.cuMemcpyDtoHAsync_(host.data(), devResults[r].ptr, n * 2, stream),
                "copying back");
      drv.check(drv.cuStreamSynchronize_(stream), "copying back");
      for (size_t i = 0; i < n; ++i)
        t->data[i] =
            elem == gpu::Elem::BF16 ? io::bf16BitsToFloat(host[i]) : io::halfBitsToFloat(host[i]);
    }
    out.results.push_back(t);
  }
  out.dumps = std::move(dumps);
  drv.cuStreamDestroy_(stream);
  return out;
}

} // namespace sattn::tools
