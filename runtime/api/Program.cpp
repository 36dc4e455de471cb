//===- Program.cpp - run a compiled variant on caller-owned tensors -------===//
//
// Checks every view against the variant before touching memory (count,
// device, dtype, rank; the GPU executor also the unit last stride), then runs on the GPU
// executor on the caller's stream, or on the float64 reference for a CPU
// program (host views of bf16/fp16/f32 are converted on the way in and out).
//
//===----------------------------------------------------------------------===//
#include "runtime/api/ProgramImpl.h"

#include "runtime/executor/CpuExecutor.h"
#include "runtime/gpu/DeviceBuffer.h"
#include "runtime/io/Dtype.h"
#include "runtime/tune/Tuning.h"

namespace sattn {

namespace {

std::vector<int64_t> stridesOf(const TensorView &t) {
  if (t.strides.empty())
    return gpu::contiguousStrides(t.shape);
  if (t.strides.size() != t.shape.size())
    throw Error("a tensor view has " + std::to_string(t.shape.size()) + " dimensions but " +
                std::to_string(t.strides.size()) + " strides");
  return t.strides;
}

gpu::Elem elemOf(DType t) {
  switch (t) {
  case DType::BF16:
    return gpu::Elem::BF16;
  case DType::FP16:
    return gpu::Elem::FP16;
  case DType::F32:
    return gpu::Elem::F32;
  case DType::I32:
    return gpu::Elem::I32;
  }
  return gpu::Elem::F32;
}

/// Flat element offset of index `idx` (row-major over `shape`) under `strides`.
int64_t stridedOffset(int64_t idx, const std::vector<int64_t> &shape,
                      const std::vector<int64_t> &strides) {
  int64_t off = 0;
  for (int d = int(shape.size()) - 1; d >= 0; --d) {
    off += (idx % shape[size_t(d)]) * strides[size_t(d)];
    idx /= shape[size_t(d)];
  }
  return off;
}

double readElem(const TensorView &t, int64_t off) {
  switch (t.dtype) {
  case DType::BF16:
    return io::bf16BitsToFloat(static_cast<const uint16_t *>(t.data)[off]);
  case DType::FP16:
    return io::halfBitsToFloat(static_cast<const uint16_t *>(t.data)[off]);
  case DType::F32:
    return static_cast<const float *>(t.data)[off];
  case DType::I32:
    return static_cast<const int32_t *>(t.data)[off];
  }
  return 0;
}

void writeElem(const TensorView &t, int64_t off, double x) {
  switch (t.dtype) {
  case DType::BF16:
    static_cast<uint16_t *>(t.data)[off] = io::floatToBf16Bits(float(x));
    break;
  case DType::FP16:
    static_cast<uint16_t *>(t.data)[off] = io::floatToHalfBits(float(x));
    break;
  case DType::F32:
    static_cast<float *>(t.data)[off] = float(x);
    break;
  case DType::I32:
    static_cast<int32_t *>(t.data)[off] = int32_t(x);
    break;
  }
}

void checkView(const TensorView &t, Device want, const std::string &what) {
  if (t.device != want)
    throw Error(what + " lives on the " + (t.device == Device::Gpu ? "GPU" : "CPU") +
                " but the program runs on the " + (want == Device::Gpu ? "GPU" : "CPU"));
  if (!t.data)
    throw Error(what + " has a null data pointer");
  for (int64_t s : t.shape)
    if (s < 0)
      throw Error(what + " has a negative dimension");
}

} // namespace

Program::Program(std::unique_ptr<Impl> i) : impl(std::move(i)) {}
Program::~Program() = default;
Device Program::device() const { return impl->device; }
const std::string &Program::key() const { return impl->key; }
const std::string &Program::loweredIR() const { return impl->loweredText; }
const std::string &Program::cudaSource() const { return impl->cuda; }
const CompileStats &Program::stats() const { return impl->stats; }
const std::vector<std::string> &Program::inputNames() const { return impl->inputNames; }

namespace {
/// Set by runTimed for the run() it makes on this thread (a Program may be
/// shared between threads, so this is not program state).
thread_local std::vector<std::pair<std::string, double>> *tTimed = nullptr;
/// Set by runSelection likewise: the run fills it with the sets it used.
thread_local gpu::SelectionSets *tSelection = nullptr;

/// Clears a thread-local request when the run it was made for ends.
template <class T> struct ResetOnExit {
  T *&slot;
  ~ResetOnExit() { slot = nullptr; }
};
} // namespace

void Program::run(const std::vector<TensorView> &inputs, const std::vector<TensorView> &outputs,
                  void *stream) const {
  size_t nIn = impl->func.getNumArguments(), nOut = impl->func.getNumResults();
  if (inputs.size() != nIn)
    throw Error("the variant takes " + std::to_string(nIn) + " inputs, " +
                std::to_string(inputs.size()) + " were given");
  if (outputs.size() != nOut)
    throw Error("the variant returns " + std::to_string(nOut) + " tensors, " +
                std::to_string(outputs.size()) + " output views were given");
  for (size_t i = 0; i < inputs.size(); ++i)
    checkView(inputs[i], impl->device, "input '" + impl->inputNames[i] + "'");
  for (size_t i = 0; i < outputs.size(); ++i)
    checkView(outputs[i], impl->device, "output " + std::to_string(i));

  try {
    if (impl->device == Device::Gpu) {
      std::vector<gpu::DeviceTensor> args, results;
      for (const TensorView &t : inputs)
        args.push_back(
            {reinterpret_cast<CUdeviceptr>(t.data), elemOf(t.dtype), t.shape, stridesOf(t)});
      for (const TensorView &t : outputs)
        results.push_back(
            {reinterpret_cast<CUdeviceptr>(t.data), elemOf(t.dtype), t.shape, stridesOf(t)});
      const gpu::CompiledProgram *program = impl->gpu.get();
      if (!impl->tuned.empty() && args.size() >= 2 && args[0].shape.size() == 4 &&
          args[1].shape.size() == 4) {
        tune::Shape shape{args[0].shape[0] * args[0].shape[1], args[0].shape[2], args[1].shape[2]};
        if (auto it = impl->tuned.find(tune::bucket(shape)); it != impl->tuned.end())
          program = it->second.get();
      }
      gpu::RunOptions ro;
      ro.timePhases = tTimed != nullptr;
      ro.selection = tSelection;
      program->run(args, results, static_cast<CUstream>(stream), &ro);
      if (tTimed)
        *tTimed = program->phases();
      return;
    }
    // CPU: the float64 reference on converted copies. Check everything
    // (dtype kind, rank, static dims, output shapes) before computing.
    std::vector<std::shared_ptr<ref::Tensor>> args;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const TensorView &t = inputs[i];
      mlir::Type argType = impl->func.getArgument(unsigned(i)).getType();
      if (auto bt = mlir::dyn_cast<BlocksType>(argType)) {
        // A user block list (semantics §14): int32 [B, H, nQB, cap]; the
        // executor checks it against q and k when the attention uses it.
        if (t.dtype != DType::I32 || t.shape.size() != 4 || t.shape[1] != bt.getHeads())
          throw Error("block-set input '" + impl->inputNames[i] + "' must be an int32 tensor [B, " +
                      std::to_string(bt.getHeads()) +
                      ", nQB, cap] of KV block indices (-1 for unused slots)");
      } else if (!mlir::isa<mlir::RankedTensorType>(argType)) {
        throw Error("input '" + impl->inputNames[i] + "' has a type the CPU path cannot bind");
      }
      auto type = mlir::dyn_cast<mlir::RankedTensorType>(argType);
      if (!type) {
        auto host = std::make_shared<ref::Tensor>(t.shape);
        std::vector<int64_t> strides = stridesOf(t);
        for (int64_t e = 0; e < host->numel(); ++e)
          host->data[size_t(e)] = readElem(t, stridedOffset(e, t.shape, strides));
        args.push_back(host);
        continue;
      }
      bool floatArg = mlir::isa<mlir::FloatType>(type.getElementType());
      if (floatArg == (t.dtype == DType::I32))
        throw Error("input '" + impl->inputNames[i] + "' must hold " +
                    (floatArg ? "floating-point (bf16, fp16 or f32)" : "int32") + " values");
      if (int64_t(t.shape.size()) != type.getRank())
        throw Error("input '" + impl->inputNames[i] + "' has rank " +
                    std::to_string(t.shape.size()) + ", the variant expects " +
                    std::to_string(type.getRank()));
      for (int64_t d = 0; d < type.getRank(); ++d)
        if (!type.isDynamicDim(d) && type.getDimSize(d) != t.shape[size_t(d)])
          throw Error("input '" + impl->inputNames[i] + "' has " +
                      std::to_string(t.shape[size_t(d)]) + " in dimension " + std::to_string(d) +
                      ", the variant expects " + std::to_string(type.getDimSize(d)));
      auto host = std::make_shared<ref::Tensor>(t.shape);
      std::vector<int64_t> strides = stridesOf(t);
      for (int64_t e = 0; e < host->numel(); ++e)
        host->data[size_t(e)] = readElem(t, stridedOffset(e, t.shape, strides));
      args.push_back(host);
    }
    for (size_t i = 0; i < outputs.size(); ++i) {
      auto type = mlir::cast<mlir::RankedTensorType>(impl->func.getResultTypes()[i]);
      const TensorView &t = outputs[i];
      bool shapeOk = int64_t(t.shape.size()) == type.getRank();
      for (int64_t d = 0; shapeOk && d < type.getRank(); ++d)
        shapeOk = type.isDynamicDim(d) || type.getDimSize(d) == t.shape[size_t(d)];
      if (!shapeOk || t.dtype == DType::I32)
        throw Error("output " + std::to_string(i) + " does not match the variant's result type");
    }
    CpuRunResult r = runOnCpu(impl->func, args);
    if (tSelection) {
      const SelectionInfo &si = r.selection;
      gpu::SelectionSets &out = *tSelection;
      out = gpu::SelectionSets{};
      out.prefill = !si.decode && si.q && si.k;
      if (out.prefill)
        out.dims = ref::Dims{si.q->dim(0), si.q->dim(1), si.k->dim(1), si.q->dim(2), si.k->dim(2)};
      out.params = si.params, out.blocks = si.blocks, out.queries = si.queries;
      out.tokens = si.tokens;
    }
    for (size_t i = 0; i < outputs.size(); ++i) {
      const TensorView &t = outputs[i];
      const ref::Tensor &src = *r.results[i];
      if (t.shape != src.shape)
        throw Error("output " + std::to_string(i) + " has shape of rank " +
                    std::to_string(t.shape.size()) + " that differs from the result's");
      std::vector<int64_t> strides = stridesOf(t);
      for (int64_t e = 0; e < src.numel(); ++e)
        writeElem(t, stridedOffset(e, t.shape, strides), src.data[size_t(e)]);
    }
  } catch (const Error &) {
    throw;
  } catch (const std::exception &e) {
    throw Error(e.what());
  }
}

std::vector<std::pair<std::string, double>>
Program::runTimed(const std::vector<TensorView> &inputs, const std::vector<TensorView> &outputs,
                  void *stream) const {
  if (impl->device != Device::Gpu)
    throw Error("runTimed needs a GPU program (per-launch times come from CUDA events)");
  std::vector<std::pair<std::string, double>> phases;
  tTimed = &phases; // this thread's next run() records its launches
  ResetOnExit<std::vector<std::pair<std::string, double>>> reset{tTimed};
  run(inputs, outputs, stream);
  return phases;
}

SelectionReport Program::runSelection(const std::vector<TensorView> &inputs,
                                      const std::vector<TensorView> &outputs, void *stream) const {
  gpu::SelectionSets sets;
  tSelection = &sets; // this thread's next run() reports its sets
  {
    ResetOnExit<gpu::SelectionSets> reset{tSelection};
    run(inputs, outputs, stream);
  }
  SelectionReport r;
  r.density = sets.density();
  if (sets.queries)
    r.activeRows = ref::activeFraction(*sets.queries);
  if (sets.tokens)
    r.kvKept = ref::keptFraction(*sets.tokens);
  return r;
}

} // namespace sattn
