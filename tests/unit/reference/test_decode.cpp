//===- test_decode.cpp - §12 decode attention, contiguous and paged -------===//
//
// Decode attention against a naive softmax with bottom-right causal
// alignment and token-set masking, and the paged layout against the
// contiguous one by scattering a contiguous cache into shuffled pages.
//
//===----------------------------------------------------------------------===//

#include "Brute.h"

using namespace brute;
using Catch::Matchers::Contains;

namespace {

TokenSet randomTokens(Rng &r, int64_t B, int64_t Hkv, int64_t Skv, double p) {
  TokenSet ts;
  ts.B = B;
  ts.H = Hkv;
  ts.Skv = Skv;
  ts.kept.resize(static_cast<size_t>(B * Hkv));
  for (auto &l : ts.kept)
    for (int64_t t = 0; t < Skv; ++t)
      if (r.coin(p))
        l.push_back(static_cast<int32_t>(t));
  return ts;
}

/// Rows [b] of a rank-4 tensor, truncated to the first `len` entries of dim 2.
Tensor sliceBatch(const Tensor &x, int64_t b, int64_t len) {
  Tensor out({1, x.shape[1], len, x.shape[3]});
  for (int64_t h = 0; h < x.shape[1]; ++h)
    for (int64_t s = 0; s < len; ++s)
      for (int64_t d = 0; d < x.shape[3]; ++d)
        out.at(0, h, s, d) = x.at(b, h, s, d);
  return out;
}

} // namespace

TEST_CASE("decode attention matches a naive causal softmax", "[decode]") {
  Rng r(0xDEC0001);
  struct Cfg {
    int64_t B, Hq, Hkv, Sd, Skv;
  };
  for (Cfg c : {Cfg{2, 4, 2, 3, 57}, Cfg{3, 4, 1, 1, 130}, Cfg{1, 2, 2, 5, 2}, Cfg{2, 2, 1, 4, 0}})
    for (bool withTokens : {false, true}) {
      INFO("Sd=" << c.Sd << " Skv=" << c.Skv << " Hkv=" << c.Hkv << " tokens=" << withTokens);
      Tensor q = randn({c.B, c.Hq, c.Sd, 8}, r), k = randn({c.B, c.Hkv, c.Skv, 8}, r),
             v = randn({c.B, c.Hkv, c.Skv, 8}, r);
      TokenSet ts = randomTokens(r, c.B, c.Hkv, c.Skv, 0.5);
      AttentionResult got = decodeAttention(q, k, v, withTokens ? &ts : nullptr, std::nullopt);
      int64_t g = c.Hq / c.Hkv;
      AttentionResult want = naiveAttention(
          q, k, v,
          [&](int64_t b, int64_t h, int64_t i, int64_t j) {
            bool ok = j <= i + c.Skv - c.Sd;
            return ok &&
                   (!withTokens || inList(ts.kept[static_cast<size_t>(b * c.Hkv + h / g)], j));
          },
          1.0 / std::sqrt(8.0));
      requireClose(got.out, want.out);
      requireClose(got.lse, want.lse);
      requireNoNaN(got.out);
    }
}

TEST_CASE("decode with Sd > Skv leaves the early rows empty", "[decode]") {
  Rng r(0xDEC0002);
  Tensor q = randn({1, 2, 5, 8}, r), k = randn({1, 1, 2, 8}, r), v = randn({1, 1, 2, 8}, r);
  AttentionResult got = decodeAttention(q, k, v, nullptr, std::nullopt);
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t i = 0; i < 5; ++i) {
      bool empty = i + 2 - 5 < 0; // rows 0..2
      REQUIRE((got.lse.at3(0, h, i) == -std::numeric_limits<double>::infinity()) == empty);
      for (int64_t d = 0; d < 8 && empty; ++d)
        REQUIRE(got.out.at(0, h, i, d) == 0.0);
    }
}

