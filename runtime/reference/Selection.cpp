//===- Selection.cpp - Block selection, head budgets, set algebra ---------===//
//
// §6 (top-k and cumulative-τ block selection, per head or per KV group), §7
// (per-head budgets and the flattest-head share), §8 (static block sets from
// a token mask), §9 (union and intersection) and §14 (block sets given as
// input, from user lists). Every row is decided by the one order of §6 —
// forced blocks first, then descending score with ties to the lower index —
// so the rules only differ in how long a prefix they keep.
//
//===----------------------------------------------------------------------===//

#include "runtime/reference/Reference.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <iterator>

namespace sattn::ref {

namespace {

void checkScores(const Scores &s) {
  if (s.bq <= 0 || s.bk <= 0 || s.Sq < 0 || s.Skv < 0 || s.B < 0 || s.H < 0)
    throw Error(fmt::format("scores have invalid geometry B={} H={} Sq={} Skv={} "
                            "blocks {}x{}; build them with blockScores()",
                            s.B, s.H, s.Sq, s.Skv, s.bq, s.bk));
  if (s.nQB != cdiv(s.Sq, s.bq) || s.nKB != cdiv(s.Skv, s.bk))
    throw Error(fmt::format("scores have {}x{} blocks but Sq={}, Skv={} with blocks "
                            "{}x{} need {}x{}",
                            s.nQB, s.nKB, s.Sq, s.Skv, s.bq, s.bk, cdiv(s.Sq, s.bq),
                            cdiv(s.Skv, s.bk)));
  if (static_cast<int64_t>(s.v.size()) != s.B * s.H * s.nQB * s.nKB)
    throw Error(fmt::format("scores hold {} values but B*H*nQB*nKB = {}", s.v.size(),
                            s.B * s.H * s.nQB * s.nKB));
  for (double x : s.v)
    if (!std::isfinite(x))
      throw Error(fmt::format("scores hold a non-finite value ({}); selection needs "
                              "finite scores",
                              x));
}

void checkTau(double tau) {
  if (!(tau >= 0.0 && tau <= 1.0))
    throw Error(fmt::format("cumulative tau={} is out of range [0, 1]", tau));
}

/// Query heads per result head: outHeads is Hq (per head) or Hkv (per group).
int64_t groupSize(const Scores &s, int64_t outHeads) {
  if (outHeads <= 0 || s.H % outHeads != 0)
    throw Error(fmt::format("a block set with {} heads cannot be built from scores "
                            "with {} query heads; use Hq or a divisor of it (Hkv)",
                            outHeads, s.H));
  return s.H / outHeads;
}

void checkK(int64_t K, const Scores &s, const std::string &where) {
  if (K < 0 || K > s.nKB)
    throw Error(fmt::format("budget k={} is out of range [0, {}] (ceil(Skv/Bk) with "
                            "Skv={}, Bk={}){}; pass a budget between 0 and {}",
                            K, s.nKB, s.Skv, s.bk, where, s.nKB));
}

/// Where a row's budget comes from: the `k` attribute or a Budget operand
/// that is shared (H == 1), per result head, or per query head (then the
/// group takes its max, §6).
class BudgetSource {
public:
  BudgetSource(const Scores &s, const Budget *b, std::optional<int64_t> kAttr, int64_t heads,
               bool required)
      : budget(b), k(kAttr), outHeads(heads), g(s.H / heads) {
    if (b && k)
      throw Error("both a budget operand and a k attribute were given; pass only one");
    if (required && !b && !k)
      throw Error("top-k selection needs a budget: pass a k attribute or a budget "
                  "operand");
    if (k)
      checkK(*k, s, "");
    if (!b)
      return;
    if (b->B != s.B || b->nQB != s.nQB)
      throw Error(fmt::format("budget has B={} nQB={} but the scores have B={} "
                              "nQB={}; budgets are never shared across batches",
                              b->B, b->nQB, s.B, s.nQB));
    if (b->H != 1 && b->H != outHeads && b->H != s.H)
      throw Error(fmt::format("budget has {} heads; use 1 (shared), {} (per result "
                              "head) or {} (per query head)",
                              b->H, outHeads, s.H));
    if (static_cast<int64_t>(b->k.size()) != b->B * b->H * b->nQB)
      throw Error(fmt::format("budget holds {} values but B*H*nQB = {}", b->k.size(),
                              b->B * b->H * b->nQB));
    for (int64_t bb = 0; bb < b->B; ++bb)
      for (int64_t h = 0; h < b->H; ++h)
        for (int64_t I = 0; I < b->nQB; ++I)
          checkK(b->at(bb, h, I), s,
                 fmt::format(" at batch {}, head {}, query block {}", bb, h, I));
  }
  bool present() const { return budget || k; }
  int64_t at(int64_t b, int64_t og, int64_t I) const {
    if (k)
      return *k;
    if (budget->H == 1)
      return budget->at(b, 0, I);
    if (budget->H == outHeads)
      return budget->at(b, og, I);
    int64_t K = 0;
    for (int64_t h = og * g; h < (og + 1) * g; ++h)
      K = std::max(K, budget->at(b, h, I));
    return K;
  }

private:
  const Budget *budget;
  std::optional<int64_t> k;
  int64_t outHeads, g;
};

/// The scores of result head og: the mean over its g query heads.
void groupRow(const Scores &s, int64_t b, int64_t og, int64_t g, int64_t I,
              std::vector<double> &row) {
  row.assign(static_cast<size_t>(s.nKB), 0.0);
  for (int64_t h = og * g; h < (og + 1) * g; ++h)
    for (int64_t J = 0; J < s.nKB; ++J)
      row[static_cast<size_t>(J)] += s.at(b, h, I, J);
  if (g > 1)
    for (double &x : row)
      x /= static_cast<double>(g);
}

/// `ord` of §6: F ascending, then V \ F by descending score, ties lower index.
std::vector<int32_t> order(const std::vector<double> &row, const std::vector<int32_t> &V,
                           const std::vector<int32_t> &F) {
  std::vector<int32_t> ord = F;
  for (int32_t J : V)
    if (!std::binary_search(F.begin(), F.end(), J))
      ord.push_back(J);
  // Stable over V's ascending order: equal scores keep the lower index first.
  std::stable_sort(ord.begin() + static_cast<std::ptrdiff_t>(F.size()), ord.end(),
                   [&](int32_t a, int32_t b) {
                     return row[static_cast<size_t>(a)] > row[static_cast<size_t>(b)];
                   });
  return ord;
}

/// Length of the shortest prefix of ord holding F with mass >= tau * total.
size_t cumulativeLength(const std::vector<double> &row, const std::vector<int32_t> &ord, size_t nF,
                        double tau) {
  // The total is summed in ord order, like the prefix, so that tau = 1 stops
  // exactly at the last block with nonzero mass.
  double total = 0.0;
  for (int32_t J : ord)
    total += row[static_cast<size_t>(J)];
  double target = tau * total, sum = 0.0;
  size_t L = 0;
  for (; L < nF; ++L)
    sum += row[static_cast<size_t>(ord[L])];
  for (; L < ord.size() && sum < target; ++L)
    sum += row[static_cast<size_t>(ord[L])];
  return L;
}

BlockSet emptyLike(const Scores &s, int64_t heads) {
  BlockSet out;
  out.B = s.B;
  out.H = heads;
  out.nQB = s.nQB;
  out.nKB = s.nKB;
  out.bq = s.bq;
  out.bk = s.bk;
  out.Sq = s.Sq;
  out.Skv = s.Skv;
  out.lists.resize(static_cast<size_t>(s.B * heads * s.nQB));
  return out;
}

/// Runs `keep(row, ord, nF, b, og, I) -> prefix length` for every row of a result.
template <class Keep>
BlockSet selectRows(const Scores &s, const Forced &forced, int64_t outHeads, Keep keep) {
  int64_t g = groupSize(s, outHeads);
  BlockSet out = emptyLike(s, outHeads);
  std::vector<double> row;
  for (int64_t I = 0; I < s.nQB; ++I) {
    std::vector<int32_t> V = visibleBlocks(I, s.bq, s.bk, s.Sq, s.Skv, s.causal);
    std::vector<int32_t> F = forcedBlocks(forced, I, s.bq, s.bk, s.Sq, s.Skv, s.causal);
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t og = 0; og < outHeads; ++og) {
        groupRow(s, b, og, g, I, row);
        std::vector<int32_t> ord = order(row, V, F);
        size_t L = std::min(ord.size(), keep(row, ord, F.size(), b, og, I));
        std::vector<int32_t> &dst = out.row(b, og, I);
        dst.assign(ord.begin(), ord.begin() + static_cast<std::ptrdiff_t>(L));
        std::sort(dst.begin(), dst.end());
      }
  }
  return out;
}

} // namespace

