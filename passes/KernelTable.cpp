//===- KernelTable.cpp - which device template runs each semantic op ------===//
//
// Constants are named in upper case because they become template
// arguments of the generated CUDA C++. Every attribute that changes the
// generated code appears here, so it also appears in the cache key.
//
//===----------------------------------------------------------------------===//
#include "passes/KernelTable.h"

#include "codegen/device/attention_wgmma.cuh"
#include "codegen/device/classify.cuh"
#include "codegen/device/estimation.cuh"

#include "llvm/ADT/TypeSwitch.h"

#include <cmath>

using namespace mlir;
using namespace sattn;

namespace {

/// Accumulates the constants of one kernel.
class Consts {
public:
  Consts(MLIRContext *ctx, DictionaryAttr spec) : b(ctx) {
    for (NamedAttribute a : spec)
      if (a.getName() != "key" && a.getName() != "arch")
        attrs.append(StringAttr::get(ctx, a.getName().getValue().upper()), a.getValue());
  }
  Consts &i(StringRef n, int64_t v) { return set(n, b.getI64IntegerAttr(v)); }
  Consts &f(StringRef n, double v) { return set(n, b.getF64FloatAttr(v)); }
  Consts &flag(StringRef n, bool v) { return set(n, b.getBoolAttr(v)); }
  Consts &s(StringRef n, StringRef v) { return set(n, b.getStringAttr(v)); }
  Consts &forced(ForcedAttr f) {
    i("F_SINK", f ? f.getSink() : 0).i("F_LOCAL", f ? f.getLocal() : 0);
    return flag("F_DIAG", f && f.getDiagonal());
  }
  Consts &scale(std::optional<APFloat> s, DictionaryAttr spec) {
    int64_t d = llvm::cast<IntegerAttr>(spec.get("head_dim")).getInt();
    return f("SCALE", s ? s->convertToDouble() : 1.0 / std::sqrt(double(d)));
  }
  DictionaryAttr get() { return attrs.getDictionary(b.getContext()); }

private:
  Consts &set(StringRef n, Attribute v) {
    attrs.set(n, v);
    return *this;
  }
  Builder b;
  NamedAttrList attrs;
};

/// Selections and budgets need the causal flag of the scores they read.
bool causalOf(Value scores) { return scoresCausal(scores).value_or(false); }

} // namespace

KernelSpec sattn::blockListKernel(BlocksType t, DictionaryAttr spec) {
  Consts c(t.getContext(), spec);
  c.i("BQ", t.getBq()).i("BK", t.getBk()).i("SET_HEADS", t.getHeads());
  return {"blocks_from_list", c.get()};
}

