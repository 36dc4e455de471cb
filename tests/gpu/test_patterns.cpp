//===- test_patterns.cpp - the pattern library on the GPU, stage by stage -===//
//
// Each published pattern (examples/patterns/, built here through the same
// builders at test-sized head counts) runs on the GPU and on the float64
// reference. Every estimation stage is checked on its own (design §2): each
// granularity's block scores against the reference from the GPU-independent
// pooled inputs, the mean of the GPU's grids, the selection exactly equal to
// the reference rule on the GPU's own scores, the attention given the GPU's
// own block set. Static patterns are checked end to end.
//
//===----------------------------------------------------------------------===//
#include <catch2/catch.hpp>

#include "sattn/sattn.h"
#include "tests/gpu/GpuHarness.h"

#include <algorithm>
#include <iterator>
#include <sstream>

using namespace sattn;
using namespace sattn::testing;

namespace {

unsigned seed = 7000;

const ref::Scores &dumpedScores(const Outcome &o, const std::string &kernel) {
  auto it = o.dumps.find(kernel);
  REQUIRE(it != o.dumps.end());
  const auto *s = std::get_if<ref::Scores>(&it->second);
  REQUIRE(s);
  return *s;
}

/// Stage 1 for a composite-token estimate: the grid of each granularity
/// (kernels k2, k5, ... in builder order) against the reference on the
/// reference's own pooling, then the mean of the GPU's grids. Returns the
/// GPU's mean grid with its geometry filled in.
ref::Scores checkCompositeScores(const Outcome &o, const std::vector<int64_t> &grains, int block,
                                 const std::vector<double> &weights, int meanKernel) {
  const ref::Tensor &q = *o.inputs[0], &k = *o.inputs[1];
  std::vector<ref::Scores> mine;
  for (size_t i = 0; i < grains.size(); ++i) {
    int64_t c = grains[i];
    ref::Scores want =
        ref::blockScores(ref::pool(q, c, ref::PoolKind::Mean), ref::pool(k, c, ref::PoolKind::Mean),
                         c, c, block, block, q.dim(2), k.dim(2), true, std::nullopt);
    ref::Scores got = dumpedScores(o, "k" + std::to_string(3 * i + 2) + "_block_scores");
    double err = scoresErr(got, want);
    INFO("granularity " << c << " scores rel err " << err);
    CHECK(err <= 1e-3);
    got.bq = got.bk = block, got.Sq = q.dim(2), got.Skv = k.dim(2), got.causal = true;
    mine.push_back(got);
  }
  std::vector<const ref::Scores *> in;
  for (const ref::Scores &s : mine)
    in.push_back(&s);
  ref::Scores want = ref::meanScores(in, weights);
  ref::Scores got = dumpedScores(o, "k" + std::to_string(meanKernel) + "_mean_scores");
  double err = scoresErr(got, want);
  INFO("mean of the GPU's grids, rel err " << err);
  CHECK(err <= 1e-6);
  got.bq = got.bk = block, got.Sq = q.dim(2), got.Skv = k.dim(2), got.causal = true;
  return got;
}

/// The composite-budget pattern of examples/patterns/composite_budget.mlir at
/// the given heads (the file itself runs on the CPU in lit and on the GPU in
/// scripts/bundle-gpu.sh).
std::string compositeBudgetIR(const patterns::Heads &h, double tau) {
  std::string text = patterns::unisparse(h, {128, {16, 64}, tau, 0}).text();
  // Same estimate, weighted 1 : 2, then the flattest-head budget and top-k.
  std::string scores = "!sattn.scores<bq = 128, bk = 128, heads = " + std::to_string(h.heads) + ">";
  std::string blocks = "!sattn.blocks<bq = 128, bk = 128, heads = " + std::to_string(h.heads) + ">";
  std::string budget = "!sattn.budget<bq = 128, heads = 1>";
  std::string forced = "#sattn.forced<sink = 1, diagonal = true>";
  size_t a = text.find("  %s = sattn.mean_scores"), b = text.find("  %o = sattn.attention");
  std::ostringstream mid;
  mid << "  %s = sattn.mean_scores %s16, %s64 {weights = array<f64: 1.0, 2.0>} : " << scores
      << "\n  %b = sattn.head_budget flattest %s {tau = " << tau << " : f64, forced = " << forced
      << "} : " << scores << " -> " << budget
      << "\n  %bs = sattn.select_blocks topk %s budget %b : " << budget << " {forced = " << forced
      << "} : " << scores << " -> " << blocks << "\n";
  return text.substr(0, a) + mid.str() + text.substr(b);
}

} // namespace

