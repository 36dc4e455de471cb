//===- Tuning.h - autotuning: config spaces, shape buckets, the database --===//
//
// Design §6. A device template declares its tunable constants and their
// candidate values; a candidate that cannot run a launch is rejected with a
// reason and never launched. Winners are stored per (GPU name, arch,
// toolchain, kernel signature, shape bucket) in `tuning.json` under the
// cache directory; shapes without an entry keep the compiler's heuristic.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/gpu/Plan.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <map>
#include <string>
#include <vector>

namespace sattn::tune {

/// Values for a template's tunable constants, e.g. {TILE_M: 128}.
using Config = std::map<std::string, int64_t>;

/// The candidates a device template declares (empty: not tunable).
std::vector<Config> candidates(const std::string &deviceTemplate);

/// Why `config` cannot run `launch`; empty when it can.
std::string rejectReason(const gpu::Launch &launch, const Config &config);

/// The launch's template and constants without its tunable ones: a tuned
/// entry applies to every launch with the same signature.
std::string signature(const gpu::Launch &launch);

/// Run-time shape of an attention launch.
struct Shape {
  int64_t batchHeads = 0, seqQ = 0, seqKv = 0;
};

/// Power-of-two bucket, e.g. "bh32.q16384.kv16384" (each rounded up).
std::string bucket(const Shape &shape);

/// "TILE_M=128" — stable text of a config, for keys and reports.
std::string describe(const Config &config);

/// The inverse of describe: "K=V,K=V" (integers, at least one pair);
/// throws std::invalid_argument naming the malformed part.
Config parseConfig(const std::string &text);

/// `launch`'s tunable constants with those of `partial` that its template
/// declares put in their place: a config for it (unchecked: see
/// rejectReason). Empty when the template declares none of them.
Config mergeConfig(const gpu::Launch &launch, const Config &partial);

struct Entry {
  std::string gpu, arch, toolchain, signature, bucket;
  Config config;
  double ms = 0;
};

/// The JSON database. Loading a missing file gives an empty database; a
/// corrupt one is reported (and ignored, so the heuristic is used).
class Database {
public:
  explicit Database(std::string path);
  const std::string &path() const { return file; }
  /// Entries for this GPU and toolchain whose signature matches.
  std::vector<Entry> lookup(const std::string &gpu, const std::string &arch,
                            const std::string &toolchain, const std::string &signature) const;
  /// Adds or replaces the entry for its key.
  void record(const Entry &e);
  /// Writes atomically (temp file + rename); throws std::runtime_error.
  void save() const;
  /// A problem met while loading (empty if none).
  const std::string &loadWarning() const { return warning; }

private:
  std::string file, warning;
  std::vector<Entry> entries;
};

/// Sets the tunable constants of launch `kernel` in kernel-level IR.
void applyConfig(mlir::func::FuncOp lowered, const std::string &kernel, const Config &config);

/// SATTN_TUNE_CONFIG="K=V,...", parsed (empty when unset): knobs every
/// launch that declares them runs instead of the heuristic and the tuning
/// database (A/B runs; the GPU tests of every configuration). Throws
/// std::invalid_argument for malformed text.
Config forcedConfig();

/// Applies `forced` (merged per launch, mergeConfig) to every launch of
/// `lowered` whose template declares its knobs and accepts the result
/// (rejectReason); the others keep theirs.
void applyForced(mlir::func::FuncOp lowered, const Config &forced);

} // namespace sattn::tune
