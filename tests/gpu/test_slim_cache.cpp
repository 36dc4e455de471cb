//===- test_slim_cache.cpp - slimmed KV caches on the GPU (public API) ----===//
//
// Program::slim compacts the kept K/V per (batch, KV head) into its own
// memory and Program::decode reads it: the decode must match run() on the
// full cache (the same kept tokens through the token list), appends must
// land after the kept rows, and the same steps on the CPU reference must
// agree where the selection cannot flip (tau = 0 keeps the forced tokens).
// Outputs are poisoned (NaN) before every run. (main() in test_gpu.cpp
// skips the binary without a GPU.)
//
//===----------------------------------------------------------------------===//
#include <catch2/catch.hpp>

#include "sattn/sattn.h"
#include "tests/gpu/GpuHarness.h"

#include "runtime/gpu/DeviceBuffer.h"
#include "runtime/io/Dtype.h"

#include <cmath>
#include <random>

using namespace sattn;

namespace {

std::mt19937 rng(20261204);

/// A bf16 tensor on the GPU with its float values on the host.
struct Dev {
  std::vector<int64_t> shape;
  std::vector<float> host;
  std::unique_ptr<gpu::DeviceBuffer> buf;
  Dev(std::vector<int64_t> s, double scale, double shift, bool poison = false) : shape(s) {
    size_t n = 1;
    for (int64_t x : s)
      n *= size_t(x);
    std::normal_distribution<double> n01;
    host.resize(n);
    std::vector<uint16_t> bits(n);
    for (size_t i = 0; i < n; ++i) {
      bits[i] = poison ? 0x7fc0 : io::floatToBf16Bits(float(scale * n01(rng) + shift));
      host[i] = io::bf16BitsToFloat(bits[i]);
    }
    buf = std::make_unique<gpu::DeviceBuffer>(n * 2);
    gpu::Driver &d = gpu::Driver::get();
    d.check(d.cuMemcpyHtoDAsync_(buf->ptr, bits.data(), n * 2, nullptr), "upload");
    d.check(d.cuStreamSynchronize_(nullptr), "upload");
  }
  TensorView view() {
    return {reinterpret_cast<void *>(buf->ptr), DType::BF16, Device::Gpu, shape, {}};
  }
  TensorView hostView() { return {host.data(), DType::F32, Device::Cpu, shape, {}}; }
  std::vector<float> download() const {
    std::vector<uint16_t> bits(host.size());
    gpu::Driver &d = gpu::Driver::get();
    d.check(d.cuStreamSynchronize_(nullptr), "sync");
    d.check(d.cuMemcpyDtoHAsync_(bits.data(), buf->ptr, bits.size() * 2, nullptr), "download");
    d.check(d.cuStreamSynchronize_(nullptr), "download");
    std::vector<float> out(bits.size());
    for (size_t i = 0; i < bits.size(); ++i)
      out[i] = io::bf16BitsToFloat(bits[i]);
    return out;
  }
};

/// An f32 LSE buffer on the GPU, poisoned.
struct DevF32 {
  std::vector<int64_t> shape;
  std::unique_ptr<gpu::DeviceBuffer> buf;
  size_t n = 1;
  explicit DevF32(std::vector<int64_t> s) : shape(s) {
    for (int64_t x : s)
      n *= size_t(x);
    buf = std::make_unique<gpu::DeviceBuffer>(n * 4);
    std::vector<float> nan(n, std::nanf(""));
    gpu::Driver &d = gpu::Driver::get();
    d.check(d.cuMemcpyHtoDAsync_(buf->ptr, nan.data(), n * 4, nullptr), "poison");
  }
  TensorView view() {
    return {reinterpret_cast<void *>(buf->ptr), DType::F32, Device::Gpu, shape, {}};
  }
  std::vector<float> download() const {
    std::vector<float> out(n);
    gpu::Driver &d = gpu::Driver::get();
    d.check(d.cuStreamSynchronize_(nullptr), "sync");
    d.check(d.cuMemcpyDtoHAsync_(out.data(), buf->ptr, n * 4, nullptr), "download");
    d.check(d.cuStreamSynchronize_(nullptr), "download");
    return out;
  }
};

double relErr(const std::vector<float> &a, const std::vector<float> &b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]))
      return INFINITY;
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

double maxAbs(const std::vector<float> &a, const std::vector<float> &b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i)
    m = std::isfinite(a[i]) || std::isinf(b[i]) ? std::max(m, double(std::fabs(a[i] - b[i])))
                                                : INFINITY;
  return m;
}

/// The decode pattern with any number of decode rows (it fixes Sd = 1).
Variant decodeVariant(const patterns::Heads &h, const patterns::SlimOptions &o) {
  std::string t = patterns::omnisparseDecode(h, o).text();
  std::string d = std::to_string(h.headDim), hq = std::to_string(h.heads);
  std::string one = "tensor<?x" + hq + "x1x" + d + "xbf16>",
              any = "tensor<?x" + hq + "x?x" + d + "xbf16>";
  for (size_t at; (at = t.find(one)) != std::string::npos;)
    t.replace(at, one.size(), any);
  return Variant::fromText(t);
}

SessionOptions on(Device d) {
  SessionOptions o;
  o.device = d;
  return o;
}

} // namespace

