//===- Estimation.cpp - Pooling, scores, query and KV estimation ----------===//
//
// The cheap estimators that feed selection: token pooling (§3), pooled
// block scores (§4), OmniSparse query classification (§10) and decode-time
// KV slimming (§11). They all reduce to "softmax over what a row may see,
// then sum some of the probability mass", written here as plain loops.
//
//===----------------------------------------------------------------------===//

#include "runtime/reference/Reference.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace sattn::ref {

namespace {

double dot(const Tensor &a, int64_t a0, int64_t a1, int64_t a2, const Tensor &b, int64_t b0,
           int64_t b1, int64_t b2) {
  double s = 0.0;
  for (int64_t d = 0; d < a.dim(3); ++d)
    s += a.at(a0, a1, a2, d) * b.at(b0, b1, b2, d);
  return s;
}

/// §4c (Quest): the largest q · k over keys k with lo <= k <= hi elementwise.
double boundDot(const Tensor &q, int64_t b, int64_t h, int64_t r, const Tensor &lo,
                const Tensor &hi, int64_t hk, int64_t t) {
  double s = 0.0;
  for (int64_t d = 0; d < q.dim(3); ++d) {
    double x = q.at(b, h, r, d);
    s += std::max(x * lo.at(b, hk, t, d), x * hi.at(b, hk, t, d));
  }
  return s;
}

/// Descending score, ties to the lower index: the order §6 and §11 share.
void sortByScore(std::vector<int64_t> &idx, const std::vector<double> &score) {
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
    return score[static_cast<size_t>(a)] > score[static_cast<size_t>(b)];
  });
}

} // namespace

Tensor pool(const Tensor &x, int64_t group, PoolKind kind) {
  detail::checkTensor(x, "pool input", 4);
  if (group <= 0)
    throw Error(fmt::format("pool group size {} must be positive", group));
  int64_t B = x.dim(0), H = x.dim(1), S = x.dim(2), D = x.dim(3);
  int64_t n = cdiv(S, group);
  Tensor out({B, H, n, D});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t r = 0; r < n; ++r) {
        int64_t lo = r * group, hi = std::min(S, lo + group); // last may be partial
        for (int64_t d = 0; d < D; ++d) {
          double acc = x.at(b, h, lo, d);
          for (int64_t s = lo + 1; s < hi; ++s) {
            double e = x.at(b, h, s, d);
            if (kind == PoolKind::Mean)
              acc += e;
            else if (kind == PoolKind::Max)
              acc = std::max(acc, e);
            else
              acc = std::min(acc, e);
          }
          out.at(b, h, r, d) = kind == PoolKind::Mean ? acc / static_cast<double>(hi - lo) : acc;
        }
      }
  return out;
}

