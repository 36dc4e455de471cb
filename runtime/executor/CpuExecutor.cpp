//===- CpuExecutor.cpp - run a variant on the float64 reference -----------===//
//
// A straight-line interpreter: the body of a variant is a DAG of Pure ops
// with no control flow, so one pass in program order with a map from SSA
// values to runtime values runs it. Each op is a thin adapter from its
// attributes to the matching reference kernel.
//
//===----------------------------------------------------------------------===//
#include "runtime/executor/CpuExecutor.h"

#include "dialect/SattnDialect.h"
#include "dialect/VariantSignature.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/TypeSwitch.h"

#include <chrono>
#include <map>
#include <tuple>
#include <variant>

using namespace mlir;

namespace sattn {
namespace {

template <typename T> using Ptr = std::shared_ptr<const T>;
using RtValue = std::variant<Ptr<ref::Tensor>, Ptr<ref::Scores>, Ptr<ref::BlockSet>,
                             Ptr<ref::QuerySet>, Ptr<ref::Budget>, Ptr<ref::TokenSet>,
                             Ptr<ref::VSlashSet>>;

std::optional<double> scaleOf(std::optional<APFloat> s) {
  if (!s)
    return std::nullopt;
  return s->convertToDouble();
}

ref::Forced forcedOf(ForcedAttr f) {
  if (!f)
    return {};
  return {f.getSink(), f.getLocal(), f.getDiagonal()};
}

class Interpreter {
public:
  explicit Interpreter(func::FuncOp f) : func(f) {}

  CpuRunResult run(const std::vector<std::shared_ptr<ref::Tensor>> &args, Operation *stopAfter) {
    if (args.size() != func.getNumArguments())
      throw ref::Error("the variant takes " + std::to_string(func.getNumArguments()) + " inputs, " +
                       std::to_string(args.size()) + " were given");
    for (auto [arg, value] : llvm::zip(func.getArguments(), args)) {
      // A block-set argument holds a user list (semantics §14); it becomes
      // a set when an op that knows Sq and Skv first uses it.
      if (llvm::isa<BlocksType>(arg.getType()))
        lists[arg] = value;
      else
        values[arg] = Ptr<ref::Tensor>(value);
    }
    CpuRunResult result;
    for (Operation &op : func.getBody().front()) {
      if (auto ret = dyn_cast<func::ReturnOp>(op)) {
        for (Value v : ret.getOperands())
          result.results.push_back(std::make_shared<ref::Tensor>(*tensor(v)));
        break;
      }
      auto start = std::chrono::steady_clock::now();
      eval(&op);
      double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count();
      result.phaseMs.push_back({op.getName().stripDialect().str(), ms});
      if (&op == stopAfter)
        break;
    }
    result.selection = selection;
    result.slimTokens = slimTokens;
    return result;
  }

private:
  template <typename T> Ptr<T> get(Value v) {
    auto it = values.find(v);
    if (it == values.end())
      throw ref::Error("internal: value used before it was computed");
    return std::get<Ptr<T>>(it->second);
  }
  Ptr<ref::Tensor> tensor(Value v) { return get<ref::Tensor>(v); }
  template <typename T> void set(Value v, T &&x) {
    values[v] = Ptr<std::decay_t<T>>(std::make_shared<std::decay_t<T>>(std::forward<T>(x)));
  }

