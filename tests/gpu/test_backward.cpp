//===- test_backward.cpp - GPU backward against the float64 reference -----===//
//
// Program::backward of a GPU program (codegen/device/attention_bwd.cuh)
// against the same variant compiled for the CPU device (the float64
// reference, ref::attentionBackward) on the same rounded inputs: dq, dk, dv
// within 1e-2 relative (bf16 and fp16), no NaN (the gradient buffers are
// poisoned with NaN before every run). Masks, block lists per head and per
// GQA group (empty rows, full rows), a top-k selection, query sets (lazy
// rows local or zero), vertical-slash sets, odd lengths, batch 2, Sq != Skv;
// both modes; the deterministic mode twice gives the same
// bits; passing the forward's O and LSE gives the same gradients.
//
//===----------------------------------------------------------------------===//
#include <catch2/catch.hpp>

#include "runtime/gpu/Executor.h"
#include "runtime/gpu/DeviceBuffer.h"
#include "runtime/io/Dtype.h"
#include "sattn/sattn.h"
#include "tests/gpu/GpuHarness.h"

#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>

using namespace sattn;
using namespace sattn::testing;

namespace {

/// One host tensor (values already rounded to the dtype) and its device copy.
struct Buf {
  std::vector<int64_t> shape;
  std::vector<float> host; // f32 view for the CPU program
  std::unique_ptr<gpu::DeviceBuffer> dev;
  DType dtype = DType::BF16;
  TensorView cpuView() {
    return TensorView{host.data(), DType::F32, Device::Cpu, shape, {}};
  }
  TensorView gpuView() const { return TensorView{(void *)dev->ptr, dtype, Device::Gpu, shape, {}}; }
};

size_t count(const std::vector<int64_t> &shape) {
  size_t n = 1;
  for (int64_t s : shape)
    n *= size_t(s);
  return n;
}

/// A 16-bit tensor: random N(0, 1) when `fill`, else NaN-poisoned (outputs).
Buf make16(const std::vector<int64_t> &shape, DType dt, std::mt19937 &rng, bool fill) {
  Buf b;
  b.shape = shape, b.dtype = dt;
  const size_t n = count(shape);
  b.host.assign(n, 0.f);
  std::vector<uint16_t> bits(n, 0xffff); // NaN in both bf16 and fp16
  std::normal_distribution<double> n01(0.0, 1.0);
  if (fill)
    for (size_t i = 0; i < n; ++i) {
      const double x = n01(rng);
      b.host[i] = float(dt == DType::BF16 ? io::roundToBf16(x) : io::roundToFp16(x));
      bits[i] = dt == DType::BF16 ? io::floatToBf16Bits(b.host[i]) : io::floatToHalfBits(b.host[i]);
    }
  b.dev = std::make_unique<gpu::DeviceBuffer>(n * 2);
  gpu::Driver &d = gpu::Driver::get();
  d.check(d.cuMemcpyHtoDAsync_(b.dev->ptr, bits.data(), n * 2, nullptr), "upload");
  d.check(d.cuStreamSynchronize_(nullptr), "upload");
  return b;
}

/// Device bits of a 16-bit buffer, and their values as doubles.
std::vector<uint16_t> bitsOf(const Buf &b) {
  std::vector<uint16_t> bits(count(b.shape));
  gpu::Driver &d = gpu::Driver::get();
  d.check(d.cuMemcpyDtoHAsync_(bits.data(), b.dev->ptr, bits.size() * 2, nullptr), "download");
  d.check(d.cuStreamSynchronize_(nullptr), "download");
  return bits;
}
ref::Tensor valuesOf(const Buf &b) {
  ref::Tensor t(b.shape);
  std::vector<uint16_t> bits = bitsOf(b);
  for (size_t i = 0; i < bits.size(); ++i)
    t.data[i] = b.dtype == DType::BF16 ? double(io::bf16BitsToFloat(bits[i]))
                                       : double(io::halfBitsToFloat(bits[i]));
  return t;
}

/// The IR types of a variant's q, k (and v), LSE and block set.
struct Types {
  std::string q, k, l, bt;
  Types(const Shape &s, int bq, int bk, int setHeads) {
    const std::string e = s.dtype == "bf16" ? "bf16" : "f16", D = std::to_string(s.D);
    q = "tensor<?x" + std::to_string(s.Hq) + "x?x" + D + "x" + e + ">";
    k = "tensor<?x" + std::to_string(s.Hkv) + "x?x" + D + "x" + e + ">";
    l = "tensor<?x" + std::to_string(s.Hq) + "x?xf32>";
    bt = "!sattn.blocks<bq = " + std::to_string(bq) + ", bk = " + std::to_string(bk) +
         ", heads = " + std::to_string(setHeads) + ">";
  }
};

/// A variant reading a block list [B, setHeads, nQB, cap] (-1 padded).
std::string listIR(const Shape &s, int bq, int bk, int setHeads, bool causal, bool lse) {
  const Types ty(s, bq, bk, setHeads);
  const std::string &q = ty.q, &k = ty.k, &l = ty.l, &bt = ty.bt;
  std::ostringstream os;
  os << "func.func @v(%q: " << q << ", %k: " << k << ", %v: " << k << ", %blocks: " << bt
     << " {sattn.name = \"blocks\"}) -> (" << q << (lse ? ", " + l : "") << ") {\n"
     << "  %o" << (lse ? ", %l" : "") << " = sattn.attention %q, %k, %v blocks %blocks : " << bt
     << " {" << (causal ? "causal" : "") << "} : " << q << ", " << k << ", " << k << " -> " << q
     << (lse ? ", " + l : "") << "\n"
     << "  return %o" << (lse ? ", %l" : "") << " : " << q << (lse ? ", " + l : "") << "\n}\n";
  return os.str();
}

/// Query selection (OmniSparse): classify_queries with a low theta, so
/// every row is lazy except every `keepEvery`-th (a mix that fp32 and
/// float64 classify alike), and an attention whose active rows are causal
/// over a block list (bq > 0) or over everything, lazy rows over `window`
/// + `sinks` (or 0 with lazyZero).
std::string queryIR(const Shape &s, int bq, int bk, int setHeads, int window, int sinks,
                    int keepEvery, bool lazyZero, bool lse) {
  const Types ty(s, bq, bk, setHeads);
  const std::string &q = ty.q, &k = ty.k, &l = ty.l, &bt = ty.bt;
  const std::string qt = "!sattn.queries<heads = " + std::to_string(s.Hq) + ">";
  const std::string w = std::to_string(window), sk = std::to_string(sinks);
  std::ostringstream os;
  os << "func.func @v(%q: " << q << ", %k: " << k << ", %v: " << k
     << (bq > 0 ? ", %blocks: " + bt + " {sattn.name = \"blocks\"}" : "") << ") -> (" << q
     << (lse ? ", " + l : "") << ") {\n"
     << "  %qs = sattn.classify_queries %q, %k {key_group = 16 : i64, window = " << w
     << " : i64, sinks = " << sk << " : i64, theta = 0.01 : f64, keep_every = " << keepEvery
     << " : i64} : " << q << ", " << k << " -> " << qt << "\n"
     << "  %o" << (lse ? ", %l" : "") << " = sattn.attention %q, %k, %v"
     << (bq > 0 ? " blocks %blocks : " + bt : "") << " queries %qs : " << qt
     << (lazyZero ? " lazy zero" : "") << " {causal, lazy_window = " << w
     << " : i64, lazy_sinks = " << sk << " : i64} : " << q << ", " << k << ", " << k << " -> "
     << q << (lse ? ", " + l : "") << "\n"
     << "  return %o" << (lse ? ", %l" : "") << " : " << q << (lse ? ", " + l : "") << "\n}\n";
  return os.str();
}

struct Case {
  std::string name, ir;
  Shape s;
  // Block list (when bq > 0): per row a random subset of `density`, or
  // every row empty (density 0) / full (density 1).
  int bq = 0, bk = 0, setHeads = 0;
  double density = 0;
  bool lse = false; // the variant returns its LSE: also run with the saved O and LSE
  // The variant selects a vertical-slash set: the reference takes the GPU's
  // own set (fp32 lines may swap near-equal columns, see test_patterns.cpp).
  bool vslash = false;
};

struct Grads {
  Buf dq, dk, dv;
};

void checkCase(const Case &c, bool deterministic, unsigned seed) {
  INFO("case " << c.name << (deterministic ? " (deterministic)" : " (fast)") << ", B " << c.s.B
               << ", Sq " << c.s.Sq << ", Skv " << c.s.Skv << ", D " << c.s.D << ", "
               << c.s.dtype);
  const DType dt = c.s.dtype == "bf16" ? DType::BF16 : DType::FP16;
  std::mt19937 rng(seed);
  const Shape &s = c.s;
  Buf q = make16({s.B, s.Hq, s.Sq, s.D}, dt, rng, true);
  Buf k = make16({s.B, s.Hkv, s.Skv, s.D}, dt, rng, true);
  Buf v = make16({s.B, s.Hkv, s.Skv, s.D}, dt, rng, true);
  Buf dout = make16({s.B, s.Hq, s.Sq, s.D}, dt, rng, true);

  // The block list, when the variant takes one.
  std::vector<int32_t> list;
  std::vector<int64_t> listShape;
  std::unique_ptr<gpu::DeviceBuffer> listDev;
  if (c.bq > 0) {
    const int64_t nQB = (s.Sq + c.bq - 1) / c.bq, nKB = (s.Skv + c.bk - 1) / c.bk;
    listShape = {s.B, c.setHeads, nQB, std::max<int64_t>(nKB, 1)};
    list.assign(count(listShape), -1);
    std::uniform_real_distribution<double> u(0, 1);
    for (size_t row = 0; row < size_t(s.B * c.setHeads * nQB); ++row) {
      int n = 0;
      for (int64_t J = nKB - 1; J >= 0; --J) // descending: the kernels must not rely on order
        if (c.density >= 1 || (c.density > 0 && u(rng) < c.density))
          list[row * size_t(listShape[3]) + size_t(n++)] = int32_t(J);
    }
    listDev = std::make_unique<gpu::DeviceBuffer>(list.size() * 4);
    gpu::Driver &d = gpu::Driver::get();
    d.check(d.cuMemcpyHtoDAsync_(listDev->ptr, list.data(), list.size() * 4, nullptr), "upload");
    d.check(d.cuStreamSynchronize_(nullptr), "upload");
  }

  SessionOptions go, co;
  go.device = Device::Gpu, co.device = Device::Cpu;
  Session gs(go), cs(co);
  auto gp = gs.compile(Variant::fromText(c.ir));
  auto cp = cs.compile(Variant::fromText(c.ir));

  std::vector<TensorView> gin = {q.gpuView(), k.gpuView(), v.gpuView()};
  std::vector<TensorView> cin = {q.cpuView(), k.cpuView(), v.cpuView()};
  if (c.bq > 0) {
    gin.push_back(TensorView{(void *)listDev->ptr, DType::I32, Device::Gpu, listShape, {}});
    cin.push_back(TensorView{list.data(), DType::I32, Device::Cpu, listShape, {}});
  }

  // Reference gradients.
  std::vector<float> rq(q.host.size()), rk(k.host.size()), rv(v.host.size());
  auto asTensor = [](const std::vector<float> &x, const std::vector<int64_t> &shape) {
    ref::Tensor t(shape);
    for (size_t i = 0; i < x.size(); ++i)
      t.data[i] = x[i];
    return t;
  };
  ref::Tensor wq, wk, wv;
  if (c.vslash) {
    // The forward on the GPU gives its set; the float64 backward over it.
    auto shared = [&](const Buf &b) { return std::make_shared<ref::Tensor>(asTensor(b.host, b.shape)); };
    // The forward as the program runs it (this GPU's kernels, whatever
    // SATTN_TEST_ARCH asks of the backward: the set needs sm_90a).
    struct ArchGuard {
      std::string saved = gTargetArch;
      ArchGuard() { gTargetArch.clear(); }
      ~ArchGuard() { gTargetArch = saved; }
    } guard;
    Outcome o = runWith(c.ir, s.dtype, {shared(q), shared(k), shared(v)});
    REQUIRE(o.selection.vslash);
    ref::AttentionGrads w = ref::attentionBackward(*o.inputs[0], *o.inputs[1], *o.inputs[2],
                                                   asTensor(dout.host, dout.shape), nullptr,
                                                   nullptr, o.selection.params);
    wq = std::move(w.dq), wk = std::move(w.dk), wv = std::move(w.dv);
  } else {
    cp->backward(cin, dout.cpuView(),
                 {TensorView{rq.data(), DType::F32, Device::Cpu, q.shape, {}},
                  TensorView{rk.data(), DType::F32, Device::Cpu, k.shape, {}},
                  TensorView{rv.data(), DType::F32, Device::Cpu, v.shape, {}}});
    wq = asTensor(rq, q.shape), wk = asTensor(rk, k.shape), wv = asTensor(rv, v.shape);
  }

  auto run = [&](const TensorView *out, const TensorView *lse) {
    Grads g{make16(q.shape, dt, rng, false), make16(k.shape, dt, rng, false),
            make16(v.shape, dt, rng, false)};
    Program::BackwardOptions o;
    o.deterministic = deterministic, o.out = out, o.lse = lse;
    gp->backward(gin, dout.gpuView(), {g.dq.gpuView(), g.dk.gpuView(), g.dv.gpuView()}, o);
    gpu::Driver &d = gpu::Driver::get();
    d.check(d.cuStreamSynchronize_(nullptr), "backward");
    return g;
  };
  auto check = [&](const Grads &g, const char *what) {
    const ref::Tensor a = valuesOf(g.dq), b = valuesOf(g.dk), cc = valuesOf(g.dv);
    const double eq = relErr(a, wq), ek = relErr(b, wk), ev = relErr(cc, wv);
    INFO(what << ": rel err dq " << eq << ", dk " << ek << ", dv " << ev);
    CHECK(nanCount(a) == 0);
    CHECK(nanCount(b) == 0);
    CHECK(nanCount(cc) == 0);
    CHECK(eq <= 1e-2);
    CHECK(ek <= 1e-2);
    CHECK(ev <= 1e-2);
  };
  Grads g1 = run(nullptr, nullptr);
  check(g1, "recomputed forward");
  if (deterministic) {
    Grads g2 = run(nullptr, nullptr);
    CHECK(bitsOf(g1.dq) == bitsOf(g2.dq));
    CHECK(bitsOf(g1.dk) == bitsOf(g2.dk));
    CHECK(bitsOf(g1.dv) == bitsOf(g2.dv));
  }
  // The forward's own O and LSE (when the variant returns its LSE).
  if (c.lse) {
    Buf o = make16(q.shape, dt, rng, false);
    std::vector<int64_t> ls = {s.B, s.Hq, s.Sq};
    gpu::DeviceBuffer lbuf(count(ls) * 4);
    TensorView ov = o.gpuView(), lv{(void *)lbuf.ptr, DType::F32, Device::Gpu, ls, {}};
    gp->run(gin, {ov, lv});
    check(run(&ov, &lv), "saved O and LSE");
  }
}

Shape shape(int B, int Hq, int Hkv, int Sq, int Skv, int D, const char *dt = "bf16") {
  Shape s;
  s.B = B, s.Hq = Hq, s.Hkv = Hkv, s.Sq = Sq, s.Skv = Skv, s.D = D, s.dtype = dt;
  return s;
}

std::vector<Case> cases() {
  std::vector<Case> cs;
  auto att = [&](const char *name, Shape s, const std::string &attrs, bool lse) {
    Case c{name, attentionIR(s, attrs, lse), s};
    c.lse = lse;
    cs.push_back(c);
  };
  att("dense", shape(1, 4, 2, 200, 200, 64), "", false);
  att("dense D128 lse", shape(1, 4, 4, 130, 130, 128), "", true);
  att("causal", shape(2, 4, 2, 333, 333, 64), "causal", true);
  att("causal Sq<Skv", shape(1, 4, 1, 100, 300, 128), "causal", false);
  att("causal Sq>Skv", shape(1, 2, 2, 300, 100, 64), "causal", false);
  att("causal fp16", shape(1, 4, 2, 257, 257, 128, "fp16"), "causal", true);
  att("window+sinks", shape(1, 4, 2, 400, 400, 64), "causal, window = 100 : i64, sinks = 4 : i64",
      false);
  att("window D128", shape(1, 2, 1, 300, 300, 128), "causal, window = 64 : i64", false);
  att("MQA, 8 heads per KV head", shape(1, 8, 1, 200, 200, 64), "causal", false);
  // Head dim 96: scalar forward, mma.sync backward (and recomputed forward).
  att("D96 causal lse", shape(2, 4, 2, 301, 301, 96), "causal", true);
  att("D96 window+sinks Sq<Skv", shape(1, 4, 4, 150, 270, 96, "fp16"),
      "causal, window = 80 : i64, sinks = 4 : i64", false);
  auto lst = [&](const char *name, Shape s, int bq, int bk, int setHeads, bool causal,
                 double density, bool lse) {
    Case c{name, listIR(s, bq, bk, setHeads, causal, lse), s, bq, bk, setHeads, density, lse};
    cs.push_back(c);
  };
  lst("blocks per head", shape(1, 4, 2, 500, 500, 64), 64, 64, 4, false, 0.3, false);
  lst("blocks per group causal", shape(2, 4, 2, 450, 450, 128), 128, 128, 2, true, 0.5, true);
  lst("blocks bq 32 bk 128", shape(1, 4, 2, 300, 380, 64), 32, 128, 4, true, 0.4, false);
  lst("blocks bq 32 bk 32", shape(1, 4, 2, 230, 230, 64), 32, 32, 4, true, 0.5, false);
  lst("blocks empty", shape(1, 2, 1, 200, 200, 64), 64, 64, 2, false, 0.0, false);
  lst("blocks full", shape(1, 2, 1, 200, 260, 64), 64, 64, 2, true, 1.0, false);
  lst("blocks fp16", shape(1, 4, 4, 256, 256, 128, "fp16"), 64, 64, 4, false, 0.25, false);
  lst("blocks D96 per group", shape(1, 4, 2, 333, 333, 96), 64, 128, 2, true, 0.4, false);
  // Query sets (OmniSparse): active rows over blocks / causal, lazy rows
  // over window + sinks (added in a second pass) or 0.
  auto qry = [&](const char *name, Shape s, int bq, int bk, int setHeads, double density,
                 int window, int sinks, int keepEvery, bool lazyZero, bool lse) {
    Case c{name, queryIR(s, bq, bk, setHeads, window, sinks, keepEvery, lazyZero, lse), s, bq, bk,
           setHeads, density, lse};
    cs.push_back(c);
  };
  qry("queries, blocks per head", shape(1, 4, 2, 450, 450, 64), 64, 64, 4, 0.4, 96, 16, 3, false,
      true);
  qry("queries, blocks per group D128", shape(2, 4, 2, 300, 300, 128), 128, 128, 2, 0.5, 64, 8,
      2, false, false);
  qry("queries, causal only, Sq<Skv", shape(1, 4, 1, 200, 330, 64), 0, 0, 0, 0, 100, 0, 4, false,
      true);
  qry("queries, lazy zero", shape(1, 2, 2, 260, 260, 64), 64, 64, 2, 0.5, 64, 16, 3, true, false);
  qry("queries D96 (scalar forward)", shape(1, 4, 2, 330, 330, 96), 64, 64, 4, 0.4, 64, 8, 3,
      false, true);
  // Static block patterns: fused into the kernel (HAS_PATTERN: not covered
  // by the token mask, so it stays a pattern), and the union of two static
  // sets as index lists.
  {
    Shape ps = shape(1, 4, 2, 300, 300, 64);
    const Types ty(ps, 32, 32, 4);
    const std::string &q = ty.q, &k = ty.k, &bt = ty.bt;
    cs.push_back(Case{"static pattern fused",
                      "func.func @v(%q: " + q + ", %k: " + k + ", %v: " + k + ") -> " + q +
                          " {\n  %bs = sattn.static_blocks %q, %k {causal, window = 64 : i64, "
                          "sinks = 8 : i64} : " +
                          q + ", " + k + " -> " + bt + "\n  %o = sattn.attention %q, %k, %v blocks %bs : " +
                          bt + " {causal} : " + q + ", " + k + ", " + k + " -> " + q +
                          "\n  return %o : " + q + "\n}\n",
                      ps});
    Shape us = shape(2, 4, 2, 257, 257, 64);
    const Types tu(us, 64, 32, 2);
    cs.push_back(Case{"static union (fused as a pattern)",
                      "func.func @v(%q: " + tu.q + ", %k: " + tu.k + ", %v: " + tu.k + ") -> " +
                          tu.q + " {\n  %a = sattn.static_blocks %q, %k {causal, window = 40 : i64} : " +
                          tu.q + ", " + tu.k + " -> " + tu.bt +
                          "\n  %b = sattn.static_blocks %q, %k {causal, window = 100 : i64, sinks = "
                          "32 : i64} : " +
                          tu.q + ", " + tu.k + " -> " + tu.bt + "\n  %c = sattn.union %a, %b : " +
                          tu.bt + "\n  %o = sattn.attention %q, %k, %v blocks %c : " + tu.bt +
                          " {causal} : " + tu.q + ", " + tu.k + ", " + tu.k + " -> " + tu.q +
                          "\n  return %o : " + tu.q + "\n}\n",
                      us});
  }
  // MInference vertical-slash (token-level bands and gathered columns):
  // GQA, odd lengths, Sq < Skv, query blocks of 64 and 128, batch 2.
  auto vsl = [&](const char *name, Shape s, int64_t vertical, int64_t slash, int64_t block) {
    patterns::VerticalSlashOptions o;
    o.vertical = vertical, o.slash = slash, o.block = block, o.sinkColumns = 8,
    o.localSlashes = 4;
    const DType dt = s.dtype == "bf16" ? DType::BF16 : DType::FP16;
    Case c{name, patterns::minferenceVerticalSlash({s.Hq, s.Hkv, s.D, dt}, o).text(), s};
    c.vslash = true;
    cs.push_back(c);
  };
  vsl("vertical-slash", shape(2, 4, 2, 450, 450, 64), 40, 30, 64);
  vsl("vertical-slash D128 bq 128 Sq<Skv", shape(1, 4, 1, 300, 700, 128), 60, 25, 128);
  vsl("vertical-slash fp16 many columns", shape(1, 2, 2, 520, 520, 64, "fp16"), 300, 12, 64);
  // Sq > Skv: the first blocks' rows see nothing (e <= 0), and rows before
  // the diagonal inside a visible block (added after the session's last
  // GPU run: not yet run on a GPU).
  vsl("vertical-slash Sq>Skv", shape(1, 4, 2, 500, 300, 64), 30, 20, 64);
  // A selection computed by the variant itself (pool -> scores -> top-k).
  Shape t = shape(1, 4, 2, 512, 512, 64);
  cs.push_back(Case{"topk", topkIR(t, 32, 64, 64, "k = 3 : i64", "topk", 4, true), t});
  return cs;
}

} // namespace

