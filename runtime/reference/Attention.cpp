//===- Attention.cpp - Masked attention and decode attention --------------===//
//
// §2 (sparse prefill attention with block sets, query sets and lazy rows)
// and §12 (decode attention over a contiguous or paged KV cache, optionally
// restricted to a token set). Each row first decides its key set A(i)
// explicitly, then runs one max-subtracted float64 softmax over it, so large
// logits never overflow and an empty A(i) gives O = 0, LSE = -inf.
//
//===----------------------------------------------------------------------===//

#include "runtime/reference/Reference.h"

#include <cmath>
#include <fmt/format.h>
#include <functional>
#include <limits>

namespace sattn::ref {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

const double *row4(const Tensor &t, int64_t a, int64_t b, int64_t c) {
  return t.data.data() + ((a * t.shape[1] + b) * t.shape[2] + c) * t.shape[3];
}

using RowPtr = std::function<const double *(int64_t j)>;

/// One softmax row over `keys`; out must hold D zeros. The caller handles
/// the empty case so that it never reaches log(0) - max(∅).
void softmaxRow(const double *q, int64_t D, double scale, const std::vector<int64_t> &keys,
                const RowPtr &key, const RowPtr &value, double *out, double &lse) {
  std::vector<double> logit(keys.size());
  double mx = kNegInf;
  for (size_t n = 0; n < keys.size(); ++n) {
    const double *kr = key(keys[n]);
    double dot = 0.0;
    for (int64_t d = 0; d < D; ++d)
      dot += q[d] * kr[d];
    logit[n] = scale * dot;
    // Finite inputs can still overflow the product; inf - inf would be NaN.
    if (!std::isfinite(logit[n]))
      throw Error(fmt::format("attention logit scale*q.k = {} overflows float64 (key "
                              "{}); rescale q/k or pass a smaller scale",
                              logit[n], keys[n]));
    mx = std::max(mx, logit[n]);
  }
  double sum = 0.0;
  for (size_t n = 0; n < keys.size(); ++n) {
    double w = std::exp(logit[n] - mx);
    sum += w;
    const double *vr = value(keys[n]);
    for (int64_t d = 0; d < D; ++d)
      out[d] += w * vr[d];
  }
  for (int64_t d = 0; d < D; ++d)
    out[d] /= sum; // sum >= 1: the max term contributes exp(0)
  lse = mx + std::log(sum);
}

} // namespace