TEST_CASE("UniSparse: composite-token scores, their mean, cumulative selection",
          "[gpu][patterns]") {
  struct Case {
    int Sq, Skv, B;
    double tau;
    int64_t cap;
    std::vector<int64_t> grans; ///< the default {32, 64}, and design §10's {16, 64}
  };
  for (const Case &c : {Case{700, 700, 1, 0.9, 0, {32, 64}}, Case{333, 333, 2, 0.8, 2, {16, 64}},
                        Case{500, 900, 1, 0.95, 0, {32, 64}}}) {
    Shape s{c.B, 8, 2, c.Sq, c.Skv, 64, "bf16"};
    INFO("Sq " << c.Sq << " Skv " << c.Skv << " B " << c.B << " tau " << c.tau << " cap " << c.cap
               << " granularities " << c.grans[0] << "," << c.grans[1]);
    patterns::Heads h{8, 2, 64, DType::BF16};
    patterns::UniSparseOptions opt;
    opt.tau = c.tau, opt.cap = c.cap, opt.granularities = c.grans;
    Outcome o = runBoth(patterns::unisparse(h, opt).text(), s, seed++);
    ref::Scores mean = checkCompositeScores(o, c.grans, 128, {}, 6);
    auto [gs, gb] = scoresAndBlocks(o);
    REQUIRE(gb);
    ref::BlockSet want = ref::selectCumulative(
        mean, c.tau, nullptr, c.cap > 0 ? std::optional<int64_t>(c.cap) : std::nullopt,
        ref::Forced{1, 0, true}, 8);
    CHECK(gb->lists == want.lists);
    checkAttentionOnSet(o, *gb, 128, 128, true);
  }
}

TEST_CASE("composite-token budget (IR-only pattern), stage by stage", "[gpu][patterns]") {
  for (auto [Sq, B] : {std::pair{700, 1}, {450, 2}}) {
    Shape s{B, 8, 2, Sq, Sq, 64, "bf16"};
    INFO("Sq " << Sq << " B " << B);
    Outcome o = runBoth(compositeBudgetIR({8, 2, 64, DType::BF16}, 0.9), s, seed++);
    ref::Scores mean = checkCompositeScores(o, {16, 64}, 128, {1.0, 2.0}, 6);
    auto it = o.dumps.find("k7_head_budget");
    REQUIRE(it != o.dumps.end());
    const auto *budget = std::get_if<ref::Budget>(&it->second);
    REQUIRE(budget);
    ref::Budget wantBudget = ref::headBudget(mean, 0.9, ref::Forced{1, 0, true}, true);
    CHECK(budget->k == wantBudget.k);
    auto [gs, gb] = scoresAndBlocks(o);
    REQUIRE(gb);
    ref::BlockSet want =
        ref::selectTopK(mean, &wantBudget, std::nullopt, ref::Forced{1, 0, true}, 8);
    CHECK(gb->lists == want.lists);
    checkAttentionOnSet(o, *gb, 128, 128, true);
  }
}