Budget headBudget(const Scores &s, double tau, const Forced &forced, bool shareFlattest) {
  checkScores(s);
  checkTau(tau);
  Budget out;
  out.B = s.B;
  out.H = shareFlattest ? 1 : s.H;
  out.nQB = s.nQB;
  out.k.assign(static_cast<size_t>(out.B * out.H * out.nQB), 0);
  std::vector<double> row;
  for (int64_t I = 0; I < s.nQB; ++I) {
    std::vector<int32_t> V = visibleBlocks(I, s.bq, s.bk, s.Sq, s.Skv, s.causal);
    std::vector<int32_t> F = forcedBlocks(forced, I, s.bq, s.bk, s.Sq, s.Skv, s.causal);
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t h = 0; h < s.H; ++h) {
        groupRow(s, b, h, 1, I, row);
        auto kh = static_cast<int64_t>(cumulativeLength(row, order(row, V, F), F.size(), tau));
        int64_t &dst =
            out.k[static_cast<size_t>((b * out.H + (shareFlattest ? 0 : h)) * out.nQB + I)];
        dst = std::max(dst, kh); // flattest: max over the heads of this (b, I)
      }
  }
  return out;
}

BlockSet selectTopK(const Scores &s, const Budget *budget, std::optional<int64_t> k,
                    const Forced &forced, int64_t outHeads) {
  checkScores(s);
  groupSize(s, outHeads);
  BudgetSource src(s, budget, k, outHeads, /*required=*/true);
  return selectRows(s, forced, outHeads,
                    [&](const std::vector<double> &, const std::vector<int32_t> &, size_t nF,
                        int64_t b, int64_t og, int64_t I) {
                      // K <= |ord| = |V| after the min in selectRows: the clip to |V|.
                      auto K = static_cast<size_t>(src.at(b, og, I));
                      return nF + (K > nF ? K - nF : 0);
                    });
}