namespace detail {

int64_t checkQKV(const Tensor &q, const Tensor &k, const Tensor &v) {
  checkTensor(q, "q", 4);
  checkTensor(k, "k", 4);
  checkTensor(v, "v", 4);
  if (k.shape != v.shape)
    throw Error(fmt::format("k has shape [{}] but v has [{}]; k and v must have the "
                            "same shape",
                            fmt::join(k.shape, ", "), fmt::join(v.shape, ", ")));
  if (q.dim(0) != k.dim(0))
    throw Error(
        fmt::format("q has batch B={} but k/v have B={}; they must match", q.dim(0), k.dim(0)));
  if (q.dim(3) <= 0)
    throw Error("q has head dim D=0; attention needs D >= 1");
  if (q.dim(3) != k.dim(3))
    throw Error(fmt::format("q has head dim D={} but k/v have D={}; q, k and v must "
                            "share the head dim",
                            q.dim(3), k.dim(3)));
  if (k.dim(1) <= 0 || q.dim(1) % k.dim(1) != 0)
    throw Error(fmt::format("Hq={} query heads cannot be grouped over Hkv={} KV "
                            "heads; Hq % Hkv must be 0 with Hkv > 0",
                            q.dim(1), k.dim(1)));
  return q.dim(3);
}

void checkBlockSet(const BlockSet &bs) {
  if (bs.bq <= 0 || bs.bk <= 0 || bs.B < 0 || bs.H < 0 || bs.Sq < 0 || bs.Skv < 0)
    throw Error(fmt::format("block set has invalid geometry B={} H={} Sq={} Skv={} "
                            "blocks {}x{}; block sizes must be positive and the rest >= 0",
                            bs.B, bs.H, bs.Sq, bs.Skv, bs.bq, bs.bk));
  if (bs.nQB != cdiv(bs.Sq, bs.bq) || bs.nKB != cdiv(bs.Skv, bs.bk))
    throw Error(fmt::format("block set has {}x{} blocks but Sq={}, Skv={} with "
                            "blocks {}x{} need {}x{}",
                            bs.nQB, bs.nKB, bs.Sq, bs.Skv, bs.bq, bs.bk, cdiv(bs.Sq, bs.bq),
                            cdiv(bs.Skv, bs.bk)));
  if (static_cast<int64_t>(bs.lists.size()) != bs.B * bs.H * bs.nQB)
    throw Error(fmt::format("block set holds {} lists but B*H*nQB = {}", bs.lists.size(),
                            bs.B * bs.H * bs.nQB));
  for (int64_t b = 0; b < bs.B; ++b)
    for (int64_t h = 0; h < bs.H; ++h)
      for (int64_t I = 0; I < bs.nQB; ++I)
        for (int32_t J : bs.row(b, h, I))
          if (J < 0 || J >= bs.nKB)
            throw Error(fmt::format("block set row (b={}, h={}, I={}) names KV block {} outside "
                                    "[0, {})",
                                    b, h, I, J, bs.nKB));
}

KeySets::KeySets(int64_t B_, int64_t Hq_, int64_t Hkv_, int64_t Sq_, int64_t Skv_,
                 const BlockSet *blocks_, const QuerySet *queries, const AttentionParams &p)
    : B(B_), Hq(Hq_), Hkv(Hkv_), Sq(Sq_), Skv(Skv_), blocks(blocks_), params(p) {
  checkMask(p.mask);
  if (p.lazyWindow < 0 || p.lazySinks < 0)
    throw Error(
        fmt::format("lazy_window={} lazy_sinks={}: both must be >= 0", p.lazyWindow, p.lazySinks));
  if (blocks) {
    const BlockSet &bs = *blocks;
    checkBlockSet(bs);
    if (bs.B != B || bs.Sq != Sq || bs.Skv != Skv)
      throw Error(
          fmt::format("block set was built for B={} Sq={} Skv={} but the attention has B={} "
                      "Sq={} Skv={}; rebuild the block set for these shapes",
                      bs.B, bs.Sq, bs.Skv, B, Sq, Skv));
    if (bs.H != Hq && bs.H != Hkv)
      throw Error(fmt::format("block set has {} heads; it must be per head (Hq={}) or "
                              "per KV group (Hkv={})",
                              bs.H, Hq, Hkv));
  }
  if (queries) {
    const QuerySet &qs = *queries;
    if (qs.B != B || qs.H != Hq || qs.Sq != Sq)
      throw Error(fmt::format("query set was built for B={} H={} Sq={} but the "
                              "attention has B={} Hq={} Sq={}",
                              qs.B, qs.H, qs.Sq, B, Hq, Sq));
    if (static_cast<int64_t>(qs.active.size()) != B * Hq)
      throw Error(
          fmt::format("query set holds {} row lists but B*Hq = {}", qs.active.size(), B * Hq));
    active.assign(static_cast<size_t>(B * Hq * Sq), 0);
    for (int64_t bh = 0; bh < B * Hq; ++bh)
      for (int32_t i : qs.active[static_cast<size_t>(bh)]) {
        if (i < 0 || i >= Sq)
          throw Error(fmt::format("query set names row {} outside [0, {})", i, Sq));
        active[static_cast<size_t>(bh * Sq + i)] = 1;
      }
  }
  if (p.vslash)
    checkVSlash(*p.vslash, B, Hq, Sq, Skv, blocks, queries, p.mask);
}

void checkVSlash(const VSlashSet &vs, int64_t B, int64_t Hq, int64_t Sq, int64_t Skv,
                 const BlockSet *blocks, const QuerySet *queries, const Mask &mask) {
  if (vs.B != B || vs.H != Hq || vs.Sq != Sq || vs.Skv != Skv)
    throw Error(fmt::format("vertical-slash set was built for B={} H={} Sq={} Skv={} but the "
                            "attention has B={} Hq={} Sq={} Skv={}; rebuild it for these shapes",
                            vs.B, vs.H, vs.Sq, vs.Skv, B, Hq, Sq, Skv));
  if (vs.bq <= 0 || static_cast<int64_t>(vs.columns.size()) != B * Hq ||
      vs.intervals.size() != vs.columns.size())
    throw Error("vertical-slash set is malformed (block size or list count)");
  if (!mask.causal || mask.window != 0 || mask.sinks != 0 || blocks || queries)
    throw Error("a vertical-slash set needs a causal attention without window, sinks, block set "
                "or query set");
}

void KeySets::row(int64_t b, int64_t h, int64_t i, std::vector<char> &keys) const {
  keys.assign(static_cast<size_t>(Skv), 0);
  int64_t ip = i + Skv - Sq;
  if (!active.empty() && !active[static_cast<size_t>((b * Hq + h) * Sq + i)]) {
    if (params.lazy == LazyPolicy::Zero)
      return;
    for (int64_t j = 0; j < Skv && j <= ip; ++j)
      keys[static_cast<size_t>(j)] = j > ip - params.lazyWindow || j < params.lazySinks;
    return;
  }
  if (const VSlashSet *vs = params.vslash) {
    // §12b: the bands through the row's query block, and the columns.
    const int64_t e = diagonalKey(i / vs->bq, vs->bq, Sq, Skv) + 1;
    const size_t bh = static_cast<size_t>(b * Hq + h);
    for (auto [lo, hi] : vs->intervals[bh])
      for (int64_t j = std::max<int64_t>(0, e - hi); j < e - lo; ++j)
        if (j <= ip && j < Skv)
          keys[static_cast<size_t>(j)] = 1;
    for (int32_t j : vs->columns[bh])
      if (j <= ip && j < Skv)
        keys[static_cast<size_t>(j)] = 1;
    return;
  }
  for (int64_t j = 0; j < Skv; ++j)
    keys[static_cast<size_t>(j)] = allowed(params.mask, i, j, Sq, Skv);
  if (!blocks)
    return;
  int64_t hb = blocks->H == Hq ? h : h / (Hq / Hkv);
  std::vector<char> inRow(static_cast<size_t>(blocks->nKB), 0);
  for (int32_t J : blocks->row(b, hb, i / blocks->bq))
    inRow[static_cast<size_t>(J)] = 1;
  for (int64_t j = 0; j < Skv; ++j)
    if (!inRow[static_cast<size_t>(j / blocks->bk)])
      keys[static_cast<size_t>(j)] = 0;
}

void KeySets::keyList(int64_t b, int64_t h, int64_t i, std::vector<char> &keys,
                      std::vector<int64_t> &list) const {
  row(b, h, i, keys);
  list.clear();
  for (int64_t j = 0; j < Skv; ++j)
    if (keys[static_cast<size_t>(j)])
      list.push_back(j);
}

} // namespace detail

