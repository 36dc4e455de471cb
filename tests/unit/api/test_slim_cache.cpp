//===- test_slim_cache.cpp - Program::slim / decode on the CPU device -----===//
//
// The slimmed-cache path must give what run() gives on the full cache (it
// decodes the same kept tokens), report honest byte counts, take appends
// up to its reserve, and reject every misuse with a sattn::Error.
//
//===----------------------------------------------------------------------===//
#include <catch2/catch.hpp>

#include "sattn/sattn.h"
#include "tests/unit/api/HostTensor.h"

#include <cmath>
#include <random>

using namespace sattn;
using Host = sattn::testing::HostTensor;

namespace {

SessionOptions cpu() {
  SessionOptions o;
  o.device = Device::Cpu;
  return o;
}

/// The decode pattern with any number of decode rows (it fixes Sd = 1).
Variant anyRows(const Variant &v, const std::string &one, const std::string &any) {
  std::string t = v.text();
  for (size_t at; (at = t.find(one)) != std::string::npos;)
    t.replace(at, one.size(), any);
  return Variant::fromText(t);
}

double maxDiff(const std::vector<float> &a, const std::vector<float> &b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i)
    m = std::max(m, double(std::fabs(a[i] - b[i])));
  return m;
}

} // namespace

TEST_CASE("slim() + decode() give run()'s result with a cache of the kept tokens", "[api][slim]") {
  Session s(cpu());
  patterns::Heads h{4, 2, 16, DType::BF16};
  patterns::SlimOptions o;
  o.tau = 0.6, o.recent = 8, o.sinks = 2, o.observe = 16;
  auto p = s.compile(
      anyRows(patterns::omnisparseDecode(h, o), "tensor<?x4x1x16xbf16>", "tensor<?x4x?x16xbf16>"));
  REQUIRE(p->decodeInputs() == std::vector<size_t>{3});
  std::mt19937 rng(11);
  const int64_t B = 2, T = 150;
  Host prompt({B, 4, 40, 16}, &rng, 0.3f), k({B, 2, T, 16}, &rng), v({B, 2, T, 16}, &rng);
  for (int64_t sd : {1, 3}) {
    Host q({B, 4, sd, 16}, &rng, 0.3f);
    Host o1({B, 4, sd, 16}, nullptr), l1({B, 4, sd}, nullptr);
    Host o2({B, 4, sd, 16}, nullptr), l2({B, 4, sd}, nullptr);
    SelectionReport rep =
        p->runSelection({prompt.view(), k.view(), v.view(), q.view()}, {o1.view(), l1.view()});
    std::shared_ptr<SlimCache> c = p->slim({prompt.view(), k.view(), v.view()});
    p->decode(*c, {q.view()}, {o2.view(), l2.view()});
    CHECK(maxDiff(o1.data, o2.data) < 1e-6);
    CHECK(maxDiff(l1.data, l2.data) < 1e-6);
    int64_t tokens = 0;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t hk = 0; hk < 2; ++hk) {
        CHECK(c->length(b, hk) == c->capacity(b, hk));
        CHECK(c->length(b, hk) >= o.recent + o.sinks);
        tokens += c->length(b, hk);
      }
    REQUIRE(rep.kvKept);
    CHECK(double(tokens) == Approx(*rep.kvKept * double(B * 2 * T)));
    CHECK(tokens < B * 2 * T); // tau 0.6 drops tokens
    CHECK(c->bytesBefore() == 2 * B * 2 * T * 16 * 2);
    CHECK(c->bytesAfter() == 2 * tokens * 16 * 2 + B * 2 * 12);
  }
}