  void eval(Operation *op) {
    TypeSwitch<Operation *>(op)
        .Case([&](PoolOp p) {
          auto kind = p.getKind() == PoolKind::mean  ? ref::PoolKind::Mean
                      : p.getKind() == PoolKind::max ? ref::PoolKind::Max
                                                     : ref::PoolKind::Min;
          set(p.getResult(), ref::pool(*tensor(p.getInput()), p.getGroupAttr().getInt(), kind));
        })
        .Case([&](ScoresOp s) {
          ScoresType t = s.getResult().getType();
          auto q = tensor(s.getQ()), k = tensor(s.getK());
          set(s.getResult(),
              ref::blockScores(*tensor(s.getQPooled()), *tensor(s.getKPooled()),
                               s.getQGroupAttr().getInt(), s.getKGroupAttr().getInt(), t.getBq(),
                               t.getBk(), q->dim(2), k->dim(2), s.getCausal(),
                               scaleOf(s.getScale()),
                               s.getKMax() ? tensor(s.getKMax()).get() : nullptr));
        })
        .Case([&](AntidiagScoresOp a) {
          ScoresType t = a.getResult().getType();
          set(a.getResult(),
              ref::antidiagScores(*tensor(a.getQ()), *tensor(a.getK()), a.getStrideAttr().getInt(),
                                  t.getBq(), t.getBk(), a.getCausal(), scaleOf(a.getScale())));
        })
        .Case([&](MeanScoresOp m) {
          std::vector<const ref::Scores *> in;
          for (Value v : m.getInputs())
            in.push_back(get<ref::Scores>(v).get());
          std::vector<double> w;
          if (auto given = m.getWeights())
            w.assign(given->begin(), given->end());
          set(m.getResult(), ref::meanScores(in, w));
        })
        .Case([&](HeadBudgetOp h) {
          auto b =
              ref::headBudget(*get<ref::Scores>(h.getScores()), h.getTau().convertToDouble(),
                              forcedOf(h.getForcedAttr()), h.getShare() == BudgetShare::flattest);
          set(h.getResult(), std::move(b));
          lastBudget = get<ref::Budget>(h.getResult());
        })
        .Case([&](SelectBlocksOp s) {
          auto scores = get<ref::Scores>(s.getScores());
          Ptr<ref::Budget> budget = s.getBudget() ? get<ref::Budget>(s.getBudget()) : nullptr;
          std::optional<int64_t> k;
          if (s.getKAttr())
            k = s.getKAttr().getInt();
          int64_t heads = s.getResult().getType().getHeads();
          if (s.getScope() == SelectScope::head)
            set(s.getResult(), ref::selectCumulativeHead(*scores, s.getTau()->convertToDouble(),
                                                         forcedOf(s.getForcedAttr())));
          else if (s.getRule() == SelectRule::topk)
            set(s.getResult(),
                ref::selectTopK(*scores, budget.get(), k, forcedOf(s.getForcedAttr()), heads));
          else
            set(s.getResult(),
                ref::selectCumulative(*scores, s.getTau()->convertToDouble(), budget.get(), k,
                                      forcedOf(s.getForcedAttr()), heads, s.getSlack()));
        })
        .Case([&](StaticBlocksOp s) {
          auto q = tensor(s.getQ()), k = tensor(s.getK());
          BlocksType t = s.getResult().getType();
          ref::Mask m{s.getCausal(), s.getWindowAttr().getInt(), s.getSinksAttr().getInt()};
          set(s.getResult(), ref::staticBlocks(q->dim(0), t.getHeads(), q->dim(2), k->dim(2),
                                               t.getBq(), t.getBk(), m));
        })
        .Case([&](VerticalSlashOp v) {
          auto q = tensor(v.getQ()), k = tensor(v.getK());
          BlocksType t = v.getResult().getType();
          ref::VerticalSlashParams p;
          p.last = v.getLastAttr().getInt();
          p.gamma = v.getGamma().convertToDouble();
          p.unit = v.getUnitAttr().getInt();
          p.minBlocks = v.getMinBlocksAttr().getInt();
          p.maxBlocks = v.getMaxBlocksAttr().getInt();
          p.jsd = v.getJsd().convertToDouble();
          Ptr<ref::BlockSet> aware;
          if (Value a = v.getAware())
            aware = lists.count(a) ? fromList(a, q->dim(0), q->dim(2), k->dim(2))
                                   : get<ref::BlockSet>(a);
          set(v.getResult(), ref::verticalSlash(*q, *k, t.getBq(), t.getBk(), aware.get(),
                                                aware ? tensor(v.getKPooled()).get() : nullptr, p));
        })
        .Case([&](VSlashOp v) {
          ref::VSlashParams p;
          p.last = v.getLastAttr().getInt();
          p.vertical = v.getVerticalAttr().getInt();
          p.slash = v.getSlashAttr().getInt();
          p.sinkColumns = v.getSinkColumnsAttr().getInt();
          p.localSlashes = v.getLocalSlashesAttr().getInt();
          set(v.getResult(), ref::vslash(*tensor(v.getQ()), *tensor(v.getK()),
                                         v.getResult().getType().getBq(), p));
        })
        .Case([&](UnionOp u) {
          auto [a, b] = setOperands(u);
          set(u.getResult(), ref::unite(*a, *b));
        })
        .Case([&](IntersectOp u) {
          auto [a, b] = setOperands(u);
          set(u.getResult(), ref::intersect(*a, *b));
        })
        .Case([&](ClassifyQueriesOp c) {
          ref::ClassifyParams p;
          p.keyGroup = c.getKeyGroupAttr().getInt();
          p.window = c.getWindowAttr().getInt();
          p.sinks = c.getSinksAttr().getInt();
          p.theta = c.getTheta().convertToDouble();
          p.keepEvery = c.getKeepEveryAttr().getInt();
          p.scale = scaleOf(c.getScale());
          set(c.getResult(), ref::classifyQueries(*tensor(c.getQ()), *tensor(c.getK()), p));
        })
        .Case([&](AttentionOp a) { evalAttention(a); })
        .Case([&](KvSlimOp s) {
          ref::SlimParams p;
          p.observe = s.getObserveAttr().getInt();
          p.tau = s.getTau().convertToDouble();
          p.sinks = s.getSinksAttr().getInt();
          p.recent = s.getRecentAttr().getInt();
          p.scale = scaleOf(s.getScale());
          std::optional<ref::Segments> seg;
          if (s.getSegments())
            seg = segmentsOf(*tensor(s.getSegments()));
          set(s.getResult(),
              ref::kvSlim(*tensor(s.getQ()), *tensor(s.getK()), seg ? &*seg : nullptr, p));
          slimTokens = get<ref::TokenSet>(s.getResult());
        })
        .Case([&](DecodeAttentionOp d) { evalDecode(d); })
        .Default([&](Operation *other) {
          throw ref::Error("the CPU reference cannot run '" +
                           other->getName().getStringRef().str() +
                           "'; run the semantic IR, before sattn-outline-kernels");
        });
  }

