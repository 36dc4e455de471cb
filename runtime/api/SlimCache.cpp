//===- SlimCache.cpp - Program::slim / decode and the SlimCache object ----===//
//
// OmniSparse decode as two calls (docs/patterns/omnisparse.md §3): slim()
// runs the variant's sattn.kv_slim once and compacts the kept K/V per
// (batch, KV head) into a SlimCache; decode() runs the variant's
// sattn.decode_attention over it, once per generated token. On the GPU the
// work is runtime/gpu/SlimCache.cpp; a CPU program keeps float64 copies of
// the kept rows and decodes each head's rows with the reference, as the
// same decode over a dense cache holding just those rows (semantics §12).
//
//===----------------------------------------------------------------------===//
#include "runtime/api/ProgramImpl.h"
#include "runtime/api/Views.h"

#include "runtime/executor/CpuExecutor.h"

#include <set>

namespace sattn {

using namespace api;

struct SlimCache::Impl {
  Device device = Device::Cpu;
  std::string programKey; ///< the Program that built it (decode checks)
  /// GPU: the rows in device memory, and the module whose kv_compact
  /// kernel appends to them (kept alive as long as the cache).
  std::shared_ptr<const gpu::CompiledProgram> program;
  std::unique_ptr<gpu::SlimStorage> gpu;
  /// CPU: float64 rows of D per (batch, KV head).
  int64_t batch = 0, kvHeads = 0, dim = 0, fullLength = 0, elemBytes = 2;
  std::vector<int64_t> lengths, capacity;
  std::vector<std::vector<double>> k, v;

