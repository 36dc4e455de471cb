//===- CApi.cpp - the C ABI of libsattn.so over the C++ API ---------------===//
//
// Thin wrappers around sattn::Session / sattn::Program (include/sattn/sattn.h).
// Each entry point validates its pointers, runs the C++ call inside one
// try/catch and turns any exception into a status plus a thread-local
// message, so nothing C++ crosses the boundary. The library is linked with
// hidden visibility and a version script (exports.map) so only `sattn_*`
// symbols are visible (design §9).
//
// The public C++ Program does not describe its outputs or the types it
// expects, so at compile time we read them once from the function signature
// of the program's kernel-level IR (which reflects any dtype rebinding).
//
//===----------------------------------------------------------------------===//
#include "sattn/sattn_c.h"
#include "sattn/sattn.h"

#include "dialect/SattnDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <cstring>
#include <mutex>
#include <optional>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#ifndef SATTN_VERSION
#define SATTN_VERSION "unknown"
#endif

struct sattn_session {
  std::unique_ptr<sattn::Session> session;
};

struct sattn_program {
  std::shared_ptr<sattn::Program> program;
  std::vector<sattn_arg_info> inputs, outputs;
  /// The block mask of the last run_selection (sattn_program_last_blocks).
  mutable std::mutex lastMutex;
  mutable std::optional<sattn::SelectionReport::BlockMask> lastBlocks;
};

struct sattn_slim_cache {
  std::shared_ptr<sattn::SlimCache> cache;
};

