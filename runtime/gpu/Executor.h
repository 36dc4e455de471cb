//===- Executor.h - compile a Plan's kernels and launch them --------------===//
//
// A CompiledProgram owns the loaded module of one variant on one GPU. run()
// binds device tensors to the variant's arguments and results, allocates
// the workspace in stream order, and launches every kernel on the caller's
// stream. Shapes are checked against the plan before anything launches.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/cache/DiskCache.h"
#include "runtime/gpu/Plan.h"
#include "runtime/reference/Reference.h"
#include "runtime/reference/Values.h"

#include <cuda.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace sattn::gpu {

/// A tensor in device memory: element strides, last dimension contiguous.
struct DeviceTensor {
  CUdeviceptr ptr = 0;
  Elem elem = Elem::BF16;
  std::vector<int64_t> shape, strides;
};

/// Host copies of intermediate values, keyed by the producing kernel name
/// (for stage-by-stage tests and --dump-selection).
using HostValue = std::variant<ref::Tensor, ref::Scores, ref::BlockSet, ref::Budget, ref::TokenSet,
                               ref::QuerySet, ref::VSlashSet>;

/// The sets a run attended with, downloaded after it for reporting
/// (density, active rows, kept KV): only these, never the scores.
struct SelectionSets {
  bool prefill = false; ///< a prefill attention ran (dims, params and sets are its)
  ref::Dims dims{};
  ref::AttentionParams params;
  std::shared_ptr<const ref::BlockSet> blocks;  ///< its block set, or its fused pattern's
  std::shared_ptr<const ref::QuerySet> queries; ///< its query set
  std::shared_ptr<const ref::TokenSet> tokens;  ///< the last kv_slim's kept tokens
  std::shared_ptr<const ref::VSlashSet> vslash; ///< its vertical-slash set (params.vslash)

  /// Design §2 density of the prefill attention (none without one).
  std::optional<double> density() const {
    if (!prefill)
      return std::nullopt;
    return ref::density(dims, ref::Attended{blocks.get(), queries.get(), params});
  }
};

struct RunOptions {
  bool timePhases = false;
  std::map<std::string, HostValue> *dump = nullptr; ///< fill with every launch result
  SelectionSets *selection = nullptr;               ///< fill after the run (synchronises)
};

/// A slimmed KV cache in device memory (Program::slim, semantics §11): per
/// (batch, KV head) `row = b * kvHeads + h`, entries [0, lengths[row]) are
/// rows offsets[row] + e of k and v (dense rows of `dim` elements), kept
/// tokens in ascending position, then appended ones; capacity[row] rows
/// are reserved. The host mirrors offsets and lengths (no sync to read them).
struct SlimStorage {
  int batch = 0, kvHeads = 0, dim = 0;
  Elem elem = Elem::BF16;
  int64_t fullLength = 0; ///< cached tokens per head of the cache it was built from
  std::vector<int64_t> offsets, lengths, capacity;
  CUdeviceptr k = 0, v = 0, off = 0, len = 0;
  ~SlimStorage();
  SlimStorage() = default;
  SlimStorage(const SlimStorage &) = delete;
  SlimStorage &operator=(const SlimStorage &) = delete;
  int64_t rows() const { return offsets.empty() ? 0 : offsets.back() + capacity.back(); }
};

struct CompileInfo {
  cache::Outcome disk = cache::Outcome::Miss;
  bool memoryHit = false;
  double compileMs = 0.0; ///< NVRTC time (0 on a cache hit)
  double loadMs = 0.0;    ///< total time to get a loaded module
  std::string arch;
};

/// What CompiledProgram::backward differentiates and how.
struct BackwardRequest {
  int q = 0, k = 1, v = 2;    ///< argument indices of the attention's q, k, v
  bool deterministic = false; ///< dQ by its own pass (same bits every run), else atomics
  /// The forward's O and LSE ([B, Hq, Sq] f32): read instead of recomputed.
  std::optional<DeviceTensor> out, lse;
};

class CompiledProgram {
public:
  /// Emits nothing itself: `cuda` is the generated module of `plan`.
  CompiledProgram(Plan plan, const std::string &cuda, const cache::DiskCache &cache);
  /// `parts` are the plan's kernels one module per launch, in launch order
  /// (codegen::emitCudaParts): compiled in parallel, cached and loaded one
  /// by one.
  CompiledProgram(Plan plan, const std::vector<std::string> &parts, const cache::DiskCache &cache);
  ~CompiledProgram();

  /// Runs on `stream` (0: legacy default). `results` must match the
  /// function's results (O, then LSE if returned).
  void run(const std::vector<DeviceTensor> &args, const std::vector<DeviceTensor> &results,
           CUstream stream, RunOptions *opts = nullptr) const;

