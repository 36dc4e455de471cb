//===- Reference.h - float64 reference kernels of every semantic op -------===//
//
// One function per semantic op of the sattn dialect, following
// docs/semantics.md exactly (section numbers in the comments). These are
// the oracle for every GPU test and the fallback when no GPU is present, so
// they favour obvious loops over speed. Invalid runtime arguments (a budget
// out of range, mismatched shapes) throw sattn::ref::Error with a message
// that says what is wrong.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/reference/Values.h"

#include <optional>
#include <stdexcept>
#include <string>

namespace sattn::ref {

/// A runtime error in the user's inputs (never a programming error).
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class PoolKind { Mean, Max, Min };

/// Token-level mask of semantics §1. window == 0 means no window.
struct Mask {
  bool causal = false;
  int64_t window = 0;
  int64_t sinks = 0;
};

/// Forced blocks of semantics §5.
struct Forced {
  int64_t sink = 0;
  int64_t local = 0;
  bool diagonal = false;
};

enum class LazyPolicy { Local, Zero };

struct VSlashSet;

struct AttentionParams {
  Mask mask;
  /// §12b token-level vertical-slash set (causal only; no block or query set).
  const VSlashSet *vslash = nullptr;
  std::optional<double> scale; // default 1/sqrt(D)
  LazyPolicy lazy = LazyPolicy::Local;
  int64_t lazyWindow = 1024;
  int64_t lazySinks = 64;
};

struct AttentionResult {
  Tensor out; // [B, Hq, Sq, D]
  Tensor lse; // [B, Hq, Sq]
};

struct ClassifyParams {
  int64_t keyGroup = 64;
  int64_t window = 1024;
  int64_t sinks = 64;
  double theta = 0.9;
  int64_t keepEvery = 8;
  std::optional<double> scale;
};

struct SlimParams {
  int64_t observe = 64;
  double tau = 0.95;
  int64_t sinks = 4;
  int64_t recent = 64;
  std::optional<double> scale;
};

/// Paged KV cache view of semantics §12: k/v are [P, Hkv, page, D].
struct PagedCache {
  const Tensor *k = nullptr;
  const Tensor *v = nullptr;
  const Tensor *pageTable = nullptr; // [B, maxP], integral values
  const Tensor *seqLens = nullptr;   // [B], integral values
};

/// §12a (FlexPrefill vertical-slash selection).
struct VerticalSlashParams {
  int64_t last = 128;
  double gamma = 0.9;
  int64_t unit = 128;
  int64_t minBlocks = 1;
  int64_t maxBlocks = 0; // 0: no cap
  double jsd = 0.1;
  std::optional<double> scale;
};

/// §12b (MInference token-level vertical-slash).
struct VSlashParams {
  int64_t last = 64;
  int64_t vertical = 1000;
  int64_t slash = 6096;
  int64_t sinkColumns = 30;
  int64_t localSlashes = 100;
};

/// §12a lines of the last min(last, Sq) rows: vertical v and slash s, both
/// [B, Hq, Skv].
struct Lines {
  Tensor vertical, slash;
};

// --- semantics §1 helpers ------------------------------------------------
int64_t cdiv(int64_t a, int64_t b);
/// Diagonal key dk(I); may be negative.
int64_t diagonalKey(int64_t I, int64_t bq, int64_t Sq, int64_t Skv);
/// Whether key j is allowed for query row i under the token mask.
bool allowed(const Mask &m, int64_t i, int64_t j, int64_t Sq, int64_t Skv);
/// Visible blocks of query block I, ascending.
std::vector<int32_t> visibleBlocks(int64_t I, int64_t bq, int64_t bk, int64_t Sq, int64_t Skv,
                                   bool causal);
/// Forced blocks of query block I (∩ visible), ascending.
std::vector<int32_t> forcedBlocks(const Forced &f, int64_t I, int64_t bq, int64_t bk, int64_t Sq,
                                  int64_t Skv, bool causal);

// --- one function per op ----------------------------------------------------
/// §3. x is [B, H, S, D]; returns [B, H, cdiv(S, group), D].
Tensor pool(const Tensor &x, int64_t group, PoolKind kind);

/// §4. qp/kp are pooled with granularities cq/ck; Sq/Skv are unpooled lengths.
/// With kMax, kp and kMax are the key groups' minimum and maximum and the
/// logit is the Quest bound of §4c.
Scores blockScores(const Tensor &qp, const Tensor &kp, int64_t cq, int64_t ck, int64_t bq,
                   int64_t bk, int64_t Sq, int64_t Skv, bool causal, std::optional<double> scale,
                   const Tensor *kMax = nullptr);

/// §4a (XAttention): strided antidiagonal scores of q [B, Hq, Sq, D] and
/// k [B, Hkv, Skv, D] with `stride` dividing bq and bk.
Scores antidiagScores(const Tensor &q, const Tensor &k, int64_t stride, int64_t bq, int64_t bk,
                      bool causal, std::optional<double> scale);

/// §4b: sum_i w_i s_i / sum_i w_i of grids of one shape and causality
/// (w empty: all ones).
Scores meanScores(const std::vector<const Scores *> &in, const std::vector<double> &w);

/// §7. shareFlattest: result H == 1 holding max over heads.
Budget headBudget(const Scores &s, double tau, const Forced &forced, bool shareFlattest);

/// §6, topk rule. Budget from `budget` (H == 1, == s.H, or per group) or `k`.
BlockSet selectTopK(const Scores &s, const Budget *budget, std::optional<int64_t> k,
                    const Forced &forced, int64_t outHeads);

/// §6, cumulative rule with optional cap (budget or k).
/// `slack` more blocks past the threshold (before the cap).
BlockSet selectCumulative(const Scores &s, double tau, const Budget *cap,
                          std::optional<int64_t> capK, const Forced &forced, int64_t outHeads,
                          int64_t slack = 0);

/// §6, cumulative rule with scope = head: one prefix per (b, h) over the
/// whole grid (per query head).
BlockSet selectCumulativeHead(const Scores &s, double tau, const Forced &forced);

/// §12a: lastQLines, then verticalSlashSelect. With `aware` (a block set of
/// the result's geometry) kPooled [B, Hkv, cdiv(Skv, bk), D] must be given.
BlockSet verticalSlash(const Tensor &q, const Tensor &k, int64_t bq, int64_t bk,
                       const BlockSet *aware, const Tensor *kPooled, const VerticalSlashParams &p);
/// §12a, first half.
Lines lastQLines(const Tensor &q, const Tensor &k, const VerticalSlashParams &p);
/// §12a, second half, given the lines (GPU tests feed the GPU's own).
BlockSet verticalSlashSelect(const Lines &lines, const Tensor &q, const Tensor &k, int64_t bq,
                             int64_t bk, const BlockSet *aware, const Tensor *kPooled,
                             const VerticalSlashParams &p);

/// §12b: the lines of §12a (last = p.last), then vslashSelect.
VSlashSet vslash(const Tensor &q, const Tensor &k, int64_t bq, const VSlashParams &p);
/// §12b, second half, given the lines [B, Hq, Skv] (GPU tests feed the GPU's own).
VSlashSet vslashSelect(const Lines &lines, int64_t Sq, int64_t bq, const VSlashParams &p);

/// The bq x bq blocks a §12b attention touches (a superset of its pairs,
/// for block-granular tools such as FlexAttention's block mask).
BlockSet vslashBlocks(const VSlashSet &vs);

/// §8.
BlockSet staticBlocks(int64_t B, int64_t H, int64_t Sq, int64_t Skv, int64_t bq, int64_t bk,
                      const Mask &mask);

/// §9.
BlockSet unite(const BlockSet &a, const BlockSet &b);
BlockSet intersect(const BlockSet &a, const BlockSet &b);

/// The transpose of a block set (for the dK/dV backward pass): every pair
/// (I, J) of bs appears exactly once, as entry I of column (b, h, J), and each
/// column is ascending; heads and geometry are bs's. Validates bs as
/// attention() does (positive block sizes, nQB = cdiv(Sq, bq), nKB =
/// cdiv(Skv, bk), B*H*nQB lists, indices in [0, nKB)) and also requires every
/// row to be ascending without duplicates; throws Error otherwise (naming the
/// row when an entry is at fault).
TransposedBlockSet transposeBlockSet(const BlockSet &bs);

/// §14. The block set of a user list `list` [B, H, nQB, cap] (H the set's
/// heads, nQB = cdiv(Sq, bq), cap >= 1) of KV block indices, -1 marking an
/// unused slot; order and repeats do not matter. `name` labels the errors
/// (e.g. "input 'blocks'"). Throws Error on a wrong shape, a non-integer
/// entry, or an entry outside [-1, cdiv(Skv, bk)), naming the row.
BlockSet blockSetFromList(const Tensor &list, const std::string &name, int64_t B, int64_t H,
                          int64_t Sq, int64_t Skv, int64_t bq, int64_t bk);

/// §10.
QuerySet classifyQueries(const Tensor &q, const Tensor &k, const ClassifyParams &p);

/// §2.
AttentionResult attention(const Tensor &q, const Tensor &k, const Tensor &v, const BlockSet *blocks,
                          const QuerySet *queries, const AttentionParams &p);

/// Gradients of attention(); each has the shape of its input.
struct AttentionGrads {
  Tensor dq; // [B, Hq, Sq, D]
  Tensor dk; // [B, Hkv, Skv, D]
  Tensor dv; // [B, Hkv, Skv, D]
};

/// §2 backward: the gradients of L = sum(dout ⊙ O) with respect to q, k and
/// v, where O = attention(q, k, v, blocks, queries, p).out and dout has O's
/// shape [B, Hq, Sq, D]. The key sets A(i) are constants: selections are not
/// differentiated (a straight-through choice). Lazy rows get the gradient of
/// their cheap (local + sinks) path; rows with an empty A(i) (LazyPolicy::Zero,
/// or nothing visible) contribute nothing. With GQA, dk/dv of a KV head sum
/// over its query heads. Validates like attention(), plus dout's shape.
AttentionGrads attentionBackward(const Tensor &q, const Tensor &k, const Tensor &v,
                                 const Tensor &dout, const BlockSet *blocks,
                                 const QuerySet *queries, const AttentionParams &p);

/// §11: kvSlimSelect(kvSlimScores(...)).
TokenSet kvSlim(const Tensor &q, const Tensor &k, const Segments *segments, const SlimParams &p);
/// §11, first half: score [B, Hkv, Skv] of every cached token.
Tensor kvSlimScores(const Tensor &q, const Tensor &k, const SlimParams &p);
/// §11, second half: the kept tokens given the scores (GPU tests feed the
/// GPU's own scores here to check its selection exactly).
TokenSet kvSlimSelect(const Tensor &score, const Segments *segments, const SlimParams &p);

/// §12, contiguous cache [B, Hkv, Skv, D].
AttentionResult decodeAttention(const Tensor &q, const Tensor &k, const Tensor &v,
                                const TokenSet *tokens, std::optional<double> scale);

/// §12, paged cache.
AttentionResult decodeAttentionPaged(const Tensor &q, const PagedCache &cache,
                                     const TokenSet *tokens, std::optional<double> scale);

// --- §13 metrics ------------------------------------------------------------
/// The set of keys row i of head h attended, as decided by attention().
struct Attended {
  const BlockSet *blocks = nullptr;
  const QuerySet *queries = nullptr;
  AttentionParams params;
};
/// The row count of the unaligned recall: 257 evenly spaced rows visit
/// every in-block offset where the §13 rows (256) are all first rows of
/// their blocks (docs/evaluation.md; bench/evaluator.py UNALIGNED_ROWS).
constexpr int64_t kUnalignedRecallRows = 257;
/// Recall over `rows` evenly spaced query rows (i = m·Sq/M, M = min(rows,
/// Sq)); 256: the §13 rows.
double recall(const Tensor &q, const Tensor &k, const Attended &a, int64_t rows = 256);
double density(const Tensor &q, const Tensor &k, const Attended &a);
/// Attention sizes without the tensors (the GPU runtime reports density
/// from downloaded block and query sets). Sets are trusted to match.
struct Dims {
  int64_t B, Hq, Hkv, Sq, Skv;
};
double density(const Dims &s, const Attended &a);
/// Active rows / all rows of a query set; kept / all tokens of a token set.
double activeFraction(const QuerySet &qs);
double keptFraction(const TokenSet &ts);
double relativeError(const Tensor &out, const Tensor &ref);

// --- shared by the kernels and the metrics (not ops) -------------------------
namespace detail {
/// Throws Error unless t has the given rank (-1: any), data matching its
/// shape, and (when `finite`) only finite values.
void checkTensor(const Tensor &t, const char *name, int rank, bool finite = true);
/// q [B, Hq, *, D] against k [B, Hkv, *, D] (same batch and head dim,
/// Hq % Hkv == 0); qn / kn name them in the Error.
void checkQK(const Tensor &q, const Tensor &k, const char *qn, const char *kn);
/// The shared q/k/v layout of §2 and §12 (rank 4, finite, k and v of one
/// shape, Hq % Hkv == 0, D >= 1); returns D.
int64_t checkQKV(const Tensor &q, const Tensor &k, const Tensor &v);
/// Throws Error unless a block set is consistent in itself: positive block
/// sizes, nQB = cdiv(Sq, bq), nKB = cdiv(Skv, bk), B*H*nQB lists, every
/// index in [0, nKB) (the error names the row at fault).
void checkBlockSet(const BlockSet &bs);
/// The given softmax scale (must be finite) or 1/sqrt(D).
double resolveScale(std::optional<double> scale, int64_t D);
/// Throws Error for attributes §1 does not define (a window without causal, ...).
void checkMask(const Mask &m);
/// Replaces logits by their max-subtracted softmax (empty stays empty);
/// throws Error if a logit overflowed.
void softmaxInPlace(std::vector<double> &logits);

/// Throws Error unless the §12b set matches the attention's shapes and mask.
void checkVSlash(const VSlashSet &vs, int64_t B, int64_t Hq, int64_t Sq, int64_t Skv,
                 const BlockSet *blocks, const QuerySet *queries, const Mask &mask);

/// The allowed key set A(i) of §2, validated once against the shapes so that
/// attention() and the §13 metrics agree on what a row attends.
class KeySets {
public:
  KeySets(int64_t B, int64_t Hq, int64_t Hkv, int64_t Sq, int64_t Skv, const BlockSet *blocks,
          const QuerySet *queries, const AttentionParams &p);
  /// keys[j] (resized to Skv) = whether row i of (b, h) attends key j.
  void row(int64_t b, int64_t h, int64_t i, std::vector<char> &keys) const;
  /// The keys of row(b, h, i) as an ascending list (`keys` is scratch).
  void keyList(int64_t b, int64_t h, int64_t i, std::vector<char> &keys,
               std::vector<int64_t> &list) const;

private:
  int64_t B, Hq, Hkv, Sq, Skv;
  const BlockSet *blocks;
  AttentionParams params;
  std::vector<char> active; // [B, Hq, Sq]; empty without a query set
};
} // namespace detail

} // namespace sattn::ref
