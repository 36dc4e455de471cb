//===- FuseStaticMasks.cpp - static block sets become kernel predicates ---===//
//
// Design §4.2. A block set produced by sattn.static_blocks needs no index
// lists: the attention kernel can decide block membership from the query
// and key block indices alone. The pattern moves into the attention as a
// `block_pattern` attribute; the static_blocks op then dies (it is Pure).
//
//===----------------------------------------------------------------------===//
#include "passes/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#define DEBUG_TYPE "sattn-fuse-static-masks"

namespace sattn {
#define GEN_PASS_DEF_SATTNFUSESTATICMASKS
#include "passes/Passes.h.inc"
} // namespace sattn

using namespace mlir;
using namespace sattn;

namespace {

struct StaticBlocksToPattern : OpRewritePattern<AttentionOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AttentionOp op, PatternRewriter &rewriter) const override {
    Value blocks = op.getBlocks();
    if (!blocks || op.getBlockPatternAttr())
      return failure();
    auto s = blocks.getDefiningOp<StaticBlocksOp>();
    if (!s)
      return failure();
    BlocksType bt = s.getResult().getType();
    auto pattern =
        BlockPatternAttr::get(rewriter.getContext(), bt.getBq(), bt.getBk(), s.getCausal(),
                              s.getWindowAttr().getInt(), s.getSinksAttr().getInt());
    rewriter.modifyOpInPlace(op, [&] {
      op.getBlocksMutable().clear();
      op.setBlockPatternAttr(pattern);
    });
    return success();
  }
};

struct SattnFuseStaticMasksPass : sattn::impl::SattnFuseStaticMasksBase<SattnFuseStaticMasksPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<StaticBlocksToPattern>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
