//===- RunReport.cpp - what sattn-run writes besides O and LSE ------------===//
//
// The selection dump follows design §7: counts [B,H,nQB] and indices
// [B,H,nQB,max] int32, ascending, -1 padded. Query and token sets are
// written as 0/1 masks ([B,H,Sq] and [B,Hkv,Skv]) since their lists are
// ragged.
//
//===----------------------------------------------------------------------===//
#include "tools/RunReport.h"

#include "runtime/io/Npy.h"
#include "tools/ToolSupport.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"

#include <algorithm>
#include <cmath>

namespace sattn::tools {

RunMetrics computeMetrics(const CpuRunResult &run) {
  RunMetrics m;
  for (const auto &t : run.results)
    for (double x : t->data)
      m.nanCount += std::isnan(x) ? 1 : 0;
  const SelectionInfo &s = run.selection;
  if (s.decode) {
    if (s.tokens)
      m.kvKept = ref::keptFraction(*s.tokens);
    return m;
  }
  if (!s.q)
    return m;
  ref::Attended a{s.blocks.get(), s.queries.get(), s.params};
  m.density = ref::density(*s.q, *s.k, a);
  m.recall = ref::recall(*s.q, *s.k, a);
  m.recallUnaligned = ref::recall(*s.q, *s.k, a, ref::kUnalignedRecallRows);
  // Error against dense attention with the same causality (semantics §13).
  ref::AttentionParams dense;
  dense.mask.causal = s.params.mask.causal;
  dense.scale = s.params.scale;
  ref::AttentionResult d = ref::attention(*s.q, *s.k, *s.v, nullptr, nullptr, dense);
  m.error = ref::relativeError(*run.results[0], d.out);
  return m;
}

void dumpSelection(const SelectionInfo &sel, const std::string &dir) {
  if (std::error_code ec = llvm::sys::fs::create_directories(dir))
    throw ToolError("cannot create --dump-selection directory '" + dir + "': " + ec.message());
  auto path = [&](const char *f) { return dir + "/" + f; };
  if (const ref::BlockSet *bs = sel.blocks.get()) {
    size_t width = 0;
    for (const auto &l : bs->lists)
      width = std::max(width, l.size());
    std::vector<double> counts, indices;
    for (const auto &l : bs->lists) {
      counts.push_back(double(l.size()));
      for (size_t i = 0; i < width; ++i)
        indices.push_back(i < l.size() ? double(l[i]) : -1.0);
    }
    io::writeNpyI32(path("counts.npy"), {bs->B, bs->H, bs->nQB}, counts);
    io::writeNpyI32(path("indices.npy"), {bs->B, bs->H, bs->nQB, int64_t(width)}, indices);
  }
  if (const ref::QuerySet *qs = sel.queries.get()) {
    std::vector<double> mask(size_t(qs->B * qs->H * qs->Sq), 0.0);
    for (size_t bh = 0; bh < qs->active.size(); ++bh)
      for (int32_t r : qs->active[bh])
        mask[bh * size_t(qs->Sq) + size_t(r)] = 1.0;
    io::writeNpyI32(path("queries.npy"), {qs->B, qs->H, qs->Sq}, mask);
  }
  if (const ref::Budget *b = sel.budget.get()) {
    std::vector<double> k(b->k.begin(), b->k.end());
    io::writeNpyI32(path("budgets.npy"), {b->B, b->H, b->nQB}, k);
  }
  if (const ref::TokenSet *ts = sel.tokens.get()) {
    std::vector<double> mask(size_t(ts->B * ts->H * ts->Skv), 0.0);
    for (size_t bh = 0; bh < ts->kept.size(); ++bh)
      for (int32_t t : ts->kept[bh])
        mask[bh * size_t(ts->Skv) + size_t(t)] = 1.0;
    io::writeNpyI32(path("tokens.npy"), {ts->B, ts->H, ts->Skv}, mask);
  }
}

std::string renderJson(const std::string &device, const RunMetrics &m,
                       const std::vector<std::pair<std::string, double>> &phaseList,
                       const std::optional<CompileReport> &compile) {
  auto opt = [](const std::optional<double> &v) -> llvm::json::Value {
    if (v)
      return *v;
    return nullptr;
  };
  llvm::json::Object phases;
  double total = 0;
  for (auto &[name, ms] : phaseList) {
    // Repeated ops (two pools) get a numeric suffix so no phase is lost.
    std::string key = name;
    for (int n = 2; phases.get(key); ++n)
      key = name + "#" + std::to_string(n);
    phases[key] = ms;
    total += ms;
  }
  llvm::json::Object doc{
      {"device", device},          {"rel_err", opt(m.relErr)},       {"nan_count", m.nanCount},
      {"density", opt(m.density)}, {"recall", opt(m.recall)},        {"error", opt(m.error)},
      {"kv_kept", opt(m.kvKept)},  {"phases_ms", std::move(phases)}, {"total_ms", total},
      {"recall_unaligned", opt(m.recallUnaligned)}};
  if (compile)
    doc["compile"] = llvm::json::Object{{"arch", compile->arch},
                                        {"disk_cache", compile->diskCache},
                                        {"nvrtc_ms", compile->compileMs},
                                        {"load_ms", compile->loadMs}};
  std::string s;
  llvm::raw_string_ostream os(s);
  os << llvm::formatv("{0:2}", llvm::json::Value(std::move(doc)));
  return s;
}

} // namespace sattn::tools