AttentionResult attention(const Tensor &q, const Tensor &k, const Tensor &v, const BlockSet *blocks,
                          const QuerySet *queries, const AttentionParams &p) {
  int64_t D = detail::checkQKV(q, k, v);
  int64_t B = q.dim(0), Hq = q.dim(1), Sq = q.dim(2), Hkv = k.dim(1), Skv = k.dim(2);
  double scale = detail::resolveScale(p.scale, D);
  detail::KeySets sets(B, Hq, Hkv, Sq, Skv, blocks, queries, p);
  int64_t g = Hq / Hkv;

  AttentionResult r{Tensor({B, Hq, Sq, D}), Tensor({B, Hq, Sq}, kNegInf)};
  std::vector<char> keys;
  std::vector<int64_t> list;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h)
      for (int64_t i = 0; i < Sq; ++i) {
        sets.keyList(b, h, i, keys, list);
        if (list.empty())
          continue;
        int64_t hk = h / g;
        softmaxRow(
            row4(q, b, h, i), D, scale, list, [&](int64_t j) { return row4(k, b, hk, j); },
            [&](int64_t j) { return row4(v, b, hk, j); }, &r.out.at(b, h, i, 0),
            r.lse.at3(b, h, i));
      }
  return r;
}

namespace {

/// §12 for both cache layouts: `locate(b, hk, t, isValue)` finds token t of
/// batch b and `lens[b]` is that batch's cache length.
AttentionResult
decodeImpl(const Tensor &q, int64_t Hkv, const std::vector<int64_t> &lens, const TokenSet *tokens,
           double scale,
           const std::function<const double *(int64_t, int64_t, int64_t, bool)> &locate) {
  int64_t B = q.dim(0), Hq = q.dim(1), Sd = q.dim(2), D = q.dim(3);
  int64_t g = Hq / Hkv;
  std::vector<std::vector<char>> kept; // [b * Hkv + hk][t]
  if (tokens) {
    if (tokens->B != B || tokens->H != Hkv || static_cast<int64_t>(tokens->kept.size()) != B * Hkv)
      throw Error(fmt::format("token set has B={} H={} ({} lists) but the cache has "
                              "B={} Hkv={}; build it per (batch, KV head)",
                              tokens->B, tokens->H, tokens->kept.size(), B, Hkv));
    kept.resize(static_cast<size_t>(B * Hkv));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t hk = 0; hk < Hkv; ++hk) {
        auto &m = kept[static_cast<size_t>(b * Hkv + hk)];
        m.assign(static_cast<size_t>(lens[static_cast<size_t>(b)]), 0);
        for (int32_t t : tokens->kept[static_cast<size_t>(b * Hkv + hk)]) {
          if (t < 0 || t >= lens[static_cast<size_t>(b)])
            throw Error(fmt::format("token set keeps token {} of batch {} but that "
                                    "cache holds {} tokens",
                                    t, b, lens[static_cast<size_t>(b)]));
          m[static_cast<size_t>(t)] = 1;
        }
      }
  }
  AttentionResult r{Tensor({B, Hq, Sd, D}), Tensor({B, Hq, Sd}, kNegInf)};
  std::vector<int64_t> list;
  for (int64_t b = 0; b < B; ++b) {
    int64_t Skv = lens[static_cast<size_t>(b)];
    for (int64_t h = 0; h < Hq; ++h) {
      int64_t hk = h / g;
      for (int64_t i = 0; i < Sd; ++i) {
        int64_t ip = i + Skv - Sd;
        list.clear();
        for (int64_t j = 0; j < Skv && j <= ip; ++j)
          if (!tokens || kept[static_cast<size_t>(b * Hkv + hk)][static_cast<size_t>(j)])
            list.push_back(j);
        if (list.empty())
          continue;
        softmaxRow(
            row4(q, b, h, i), D, scale, list, [&](int64_t j) { return locate(b, hk, j, false); },
            [&](int64_t j) { return locate(b, hk, j, true); }, &r.out.at(b, h, i, 0),
            r.lse.at3(b, h, i));
      }
    }
  }
  return r;
}