BlockSet selectCumulative(const Scores &s, double tau, const Budget *cap,
                          std::optional<int64_t> capK, const Forced &forced, int64_t outHeads,
                          int64_t slack) {
  checkScores(s);
  checkTau(tau);
  if (slack < 0)
    throw Error(fmt::format("cumulative selection: slack must be >= 0, got {}", slack));
  groupSize(s, outHeads);
  BudgetSource src(s, cap, capK, outHeads, /*required=*/false);
  return selectRows(s, forced, outHeads,
                    [&](const std::vector<double> &row, const std::vector<int32_t> &ord, size_t nF,
                        int64_t b, int64_t og, int64_t I) {
                      size_t L = std::min(ord.size(), cumulativeLength(row, ord, nF, tau) +
                                                          static_cast<size_t>(slack));
                      if (src.present())
                        L = std::min(L, std::max(static_cast<size_t>(src.at(b, og, I)), nF));
                      return L;
                    });
}

BlockSet selectCumulativeHead(const Scores &s, double tau, const Forced &forced) {
  checkScores(s);
  checkTau(tau);
  BlockSet out = emptyLike(s, s.H);
  // Pairs are flat indices I * nKB + J; forced ones row-major first, then
  // the others by descending score, ties to the lower flat index.
  std::vector<int64_t> F, free;
  std::vector<char> isForced(static_cast<size_t>(s.nQB * s.nKB));
  for (int64_t I = 0; I < s.nQB; ++I) {
    std::vector<int32_t> Fr = forcedBlocks(forced, I, s.bq, s.bk, s.Sq, s.Skv, s.causal);
    for (int32_t J : Fr)
      isForced[static_cast<size_t>(I * s.nKB + J)] = 1, F.push_back(I * s.nKB + J);
    for (int32_t J : visibleBlocks(I, s.bq, s.bk, s.Sq, s.Skv, s.causal))
      if (!isForced[static_cast<size_t>(I * s.nKB + J)])
        free.push_back(I * s.nKB + J);
  }
  std::vector<double> grid;
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h) {
      const double *g = &s.v[static_cast<size_t>((b * s.H + h) * s.nQB * s.nKB)];
      std::vector<int64_t> ord = free;
      std::stable_sort(ord.begin(), ord.end(), [&](int64_t x, int64_t y) {
        return g[static_cast<size_t>(x)] > g[static_cast<size_t>(y)];
      });
      ord.insert(ord.begin(), F.begin(), F.end());
      double total = 0.0; // in ord order, as cumulativeLength does
      for (int64_t x : ord)
        total += g[static_cast<size_t>(x)];
      const double target = tau * total;
      double sum = 0.0;
      size_t L = 0;
      for (; L < F.size(); ++L)
        sum += g[static_cast<size_t>(ord[L])];
      for (; L < ord.size() && sum < target; ++L)
        sum += g[static_cast<size_t>(ord[L])];
      std::vector<int64_t> kept(ord.begin(), ord.begin() + static_cast<std::ptrdiff_t>(L));
      std::sort(kept.begin(), kept.end());
      for (int64_t x : kept)
        out.row(b, h, x / s.nKB).push_back(static_cast<int32_t>(x % s.nKB));
    }
  return out;
}

