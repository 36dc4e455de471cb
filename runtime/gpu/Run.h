//===- Run.h - one run of a compiled program (internal to runtime/gpu) ----===//
//
// The state of one CompiledProgram::run: the values bound to the plan's
// value ids (RtValue), the stream-ordered workspace, and one launcher per
// device template. Each launch's parameter block is filled from its
// operand values; the grid shapes follow the contract written beside each
// struct in codegen/device/params.cuh. The attention, estimation and
// selection launchers are defined here; the OmniSparse ones (decode,
// kv_slim, classify_queries) in LaunchOmniSparse.cpp.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/gpu/Executor.h"

#include "codegen/Nvrtc.h"

#include "codegen/device/params.cuh"
#include "codegen/device/attention_mma.cuh"
#include "codegen/device/attention_wgmma.cuh"
#include "codegen/device/antidiag.cuh"
#include "codegen/device/estimation.cuh"
#include "codegen/device/fused_select.cuh"
#include "runtime/gpu/AttnTma.h"
#include "runtime/gpu/Driver.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace sattn::gpu::detail {

namespace dev = sattn::dev;

/// NVRTC output (cubin, or PTX for a newer GPU) of `source` through the
/// disk cache, keyed by the source, the toolchain and the architecture.
std::string compileCached(const std::string &source, const std::string &name,
                          const codegen::Arch &arch, const cache::DiskCache &cache,
                          cache::Outcome *outcome);

/// Launch `l`'s constants as a CUDA config struct `name`, as
/// codegen/Emitter.cpp writes them (for kernels the runtime builds itself:
/// the backward module, the copy-load attention).
std::string cfgStruct(const Launch &l, const std::string &name);

inline int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// A value during one run.
struct RtValue {
  ValueKind kind = ValueKind::Tensor4;
  CUdeviceptr p0 = 0, p1 = 0; // data (or counts), indices
  int B = 0, H = 0, S = 0, D = 0;
  int64_t sb = 0, sh = 0, ss = 0;
  int Sq = 0, Skv = 0, nQB = 0, nKB = 0, cap = 0;
  /// A user block list bound to a block-set argument (semantics §14):
  /// [B, H, nQB, cap] int32 at p0 with strides sb, sh, ss, not yet normalised.
  bool list = false;
  std::string name; ///< the argument's name, for messages
  /// An integer input (ValueKind::Ints): its shape and element strides.
  std::vector<int64_t> shape, strides;
  bool i64 = false;
};

/// Whether a launch is a prefill attention, and where its optional operands
/// sit: q, k, v, then the block set (HAS_BLOCKS), then the query set
/// (HAS_QUERIES); -1 when absent.
inline bool isAttention(const Launch &l) {
  const std::string &t = l.deviceTemplate;
  return t == "attn_fwd" || t == "attn_fwd_mma" || t == "attn_fwd_wgmma";
}
struct AttnOperands {
  int blocks = -1, queries = -1, vslash = -1;
};
inline AttnOperands attnOperands(const Launch &l) {
  AttnOperands a;
  int next = 3;
  if (l.b("HAS_BLOCKS"))
    a.blocks = next++;
  if (l.b("HAS_QUERIES"))
    a.queries = next++;
  if (l.consts.count("HAS_VSLASH") && l.b("HAS_VSLASH"))
    a.vslash = next++;
  return a;
}

inline dev::Tensor4 view(const RtValue &v) {
  return dev::Tensor4{reinterpret_cast<void *>(v.p0), v.sb, v.sh, v.ss, v.B, v.H, v.S, v.D};
}

inline dev::BlockSetView setView(const RtValue &v) {
  return dev::BlockSetView{
      reinterpret_cast<int *>(v.p0), reinterpret_cast<int *>(v.p1), v.B, v.H, v.nQB, v.nKB, v.cap};
}

inline const char *elemName(Elem e) {
  switch (e) {
  case Elem::BF16:
    return "bf16";
  case Elem::FP16:
    return "fp16";
  case Elem::F32:
    return "f32";
  case Elem::I32:
    return "i32";
  case Elem::I64:
    return "i64";
  }
  return "?";
}

class Run {
public:
  Run(const CompiledProgram &prog, const std::map<std::string, CUfunction> &fns, CUstream stream,
      RunOptions *opts)
      : prog(prog), plan(prog.plan()), fns(fns), stream(stream), opts(opts), drv(Driver::get()),
        vals(plan.values.size()) {}

  ~Run() {
    for (CUdeviceptr p : workspace)
      drv.cuMemFreeAsync_(p, stream); // stream-ordered: after the kernels
  }

  void bindArgs(const std::vector<DeviceTensor> &args) {
    bindArgs(std::vector<std::optional<DeviceTensor>>(args.begin(), args.end()));
  }

  /// Binds the arguments by position; an absent one stays unbound (for
  /// entry points that run only some launches: Program::slim / decode).
  void bindArgs(const std::vector<std::optional<DeviceTensor>> &args) {
    if (args.size() != plan.args.size())
      throw GpuError("the variant takes " + std::to_string(plan.args.size()) + " inputs, " +
                     std::to_string(args.size()) + " were given");
    for (size_t i = 0; i < args.size(); ++i) {
      if (!args[i])
        continue;
      const ValueInfo &info = plan.values[plan.args[i]];
      vals[plan.args[i]] = info.kind == ValueKind::Blocks
                               ? listValue(*args[i], info, plan.argNames[i])
                               : tensorValue(*args[i], info, plan.argNames[i]);
    }
    // Q/K/V agreement: batch of every rank-4 input and block list (a paged
    // cache's dimension 0 counts pages, not sequences).
    std::set<int> paged;
    for (const Launch &l : plan.launches)
      if (l.deviceTemplate == "decode_attn" && l.b("PAGED"))
        paged.insert({l.operands[1], l.operands[2]});
    int batch = -1;
    for (size_t i = 0; i < args.size(); ++i) {
      const RtValue &v = vals[plan.args[i]];
      if (!args[i] || (v.kind != ValueKind::Tensor4 && !v.list) || paged.count(plan.args[i]))
        continue;
      if (batch >= 0 && v.B != batch)
        throw GpuError("input '" + plan.argNames[i] + "' has batch " + std::to_string(v.B) +
                       " but an earlier input has " + std::to_string(batch));
      batch = v.B;
    }
  }