TEST_CASE("MInference block-sparse head: 64-token pooling, top-k 64 x 64 blocks",
          "[gpu][patterns]") {
  for (auto [Sq, k] : {std::pair{700, 4}, {1000, 11}}) {
    Shape s{1, 8, 2, Sq, Sq, 64, "bf16"};
    INFO("Sq " << Sq << " k " << k);
    Outcome o = runBoth(patterns::topkBlocks({8, 2, 64, DType::BF16}, 64, 64, k).text(), s, seed++);
    auto [gs, gb] = scoresAndBlocks(o);
    REQUIRE(gs);
    REQUIRE(gb);
    const ref::Tensor &q = *o.inputs[0], &kk = *o.inputs[1];
    ref::Scores want = ref::blockScores(ref::pool(q, 64, ref::PoolKind::Mean),
                                        ref::pool(kk, 64, ref::PoolKind::Mean), 64, 64, 64, 64,
                                        q.dim(2), kk.dim(2), true, std::nullopt);
    CHECK(scoresErr(*gs, want) <= 1e-3);
    ref::Scores mine = *gs;
    mine.bq = mine.bk = 64, mine.Sq = q.dim(2), mine.Skv = kk.dim(2), mine.causal = true;
    CHECK(gb->lists == ref::selectTopK(mine, nullptr, k, ref::Forced{1, 0, true}, 8).lists);
    checkAttentionOnSet(o, *gb, 64, 64, true);
  }
}

TEST_CASE("Quest: page bounds, upper-bound scores, top pages, decode and prefill",
          "[gpu][patterns][quest]") {
  struct Case {
    int B, Sq, Skv, page, pages;
  };
  for (const Case &c : {Case{2, 1, 900, 16, 8}, Case{1, 3, 650, 16, 5}, Case{2, 1, 1000, 32, 31},
                        Case{1, 300, 300, 16, 4}}) {
    Shape s{c.B, 8, 2, c.Sq, c.Skv, 64, "bf16"};
    INFO("B " << c.B << " Sq " << c.Sq << " Skv " << c.Skv << " page " << c.page << " pages "
              << c.pages);
    patterns::QuestOptions opt;
    opt.page = c.page, opt.pages = c.pages;
    Outcome o = runBoth(patterns::quest({8, 2, 64, DType::BF16}, opt).text(), s, seed++);
    auto [gs, gb] = scoresAndBlocks(o);
    REQUIRE(gs);
    REQUIRE(gb);
    // Stage 1: bound scores against the reference on the reference's own
    // page minimum and maximum (fp32 vs float64).
    const ref::Tensor &q = *o.inputs[0], &k = *o.inputs[1];
    ref::Tensor kmax = ref::pool(k, c.page, ref::PoolKind::Max);
    ref::Scores want = ref::blockScores(ref::pool(q, 1, ref::PoolKind::Mean),
                                        ref::pool(k, c.page, ref::PoolKind::Min), 1, c.page, c.page,
                                        c.page, q.dim(2), k.dim(2), true, std::nullopt, &kmax);
    double err = scoresErr(*gs, want);
    INFO("bound scores rel err " << err);
    CHECK(err <= 1e-3);
    // Stage 2: the pages kept are the reference rule's on the GPU's scores.
    ref::Scores mine = *gs;
    mine.bq = mine.bk = c.page, mine.Sq = q.dim(2), mine.Skv = k.dim(2), mine.causal = true;
    CHECK(gb->lists == ref::selectTopK(mine, nullptr, c.pages, ref::Forced{0, 0, true}, 8).lists);
    // Stage 3: attention over the GPU's own pages.
    checkAttentionOnSet(o, *gb, c.page, c.page, true);
  }
}

TEST_CASE("StreamingLLM and MInference A-shape as predicates, prefill and decode",
          "[gpu][patterns]") {
  patterns::Heads h{8, 2, 64, DType::BF16};
  for (auto [window, sinks] : {std::pair{256, 4}, {200, 64}})
    for (auto [Sq, Skv] : {std::pair{700, 700}, {1, 900}, {3, 650}}) {
      Shape s{2, 8, 2, Sq, Skv, 64, "bf16"};
      INFO("window " << window << " sinks " << sinks << " Sq " << Sq << " Skv " << Skv);
      checkResults(runBoth(patterns::streaming(h, window, sinks).text(), s, seed++));
    }
}