  void evalAttention(AttentionOp a) {
    auto q = tensor(a.getQ()), k = tensor(a.getK()), v = tensor(a.getV());
    ref::AttentionParams p;
    p.mask = {a.getCausal(), a.getWindowAttr().getInt(), a.getSinksAttr().getInt()};
    p.scale = scaleOf(a.getScale());
    p.lazy = a.getLazy() == LazyPolicy::local ? ref::LazyPolicy::Local : ref::LazyPolicy::Zero;
    p.lazyWindow = a.getLazyWindowAttr().getInt();
    p.lazySinks = a.getLazySinksAttr().getInt();
    Ptr<ref::BlockSet> blocks;
    if (Value bv = a.getBlocks())
      blocks =
          lists.count(bv) ? fromList(bv, q->dim(0), q->dim(2), k->dim(2)) : get<ref::BlockSet>(bv);
    if (BlockPatternAttr pat = a.getBlockPatternAttr()) {
      ref::Mask m{pat.getCausal(), pat.getWindow(), pat.getSinks()};
      blocks = std::make_shared<ref::BlockSet>(ref::staticBlocks(
          q->dim(0), q->dim(1), q->dim(2), k->dim(2), pat.getBq(), pat.getBk(), m));
    }
    Ptr<ref::QuerySet> queries = a.getQueries() ? get<ref::QuerySet>(a.getQueries()) : nullptr;
    Ptr<ref::VSlashSet> vslash = a.getVslash() ? get<ref::VSlashSet>(a.getVslash()) : nullptr;
    p.vslash = vslash.get();
    ref::AttentionResult r = ref::attention(*q, *k, *v, blocks.get(), queries.get(), p);
    set(a.getOut(), std::move(r.out));
    if (a.getLse())
      set(a.getLse(), std::move(r.lse));
    selection = SelectionInfo{};
    selection.q = q, selection.k = k, selection.v = v;
    selection.blocks = blocks, selection.queries = queries, selection.budget = lastBudget;
    selection.vslash = vslash;
    selection.params = p;
  }