  void bindResults(const std::vector<DeviceTensor> &results) {
    if (results.size() != plan.results.size())
      throw GpuError("the variant returns " + std::to_string(plan.results.size()) + " tensors, " +
                     std::to_string(results.size()) + " buffers were given");
    for (size_t i = 0; i < results.size(); ++i)
      bound[plan.results[i]] = results[i];
  }

  /// Runs launches [first, last) (all by default) in order.
  void execute(size_t first = 0, size_t last = SIZE_MAX) {
    last = std::min(last, plan.launches.size());
    first = std::min(first, last);
    std::vector<CUevent> events;
    if (opts && opts->timePhases) {
      events.resize(last - first + 1);
      for (CUevent &e : events)
        drv.check(drv.cuEventCreate_(&e, CU_EVENT_DEFAULT), "creating a timing event");
      drv.check(drv.cuEventRecord_(events[0], stream), "recording an event");
    }
    for (size_t i = first; i < last; ++i) {
      launch(plan.launches[i]);
      if (!events.empty())
        drv.check(drv.cuEventRecord_(events[i - first + 1], stream), "recording an event");
    }
    if (!events.empty()) {
      drv.check(drv.cuEventSynchronize_(events.back()), "waiting for the kernels");
      std::vector<std::pair<std::string, double>> phases;
      for (size_t i = first; i < last; ++i) {
        float ms = 0;
        drv.check(drv.cuEventElapsedTime_(&ms, events[i - first], events[i - first + 1]),
                  "timing a kernel");
        phases.push_back({plan.launches[i].kernel, ms});
      }
      for (CUevent e : events)
        drv.cuEventDestroy_(e);
      phasesOut = std::move(phases);
    }
    if (opts && opts->dump)
      for (size_t i = first; i < last; ++i)
        for (int r : plan.launches[i].results)
          dumpValue(plan.launches[i].kernel, r);
    if (opts && opts->selection)
      selectionSets(*opts->selection);
  }

  std::vector<std::pair<std::string, double>> phasesOut;

  /// Decode launches read this slimmed cache instead of their k, v and
  /// token set (Program::decode).
  const SlimStorage *slimCache = nullptr;

  const RtValue &value(int id) const { return vals.at(size_t(id)); }

  template <typename T> std::vector<T> download(CUdeviceptr p, size_t n) {
    std::vector<T> host(n);
    if (n)
      drv.check(drv.cuMemcpyDtoHAsync_(host.data(), p, n * sizeof(T), stream), "copying back");
    drv.check(drv.cuStreamSynchronize_(stream), "waiting for the kernels");
    return host;
  }

  /// Launches `fn` on the stream (nothing for an empty grid), raising its
  /// dynamic shared-memory limit above 48 KB; `maxCarveout`: kernels that
  /// rely on two CTAs per SM ask for the largest shared-memory carveout, so
  /// the driver's L1/shared split cannot leave room for one.
  void goFunction(CUfunction fn, const std::string &name, unsigned gx, unsigned gy, unsigned gz,
                  unsigned threads, void *params, unsigned smem = 0, bool maxCarveout = false) {
    if (gx == 0 || gy == 0 || gz == 0)
      return;
    if (smem > 48 * 1024)
      drv.check(drv.cuFuncSetAttribute_(fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                        int(smem)),
                "raising the shared-memory limit");
    if (maxCarveout)
      drv.check(drv.cuFuncSetAttribute_(fn, CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT, 100),
                "setting the shared-memory carveout");
    void *args[] = {params};
    drv.check(drv.cuLaunchKernel_(fn, gx, gy, gz, threads, 1, 1, smem, stream, args, nullptr),
              ("launching " + name).c_str());
  }

  /// For entry points outside the plan's launches (CompiledProgram::backward):
  /// a checked view of a caller's [B, H, S, D] tensor, and stream-ordered
  /// workspace freed with the run.
  RtValue tensor(const DeviceTensor &t, const ValueInfo &info, const std::string &name) {
    return tensorValue(t, info, name);
  }
  CUdeviceptr scratch(size_t bytes) { return alloc(bytes); }
  /// The attention's vertical-slash operand: binds p.vs and gathers the
  /// columns' K / V rows (<kernel>_vsgather; the backward reuses it).
  void bindVSlash(const Launch &l, const RtValue &vs, dev::AttnParams &p);

private:
  RtValue tensorValue(const DeviceTensor &t, const ValueInfo &info, const std::string &name) {
    RtValue v;
    v.kind = info.kind;
    v.p0 = t.ptr;
    if (info.kind == ValueKind::Ints)
      return intsValue(t, info, name);
    if (info.kind != ValueKind::Tensor4)
      throw GpuError("input '" + name +
                     "': the GPU runtime binds only [B, H, S, D] tensors so far");
    if (t.shape.size() != 4 || t.strides.size() != 4)
      throw GpuError("input '" + name + "' must be rank 4 [B, H, S, D], got rank " +
                     std::to_string(t.shape.size()));
    if (t.elem != info.elem)
      throw GpuError("input '" + name + "' is " + elemName(t.elem) + " but the variant expects " +
                     elemName(info.elem));
    if (t.shape[1] != info.heads || t.shape[3] != info.dim)
      throw GpuError("input '" + name + "' has " + std::to_string(t.shape[1]) +
                     " heads and head dim " + std::to_string(t.shape[3]) +
                     "; the variant expects " + std::to_string(info.heads) + " and " +
                     std::to_string(info.dim));
    if (info.seqStatic >= 0 && t.shape[2] != info.seqStatic)
      throw GpuError("input '" + name + "' has length " + std::to_string(t.shape[2]) +
                     "; the variant fixes it to " + std::to_string(info.seqStatic));
    if (t.strides[3] != 1)
      throw GpuError("input '" + name + "' must have a contiguous last dimension (stride 1), got " +
                     std::to_string(t.strides[3]));
    if (t.ptr % 16 != 0)
      throw GpuError("input '" + name + "' must be 16-byte aligned");
    v.B = int(t.shape[0]), v.H = int(t.shape[1]), v.S = int(t.shape[2]), v.D = int(t.shape[3]);
    v.sb = t.strides[0], v.sh = t.strides[1], v.ss = t.strides[2];
    return v;
  }

