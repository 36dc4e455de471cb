//===- Patterns.cpp - ready-made variants, written as sattn IR ------------===//
//
// The patterns are ordinary IR: what a researcher would write by hand, so
// they go through the same verifier, passes and cache as any other variant.
//
//===----------------------------------------------------------------------===//
#include "sattn/sattn.h"

#include <cstdio>
#include <sstream>

namespace sattn::patterns {

namespace {

struct Types {
  std::string q, kv, lse, qPooled, kPooled;
  explicit Types(const Heads &h) {
    std::string e = h.dtype == DType::FP16 ? "f16" : "bf16";
    std::string d = std::to_string(h.headDim);
    q = "tensor<?x" + std::to_string(h.heads) + "x?x" + d + "x" + e + ">";
    kv = "tensor<?x" + std::to_string(h.kvHeads) + "x?x" + d + "x" + e + ">";
    lse = "tensor<?x" + std::to_string(h.heads) + "x?xf32>";
    qPooled = "tensor<?x" + std::to_string(h.heads) + "x?x" + d + "xf32>";
    kPooled = "tensor<?x" + std::to_string(h.kvHeads) + "x?x" + d + "xf32>";
  }
  std::string signature(const std::string &name, bool lse) const {
    return "func.func @" + name + "(%q: " + q + ", %k: " + kv + ", %v: " + kv + ") -> (" + q +
           (lse ? ", " + this->lse : "") + ") {\n";
  }
  std::string attention(const std::string &extra, const std::string &attrs, bool lse) const {
    return std::string("  %o") + (lse ? ", %l" : "") + " = sattn.attention %q, %k, %v" + extra +
           " {" + attrs + "} : " + q + ", " + kv + ", " + kv + " -> " + q +
           (lse ? ", " + this->lse : "") + "\n  return %o" + (lse ? ", %l" : "") + " : " + q +
           (lse ? ", " + this->lse : "") + "\n}\n";
  }
};

} // namespace

Variant dense(const Heads &h, bool causal, bool lse) {
  Types t(h);
  return Variant::fromText(t.signature(causal ? "dense_causal" : "dense", lse) +
                           t.attention("", causal ? "causal" : "", lse));
}

Variant streaming(const Heads &h, int64_t window, int64_t sinks) {
  Types t(h);
  std::string attrs = "causal, window = " + std::to_string(window) + " : i64";
  if (sinks > 0)
    attrs += ", sinks = " + std::to_string(sinks) + " : i64";
  return Variant::fromText(t.signature("streaming", false) + t.attention("", attrs, false));
}

Variant topkBlocks(const Heads &h, int64_t pool, int64_t block, int64_t k) {
  Types t(h);
  std::string g = std::to_string(pool), b = std::to_string(block);
  std::string scores =
      "!sattn.scores<bq = " + b + ", bk = " + b + ", heads = " + std::to_string(h.heads) + ">";
  std::string blocks =
      "!sattn.blocks<bq = " + b + ", bk = " + b + ", heads = " + std::to_string(h.heads) + ">";
  std::ostringstream os;
  os << t.signature("topk_blocks", false) << "  %qp = sattn.pool mean %q group " << g << " : "
     << t.q << " -> " << t.qPooled << "\n"
     << "  %kp = sattn.pool mean %k group " << g << " : " << t.kv << " -> " << t.kPooled << "\n"
     << "  %s = sattn.scores %qp, %kp of %q, %k {q_group = " << g << " : i64, k_group = " << g
     << " : i64, causal} : " << t.qPooled << ", " << t.kPooled << ", " << t.q << ", " << t.kv
     << " -> " << scores << "\n"
     << "  %bs = sattn.select_blocks topk %s {k = " << k
     << " : i64, forced = #sattn.forced<sink = 1, diagonal = true>} : " << scores << " -> "
     << blocks << "\n"
     << t.attention(" blocks %bs : " + blocks, "causal", false);
  return Variant::fromText(os.str());
}

Variant blockMask(const Heads &h, int64_t block, bool causal, int64_t setHeads) {
  Types t(h);
  std::string b = std::to_string(block);
  std::string blocks = "!sattn.blocks<bq = " + b + ", bk = " + b +
                       ", heads = " + std::to_string(setHeads > 0 ? setHeads : h.heads) + ">";
  std::string sig = t.signature("block_mask", false);
  // One more argument, named for the tools and the Python package.
  sig.insert(sig.find(") -> "), ", %blocks: " + blocks + " {sattn.name = \"blocks\"}");
  return Variant::fromText(
      sig + t.attention(" blocks %blocks : " + blocks, causal ? "causal" : "", false));
}

namespace {
/// A double as an MLIR f64 literal (always with a decimal point).
std::string f64(double x) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.15g", x);
  std::string s = buf;
  if (s.find_first_of(".en") == std::string::npos)
    s += ".0";
  return s + " : f64";
}
std::string i64(int64_t x) { return std::to_string(x) + " : i64"; }
} // namespace