FailureOr<SmallVector<KernelSpec, 2>> sattn::kernelsFor(Operation *op, DictionaryAttr spec) {
  MLIRContext *ctx = op->getContext();
  auto one = [](StringRef name, Consts &c) {
    return SmallVector<KernelSpec, 2>{{name.str(), c.get()}};
  };
  return TypeSwitch<Operation *, FailureOr<SmallVector<KernelSpec, 2>>>(op)
      .Case([&](PoolOp p) {
        Consts c(ctx, spec);
        c.i("GROUP", p.getGroupAttr().getInt())
            .s("KIND", stringifyPoolKind(p.getKind()))
            .i("IN_HEADS", llvm::cast<RankedTensorType>(p.getInput().getType()).getDimSize(1))
            .flag("SPLIT", false);
        return one("pool", c);
      })
      .Case([&](ScoresOp s) {
        Consts c(ctx, spec);
        ScoresType t = s.getResult().getType();
        c.i("BQ", t.getBq())
            .i("BK", t.getBk())
            .i("Q_GROUP", s.getQGroupAttr().getInt())
            .i("K_GROUP", s.getKGroupAttr().getInt())
            .flag("BOUND", bool(s.getKMax()))
            .flag("CAUSAL", s.getCausal())
            .scale(s.getScale(), spec);
        return one("block_scores", c);
      })
      .Case([&](MeanScoresOp m) {
        // Normalised weights as constants: one fused multiply-add chain.
        Consts c(ctx, spec);
        size_t n = m.getInputs().size();
        std::vector<double> w(n, 1.0);
        if (auto given = m.getWeights())
          w.assign(given->begin(), given->end());
        double total = 0;
        for (double x : w)
          total += x;
        c.i("N", int64_t(n));
        for (size_t i = 0; i < 4; ++i)
          c.f(("W" + std::to_string(i)), i < n ? w[i] / total : 0.0);
        return one("mean_scores", c);
      })
      .Case([&](HeadBudgetOp h) {
        Consts c(ctx, spec);
        ScoresType t = h.getScores().getType();
        c.i("BQ", t.getBq())
            .i("BK", t.getBk())
            .f("TAU", h.getTau().convertToDouble())
            .s("SHARE", stringifyBudgetShare(h.getShare()))
            .flag("CAUSAL", causalOf(h.getScores()))
            .forced(h.getForcedAttr());
        return one("head_budget", c);
      })
      .Case([&](SelectBlocksOp s) {
        Consts c(ctx, spec);
        ScoresType t = s.getScores().getType();
        c.i("BQ", t.getBq())
            .i("BK", t.getBk())
            .i("K", s.getKAttr() ? s.getKAttr().getInt() : -1)
            .f("TAU", s.getTau() ? s.getTau()->convertToDouble() : 0.0)
            .i("CAP", s.getCapAttr() ? s.getCapAttr().getInt() : 0)
            .i("SLACK", s.getSlack())
            .i("OUT_HEADS", s.getResult().getType().getHeads())
            .flag("HAS_BUDGET", bool(s.getBudget()))
            .flag("CAUSAL", causalOf(s.getScores()))
            .forced(s.getForcedAttr());
        if (s.getScope() == SelectScope::head)
          return one("select_cumulative_head", c);
        return one(s.getRule() == SelectRule::topk ? "select_topk" : "select_cumulative", c);
      })
      .Case([&](StaticBlocksOp s) {
        Consts c(ctx, spec);
        BlocksType t = s.getResult().getType();
        c.i("BQ", t.getBq())
            .i("BK", t.getBk())
            .flag("CAUSAL", s.getCausal())
            .i("WINDOW", s.getWindowAttr().getInt())
            .i("SINKS", s.getSinksAttr().getInt())
            .i("OUT_HEADS", t.getHeads());
        return one("static_blocks", c);
      })
      .Case<UnionOp, IntersectOp>([&](Operation *u) {
        Consts c(ctx, spec);
        auto t = llvm::cast<BlocksType>(u->getResult(0).getType());
        c.i("BQ", t.getBq()).i("BK", t.getBk()).i("SET_HEADS", t.getHeads());
        return one(isa<UnionOp>(u) ? "block_set_union" : "block_set_intersect", c);
      })
      .Case([&](ClassifyQueriesOp q) {
        // Mean-pool the keys (the `pool` template on operand k), then
        // classify. On tensor cores classify reads the pooled keys already
        // split into 16-bit halves (pool SPLIT), so its tiles need no
        // conversion.
        int64_t d = llvm::cast<IntegerAttr>(spec.get("head_dim")).getInt();
        Consts pool(ctx, spec);
        pool.i("GROUP", q.getKeyGroupAttr().getInt())
            .s("KIND", stringifyPoolKind(PoolKind::mean))
            .i("IN_HEADS", llvm::cast<RankedTensorType>(q.getK().getType()).getDimSize(1))
            .flag("SPLIT", dev::classify_mma(int(d)));
        Consts c(ctx, spec);
        c.i("KEY_GROUP", q.getKeyGroupAttr().getInt())
            .i("WINDOW", q.getWindowAttr().getInt())
            .i("SINKS", q.getSinksAttr().getInt())
            .f("THETA", q.getTheta().convertToDouble())
            .i("KEEP_EVERY", q.getKeepEveryAttr().getInt())
            .scale(q.getScale(), spec);
        return SmallVector<KernelSpec, 2>{{"pool", pool.get(), {1}}, {"classify_queries", c.get()}};
      })
      .Case([&](AttentionOp a) {
        Consts c(ctx, spec);
        c.flag("CAUSAL", a.getCausal())
            .i("WINDOW", a.getWindowAttr().getInt())
            .i("SINKS", a.getSinksAttr().getInt())
            .scale(a.getScale(), spec)
            .flag("HAS_LSE", bool(a.getLse()));
        int64_t bq = 0, bk = 0, setHeads = 0;
        if (Value b = a.getBlocks()) {
          auto t = llvm::cast<BlocksType>(b.getType());
          bq = t.getBq(), bk = t.getBk(), setHeads = t.getHeads();
        }
        c.flag("HAS_BLOCKS", bool(a.getBlocks()))
            .i("SET_BQ", bq)
            .i("SET_BK", bk)
            .i("SET_HEADS", setHeads);
        BlockPatternAttr p = a.getBlockPatternAttr();
        c.flag("HAS_PATTERN", bool(p))
            .i("P_BQ", p ? p.getBq() : 0)
            .i("P_BK", p ? p.getBk() : 0)
            .flag("P_CAUSAL", p && p.getCausal())
            .i("P_WINDOW", p ? p.getWindow() : 0)
            .i("P_SINKS", p ? p.getSinks() : 0);
        c.flag("HAS_QUERIES", bool(a.getQueries()))
            .s("LAZY", stringifyLazyPolicy(a.getLazy()))
            .i("LAZY_WINDOW", a.getLazyWindowAttr().getInt())
            .i("LAZY_SINKS", a.getLazySinksAttr().getInt());
        // The tensor-core kernels cover head dims 64 and 128, query sets
        // only on Hopper (attn_wgmma_supported / attn_mma_supported in
        // codegen/device); the fp32 kernel handles the rest.
        int64_t d = llvm::cast<IntegerAttr>(spec.get("head_dim")).getInt();
        bool hopper = llvm::cast<StringAttr>(spec.get("arch")).getValue() == "sm_90a";
        Value vs = a.getVslash();
        int64_t vsBq = vs ? llvm::cast<VSlashType>(vs.getType()).getBq() : 0;
        c.flag("HAS_VSLASH", bool(vs)).i("VS_BQ", vsBq);
        // Bands and gathered columns are key tiles of the wgmma kernel's
        // one-consumer (64-row) schedule only. Elsewhere the launch names a
        // template the device library lacks: the CPU device still runs the
        // variant, and code generation says why the GPU cannot.
        if (vs && (!hopper || (d != 64 && d != 128) || vsBq % 64 != 0))
          return one("attn_fwd_vslash_unavailable", c);
        bool tensorCores = (d == 64 || d == 128) && (hopper || !a.getQueries());
        if (!tensorCores)
          return one("attn_fwd", c);
        // Hopper gets the wgmma kernel; other GPUs the portable mma.sync one,
        // whose query rows per CTA are the autotuner's knob (64: heuristic).
        // Its knobs: whether the two consumer warpgroups take turns on the
        // tensor cores (ping-pong; measured faster at D = 128, slower at
        // D = 64, docs/performance.md) and whether CTAs are persistent; the
        // autotuner decides per shape.
        if (hopper) {
          dev::AttnWgmmaShape shape =
              vs ? dev::AttnWgmmaShape{true, 64, 64, false}
                 : dev::AttnWgmmaShape{bool(a.getBlocks()), int(bq), int(bk), bool(a.getQueries())};
          bool oneConsumer = dev::attn_wgmma_warpgroups(shape) == 1;
          c.i("PINGPONG", d == 128 && !oneConsumer ? 1 : 0);
          // Consumer warpgroups per CTA: 3 (192-row tiles) at head dim 64
          // without sets or a block pattern — measured faster at 4k and 16k,
          // causal and not (docs/performance.md, 2026-12-07 fifth); else 0,
          // the shape's rule (1 or 2). The autotuner may pick either.
          const int consumers = d == 64 && !vs && !p && !shape.blocks && !shape.queries ? 3 : 0;
          c.i("CONSUMER_WGS", consumers);
          // Persistent CTAs (grid = SMs) or one CTA per work item: a host
          // choice, kept as a constant so the autotuner can pick it per shape.
          c.i("PERSISTENT", 1);
          // Loads by TMA only (head dims 64 and 128: any contiguous view is
          // TMA-describable); the runtime compiles the copy-load variant
          // (TMA = 0) only when a launch's views are not (odd strides): one
          // load path compiles ~20 % faster. Not for three consumer
          // warpgroups: without the copy path ptxas allocates the dense
          // causal kernel's consumers worse (a spilled register in the key
          // loop, uniform registers 55 -> 31; docs/performance.md
          // 2026-12-07 seventh), so they keep both paths behind the
          // run-time flag — the SASS measured at 1.0x cuDNN.
          if (consumers != 3)
            c.i("TMA", 1);
          return one("attn_fwd_wgmma", c);
        }
        c.i("TILE_M", 64);
        return one("attn_fwd_mma", c);
      })
      .Case([&](KvSlimOp s) {
        // Three launches (codegen/device/kv_slim.cuh): the observation rows'
        // LSE, the per-token scores, the selection.
        Consts lse(ctx, spec), score(ctx, spec), select(ctx, spec);
        lse.i("OBSERVE", s.getObserveAttr().getInt())
            .flag("HAS_LSE", true)
            .flag("PAGED", false)
            .flag("HAS_TOKENS", false)
            .scale(s.getScale(), spec);
        score.i("OBSERVE", s.getObserveAttr().getInt()).scale(s.getScale(), spec);
        bool seg64 = false;
        if (Value seg = s.getSegments())
          seg64 = llvm::cast<RankedTensorType>(seg.getType()).getElementType().isInteger(64);
        select.f("TAU", s.getTau().convertToDouble())
            .i("SINKS", s.getSinksAttr().getInt())
            .i("RECENT", s.getRecentAttr().getInt())
            .flag("HAS_SEGMENTS", bool(s.getSegments()))
            .flag("SEG64", seg64);
        return SmallVector<KernelSpec, 2>{{"kv_slim_lse", lse.get()},
                                          {"kv_slim_scores", score.get()},
                                          {"kv_slim_select", select.get()}};
      })
      .Case([&](DecodeAttentionOp d) {
        Consts c(ctx, spec);
        c.flag("PAGED", bool(d.getPageTable()))
            .flag("HAS_TOKENS", bool(d.getTokens()))
            .flag("HAS_LSE", bool(d.getLse()))
            .scale(d.getScale(), spec);
        return one("decode_attn", c);
      })
      .Case([&](VerticalSlashOp v) {
        // codegen/device/vertical_slash.cuh: the whole FlexPrefill line
        // selection in one template (its launcher runs the phases).
        Consts c(ctx, spec);
        BlocksType t = v.getResult().getType();
        c.i("BQ", t.getBq())
            .i("BK", t.getBk())
            .i("LAST", v.getLastAttr().getInt())
            .f("GAMMA", v.getGamma().convertToDouble())
            .i("UNIT", v.getUnitAttr().getInt())
            .i("MIN_BLOCKS", v.getMinBlocksAttr().getInt())
            .i("MAX_BLOCKS", v.getMaxBlocksAttr().getInt())
            .f("JSD", v.getJsd().convertToDouble())
            .flag("AWARE", bool(v.getAware()))
            .scale(std::nullopt, spec);
        return one("vertical_slash", c);
      })
      .Case([&](VSlashOp v) {
        // codegen/device/vslash.cuh: the line phases of vertical_slash.cuh,
        // then the picks and intervals.
        Consts c(ctx, spec);
        c.i("BQ", v.getResult().getType().getBq())
            .i("LAST", v.getLastAttr().getInt())
            .i("VERTICAL", v.getVerticalAttr().getInt())
            .i("SLASH", v.getSlashAttr().getInt())
            .i("SINK_COLUMNS", v.getSinkColumnsAttr().getInt())
            .i("LOCAL_SLASHES", v.getLocalSlashesAttr().getInt())
            .scale(std::nullopt, spec);
        return one("vslash", c);
      })
      .Case([&](AntidiagScoresOp a) {
        // codegen/device/antidiag.cuh (CUDA cores for now).
        Consts c(ctx, spec);
        ScoresType t = a.getResult().getType();
        c.i("BQ", t.getBq())
            .i("BK", t.getBk())
            .i("STRIDE", a.getStrideAttr().getInt())
            .flag("CAUSAL", a.getCausal())
            .scale(a.getScale(), spec);
        return one("antidiag_scores", c);
      })
      .Default([&](Operation *other) -> FailureOr<SmallVector<KernelSpec, 2>> {
        return other->emitOpError() << "has no device template; only sattn semantic ops "
                                       "can be outlined";
      });
}