  /// An integer input (page table, lengths, segments): its dtype must be
  /// the declared one; shape and strides are checked by the launch using it.
  RtValue intsValue(const DeviceTensor &t, const ValueInfo &info, const std::string &name) {
    if (t.elem != info.elem)
      throw GpuError("input '" + name + "' is " + elemName(t.elem) + " but the variant expects " +
                     elemName(info.elem));
    if (t.shape.empty() || t.shape.size() > 3 || t.strides.size() != t.shape.size())
      throw GpuError("input '" + name + "' has rank " + std::to_string(t.shape.size()) +
                     "; integer inputs have rank 1 to 3");
    if (t.ptr % (info.elem == Elem::I64 ? 8 : 4) != 0)
      throw GpuError("input '" + name + "' is not aligned to its element size");
    for (int64_t d : t.shape)
      if (d > INT32_MAX)
        throw GpuError("input '" + name + "' has a dimension above 2^31 - 1");
    RtValue v;
    v.kind = ValueKind::Ints, v.name = name, v.p0 = t.ptr;
    v.shape = t.shape, v.strides = t.strides, v.i64 = info.elem == Elem::I64;
    v.B = int(t.shape[0]);
    return v;
  }

  /// A block-set argument: the user's int32 list [B, H, nQB, cap]. Its
  /// rows are checked against q where it is normalised (blocks_from_list);
  /// its entries are not read here (that would need a sync).
  RtValue listValue(const DeviceTensor &t, const ValueInfo &info, const std::string &name) {
    std::string what = "block-set input '" + name + "'";
    std::string form = "an int32 tensor [B, " + std::to_string(info.heads) +
                       ", nQB, cap] of KV block indices (-1 for unused slots)";
    if (t.shape.size() != 4 || t.strides.size() != 4)
      throw GpuError(what + " must be " + form + ", got rank " + std::to_string(t.shape.size()));
    if (t.elem != Elem::I32)
      throw GpuError(what + " is " + elemName(t.elem) + "; it must be " + form);
    if (t.shape[1] != info.heads)
      throw GpuError(what + " has " + std::to_string(t.shape[1]) +
                     " heads (dimension 1) but its type !sattn.blocks<..., heads = " +
                     std::to_string(info.heads) + "> needs " + std::to_string(info.heads) +
                     "; give one list per (batch, head of the set, query block)");
    if (t.shape[3] < 1)
      throw GpuError(what + " has cap " + std::to_string(t.shape[3]) +
                     " (dimension 3); give at least one slot per row (a row of -1 selects no "
                     "block)");
    if (t.shape[3] > 1 && t.strides[3] != 1)
      throw GpuError(what + " must have a contiguous last dimension (stride 1), got " +
                     std::to_string(t.strides[3]));
    if (t.ptr % 4 != 0)
      throw GpuError(what + " must be 4-byte aligned");
    for (int64_t d : t.shape)
      if (d > INT32_MAX)
        throw GpuError(what + " has a dimension above 2^31 - 1");
    RtValue v;
    v.kind = ValueKind::Blocks, v.list = true, v.name = name, v.p0 = t.ptr;
    v.B = int(t.shape[0]), v.H = int(t.shape[1]), v.nQB = int(t.shape[2]), v.cap = int(t.shape[3]);
    v.sb = t.strides[0], v.sh = t.strides[1], v.ss = t.strides[2];
    return v;
  }

  CUdeviceptr alloc(size_t bytes) {
    CUdeviceptr p = drv.allocWorkspace(bytes, stream);
    workspace.push_back(p);
    return p;
  }

  /// The output tensor for result `id`: the caller's buffer when the
  /// function returns it, else workspace shaped like `like`.
  RtValue outTensor(int id, const RtValue &like, int heads) {
    RtValue v = like;
    v.H = heads;
    if (auto it = bound.find(id); it != bound.end()) {
      RtValue user = tensorValue(it->second, plan.values[id], "result");
      if (user.B != like.B || user.S != like.S)
        throw GpuError("the result buffer has shape [" + std::to_string(user.B) + ", ., " +
                       std::to_string(user.S) + ", .]; expected batch " + std::to_string(like.B) +
                       " and length " + std::to_string(like.S));
      return user;
    }
    v.ss = v.D, v.sh = int64_t(v.S) * v.D, v.sb = int64_t(heads) * v.S * v.D;
    v.p0 = alloc(size_t(v.B) * heads * v.S * v.D * 2);
    return v;
  }

  CUdeviceptr lseBuffer(int id, int B, int H, int S) {
    if (auto it = bound.find(id); it != bound.end()) {
      const DeviceTensor &t = it->second;
      if (t.elem != Elem::F32 || t.shape != std::vector<int64_t>{B, H, S})
        throw GpuError("the LSE buffer must be f32 [" + std::to_string(B) + ", " +
                       std::to_string(H) + ", " + std::to_string(S) + "] and contiguous");
      return t.ptr;
    }
    return alloc(size_t(B) * H * S * 4);
  }

  RtValue blockSet(const ValueInfo &info, int B, int Sq, int Skv, int capConst) {
    RtValue v;
    v.kind = ValueKind::Blocks;
    v.B = B, v.H = int(info.heads), v.Sq = Sq, v.Skv = Skv;
    v.nQB = int(cdiv(Sq, info.bq)), v.nKB = int(cdiv(Skv, info.bk));
    v.cap = capConst > 0 ? std::min(capConst, v.nKB) : v.nKB;
    if (v.cap == 0)
      v.cap = 1;
    size_t rows = size_t(B) * v.H * v.nQB;
    v.p0 = alloc(rows * 4);
    v.p1 = alloc(rows * v.cap * 4);
    return v;
  }

  void go(const Launch &l, unsigned gx, unsigned gy, unsigned gz, unsigned threads, unsigned smem,
          void *params, bool maxCarveout = false) {
    goNamed(l.kernel, gx, gy, gz, threads, smem, params, maxCarveout);
  }

  /// Launches kernel `name` of the module: a plan launch's own kernel or
  /// one of its companions (codegen::companionKernels).
  void goNamed(const std::string &name, unsigned gx, unsigned gy, unsigned gz, unsigned threads,
               unsigned smem, void *params, bool maxCarveout = false) {
    if (gx == 0 || gy == 0 || gz == 0)
      return; // empty problem (e.g. Sq = 0): nothing to launch
    auto it = fns.find(name);
    if (it == fns.end())
      throw GpuError("internal: kernel " + name + " missing from the module");
    goFunction(it->second, name, gx, gy, gz, threads, params, smem, maxCarveout);
  }