Variant omnisparse(const Heads &h, const OmniSparseOptions &o) {
  Types t(h);
  std::string g = std::to_string(o.pool), b = std::to_string(o.block),
              heads = std::to_string(h.heads);
  std::string scores = "!sattn.scores<bq = " + b + ", bk = " + b + ", heads = " + heads + ">";
  std::string blocks = "!sattn.blocks<bq = " + b + ", bk = " + b + ", heads = " + heads + ">";
  std::string budget = "!sattn.budget<bq = " + b + ", heads = 1>";
  std::string queries = "!sattn.queries<heads = " + heads + ">";
  std::string forced = "#sattn.forced<sink = 1, diagonal = true>";
  std::ostringstream os;
  os << t.signature("omnisparse", false) << "  %qp = sattn.pool mean %q group " << g << " : " << t.q
     << " -> " << t.qPooled << "\n"
     << "  %kp = sattn.pool mean %k group " << g << " : " << t.kv << " -> " << t.kPooled << "\n"
     << "  %s = sattn.scores %qp, %kp of %q, %k {q_group = " << i64(o.pool)
     << ", k_group = " << i64(o.pool) << ", causal} : " << t.qPooled << ", " << t.kPooled << ", "
     << t.q << ", " << t.kv << " -> " << scores << "\n"
     << "  %b = sattn.head_budget flattest %s {tau = " << f64(o.tau) << ", forced = " << forced
     << "} : " << scores << " -> " << budget << "\n"
     << "  %bs = sattn.select_blocks topk %s budget %b : " << budget << " {forced = " << forced
     << "} : " << scores << " -> " << blocks << "\n"
     << "  %qs = sattn.classify_queries %q, %k {key_group = " << i64(o.pool)
     << ", window = " << i64(o.window) << ", sinks = " << i64(o.sinks)
     << ", theta = " << f64(o.theta) << ", keep_every = " << i64(o.keepEvery) << "} : " << t.q
     << ", " << t.kv << " -> " << queries << "\n"
     << t.attention(" blocks %bs : " + blocks + " queries %qs : " + queries,
                    "causal, lazy_window = " + i64(o.window) + ", lazy_sinks = " + i64(o.sinks),
                    false);
  return Variant::fromText(os.str());
}

Variant xattention(const Heads &h, const XAttentionOptions &o) {
  if (o.slack < 0)
    throw Error("xattention: slack (blocks kept past tau) must be >= 0, got " +
                std::to_string(o.slack));
  Types t(h);
  std::string b = std::to_string(o.block), heads = std::to_string(h.heads);
  std::string scores = "!sattn.scores<bq = " + b + ", bk = " + b + ", heads = " + heads + ">";
  std::string blocks = "!sattn.blocks<bq = " + b + ", bk = " + b + ", heads = " + heads + ">";
  std::ostringstream os;
  os << t.signature("xattention", false)
     << "  %s = sattn.antidiag_scores %q, %k {stride = " << i64(o.stride) << ", causal} : " << t.q
     << ", " << t.kv << " -> " << scores << "\n"
     << "  %bs = sattn.select_blocks cumulative %s {tau = " << f64(o.tau)
     << ", forced = #sattn.forced<sink = 1, diagonal = true>"
     << (o.slack > 0 ? ", slack = " + i64(o.slack) : std::string()) << "} : " << scores << " -> "
     << blocks << "\n"
     << t.attention(" blocks %bs : " + blocks, "causal", false);
  return Variant::fromText(os.str());
}

