//===- sattn.h - the sattn C++ API ----------------------------------------===//
//
// Compile a sparse-attention variant once, run it many times on tensors the
// caller owns. Needs only the C++ standard library: no MLIR or CUDA type
// appears here (design §6), so an application builds against sattn with
// its own toolchain and links one library.
//
//   sattn::Session session;                       // GPU if present, else CPU
//   auto program = session.compile(sattn::Variant::fromFile("v.mlir"));
//   program->run({q, k, v}, {o}, stream);         // TensorViews (DLPack-like)
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace sattn {

/// Every failure: bad IR, shapes that do not match the variant, missing
/// GPU/driver/NVRTC, out of memory. The message says what and what to do.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class DType { BF16, FP16, F32, I32 };
enum class Device { Cpu, Gpu };

/// A non-owning view of a tensor, laid out as DLPack describes one:
/// element strides (not bytes), any strides with the last one equal to 1.
struct TensorView {
  void *data = nullptr;
  DType dtype = DType::BF16;
  Device device = Device::Gpu;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides; ///< empty: contiguous
};

/// A variant: one func.func in the sattn dialect.
class Variant {
public:
  static Variant fromText(std::string mlir);
  static Variant fromFile(const std::string &path);
  const std::string &text() const { return mlir; }

private:
  explicit Variant(std::string t) : mlir(std::move(t)) {}
  std::string mlir;
};

/// Ready-made variants built through the same IR (design §6).
namespace patterns {
struct Heads {
  int heads = 32, kvHeads = 8, headDim = 128;
  DType dtype = DType::BF16;
};
/// Dense attention, causal or not; returns O and LSE when `lse`.
Variant dense(const Heads &h, bool causal, bool lse = false);
/// StreamingLLM: `sinks` first keys plus a causal window of `window` keys.
Variant streaming(const Heads &h, int64_t window, int64_t sinks);
/// Top-k blocks from mean-pooled scores, keeping the sink and diagonal blocks.
Variant topkBlocks(const Heads &h, int64_t pool, int64_t block, int64_t k);
/// Attention over a block set the caller supplies at run time: a fourth
/// input "blocks", int32 [B, setHeads, cdiv(Sq, block), cap] of KV block
/// indices (-1: unused slot; docs/semantics.md §14), block x block tiles.
/// setHeads: heads (one list per query head, the default when 0) or kvHeads
/// (one per GQA group). Causal (bottom-right) still applies inside blocks.
Variant blockMask(const Heads &h, int64_t block, bool causal, int64_t setHeads = 0);

/// OmniSparse knobs (docs/patterns/omnisparse.md; defaults from design §10).
struct OmniSparseOptions {
  int64_t block = 128;   ///< query / KV block of the selection
  int64_t pool = 64;     ///< mean-pooling group of the block estimate
  double tau = 0.95;     ///< head budget: estimated mass each head must reach
  double theta = 0.9;    ///< a row is lazy when its near mass is >= theta
  int64_t window = 1024; ///< local window of the lazy test and lazy rows
  int64_t sinks = 64;    ///< sink tokens of the lazy test and lazy rows
  int64_t keepEvery = 8; ///< every keepEvery-th lazy row stays active
};
/// OmniSparse prefill, causal: lazy/active query classification, the
/// flattest head's budget shared by the heads of a row, each head keeping
/// its own top blocks (sink and diagonal forced); lazy rows attend to
/// sinks + the local window.
Variant omnisparse(const Heads &h, const OmniSparseOptions &o = {});

/// XAttention knobs (docs/patterns/xattention.md; design §10 defaults).
struct XAttentionOptions {
  int64_t block = 128; ///< query / KV block (the stride must divide it)
  int64_t stride = 8;  ///< antidiagonal stride (8 or 16 in the paper)
  double tau = 0.9;    ///< estimated mass each query block keeps
  /// Blocks kept past the threshold. 1 reproduces mit-han-lab/x-attention's
  /// prefill selection, which keeps one block more than the shortest prefix
  /// (docs/patterns/xattention.md); 0 is the paper's rule.
  int64_t slack = 0;
};
/// XAttention: strided antidiagonal block scores, then per query block the
/// sink and diagonal blocks plus the largest others up to tau of the
/// estimated mass; block-sparse causal attention. On the GPU the estimate
/// is still the correct-first CUDA-core kernel (slow: docs/patterns/xattention.md).
Variant xattention(const Heads &h, const XAttentionOptions &o = {});

/// FlexPrefill knobs (docs/patterns/flexprefill.md; design §10 defaults).
struct FlexPrefillOptions {
  int64_t block = 128;      ///< query / KV block; also the number of last queries
  double gamma = 0.9;       ///< attention coverage of the vertical / slash lines
  double jsd = 0.1;         ///< query-aware when sqrt-JSD < jsd; 0 turns the test off
  int64_t minBudget = 1024; ///< tokens (rounded up to blocks) every head keeps
  int64_t maxBudget = 0;    ///< tokens (rounded up to blocks) at most; 0: no cap
};
/// FlexPrefill: the exact attention of the last `block` queries gives per
/// head vertical (per key) and slash (per distance) mass; a coverage budget
/// per line kind; block 0 and the diagonal plus the best columns and
/// diagonals; a head whose pooled estimate agrees with its vertical mass
/// (sqrt-JSD < jsd) is query-aware and adds the blocks of a head-wide
/// cumulative threshold gamma over pooled block scores (semantics §6,
/// §12a); block-sparse causal attention.
Variant flexprefill(const Heads &h, const FlexPrefillOptions &o = {});

/// MInference vertical-slash knobs (docs/patterns/minference.md; the
/// defaults of microsoft/MInference's "vertical_and_slash" heads).
struct VerticalSlashOptions {
  int64_t vertical = 1000;    ///< key columns kept per head (at least sinkColumns)
  int64_t slash = 6096;       ///< slashes (distances) kept per head (at least localSlashes)
  int64_t last = 64;          ///< last queries whose attention picks them
  int64_t block = 64;         ///< query rows per block: each slash is a band this wide
  int64_t sinkColumns = 30;   ///< first keys always kept
  int64_t localSlashes = 100; ///< nearest distances always kept (>= 1: the diagonal)
};
/// MInference vertical-slash at token granularity: per head the best key
/// columns and the best slashes of the last queries' attention; one causal
/// attention reads every slash's band through a query block as a key range
/// and the columns as gathered keys (semantics §12b).
Variant minferenceVerticalSlash(const Heads &h, const VerticalSlashOptions &o = {});

/// UniSparse knobs (docs/patterns/unisparse.md; design §10 defaults but the granularities).
struct UniSparseOptions {
  int64_t block = 128; ///< query / KV block of the selection
  /// Composite-token sizes (1 to 4). Not design §10's {16, 64}: the 16-token
  /// grid costs most of the estimate and selects no better
  /// (docs/patterns/unisparse.md).
  std::vector<int64_t> granularities{32, 64};
  double tau = 0.9; ///< estimated mass each query block keeps
  int64_t cap = 0;  ///< at most this many blocks (0: no cap)
};
/// UniSparse: Q and K mean-pooled into composite tokens at each granularity,
/// causal pooled block scores per granularity averaged (sattn.mean_scores),
/// then per query block the sink and diagonal blocks plus the largest others
/// up to tau of the estimated mass (optionally at most `cap` blocks);
/// block-sparse causal attention.
Variant unisparse(const Heads &h, const UniSparseOptions &o = {});

/// Quest knobs (docs/patterns/quest.md).
struct QuestOptions {
  int64_t page = 16;  ///< tokens per page (the KV block of the selection)
  int64_t pages = 64; ///< pages each query block attends to, the current one included
  /// Take the pages' key minimum and maximum as inputs %kmin, %kmax
  /// ([B, Hkv, cdiv(Skv, page), D] f32: kmin[b, h, p, d] = min over the
  /// page's keys k[b, h, p·page + i, d], kept beside the cache and updated
  /// as pages fill) instead of pooling the whole cache on every call.
  bool boundsAsInputs = false;
};
/// Quest: per page the elementwise min and max of its keys; per query the
/// upper bound scale · Σ_d max(q_d · min_d, q_d · max_d) of its logits in
/// each page (semantics §4c); the current page plus the top pages by that
/// bound; causal attention over the kept pages. A decode method (Sq = 1 per
/// step); prefill rows work too (query blocks of `page` rows).
Variant quest(const Heads &h, const QuestOptions &o = {});

/// OmniSparse decode slimming knobs (semantics §11; design §10 defaults).
struct SlimOptions {
  int64_t observe = 64; ///< prompt rows whose attention scores the cache
  double tau = 0.95;    ///< mass of the segment's tokens to keep
  int64_t sinks = 4, recent = 64;
};
/// OmniSparse decode: inputs prompt (its last rows suffice), k, v (the
/// cache), q (one decode row); kv_slim keeps per KV head the tokens the
/// prompt attends to, decode_attention reads only those. Returns O and LSE.
Variant omnisparseDecode(const Heads &h, const SlimOptions &o = {});
} // namespace patterns

/// Specialisation options (the rest comes from the variant's types).
struct Specialization {
  std::optional<DType> dtype; ///< rebind Q/K/V/O to BF16 or FP16
  int64_t maxKvBlocks = 0;    ///< bound list lengths when budgets are dynamic
};

struct CompileStats {
  std::string diskCache; ///< "hit", "miss", "corrupt (recompiled)", "" on CPU
  double nvrtcMs = 0, totalMs = 0;
  std::string arch; ///< e.g. "sm_90a"
};

/// What a run selected (Program::runSelection). Each field is set when the
/// variant has the stage it describes.
struct SelectionReport {
  /// Prefill attention: attended / causally valid block pairs (design §2),
  /// over its block set's blocks (128 x 128 without one).
  std::optional<double> density;
  /// Query selection: active rows / all query rows.
  std::optional<double> activeRows;
  /// KV slimming: kept / all cached tokens over the KV heads.
  std::optional<double> kvKept;
  /// The prefill attention's block set (or its fused static pattern's) as
  /// a boolean mask: mask[((b * heads + h) * qBlocks + I) * kvBlocks + J]
  /// is 1 when (I, J) is attended. heads is the set's own (query heads, or
  /// KV heads for a per-group set). Lazy rows of a query selection attend
  /// sinks + window instead (not shown here). Unset without a block set.
  struct BlockMask {
    int64_t batch = 0, heads = 0, qBlocks = 0, kvBlocks = 0, bq = 0, bk = 0;
    std::vector<uint8_t> mask;
  };
  std::optional<BlockMask> blocks;
};

class Program;

/// A slimmed KV cache (OmniSparse decode, docs/patterns/omnisparse.md §3):
/// per (batch, KV head) only the tokens kv_slim kept, in ascending
/// position, stored densely one head after another, plus rows reserved for
/// appends. Program::slim builds it; it owns its memory (device memory for
/// a GPU program, host memory for a CPU one) and keeps what it needs of its
/// program alive, so the full cache it came from can be freed at once.
class SlimCache {
public:
  ~SlimCache();
  SlimCache(const SlimCache &) = delete;
  SlimCache &operator=(const SlimCache &) = delete;
  Device device() const;
  int64_t batch() const;
  int64_t kvHeads() const;
  int64_t headDim() const;
  /// Tokens (kept, then appended) held for (batch b, KV head h).
  int64_t length(int64_t b, int64_t h) const;
  /// Rows reserved for (b, h): its kept tokens plus slim()'s `reserve`.
  int64_t capacity(int64_t b, int64_t h) const;
  /// Bytes of K and V in the full cache it was built from
  /// (2 * B * Hkv * Skv * D * element size).
  int64_t bytesBefore() const;
  /// Bytes this cache holds: its K and V rows (reserve included, in the
  /// variant's element type) plus the per-head offsets and lengths.
  int64_t bytesAfter() const;
  /// Appends `k`, `v` [B, Hkv, t, D] (the variant's dtype on the GPU) as
  /// the next t entries of every (batch, KV head): the decode step's own
  /// tokens go in before the step runs (the decode rows are the last Sd
  /// entries, causal among themselves). Errors when a head's reserve is
  /// exhausted. GPU: queued on `stream`, no synchronisation.
  void append(const TensorView &k, const TensorView &v, void *stream = nullptr);

  struct Impl;
  explicit SlimCache(std::unique_ptr<Impl> impl);

private:
  friend class Program;
  std::unique_ptr<Impl> impl;
};

class Program {
public:
  ~Program();
  /// Runs on `stream` (a CUstream; nullptr: the default stream) for a GPU
  /// program, synchronously on the host for a CPU one. Inputs bind to the
  /// variant's arguments in order, outputs to its results (O, then LSE).
  /// A block-set argument takes an I32 view [B, H, nQB, cap] of KV block
  /// indices, -1 for unused slots (docs/semantics.md §14): the CPU rejects
  /// entries outside [-1, nKB); the GPU drops them (it cannot read device
  /// memory without a sync).
  void run(const std::vector<TensorView> &inputs, const std::vector<TensorView> &outputs,
           void *stream = nullptr) const;
  /// run(), then waits for the kernels and returns the GPU time of each
  /// launch in order (kernel name, milliseconds; CUDA events around each
  /// launch). For profiling: it synchronises `stream`. GPU programs only.
  std::vector<std::pair<std::string, double>> runTimed(const std::vector<TensorView> &inputs,
                                                       const std::vector<TensorView> &outputs,
                                                       void *stream = nullptr) const;
  /// run(), then reports what it selected. Waits for the kernels and copies
  /// the block, query and token sets (never the scores) to the host: for
  /// evaluation, not for the timed path.
  SelectionReport runSelection(const std::vector<TensorView> &inputs,
                               const std::vector<TensorView> &outputs,
                               void *stream = nullptr) const;
  /// How Program::backward runs on the GPU.
  struct BackwardOptions {
    /// Same bits on every run: dQ is summed per query tile in a fixed
    /// order by its own pass (the default, and on the H100 the faster mode:
    /// docs/training.md). Off: dQ is accumulated with fp32 atomics inside
    /// the dK/dV pass, in an order that varies.
    bool deterministic = true;
    /// The forward's first result O and its LSE ([B, Hq, Sq] f32, the
    /// variant's second result when it returns one). Given both, the
    /// backward reads them instead of recomputing the attention; null:
    /// recomputed (one extra forward attention).
    const TensorView *out = nullptr;
    const TensorView *lse = nullptr;
  };
  /// Gradients of L = sum(dout * O), O the variant's first result (a
  /// sattn.attention over its inputs q, k, v), with respect to q, k, v,
  /// written into `grads` = {dq, dk, dv} (shapes of q, k, v). The sparsity
  /// the forward selects (block sets, query sets, budgets) is recomputed
  /// from the same inputs and held constant: selections are not
  /// differentiated (a straight-through choice, docs/training.md); lazy
  /// rows get the gradient of their local + sinks path. CPU programs run
  /// the float64 reference (ref::attentionBackward); GPU programs the
  /// backward kernels (codegen/device/attention_bwd.cuh) on `stream`, with
  /// grads in the program's dtype.
  void backward(const std::vector<TensorView> &inputs, const TensorView &dout,
                const std::vector<TensorView> &grads, void *stream = nullptr) const {
    backward(inputs, dout, grads, BackwardOptions{}, stream);
  }
  void backward(const std::vector<TensorView> &inputs, const TensorView &dout,
                const std::vector<TensorView> &grads, const BackwardOptions &options,
                void *stream = nullptr) const;
  /// OmniSparse decode in two steps (the variant must have a
  /// sattn.decode_attention reading the tokens of a sattn.kv_slim over a
  /// dense cache, e.g. patterns::omnisparseDecode). slim() runs kv_slim once
  /// and compacts the kept K/V into a new SlimCache holding exactly those
  /// tokens plus `reserve` free rows per (batch, KV head). `inputs` are the
  /// variant's inputs in order without the decode step's own (see
  /// decodeInputs(); for omnisparseDecode: prompt, k, v). It waits for the
  /// GPU once (the allocation needs the kept counts) and returns when the
  /// cache is built, so the full cache may be freed right after.
  std::shared_ptr<SlimCache> slim(const std::vector<TensorView> &inputs, int64_t reserve = 0,
                                  void *stream = nullptr) const;
  /// One decode step over a slimmed cache: the variant's decode_attention
  /// with the cache's per-head tokens as its KV. `inputs` are the decode
  /// step's own inputs (decodeInputs(): q), `outputs` the variant's results.
  /// Same result as run() on the full cache when the decode rows' tokens
  /// were kept (recent >= Sd). GPU: queued on `stream`, no synchronisation.
  void decode(const SlimCache &cache, const std::vector<TensorView> &inputs,
              const std::vector<TensorView> &outputs, void *stream = nullptr) const;
  /// decode(), then waits and returns the decode kernel's GPU time (ms,
  /// CUDA events). GPU programs only.
  double decodeTimed(const SlimCache &cache, const std::vector<TensorView> &inputs,
                     const std::vector<TensorView> &outputs, void *stream = nullptr) const;
  /// Indices (into inputNames()) of the inputs decode() takes; slim() takes
  /// the others. Errors if the variant cannot be slimmed.
  std::vector<size_t> decodeInputs() const;
  Device device() const;
  /// The JIT cache key (SHA-256 of the specialised variant).
  const std::string &key() const;
  /// Kernel-level IR and the generated CUDA C++ (for inspection).
  const std::string &loweredIR() const;
  const std::string &cudaSource() const;
  const CompileStats &stats() const;
  /// Names of the inputs, in order (q, k, v, ...).
  const std::vector<std::string> &inputNames() const;

  struct Impl;
  explicit Program(std::unique_ptr<Impl> impl);

private:
  friend class Session;
  std::unique_ptr<Impl> impl;
};

/// One shape to tune for: batch and sequence lengths (heads come from the variant).
struct TuneShape {
  int64_t batch = 1, seqQ = 4096, seqKv = 4096;
};

/// One timed candidate (or a rejected one, with the reason).
struct TuneResult {
  std::string kernel, bucket, config;
  double ms = 0;        ///< median time of the candidate (0 if rejected)
  bool chosen = false;  ///< the winner for its bucket, stored in the database
  std::string rejected; ///< why the candidate was not launched, if it was not
};

struct SessionOptions {
  std::optional<Device> device; ///< default: GPU when one is usable, else CPU
  std::string cacheDir;         ///< default: $SATTN_CACHE_DIR or ~/.cache/sattn
};

class Session {
public:
  explicit Session(SessionOptions options = {});
  ~Session();
  Session(const Session &) = delete;
  Session &operator=(const Session &) = delete;

  /// Compiles (or returns from the in-memory / disk cache) a variant. A new
  /// sequence length never recompiles: lengths are runtime values.
  std::shared_ptr<Program> compile(const Variant &variant, const Specialization &spec = {});
  Device device() const;
  /// The GPU's name, or "cpu".
  std::string deviceName() const;

  /// Times every valid configuration of every tunable kernel of the variant
  /// on each shape (random inputs, CUDA events, median), stores the winners
  /// in the tuning database under the cache directory, and reports each
  /// candidate through `progress` as it finishes. Later compiles of the
  /// variant use the winners for shapes in the same bucket. GPU sessions only.
  std::vector<TuneResult> tune(const Variant &variant, const std::vector<TuneShape> &shapes,
                               const Specialization &spec = {},
                               const std::function<void(const TuneResult &)> &progress = {});
  /// Where tuning results are stored.
  std::string tuningDatabase() const;

  /// GPU workspace (the backward's dQ accumulator, sets, counters) comes
  /// from sattn's own stream-ordered pool, which keeps what it reserved
  /// between calls (SATTN_WORKSPACE_KEEP_MB caps it). This returns what it
  /// keeps unused to the driver, e.g. before other libraries need the
  /// memory; call it once the work that used it has finished (after a
  /// synchronisation). Returns the bytes released (0 on a CPU session).
  size_t releaseWorkspace();

private:
  struct Impl;
  std::unique_ptr<Impl> impl;
};

} // namespace sattn