TEST_CASE("backward matches the float64 reference", "[backward]") {
  unsigned seed = 9100;
  // SATTN_TEST_ARCH=sm_80: the portable (mma.sync) backward kernels, which
  // Hopper also runs (the variants still compile for this GPU: a
  // vertical-slash forward needs sm_90a).
  struct EnvGuard { // restored for the test cases after this one
    const char *old = std::getenv("SATTN_BACKWARD_WGMMA");
    std::string saved = old ? old : "";
    bool had = old != nullptr;
    ~EnvGuard() { had ? setenv("SATTN_BACKWARD_WGMMA", saved.c_str(), 1) : unsetenv("SATTN_BACKWARD_WGMMA"); }
  } env;
  if (gTargetArch == "sm_80")
    setenv("SATTN_BACKWARD_WGMMA", "0", 1);
  // SATTN_BWD_CASES: comma-separated substrings of the case names to run
  // (all when unset), for a short device run of the cases a change touches.
  const char *only = std::getenv("SATTN_BWD_CASES");
  auto selected = [&](const std::string &name) {
    if (!only || !*only)
      return true;
    std::string list = only;
    for (size_t at = 0; at <= list.size();) {
      size_t end = list.find(',', at);
      end = end == std::string::npos ? list.size() : end;
      if (end > at && name.find(list.substr(at, end - at)) != std::string::npos)
        return true;
      at = end + 1;
    }
    return false;
  };
  for (const Case &c : cases()) {
    for (bool det : {false, true}) { // seeds as in the full run
      const unsigned caseSeed = seed++;
      if (selected(c.name))
        checkCase(c, det, caseSeed);
    }
  }
}