Variant flexprefill(const Heads &h, const FlexPrefillOptions &o) {
  if (o.block <= 0 || o.minBudget < 0 || o.maxBudget < 0 || !(o.gamma >= 0 && o.gamma <= 1) ||
      !(o.jsd >= 0))
    throw Error("flexprefill: block must be positive, budgets >= 0, gamma in [0, 1] and "
                "jsd >= 0");
  Types t(h);
  std::string b = std::to_string(o.block), heads = std::to_string(h.heads);
  std::string scores = "!sattn.scores<bq = " + b + ", bk = " + b + ", heads = " + heads + ">";
  std::string blocks = "!sattn.blocks<bq = " + b + ", bk = " + b + ", heads = " + heads + ">";
  auto toBlocks = [&](int64_t tokens) { return (tokens + o.block - 1) / o.block; };
  std::string attrs = "last = " + i64(o.block) + ", gamma = " + f64(o.gamma) +
                      ", min_blocks = " + i64(toBlocks(o.minBudget)) +
                      ", max_blocks = " + i64(toBlocks(o.maxBudget));
  std::ostringstream os;
  os << t.signature("flexprefill", false);
  if (o.jsd > 0) {
    os << "  %qp = sattn.pool mean %q group " << b << " : " << t.q << " -> " << t.qPooled << "\n"
       << "  %kp = sattn.pool mean %k group " << b << " : " << t.kv << " -> " << t.kPooled << "\n"
       << "  %s = sattn.scores %qp, %kp of %q, %k {q_group = " << i64(o.block)
       << ", k_group = " << i64(o.block) << ", causal} : " << t.qPooled << ", " << t.kPooled
       << ", " << t.q << ", " << t.kv << " -> " << scores << "\n"
       << "  %qa = sattn.select_blocks cumulative %s per head {tau = " << f64(o.gamma)
       << "} : " << scores << " -> " << blocks << "\n"
       << "  %bs = sattn.vertical_slash %q, %k aware %qa, %kp {" << attrs
       << ", jsd = " << f64(o.jsd) << "} : " << t.q << ", " << t.kv << " aware " << blocks << ", "
       << t.kPooled << " -> " << blocks << "\n";
  } else {
    os << "  %bs = sattn.vertical_slash %q, %k {" << attrs << "} : " << t.q << ", " << t.kv
       << " -> " << blocks << "\n";
  }
  os << t.attention(" blocks %bs : " + blocks, "causal", false);
  return Variant::fromText(os.str());
}

Variant minferenceVerticalSlash(const Heads &h, const VerticalSlashOptions &o) {
  if (o.vertical < 0 || o.slash < 0 || o.last <= 0 || o.block <= 0 || o.sinkColumns < 0 ||
      o.localSlashes < 1)
    throw Error("minference vertical-slash: vertical, slash and sink_columns must be >= 0, last "
                "and block positive, local_slashes >= 1 (the diagonal)");
  Types t(h);
  std::string vs = "!sattn.vslash<bq = " + std::to_string(o.block) +
                   ", heads = " + std::to_string(h.heads) + ">";
  std::ostringstream os;
  os << t.signature("minference_vertical_slash", false) << "  %vs = sattn.vslash %q, %k {last = "
     << i64(o.last) << ", vertical = " << i64(o.vertical) << ", slash = " << i64(o.slash)
     << ", sink_columns = " << i64(o.sinkColumns) << ", local_slashes = " << i64(o.localSlashes)
     << "} : " << t.q << ", " << t.kv << " -> " << vs << "\n"
     << t.attention(" vslash %vs : " + vs, "causal", false);
  return Variant::fromText(os.str());
}

Variant quest(const Heads &h, const QuestOptions &o) {
  if (o.page <= 0 || o.pages < 1)
    throw Error("quest: page (" + std::to_string(o.page) + ") and pages (" +
                std::to_string(o.pages) + ") must be positive");
  Types t(h);
  std::string pg = std::to_string(o.page), heads = std::to_string(h.heads);
  std::string scores = "!sattn.scores<bq = " + pg + ", bk = " + pg + ", heads = " + heads + ">";
  std::string blocks = "!sattn.blocks<bq = " + pg + ", bk = " + pg + ", heads = " + heads + ">";
  std::ostringstream os;
  std::string sig = t.signature("quest", false);
  if (o.boundsAsInputs)
    sig.insert(sig.find(") -> "), ", %kmin: " + t.kPooled + " {sattn.name = \"kmin\"}, %kmax: " +
                                      t.kPooled + " {sattn.name = \"kmax\"}");
  os << sig << "  %qp = sattn.pool mean %q group 1 : " << t.q << " -> " << t.qPooled << "\n";
  if (!o.boundsAsInputs)
    os << "  %kmin = sattn.pool min %k group " << pg << " : " << t.kv << " -> " << t.kPooled << "\n"
       << "  %kmax = sattn.pool max %k group " << pg << " : " << t.kv << " -> " << t.kPooled
       << "\n";
  os << "  %u = sattn.scores %qp, %kmin bound %kmax of %q, %k {k_group = " << i64(o.page)
     << ", causal} : " << t.qPooled << ", " << t.kPooled << " bound " << t.kPooled << ", " << t.q
     << ", " << t.kv << " -> " << scores << "\n"
     << "  %bs = sattn.select_blocks topk %u {k = " << i64(o.pages)
     << ", forced = #sattn.forced<diagonal = true>} : " << scores << " -> " << blocks << "\n"
     << t.attention(" blocks %bs : " + blocks, "causal", false);
  return Variant::fromText(os.str());
}

