//===- Plan.h - a lowered variant as plain data for the GPU runtime -------===//
//
// The runtime does not walk MLIR while launching: a Plan, extracted once
// from kernel-level IR, lists values (with the static facts of their types)
// and launches (template, constants, operand and result value ids).
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace sattn::gpu {

/// Ints: an integer input of rank 1-3 (page table, lengths, segments).
/// VSlash: a token-level vertical-slash set (semantics §12b).
enum class ValueKind {
  Tensor4,
  Lse,
  Tensor3F32,
  Scores,
  Blocks,
  Budget,
  Queries,
  Tokens,
  Ints,
  VSlash
};
enum class Elem { BF16, FP16, F32, I32, I64 };

struct ValueInfo {
  ValueKind kind;
  Elem elem = Elem::F32;
  int64_t heads = 0, dim = 0; ///< static heads / head dim (tensors)
  int64_t bq = 0, bk = 0;     ///< block sizes (scores, blocks, budgets)
  int64_t seqStatic = -1;     ///< static length (dimension 2) or -1
};

using Const = std::variant<int64_t, double, bool, std::string>;

struct Launch {
  std::string kernel, deviceTemplate;
  std::map<std::string, Const> consts;
  std::vector<int> operands, results;

  int64_t i(const std::string &name) const;
  double f(const std::string &name) const;
  bool b(const std::string &name) const;
  const std::string &s(const std::string &name) const;
};

struct Plan {
  std::string name;  ///< function name
  std::string key;   ///< specialisation key (sattn.spec)
  std::string dtype; ///< "bf16" | "fp16"
  std::string arch;  ///< architecture the kernels were chosen for
  std::vector<ValueInfo> values;
  std::vector<int> args; ///< value ids of the function arguments
  std::vector<std::string> argNames;
  std::vector<int> results; ///< value ids returned
  /// Per result, the argument whose batch and length (dims 0 and 2) it
  /// follows: the q of the launch that writes it.
  std::vector<int> resultArg;
  std::vector<Launch> launches;
};

} // namespace sattn::gpu