namespace {

thread_local std::string lastError;

/// A caller mistake detected here (null pointer, bad option, small buffer).
struct ArgError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Runs `body` (which returns nothing) and maps every exception to a status
/// and the thread's message; `fn` prefixes messages that do not come from
/// sattn::Error (those already say what went wrong).
template <typename F> int guarded(const char *fn, F &&body) noexcept {
  try {
    try {
      body();
      return SATTN_OK;
    } catch (const ArgError &e) {
      lastError = std::string(fn) + ": " + e.what();
      return SATTN_ERR_ARGUMENT;
    } catch (const sattn::Error &e) {
      lastError = e.what();
      return SATTN_ERR_SATTN;
    } catch (const std::bad_alloc &) {
      lastError = std::string(fn) + ": out of host memory";
      return SATTN_ERR_INTERNAL;
    } catch (const std::exception &e) {
      lastError = std::string(fn) + ": " + e.what();
      return SATTN_ERR_INTERNAL;
    } catch (...) {
      lastError = std::string(fn) + ": unknown C++ exception";
      return SATTN_ERR_INTERNAL;
    }
  } catch (...) { // building the message itself failed
    lastError.clear();
    return SATTN_ERR_INTERNAL;
  }
}

template <typename T> T &deref(T *p, const char *what) {
  if (!p)
    throw ArgError(std::string(what) + " is NULL");
  return *p;
}

const char *needStr(const char *s, const char *what) {
  if (!s)
    throw ArgError(std::string(what) + " is NULL");
  return s;
}

/// The buffer protocol of sattn_c.h: copy with truncation, report the size.
void copyOut(const std::string &s, char *buf, size_t n, size_t *needed) {
  if (needed)
    *needed = s.size() + 1;
  if (n == 0)
    return;
  if (!buf)
    throw ArgError("buf is NULL but n is " + std::to_string(n));
  size_t len = std::min(s.size(), n - 1);
  std::memcpy(buf, s.data(), len);
  buf[len] = '\0';
}

/// For functions with no `needed`: a buffer too small is an error.
void copyOutExact(const std::string &s, char *buf, size_t n) {
  if (!buf)
    throw ArgError("buf is NULL");
  if (n < s.size() + 1)
    throw ArgError("the buffer holds " + std::to_string(n) + " bytes, " +
                   std::to_string(s.size() + 1) + " are needed");
  std::memcpy(buf, s.c_str(), s.size() + 1);
}

std::optional<sattn::DType> parseDType(const char *s) {
  if (!s || !*s)
    return std::nullopt;
  if (!std::strcmp(s, "bf16"))
    return sattn::DType::BF16;
  if (!std::strcmp(s, "fp16") || !std::strcmp(s, "f16"))
    return sattn::DType::FP16;
  throw ArgError(std::string("unknown dtype '") + s + "' (expected \"bf16\" or \"fp16\")");
}

sattn_arg_info infoOf(mlir::Type t) {
  sattn_arg_info info;
  info.dtype = -1;
  info.ndim = -1;
  for (int64_t &d : info.shape)
    d = -1;
  if (auto bt = mlir::dyn_cast<sattn::BlocksType>(t)) {
    // A block-set argument binds to a user list int32 [B, H, nQB, cap].
    info.dtype = SATTN_I32;
    info.ndim = 4;
    info.shape[1] = bt.getHeads();
    return info;
  }
  auto ranked = mlir::dyn_cast<mlir::RankedTensorType>(t);
  if (!ranked || ranked.getRank() > SATTN_MAX_RANK)
    return info;
  mlir::Type e = ranked.getElementType();
  if (e.isBF16())
    info.dtype = SATTN_BF16;
  else if (e.isF16())
    info.dtype = SATTN_FP16;
  else if (e.isF32())
    info.dtype = SATTN_F32;
  else if (e.isInteger(32))
    info.dtype = SATTN_I32;
  info.ndim = int32_t(ranked.getRank());
  for (int64_t d = 0; d < ranked.getRank(); ++d)
    info.shape[d] = ranked.isDynamicDim(d) ? -1 : ranked.getDimSize(d);
  return info;
}

/// Reads the inputs and outputs of the (specialised) function from the
/// program's kernel-level IR.
void describe(sattn_program &p) {
  mlir::MLIRContext ctx;
  ctx.loadDialect<sattn::SattnDialect, mlir::func::FuncDialect>();
  std::string diags;
  mlir::ScopedDiagnosticHandler handler(&ctx, [&](mlir::Diagnostic &d) {
    diags += d.str() + "\n";
    return mlir::success();
  });
  auto module = mlir::parseSourceString<mlir::ModuleOp>(p.program->loweredIR(), &ctx);
  if (!module)
    throw sattn::Error("internal: cannot re-read the program's kernel-level IR:\n" + diags);
  auto funcs = module->getOps<mlir::func::FuncOp>();
  if (funcs.empty())
    throw sattn::Error("internal: the kernel-level IR holds no function");
  mlir::FunctionType type = (*funcs.begin()).getFunctionType();
  for (mlir::Type t : type.getInputs())
    p.inputs.push_back(infoOf(t));
  for (mlir::Type t : type.getResults())
    p.outputs.push_back(infoOf(t));
}

/// Converts C views to C++ ones, rejecting what the C++ side cannot see.
std::vector<sattn::TensorView> views(const sattn_tensor *ts, int n, const char *what) {
  if (n < 0)
    throw ArgError(std::string("a negative number of ") + what + "s");
  if (n > 0 && !ts)
    throw ArgError(std::string(what) + "s is NULL");
  std::vector<sattn::TensorView> out;
  out.reserve(size_t(n));
  for (int i = 0; i < n; ++i) {
    const sattn_tensor &t = ts[i];
    std::string name = std::string(what) + " " + std::to_string(i);
    if (t.dtype < SATTN_BF16 || t.dtype > SATTN_I32)
      throw ArgError(name + " has an unknown dtype code " + std::to_string(t.dtype) +
                     " (0 bf16, 1 fp16, 2 f32, 3 i32)");
    if (t.device != SATTN_CPU && t.device != SATTN_GPU)
      throw ArgError(name + " has an unknown device code " + std::to_string(t.device) +
                     " (0 cpu, 1 gpu)");
    if (t.ndim < 0 || t.ndim > SATTN_MAX_RANK)
      throw ArgError(name + " has rank " + std::to_string(t.ndim) + ", at most " +
                     std::to_string(SATTN_MAX_RANK) + " is supported");
    if (t.ndim > 0 && !t.shape)
      throw ArgError(name + " has a NULL shape");
    if (!t.data)
      throw ArgError(name + " has a NULL data pointer");
    sattn::TensorView v;
    v.data = t.data;
    v.dtype = sattn::DType(t.dtype);
    v.device = t.device == SATTN_GPU ? sattn::Device::Gpu : sattn::Device::Cpu;
    v.shape.assign(t.shape, t.shape + t.ndim);
    if (t.strides)
      v.strides.assign(t.strides, t.strides + t.ndim);
    out.push_back(std::move(v));
  }
  return out;
}

const sattn_arg_info &argInfo(const sattn_program &p, int index, bool output) {
  const auto &list = output ? p.outputs : p.inputs;
  if (index < 0 || size_t(index) >= list.size())
    throw ArgError("index " + std::to_string(index) + " is out of range (the program has " +
                   std::to_string(list.size()) + (output ? " outputs)" : " inputs)"));
  return list[size_t(index)];
}

} // namespace

