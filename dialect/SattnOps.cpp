//===- SattnOps.cpp - verifiers and folders of the sattn ops --------------===//
//
// Every verifier checks what the type constraints cannot: shape agreement
// between Q/K/V and the selection types, divisibility of block sizes by
// pooling groups, GQA ratios, attribute ranges. Messages name the operand
// or attribute and the numbers involved, so a user can fix the IR.
//
//===----------------------------------------------------------------------===//
#include "dialect/SattnDialect.h"
#include "dialect/ShapeFacts.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

#include <cmath>

using namespace mlir;
using namespace sattn;

namespace {

int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

LogicalResult verifyScale(Operation *op, std::optional<APFloat> scale) {
  if (scale && !(scale->convertToDouble() > 0.0))
    return op->emitOpError() << "scale must be positive";
  return success();
}

/// A query-length dimension of `pooled` must be cdiv(orig, group) when both
/// are static.
LogicalResult verifyPooledLength(Operation *op, StringRef what, int64_t pooled, int64_t orig,
                                 int64_t group) {
  if (!ShapedType::isDynamic(pooled) && !ShapedType::isDynamic(orig) && pooled != cdiv(orig, group))
    return op->emitOpError() << what << " has " << pooled << " rows but pooling " << orig
                             << " tokens in groups of " << group << " gives " << cdiv(orig, group);
  return success();
}

/// The tensor an unpooled-or-pooled operand was pooled from must match the
/// given Q or K in batch, heads and head dim.
LogicalResult verifyPooledOf(Operation *op, StringRef what, Type pooled, Type orig) {
  Bhsd p = Bhsd::of(pooled), o = Bhsd::of(orig);
  if (staticMismatch(p.batch, o.batch) || p.heads != o.heads || p.dim != o.dim)
    return op->emitOpError() << what << " must have the batch, heads and head dim of "
                             << (what == "q_pooled" ? "q" : "k");
  return success();
}

LogicalResult verifyWindowSinks(Operation *op, bool causal, int64_t window, int64_t sinks) {
  if (window > 0 && !causal)
    return op->emitOpError() << "window = " << window
                             << " needs causal (a window ends at the query's position)";
  if (sinks > 0 && window == 0)
    return op->emitOpError() << "sinks = " << sinks
                             << " need a window (without one every key is visible)";
  return success();
}

/// Per-head or per-GQA-group selection structures must have Hq or Hkv heads.
LogicalResult verifySetHeads(Operation *op, StringRef what, int64_t heads, Type q, Type k) {
  int64_t hq = Bhsd::of(q).heads, hkv = Bhsd::of(k).heads;
  if (heads != hq && heads != hkv)
    return op->emitOpError() << what << " has " << heads << " heads; expected the query heads ("
                             << hq << ") or the KV heads (" << hkv << ")";
  return success();
}

LogicalResult verifyLse(Operation *op, Value lse, Type q) {
  if (!lse)
    return success();
  auto lt = llvm::cast<RankedTensorType>(lse.getType());
  Bhsd s = Bhsd::of(q);
  if (staticMismatch(lt.getDimSize(0), s.batch) || lt.getDimSize(1) != s.heads ||
      staticMismatch(lt.getDimSize(2), s.seq))
    return op->emitOpError() << "lse must have shape [B, " << s.heads << ", Sq] of q";
  return success();
}

} // namespace

//===----------------------------------------------------------------------===//
// PoolOp
//===----------------------------------------------------------------------===//

LogicalResult PoolOp::verify() {
  if (failed(verifyKnownAttributes(*this)))
    return failure();
  Bhsd in = Bhsd::of(getInput().getType()), out = Bhsd::of(getResult().getType());
  int64_t group = getGroupAttr().getInt();
  if (staticMismatch(in.batch, out.batch) || staticMismatch(in.heads, out.heads) ||
      staticMismatch(in.dim, out.dim))
    return emitOpError() << "result must keep the batch, heads and head dim of the input";
  return verifyPooledLength(*this, "result", out.seq, in.seq, group);
}