TEST_CASE("backward rejects what it cannot differentiate", "[backward]") {
  SessionOptions go;
  go.device = Device::Gpu;
  Session gs(go);
  // Head dim 256: no GPU backward (the CPU device computes it).
  Shape s = shape(1, 2, 2, 64, 64, 256);
  auto p = gs.compile(Variant::fromText(attentionIR(s, "causal", false)));
  std::mt19937 rng(1);
  Buf q = make16({1, 2, 64, 256}, DType::BF16, rng, true);
  Buf dq = make16({1, 2, 64, 256}, DType::BF16, rng, false);
  try {
    p->backward({q.gpuView(), q.gpuView(), q.gpuView()}, q.gpuView(),
                {dq.gpuView(), dq.gpuView(), dq.gpuView()});
    FAIL("no error");
  } catch (const Error &e) {
    CHECK(std::string(e.what()).find("head dims 64, 96 and 128") != std::string::npos);
  }
  // Wrong gradient dtype.
  Shape s2 = shape(1, 2, 2, 64, 64, 64);
  auto p2 = gs.compile(Variant::fromText(attentionIR(s2, "causal", false)));
  Buf x = make16({1, 2, 64, 64}, DType::BF16, rng, true);
  Buf bad = make16({1, 2, 64, 64}, DType::FP16, rng, false);
  CHECK_THROWS_AS(p2->backward({x.gpuView(), x.gpuView(), x.gpuView()}, x.gpuView(),
                               {bad.gpuView(), x.gpuView(), x.gpuView()}),
                  Error);
}