TEST_CASE("slimmed cache: decode() matches run() on the full cache", "[gpu][slim]") {
  struct Case {
    int B, Hq, Hkv, Sp, Skv, D, Sd;
    double tau;
  };
  const Case cases[] = {
      {2, 8, 2, 300, 1000, 128, 1, 0.9},
      {1, 32, 8, 200, 5000, 128, 1, 0.95},
      {3, 4, 4, 64, 333, 64, 3, 0.8},
      {1, 4, 1, 100, 77, 64, 2, 1.0},
  };
  Session s(on(Device::Gpu));
  for (const Case &c : cases) {
    INFO("B " << c.B << " Hq " << c.Hq << " Hkv " << c.Hkv << " Skv " << c.Skv << " D " << c.D
              << " Sd " << c.Sd << " tau " << c.tau);
    patterns::SlimOptions o;
    o.tau = c.tau, o.sinks = 4, o.recent = 16;
    auto p = s.compile(decodeVariant({c.Hq, c.Hkv, c.D, DType::BF16}, o));
    Dev prompt({c.B, c.Hq, c.Sp, c.D}, 1.0, 0.2), k({c.B, c.Hkv, c.Skv, c.D}, 1.5, 0.0);
    Dev v({c.B, c.Hkv, c.Skv, c.D}, 1.0, 0.0), q({c.B, c.Hq, c.Sd, c.D}, 1.0, 0.2);
    Dev o1({c.B, c.Hq, c.Sd, c.D}, 0, 0, true), o2({c.B, c.Hq, c.Sd, c.D}, 0, 0, true);
    DevF32 l1({c.B, c.Hq, c.Sd}), l2({c.B, c.Hq, c.Sd});
    SelectionReport rep =
        p->runSelection({prompt.view(), k.view(), v.view(), q.view()}, {o1.view(), l1.view()});
    auto cache = p->slim({prompt.view(), k.view(), v.view()});
    p->decode(*cache, {q.view()}, {o2.view(), l2.view()});
    double err = relErr(o2.download(), o1.download()), lerr = maxAbs(l2.download(), l1.download());
    INFO("O rel err vs run() " << err << ", LSE max diff " << lerr);
    CHECK(err <= 5e-3);
    CHECK(lerr <= 1e-3);
    int64_t tokens = 0;
    for (int b = 0; b < c.B; ++b)
      for (int h = 0; h < c.Hkv; ++h)
        tokens += cache->length(b, h);
    REQUIRE(rep.kvKept);
    CHECK(double(tokens) == Approx(*rep.kvKept * double(c.B) * c.Hkv * c.Skv));
    CHECK(cache->bytesBefore() == int64_t(2) * c.B * c.Hkv * c.Skv * c.D * 2);
    CHECK(cache->bytesAfter() == 2 * tokens * c.D * 2 + int64_t(c.B) * c.Hkv * 12);
  }
}

TEST_CASE("slimmed cache: appends and the decode agree with the CPU path", "[gpu][slim]") {
  // tau = 0 keeps exactly the forced tokens (sinks + recent), so both
  // devices keep the same rows and the whole path can be compared.
  const int B = 2, Hq = 8, Hkv = 2, Sp = 80, Skv = 700, D = 64, R = 3;
  patterns::SlimOptions o;
  o.tau = 0.0, o.sinks = 4, o.recent = 32;
  patterns::Heads h{Hq, Hkv, D, DType::BF16};
  Session gs(on(Device::Gpu)), cs(on(Device::Cpu));
  auto gp = gs.compile(decodeVariant(h, o)), cp = cs.compile(decodeVariant(h, o));
  Dev prompt({B, Hq, Sp, D}, 1.0, 0.1), k({B, Hkv, Skv, D}, 1.0, 0.0), v({B, Hkv, Skv, D}, 1.0, 0);
  auto gc = gp->slim({prompt.view(), k.view(), v.view()}, R);
  auto cc = cp->slim({prompt.hostView(), k.hostView(), v.hostView()}, R);
  for (int b = 0; b < B; ++b)
    for (int hk = 0; hk < Hkv; ++hk) {
      CHECK(gc->length(b, hk) == 36);
      CHECK(gc->capacity(b, hk) == 36 + R);
      CHECK(cc->length(b, hk) == 36);
    }
  for (int step = 0; step < 2; ++step) {
    const int t = step == 0 ? 2 : 1;
    Dev kn({B, Hkv, t, D}, 1.0, 0.0), vn({B, Hkv, t, D}, 1.0, 0.0), q({B, Hq, t, D}, 1.0, 0.1);
    gc->append(kn.view(), vn.view());
    cc->append(kn.hostView(), vn.hostView());
    Dev og({B, Hq, t, D}, 0, 0, true);
    DevF32 lg({B, Hq, t});
    std::vector<float> oc(size_t(B * Hq * t * D)), lc(size_t(B * Hq * t));
    gp->decode(*gc, {q.view()}, {og.view(), lg.view()});
    cp->decode(*cc, {q.hostView()},
               {{oc.data(), DType::F32, Device::Cpu, {B, Hq, t, D}, {}},
                {lc.data(), DType::F32, Device::Cpu, {B, Hq, t}, {}}});
    double err = relErr(og.download(), oc), lerr = maxAbs(lg.download(), lc);
    INFO("step " << step << ": O rel err vs CPU " << err << ", LSE max diff " << lerr);
    CHECK(err <= 1e-2);
    CHECK(lerr <= 1e-2);
  }
  CHECK(gc->length(0, 0) == 36 + R);
  Dev kn({B, Hkv, 1, D}, 1.0, 0.0);
  CHECK_THROWS_WITH(gc->append(kn.view(), kn.view()), Catch::Contains("larger reserve"));
}