  /// Program::slim: runs the kv_slim launches that feed the variant's
  /// decode_attention, waits for the kept-token counts, allocates a cache
  /// of exactly those tokens plus `reserve` rows per (batch, KV head) and
  /// compacts the kept K/V into it (queued on `stream`). `args` binds the
  /// function arguments by position; those only the decode step reads (its
  /// q) may be absent.
  std::unique_ptr<SlimStorage> slim(const std::vector<std::optional<DeviceTensor>> &args,
                                    int64_t reserve, CUstream stream) const;
  /// Program::decode: the variant's decode_attention over `cache` instead
  /// of its kv_slim tokens; `args` needs only the decode step's own inputs.
  void decodeSlim(const SlimStorage &cache, const std::vector<std::optional<DeviceTensor>> &args,
                  const std::vector<DeviceTensor> &results, CUstream stream,
                  RunOptions *opts = nullptr) const;
  /// SlimCache::append: `k`, `v` [B, Hkv, t, D] become entries
  /// lengths..lengths + t of every (batch, KV head).
  void appendSlim(SlimStorage &cache, const DeviceTensor &k, const DeviceTensor &v,
                  CUstream stream) const;
  /// Gradients dq, dk, dv (`grads`, the program's dtype, shaped like q, k,
  /// v) of sum(dout * O), O the first result, an attention over arguments
  /// req.q, req.k, req.v. Runs the launches before that attention (its
  /// sets), then the backward kernels of codegen/device/attention_bwd.cuh
  /// (compiled on first use, through the disk cache) on `stream`.
  void backward(const std::vector<DeviceTensor> &args, const DeviceTensor &dout,
                const std::vector<DeviceTensor> &grads, const BackwardRequest &req,
                CUstream stream) const;
  /// The launch indices of the kv_slim_select and the decode_attn reading
  /// its tokens over a non-paged cache, or a GpuError saying why the
  /// variant cannot be slimmed.
  std::pair<size_t, size_t> slimLaunches() const;

  /// Attention launch `l` (attn_fwd_wgmma, built with TMA = 1: loads by TMA
  /// only) as its copy-load variant (TMA = 0), for a launch whose views TMA
  /// cannot describe (strides not multiples of 16 bytes, an empty K/V):
  /// compiled on first use through the disk cache (a one-path
  /// kernel compiles ~20 % faster than one holding both), then kept.
  CUfunction copyLoadKernel(const Launch &l) const;

  const Plan &plan() const { return p; }
  const CompileInfo &compileInfo() const { return info; }
  /// Milliseconds per launch of the last run with timePhases.
  const std::vector<std::pair<std::string, double>> &phases() const { return lastPhases; }

private:
  /// Compiles (or finds in the cache) and loads `parts`; part i holds the
  /// kernels of launch i, or every launch when there is one part.
  void load(const std::vector<std::string> &parts, const cache::DiskCache &cache);

  struct BackwardModule {
    CUmodule module = nullptr;
    std::map<std::string, CUfunction> functions;
    bool wgmma = false; ///< built with the wgmma dK/dV and dQ kernels
    int keyWgs = 1;     ///< warpgroups (64 keys each) per dK/dV CTA
    int rowWgs = 1;     ///< warpgroups (64 rows each) per dQ CTA
  };
  /// The backward kernels of launch `attn` in one mode (compiled and
  /// loaded once per mode).
  const BackwardModule &backwardKernels(size_t attn, bool deterministic) const;
  /// Whether the backward in this mode runs on wgmma (a variant lowered
  /// for sm_90a), else on the portable mma.sync kernels.
  bool backwardOnWgmma(bool deterministic) const;
  Plan p;
  cache::DiskCache diskCache;
  mutable std::mutex bwdMutex;
  mutable BackwardModule bwdModules[2]; ///< [atomic, deterministic]
  mutable std::mutex copyMutex;
  mutable std::map<std::string, CUfunction> copyKernels; ///< copyLoadKernel's, by launch kernel
  mutable std::vector<CUmodule> copyModules;
  std::vector<CUmodule> modules;
  std::map<std::string, CUfunction> functions;
  CompileInfo info;
  mutable std::vector<std::pair<std::string, double>> lastPhases;
};

/// The CUDA source of attn_fwd_wgmma launch `l` as its copy-load variant
/// (Cfg::TMA = 0; kernel `<l.kernel>_copy`), which
/// CompiledProgram::copyLoadKernel compiles. Exposed so that tests compile
/// it without a GPU.
std::string copyLoadSource(const Launch &l);

/// The CUDA source of the backward kernels of attention launch `l`
/// (Backward.cpp) and the kernels it defines, in launch order:
/// deterministic or atomic dQ mode, `wgmma` for the sm_90a dK/dV and dQ
/// kernels. Exposed so that tests compile it without a GPU.
struct BackwardModuleSource {
  std::string cuda;
  std::vector<std::string> kernels;
  int keyWgs = 1; ///< warpgroups per dK/dV CTA (its launch shape)
  int rowWgs = 1; ///< warpgroups per deterministic dQ CTA
};
BackwardModuleSource backwardModuleSource(const Launch &l, bool deterministic, bool wgmma);

} // namespace sattn::gpu
