//===- SattnCanonicalize.cpp - canonicalisation patterns ------------------===//
//
// Design §4.1: fold unions/intersections of static patterns, drop block
// sets that keep everything the attention's own mask allows, and turn a
// top-k that keeps every block into a static (dense or causal) block set.
// Each pattern is exact: it never changes which (i, j) pairs are attended.
//
//===----------------------------------------------------------------------===//
#include "dialect/SattnDialect.h"
#include "dialect/ShapeFacts.h"
#include "dialect/TokenMask.h"

#include "mlir/IR/PatternMatch.h"

using namespace mlir;
using namespace sattn;

namespace {

TokenMask maskOf(StaticBlocksOp op) {
  return {op.getCausal(), op.getWindowAttr().getInt(), op.getSinksAttr().getInt()};
}

TokenMask maskOf(AttentionOp op) {
  return {op.getCausal(), op.getWindowAttr().getInt(), op.getSinksAttr().getInt()};
}

/// Two static patterns over the same q/k where one covers the other: the
/// union is the wider, the intersection the narrower (at block level a
/// covering token mask also covers every block the other touches).
template <typename BinOp, bool kWantWider> struct FoldStaticPair : OpRewritePattern<BinOp> {
  using OpRewritePattern<BinOp>::OpRewritePattern;
  LogicalResult matchAndRewrite(BinOp op, PatternRewriter &rewriter) const override {
    auto a = op.getLhs().template getDefiningOp<StaticBlocksOp>();
    auto b = op.getRhs().template getDefiningOp<StaticBlocksOp>();
    if (!a || !b || a.getQ() != b.getQ() || a.getK() != b.getK())
      return failure();
    TokenMask ma = maskOf(a), mb = maskOf(b);
    Value wider, narrower;
    if (ma.covers(mb)) {
      wider = a, narrower = b;
    } else if (mb.covers(ma)) {
      wider = b, narrower = a;
    } else {
      return failure();
    }
    rewriter.replaceOp(op, kWantWider ? wider : narrower);
    return success();
  }
};

/// union(dense, x) = dense and intersect(dense, x) = x for any x.
template <typename BinOp, bool kIsUnion> struct FoldDenseOperand : OpRewritePattern<BinOp> {
  using OpRewritePattern<BinOp>::OpRewritePattern;
  LogicalResult matchAndRewrite(BinOp op, PatternRewriter &rewriter) const override {
    for (auto [dense, other] :
         {std::pair(op.getLhs(), op.getRhs()), std::pair(op.getRhs(), op.getLhs())}) {
      auto s = dense.template getDefiningOp<StaticBlocksOp>();
      if (s && maskOf(s).isDense()) {
        rewriter.replaceOp(op, kIsUnion ? dense : other);
        return success();
      }
    }
    return failure();
  }
};

/// An attention whose block set is a static pattern covering its own token
/// mask attends exactly what it would without the set: drop the set.
struct DropCoveringStaticBlocks : OpRewritePattern<AttentionOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AttentionOp op, PatternRewriter &rewriter) const override {
    Value blocks = op.getBlocks();
    if (!blocks)
      return failure();
    auto s = blocks.getDefiningOp<StaticBlocksOp>();
    if (!s || !maskOf(s).covers(maskOf(op)))
      return failure();
    rewriter.modifyOpInPlace(op, [&] { op.getBlocksMutable().clear(); });
    return success();
  }
};

/// A fused block pattern covering the attention's own mask is a no-op.
struct DropCoveringBlockPattern : OpRewritePattern<AttentionOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AttentionOp op, PatternRewriter &rewriter) const override {
    auto p = op.getBlockPatternAttr();
    if (!p)
      return failure();
    TokenMask m{p.getCausal(), p.getWindow(), p.getSinks()};
    if (!m.covers(maskOf(op)))
      return failure();
    rewriter.modifyOpInPlace(op, [&] { op.removeBlockPatternAttr(); });
    return success();
  }
};

/// topk with a static budget equal to every KV block of a static Skv keeps
/// every visible block: that is the static causal (or dense) block set.
struct TopKAllToStatic : OpRewritePattern<SelectBlocksOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(SelectBlocksOp op, PatternRewriter &rewriter) const override {
    if (op.getRule() != SelectRule::topk || !op.getKAttr())
      return failure();
    auto scores = op.getScores().getDefiningOp<ScoresOp>();
    if (!scores)
      return failure();
    int64_t skv = Bhsd::of(scores.getK().getType()).seq;
    int64_t bk = op.getResult().getType().getBk();
    if (ShapedType::isDynamic(skv) || op.getKAttr().getInt() != (skv + bk - 1) / bk)
      return failure();
    int64_t heads = op.getResult().getType().getHeads();
    if (heads != Bhsd::of(scores.getQ().getType()).heads &&
        heads != Bhsd::of(scores.getK().getType()).heads)
      return failure();
    rewriter.replaceOpWithNewOp<StaticBlocksOp>(
        op, op.getResult().getType(), scores.getQ(), scores.getK(),
        scores.getCausal() ? rewriter.getUnitAttr() : UnitAttr(), rewriter.getI64IntegerAttr(0),
        rewriter.getI64IntegerAttr(0));
    return success();
  }
};

} // namespace

void UnionOp::getCanonicalizationPatterns(RewritePatternSet &results, MLIRContext *ctx) {
  results.add<FoldStaticPair<UnionOp, true>, FoldDenseOperand<UnionOp, true>>(ctx);
}

void IntersectOp::getCanonicalizationPatterns(RewritePatternSet &results, MLIRContext *ctx) {
  results.add<FoldStaticPair<IntersectOp, false>, FoldDenseOperand<IntersectOp, false>>(ctx);
}

void AttentionOp::getCanonicalizationPatterns(RewritePatternSet &results, MLIRContext *ctx) {
  results.add<DropCoveringStaticBlocks, DropCoveringBlockPattern>(ctx);
}

void SelectBlocksOp::getCanonicalizationPatterns(RewritePatternSet &results, MLIRContext *ctx) {
  results.add<TopKAllToStatic>(ctx);
}
