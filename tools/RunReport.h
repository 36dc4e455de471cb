//===- RunReport.h - what sattn-run writes besides O and LSE --------------===//
#pragma once

#include "runtime/executor/CpuExecutor.h"

#include <optional>
#include <string>

namespace sattn::tools {

struct RunMetrics {
  std::optional<double> relErr; // --check only
  int64_t nanCount = 0;
  std::optional<double> density, recall, error; // prefill attention only
  std::optional<double> recallUnaligned;          // ref::kUnalignedRecallRows rows
  std::optional<double> kvKept;                 // decode with a token set
};

/// Density, recall and error against dense attention (semantics §13).
RunMetrics computeMetrics(const CpuRunResult &run);

/// Writes counts.npy, indices.npy and, when present, queries.npy,
/// budgets.npy and tokens.npy into DIR (created if missing).
void dumpSelection(const SelectionInfo &sel, const std::string &dir);

/// Compile facts of a GPU run for the report.
struct CompileReport {
  std::string arch, diskCache; // "hit" | "miss" | "corrupt (recompiled)"
  double compileMs = 0, loadMs = 0;
};

/// The --json document; `phases` are (name, ms) in program order.
std::string renderJson(const std::string &device, const RunMetrics &m,
                       const std::vector<std::pair<std::string, double>> &phases,
                       const std::optional<CompileReport> &compile = std::nullopt);

} // namespace sattn::tools