OpFoldResult PoolOp::fold(FoldAdaptor) {
  // Pooling groups of one token is the identity when the type is unchanged.
  if (getGroupAttr().getInt() == 1 && getInput().getType() == getResult().getType())
    return getInput();
  return {};
}

//===----------------------------------------------------------------------===//
// ScoresOp
//===----------------------------------------------------------------------===//

LogicalResult ScoresOp::verify() {
  if (failed(verifyKnownAttributes(*this)))
    return failure();
  if (failed(verifyQkv(*this, getQ().getType(), getK().getType())) ||
      failed(verifyPooledOf(*this, "q_pooled", getQPooled().getType(), getQ().getType())) ||
      failed(verifyPooledOf(*this, "k_pooled", getKPooled().getType(), getK().getType())) ||
      failed(verifyScale(*this, getScale())))
    return failure();
  ScoresType st = getResult().getType();
  int64_t cq = getQGroupAttr().getInt(), ck = getKGroupAttr().getInt();
  if (st.getBq() % cq != 0)
    return emitOpError() << "q_group = " << cq
                         << " must divide the query block bq = " << st.getBq();
  if (st.getBk() % ck != 0)
    return emitOpError() << "k_group = " << ck << " must divide the KV block bk = " << st.getBk();
  if (st.getHeads() != Bhsd::of(getQ().getType()).heads)
    return emitOpError() << "result has " << st.getHeads()
                         << " heads; scores have one row per query head ("
                         << Bhsd::of(getQ().getType()).heads << ")";
  // Pooling granularity must agree with the pool op that made the operand.
  if (auto pool = getQPooled().getDefiningOp<PoolOp>())
    if (pool.getGroupAttr().getInt() != cq)
      return emitOpError() << "q_group = " << cq << " but q_pooled pools groups of "
                           << pool.getGroupAttr().getInt();
  if (auto pool = getKPooled().getDefiningOp<PoolOp>())
    if (pool.getGroupAttr().getInt() != ck)
      return emitOpError() << "k_group = " << ck << " but k_pooled pools groups of "
                           << pool.getGroupAttr().getInt();
  if (failed(verifyPooledLength(*this, "q_pooled", Bhsd::of(getQPooled().getType()).seq,
                                Bhsd::of(getQ().getType()).seq, cq)) ||
      failed(verifyPooledLength(*this, "k_pooled", Bhsd::of(getKPooled().getType()).seq,
                                Bhsd::of(getK().getType()).seq, ck)))
    return failure();
  if (Value kMax = getKMax()) {
    // Quest bound (§4c): k_pooled / k_max are the group minimum / maximum.
    if (kMax.getType() != getKPooled().getType())
      return emitOpError() << "bound: k_max has type " << kMax.getType()
                           << " but k_pooled (the group minimum) has " << getKPooled().getType();
    if (auto pool = getKPooled().getDefiningOp<PoolOp>())
      if (pool.getKind() != PoolKind::min)
        return emitOpError() << "bound: k_pooled must be the key groups' minimum (sattn.pool "
                                "min), got sattn.pool "
                             << stringifyPoolKind(pool.getKind());
    if (auto pool = kMax.getDefiningOp<PoolOp>()) {
      if (pool.getKind() != PoolKind::max)
        return emitOpError() << "bound: k_max must be the key groups' maximum (sattn.pool max), "
                                "got sattn.pool "
                             << stringifyPoolKind(pool.getKind());
      if (pool.getGroupAttr().getInt() != ck)
        return emitOpError() << "k_group = " << ck << " but k_max pools groups of "
                             << pool.getGroupAttr().getInt();
    }
  }
  return success();
}

//===----------------------------------------------------------------------===//
// AntidiagScoresOp
//===----------------------------------------------------------------------===//