BlockSet staticBlocks(int64_t B, int64_t H, int64_t Sq, int64_t Skv, int64_t bq, int64_t bk,
                      const Mask &mask) {
  detail::checkMask(mask);
  if (B < 0 || H < 0 || Sq < 0 || Skv < 0 || bq <= 0 || bk <= 0)
    throw Error(fmt::format("static_blocks needs B, H, Sq, Skv >= 0 and positive "
                            "blocks; got B={} H={} Sq={} Skv={} blocks {}x{}",
                            B, H, Sq, Skv, bq, bk));
  Scores geom;
  geom.B = B;
  geom.nQB = cdiv(Sq, bq);
  geom.nKB = cdiv(Skv, bk);
  geom.bq = bq;
  geom.bk = bk;
  geom.Sq = Sq;
  geom.Skv = Skv;
  BlockSet out = emptyLike(geom, H);
  std::vector<char> hit(static_cast<size_t>(geom.nKB));
  auto mark = [&](int64_t lo, int64_t hi) { // keys [lo, hi]
    for (int64_t J = lo / bk; lo <= hi && J <= hi / bk; ++J)
      hit[static_cast<size_t>(J)] = 1;
  };
  for (int64_t I = 0; I < geom.nQB; ++I) {
    std::fill(hit.begin(), hit.end(), 0);
    // Each row's allowed keys are at most two ranges, so mark ranges instead
    // of testing every (i, j) of the block pair.
    for (int64_t i = I * bq; i < std::min(Sq, (I + 1) * bq); ++i) {
      int64_t ip = i + Skv - Sq;
      if (!mask.causal) {
        mark(0, Skv - 1);
      } else if (ip >= 0) {
        if (mask.window == 0) {
          mark(0, ip);
        } else {
          mark(std::max<int64_t>(0, ip - mask.window + 1), ip);
          mark(0, std::min(mask.sinks - 1, ip));
        }
      }
    }
    std::vector<int32_t> list;
    for (int64_t J = 0; J < geom.nKB; ++J)
      if (hit[static_cast<size_t>(J)])
        list.push_back(static_cast<int32_t>(J));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        out.row(b, h, I) = list;
  }
  return out;
}

namespace {

template <class Op> BlockSet combine(const BlockSet &a, const BlockSet &b, Op op) {
  if (a.B != b.B || a.H != b.H || a.nQB != b.nQB || a.nKB != b.nKB || a.bq != b.bq ||
      a.bk != b.bk || a.Sq != b.Sq || a.Skv != b.Skv)
    throw Error(
        fmt::format("block sets differ in type: B={} H={} blocks {}x{} over {}x{} tokens vs B={} "
                    "H={} blocks {}x{} over {}x{} tokens; both operands need the same one",
                    a.B, a.H, a.bq, a.bk, a.Sq, a.Skv, b.B, b.H, b.bq, b.bk, b.Sq, b.Skv));
  if (a.lists.size() != b.lists.size() || static_cast<int64_t>(a.lists.size()) != a.B * a.H * a.nQB)
    throw Error(fmt::format("block sets hold {} and {} lists but B*H*nQB = {}", a.lists.size(),
                            b.lists.size(), a.B * a.H * a.nQB));
  BlockSet out = a;
  auto norm = [](std::vector<int32_t> l) { // inputs may be hand-built
    std::sort(l.begin(), l.end());
    l.erase(std::unique(l.begin(), l.end()), l.end());
    return l;
  };
  for (size_t x = 0; x < a.lists.size(); ++x) {
    std::vector<int32_t> la = norm(a.lists[x]), lb = norm(b.lists[x]);
    out.lists[x].clear();
    op(la.begin(), la.end(), lb.begin(), lb.end(), std::back_inserter(out.lists[x]));
  }
  return out;
}

} // namespace