bool sattn::fusableScores(ScoresOp s, DictionaryAttr spec) {
  if (s.getKMax() || s.getResult().use_empty())
    return false;
  ScoresType t = s.getResult().getType();
  int64_t d = llvm::cast<IntegerAttr>(spec.get("head_dim")).getInt();
  int64_t rows = t.getBq() / s.getQGroupAttr().getInt();
  int64_t groups = t.getBk() / s.getKGroupAttr().getInt();
  // The same kernel as the unfused grid (the same bits): the two-pass one.
  if (!dev::scores_mma(int(d), int(rows), int(groups)) || dev::scores_one_pass(int(rows)))
    return false;
  for (OpOperand &use : s.getResult().getUses()) {
    Operation *user = use.getOwner();
    if (isa<HeadBudgetOp>(user))
      continue;
    auto sel = dyn_cast<SelectBlocksOp>(user);
    if (!sel || use.getOperandNumber() != 0 || sel.getScope() == SelectScope::head ||
        sel.getResult().getType().getHeads() != t.getHeads())
      return false;
  }
  return true;
}

FailureOr<KernelSpec> sattn::fusedSelectKernel(Operation *consumer, ScoresOp s,
                                               DictionaryAttr spec) {
  FailureOr<SmallVector<KernelSpec, 2>> sel = kernelsFor(consumer, spec);
  FailureOr<SmallVector<KernelSpec, 2>> sc = kernelsFor(s, spec);
  if (failed(sel) || failed(sc))
    return failure();
  const std::string &t = sel->front().deviceTemplate;
  std::string fused = t == "head_budget"         ? "scores_head_budget"
                      : t == "select_topk"       ? "scores_select_topk"
                      : t == "select_cumulative" ? "scores_select_cumulative"
                                                 : "";
  if (fused.empty())
    return consumer->emitOpError() << "cannot fuse " << t << " with its scores";
  // Union of both constant sets; the shared names (block sizes, causal,
  // the variant facts) agree by construction.
  NamedAttrList merged(sc->front().consts);
  for (NamedAttribute a : sel->front().consts)
    merged.set(a.getName(), a.getValue());
  return KernelSpec{fused, merged.getDictionary(consumer->getContext())};
}
