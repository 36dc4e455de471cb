//===- SlimCache.cpp - slimmed KV caches on the GPU (Program::slim) -------===//
//
// OmniSparse decode slimming as an inference engine uses it: kv_slim runs
// once after the prompt, the kept K/V rows of every (batch, KV head) are
// compacted into a cache of exactly that size (the full cache can then be
// freed), and each decode step reads the slimmed cache. The compaction
// and the appends use the kv_compact kernel the emitter writes beside the
// kv_slim_select kernel; the decode step is the variant's own decode_attn
// launch in its slimmed-cache mode (codegen/device/decode.cuh).
//
// The only host synchronisation is in slim(): the allocation needs the
// kept-token counts. Appends and decode steps never synchronise: the host
// mirrors every length.
//
//===----------------------------------------------------------------------===//
#include "runtime/gpu/Run.h"

#include "codegen/device/kv_slim.cuh"

#include <numeric>

namespace sattn::gpu {

using detail::cdiv;
using detail::Run;

SlimStorage::~SlimStorage() {
  Driver &d = Driver::get();
  for (CUdeviceptr p : {k, v, off, len})
    if (p)
      d.cuMemFree_(p);
}

std::pair<size_t, size_t> CompiledProgram::slimLaunches() const {
  for (size_t d = 0; d < p.launches.size(); ++d) {
    const Launch &l = p.launches[d];
    if (l.deviceTemplate != "decode_attn" || !l.b("HAS_TOKENS"))
      continue;
    if (l.b("PAGED"))
      throw GpuError("slimming needs a dense [B, Hkv, S, D] cache, but this variant's "
                     "sattn.decode_attention reads a paged one; run() decodes it through the "
                     "kept-token list instead");
    for (size_t s = 0; s < d; ++s)
      if (p.launches[s].deviceTemplate == "kv_slim_select" &&
          p.launches[s].results.at(0) == l.operands.at(3)) {
        for (int r : p.results)
          if (std::find(l.results.begin(), l.results.end(), r) == l.results.end())
            throw GpuError("the variant returns a value its sattn.decode_attention does not "
                           "produce; a slimmed cache decodes only variants ending in the decode");
        return {s, d};
      }
  }
  throw GpuError("the variant has no sattn.decode_attention reading the tokens of a "
                 "sattn.kv_slim; slim() and decode() need one (e.g. "
                 "examples/omnisparse_decode.mlir)");
}

std::unique_ptr<SlimStorage>
CompiledProgram::slim(const std::vector<std::optional<DeviceTensor>> &args, int64_t reserve,
                      CUstream stream) const {
  auto [sel, dec] = slimLaunches();
  if (reserve < 0 || reserve > INT32_MAX / 2)
    throw GpuError("reserve = " + std::to_string(reserve) +
                   " tokens per head is out of range; give 0 or more (rows kept free for "
                   "SlimCache::append)");
  Driver &drv = Driver::get();
  drv.makeCurrent();
  Run r(*this, functions, stream, nullptr);
  r.bindArgs(args);
  r.execute(0, sel + 1);
  const Launch &select = p.launches[sel], &decode = p.launches[dec];
  const detail::RtValue &ts = r.value(select.results[0]);
  const detail::RtValue &k = r.value(decode.operands[1]), &v = r.value(decode.operands[2]);
  if (!k.p0 || !v.p0)
    throw GpuError("internal: slim() ran without the decode's k and v bound");
  if (k.B != v.B || k.S != v.S)
    throw GpuError("the decode cache's k and v have different shapes");
  if (ts.S != k.S || ts.B != k.B)
    throw GpuError("kv_slim scored " + std::to_string(ts.S) +
                   " cached tokens but the decode's "
                   "cache holds " +
                   std::to_string(k.S) + "; pass the cache kv_slim scored");

  auto st = std::make_unique<SlimStorage>();
  st->batch = k.B, st->kvHeads = int(decode.i("KV_HEADS")), st->dim = k.D;
  st->elem = p.values[decode.operands[1]].elem;
  st->fullLength = k.S;
  const size_t heads = size_t(st->batch) * st->kvHeads;
  std::vector<int> counts = r.download<int>(ts.p0, heads); // the one synchronisation
  std::vector<int32_t> lens32(heads);
  st->offsets.resize(heads), st->lengths.resize(heads), st->capacity.resize(heads);
  int64_t rows = 0;
  for (size_t i = 0; i < heads; ++i) {
    int64_t n = std::clamp<int64_t>(counts[i], 0, k.S);
    st->offsets[i] = rows, st->lengths[i] = n, st->capacity[i] = n + reserve;
    lens32[i] = int32_t(n);
    rows += n + reserve;
  }
  if (rows > INT32_MAX)
    throw GpuError("the slimmed cache would hold " + std::to_string(rows) +
                   " rows, more than 2^31 - 1; slim fewer sequences at once");
  const size_t rowBytes = size_t(st->dim) * 2;
  drv.check(drv.cuMemAlloc_(&st->k, std::max<size_t>(16, size_t(rows) * rowBytes)),
            "allocating the slimmed K cache");
  drv.check(drv.cuMemAlloc_(&st->v, std::max<size_t>(16, size_t(rows) * rowBytes)),
            "allocating the slimmed V cache");
  drv.check(drv.cuMemAlloc_(&st->off, heads * 8), "allocating the slimmed cache's offsets");
  drv.check(drv.cuMemAlloc_(&st->len, heads * 4), "allocating the slimmed cache's lengths");
  // Zeroed: a key tile may read past a head's rows into the reserve (masked,
  // but 0 * V must not meet a NaN bit pattern left in fresh memory).
  for (CUdeviceptr buf : {st->k, st->v})
    drv.check(
        drv.cuMemsetD32Async_(buf, 0, std::max<size_t>(4, size_t(rows) * rowBytes) / 4, stream),
        "clearing the slimmed cache");
  drv.check(drv.cuMemcpyHtoDAsync_(st->off, st->offsets.data(), heads * 8, stream),
            "uploading the slimmed cache's offsets");
  drv.check(drv.cuMemcpyHtoDAsync_(st->len, lens32.data(), heads * 4, stream),
            "uploading the slimmed cache's lengths");
  dev::KvCompactParams cp{detail::view(k),
                          detail::view(v),
                          reinterpret_cast<const int *>(ts.p0),
                          reinterpret_cast<const int *>(ts.p1),
                          ts.S,
                          reinterpret_cast<void *>(st->k),
                          reinterpret_cast<void *>(st->v),
                          reinterpret_cast<const dev::i64 *>(st->off),
                          reinterpret_cast<int *>(st->len)};
  std::string name = select.kernel + "_compact";
  r.goFunction(functions.at(name), name, unsigned(cdiv(ts.S, dev::kCompactRows)),
               unsigned(st->kvHeads), unsigned(st->batch), dev::kCompactThreads, &cp);
  // Done before returning: the caller may free the full cache right away,
  // and the host arrays above must outlive their copies.
  drv.check(drv.cuStreamSynchronize_(stream), "compacting the slimmed cache");
  return st;
}

void CompiledProgram::decodeSlim(const SlimStorage &cache,
                                 const std::vector<std::optional<DeviceTensor>> &args,
                                 const std::vector<DeviceTensor> &results, CUstream stream,
                                 RunOptions *opts) const {
  size_t dec = slimLaunches().second;
  Driver::get().makeCurrent();
  Run r(*this, functions, stream, opts);
  r.bindArgs(args);
  r.bindResults(results);
  r.slimCache = &cache;
  r.execute(dec, dec + 1);
  if (opts && opts->timePhases)
    lastPhases = r.phasesOut;
}

void CompiledProgram::appendSlim(SlimStorage &c, const DeviceTensor &k, const DeviceTensor &v,
                                 CUstream stream) const {
  size_t sel = slimLaunches().first;
  for (const DeviceTensor *t : {&k, &v}) {
    const char *what = t == &k ? "appended k" : "appended v";
    if (t->shape.size() != 4 || t->strides.size() != 4 || t->shape[0] != c.batch ||
        t->shape[1] != c.kvHeads || t->shape[3] != c.dim)
      throw GpuError(std::string(what) + " must be [B, Hkv, t, D] = [" + std::to_string(c.batch) +
                     ", " + std::to_string(c.kvHeads) + ", t, " + std::to_string(c.dim) + "]");
    if (t->elem != c.elem)
      throw GpuError(std::string(what) + " is " + detail::elemName(t->elem) +
                     " but the slimmed cache holds " + detail::elemName(c.elem));
    if (t->strides[3] != 1 || t->ptr % 16 != 0)
      throw GpuError(std::string(what) +
                     " must be 16-byte aligned with a contiguous last dimension");
  }
  if (k.shape[2] != v.shape[2])
    throw GpuError("appended k and v have different lengths (" + std::to_string(k.shape[2]) +
                   " and " + std::to_string(v.shape[2]) + ")");
  const int64_t t = k.shape[2];
  for (size_t i = 0; i < c.lengths.size(); ++i)
    if (c.lengths[i] + t > c.capacity[i])
      throw GpuError("the slimmed cache of batch " + std::to_string(i / size_t(c.kvHeads)) +
                     ", KV head " + std::to_string(i % size_t(c.kvHeads)) + " holds " +
                     std::to_string(c.lengths[i]) + " of " + std::to_string(c.capacity[i]) +
                     " rows; appending " + std::to_string(t) +
                     " does not fit: slim with a larger reserve");
  auto tensor = [&](const DeviceTensor &x) {
    return dev::Tensor4{reinterpret_cast<void *>(x.ptr),
                        x.strides[0],
                        x.strides[1],
                        x.strides[2],
                        c.batch,
                        c.kvHeads,
                        int(t),
                        c.dim};
  };
  dev::KvCompactParams cp{tensor(k),
                          tensor(v),
                          nullptr,
                          nullptr,
                          0,
                          reinterpret_cast<void *>(c.k),
                          reinterpret_cast<void *>(c.v),
                          reinterpret_cast<const dev::i64 *>(c.off),
                          reinterpret_cast<int *>(c.len)};
  Driver::get().makeCurrent();
  Run r(*this, functions, stream, nullptr);
  std::string name = p.launches[sel].kernel + "_compact";
  if (t > 0)
    r.goFunction(functions.at(name), name, 1, unsigned(c.kvHeads), unsigned(c.batch),
                 dev::kCompactThreads, &cp);
  for (int64_t &n : c.lengths)
    n += t;
}

} // namespace sattn::gpu
