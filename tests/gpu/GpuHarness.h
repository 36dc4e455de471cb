//===- GpuHarness.h - run a variant on GPU and CPU reference for tests ----===//
//
// Builds variant IR from a few parameters, runs it on the GPU through the
// same path as `sattn-run --device=gpu` (outputs poisoned before the run)
// and on the float64 reference, with fresh random inputs per call.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/gpu/Executor.h"
#include "runtime/reference/Reference.h"

#include <map>
#include <random>
#include <memory>
#include <string>
#include <vector>

namespace sattn::testing {

struct Shape {
  int B = 1, Hq = 4, Hkv = 2, Sq = 128, Skv = 128, D = 64;
  std::string dtype = "bf16";
};

/// The kernel family tests lower for: "" (this GPU's own) or "sm_80" (the
/// portable mma.sync kernels, which also run on Hopper).
extern std::string gTargetArch;

/// `sattn.attention` with the given attribute text ("causal, window = 64 : i64").
std::string attentionIR(const Shape &s, const std::string &attrs, bool lse);

/// pool -> scores -> select_blocks RULE {selectAttrs} -> attention. Queries
/// and keys are pooled in groups of `group` (keys of `kgroup` when > 0).
std::string topkIR(const Shape &s, int group, int bq, int bk, const std::string &selectAttrs,
                   const std::string &rule, int setHeads, bool causal, int kgroup = 0);

struct Outcome {
  std::vector<std::shared_ptr<ref::Tensor>> gpu, cpu; ///< O (and LSE)
  std::vector<std::shared_ptr<ref::Tensor>> inputs;   ///< q, k, v as rounded
  std::map<std::string, gpu::HostValue> dumps;
  gpu::SelectionSets selection; ///< the sets the GPU attention used
  /// Some sattn.scores ran fused into its selections; the harness then also
  /// ran the variant unfused, required the same bits, and `dumps` are the
  /// unfused run's (they hold the scores grids).
  bool fusedEstimation = false;
};

/// Runs `ir` on both devices with random N(0,1) inputs (seeded). `extra`
/// binds the arguments after q, k, v (e.g. a block list) on the GPU, and on
/// the CPU too unless `cpuExtra` is given (a list with entries the GPU drops
/// but the CPU reference would reject).
Outcome runBoth(const std::string &ir, const Shape &s, unsigned seed,
                const std::vector<std::shared_ptr<ref::Tensor>> &extra = {},
                const std::vector<std::shared_ptr<ref::Tensor>> &cpuExtra = {});

/// Runs `ir` on both devices with the given arguments (16-bit inputs must
/// already be rounded to `dtype`; integer inputs hold integral values).
Outcome runWith(const std::string &ir, const std::string &dtype,
                const std::vector<std::shared_ptr<ref::Tensor>> &args);

/// A [shape] tensor of N(0, 1) values rounded to `dtype` ("bf16" / "fp16").
std::shared_ptr<ref::Tensor> randomTensor(const std::vector<int64_t> &shape,
                                          const std::string &dtype, std::mt19937 &rng,
                                          double scale = 1.0);

/// Catch2 checks of a run: O has no NaN and is within `tol` of the
/// reference (relative); a returned LSE within 1e-3.
void checkResults(const Outcome &o, double tol = 1e-2);

/// ‖a − b‖ / ‖b‖ with NaN counted as failure (returns +inf).
double relErr(const ref::Tensor &a, const ref::Tensor &b);
int nanCount(const ref::Tensor &t);

/// The scores and block set a run dumped (the last of each kind by kernel name).
std::pair<const ref::Scores *, const ref::BlockSet *> scoresAndBlocks(const Outcome &o);
/// ‖GPU scores − reference‖ / ‖reference‖ over every element.
double scoresErr(const ref::Scores &gpu, const ref::Scores &want);
/// Stage 3 of a selection test: the GPU's attention against the reference
/// given the GPU's own block set (bq x bk blocks); Catch2 checks.
void checkAttentionOnSet(const Outcome &o, const ref::BlockSet &set, int bq, int bk, bool causal);
/// True when a GPU and driver are usable (else tests are skipped).
bool gpuAvailable(std::string *why);

} // namespace sattn::testing