  /// The operands of a block_scores or fused scores_select launch (qp, kp,
  /// [k_max with BOUND], q, k, ...), checked, as ScoresParams without an
  /// output; `s` gets the scores' shape (no storage).
  dev::ScoresParams scoresParams(const Launch &l, RtValue &s) {
    auto op = [&](size_t i) -> RtValue & { return vals[l.operands.at(i)]; };
    // Operands: qp, kp, [k_max with BOUND], q, k.
    const bool bound = l.b("BOUND");
    const RtValue &qp = op(0), &kp = op(1), &q = op(bound ? 3 : 2), &k = op(bound ? 4 : 3);
    const RtValue *kmax = bound ? &op(2) : nullptr;
    const int64_t cq = l.i("Q_GROUP"), ck = l.i("K_GROUP");
    // The kernel reads the pooled tensors as contiguous f32 rows.
    for (const RtValue *x : {&qp, &kp, kmax})
      if (x && (x->ss != x->D || x->sh != int64_t(x->S) * x->D ||
                x->sb != int64_t(x->H) * x->S * x->D))
        throw GpuError("on the GPU, the pooled operands of sattn.scores must be contiguous "
                       "[B, H, S, D] f32 tensors; pass a contiguous copy");
    // Pooled operands may be inputs (e.g. Quest page bounds kept beside a
    // cache): their lengths must match the tensors they summarise.
    if (qp.B != q.B || qp.S != cdiv(q.S, cq))
      throw GpuError("sattn.scores: pooled q is [" + std::to_string(qp.B) + ", " +
                     std::to_string(qp.S) + "] (batch, rows) but q has batch " +
                     std::to_string(q.B) + " and " + std::to_string(q.S) +
                     " queries, which pool into " + std::to_string(cdiv(q.S, cq)) +
                     " rows of q_group " + std::to_string(cq));
    for (const RtValue *x : {&kp, kmax})
      if (x && (x->B != k.B || x->S != cdiv(k.S, ck)))
        throw GpuError(std::string("sattn.scores: ") + (x == kmax ? "k_max" : "pooled k") +
                       " is [" + std::to_string(x->B) + ", " + std::to_string(x->S) +
                       "] (batch, groups) but k has batch " + std::to_string(k.B) + " and " +
                       std::to_string(k.S) + " keys, which pool into " +
                       std::to_string(cdiv(k.S, ck)) + " groups of k_group " +
                       std::to_string(ck));
    s.kind = ValueKind::Scores, s.B = q.B, s.H = q.H, s.Sq = q.S, s.Skv = k.S;
    s.nQB = int(cdiv(q.S, l.i("BQ"))), s.nKB = int(cdiv(k.S, l.i("BK")));
    return dev::ScoresParams{reinterpret_cast<const float *>(qp.p0),
                             reinterpret_cast<const float *>(kp.p0),
                             nullptr,
                             q.B,
                             qp.S,
                             kp.S,
                             q.S,
                             k.S,
                             s.nQB,
                             s.nKB,
                             kmax ? reinterpret_cast<const float *>(kmax->p0) : nullptr,
                             nullptr,
                             nullptr};
  }

  /// The selection side of select_topk / select_cumulative / head_budget
  /// (plain or fused) over scores of shape `s`; the selection's operands
  /// after its scores start at operand `rest`. Allocates the result (a
  /// zeroed budget, or a block set) and records it.
  dev::SelectParams selectParams(const Launch &l, const RtValue &s, size_t rest) {
    const std::string &t = l.deviceTemplate;
    dev::SelectParams p{};
    p.B = s.B, p.H = s.H, p.nQB = s.nQB, p.nKB = s.nKB, p.Sq = s.Sq, p.Skv = s.Skv;
    if (t == "head_budget" || t == "scores_head_budget") {
      const ValueInfo &bi = plan.values[l.results[0]];
      RtValue b;
      b.kind = ValueKind::Budget, b.B = s.B, b.H = int(bi.heads), b.nQB = s.nQB;
      b.Sq = s.Sq, b.Skv = s.Skv;
      b.p0 = alloc(size_t(b.B) * b.H * b.nQB * 4);
      drv.check(drv.cuMemsetD32Async_(b.p0, 0, size_t(b.B) * b.H * b.nQB, stream),
                "clearing the budget");
      p.budget_out = reinterpret_cast<int *>(b.p0);
      p.k = -1;
      vals[l.results[0]] = b;
      return p;
    }
    int64_t k = l.i("K");
    if (k > s.nKB)
      throw GpuError("budget k=" + std::to_string(k) + " is out of range [0, " +
                     std::to_string(s.nKB) + "] (ceil(Skv/Bk) with Skv=" + std::to_string(s.Skv) +
                     ", Bk=" + std::to_string(l.i("BK")) + "); pass a budget between 0 and " +
                     std::to_string(s.nKB));
    p.k = int(k);
    if (l.b("HAS_BUDGET")) {
      const RtValue &b = vals[l.operands.at(rest)];
      p.budget = reinterpret_cast<const int *>(b.p0);
      p.budgetHeads = b.H;
    }
    RtValue out = blockSet(plan.values[l.results[0]], s.B, s.Sq, s.Skv, int(l.i("CAP")));
    p.out = setView(out);
    vals[l.results[0]] = out;
    return p;
  }