/// A value of an int32 operand stored as float64; must be integral.
int64_t integral(double x, const char *what, int64_t index) {
  if (x != std::floor(x) || std::abs(x) > 2147483647.0)
    throw Error(fmt::format("{}[{}] = {} is not an int32 value", what, index, x));
  return static_cast<int64_t>(x);
}

} // namespace

AttentionResult decodeAttention(const Tensor &q, const Tensor &k, const Tensor &v,
                                const TokenSet *tokens, std::optional<double> scale) {
  int64_t D = detail::checkQKV(q, k, v);
  int64_t Hkv = k.dim(1), Skv = k.dim(2);
  if (tokens && tokens->Skv != Skv)
    throw Error(fmt::format("token set was built for Skv={} but the cache holds {} "
                            "tokens; rebuild it for this cache",
                            tokens->Skv, Skv));
  std::vector<int64_t> lens(static_cast<size_t>(q.dim(0)), Skv);
  return decodeImpl(
      q, Hkv, lens, tokens, detail::resolveScale(scale, D),
      [&](int64_t b, int64_t hk, int64_t t, bool isV) { return row4(isV ? v : k, b, hk, t); });
}

AttentionResult decodeAttentionPaged(const Tensor &q, const PagedCache &cache,
                                     const TokenSet *tokens, std::optional<double> scale) {
  if (!cache.k || !cache.v || !cache.pageTable || !cache.seqLens)
    throw Error("paged cache is missing k, v, page_table or seq_lens; all four are "
                "required");
  const Tensor &k = *cache.k, &v = *cache.v;
  detail::checkTensor(q, "q", 4);
  // Pages no batch uses may hold garbage; only the slots read are checked.
  detail::checkTensor(k, "paged k", 4, /*finite=*/false);
  detail::checkTensor(v, "paged v", 4, /*finite=*/false);
  detail::checkTensor(*cache.pageTable, "page_table", 2);
  detail::checkTensor(*cache.seqLens, "seq_lens", 1);
  if (k.shape != v.shape)
    throw Error(fmt::format("paged k has shape [{}] but v has [{}]; they must match",
                            fmt::join(k.shape, ", "), fmt::join(v.shape, ", ")));
  int64_t B = q.dim(0), P = k.dim(0), Hkv = k.dim(1), page = k.dim(2), D = k.dim(3);
  if (q.dim(3) != D)
    throw Error(fmt::format("q has head dim D={} but the paged cache has D={}; they "
                            "must match",
                            q.dim(3), D));
  if (D <= 0)
    throw Error("the paged cache has head dim D=0; attention needs D >= 1");
  if (Hkv <= 0 || q.dim(1) % Hkv != 0)
    throw Error(fmt::format("Hq={} query heads cannot be grouped over Hkv={} KV "
                            "heads; Hq % Hkv must be 0 with Hkv > 0",
                            q.dim(1), Hkv));
  if (page <= 0)
    throw Error("paged cache has page size 0; pages must hold at least one token");
  const Tensor &pt = *cache.pageTable, &sl = *cache.seqLens;
  if (pt.dim(0) != B || sl.dim(0) != B)
    throw Error(fmt::format("page_table has {} rows and seq_lens {} entries but q has "
                            "B={}; both need one per batch",
                            pt.dim(0), sl.dim(0), B));
  int64_t maxP = pt.dim(1);
  std::vector<int64_t> lens(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    int64_t L = integral(sl.data[static_cast<size_t>(b)], "seq_lens", b);
    if (L < 0 || L > maxP * page)
      throw Error(fmt::format("seq_lens[{}] = {} is outside [0, {}] (maxP={} pages of "
                              "{} tokens)",
                              b, L, maxP * page, maxP, page));
    for (int64_t pi = 0; pi < cdiv(L, page); ++pi) {
      int64_t id =
          integral(pt.data[static_cast<size_t>(b * maxP + pi)], "page_table", b * maxP + pi);
      if (id < 0 || id >= P)
        throw Error(fmt::format("page_table[{}, {}] = {} names no page of the {} in "
                                "the cache",
                                b, pi, id, P));
    }
    lens[static_cast<size_t>(b)] = L;
    for (int64_t t = 0; t < L; ++t) {
      auto id = static_cast<int64_t>(pt.data[static_cast<size_t>(b * maxP + t / page)]);
      for (const Tensor *x : {&k, &v})
        for (int64_t hk = 0; hk < Hkv; ++hk)
          for (int64_t d = 0; d < D; ++d)
            if (!std::isfinite(x->at(id, hk, t % page, d)))
              throw Error(fmt::format("paged {} holds a non-finite value for token {} of batch "
                                      "{} (page {}); the reference only accepts finite inputs",
                                      x == &k ? "k" : "v", t, b, id));
    }
  }
  return decodeImpl(q, Hkv, lens, tokens, detail::resolveScale(scale, D),
                    [&](int64_t b, int64_t hk, int64_t t, bool isV) {
                      auto id =
                          static_cast<int64_t>(pt.data[static_cast<size_t>(b * maxP + t / page)]);
                      return row4(isV ? v : k, id, hk, t % page);
                    });
}

} // namespace sattn::ref