Scores blockScores(const Tensor &qp, const Tensor &kp, int64_t cq, int64_t ck, int64_t bq,
                   int64_t bk, int64_t Sq, int64_t Skv, bool causal, std::optional<double> scale,
                   const Tensor *kMax) {
  detail::checkQK(qp, kp, "pooled q", "pooled k");
  if (kMax) {
    detail::checkQK(qp, *kMax, "pooled q", "key-group maximum");
    if (kMax->dim(1) != kp.dim(1) || kMax->dim(2) != kp.dim(2))
      throw Error(fmt::format("bound scores: the key-group maximum is [{}, {}, {}, {}] but the "
                              "minimum is [{}, {}, {}, {}]",
                              kMax->dim(0), kMax->dim(1), kMax->dim(2), kMax->dim(3), kp.dim(0),
                              kp.dim(1), kp.dim(2), kp.dim(3)));
  }
  if (cq <= 0 || ck <= 0 || bq <= 0 || bk <= 0)
    throw Error(fmt::format("scores need positive granularities and block sizes, got "
                            "cq={} ck={} Bq={} Bk={}",
                            cq, ck, bq, bk));
  if (bq % cq != 0 || bk % ck != 0)
    throw Error(fmt::format("pooling granularities must divide the block sizes "
                            "(cq | Bq, ck | Bk), got cq={} Bq={} ck={} Bk={}",
                            cq, bq, ck, bk));
  if (Sq < 0 || Skv < 0)
    throw Error(fmt::format("Sq={} Skv={}: lengths must be >= 0", Sq, Skv));
  int64_t nR = cdiv(Sq, cq), nT = cdiv(Skv, ck);
  if (qp.dim(2) != nR || kp.dim(2) != nT)
    throw Error(fmt::format("pooled q has {} rows and pooled k {} groups, but Sq={} "
                            "with cq={} needs {} and Skv={} with ck={} needs {}",
                            qp.dim(2), kp.dim(2), Sq, cq, nR, Skv, ck, nT));
  double sc = detail::resolveScale(scale, qp.dim(3));
  Scores s;
  s.B = qp.dim(0);
  s.H = qp.dim(1);
  s.nQB = cdiv(Sq, bq);
  s.nKB = cdiv(Skv, bk);
  s.bq = bq;
  s.bk = bk;
  s.Sq = Sq;
  s.Skv = Skv;
  s.causal = causal;
  s.v.assign(static_cast<size_t>(s.B * s.H * s.nQB * s.nKB), 0.0);
  int64_t g = s.H / kp.dim(1);

  std::vector<int64_t> rowsIn(static_cast<size_t>(s.nQB), 0);
  for (int64_t r = 0; r < nR; ++r)
    ++rowsIn[static_cast<size_t>(r * cq / bq)];

  std::vector<double> p;
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h)
      for (int64_t r = 0; r < nR; ++r) {
        int64_t rp = std::min((r + 1) * cq - 1, Sq - 1) + Skv - Sq; // last query
        // Groups are a prefix: t is visible iff t*ck <= r'.
        int64_t visible = !causal ? nT : rp < 0 ? 0 : std::min(nT, rp / ck + 1);
        p.assign(static_cast<size_t>(visible), 0.0);
        for (int64_t t = 0; t < visible; ++t)
          p[static_cast<size_t>(t)] = sc * (kMax ? boundDot(qp, b, h, r, kp, *kMax, h / g, t)
                                                 : dot(qp, b, h, r, kp, b, h / g, t));
        detail::softmaxInPlace(p);
        int64_t I = r * cq / bq;
        for (int64_t t = 0; t < visible; ++t)
          s.at(b, h, I, t * ck / bk) += p[static_cast<size_t>(t)];
      }
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h)
      for (int64_t I = 0; I < s.nQB; ++I)
        for (int64_t J = 0; J < s.nKB; ++J)
          if (rowsIn[static_cast<size_t>(I)] > 0)
            s.at(b, h, I, J) /= static_cast<double>(rowsIn[static_cast<size_t>(I)]);
  return s;
}