  void launch(const Launch &l) {
    const std::string &t = l.deviceTemplate;
    auto op = [&](size_t i) -> RtValue & { return vals[l.operands.at(i)]; };
    if (isAttention(l)) {
      bool mma = t == "attn_fwd_mma", wgmma = t == "attn_fwd_wgmma";
      int rows = mma ? int(l.i("TILE_M")) : dev::kAttnRowsPerCta;
      const RtValue &q = op(0), &k = op(1), &v = op(2);
      if (k.S != v.S)
        throw GpuError("k and v have different lengths (" + std::to_string(k.S) + " and " +
                       std::to_string(v.S) + ")");
      dev::AttnParams p{};
      p.q = view(q), p.k = view(k), p.v = view(v);
      const AttnOperands at = attnOperands(l);
      int tiles = int(cdiv(q.S, rows));
      if (at.blocks >= 0) {
        const RtValue &bs = op(size_t(at.blocks));
        if (bs.list)
          throw GpuError("internal: block list '" + bs.name + "' reached " + l.kernel +
                         " without blocks_from_list");
        if (bs.Sq != q.S || bs.Skv != k.S)
          throw GpuError("the block set was built for other lengths");
        p.blocks = setView(bs);
        tiles = bs.nQB * int(cdiv(l.i("SET_BQ"), rows));
      }
      if (at.queries >= 0) {
        const RtValue &qs = op(size_t(at.queries));
        if (qs.kind != ValueKind::Queries || qs.B != q.B || qs.H != q.H || qs.S != q.S)
          throw GpuError("the query set was built for other shapes than this attention's q");
        p.q_counts = reinterpret_cast<int *>(qs.p0);
        p.q_rows = reinterpret_cast<int *>(qs.p1);
      }
      if (at.vslash >= 0)
        bindVSlash(l, op(size_t(at.vslash)), p);
      RtValue o = outTensor(l.results[0], q, q.H);
      p.o = view(o);
      vals[l.results[0]] = o;
      if (l.b("HAS_LSE")) {
        p.lse = reinterpret_cast<float *>(lseBuffer(l.results[1], q.B, q.H, q.S));
        RtValue lse;
        lse.kind = ValueKind::Lse, lse.p0 = CUdeviceptr(p.lse), lse.B = q.B, lse.H = q.H,
        lse.S = q.S;
        vals[l.results[1]] = lse;
      }
      if (wgmma) {
        const dev::AttnWgmmaShape shape =
            at.vslash >= 0 ? dev::AttnWgmmaShape{true, 64, 64, false}
                           : dev::AttnWgmmaShape{l.b("HAS_BLOCKS"), int(l.i("SET_BQ")),
                                                 int(l.i("SET_BK")), l.b("HAS_QUERIES"),
                                                 l.consts.count("CONSUMER_WGS")
                                                     ? int(l.i("CONSUMER_WGS"))
                                                     : 0};
        bindAttnTma(drv.cuTensorMapEncodeTiled_, p, plan.dtype == "fp16",
                    dev::kAttnWgmmaWarpgroupRows, dev::attn_wgmma_tma_box(shape));
        if (at.vslash >= 0 && p.tma) { // the gathered columns: [B, Hq, nv, D], contiguous
          const int box = dev::attn_wgmma_tma_box(shape), D = q.D;
          auto gathered = [&](void *ptr) {
            const int rows = std::max(p.vs.nv, 1); // as allocated (bindVSlash)
            return dev::Tensor4{ptr, int64_t(q.H) * rows * D, int64_t(rows) * D, D, q.B, q.H, rows,
                                D};
          };
          p.tma = encodeAttnTma(drv.cuTensorMapEncodeTiled_, gathered(p.vs.kc),
                                plan.dtype == "fp16", box, p.tkc) &&
                          encodeAttnTma(drv.cuTensorMapEncodeTiled_, gathered(p.vs.vc),
                                        plan.dtype == "fp16", box, p.tvc)
                      ? 1
                      : 0;
        }
        int nQB = at.vslash >= 0 ? int(cdiv(q.S, 64))
                  : shape.blocks ? op(size_t(at.blocks)).nQB
                                 : 0;
        long long items = dev::attn_wgmma_items(q.S, shape, nQB, q.H, q.B);
        // Dynamic work items: a counter zeroed in stream order before the launch.
        CUdeviceptr counter = alloc(sizeof(int));
        drv.check(drv.cuMemsetD32Async_(counter, 0, 1, stream), "clearing the work-item counter");
        p.next_item = reinterpret_cast<int *>(counter);
        long long grid = l.consts.count("PERSISTENT") && l.i("PERSISTENT") == 0
                             ? items // one CTA per item (the counter hands them out in order)
                             : dev::attn_wgmma_grid(items, drv.multiprocessors(), shape);
        const unsigned threads = unsigned(dev::attn_wgmma_threads(shape)),
                       smem = unsigned(dev::attn_wgmma_smem_bytes(int(l.i("HEAD_DIM")), shape));
        const bool twoPerSm = dev::attn_wgmma_min_blocks(shape) > 1;
        // A TMA-only kernel (TMA = 1) cannot load these views: its copy-load
        // variant, compiled the first time this happens (also for Skv = 0,
        // which no tensor map describes). An empty grid launches nothing.
        if (grid > 0 && !p.tma && l.consts.count("TMA") && l.i("TMA") == 1)
          goFunction(prog.copyLoadKernel(l), l.kernel + "_copy", unsigned(grid), 1, 1, threads, &p,
                     smem, twoPerSm);
        else
          go(l, unsigned(grid), 1, 1, threads, smem, &p, twoPerSm);
      } else if (mma)
        go(l, tiles, q.H, q.B, dev::kAttnMmaThreads,
           unsigned(dev::attn_mma_smem_bytes(int(l.i("HEAD_DIM")), rows)), &p);
      else
        go(l, tiles, q.H, q.B, dev::kAttnThreads, 0, &p);
    } else if (t == "pool") {
      const RtValue &in = op(0);
      const ValueInfo &outInfo = plan.values[l.results[0]];
      if (in.kind != ValueKind::Tensor4 || outInfo.elem != Elem::F32)
        throw GpuError("on the GPU, sattn.pool reads Q/K and writes f32 (declare the pooled "
                       "tensor as f32)");
      RtValue out = in;
      out.S = int(cdiv(in.S, l.i("GROUP")));
      out.ss = out.D, out.sh = int64_t(out.S) * out.D, out.sb = int64_t(out.H) * out.S * out.D;
      out.p0 = alloc(size_t(out.B) * out.H * out.S * out.D * 4);
      dev::PoolParams p{view(in), reinterpret_cast<float *>(out.p0), out.S};
      vals[l.results[0]] = out;
      go(l, out.S, in.H, in.B, dev::kPoolThreads, 0, &p);
    } else if (t == "block_scores") {
      RtValue s;
      dev::ScoresParams p = scoresParams(l, s);
      s.p0 = alloc(size_t(s.B) * s.H * s.nQB * s.nKB * 4);
      p.out = reinterpret_cast<float *>(s.p0);
      const bool bound = l.b("BOUND");
      const int64_t cq = l.i("Q_GROUP"), ck = l.i("K_GROUP");
      vals[l.results[0]] = s;
      const int D = int(l.i("HEAD_DIM"));
      const bool mma = !bound && dev::scores_mma(D, int(l.i("BQ") / cq), int(l.i("BK") / ck));
      if (mma && !dev::scores_one_pass(int(l.i("BQ") / cq)))
        go(l, unsigned(cdiv(p.nq, dev::kScoresMmaRows)), s.H, s.B, dev::kScoresThreads,
           unsigned(dev::scores_2pass_smem_bytes(D)), &p);
      else if (mma) {
        // Tensor cores: persistent CTAs, a workspace slot each, items from
        // a counter zeroed in stream order (codegen/device/estimation.cuh).
        const long long grid =
            dev::scores_mma_grid(dev::scores_mma_items(p.nq, s.H, s.B), drv.multiprocessors());
        if (grid == 0)
          return; // no pooled rows: the scores are empty
        p.ws = reinterpret_cast<float *>(
            alloc(size_t(dev::scores_ws_floats(grid, s.nKB)) * sizeof(float)));
        CUdeviceptr counter = alloc(sizeof(int));
        drv.check(drv.cuMemsetD32Async_(counter, 0, 1, stream), "clearing the work-item counter");
        p.next_item = reinterpret_cast<int *>(counter);
        go(l, unsigned(grid), 1, 1, dev::kScoresThreads, unsigned(dev::scores_mma_smem_bytes(D)),
           &p);
      } else {
        if (int64_t(s.nKB) * 4 > kMaxSmemPerSm)
          throw GpuError("sattn.scores: Skv = " + std::to_string(s.Skv) + " gives " +
                         std::to_string(s.nKB) + " KV blocks of " + std::to_string(l.i("BK")) +
                         ", more than the CUDA-core block_scores' shared-memory row holds (" +
                         std::to_string(kMaxSmemPerSm / 4) + "); use larger KV blocks");
        go(l, s.nQB, s.H, s.B, dev::kScoresThreads, unsigned(s.nKB * 4), &p);
      }
    } else if (t == "mean_scores") {
      RtValue s = op(0);
      dev::MeanScoresParams p{};
      for (size_t i = 0; i < l.operands.size(); ++i)
        p.in[i] = reinterpret_cast<const float *>(op(int(i)).p0);
      p.n = (long long)s.B * s.H * s.nQB * s.nKB;
      s.p0 = alloc(size_t(p.n) * 4);
      p.out = reinterpret_cast<float *>(s.p0);
      vals[l.results[0]] = s;
      // About four waves of 132 SMs; the loop strides over the rest.
      go(l, unsigned(std::min<long long>(cdiv(p.n, dev::kMeanScoresThreads), 2048)), 1, 1,
         dev::kMeanScoresThreads, 0, &p);
    } else if (t == "antidiag_scores") {
      const RtValue &q = op(0), &k = op(1);
      RtValue s;
      s.kind = ValueKind::Scores, s.B = q.B, s.H = q.H, s.Sq = q.S, s.Skv = k.S;
      s.nQB = int(cdiv(q.S, l.i("BQ"))), s.nKB = int(cdiv(k.S, l.i("BK")));
      const int D = int(l.i("HEAD_DIM")), stride = int(l.i("STRIDE"));
      s.p0 = alloc(size_t(s.B) * s.H * s.nQB * s.nKB * 4);
      dev::AntidiagParams p{view(q), view(k), reinterpret_cast<float *>(s.p0), s.nQB, s.nKB,
                            nullptr, nullptr};
      vals[l.results[0]] = s;
      if (dev::antidiag_mma(D, stride, int(l.i("BQ")), int(l.i("BK")))) {
        // Tensor cores: persistent CTAs, a workspace slot each, items from
        // a counter zeroed in stream order (codegen/device/antidiag.cuh).
        long long grid = dev::antidiag_mma_grid(dev::antidiag_mma_items(q.S, stride, s.H, s.B),
                                                drv.multiprocessors());
        if (grid == 0)
          return; // no query rows
        p.ws = reinterpret_cast<float *>(
            alloc(size_t(dev::antidiag_ws_floats(grid, s.nKB)) * sizeof(float)));
        CUdeviceptr counter = alloc(sizeof(int));
        drv.check(drv.cuMemsetD32Async_(counter, 0, 1, stream), "clearing the work-item counter");
        p.next_item = reinterpret_cast<int *>(counter);
        go(l, unsigned(grid), 1, 1, dev::kAntidiagMmaThreads,
           unsigned(dev::antidiag_mma_smem_bytes(D)), &p, /*maxCarveout=*/true);
        return;
      }
      long long smem = dev::antidiag_smem_bytes(int(l.i("BQ")), D, s.nKB);
      if (smem > kMaxSmemPerSm)
        throw GpuError("sattn.antidiag_scores: Skv = " + std::to_string(k.S) + " gives " +
                       std::to_string(s.nKB) +
                       " KV blocks, more than the CUDA-core kernel's "
                       "shared memory holds with bq = " +
                       std::to_string(l.i("BQ")) +
                       " (the tensor-core kernel, which has no such limit, needs bk / stride "
                       "in {8, 16, 32, 64} and bq / stride dividing 128); use such blocks or "
                       "the CPU device");
      go(l, s.nQB, s.H, s.B, dev::kAntidiagThreads, unsigned(smem), &p);
    } else if (t == "vertical_slash") {
      launchVerticalSlash(l);
    } else if (t == "vslash") {
      launchVSlash(l);
    } else if (t == "select_cumulative_head") {
      launchSelectHead(l);
    } else if (t == "select_topk" || t == "select_cumulative" || t == "head_budget") {
      const RtValue &s = op(0);
      dev::SelectParams p = selectParams(l, s, 1);
      p.scores = reinterpret_cast<const float *>(s.p0);
      // A row's scores sit in shared memory (selection.cuh).
      if (int64_t(s.nKB) * 4 > kMaxSmemPerSm)
        throw GpuError("sattn." +
                       std::string(t == "head_budget" ? "head_budget" : "select_blocks") +
                       ": Skv = " + std::to_string(s.Skv) + " gives " + std::to_string(s.nKB) +
                       " KV blocks of " + std::to_string(l.i("BK")) +
                       ", more than the selection kernel's shared-memory row holds (" +
                       std::to_string(kMaxSmemPerSm / 4) + "); use larger KV blocks");
      go(l, s.nQB, t == "head_budget" ? s.H : p.out.H, s.B, dev::kSelectThreads,
         unsigned(s.nKB * 4), &p);
    } else if (t == "scores_select_topk" || t == "scores_select_cumulative" ||
               t == "scores_head_budget") {
      // Fused estimation (codegen/device/fused_select.cuh): operands qp, kp,
      // q, k, then the selection's own after its scores.
      RtValue s;
      dev::ScoresSelectParams p{};
      p.s = scoresParams(l, s);
      p.sel = selectParams(l, s, 4);
      const int D = int(l.i("HEAD_DIM")), rows = int(l.i("BQ") / l.i("Q_GROUP"));
      long long limit = drv.maxSmemPerBlock();
      // Test knob: a lower limit forces fewer query blocks per CTA (the
      // long-sequence path) at small sizes (tests/gpu/test_gpu.cpp).
      if (const char *e = std::getenv("SATTN_FUSED_SMEM_LIMIT"))
        limit = std::min(limit, std::atoll(e));
      p.ipc = dev::scores_select_ipc(D, rows, s.nKB, limit);
      if (p.ipc < 1)
        throw GpuError(std::string(t == "scores_head_budget" ? "sattn.head_budget"
                                                             : "sattn.select_blocks") +
                       " fused with its scores: Skv = " + std::to_string(s.Skv) + " gives " +
                       std::to_string(s.nKB) + " KV blocks of " + std::to_string(l.i("BK")) +
                       ", more than one shared-memory row of this GPU holds (" +
                       std::to_string(limit) +
                       " bytes); use larger KV blocks, or compile with fuse-estimation off "
                       "(SATTN_FUSE_ESTIMATION=0)");
      go(l, unsigned(cdiv(s.nQB, p.ipc)), s.H, s.B, dev::kFusedSelectThreads,
         unsigned(dev::scores_select_smem_bytes(D, s.nKB, p.ipc)), &p);
    } else if (t == "static_blocks") {
      const RtValue &q = op(0), &k = op(1);
      RtValue out = blockSet(plan.values[l.results[0]], q.B, q.S, k.S, 0);
      dev::StaticBlocksParams p{q.S, k.S, setView(out)};
      vals[l.results[0]] = out;
      go(l, out.nQB, out.H, out.B, dev::kStaticThreads, 0, &p);
    } else if (t == "block_set_union" || t == "block_set_intersect") {
      const RtValue &a = op(0), &b = op(1);
      int cap = t == "block_set_union" ? std::min(a.nKB, a.cap + b.cap) : std::min(a.cap, b.cap);
      RtValue out = blockSet(plan.values[l.results[0]], a.B, a.Sq, a.Skv, cap);
      dev::SetBinParams p{setView(a), setView(b), setView(out)};
      vals[l.results[0]] = out;
      go(l, out.nQB, out.H, out.B, dev::kSetBinThreads, 0, &p);
    } else if (t == "blocks_from_list") {
      const RtValue &list = op(0), &q = op(1), &k = op(2);
      std::string what = "block-set input '" + list.name + "'";
      int64_t bq = l.i("BQ"), bk = l.i("BK");
      int nQB = int(cdiv(q.S, bq));
      if (!list.list)
        throw GpuError("internal: " + l.kernel + " expects a block-set argument");
      if (list.B != q.B)
        throw GpuError(what + " has batch " + std::to_string(list.B) + " but q has batch " +
                       std::to_string(q.B));
      if (list.nQB != nQB)
        throw GpuError(what + " has " + std::to_string(list.nQB) +
                       " query-block rows (dimension 2) but q has Sq = " + std::to_string(q.S) +
                       " rows, i.e. cdiv(" + std::to_string(q.S) + ", " + std::to_string(bq) +
                       ") = " + std::to_string(nQB) + " query blocks of " + std::to_string(bq) +
                       "; give shape [B, " + std::to_string(list.H) + ", " + std::to_string(nQB) +
                       ", cap]");
      RtValue out = blockSet(plan.values[l.results[0]], q.B, q.S, k.S, list.cap);
      constexpr int kRows = dev::kListThreads / 32;
      size_t smem = size_t(kRows) * size_t(cdiv(out.nKB, 32)) * 4;
      if (smem > 227 * 1024)
        throw GpuError(what + ": Skv = " + std::to_string(k.S) + " gives " +
                       std::to_string(out.nKB) + " KV blocks of " + std::to_string(bk) +
                       ", more than blocks_from_list's shared-memory bitmap holds (" +
                       std::to_string(227 * 1024 * 8 / kRows) + "); use larger KV blocks");
      dev::BlocksFromListParams p{reinterpret_cast<const int *>(list.p0),
                                  list.sb,
                                  list.sh,
                                  list.ss,
                                  list.cap,
                                  setView(out)};
      vals[l.results[0]] = out;
      go(l, unsigned(cdiv(out.nQB, kRows)), out.H, out.B, dev::kListThreads, unsigned(smem), &p);
    } else if (t == "classify_queries") {
      launchClassify(l);
    } else if (t == "decode_attn" || t == "kv_slim_lse") {
      launchDecode(l);
    } else if (t == "kv_slim_scores" || t == "kv_slim_select") {
      launchSlim(l);
    } else {
      throw GpuError("device template '" + t + "' has no GPU launcher in this build");
    }
  }