extern "C" {

const char *sattn_last_error(void) { return lastError.c_str(); }

const char *sattn_version(void) { return SATTN_VERSION; }

int sattn_session_create(const char *device, const char *cache_dir, sattn_session **out) {
  return guarded(__func__, [&] {
    deref(out, "out") = nullptr;
    sattn::SessionOptions options;
    if (device && *device && std::strcmp(device, "auto")) {
      if (!std::strcmp(device, "cpu"))
        options.device = sattn::Device::Cpu;
      else if (!std::strcmp(device, "gpu") || !std::strcmp(device, "cuda"))
        options.device = sattn::Device::Gpu;
      else
        throw ArgError(std::string("unknown device '") + device +
                       "' (expected \"auto\", \"cpu\" or \"gpu\")");
    }
    if (cache_dir)
      options.cacheDir = cache_dir;
    auto s = std::make_unique<sattn_session>();
    s->session = std::make_unique<sattn::Session>(options);
    *out = s.release();
  });
}

int sattn_session_destroy(sattn_session *session) {
  return guarded(__func__, [&] { delete session; });
}

int sattn_session_device(const sattn_session *session, char *buf, size_t n) {
  return guarded(__func__,
                 [&] { copyOutExact(deref(session, "session").session->deviceName(), buf, n); });
}

int sattn_session_release_workspace(sattn_session *session, size_t *released) {
  return guarded(__func__, [&] {
    const size_t n = deref(session, "session").session->releaseWorkspace();
    if (released)
      *released = n;
  });
}

int sattn_compile(sattn_session *session, const char *mlir_text, const char *dtype,
                  sattn_program **out) {
  return guarded(__func__, [&] {
    deref(out, "out") = nullptr;
    sattn_session &s = deref(session, "session");
    sattn::Specialization spec;
    spec.dtype = parseDType(dtype);
    auto p = std::make_unique<sattn_program>();
    p->program =
        s.session->compile(sattn::Variant::fromText(needStr(mlir_text, "mlir_text")), spec);
    describe(*p);
    *out = p.release();
  });
}

int sattn_pattern_text(const char *name, int heads, int kv_heads, int head_dim, const char *dtype,
                       int64_t a, int64_t b, int64_t c, char *buf, size_t n, size_t *needed) {
  return guarded(__func__, [&] {
    std::string nm = needStr(name, "name");
    sattn::patterns::Heads h;
    h.dtype = parseDType(dtype).value_or(sattn::DType::BF16);
    if (heads <= 0 || kv_heads <= 0 || head_dim <= 0)
      throw ArgError("heads, kv_heads and head_dim must be positive, got " + std::to_string(heads) +
                     ", " + std::to_string(kv_heads) + ", " + std::to_string(head_dim));
    if (heads % kv_heads)
      throw ArgError("heads (" + std::to_string(heads) + ") must be a multiple of kv_heads (" +
                     std::to_string(kv_heads) + ")");
    h.heads = heads;
    h.kvHeads = kv_heads;
    h.headDim = head_dim;
    std::string text;
    if (nm == "dense" || nm == "dense_causal")
      text = sattn::patterns::dense(h, nm == "dense_causal", a != 0).text();
    else if (nm == "streaming")
      text = sattn::patterns::streaming(h, a, b).text();
    else if (nm == "topk_blocks")
      text = sattn::patterns::topkBlocks(h, a, b, c).text();
    else if (nm == "block_mask")
      text = sattn::patterns::blockMask(h, a, b != 0, c).text();
    else if (nm == "omnisparse")
      text = sattn::patterns::omnisparse(h).text();
    else if (nm == "omnisparse_decode")
      text = sattn::patterns::omnisparseDecode(h).text();
    else if (nm == "xattention") {
      sattn::patterns::XAttentionOptions o;
      o.stride = a > 0 ? a : o.stride;
      o.tau = b > 0 ? double(b) / 1000 : o.tau;
      o.slack = c;
      text = sattn::patterns::xattention(h, o).text();
    } else if (nm == "flexprefill") {
      sattn::patterns::FlexPrefillOptions o;
      o.gamma = a > 0 ? double(a) / 1000 : o.gamma;
      o.jsd = b > 0 ? double(b) / 1000 : (b < 0 ? 0.0 : o.jsd);
      o.minBudget = c > 0 ? c : o.minBudget;
      text = sattn::patterns::flexprefill(h, o).text();
    } else if (nm == "minference_vertical_slash") {
      sattn::patterns::VerticalSlashOptions o;
      o.vertical = a > 0 ? a : o.vertical;
      o.slash = b > 0 ? b : o.slash;
      o.block = c > 0 ? c : o.block;
      text = sattn::patterns::minferenceVerticalSlash(h, o).text();
    } else if (nm == "quest") {
      sattn::patterns::QuestOptions o;
      o.page = a > 0 ? a : o.page;
      o.pages = b > 0 ? b : o.pages;
      o.boundsAsInputs = c != 0;
      text = sattn::patterns::quest(h, o).text();
    } else if (nm == "unisparse") {
      sattn::patterns::UniSparseOptions o;
      o.tau = a > 0 ? double(a) / 1000 : o.tau;
      o.cap = b;
      text = sattn::patterns::unisparse(h, o).text();
    } else
      throw ArgError("unknown pattern '" + nm +
                     "' (expected dense, dense_causal, streaming, topk_blocks, block_mask, "
                     "omnisparse, omnisparse_decode, xattention, flexprefill, "
                     "minference_vertical_slash, unisparse or quest)");
    copyOut(text, buf, n, needed);
  });
}

int sattn_program_run(const sattn_program *program, const sattn_tensor *inputs, int n_in,
                      const sattn_tensor *outputs, int n_out, void *stream) {
  return guarded(__func__, [&] {
    const sattn_program &p = deref(program, "program");
    p.program->run(views(inputs, n_in, "input"), views(outputs, n_out, "output"), stream);
  });
}

int sattn_program_backward(const sattn_program *program, const sattn_tensor *inputs, int n_in,
                           const sattn_tensor *dout, const sattn_tensor *grads, int n_grads,
                           void *stream) {
  return sattn_program_backward_ex(program, inputs, n_in, nullptr, nullptr, dout, grads, n_grads, 0,
                                   stream);
}

int sattn_program_backward_ex(const sattn_program *program, const sattn_tensor *inputs, int n_in,
                              const sattn_tensor *out, const sattn_tensor *lse,
                              const sattn_tensor *dout, const sattn_tensor *grads, int n_grads,
                              int flags, void *stream) {
  return guarded(__func__, [&] {
    const sattn_program &p = deref(program, "program");
    if ((out == nullptr) != (lse == nullptr))
      throw sattn::Error("backward: give both the forward's out and lse, or neither");
    if (flags & ~(SATTN_BACKWARD_DETERMINISTIC | SATTN_BACKWARD_ATOMIC_DQ))
      throw sattn::Error("backward: unknown flags " + std::to_string(flags));
    if ((flags & SATTN_BACKWARD_DETERMINISTIC) && (flags & SATTN_BACKWARD_ATOMIC_DQ))
      throw sattn::Error("backward: SATTN_BACKWARD_DETERMINISTIC and SATTN_BACKWARD_ATOMIC_DQ "
                         "exclude each other");
    sattn::Program::BackwardOptions o;
    o.deterministic = (flags & SATTN_BACKWARD_ATOMIC_DQ) == 0;
    std::vector<sattn::TensorView> saved;
    if (out) {
      saved = views(out, 1, "out");
      saved.push_back(views(lse, 1, "lse")[0]);
      o.out = &saved[0], o.lse = &saved[1];
    }
    p.program->backward(views(inputs, n_in, "input"), views(dout, 1, "dout")[0],
                        views(grads, n_grads, "gradient"), o, stream);
  });
}

int sattn_program_run_timed(const sattn_program *program, const sattn_tensor *inputs, int n_in,
                            const sattn_tensor *outputs, int n_out, void *stream, double *ms,
                            int cap, int *count, char *names, size_t n, size_t *needed) {
  return guarded(__func__, [&] {
    const sattn_program &p = deref(program, "program");
    auto phases =
        p.program->runTimed(views(inputs, n_in, "input"), views(outputs, n_out, "output"), stream);
    deref(count, "count") = int(phases.size());
    std::string joined;
    for (size_t i = 0; i < phases.size(); ++i) {
      if (int(i) < cap && ms)
        ms[i] = phases[i].second;
      joined += (i ? "\n" : "") + phases[i].first;
    }
    if (names || needed)
      copyOut(joined, names, n, needed);
  });
}

int sattn_program_run_selection(const sattn_program *program, const sattn_tensor *inputs, int n_in,
                                const sattn_tensor *outputs, int n_out, void *stream,
                                sattn_selection_report *report) {
  return guarded(__func__, [&] {
    const sattn_program &p = deref(program, "program");
    sattn_selection_report &out = deref(report, "report");
    sattn::SelectionReport r = p.program->runSelection(views(inputs, n_in, "input"),
                                                       views(outputs, n_out, "output"), stream);
    out.density = r.density.value_or(-1.0);
    out.active_rows = r.activeRows.value_or(-1.0);
    out.kv_kept = r.kvKept.value_or(-1.0);
    std::lock_guard<std::mutex> lock(p.lastMutex);
    p.lastBlocks = std::move(r.blocks);
    if (!p.lastBlocks)
      p.lastBlocks.emplace(); // ran, without a block set (batch 0 marks it)
  });
}

int sattn_program_last_blocks(const sattn_program *program, sattn_block_mask_info *info,
                              uint8_t *mask, size_t n, size_t *needed) {
  return guarded(__func__, [&] {
    const sattn_program &p = deref(program, "program");
    sattn_block_mask_info &i = deref(info, "info");
    size_t &need = deref(needed, "needed");
    std::lock_guard<std::mutex> lock(p.lastMutex);
    if (!p.lastBlocks)
      throw ArgError("no sattn_program_run_selection has run on this program yet");
    const sattn::SelectionReport::BlockMask &m = *p.lastBlocks;
    if (m.batch == 0)
      throw ArgError("the last run_selection had no prefill block set (a dense, decode or "
                     "slimming variant); there is no block mask to report");
    i = {m.batch, m.heads, m.qBlocks, m.kvBlocks, m.bq, m.bk};
    need = m.mask.size();
    if (mask && n >= need)
      std::copy(m.mask.begin(), m.mask.end(), mask);
  });
}

int sattn_program_decode_inputs(const sattn_program *program, int *indices, int cap, int *count) {
  return guarded(__func__, [&] {
    std::vector<size_t> idx = deref(program, "program").program->decodeInputs();
    deref(count, "count") = int(idx.size());
    if (cap > 0)
      deref(indices, "indices");
    for (size_t i = 0; i < idx.size() && int(i) < cap; ++i)
      indices[i] = int(idx[i]);
  });
}

int sattn_program_slim(const sattn_program *program, const sattn_tensor *inputs, int n_in,
                       int64_t reserve, void *stream, sattn_slim_cache **out) {
  return guarded(__func__, [&] {
    sattn_slim_cache *&slot = deref(out, "out");
    slot = nullptr;
    auto c = std::make_unique<sattn_slim_cache>();
    c->cache =
        deref(program, "program").program->slim(views(inputs, n_in, "input"), reserve, stream);
    slot = c.release();
  });
}

int sattn_program_decode(const sattn_program *program, const sattn_slim_cache *cache,
                         const sattn_tensor *inputs, int n_in, const sattn_tensor *outputs,
                         int n_out, void *stream, double *kernel_ms) {
  return guarded(__func__, [&] {
    const sattn::Program &p = *deref(program, "program").program;
    const sattn::SlimCache &c = *deref(cache, "cache").cache;
    auto in = views(inputs, n_in, "input"), outs = views(outputs, n_out, "output");
    if (kernel_ms)
      *kernel_ms = p.decodeTimed(c, in, outs, stream);
    else
      p.decode(c, in, outs, stream);
  });
}

int sattn_slim_cache_info(const sattn_slim_cache *cache, sattn_slim_info *out) {
  return guarded(__func__, [&] {
    const sattn::SlimCache &c = *deref(cache, "cache").cache;
    sattn_slim_info &i = deref(out, "out");
    i.batch = c.batch(), i.kv_heads = c.kvHeads(), i.head_dim = c.headDim();
    i.bytes_before = c.bytesBefore(), i.bytes_after = c.bytesAfter();
    i.tokens = 0;
    for (int64_t b = 0; b < c.batch(); ++b)
      for (int64_t h = 0; h < c.kvHeads(); ++h)
        i.tokens += c.length(b, h);
    i.device = c.device() == sattn::Device::Gpu ? SATTN_GPU : SATTN_CPU;
  });
}

int sattn_slim_cache_length(const sattn_slim_cache *cache, int64_t b, int64_t h, int64_t *length,
                            int64_t *capacity) {
  return guarded(__func__, [&] {
    const sattn::SlimCache &c = *deref(cache, "cache").cache;
    deref(length, "length") = c.length(b, h);
    if (capacity)
      *capacity = c.capacity(b, h);
  });
}

int sattn_slim_cache_append(sattn_slim_cache *cache, const sattn_tensor *k, const sattn_tensor *v,
                            void *stream) {
  return guarded(__func__, [&] {
    sattn::SlimCache &c = *deref(cache, "cache").cache;
    deref(k, "k"), deref(v, "v");
    c.append(views(k, 1, "k")[0], views(v, 1, "v")[0], stream);
  });
}

int sattn_slim_cache_destroy(sattn_slim_cache *cache) {
  return guarded(__func__, [&] { delete cache; });
}

int sattn_program_num_inputs(const sattn_program *program, int *out) {
  return guarded(__func__,
                 [&] { deref(out, "out") = int(deref(program, "program").inputs.size()); });
}

int sattn_program_num_outputs(const sattn_program *program, int *out) {
  return guarded(__func__,
                 [&] { deref(out, "out") = int(deref(program, "program").outputs.size()); });
}

int sattn_program_device(const sattn_program *program, int *out) {
  return guarded(__func__, [&] {
    bool gpu = deref(program, "program").program->device() == sattn::Device::Gpu;
    deref(out, "out") = gpu ? SATTN_GPU : SATTN_CPU;
  });
}

int sattn_program_input_info(const sattn_program *program, int index, sattn_arg_info *out) {
  return guarded(__func__,
                 [&] { deref(out, "out") = argInfo(deref(program, "program"), index, false); });
}

int sattn_program_output_info(const sattn_program *program, int index, sattn_arg_info *out) {
  return guarded(__func__,
                 [&] { deref(out, "out") = argInfo(deref(program, "program"), index, true); });
}

int sattn_program_input_name(const sattn_program *program, int index, char *buf, size_t n,
                             size_t *needed) {
  return guarded(__func__, [&] {
    const auto &names = deref(program, "program").program->inputNames();
    if (index < 0 || size_t(index) >= names.size())
      throw ArgError("index " + std::to_string(index) + " is out of range (the program has " +
                     std::to_string(names.size()) + " inputs)");
    copyOut(names[size_t(index)], buf, n, needed);
  });
}

int sattn_program_key(const sattn_program *program, char *buf, size_t n) {
  return guarded(__func__, [&] { copyOutExact(deref(program, "program").program->key(), buf, n); });
}

int sattn_program_lowered_ir(const sattn_program *program, char *buf, size_t n, size_t *needed) {
  return guarded(__func__,
                 [&] { copyOut(deref(program, "program").program->loweredIR(), buf, n, needed); });
}

int sattn_program_cuda_source(const sattn_program *program, char *buf, size_t n, size_t *needed) {
  return guarded(__func__,
                 [&] { copyOut(deref(program, "program").program->cudaSource(), buf, n, needed); });
}

int sattn_program_destroy(sattn_program *program) {
  return guarded(__func__, [&] { delete program; });
}

} // extern "C"