Variant unisparse(const Heads &h, const UniSparseOptions &o) {
  if (o.granularities.empty() || o.granularities.size() > 4)
    throw Error("unisparse: give 1 to 4 granularities, got " +
                std::to_string(o.granularities.size()));
  for (size_t i = 0; i < o.granularities.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (o.granularities[i] == o.granularities[j])
        throw Error("unisparse: granularity " + std::to_string(o.granularities[i]) +
                    " is given twice");
  Types t(h);
  std::string b = std::to_string(o.block), heads = std::to_string(h.heads);
  std::string scores = "!sattn.scores<bq = " + b + ", bk = " + b + ", heads = " + heads + ">";
  std::string blocks = "!sattn.blocks<bq = " + b + ", bk = " + b + ", heads = " + heads + ">";
  std::ostringstream os;
  os << t.signature("unisparse", false);
  std::string grids;
  for (int64_t c : o.granularities) {
    std::string g = std::to_string(c);
    os << "  %qp" << g << " = sattn.pool mean %q group " << g << " : " << t.q << " -> " << t.qPooled
       << "\n"
       << "  %kp" << g << " = sattn.pool mean %k group " << g << " : " << t.kv << " -> "
       << t.kPooled << "\n"
       << "  %s" << g << " = sattn.scores %qp" << g << ", %kp" << g
       << " of %q, %k {q_group = " << i64(c) << ", k_group = " << i64(c)
       << ", causal} : " << t.qPooled << ", " << t.kPooled << ", " << t.q << ", " << t.kv << " -> "
       << scores << "\n";
    grids += (grids.empty() ? "%s" : ", %s") + g;
  }
  std::string s = grids;
  if (o.granularities.size() > 1) {
    os << "  %s = sattn.mean_scores " << grids << " : " << scores << "\n";
    s = "%s";
  }
  os << "  %bs = sattn.select_blocks cumulative " << s << " {tau = " << f64(o.tau)
     << (o.cap > 0 ? ", k = " + i64(o.cap) : std::string())
     << ", forced = #sattn.forced<sink = 1, diagonal = true>} : " << scores << " -> " << blocks
     << "\n"
     << t.attention(" blocks %bs : " + blocks, "causal", false);
  return Variant::fromText(os.str());
}

Variant omnisparseDecode(const Heads &h, const SlimOptions &o) {
  Types t(h);
  std::string e = h.dtype == DType::FP16 ? "f16" : "bf16", d = std::to_string(h.headDim);
  std::string q1 = "tensor<?x" + std::to_string(h.heads) + "x1x" + d + "x" + e + ">";
  std::string tokens = "!sattn.tokens<heads = " + std::to_string(h.kvHeads) + ">";
  std::ostringstream os;
  os << "func.func @omnisparse_decode(%prompt: " << t.q
     << " {sattn.name = \"prompt\"}, %k: " << t.kv << " {sattn.name = \"k\"}, %v: " << t.kv
     << " {sattn.name = \"v\"}, %q: " << q1 << " {sattn.name = \"q\"}) -> (" << q1 << ", " << t.lse
     << ") {\n"
     << "  %ts = sattn.kv_slim %prompt, %k {observe = " << i64(o.observe)
     << ", tau = " << f64(o.tau) << ", sinks = " << i64(o.sinks) << ", recent = " << i64(o.recent)
     << "} : " << t.q << ", " << t.kv << " -> " << tokens << "\n"
     << "  %o, %l = sattn.decode_attention %q, %k, %v tokens %ts : " << tokens << " : " << q1
     << ", " << t.kv << ", " << t.kv << " -> " << q1 << ", " << t.lse << "\n"
     << "  return %o, %l : " << q1 << ", " << t.lse << "\n}\n";
  return Variant::fromText(os.str());
}

} // namespace sattn::patterns