  // codegen/device/decode.cuh, kv_slim.cuh, classify.cuh launchers
  // (runtime/gpu/LaunchOmniSparse.cpp).
  static int64_t decodeSplits(int64_t base, int64_t tiles, int64_t slots);
  static int64_t decodeSplitsTma(int64_t base, int64_t tiles, int64_t sms);
  /// Shared memory one SM offers its CTAs (sm_90: 227 KB usable per CTA,
  /// 228 KB per SM with 1 KB reserved per CTA).
  static constexpr int kMaxSmemPerSm = 227 * 1024;
  static RtValue observationRows(const RtValue &q, int64_t observe);
  void launchDecode(const Launch &l);
  // FlexPrefill (LaunchPatterns.cpp).
  void launchVerticalSlash(const Launch &l);
  void launchVSlash(const Launch &l);
  void launchLines(const Launch &l, dev::VsParams &p, int B, int Hq, int D, int last);
  ref::VSlashSet hostVSlashSet(const RtValue &v);
  void launchSelectHead(const Launch &l);
  void launchDecodeSlimmed(const Launch &l, const RtValue &q);
  void decodeTma(dev::DecodeParams &p, const dev::Tensor4 &k, const dev::Tensor4 *v);
  /// totalEntries: the entries of all (batch, KV head) when their lengths
  /// differ (a slimmed cache), else 0.
  void decodeOutputs(const Launch &l, const RtValue &q, dev::DecodeParams &p, int64_t maxEntries,
                     bool slim, int64_t totalEntries = 0);
  void launchSlim(const Launch &l);
  void launchClassify(const Launch &l);