namespace {

/// Fraction of (row, block) memberships on which two block sets agree.
double setAgreement(const ref::BlockSet &a, const ref::BlockSet &b) {
  int64_t same = 0, all = 0;
  for (size_t r = 0; r < a.lists.size(); ++r) {
    std::vector<int32_t> u;
    std::set_union(a.lists[r].begin(), a.lists[r].end(), b.lists[r].begin(), b.lists[r].end(),
                   std::back_inserter(u));
    std::vector<int32_t> i;
    std::set_intersection(a.lists[r].begin(), a.lists[r].end(), b.lists[r].begin(),
                          b.lists[r].end(), std::back_inserter(i));
    same += int64_t(i.size()), all += int64_t(u.size());
  }
  return all ? double(same) / double(all) : 1.0;
}

} // namespace

TEST_CASE("FlexPrefill: head-wide cumulative, vertical-slash lines and picks, attention",
          "[gpu][patterns][flexprefill]") {
  struct Case {
    int B, S, D, block;
    double jsd;
    const char *dtype;
  };
  for (const Case &c : {Case{2, 700, 64, 64, 0.1, "bf16"}, Case{1, 1000, 128, 128, 1.0, "fp16"},
                        Case{1, 900, 64, 64, 0.0, "bf16"}}) {
    Shape s{c.B, 8, 2, c.S, c.S, c.D, c.dtype};
    INFO("B " << c.B << " S " << c.S << " D " << c.D << " block " << c.block << " jsd " << c.jsd);
    patterns::FlexPrefillOptions opt;
    opt.block = c.block, opt.jsd = c.jsd, opt.minBudget = 2 * c.block;
    DType dt = std::string(c.dtype) == "fp16" ? DType::FP16 : DType::BF16;
    Outcome o = runBoth(patterns::flexprefill({8, 2, c.D, dt}, opt).text(), s, seed++);
    const ref::Tensor &q = *o.inputs[0], &k = *o.inputs[1];
    const ref::BlockSet *qa = nullptr;
    if (c.jsd > 0) {
      // Stage 1: the head-wide prefix is the reference rule's on the GPU's scores.
      const ref::Scores *gs = scoresAndBlocks(o).first;
      auto at = o.dumps.find("k3_select_cumulative_head");
      REQUIRE(gs);
      REQUIRE(at != o.dumps.end());
      const auto *gqa = std::get_if<ref::BlockSet>(&at->second);
      REQUIRE(gqa);
      ref::Scores mine = *gs;
      mine.bq = mine.bk = c.block, mine.Sq = c.S, mine.Skv = c.S, mine.causal = true;
      CHECK(gqa->lists == ref::selectCumulativeHead(mine, 0.9, ref::Forced{}).lists);
      qa = gqa;
    }
    // Stage 2: the vertical-slash set against the float64 lines on the GPU's
    // aware set. fp32 lines can move a coverage count across a multiple of
    // the unit or swap two near-equal columns, so the sets must agree on
    // >= 99% of their blocks rather than exactly.
    auto it = o.dumps.find(c.jsd > 0 ? "k4_vertical_slash" : "k0_vertical_slash");
    REQUIRE(it != o.dumps.end());
    const auto *gb = std::get_if<ref::BlockSet>(&it->second);
    REQUIRE(gb);
    ref::VerticalSlashParams p;
    // unit stays 128 (the op's default, the reference's `// 128` whatever the block).
    p.last = c.block, p.gamma = 0.9, p.minBlocks = 2, p.jsd = c.jsd;
    ref::Tensor kp = ref::pool(k, c.block, ref::PoolKind::Mean);
    ref::BlockSet want =
        ref::verticalSlash(q, k, c.block, c.block, qa, qa ? &kp : nullptr, p);
    double agree = setAgreement(*gb, want);
    INFO("vertical-slash agreement " << agree);
    CHECK(agree >= 0.99);
    if (c.jsd >= 1.0) // every head query-aware: the aware rows are all in
      for (size_t r = 0; r < gb->lists.size(); ++r)
        CHECK(std::includes(gb->lists[r].begin(), gb->lists[r].end(), qa->lists[r].begin(),
                            qa->lists[r].end()));
    // Stage 3: attention over the GPU's own set.
    checkAttentionOnSet(o, *gb, c.block, c.block, true);
  }
}