LogicalResult AntidiagScoresOp::verify() {
  if (failed(verifyKnownAttributes(*this)))
    return failure();
  if (failed(verifyQkv(*this, getQ().getType(), getK().getType())) ||
      failed(verifyScale(*this, getScale())))
    return failure();
  ScoresType st = getResult().getType();
  int64_t stride = getStrideAttr().getInt();
  if (st.getBq() % stride != 0 || st.getBk() % stride != 0)
    return emitOpError() << "stride = " << stride
                         << " must divide both block sizes (bq = " << st.getBq()
                         << ", bk = " << st.getBk() << ")";
  if (st.getHeads() != Bhsd::of(getQ().getType()).heads)
    return emitOpError() << "result has " << st.getHeads()
                         << " heads; scores have one row per query head ("
                         << Bhsd::of(getQ().getType()).heads << ")";
  return success();
}

//===----------------------------------------------------------------------===//
// MeanScoresOp
//===----------------------------------------------------------------------===//

std::optional<bool> sattn::scoresCausal(Value scores) {
  if (auto op = scores.getDefiningOp<ScoresOp>())
    return op.getCausal();
  if (auto op = scores.getDefiningOp<AntidiagScoresOp>())
    return op.getCausal();
  if (auto op = scores.getDefiningOp<MeanScoresOp>()) {
    std::optional<bool> all;
    for (Value in : op.getInputs())
      if (std::optional<bool> c = scoresCausal(in))
        all = all.value_or(true) && *c;
    return all;
  }
  return std::nullopt;
}

LogicalResult MeanScoresOp::verify() {
  if (failed(verifyKnownAttributes(*this)))
    return failure();
  size_t n = getInputs().size();
  if (n < 2 || n > 4)
    return emitOpError() << "takes 2 to 4 score grids, got " << n;
  if (auto w = getWeights()) {
    if (w->size() != n)
      return emitOpError() << "has " << w->size() << " weights for " << n << " inputs";
    for (double x : *w)
      if (!(x > 0.0) || !std::isfinite(x))
        return emitOpError() << "weights must be positive and finite, got " << x;
  }
  std::optional<bool> first;
  for (Value in : getInputs()) {
    std::optional<bool> c = scoresCausal(in);
    if (!c)
      continue;
    if (first && *first != *c)
      return emitOpError() << "mixes causal and non-causal scores; their visible blocks "
                              "differ, so their mean has no meaning";
    first = c;
  }
  return success();
}

//===----------------------------------------------------------------------===//
// HeadBudgetOp
//===----------------------------------------------------------------------===//

LogicalResult HeadBudgetOp::verify() {
  if (failed(verifyKnownAttributes(*this)))
    return failure();
  if (failed(verifyUnitInterval(*this, "tau", getTau().convertToDouble())))
    return failure();
  ScoresType st = getScores().getType();
  BudgetType bt = getResult().getType();
  if (bt.getBq() != st.getBq())
    return emitOpError() << "budget bq = " << bt.getBq()
                         << " differs from scores bq = " << st.getBq();
  int64_t want = getShare() == BudgetShare::flattest ? 1 : st.getHeads();
  if (bt.getHeads() != want)
    return emitOpError() << "share = " << stringifyBudgetShare(getShare())
                         << " gives a budget with heads = " << want << ", not " << bt.getHeads();
  return success();
}

//===----------------------------------------------------------------------===//
// SelectBlocksOp
//===----------------------------------------------------------------------===//