  void evalDecode(DecodeAttentionOp d) {
    auto q = tensor(d.getQ());
    Ptr<ref::TokenSet> tokens = d.getTokens() ? get<ref::TokenSet>(d.getTokens()) : nullptr;
    ref::AttentionResult r;
    if (d.getPageTable()) {
      ref::PagedCache cache{tensor(d.getK()).get(), tensor(d.getV()).get(),
                            tensor(d.getPageTable()).get(), tensor(d.getSeqLens()).get()};
      r = ref::decodeAttentionPaged(*q, cache, tokens.get(), scaleOf(d.getScale()));
    } else {
      r = ref::decodeAttention(*q, *tensor(d.getK()), *tensor(d.getV()), tokens.get(),
                               scaleOf(d.getScale()));
    }
    set(d.getOut(), std::move(r.out));
    if (d.getLse())
      set(d.getLse(), std::move(r.lse));
    selection = SelectionInfo{};
    selection.q = q;
    selection.tokens = tokens;
    selection.decode = true;
  }

  /// The block set of user list `v` (a block-set argument) for batch B and
  /// lengths Sq x Skv, validated and converted once per geometry.
  Ptr<ref::BlockSet> fromList(Value v, int64_t B, int64_t Sq, int64_t Skv) {
    auto key = std::make_tuple(v.getAsOpaquePointer(), B, Sq, Skv);
    if (auto it = converted.find(key); it != converted.end())
      return it->second;
    auto t = llvm::cast<BlocksType>(v.getType());
    std::string name = "input '" + argName(func, llvm::cast<BlockArgument>(v).getArgNumber()) + "'";
    auto set = std::make_shared<const ref::BlockSet>(
        ref::blockSetFromList(*lists.at(v), name, B, t.getHeads(), Sq, Skv, t.getBq(), t.getBk()));
    converted[key] = set;
    return set;
  }

  /// Both operands of a union / intersection as sets. A user list takes its
  /// lengths from the other operand when that one is computed, else from
  /// the attention its result reaches (semantics §14).
  std::pair<Ptr<ref::BlockSet>, Ptr<ref::BlockSet>> setOperands(Operation *op) {
    Value x[2] = {op->getOperand(0), op->getOperand(1)};
    Ptr<ref::BlockSet> s[2];
    for (int i = 0; i < 2; ++i)
      if (!lists.count(x[i]))
        s[i] = get<ref::BlockSet>(x[i]);
    for (int i = 0; i < 2; ++i) {
      if (s[i])
        continue;
      if (const Ptr<ref::BlockSet> &other = s[1 - i]) {
        s[i] = fromList(x[i], other->B, other->Sq, other->Skv);
        continue;
      }
      auto [q, k] = blockSetLengths(op->getOpOperand(unsigned(i)));
      if (!q)
        throw ref::Error("the CPU reference cannot tell the lengths of block-set input '" +
                         argName(func, llvm::cast<BlockArgument>(x[i]).getArgNumber()) +
                         "': no attention consumes it");
      s[i] = fromList(x[i], tensor(q)->dim(0), tensor(q)->dim(2), tensor(k)->dim(2));
    }
    return {s[0], s[1]};
  }

  static ref::Segments segmentsOf(const ref::Tensor &t) {
    ref::Segments s;
    s.ranges.resize(static_cast<size_t>(t.dim(0)));
    for (int64_t b = 0; b < t.dim(0); ++b)
      for (int64_t n = 0; n < t.dim(1); ++n) {
        int64_t lo = static_cast<int64_t>(t.at3(b, n, 0));
        int64_t hi = static_cast<int64_t>(t.at3(b, n, 1));
        s.ranges[static_cast<size_t>(b)].push_back({lo, hi});
      }
    return s;
  }

  func::FuncOp func;
  llvm::DenseMap<Value, RtValue> values;
  llvm::DenseMap<Value, std::shared_ptr<ref::Tensor>> lists; ///< block-set arguments
  std::map<std::tuple<void *, int64_t, int64_t, int64_t>, Ptr<ref::BlockSet>> converted;
  SelectionInfo selection;
  Ptr<ref::Budget> lastBudget;
  Ptr<ref::TokenSet> slimTokens;
};

} // namespace

CpuRunResult runOnCpu(func::FuncOp func, const std::vector<std::shared_ptr<ref::Tensor>> &args,
                      Operation *stopAfter) {
  return Interpreter(func).run(args, stopAfter);
}

} // namespace sattn