TEST_CASE("a slimmed cache takes appends up to its reserve", "[api][slim]") {
  Session s(cpu());
  patterns::Heads h{2, 1, 8, DType::BF16};
  patterns::SlimOptions o;
  o.tau = 0.5, o.recent = 4, o.sinks = 1, o.observe = 8;
  auto p = s.compile(
      anyRows(patterns::omnisparseDecode(h, o), "tensor<?x2x1x8xbf16>", "tensor<?x2x?x8xbf16>"));
  std::mt19937 rng(3);
  Host prompt({1, 2, 12, 8}, &rng, 0.5f), k({1, 1, 60, 8}, &rng), v({1, 1, 60, 8}, &rng);
  auto c = p->slim({prompt.view(), k.view(), v.view()}, /*reserve=*/3);
  const int64_t kept = c->length(0, 0);
  CHECK(c->capacity(0, 0) == kept + 3);
  Host k2({1, 1, 2, 8}, &rng), v2({1, 1, 2, 8}, &rng);
  c->append(k2.view(), v2.view());
  CHECK(c->length(0, 0) == kept + 2);
  CHECK_THROWS_WITH(c->append(k2.view(), v2.view()),
                    Catch::Contains("does not fit") && Catch::Contains("larger reserve"));
  CHECK(c->length(0, 0) == kept + 2); // a refused append changes nothing

  // Two decode rows: they are the last two entries (the appended tokens),
  // causal among themselves (semantics §12).
  Host q({1, 2, 2, 8}, &rng), od({1, 2, 2, 8}, nullptr), ld({1, 2, 2}, nullptr);
  p->decode(*c, {q.view()}, {od.view(), ld.view()});
  for (float x : od.data)
    CHECK(std::isfinite(x));
  // Row 0 may not see the last appended token, row 1 sees it: appending a
  // different last token changes row 1 only.
  auto c2 = p->slim({prompt.view(), k.view(), v.view()}, 3);
  Host v3 = v2;
  for (int d = 0; d < 8; ++d)
    v3.data[size_t(8 + d)] += 5.f;
  c2->append(k2.view(), v3.view());
  Host od2({1, 2, 2, 8}, nullptr), ld2({1, 2, 2}, nullptr);
  p->decode(*c2, {q.view()}, {od2.view(), ld2.view()});
  for (int hq = 0; hq < 2; ++hq)
    for (int d = 0; d < 8; ++d) {
      size_t r0 = size_t((hq * 2 + 0) * 8 + d), r1 = size_t((hq * 2 + 1) * 8 + d);
      CHECK(od2.data[r0] == od.data[r0]);
      CHECK(od2.data[r1] != od.data[r1]);
    }
}

TEST_CASE("slim() and decode() reject misuse with a clear error", "[api][slim][errors]") {
  Session s(cpu());
  patterns::Heads h{4, 2, 16, DType::BF16};
  auto p = s.compile(patterns::omnisparseDecode(h));
  patterns::SlimOptions half;
  half.tau = 0.5;
  auto other = s.compile(patterns::omnisparseDecode(h, half));
  auto dense = s.compile(patterns::dense(h, true));
  std::mt19937 rng(2);
  Host prompt({1, 4, 70, 16}, &rng), k({1, 2, 70, 16}, &rng), v({1, 2, 70, 16}, &rng);
  Host q({1, 4, 1, 16}, &rng), o({1, 4, 1, 16}, nullptr), l({1, 4, 1}, nullptr);
  CHECK_THROWS_WITH(p->slim({prompt.view(), k.view()}),
                    Catch::Contains("slim() takes 3 inputs (prompt, k, v)"));
  CHECK_THROWS_WITH(p->slim({prompt.view(), k.view(), v.view()}, -1), Catch::Contains("negative"));
  CHECK_THROWS_WITH(dense->slim({q.view(), k.view(), v.view()}),
                    Catch::Contains("no sattn.decode_attention reading the tokens"));
  auto c = p->slim({prompt.view(), k.view(), v.view()});
  CHECK_THROWS_WITH(other->decode(*c, {q.view()}, {o.view(), l.view()}),
                    Catch::Contains("built by another program"));
  CHECK_THROWS_WITH(p->decode(*c, {q.view(), q.view()}, {o.view(), l.view()}),
                    Catch::Contains("decode() takes 1 inputs (q)"));
  CHECK_THROWS_WITH(p->decode(*c, {q.view()}, {o.view()}), Catch::Contains("returns 2 tensors"));
  CHECK_THROWS_WITH(p->decodeTimed(*c, {q.view()}, {o.view(), l.view()}),
                    Catch::Contains("needs a GPU program"));
  Host qb({2, 4, 1, 16}, &rng), ob({2, 4, 1, 16}, nullptr), lb({2, 4, 1}, nullptr);
  CHECK_THROWS_WITH(p->decode(*c, {qb.view()}, {ob.view(), lb.view()}),
                    Catch::Contains("slimmed cache holds batch 1"));
  Host kbad({1, 3, 1, 16}, &rng);
  CHECK_THROWS_WITH(c->append(kbad.view(), kbad.view()), Catch::Contains("[B, Hkv, t, D]"));
  CHECK_THROWS_WITH(c->length(1, 0), Catch::Contains("outside"));
  // The cache outlives its program and the inputs it was built from.
  p.reset();
  CHECK(c->length(0, 0) > 0);
}