LogicalResult SelectBlocksOp::verify() {
  if (failed(verifyKnownAttributes(*this)))
    return failure();
  ScoresType st = getScores().getType();
  BlocksType bt = getResult().getType();
  if (bt.getBq() != st.getBq() || bt.getBk() != st.getBk())
    return emitOpError() << "result blocks " << bt.getBq() << "x" << bt.getBk()
                         << " differ from the scores' " << st.getBq() << "x" << st.getBk();
  if (st.getHeads() % bt.getHeads() != 0)
    return emitOpError() << "result heads (" << bt.getHeads() << ") must divide the scores' heads ("
                         << st.getHeads() << ")";
  if (auto k = getKAttr(); k && k.getInt() < 0)
    return emitOpError() << "budget k = " << k.getInt() << " must be non-negative";
  if (getK() && getBudget())
    return emitOpError() << "give the budget either as attribute k or as an operand, not both";
  if (getRule() == SelectRule::topk) {
    if (!getK() && !getBudget())
      return emitOpError() << "topk needs a budget: attribute k or a !sattn.budget operand";
    if (getTau())
      return emitOpError() << "tau is meaningless for topk; use rule cumulative";
    if (getSlack() != 0)
      return emitOpError() << "slack is meaningless for topk (it extends a cumulative prefix)";
  } else {
    if (!getTau())
      return emitOpError() << "cumulative needs attribute tau";
    if (failed(verifyUnitInterval(*this, "tau", getTau()->convertToDouble())))
      return failure();
  }
  if (getScope() == SelectScope::head) {
    if (getRule() != SelectRule::cumulative)
      return emitOpError() << "scope = head needs rule cumulative (one prefix per head)";
    if (getK() || getBudget() || getCapAttr() || getSlack() != 0)
      return emitOpError() << "scope = head takes no budget, k, cap or slack: its prefix "
                              "spans the whole head, not one row";
    if (bt.getHeads() != st.getHeads())
      return emitOpError() << "scope = head selects per query head: result heads ("
                           << bt.getHeads() << ") must equal the scores' heads ("
                           << st.getHeads() << ")";
  }
  if (Value b = getBudget()) {
    auto budget = llvm::cast<BudgetType>(b.getType());
    if (budget.getBq() != st.getBq())
      return emitOpError() << "budget bq = " << budget.getBq()
                           << " differs from scores bq = " << st.getBq();
    if (budget.getHeads() != 1 && budget.getHeads() != st.getHeads())
      return emitOpError() << "budget heads must be 1 (shared) or " << st.getHeads() << ", got "
                           << budget.getHeads();
  }
  return success();
}

//===----------------------------------------------------------------------===//
// VerticalSlashOp
//===----------------------------------------------------------------------===//

LogicalResult VerticalSlashOp::verify() {
  if (failed(verifyKnownAttributes(*this)))
    return failure();
  if (failed(verifyQkv(*this, getQ().getType(), getK().getType())) ||
      failed(verifyUnitInterval(*this, "gamma", getGamma().convertToDouble())))
    return failure();
  BlocksType bt = getResult().getType();
  int64_t hq = Bhsd::of(getQ().getType()).heads;
  if (bt.getHeads() != hq)
    return emitOpError() << "result has " << bt.getHeads()
                         << " heads; vertical-slash sets are per query head (" << hq << ")";
  if (!(getJsd().convertToDouble() >= 0.0))
    return emitOpError() << "jsd = " << getJsd().convertToDouble() << " must be non-negative";
  if (Value qa = getAware()) {
    if (qa.getType() != bt)
      return emitOpError() << "aware set " << qa.getType() << " must have the result's type "
                           << bt;
    auto kp = llvm::cast<RankedTensorType>(getKPooled().getType());
    if (!kp.getElementType().isF32())
      return emitOpError() << "k_pooled must be f32 (the block-mean keys)";
    if (failed(verifyPooledOf(*this, "k_pooled", kp, getK().getType())) ||
        failed(verifyPooledLength(*this, "k_pooled", kp.getDimSize(2),
                                  Bhsd::of(getK().getType()).seq, bt.getBk())))
      return failure();
    if (auto pool = getKPooled().getDefiningOp<PoolOp>())
      if (pool.getKind() != PoolKind::mean || pool.getGroupAttr().getInt() != bt.getBk())
        return emitOpError() << "k_pooled must be the keys mean-pooled in groups of bk = "
                             << bt.getBk();
  }
  return success();
}

