//===- OutlineKernels.cpp - semantic ops to ordered kernel launches -------===//
//
// Design §4.6. Each semantic op becomes one sattn.launch (kv_slim three,
// classify_queries two) in
// program order, naming the device template and constants chosen by
// KernelTable. The workspace plan lists every launch result the function
// does not return, with its size as an expression in the run-time lengths
// (B, S_<arg>) so the runtime can allocate once per shape.
//
// A `sattn.scores` that fusableScores accepts (KernelTable.h) launches
// nothing: each of its consumers becomes one fused scores + selection launch
// over the scores' operands (codegen/device/fused_select.cuh), so the
// [B, H, nQB, nKB] grid is neither allocated nor written.
//
// A block-set argument is a user list [B, H, nQB, cap] (semantics §14):
// every one that is used first goes through a `blocks_from_list` launch,
// which writes the sorted, duplicate-free counts + indices form every
// consumer reads; its operands are the list and the q, k that fix Sq, Skv.
//
//===----------------------------------------------------------------------===//
#include "passes/KernelTable.h"
#include "passes/Passes.h"
#include "dialect/VariantSignature.h"

#include "mlir/IR/Builders.h"

#define DEBUG_TYPE "sattn-outline-kernels"

namespace sattn {
#define GEN_PASS_DEF_SATTNOUTLINEKERNELS
#include "passes/Passes.h.inc"
} // namespace sattn

using namespace mlir;
using namespace sattn;

namespace {

/// Size expressions of workspace buffers, in terms of B and S_<arg>.
class SizeExprs {
public:
  explicit SizeExprs(func::FuncOp f) : func(f) {}

  std::string batch(Value t) {
    int64_t b = llvm::cast<RankedTensorType>(t.getType()).getDimSize(0);
    return ShapedType::isDynamic(b) ? "B" : std::to_string(b);
  }

  /// Length (dimension 2) of a rank-4 tensor.
  std::string length(Value t) {
    int64_t s = llvm::cast<RankedTensorType>(t.getType()).getDimSize(2);
    if (!ShapedType::isDynamic(s))
      return std::to_string(s);
    if (auto arg = llvm::dyn_cast<BlockArgument>(t))
      return "S_" + argName(func, arg.getArgNumber());
    if (auto pool = t.getDefiningOp<PoolOp>())
      return cdiv(length(pool.getInput()), pool.getGroupAttr().getInt());
    if (auto launch = t.getDefiningOp<LaunchOp>())
      return "S_" + launch.getKernel().str();
    return "S";
  }

  static std::string cdiv(const std::string &a, int64_t b) {
    return "cdiv(" + a + "," + std::to_string(b) + ")";
  }

  /// (Sq, Skv) tensors a block set or scores value is defined over.
  std::pair<Value, Value> qk(Value v) { return definingLengths(v); }