  /// A query or token set: counts [B, H] and lists [B, H, S] -> host lists.
  std::vector<std::vector<int32_t>> downloadLists(const RtValue &v) {
    size_t rows = size_t(v.B) * v.H;
    auto counts = download<int>(v.p0, rows);
    auto idx = download<int>(v.p1, rows * size_t(v.S));
    std::vector<std::vector<int32_t>> out(rows);
    for (size_t r = 0; r < rows; ++r)
      out[r].assign(idx.begin() + r * v.S,
                    idx.begin() + r * v.S + std::min(std::max(counts[r], 0), v.S));
    return out;
  }

  ref::BlockSet hostBlockSet(const RtValue &v) {
    ref::BlockSet b;
    b.B = v.B, b.H = v.H, b.nQB = v.nQB, b.nKB = v.nKB, b.Sq = v.Sq, b.Skv = v.Skv;
    size_t rows = size_t(v.B) * v.H * v.nQB;
    auto counts = download<int>(v.p0, rows);
    auto idx = download<int>(v.p1, rows * v.cap);
    b.lists.resize(rows);
    for (size_t r = 0; r < rows; ++r)
      b.lists[r].assign(idx.begin() + r * v.cap,
                        idx.begin() + r * v.cap + std::min(counts[r], v.cap));
    return b;
  }