Scores antidiagScores(const Tensor &q, const Tensor &k, int64_t stride, int64_t bq, int64_t bk,
                      bool causal, std::optional<double> scale) {
  detail::checkQK(q, k, "q", "k");
  if (stride <= 0 || bq <= 0 || bk <= 0 || bq % stride != 0 || bk % stride != 0)
    throw Error(fmt::format("antidiagonal scores need a positive stride dividing both block "
                            "sizes, got stride={} Bq={} Bk={}",
                            stride, bq, bk));
  const int64_t B = q.dim(0), H = q.dim(1), Sq = q.dim(2), Skv = k.dim(2), D = q.dim(3);
  const int64_t g = H / k.dim(1), nR = cdiv(Sq, stride), nC = cdiv(Skv, stride);
  // logit = (scale / stride) * sum_s q[r*S + S-1-s] . k[c*S + s]; missing rows are zero.
  const double sc = detail::resolveScale(scale, D) / static_cast<double>(stride);
  Scores s;
  s.B = B, s.H = H, s.nQB = cdiv(Sq, bq), s.nKB = cdiv(Skv, bk), s.bq = bq, s.bk = bk;
  s.Sq = Sq, s.Skv = Skv, s.causal = causal;
  s.v.assign(static_cast<size_t>(B * H * s.nQB * s.nKB), 0.0);
  std::vector<double> p;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t r = 0; r < nR; ++r) {
        // Column c is visible iff its first key is visible to the row's last query.
        int64_t last = std::min(r * stride + stride - 1, Sq - 1) + Skv - Sq;
        int64_t visible = !causal ? nC : last < 0 ? 0 : std::min(nC, last / stride + 1);
        p.assign(static_cast<size_t>(visible), 0.0);
        for (int64_t c = 0; c < visible; ++c) {
          double acc = 0.0;
          for (int64_t t = 0; t < stride; ++t) {
            int64_t i = r * stride + stride - 1 - t, j = c * stride + t;
            if (i < Sq && j < Skv)
              acc += dot(q, b, h, i, k, b, h / g, j);
          }
          p[static_cast<size_t>(c)] = sc * acc;
        }
        detail::softmaxInPlace(p);
        int64_t I = r * stride / bq;
        for (int64_t c = 0; c < visible; ++c)
          s.at(b, h, I, c * stride / bk) += p[static_cast<size_t>(c)];
      }
  return s;
}

Scores meanScores(const std::vector<const Scores *> &in, const std::vector<double> &w) {
  if (in.empty())
    throw Error("mean_scores needs at least one score grid");
  if (!w.empty() && w.size() != in.size())
    throw Error(fmt::format("mean_scores has {} weights for {} grids", w.size(), in.size()));
  const Scores &a = *in[0];
  double total = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    const Scores &x = *in[i];
    if (x.B != a.B || x.H != a.H || x.nQB != a.nQB || x.nKB != a.nKB || x.bq != a.bq ||
        x.bk != a.bk || x.Sq != a.Sq || x.Skv != a.Skv)
      throw Error(fmt::format("mean_scores: grid {} has shape [{}, {}, {}, {}] (blocks {}x{}), "
                              "grid 0 [{}, {}, {}, {}] (blocks {}x{}); they must match",
                              i, x.B, x.H, x.nQB, x.nKB, x.bq, x.bk, a.B, a.H, a.nQB, a.nKB, a.bq,
                              a.bk));
    if (x.causal != a.causal)
      throw Error("mean_scores: causal and non-causal grids cannot be mixed");
    total += w.empty() ? 1.0 : w[i];
  }
  Scores s = a;
  for (size_t e = 0; e < s.v.size(); ++e) {
    double acc = 0;
    for (size_t i = 0; i < in.size(); ++i)
      acc += (w.empty() ? 1.0 : w[i]) * in[i]->v[e];
    s.v[e] = acc / total;
  }
  return s;
}