  const std::vector<int64_t> &lens() const { return gpu ? gpu->lengths : lengths; }
  const std::vector<int64_t> &caps() const { return gpu ? gpu->capacity : capacity; }
  size_t row(int64_t b, int64_t h) const {
    if (b < 0 || b >= batch || h < 0 || h >= kvHeads)
      throw Error("slimmed cache: (batch " + std::to_string(b) + ", KV head " + std::to_string(h) +
                  ") is outside [0, " + std::to_string(batch) + ") x [0, " +
                  std::to_string(kvHeads) + ")");
    return size_t(b * kvHeads + h);
  }
};

/// Where the kv_slim / decode pair of a variant reads its inputs.
struct SlimRoles {
  mutable KvSlimOp slim; // op handles: their accessors are not const
  mutable DecodeAttentionOp decode;
  std::vector<size_t> slimArgs, decodeArgs; ///< argument indices, ascending
};

namespace {

SlimRoles findSlimRoles(mlir::func::FuncOp f) {
  SlimRoles r;
  f.walk([&](DecodeAttentionOp d) {
    if (r.decode || !d.getTokens())
      return;
    if (auto s = d.getTokens().getDefiningOp<KvSlimOp>())
      r.decode = d, r.slim = s;
  });
  if (!r.decode)
    throw Error("the variant has no sattn.decode_attention reading the tokens of a sattn.kv_slim; "
                "slim() and decode() need one (e.g. examples/omnisparse_decode.mlir)");
  if (r.decode.getPageTable())
    throw Error("slimming needs a dense [B, Hkv, S, D] cache, but this variant's "
                "sattn.decode_attention reads a paged one; run() decodes it through the "
                "kept-token list instead");
  auto arg = [&](mlir::Value v) {
    auto ba = mlir::dyn_cast<mlir::BlockArgument>(v);
    if (!ba || ba.getOwner()->getParentOp() != f.getOperation())
      throw Error("slim() and decode() need sattn.kv_slim and sattn.decode_attention to read the "
                  "variant's inputs directly");
    return size_t(ba.getArgNumber());
  };
  std::set<size_t> slimSet{arg(r.slim.getQ()), arg(r.slim.getK()), arg(r.decode.getK()),
                           arg(r.decode.getV())};
  if (mlir::Value seg = r.slim.getSegments())
    slimSet.insert(arg(seg));
  size_t q = arg(r.decode.getQ());
  if (slimSet.count(q))
    throw Error("the decode query is also an input of kv_slim or the cache; slim() and decode() "
                "need them apart");
  for (mlir::Value v : f.getBody().front().getTerminator()->getOperands())
    if (v != r.decode.getOut() && v != r.decode.getLse())
      throw Error("the variant returns a value its sattn.decode_attention does not produce; a "
                  "slimmed cache decodes only variants that return the decode's O (and LSE)");
  r.slimArgs.assign(slimSet.begin(), slimSet.end());
  r.decodeArgs = {q};
  return r;
}

/// The roles of `impl`'s variant, found on first use (a variant without
/// them throws on every call).
const SlimRoles &slimRoles(const Program::Impl &impl) {
  std::lock_guard<std::mutex> lock(impl.slimMutex);
  if (!impl.slimRoles)
    impl.slimRoles = std::make_shared<const SlimRoles>(findSlimRoles(impl.func));
  return *impl.slimRoles;
}

std::string namesOf(const Program::Impl &impl, const std::vector<size_t> &idx) {
  std::string s;
  for (size_t i : idx)
    s += (s.empty() ? "" : ", ") + impl.inputNames[i];
  return s;
}

/// Binds `inputs` to the argument indices `idx` after checking count and device.
void checkInputs(const Program::Impl &impl, const std::vector<size_t> &idx,
                 const std::vector<TensorView> &inputs, const char *call) {
  if (inputs.size() != idx.size())
    throw Error(std::string(call) + " takes " + std::to_string(idx.size()) + " inputs (" +
                namesOf(impl, idx) + "), " + std::to_string(inputs.size()) + " were given");
  for (size_t j = 0; j < idx.size(); ++j)
    checkView(inputs[j], impl.device, "input '" + impl.inputNames[idx[j]] + "'");
}

std::vector<std::optional<gpu::DeviceTensor>> deviceArgs(const Program::Impl &impl,
                                                         const std::vector<size_t> &idx,
                                                         const std::vector<TensorView> &inputs) {
  std::vector<std::optional<gpu::DeviceTensor>> args(
      mlir::func::FuncOp(impl.func).getNumArguments());
  for (size_t j = 0; j < idx.size(); ++j)
    args[idx[j]] = deviceTensor(inputs[j]);
  return args;
}

int64_t elemBytesOf(mlir::Value v) {
  auto t = mlir::cast<mlir::RankedTensorType>(v.getType());
  return t.getElementType().getIntOrFloatBitWidth() / 8;
}

/// Rethrows anything below the API as sattn::Error.
template <class F> auto guarded(F &&f) {
  try {
    return f();
  } catch (const Error &) {
    throw;
  } catch (const std::exception &e) {
    throw Error(e.what());
  }
}

} // namespace

SlimCache::SlimCache(std::unique_ptr<Impl> i) : impl(std::move(i)) {}
SlimCache::~SlimCache() = default;
Device SlimCache::device() const { return impl->device; }
int64_t SlimCache::batch() const { return impl->batch; }
int64_t SlimCache::kvHeads() const { return impl->kvHeads; }
int64_t SlimCache::headDim() const { return impl->dim; }
int64_t SlimCache::length(int64_t b, int64_t h) const { return impl->lens()[impl->row(b, h)]; }
int64_t SlimCache::capacity(int64_t b, int64_t h) const { return impl->caps()[impl->row(b, h)]; }

int64_t SlimCache::bytesBefore() const {
  return 2 * impl->batch * impl->kvHeads * impl->fullLength * impl->dim * impl->elemBytes;
}

int64_t SlimCache::bytesAfter() const {
  int64_t rows = 0;
  for (int64_t c : impl->caps())
    rows += c;
  return 2 * rows * impl->dim * impl->elemBytes + impl->batch * impl->kvHeads * (8 + 4);
}

void SlimCache::append(const TensorView &k, const TensorView &v, void *stream) {
  guarded([&] {
    checkView(k, impl->device, "appended k");
    checkView(v, impl->device, "appended v");
    if (impl->gpu) {
      impl->program->appendSlim(*impl->gpu, deviceTensor(k), deviceTensor(v),
                                static_cast<CUstream>(stream));
      return;
    }
    for (const TensorView *t : {&k, &v})
      if (t->shape.size() != 4 || t->shape[0] != impl->batch || t->shape[1] != impl->kvHeads ||
          t->shape[3] != impl->dim || t->dtype == DType::I32)
        throw Error(std::string(t == &k ? "appended k" : "appended v") +
                    " must be a floating-point [B, Hkv, t, D] = [" + std::to_string(impl->batch) +
                    ", " + std::to_string(impl->kvHeads) + ", t, " + std::to_string(impl->dim) +
                    "] tensor");
    if (k.shape[2] != v.shape[2])
      throw Error("appended k and v have different lengths (" + std::to_string(k.shape[2]) +
                  " and " + std::to_string(v.shape[2]) + ")");
    const int64_t t = k.shape[2], D = impl->dim;
    for (size_t r = 0; r < impl->lengths.size(); ++r)
      if (impl->lengths[r] + t > impl->capacity[r])
        throw Error("the slimmed cache of batch " + std::to_string(r / size_t(impl->kvHeads)) +
                    ", KV head " + std::to_string(r % size_t(impl->kvHeads)) + " holds " +
                    std::to_string(impl->lengths[r]) + " of " + std::to_string(impl->capacity[r]) +
                    " rows; appending " + std::to_string(t) +
                    " does not fit: slim with a larger reserve");
    std::vector<int64_t> ks = stridesOf(k), vs = stridesOf(v);
    for (int64_t b = 0; b < impl->batch; ++b)
      for (int64_t h = 0; h < impl->kvHeads; ++h) {
        size_t r = impl->row(b, h);
        for (int64_t i = 0; i < t; ++i)
          for (int64_t d = 0; d < D; ++d) {
            impl->k[r].push_back(readElem(k, b * ks[0] + h * ks[1] + i * ks[2] + d * ks[3]));
            impl->v[r].push_back(readElem(v, b * vs[0] + h * vs[1] + i * vs[2] + d * vs[3]));
          }
        impl->lengths[r] += t;
      }
  });
}

std::vector<size_t> Program::decodeInputs() const {
  return guarded([&] { return slimRoles(*impl).decodeArgs; });
}

std::shared_ptr<SlimCache> Program::slim(const std::vector<TensorView> &inputs, int64_t reserve,
                                         void *stream) const {
  return guarded([&] {
    const SlimRoles &roles = slimRoles(*impl);
    checkInputs(*impl, roles.slimArgs, inputs, "slim()");
    if (reserve < 0)
      throw Error("reserve = " + std::to_string(reserve) +
                  " is negative; give the rows per (batch, KV head) to keep free for appends");
    auto c = std::make_unique<SlimCache::Impl>();
    c->device = impl->device, c->programKey = impl->key;
    c->elemBytes = elemBytesOf(roles.decode.getK());
    if (impl->device == Device::Gpu) {
      c->program = impl->gpu;
      c->gpu = impl->gpu->slim(deviceArgs(*impl, roles.slimArgs, inputs), reserve,
                               static_cast<CUstream>(stream));
      c->batch = c->gpu->batch, c->kvHeads = c->gpu->kvHeads, c->dim = c->gpu->dim;
      c->fullLength = c->gpu->fullLength;
      return std::make_shared<SlimCache>(std::move(c));
    }
    std::vector<std::shared_ptr<ref::Tensor>> args(impl->func.getNumArguments());
    for (size_t j = 0; j < roles.slimArgs.size(); ++j)
      args[roles.slimArgs[j]] = hostInput(*impl, roles.slimArgs[j], inputs[j]);
    CpuRunResult r = runOnCpu(impl->func, args, roles.slim.getOperation());
    const ref::TokenSet &ts = *r.slimTokens;
    auto arg = [&](mlir::Value v) {
      return args[mlir::cast<mlir::BlockArgument>(v).getArgNumber()];
    };
    const ref::Tensor &k = *arg(roles.decode.getK()), &v = *arg(roles.decode.getV());
    if (k.shape != v.shape)
      throw Error("the decode cache's k and v have different shapes");
    if (ts.B != k.dim(0) || ts.H != k.dim(1) || ts.Skv != k.dim(2))
      throw Error("kv_slim scored " + std::to_string(ts.Skv) +
                  " cached tokens but the decode's cache holds " + std::to_string(k.dim(2)) +
                  "; pass the cache kv_slim scored");
    c->batch = k.dim(0), c->kvHeads = k.dim(1), c->dim = k.dim(3), c->fullLength = k.dim(2);
    const size_t heads = size_t(c->batch * c->kvHeads);
    c->lengths.resize(heads), c->capacity.resize(heads), c->k.resize(heads), c->v.resize(heads);
    for (int64_t b = 0; b < c->batch; ++b)
      for (int64_t h = 0; h < c->kvHeads; ++h) {
        size_t row = size_t(b * c->kvHeads + h);
        const std::vector<int32_t> &kept = ts.kept[row];
        c->lengths[row] = int64_t(kept.size());
        c->capacity[row] = int64_t(kept.size()) + reserve;
        for (int32_t j : kept)
          for (int64_t d = 0; d < c->dim; ++d) {
            c->k[row].push_back(k.at(b, h, j, d));
            c->v[row].push_back(v.at(b, h, j, d));
          }
      }
    return std::make_shared<SlimCache>(std::move(c));
  });
}

namespace {
/// run() / decode() outputs: the variant's results in order.
void checkOutputCount(const Program::Impl &impl, const std::vector<TensorView> &outputs) {
  size_t n = mlir::func::FuncOp(impl.func).getNumResults();
  if (outputs.size() != n)
    throw Error("the variant returns " + std::to_string(n) + " tensors, " +
                std::to_string(outputs.size()) + " output views were given");
  for (size_t i = 0; i < outputs.size(); ++i)
    checkView(outputs[i], impl.device, "output " + std::to_string(i));
}

double decodeImpl(const Program::Impl &impl, const SlimCache::Impl &cache,
                  const std::vector<TensorView> &inputs, const std::vector<TensorView> &outputs,
                  void *stream, bool timed) {
  const SlimRoles &roles = slimRoles(impl);
  if (cache.programKey != impl.key || cache.device != impl.device)
    throw Error("the slimmed cache was built by another program; decode it with the program "
                "whose slim() built it");
  checkInputs(impl, roles.decodeArgs, inputs, "decode()");
  checkOutputCount(impl, outputs);
  if (impl.device == Device::Gpu) {
    std::vector<gpu::DeviceTensor> results;
    for (const TensorView &t : outputs)
      results.push_back(deviceTensor(t));
    gpu::RunOptions ro;
    ro.timePhases = timed;
    impl.gpu->decodeSlim(*cache.gpu, deviceArgs(impl, roles.decodeArgs, inputs), results,
                         static_cast<CUstream>(stream), &ro);
    double ms = 0;
    for (const auto &ph : impl.gpu->phases())
      ms += timed ? ph.second : 0.0;
    return ms;
  }
  if (timed)
    throw Error("decodeTimed needs a GPU program (the time comes from CUDA events)");
  std::shared_ptr<ref::Tensor> q = hostInput(impl, roles.decodeArgs[0], inputs[0]);
  checkHostOutputs(impl, outputs);
  const int64_t B = q->dim(0), Hq = q->dim(1), Sd = q->dim(2), D = q->dim(3);
  const int64_t Hkv = cache.kvHeads, G = Hq / std::max<int64_t>(Hkv, 1);
  if (B != cache.batch || D != cache.dim || Hq % Hkv != 0)
    throw Error("q is [" + std::to_string(B) + ", " + std::to_string(Hq) + ", ., " +
                std::to_string(D) + "] but the slimmed cache holds batch " +
                std::to_string(cache.batch) + ", " + std::to_string(Hkv) + " KV heads, head dim " +
                std::to_string(cache.dim));
  std::optional<double> scale;
  if (auto s = roles.decode.getScale())
    scale = s->convertToDouble();
  ref::Tensor out({B, Hq, Sd, D}), lse({B, Hq, Sd});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hkv; ++h) {
      size_t row = size_t(b * Hkv + h);
      const int64_t n = cache.lengths[row];
      ref::Tensor qg({1, G, Sd, D}), kc({1, 1, n, D}), vc({1, 1, n, D});
      for (int64_t g = 0; g < G; ++g)
        for (int64_t i = 0; i < Sd; ++i)
          for (int64_t d = 0; d < D; ++d)
            qg.at(0, g, i, d) = q->at(b, h * G + g, i, d);
      kc.data = cache.k[row], vc.data = cache.v[row];
      ref::AttentionResult r = ref::decodeAttention(qg, kc, vc, nullptr, scale);
      for (int64_t g = 0; g < G; ++g)
        for (int64_t i = 0; i < Sd; ++i) {
          lse.at3(b, h * G + g, i) = r.lse.at3(0, g, i);
          for (int64_t d = 0; d < D; ++d)
            out.at(b, h * G + g, i, d) = r.out.at(0, g, i, d);
        }
    }
  mlir::Operation *ret = mlir::func::FuncOp(impl.func).getBody().front().getTerminator();
  for (size_t i = 0; i < outputs.size(); ++i)
    writeHostOutput(i, outputs[i],
                    ret->getOperand(unsigned(i)) == roles.decode.getOut() ? out : lse);
  return 0;
}
} // namespace

void Program::decode(const SlimCache &cache, const std::vector<TensorView> &inputs,
                     const std::vector<TensorView> &outputs, void *stream) const {
  guarded([&] { decodeImpl(*impl, *cache.impl, inputs, outputs, stream, false); });
}

double Program::decodeTimed(const SlimCache &cache, const std::vector<TensorView> &inputs,
                            const std::vector<TensorView> &outputs, void *stream) const {
  return guarded([&] { return decodeImpl(*impl, *cache.impl, inputs, outputs, stream, true); });
}

} // namespace sattn