LogicalResult VSlashOp::verify() {
  if (failed(verifyKnownAttributes(*this)))
    return failure();
  if (failed(verifyQkv(*this, getQ().getType(), getK().getType())))
    return failure();
  int64_t hq = Bhsd::of(getQ().getType()).heads;
  if (getResult().getType().getHeads() != hq)
    return emitOpError() << "result has " << getResult().getType().getHeads()
                         << " heads; vertical-slash sets are per query head (" << hq << ")";
  return success();
}

//===----------------------------------------------------------------------===//
// StaticBlocksOp, union, intersect
//===----------------------------------------------------------------------===//

LogicalResult StaticBlocksOp::verify() {
  if (failed(verifyKnownAttributes(*this)))
    return failure();
  if (failed(verifyQkv(*this, getQ().getType(), getK().getType())))
    return failure();
  if (failed(
          verifyWindowSinks(*this, getCausal(), getWindowAttr().getInt(), getSinksAttr().getInt())))
    return failure();
  return verifySetHeads(*this, "result", getResult().getType().getHeads(), getQ().getType(),
                        getK().getType());
}

LogicalResult UnionOp::verify() { return verifyKnownAttributes(*this); }
LogicalResult IntersectOp::verify() { return verifyKnownAttributes(*this); }

OpFoldResult UnionOp::fold(FoldAdaptor) { return getLhs() == getRhs() ? getLhs() : Value(); }

OpFoldResult IntersectOp::fold(FoldAdaptor) { return getLhs() == getRhs() ? getLhs() : Value(); }

//===----------------------------------------------------------------------===//
// ClassifyQueriesOp
//===----------------------------------------------------------------------===//

LogicalResult ClassifyQueriesOp::verify() {
  if (failed(verifyKnownAttributes(*this)))
    return failure();
  if (failed(verifyQkv(*this, getQ().getType(), getK().getType())) ||
      failed(verifyUnitInterval(*this, "theta", getTheta().convertToDouble())) ||
      failed(verifyScale(*this, getScale())))
    return failure();
  int64_t hq = Bhsd::of(getQ().getType()).heads;
  if (getResult().getType().getHeads() != hq)
    return emitOpError() << "result has " << getResult().getType().getHeads()
                         << " heads; a query set has one entry per query head (" << hq << ")";
  return success();
}

//===----------------------------------------------------------------------===//
// AttentionOp
//===----------------------------------------------------------------------===//

LogicalResult AttentionOp::verify() {
  if (failed(verifyKnownAttributes(*this)))
    return failure();
  Type q = getQ().getType(), k = getK().getType(), v = getV().getType();
  if (failed(verifyQkv(*this, q, k, v)) || failed(verifyScale(*this, getScale())) ||
      failed(
          verifyWindowSinks(*this, getCausal(), getWindowAttr().getInt(), getSinksAttr().getInt())))
    return failure();
  if (getOut().getType() != q)
    return emitOpError() << "result type " << getOut().getType() << " must equal the type of q "
                         << q;
  if (failed(verifyLse(*this, getLse(), q)))
    return failure();
  if (getBlocks() && getBlockPatternAttr())
    return emitOpError() << "takes a block set or a block_pattern, not both "
                            "(sattn-fuse-static-masks makes the pattern from a static set)";
  if (Value b = getBlocks())
    if (failed(verifySetHeads(*this, "block set", llvm::cast<BlocksType>(b.getType()).getHeads(), q,
                              k)))
      return failure();
  if (Value qs = getQueries()) {
    int64_t hq = Bhsd::of(q).heads;
    if (llvm::cast<QueriesType>(qs.getType()).getHeads() != hq)
      return emitOpError() << "query set must have one entry per query head (" << hq << ")";
  }
  if (Value vs = getVslash()) {
    int64_t hq = Bhsd::of(q).heads;
    if (llvm::cast<VSlashType>(vs.getType()).getHeads() != hq)
      return emitOpError() << "vertical-slash set must have one entry per query head (" << hq
                           << ")";
    if (!getCausal() || getWindowAttr().getInt() != 0 || getSinksAttr().getInt() != 0)
      return emitOpError() << "a vertical-slash set needs `causal` and no window or sinks "
                              "(its bands already hold the local keys)";
    if (getBlocks() || getQueries() || getBlockPatternAttr())
      return emitOpError() << "a vertical-slash set cannot be combined with a block set, a "
                              "query set or a block_pattern";
  }
  return success();
}