BlockSet unite(const BlockSet &a, const BlockSet &b) {
  return combine(a, b, [](auto... args) { return std::set_union(args...); });
}

BlockSet intersect(const BlockSet &a, const BlockSet &b) {
  return combine(a, b, [](auto... args) { return std::set_intersection(args...); });
}

BlockSet blockSetFromList(const Tensor &list, const std::string &name, int64_t B, int64_t H,
                          int64_t Sq, int64_t Skv, int64_t bq, int64_t bk) {
  if (bq <= 0 || bk <= 0 || B < 0 || H <= 0 || Sq < 0 || Skv < 0)
    throw Error(fmt::format("{}: invalid block-set geometry B={} H={} Sq={} Skv={} blocks {}x{}",
                            name, B, H, Sq, Skv, bq, bk));
  const int64_t nQB = cdiv(Sq, bq), nKB = cdiv(Skv, bk);
  const std::string want =
      fmt::format("[B, H, nQB, cap] = [{}, {}, {}, cap >= 1] (B: the batch of q; H: the {} heads "
                  "of the block set; nQB = cdiv(Sq, bq) = cdiv({}, {}) = {} query blocks)",
                  B, H, nQB, H, Sq, bq, nQB);
  const std::string have = fmt::format("[{}]", fmt::join(list.shape, ", "));
  const std::string fix = "; give one row of KV block indices per (batch, head, query block), "
                          "padded with -1";
  if (list.shape.size() != 4)
    throw Error(fmt::format("{} has shape {} (rank {}) but must be {}{}", name, have,
                            list.shape.size(), want, fix));
  const char *dimNames[] = {"batch", "heads", "query blocks", "cap"};
  const int64_t expect[] = {B, H, nQB};
  for (int d = 0; d < 3; ++d)
    if (list.dim(d) != expect[d])
      throw Error(fmt::format("{} has shape {} but must be {}: dimension {} ({}) is {}, expected "
                              "{}{}",
                              name, have, want, d, dimNames[d], list.dim(d), expect[d], fix));
  const int64_t cap = list.dim(3);
  if (cap < 1)
    throw Error(fmt::format("{} has shape {} but must be {}: dimension 3 (cap) is {}; give at "
                            "least one slot per row (a row of -1 selects no block)",
                            name, have, want, cap));
  if (static_cast<int64_t>(list.data.size()) != list.numel())
    throw Error(fmt::format("{} holds {} values but its shape {} needs {}", name, list.data.size(),
                            have, list.numel()));

  BlockSet out;
  out.B = B, out.H = H, out.nQB = nQB, out.nKB = nKB;
  out.bq = bq, out.bk = bk, out.Sq = Sq, out.Skv = Skv;
  out.lists.resize(static_cast<size_t>(B * H * nQB));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t I = 0; I < nQB; ++I) {
        std::vector<int32_t> &row = out.row(b, h, I);
        for (int64_t s = 0; s < cap; ++s) {
          const double x = list.at(b, h, I, s);
          if (!(x == std::floor(x)) || !(x >= -1) || !(x < static_cast<double>(nKB)))
            throw Error(fmt::format(
                "{} row (b={}, h={}, I={}) slot {} holds {}, {} (nKB = cdiv(Skv, bk) = "
                "cdiv({}, {}) = {} KV blocks; -1 marks an unused slot); list only blocks 0 to {} "
                "or pad with -1",
                name, b, h, I, s, x,
                x == std::floor(x) ? fmt::format("outside the valid range [-1, {}]", nKB - 1)
                                   : std::string("which is not an integer KV block index"),
                Skv, bk, nKB, nKB - 1));
          if (x >= 0)
            row.push_back(static_cast<int32_t>(x));
        }
        std::sort(row.begin(), row.end());
        row.erase(std::unique(row.begin(), row.end()), row.end());
      }
  return out;
}

} // namespace sattn::ref