QuerySet classifyQueries(const Tensor &q, const Tensor &k, const ClassifyParams &p) {
  detail::checkQK(q, k, "q", "k");
  if (p.keyGroup <= 0 || p.window < 0 || p.sinks < 0 || p.keepEvery < 0)
    throw Error(fmt::format("classify_queries needs key_group > 0 and window, sinks, "
                            "keep_every >= 0; got {}, {}, {}, {}",
                            p.keyGroup, p.window, p.sinks, p.keepEvery));
  if (!std::isfinite(p.theta))
    throw Error(fmt::format("classify_queries theta={} must be finite", p.theta));
  int64_t B = q.dim(0), Hq = q.dim(1), Sq = q.dim(2), Skv = k.dim(2);
  int64_t c = p.keyGroup, g = Hq / k.dim(1);
  double sc = detail::resolveScale(p.scale, q.dim(3));
  Tensor kp = pool(k, c, PoolKind::Mean);
  int64_t nT = kp.dim(2);

  QuerySet qs;
  qs.B = B;
  qs.H = Hq;
  qs.Sq = Sq;
  qs.active.resize(static_cast<size_t>(B * Hq));
  std::vector<double> prob;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h) {
      auto &act = qs.active[static_cast<size_t>(b * Hq + h)];
      int64_t lazySeen = 0;
      for (int64_t i = 0; i < Sq; ++i) {
        int64_t ip = i + Skv - Sq;
        int64_t visible = ip < 0 ? 0 : std::min(nT, ip / c + 1); // t*c <= i'
        prob.assign(static_cast<size_t>(visible), 0.0);
        for (int64_t t = 0; t < visible; ++t)
          prob[static_cast<size_t>(t)] = sc * dot(q, b, h, i, kp, b, h / g, t);
        detail::softmaxInPlace(prob);
        double mass = 0.0;
        for (int64_t t = 0; t < visible; ++t) {
          bool near = t * c < p.sinks || std::min((t + 1) * c, Skv) - 1 > ip - p.window;
          if (near)
            mass += prob[static_cast<size_t>(t)];
        }
        if (mass < p.theta) {
          act.push_back(static_cast<int32_t>(i));
          continue;
        }
        // Every r-th lazy row stays active so long lazy runs keep some signal.
        if (p.keepEvery > 0 && lazySeen % p.keepEvery == p.keepEvery - 1)
          act.push_back(static_cast<int32_t>(i));
        ++lazySeen;
      }
    }
  return qs;
}

namespace {
void checkSlimParams(const SlimParams &p) {
  if (p.observe < 0 || p.sinks < 0 || p.recent < 0)
    throw Error(fmt::format("kv_slim needs observe, sinks, recent >= 0; got {}, {}, {}", p.observe,
                            p.sinks, p.recent));
  if (!(p.tau >= 0.0 && p.tau <= 1.0))
    throw Error(fmt::format("kv_slim tau={} is out of range [0, 1]", p.tau));
}
} // namespace

Tensor kvSlimScores(const Tensor &q, const Tensor &k, const SlimParams &p) {
  detail::checkQK(q, k, "q", "k");
  checkSlimParams(p);
  int64_t B = q.dim(0), Hq = q.dim(1), Sq = q.dim(2), Hkv = k.dim(1), Skv = k.dim(2);
  int64_t g = Hq / Hkv;
  double sc = detail::resolveScale(p.scale, q.dim(3));
  int64_t firstObs = Sq - std::min(p.observe, Sq);
  Tensor score({B, Hkv, Skv});
  std::vector<double> prob;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t hk = 0; hk < Hkv; ++hk)
      for (int64_t h = hk * g; h < (hk + 1) * g; ++h)
        for (int64_t i = firstObs; i < Sq; ++i) {
          int64_t ip = i + Skv - Sq;
          if (ip < 0)
            continue; // sees no key: contributes no mass
          prob.assign(static_cast<size_t>(ip + 1), 0.0);
          for (int64_t j = 0; j <= ip; ++j)
            prob[static_cast<size_t>(j)] = sc * dot(q, b, h, i, k, b, hk, j);
          detail::softmaxInPlace(prob);
          for (int64_t j = 0; j <= ip; ++j)
            score.data[static_cast<size_t>((b * Hkv + hk) * Skv + j)] +=
                prob[static_cast<size_t>(j)];
        }
  return score;
}