TEST_CASE("head-wide cumulative selection on a grid of several chunks", "[gpu][patterns][flexprefill]") {
  // 4200 tokens in 32-token blocks: a 132 x 132 grid per head, above
  // select_head.cuh's chunk size, so the radix select's histograms come
  // from two chunks per head and the ties / last-tie search cross them.
  for (double tau : {0.7, 0.999}) {
    Shape s{1, 8, 2, 4200, 4200, 64, "bf16"};
    INFO("tau " << tau);
    const std::string q = "tensor<?x8x?x64xbf16>", k = "tensor<?x2x?x64xbf16>";
    const std::string qp = "tensor<?x8x?x64xf32>", kp = "tensor<?x2x?x64xf32>";
    const std::string st = "!sattn.scores<bq = 32, bk = 32, heads = 8>";
    const std::string bt = "!sattn.blocks<bq = 32, bk = 32, heads = 8>";
    std::ostringstream ir;
    ir << "func.func @v(%q: " << q << ", %k: " << k << ", %v: " << k << ") -> " << q << " {\n"
       << "  %qp = sattn.pool mean %q group 32 : " << q << " -> " << qp << "\n"
       << "  %kp = sattn.pool mean %k group 32 : " << k << " -> " << kp << "\n"
       << "  %s = sattn.scores %qp, %kp of %q, %k {q_group = 32 : i64, k_group = 32 : i64, causal} : "
       << qp << ", " << kp << ", " << q << ", " << k << " -> " << st << "\n"
       << "  %bs = sattn.select_blocks cumulative %s per head {tau = " << tau << " : f64} : " << st
       << " -> " << bt << "\n"
       << "  %o = sattn.attention %q, %k, %v blocks %bs : " << bt << " {causal} : " << q << ", "
       << k << ", " << k << " -> " << q << "\n  return %o : " << q << "\n}\n";
    Outcome o = runBoth(ir.str(), s, seed++);
    auto [gs, gb] = scoresAndBlocks(o);
    REQUIRE(gs);
    REQUIRE(gb);
    ref::Scores mine = *gs;
    mine.bq = mine.bk = 32, mine.Sq = mine.Skv = 4200, mine.causal = true;
    CHECK(gb->lists == ref::selectCumulativeHead(mine, tau, ref::Forced{}).lists);
    checkAttentionOnSet(o, *gb, 32, 32, true);
  }
}

namespace {
/// |a ∩ b| / |b| over every (b, h) list of two ascending lists.
double listAgreement(const std::vector<std::vector<int32_t>> &a,
                     const std::vector<std::vector<int32_t>> &b) {
  size_t both = 0, all = 0;
  for (size_t r = 0; r < b.size(); ++r) {
    std::vector<int32_t> x;
    std::set_intersection(a[r].begin(), a[r].end(), b[r].begin(), b[r].end(),
                          std::back_inserter(x));
    both += x.size(), all += b[r].size();
  }
  return all ? double(both) / double(all) : 1.0;
}

/// The distances each (b, h)'s intervals cover, as lists.
std::vector<std::vector<int32_t>> coveredDistances(const ref::VSlashSet &s) {
  std::vector<std::vector<int32_t>> out(s.intervals.size());
  for (size_t r = 0; r < s.intervals.size(); ++r)
    for (auto [lo, hi] : s.intervals[r])
      for (int32_t d = lo; d < hi; ++d)
        out[r].push_back(d);
  return out;
}
} // namespace