TEST_CASE("paged decode equals contiguous decode on shuffled pages", "[decode][paged]") {
  Rng r(0xDEC0003);
  const int64_t B = 4, Hq = 4, Hkv = 2, Sd = 3, D = 8, page = 8, maxLen = 61;
  const int64_t lens[B] = {61, 0, 33, 16}; // includes an empty cache and a full page
  Tensor q = randn({B, Hq, Sd, D}, r), k = randn({B, Hkv, maxLen, D}, r),
         v = randn({B, Hkv, maxLen, D}, r);
  int64_t maxP = ceilDiv(maxLen, page), used = 0;
  for (int64_t L : lens)
    used += ceilDiv(L, page);
  const int64_t P = used + 3; // spare pages hold garbage that must never be read
  std::vector<int64_t> ids(static_cast<size_t>(P));
  for (int64_t x = 0; x < P; ++x)
    ids[static_cast<size_t>(x)] = x;
  std::shuffle(ids.begin(), ids.end(), r.gen);
  // Spare pages and unused slots hold NaN: read, they would poison the output.
  Tensor pk({P, Hkv, page, D}, std::nan("")), pv({P, Hkv, page, D}, std::nan(""));
  Tensor table({B, maxP}, -1.0), seqLens({B});
  size_t next = 0;
  for (int64_t b = 0; b < B; ++b) {
    seqLens.data[static_cast<size_t>(b)] = static_cast<double>(lens[b]);
    for (int64_t pi = 0; pi < ceilDiv(lens[b], page); ++pi) {
      int64_t id = ids[next++];
      table.data[static_cast<size_t>(b * maxP + pi)] = static_cast<double>(id);
      for (int64_t h = 0; h < Hkv; ++h)
        for (int64_t o = 0; o < page && pi * page + o < lens[b]; ++o)
          for (int64_t d = 0; d < D; ++d) {
            pk.at(id, h, o, d) = k.at(b, h, pi * page + o, d);
            pv.at(id, h, o, d) = v.at(b, h, pi * page + o, d);
          }
    }
  }
  PagedCache cache{&pk, &pv, &table, &seqLens};
  TokenSet ts = randomTokens(r, B, Hkv, maxLen, 0.6);
  for (auto &l : ts.kept) // keep only tokens each batch's cache holds
    l.erase(std::remove_if(l.begin(), l.end(),
                           [&](int32_t t) { return t >= lens[(&l - ts.kept.data()) / Hkv]; }),
            l.end());
  for (bool withTokens : {false, true}) {
    AttentionResult paged =
        decodeAttentionPaged(q, cache, withTokens ? &ts : nullptr, std::nullopt);
    requireNoNaN(paged.out);
    for (int64_t b = 0; b < B; ++b) {
      INFO("batch " << b << " len " << lens[b] << " tokens " << withTokens);
      TokenSet one;
      one.B = 1;
      one.H = Hkv;
      one.Skv = lens[b];
      for (int64_t h = 0; h < Hkv; ++h)
        one.kept.push_back(ts.kept[static_cast<size_t>(b * Hkv + h)]);
      AttentionResult contiguous =
          decodeAttention(sliceBatch(q, b, Sd), sliceBatch(k, b, lens[b]),
                          sliceBatch(v, b, lens[b]), withTokens ? &one : nullptr, std::nullopt);
      Tensor pagedOut = sliceBatch(paged.out, b, Sd);
      requireClose(pagedOut, contiguous.out);
      for (int64_t h = 0; h < Hq; ++h)
        for (int64_t i = 0; i < Sd; ++i)
          REQUIRE(close(paged.lse.at3(b, h, i), contiguous.lse.at3(0, h, i)));
    }
  }
}

TEST_CASE("paged decode rejects inconsistent caches", "[decode][errors]") {
  Rng r(0xDEC0004);
  Tensor q = randn({1, 2, 1, 8}, r), pk = randn({3, 1, 4, 8}, r), pv = randn({3, 1, 4, 8}, r);
  Tensor table({1, 2}), lens({1}, 7.0);
  table.data = {2.0, 0.0};
  PagedCache ok{&pk, &pv, &table, &lens};
  REQUIRE_NOTHROW(decodeAttentionPaged(q, ok, nullptr, std::nullopt));
  Tensor badTable = table;
  badTable.data[1] = 3.0;
  REQUIRE_THROWS_WITH(decodeAttentionPaged(q, {&pk, &pv, &badTable, &lens}, nullptr, std::nullopt),
                      Contains("page_table[0, 1] = 3"));
  Tensor tooLong({1}, 9.0), fractional({1}, 2.5);
  REQUIRE_THROWS_WITH(decodeAttentionPaged(q, {&pk, &pv, &table, &tooLong}, nullptr, std::nullopt),
                      Contains("seq_lens[0] = 9"));
  REQUIRE_THROWS_WITH(
      decodeAttentionPaged(q, {&pk, &pv, &table, &fractional}, nullptr, std::nullopt),
      Contains("not an int32"));
  REQUIRE_THROWS_WITH(decodeAttentionPaged(q, {&pk, &pv, nullptr, &lens}, nullptr, std::nullopt),
                      Contains("missing"));
  TokenSet beyond{1, 1, 8, {{0, 7}}};
  REQUIRE_THROWS_WITH(decodeAttentionPaged(q, ok, &beyond, std::nullopt), Contains("token 7"));
  Tensor nanSlot = pk;
  nanSlot.at(2, 0, 3, 5) = std::nan(""); // token 3 of batch 0 lives in page 2
  REQUIRE_THROWS_WITH(
      decodeAttentionPaged(q, {&nanSlot, &pv, &table, &lens}, nullptr, std::nullopt),
      Contains("token 3 of batch 0"));
  nanSlot = pk;
  nanSlot.at(1, 0, 0, 0) = std::nan(""); // page 1 is unused
  REQUIRE_NOTHROW(decodeAttentionPaged(q, {&nanSlot, &pv, &table, &lens}, nullptr, std::nullopt));
  TokenSet wrongLen{1, 1, 9, {{0}}};
  Tensor k = randn({1, 1, 7, 8}, r), v = randn({1, 1, 7, 8}, r);
  REQUIRE_THROWS_WITH(decodeAttention(q, k, v, &wrongLen, std::nullopt), Contains("Skv=9"));
}
