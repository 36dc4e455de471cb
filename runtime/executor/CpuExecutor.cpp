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

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/TypeSwitch.h"

#include <chrono>
#include <variant>

using namespace mlir;

namespace sattn {
namespace {

template <typename T> using Ptr = std::shared_ptr<const T>;
using RtValue = std::variant<Ptr<ref::Tensor>, Ptr<ref::Scores>, Ptr<ref::BlockSet>,
                             Ptr<ref::QuerySet>, Ptr<ref::Budget>, Ptr<ref::TokenSet>>;

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

  CpuRunResult run(const std::vector<std::shared_ptr<ref::Tensor>> &args) {
    if (args.size() != func.getNumArguments())
      throw ref::Error("the variant takes " + std::to_string(func.getNumArguments()) + " inputs, " +
                       std::to_string(args.size()) + " were given");
    for (auto [arg, value] : llvm::zip(func.getArguments(), args))
      values[arg] = Ptr<ref::Tensor>(value);
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
    }
    result.selection = selection;
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
                               scaleOf(s.getScale())));
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
          if (s.getRule() == SelectRule::topk)
            set(s.getResult(),
                ref::selectTopK(*scores, budget.get(), k, forcedOf(s.getForcedAttr()), heads));
          else
            set(s.getResult(),
                ref::selectCumulative(*scores, s.getTau()->convertToDouble(), budget.get(), k,
                                      forcedOf(s.getForcedAttr()), heads));
        })
        .Case([&](StaticBlocksOp s) {
          auto q = tensor(s.getQ()), k = tensor(s.getK());
          BlocksType t = s.getResult().getType();
          ref::Mask m{s.getCausal(), s.getWindowAttr().getInt(), s.getSinksAttr().getInt()};
          set(s.getResult(), ref::staticBlocks(q->dim(0), t.getHeads(), q->dim(2), k->dim(2),
                                               t.getBq(), t.getBk(), m));
        })
        .Case([&](UnionOp u) {
          set(u.getResult(),
              ref::unite(*get<ref::BlockSet>(u.getLhs()), *get<ref::BlockSet>(u.getRhs())));
        })
        .Case([&](IntersectOp u) {
          set(u.getResult(),
              ref::intersect(*get<ref::BlockSet>(u.getLhs()), *get<ref::BlockSet>(u.getRhs())));
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
    Ptr<ref::BlockSet> blocks = a.getBlocks() ? get<ref::BlockSet>(a.getBlocks()) : nullptr;
    if (BlockPatternAttr pat = a.getBlockPatternAttr()) {
      ref::Mask m{pat.getCausal(), pat.getWindow(), pat.getSinks()};
      blocks = std::make_shared<ref::BlockSet>(ref::staticBlocks(
          q->dim(0), q->dim(1), q->dim(2), k->dim(2), pat.getBq(), pat.getBk(), m));
    }
    Ptr<ref::QuerySet> queries = a.getQueries() ? get<ref::QuerySet>(a.getQueries()) : nullptr;
    ref::AttentionResult r = ref::attention(*q, *k, *v, blocks.get(), queries.get(), p);
    set(a.getOut(), std::move(r.out));
    if (a.getLse())
      set(a.getLse(), std::move(r.lse));
    selection = SelectionInfo{};
    selection.q = q, selection.k = k, selection.v = v;
    selection.blocks = blocks, selection.queries = queries, selection.budget = lastBudget;
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
  SelectionInfo selection;
  Ptr<ref::Budget> lastBudget;
};

} // namespace

CpuRunResult runOnCpu(func::FuncOp func, const std::vector<std::shared_ptr<ref::Tensor>> &args) {
  return Interpreter(func).run(args);
}

} // namespace sattn