  /// The byte size of a semantic value, or "" when it is not a workspace kind.
  std::string bytes(Value v) {
    Type t = v.getType();
    auto mul = [](std::initializer_list<std::string> xs) {
      std::string s;
      for (const std::string &x : xs)
        s += (s.empty() ? "" : "*") + x;
      return s;
    };
    if (auto st = llvm::dyn_cast<ScoresType>(t)) {
      auto [q, k] = qk(v);
      if (!q)
        return "";
      return mul({batch(q), std::to_string(st.getHeads()), cdiv(length(q), st.getBq()),
                  cdiv(length(k), st.getBk()), "4"});
    }
    if (auto bt = llvm::dyn_cast<BlocksType>(t)) {
      auto [q, k] = qk(v);
      if (!q)
        return "";
      std::string rows =
          mul({batch(q), std::to_string(bt.getHeads()), cdiv(length(q), bt.getBq())});
      std::string cap = cdiv(length(k), bt.getBk());
      if (auto sel = v.getDefiningOp<SelectBlocksOp>(); sel && sel.getCapAttr())
        cap = std::to_string(sel.getCapAttr().getInt());
      return rows + "*(1+" + cap + ")*4";
    }
    if (auto bt = llvm::dyn_cast<BudgetType>(t)) {
      auto [q, k] = qk(v);
      if (!q)
        return "";
      return mul({batch(q), std::to_string(bt.getHeads()), cdiv(length(q), bt.getBq()), "4"});
    }
    if (auto qt = llvm::dyn_cast<QueriesType>(t)) {
      Value q = v.getDefiningOp()->getOperand(0);
      return mul({batch(q), std::to_string(qt.getHeads()), "(1+" + length(q) + ")", "4"});
    }
    if (auto tt = llvm::dyn_cast<TokensType>(t)) {
      Value k = v.getDefiningOp()->getOperand(1);
      return mul({batch(k), std::to_string(tt.getHeads()), "(1+" + length(k) + ")", "4"});
    }
    if (auto rt = llvm::dyn_cast<RankedTensorType>(t); rt && rt.getRank() == 4) {
      int64_t eltBytes = rt.getElementTypeBitWidth() / 8;
      return mul({batch(v), std::to_string(rt.getDimSize(1)), length(v),
                  std::to_string(rt.getDimSize(3)), std::to_string(eltBytes)});
    }
    return "";
  }

private:
  func::FuncOp func;
};

/// One entry of the workspace plan.
struct Buffer {
  std::string producer;
  unsigned result;
  std::string bytes;
};

/// Inserts a blocks_from_list launch at the top of `func` for every used
/// block-set argument (one per distinct (q, k) its uses are attended with)
/// and rewires those uses to its result.
LogicalResult normaliseListArgs(func::FuncOp func, DictionaryAttr spec, SizeExprs &sizes,
                                OpBuilder &b, int &counter, SmallVector<Buffer> &plan) {
  Block &body = func.getBody().front();
  b.setInsertionPointToStart(&body);
  for (BlockArgument arg : func.getArguments()) {
    auto type = llvm::dyn_cast<BlocksType>(arg.getType());
    if (!type || arg.use_empty())
      continue;
    SmallVector<std::pair<std::pair<Value, Value>, SmallVector<OpOperand *>>> groups;
    // Uses in program order, so launches are numbered deterministically.
    SmallVector<OpOperand *> ordered;
    for (OpOperand &use : arg.getUses())
      ordered.push_back(&use);
    llvm::stable_sort(ordered, [](OpOperand *a, OpOperand *b) {
      if (a->getOwner() != b->getOwner())
        return a->getOwner()->isBeforeInBlock(b->getOwner());
      return a->getOperandNumber() < b->getOperandNumber();
    });
    for (OpOperand *usePtr : ordered) {
      OpOperand &use = *usePtr;
      std::pair<Value, Value> qk = blockSetLengths(use);
      if (!qk.first)
        return use.getOwner()->emitOpError()
               << "uses block-set input '" << argName(func, arg.getArgNumber())
               << "', but no attention consumes the result, so its lengths are unknown";
      auto it = llvm::find_if(groups, [&](auto &g) { return g.first == qk; });
      if (it == groups.end())
        groups.push_back({qk, {}}), it = std::prev(groups.end());
      it->second.push_back(&use);
    }
    KernelSpec k = blockListKernel(type, spec);
    for (auto &[qk, uses] : groups) {
      std::string name = "k" + std::to_string(counter++) + "_" + k.deviceTemplate;
      auto launch = b.create<LaunchOp>(arg.getLoc(), TypeRange{type}, name, k.deviceTemplate,
                                       k.consts, ValueRange{arg, qk.first, qk.second});
      for (OpOperand *use : uses)
        use->set(launch->getResult(0));
      plan.push_back({name, 0, sizes.bytes(launch->getResult(0))});
    }
  }
  return success();
}

struct SattnOutlineKernelsPass : sattn::impl::SattnOutlineKernelsBase<SattnOutlineKernelsPass> {
  using SattnOutlineKernelsBase::SattnOutlineKernelsBase;

  void runOnOperation() override {
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (failed(outline(func)))
        return signalPassFailure();
  }