  ref::QuerySet hostQuerySet(const RtValue &v) {
    ref::QuerySet qs;
    qs.B = v.B, qs.H = v.H, qs.Sq = v.S;
    qs.active = downloadLists(v);
    return qs;
  }

  ref::TokenSet hostTokenSet(const RtValue &v) {
    ref::TokenSet ts;
    ts.B = v.B, ts.H = v.H, ts.Skv = v.S;
    ts.kept = downloadLists(v);
    return ts;
  }

  /// The last prefill attention's sets and mask, and the last kv_slim's
  /// tokens (RunOptions::selection).
  void selectionSets(SelectionSets &out) {
    out = SelectionSets{};
    for (const Launch &l : plan.launches) {
      if (l.deviceTemplate == "kv_slim_select")
        out.tokens = std::make_shared<ref::TokenSet>(hostTokenSet(vals[l.results[0]]));
      if (!isAttention(l))
        continue;
      const RtValue &q = vals[l.operands[0]], &k = vals[l.operands[1]];
      out.prefill = true;
      out.dims = ref::Dims{q.B, q.H, k.H, q.S, k.S};
      ref::AttentionParams &p = out.params;
      p = ref::AttentionParams{};
      p.mask = {l.b("CAUSAL"), l.i("WINDOW"), l.i("SINKS")};
      p.lazy = l.s("LAZY") == "zero" ? ref::LazyPolicy::Zero : ref::LazyPolicy::Local;
      p.lazyWindow = l.i("LAZY_WINDOW"), p.lazySinks = l.i("LAZY_SINKS");
      const AttnOperands at = attnOperands(l);
      out.blocks.reset(), out.queries.reset();
      if (at.blocks >= 0) {
        auto b = std::make_shared<ref::BlockSet>(hostBlockSet(vals[l.operands[size_t(at.blocks)]]));
        b->bq = l.i("SET_BQ"), b->bk = l.i("SET_BK");
        out.blocks = b;
      }
      if (l.b("HAS_PATTERN"))
        out.blocks = std::make_shared<ref::BlockSet>(
            ref::staticBlocks(q.B, q.H, q.S, k.S, l.i("P_BQ"), l.i("P_BK"),
                              ref::Mask{l.b("P_CAUSAL"), l.i("P_WINDOW"), l.i("P_SINKS")}));
      if (at.queries >= 0)
        out.queries =
            std::make_shared<ref::QuerySet>(hostQuerySet(vals[l.operands[size_t(at.queries)]]));
      out.vslash.reset();
      if (at.vslash >= 0) {
        out.vslash =
            std::make_shared<ref::VSlashSet>(hostVSlashSet(vals[l.operands[size_t(at.vslash)]]));
        p.vslash = out.vslash.get();
      }
    }
  }

  void dumpValue(const std::string &kernel, int id) {
    const RtValue &v = vals[id];
    switch (v.kind) {
    case ValueKind::Scores: {
      ref::Scores s;
      s.B = v.B, s.H = v.H, s.nQB = v.nQB, s.nKB = v.nKB, s.Sq = v.Sq, s.Skv = v.Skv;
      auto host = download<float>(v.p0, size_t(v.B) * v.H * v.nQB * v.nKB);
      s.v.assign(host.begin(), host.end());
      (*opts->dump)[kernel] = s;
      break;
    }
    case ValueKind::Blocks:
      (*opts->dump)[kernel] = hostBlockSet(v);
      break;
    case ValueKind::Budget: {
      ref::Budget b;
      b.B = v.B, b.H = v.H, b.nQB = v.nQB;
      auto host = download<int>(v.p0, size_t(v.B) * v.H * v.nQB);
      b.k.assign(host.begin(), host.end());
      (*opts->dump)[kernel] = b;
      break;
    }
    case ValueKind::Queries:
      (*opts->dump)[kernel] = hostQuerySet(v);
      break;
    case ValueKind::Tokens:
      (*opts->dump)[kernel] = hostTokenSet(v);
      break;
    case ValueKind::VSlash:
      (*opts->dump)[kernel] = hostVSlashSet(v);
      break;
    case ValueKind::Lse: {
      ref::Tensor t({v.B, v.H, v.S});
      auto host = download<float>(v.p0, size_t(t.numel()));
      t.data.assign(host.begin(), host.end());
      (*opts->dump)[kernel] = t;
      break;
    }
    case ValueKind::Tensor4:
      if (plan.values[id].elem == Elem::F32) {
        ref::Tensor t({v.B, v.H, v.S, v.D});
        auto host = download<float>(v.p0, size_t(t.numel()));
        t.data.assign(host.begin(), host.end());
        (*opts->dump)[kernel] = t;
      }
      break;
    default:
      break;
    }
  }

  const CompiledProgram &prog;
  const Plan &plan;
  const std::map<std::string, CUfunction> &fns;
  CUstream stream;
  RunOptions *opts;
  Driver &drv;
  std::vector<RtValue> vals;
  std::map<int, DeviceTensor> bound;
  std::vector<CUdeviceptr> workspace;
};

} // namespace sattn::gpu::detail
