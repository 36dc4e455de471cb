//===- Values.h - Runtime values of the float64 reference executor -------===//
//
// The plain C++ values that flow between the reference kernels: dense
// float64 tensors and the compact selection structures of docs/semantics.md
// (block sets, query sets, budgets, token sets). No MLIR here: the kernels
// are unit-tested on their own and the interpreter only wires them together.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace sattn::ref {

/// A dense row-major float64 tensor of rank 4 ([B, H, S, D]) or lower.
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<double> data;

  Tensor() = default;
  explicit Tensor(std::vector<int64_t> s, double fill = 0.0);
  int64_t numel() const;
  int64_t dim(int i) const { return shape[static_cast<size_t>(i)]; }
  /// Element of a rank-4 tensor.
  double &at(int64_t a, int64_t b, int64_t c, int64_t d) {
    return data[static_cast<size_t>(((a * shape[1] + b) * shape[2] + c) * shape[3] + d)];
  }
  double at(int64_t a, int64_t b, int64_t c, int64_t d) const {
    return data[static_cast<size_t>(((a * shape[1] + b) * shape[2] + c) * shape[3] + d)];
  }
  /// Element of a rank-3 tensor.
  double &at3(int64_t a, int64_t b, int64_t c) {
    return data[static_cast<size_t>((a * shape[1] + b) * shape[2] + c)];
  }
  double at3(int64_t a, int64_t b, int64_t c) const {
    return data[static_cast<size_t>((a * shape[1] + b) * shape[2] + c)];
  }
};

/// Block-level scores [B, H, nQB, nKB] plus what is needed to know which
/// blocks are visible (semantics §1).
struct Scores {
  int64_t B = 0, H = 0, nQB = 0, nKB = 0;
  int64_t bq = 0, bk = 0, Sq = 0, Skv = 0;
  bool causal = false;
  std::vector<double> v;
  double &at(int64_t b, int64_t h, int64_t I, int64_t J) {
    return v[static_cast<size_t>(((b * H + h) * nQB + I) * nKB + J)];
  }
  double at(int64_t b, int64_t h, int64_t I, int64_t J) const {
    return v[static_cast<size_t>(((b * H + h) * nQB + I) * nKB + J)];
  }
};

/// For every (b, h, query block) a sorted, duplicate-free list of KV blocks.
struct BlockSet {
  int64_t B = 0, H = 0, nQB = 0, nKB = 0;
  int64_t bq = 0, bk = 0, Sq = 0, Skv = 0;
  std::vector<std::vector<int32_t>> lists; // index (b * H + h) * nQB + I
  std::vector<int32_t> &row(int64_t b, int64_t h, int64_t I) {
    return lists[static_cast<size_t>((b * H + h) * nQB + I)];
  }
  const std::vector<int32_t> &row(int64_t b, int64_t h, int64_t I) const {
    return lists[static_cast<size_t>((b * H + h) * nQB + I)];
  }
};

/// A block set read by columns: for every (b, h, KV block J) the query blocks
/// I, ascending, whose row (b, h, I) of the source BlockSet names J. The dK/dV
/// backward pass walks, per KV block, the query blocks that read it. Heads and
/// geometry are the source set's (per query head or per KV group).
struct TransposedBlockSet {
  int64_t B = 0, H = 0, nQB = 0, nKB = 0;
  int64_t bq = 0, bk = 0, Sq = 0, Skv = 0;
  std::vector<std::vector<int32_t>> lists; // index (b * H + h) * nKB + J
  std::vector<int32_t> &col(int64_t b, int64_t h, int64_t J) {
    return lists[static_cast<size_t>((b * H + h) * nKB + J)];
  }
  const std::vector<int32_t> &col(int64_t b, int64_t h, int64_t J) const {
    return lists[static_cast<size_t>((b * H + h) * nKB + J)];
  }
};

/// For every (b, h) the active query rows, ascending.
struct QuerySet {
  int64_t B = 0, H = 0, Sq = 0;
  std::vector<std::vector<int32_t>> active; // index b * H + h
};

/// KV blocks to keep per (b, head, query-block row); H == 1 when shared.
struct Budget {
  int64_t B = 0, H = 0, nQB = 0;
  std::vector<int64_t> k; // index (b * H + h) * nQB + I
  int64_t at(int64_t b, int64_t h, int64_t I) const {
    return k[static_cast<size_t>((b * H + h) * nQB + I)];
  }
};

/// Kept KV tokens per (b, KV head), ascending (decode slimming).
struct TokenSet {
  int64_t B = 0, H = 0, Skv = 0;
  std::vector<std::vector<int32_t>> kept; // index b * H + h
};

/// Token-level vertical-slash set (§12b): per (b, h) the kept key columns,
/// ascending, and the maximal disjoint distance intervals [lo, hi) of the
/// kept slashes widened to bands of bq distances, ascending.
struct VSlashSet {
  int64_t B = 0, H = 0, Sq = 0, Skv = 0, bq = 0;
  std::vector<std::vector<int32_t>> columns;                      // index b * H + h
  std::vector<std::vector<std::pair<int32_t, int32_t>>> intervals; // index b * H + h
};

/// Per batch, the [start, end) token ranges of a modality segment.
struct Segments {
  std::vector<std::vector<std::pair<int64_t, int64_t>>> ranges;
};

} // namespace sattn::ref
