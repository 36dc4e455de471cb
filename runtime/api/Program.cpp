//===- Program.cpp - run a compiled variant on caller-owned tensors -------===//
//
// Checks every view against the variant before touching memory (count,
// device, dtype, rank; the GPU executor also the unit last stride), then runs on the GPU
// executor on the caller's stream, or on the float64 reference for a CPU
// program (host views of bf16/fp16/f32 are converted on the way in and out).
//
//===----------------------------------------------------------------------===//
#include "runtime/api/ProgramImpl.h"
#include "runtime/api/Views.h"

#include "runtime/executor/CpuExecutor.h"
#include "runtime/tune/Tuning.h"

namespace sattn {

using namespace api;

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

/// One view per variant argument, each usable on the program's device.
void checkInputs(const Program::Impl &impl, const std::vector<TensorView> &inputs) {
  size_t nIn = mlir::func::FuncOp(impl.func).getNumArguments();
  if (inputs.size() != nIn)
    throw Error("the variant takes " + std::to_string(nIn) + " inputs, " +
                std::to_string(inputs.size()) + " were given");
  for (size_t i = 0; i < inputs.size(); ++i)
    checkView(inputs[i], impl.device, "input '" + impl.inputNames[i] + "'");
}
} // namespace

void Program::run(const std::vector<TensorView> &inputs, const std::vector<TensorView> &outputs,
                  void *stream) const {
  checkInputs(*impl, inputs);
  size_t nOut = impl->func.getNumResults();
  if (outputs.size() != nOut)
    throw Error("the variant returns " + std::to_string(nOut) + " tensors, " +
                std::to_string(outputs.size()) + " output views were given");
  for (size_t i = 0; i < outputs.size(); ++i)
    checkView(outputs[i], impl->device, "output " + std::to_string(i));

  try {
    if (impl->device == Device::Gpu) {
      std::vector<gpu::DeviceTensor> args, results;
      for (const TensorView &t : inputs)
        args.push_back(deviceTensor(t));
      for (const TensorView &t : outputs)
        results.push_back(deviceTensor(t));
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
    for (size_t i = 0; i < inputs.size(); ++i)
      args.push_back(hostInput(*impl, i, inputs[i]));
    checkHostOutputs(*impl, outputs);
    CpuRunResult r = runOnCpu(impl->func, args);
    if (tSelection) {
      const SelectionInfo &si = r.selection;
      gpu::SelectionSets &out = *tSelection;
      out = gpu::SelectionSets{};
      out.prefill = !si.decode && si.q && si.k;
      if (out.prefill)
        out.dims = ref::Dims{si.q->dim(0), si.q->dim(1), si.k->dim(1), si.q->dim(2), si.k->dim(2)};
      out.params = si.params, out.blocks = si.blocks, out.queries = si.queries;
      out.tokens = si.tokens, out.vslash = si.vslash;
    }
    for (size_t i = 0; i < outputs.size(); ++i)
      writeHostOutput(i, outputs[i], *r.results[i]);
  } catch (const Error &) {
    throw;
  } catch (const std::exception &e) {
    throw Error(e.what());
  }
}

void Program::backward(const std::vector<TensorView> &inputs, const TensorView &dout,
                       const std::vector<TensorView> &grads, const BackwardOptions &options,
                       void *stream) const {
  if ((options.out == nullptr) != (options.lse == nullptr))
    throw Error("backward: give both the forward's out and lse, or neither");
  // The differentiated op: the attention behind the first result, reading
  // three of the variant's own inputs (the gradient flows to those only).
  auto ret = mlir::cast<mlir::func::ReturnOp>(impl->func.getBody().front().getTerminator());
  AttentionOp att =
      ret.getNumOperands() ? ret.getOperand(0).getDefiningOp<AttentionOp>() : AttentionOp();
  if (!att)
    throw Error("backward needs a variant whose first result is the output of a sattn.attention");
  auto argIndex = [](mlir::Value v) {
    auto ba = mlir::dyn_cast<mlir::BlockArgument>(v);
    return ba ? int(ba.getArgNumber()) : -1;
  };
  const int qi = argIndex(att.getQ()), ki = argIndex(att.getK()), vi = argIndex(att.getV());
  if (qi < 0 || ki < 0 || vi < 0)
    throw Error("backward: the attention reads q, k or v computed inside the variant; only an "
                "attention over the variant's own inputs is differentiable");
  checkInputs(*impl, inputs);
  if (grads.size() != 3)
    throw Error("backward writes dq, dk and dv: give 3 gradient views, " +
                std::to_string(grads.size()) + " were given");
  checkView(dout, impl->device, "dout");
  const char *gradName[3] = {"dq", "dk", "dv"};
  const int of[3] = {qi, ki, vi};
  for (int g = 0; g < 3; ++g) {
    checkView(grads[size_t(g)], impl->device, gradName[g]);
    if (grads[size_t(g)].shape != inputs[size_t(of[g])].shape ||
        grads[size_t(g)].dtype == DType::I32)
      throw Error(std::string(gradName[g]) + " must be a floating-point view shaped like input '" +
                  impl->inputNames[size_t(of[g])] + "'");
  }
  if (dout.shape != inputs[size_t(qi)].shape || dout.dtype == DType::I32)
    throw Error("dout must be a floating-point view shaped like the attention output (input '" +
                impl->inputNames[size_t(qi)] + "')");
  if (options.out) {
    checkView(*options.out, impl->device, "out");
    checkView(*options.lse, impl->device, "lse");
    if (options.out->shape != dout.shape)
      throw Error("out must be the forward's output, shaped like dout");
  }
  if (impl->device == Device::Gpu) {
    try {
      std::vector<gpu::DeviceTensor> args, g;
      for (const TensorView &t : inputs)
        args.push_back(deviceTensor(t));
      for (const TensorView &t : grads)
        g.push_back(deviceTensor(t));
      gpu::BackwardRequest req;
      req.q = qi, req.k = ki, req.v = vi;
      req.deterministic = options.deterministic;
      if (options.out)
        req.out = deviceTensor(*options.out), req.lse = deviceTensor(*options.lse);
      impl->gpu->backward(args, deviceTensor(dout), g, req, static_cast<CUstream>(stream));
    } catch (const Error &) {
      throw;
    } catch (const std::exception &e) {
      throw Error(e.what());
    }
    return;
  }
  try {
    std::vector<std::shared_ptr<ref::Tensor>> args;
    for (size_t i = 0; i < inputs.size(); ++i)
      args.push_back(hostInput(*impl, i, inputs[i]));
    // Rerun the forward for the sets the attention used.
    const SelectionInfo si = runOnCpu(impl->func, args).selection;
    if (si.q.get() != args[size_t(qi)].get() || si.k.get() != args[size_t(ki)].get() ||
        si.v.get() != args[size_t(vi)].get())
      throw Error("backward: the variant's last attention is not the one behind its first result");
    ref::AttentionGrads r = ref::attentionBackward(*si.q, *si.k, *si.v, hostCopy(dout),
                                                   si.blocks.get(), si.queries.get(), si.params);
    writeHost(grads[0], r.dq);
    writeHost(grads[1], r.dk);
    writeHost(grads[2], r.dv);
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
  if (sets.prefill) {
    // Without a block set the token mask alone decides: its 128 x 128
    // blocks (semantics §8), the same blocks the density counts.
    const ref::Dims &d = sets.dims;
    // A vertical-slash set (§12b): the bq x bq blocks it touches.
    const ref::BlockSet &b =
        sets.blocks   ? *sets.blocks
        : sets.vslash ? ref::vslashBlocks(*sets.vslash)
                      : ref::staticBlocks(d.B, d.Hq, d.Sq, d.Skv, 128, 128, sets.params.mask);
    SelectionReport::BlockMask m{b.B, b.H, b.nQB, b.nKB, b.bq, b.bk, {}};
    m.mask.assign(size_t(b.B * b.H * b.nQB * b.nKB), 0);
    for (size_t row = 0; row < b.lists.size(); ++row)
      for (int32_t J : b.lists[row])
        m.mask[row * size_t(b.nKB) + size_t(J)] = 1;
    r.blocks = std::move(m);
  }
  return r;
}

} // namespace sattn