TokenSet kvSlimSelect(const Tensor &score, const Segments *segments, const SlimParams &p) {
  checkSlimParams(p);
  if (score.shape.size() != 3)
    throw Error("kv_slim scores must be [B, Hkv, Skv]");
  int64_t B = score.dim(0), Hkv = score.dim(1), Skv = score.dim(2);
  if (segments && static_cast<int64_t>(segments->ranges.size()) != B)
    throw Error(fmt::format("segments list {} batches but q has B={}; give one "
                            "(possibly empty) range list per batch",
                            segments->ranges.size(), B));
  TokenSet ts;
  ts.B = B;
  ts.H = Hkv;
  ts.Skv = Skv;
  ts.kept.resize(static_cast<size_t>(B * Hkv));
  std::vector<char> inSeg(static_cast<size_t>(Skv));
  for (int64_t b = 0; b < B; ++b) {
    std::fill(inSeg.begin(), inSeg.end(), segments ? 0 : 1);
    if (segments)
      for (auto [lo, hi] : segments->ranges[static_cast<size_t>(b)]) {
        if (lo < 0 || lo > hi || hi > Skv)
          throw Error(fmt::format("segment [{}, {}) of batch {} is not a range inside "
                                  "[0, {})",
                                  lo, hi, b, Skv));
        for (int64_t t = lo; t < hi; ++t)
          inSeg[static_cast<size_t>(t)] = 1;
      }
    for (int64_t hk = 0; hk < Hkv; ++hk) {
      const double *sc = &score.data[static_cast<size_t>((b * Hkv + hk) * Skv)];
      std::vector<double> s(sc, sc + Skv);
      std::vector<char> keep(static_cast<size_t>(Skv), 0);
      std::vector<int64_t> unforced;
      double sum = 0.0;
      for (int64_t t = 0; t < Skv; ++t) {
        bool seg = inSeg[static_cast<size_t>(t)];
        if (!seg || t < p.sinks || t >= Skv - p.recent) {
          keep[static_cast<size_t>(t)] = 1;
          if (seg)
            sum += s[static_cast<size_t>(t)];
        } else {
          unforced.push_back(t);
        }
      }
      sortByScore(unforced, s);
      // The total is summed in the same order as the prefix so that tau = 1
      // reaches it exactly, without dragging in zero-mass tokens.
      double total = sum;
      for (int64_t t : unforced)
        total += s[static_cast<size_t>(t)];
      double target = p.tau * total;
      for (size_t n = 0; n < unforced.size() && sum < target; ++n) {
        sum += s[static_cast<size_t>(unforced[n])];
        keep[static_cast<size_t>(unforced[n])] = 1;
      }
      auto &out = ts.kept[static_cast<size_t>(b * Hkv + hk)];
      for (int64_t t = 0; t < Skv; ++t)
        if (keep[static_cast<size_t>(t)])
          out.push_back(static_cast<int32_t>(t));
    }
  }
  return ts;
}

TokenSet kvSlim(const Tensor &q, const Tensor &k, const Segments *segments, const SlimParams &p) {
  detail::checkQK(q, k, "q", "k");
  checkSlimParams(p);
  if (segments && static_cast<int64_t>(segments->ranges.size()) != q.dim(0))
    throw Error(fmt::format("segments list {} batches but q has B={}; give one "
                            "(possibly empty) range list per batch",
                            segments->ranges.size(), q.dim(0)));
  return kvSlimSelect(kvSlimScores(q, k, p), segments, p);
}

/// q [B, Hq, *, D] against k [B, Hkv, *, D]: the GQA layout of every op here.
void detail::checkQK(const Tensor &q, const Tensor &k, const char *qn, const char *kn) {
  detail::checkTensor(q, qn, 4);
  detail::checkTensor(k, kn, 4);
  if (q.dim(0) != k.dim(0))
    throw Error(fmt::format("{} has batch B={} but {} has B={}; they must match", qn, q.dim(0), kn,
                            k.dim(0)));
  if (q.dim(3) != k.dim(3))
    throw Error(fmt::format("{} has head dim D={} but {} has D={}; they must match", qn, q.dim(3),
                            kn, k.dim(3)));
  if (k.dim(1) <= 0 || q.dim(1) % k.dim(1) != 0)
    throw Error(fmt::format("{} has {} heads, which cannot be grouped over the {} "
                            "heads of {}; Hq % Hkv must be 0 with Hkv > 0",
                            qn, q.dim(1), k.dim(1), kn));
}

} // namespace sattn::ref