TEST_CASE("MInference vertical-slash: token-level columns and bands in one attention launch",
          "[gpu][patterns][minference]") {
  struct Case {
    int B, Sq, Skv, D;
    int64_t vertical, slash;
    const char *dtype;
  };
  for (const Case &c : {Case{2, 700, 700, 64, 40, 30, "bf16"}, Case{1, 1000, 1000, 128, 100, 150, "fp16"},
                        Case{1, 500, 1300, 128, 64, 200, "bf16"},
                        Case{1, 3000, 3000, 128, 300, 120, "bf16"}}) {
    Shape s{c.B, 8, 2, c.Sq, c.Skv, c.D, c.dtype};
    INFO("B " << c.B << " Sq " << c.Sq << " Skv " << c.Skv << " D " << c.D << " vertical "
              << c.vertical << " slash " << c.slash);
    patterns::VerticalSlashOptions opt;
    opt.vertical = c.vertical, opt.slash = c.slash;
    DType dt = std::string(c.dtype) == "fp16" ? DType::FP16 : DType::BF16;
    Outcome o = runBoth(patterns::minferenceVerticalSlash({8, 2, c.D, dt}, opt).text(), s, seed++);
    auto it = o.dumps.find("k0_vslash");
    REQUIRE(it != o.dumps.end());
    const auto *g = std::get_if<ref::VSlashSet>(&it->second);
    REQUIRE(g);
    // Stage 1: the set against the float64 lines. fp32 lines can swap two
    // near-equal columns or slashes, so the picks must agree on >= 98%.
    ref::VSlashParams p;
    p.vertical = c.vertical, p.slash = c.slash;
    ref::VSlashSet want = ref::vslash(*o.inputs[0], *o.inputs[1], 64, p);
    const int64_t nv = std::min<int64_t>(c.Skv, std::max<int64_t>(c.vertical, 30));
    for (size_t r = 0; r < g->columns.size(); ++r) {
      const auto &cols = g->columns[r];
      REQUIRE(int64_t(cols.size()) == nv);
      CHECK(std::adjacent_find(cols.begin(), cols.end(), std::greater_equal<int32_t>()) ==
            cols.end()); // strictly ascending
      for (int32_t j = 0; j < 30; ++j)
        CHECK(cols[size_t(j)] == j); // the sink columns
      const auto &iv = g->intervals[r];
      REQUIRE(!iv.empty());
      CHECK(iv.front().first == 0);
      for (size_t x = 0; x < iv.size(); ++x) {
        CHECK(iv[x].second > iv[x].first);
        if (x > 0)
          CHECK(iv[x].first > iv[x - 1].second);
      }
    }
    double colAgree = listAgreement(g->columns, want.columns);
    double distAgree = listAgreement(coveredDistances(*g), coveredDistances(want));
    INFO("column agreement " << colAgree << ", band agreement " << distAgree);
    CHECK(colAgree >= 0.98);
    CHECK(distAgree >= 0.98);
    // Stage 2: the attention over the GPU's own set, token by token.
    ref::AttentionParams ap;
    ap.mask.causal = true;
    ap.vslash = g;
    ref::AttentionResult r =
        ref::attention(*o.inputs[0], *o.inputs[1], *o.inputs[2], nullptr, nullptr, ap);
    REQUIRE(nanCount(*o.gpu[0]) == 0);
    double err = relErr(*o.gpu[0], r.out);
    INFO("attention rel err " << err);
    CHECK(err <= 1e-2);
    // The selection report reads the same set.
    REQUIRE(o.selection.vslash);
    CHECK(o.selection.density().value() ==
          Approx(ref::density(ref::Dims{c.B, 8, 2, c.Sq, c.Skv}, ref::Attended{nullptr, nullptr, ap})));
  }
}