  LogicalResult outline(func::FuncOp func) {
    auto spec = func->getAttrOfType<DictionaryAttr>("sattn.spec");
    bool hasSattn = false;
    func.walk([&](Operation *op) { hasSattn |= isa<SattnDialect>(op->getDialect()); });
    if (!hasSattn)
      return success();
    if (!spec)
      return func.emitError() << "run sattn-specialize before sattn-outline-kernels "
                                 "(the function has no sattn.spec)";
    SizeExprs sizes(func);

    SmallVector<Buffer> plan;
    OpBuilder b(func.getContext());
    int counter = 0;
    if (failed(normaliseListArgs(func, spec, sizes, b, counter, plan)))
      return failure();

    // Decide every kernel and buffer size on the intact semantic IR first:
    // both trace producers (a selection asks whether its scores are causal).
    Operation *ret = func.getBody().front().getTerminator();
    struct Item {
      Operation *op;
      SmallVector<KernelSpec, 2> kernels;
      SmallVector<std::string> resultBytes;
      ScoresOp fusedScores = nullptr; ///< consumer of a fused sattn.scores
    };
    // Fused estimation: such a scores op gets no launch; its consumers
    // compute the rows they need (KernelTable.h, fusableScores).
    llvm::DenseSet<Operation *> fused;
    if (fuseEstimation)
      for (ScoresOp s : func.getBody().front().getOps<ScoresOp>())
        if (!llvm::is_contained(ret->getOperands(), s.getResult()) && fusableScores(s, spec))
          fused.insert(s);
    SmallVector<Item> items;
    for (Operation &op : func.getBody().front()) {
      if (&op == ret || isa<LaunchOp>(op))
        continue;
      Item item{&op, {}, {}};
      ScoresOp src = op.getNumOperands() ? op.getOperand(0).getDefiningOp<ScoresOp>() : nullptr;
      if (fused.contains(&op)) {
        items.push_back(std::move(item)); // erased below, launches nothing
        continue;
      }
      if (src && fused.contains(src)) {
        FailureOr<KernelSpec> k = fusedSelectKernel(&op, src, spec);
        if (failed(k))
          return failure();
        item.kernels.push_back(std::move(*k));
        item.fusedScores = src;
      } else {
        FailureOr<SmallVector<KernelSpec, 2>> kernels = kernelsFor(&op, spec);
        if (failed(kernels))
          return failure();
        item.kernels = std::move(*kernels);
      }
      for (Value r : op.getResults())
        item.resultBytes.push_back(sizes.bytes(r));
      items.push_back(std::move(item));
    }

    for (Item &item : items) {
      Operation &op = *item.op;
      if (item.kernels.empty())
        continue;
      b.setInsertionPoint(&op);
      SmallVector<Value> args(op.getOperands());
      if (item.fusedScores) { // the scores' operands, then the consumer's others
        args.assign(item.fusedScores->operand_begin(), item.fusedScores->operand_end());
        args.append(std::next(op.operand_begin()), op.operand_end());
      }
      LaunchOp last;
      for (auto [i, k] : llvm::enumerate(item.kernels)) {
        std::string name = "k" + std::to_string(counter++) + "_" + k.deviceTemplate;
        bool final = i + 1 == item.kernels.size();
        SmallVector<Value> launchArgs = args;
        if (!k.operands.empty()) {
          launchArgs.clear();
          for (unsigned o : k.operands)
            launchArgs.push_back(op.getOperand(o));
        }
        SmallVector<Type> results;
        if (final) {
          results.assign(op.result_type_begin(), op.result_type_end());
        } else if (auto cq = llvm::dyn_cast<ClassifyQueriesOp>(op)) {
          // classify_queries: the mean-pooled keys [B, Hkv, cdiv(Skv, c), D] f32.
          Value k4 = cq.getK();
          auto kt = llvm::cast<RankedTensorType>(k4.getType());
          int64_t c = cq.getKeyGroupAttr().getInt();
          results.push_back(RankedTensorType::get(
              {kt.getDimSize(0), kt.getDimSize(1), ShapedType::kDynamic, kt.getDimSize(3)},
              b.getF32Type()));
          plan.push_back({name, 0,
                          sizes.batch(k4) + "*" + std::to_string(kt.getDimSize(1)) + "*" +
                              SizeExprs::cdiv(sizes.length(k4), c) + "*" +
                              std::to_string(kt.getDimSize(3)) + "*4"});
        } else {
          // kv_slim's intermediates (f32): the observation rows' LSE
          // [B, Hq, observe] (an upper bound when Sq < observe), then the
          // per-token scores [B, Hkv, Skv].
          auto slim = llvm::cast<KvSlimOp>(op);
          Value src = i == 0 ? slim.getQ() : slim.getK();
          auto st = llvm::cast<RankedTensorType>(src.getType());
          int64_t observe = slim.getObserveAttr().getInt();
          results.push_back(
              RankedTensorType::get({st.getDimSize(0), st.getDimSize(1),
                                     i == 0 ? ShapedType::kDynamic : st.getDimSize(2)},
                                    b.getF32Type()));
          plan.push_back({name, 0,
                          sizes.batch(src) + "*" + std::to_string(st.getDimSize(1)) + "*" +
                              (i == 0 ? std::to_string(observe) : sizes.length(src)) + "*4"});
        }
        last =
            b.create<LaunchOp>(op.getLoc(), results, name, k.deviceTemplate, k.consts, launchArgs);
        if (!final)
          args.push_back(last->getResult(0));
      }
      op.replaceAllUsesWith(last->getResults());
      for (auto [idx, r] : llvm::enumerate(last->getResults()))
        if (!llvm::is_contained(ret->getOperands(), r))
          plan.push_back({last.getKernel().str(), unsigned(idx), item.resultBytes[idx]});
    }
    // Last first: a fused scores op loses its uses with its consumers.
    for (Item &item : llvm::reverse(items))
      item.op->erase();

    SmallVector<Attribute> entries;
    for (const Buffer &buf : plan) {
      NamedAttrList e;
      e.append("producer", b.getStringAttr(buf.producer));
      e.append("result", b.getI64IntegerAttr(buf.result));
      e.append("bytes", b.getStringAttr(buf.bytes));
      entries.push_back(e.getDictionary(func.getContext()));
    }
    func->setAttr("sattn.workspace", b.getArrayAttr(entries));
    return success();
  }
};

} // namespace