//===----------------------------------------------------------------------===//
// KvSlimOp, DecodeAttentionOp
//===----------------------------------------------------------------------===//

LogicalResult KvSlimOp::verify() {
  if (failed(verifyKnownAttributes(*this)))
    return failure();
  if (failed(verifyQkv(*this, getQ().getType(), getK().getType())) ||
      failed(verifyUnitInterval(*this, "tau", getTau().convertToDouble())) ||
      failed(verifyScale(*this, getScale())))
    return failure();
  int64_t hkv = Bhsd::of(getK().getType()).heads;
  if (getResult().getType().getHeads() != hkv)
    return emitOpError() << "result has " << getResult().getType().getHeads()
                         << " heads; KV slimming keeps tokens per KV head (" << hkv << ")";
  if (Value seg = getSegments()) {
    auto st = llvm::cast<RankedTensorType>(seg.getType());
    if (st.getDimSize(2) != 2)
      return emitOpError() << "segments must be [B, n, 2] ranges of [start, end)";
    if (staticMismatch(st.getDimSize(0), Bhsd::of(getQ().getType()).batch))
      return emitOpError() << "segments must have one row per batch entry";
  }
  return success();
}

LogicalResult DecodeAttentionOp::verify() {
  if (failed(verifyKnownAttributes(*this)))
    return failure();
  Type q = getQ().getType(), k = getK().getType(), v = getV().getType();
  if (failed(verifyScale(*this, getScale())))
    return failure();
  if (bool(getPageTable()) != bool(getSeqLens()))
    return emitOpError() << "a paged cache needs both a page table and sequence lengths";
  if (getPageTable()) {
    // K/V are pages [P, Hkv, page, D]: only heads and head dim relate to q.
    if (failed(verifyStaticHeads(*this, "q", q)) || failed(verifyStaticHeads(*this, "k", k)))
      return failure();
    Bhsd sq = Bhsd::of(q), sk = Bhsd::of(k);
    if (sq.dim != sk.dim || sq.heads % sk.heads != 0)
      return emitOpError() << "pages must have the head dim of q and a head count "
                              "dividing the query heads";
    if (llvm::cast<ShapedType>(k).getShape() != llvm::cast<ShapedType>(v).getShape())
      return emitOpError() << "k and v must have the same shape";
    auto pt = llvm::cast<RankedTensorType>(getPageTable().getType());
    if (staticMismatch(pt.getDimSize(0), sq.batch))
      return emitOpError() << "page table must have one row per batch entry";
  } else if (failed(verifyQkv(*this, q, k, v))) {
    return failure();
  }
  if (getOut().getType() != q)
    return emitOpError() << "result type must equal the type of q";
  if (failed(verifyLse(*this, getLse(), q)))
    return failure();
  if (Value t = getTokens()) {
    int64_t hkv = Bhsd::of(k).heads;
    if (llvm::cast<TokensType>(t.getType()).getHeads() != hkv)
      return emitOpError() << "token set must have one entry per KV head (" << hkv << ")";
  }
  return success();
}

//===----------------------------------------------------------------------===//
// LaunchOp
//===----------------------------------------------------------------------===//

LogicalResult LaunchOp::verify() {
  if (failed(verifyKnownAttributes(*this)))
    return failure();
  if (getKernel().empty() || getDeviceTemplate().empty())
    return emitOpError() << "needs a kernel name and a device template";
  return success();
}

#define GET_OP_CLASSES
#include "dialect/SattnOps.cpp.inc"
