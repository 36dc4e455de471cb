//===- Backward.cpp - gradients of a variant's attention on the GPU -------===//
//
// CompiledProgram::backward: the launches before the attention behind the
// first result run as in the forward (so its block set is rebuilt from the
// same inputs by the same bitwise-reproducible kernels), then the kernels of
// codegen/device/attention_bwd.cuh: [forward with LSE, unless the caller
// passes the forward's O and LSE] -> delta -> [transposed block lists] ->
// dK/dV (+ atomic dQ in the fast mode) -> dQ (deterministic pass, or the
// fp32 accumulator converted). Everything is queued on the caller's stream;
// nothing waits for the GPU.
//
// The backward module is emitted here from the attention launch's
// constants (the same Cfg struct the forward kernel was compiled with) and
// compiled on first use through the disk cache: variants that never train
// pay nothing at compile time.
//
//===----------------------------------------------------------------------===//
#include "runtime/gpu/Run.h"

#include "codegen/device/attention_bwd.cuh"

#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace sattn::gpu {

using detail::cdiv;
using detail::cfgStruct;
using detail::compileCached;
using detail::RtValue;
using detail::Run;
namespace dev = sattn::dev;

namespace {

/// Whether attention launch `l` takes a query set, and whether its lazy
/// rows attend (policy local) rather than write 0.
bool hasQueries(const Launch &l) { return l.b("HAS_QUERIES"); }
bool lazyRowsAttend(const Launch &l) {
  return hasQueries(l) && std::get<std::string>(l.consts.at("LAZY")) == "local";
}
/// Whether it takes a token-level vertical-slash set (semantics §12b).
bool hasVSlash(const Launch &l) { return l.consts.count("HAS_VSLASH") && l.b("HAS_VSLASH"); }

/// Warpgroups per sm_90a backward CTA (attention_bwd.cuh, BwdKeyWgsOf and
/// BwdRowWgsOf). Two: a dK/dV CTA of 128 keys
/// stages each Q / dO tile once, a dQ CTA of 128 rows each K / V tile once
/// (half the L2 -> shared traffic of two 64-wide CTAs); its warpgroups share
/// the stages through a ring of full / empty mbarriers, so one may run a
/// tile ahead of the other (one's exponentials under the other's products).
/// Measured on the H100 (docs/performance.md, 2026-12-07 fifth): 12-25 %
/// faster than one warpgroup for dense causal and unmasked attention and for
/// 20 % block sets. Default: two wherever possible in the deterministic
/// mode; never for vertical-slash sets, the mma.sync form and block sets
/// whose blocks (`blockConst`: SET_BK for dK/dV, SET_BQ for dQ) do not hold
/// whole 128-wide CTAs. The atomic mode also runs two (not with query sets):
/// they share one dQ product per 128 keys (DkDv::dq_pair); 2026-12-07
/// seventh: fwd+bwd 10-15 % faster than the deterministic mode at D = 64,
/// equal at D = 128 dense, 6-7 % slower for D = 128 block sets (and
/// 2.6x faster than one warpgroup at D = 128 full). SATTN_BACKWARD_KEY_WGS=1
/// forces one warpgroup, =2 two where allowed.
int backwardWgs(const Launch &l, bool deterministic, bool wg, const char *blockConst) {
  if (!wg || hasVSlash(l) || (!deterministic && hasQueries(l)))
    return 1;
  if (l.b("HAS_BLOCKS") && l.i(blockConst) % (2 * dev::kAttnBwdTile) != 0)
    return 1;
  if (const char *env = std::getenv("SATTN_BACKWARD_KEY_WGS"); env && *env)
    return std::string(env) == "1" ? 1 : 2;
  return 2;
}

} // namespace

/// The backward module of attention launch `l` in one mode (declared in
/// Executor.h). `wg`: dK/dV and dQ on wgmma (sm_90a), else on mma.sync.
/// The deterministic mode has its dQ pass; the atomic one converts the fp32
/// accumulator instead (its dK/dV kernel adds dS K to it: ATOMIC_DQ). sattn_bwd_cfg is the forward's Cfg without its query set (the
/// backward kernels read the active rows' mask and block set; lazy rows are
/// a second pass with sattn_bwd_lazy_cfg: causal, lazy window and sinks, no
/// blocks).
BackwardModuleSource backwardModuleSource(const Launch &l, bool deterministic, bool wg) {
  BackwardModuleSource m;
  m.keyWgs = backwardWgs(l, deterministic, wg, "SET_BK");
  m.rowWgs = backwardWgs(l, deterministic, wg, "SET_BQ");
  std::ostringstream os;
  os << "// sattn backward module for " << l.kernel << "\n"
     << "#include \"attention_bwd.cuh\"\n#include \"attention_mma.cuh\"\n"
     << cfgStruct(l, "sattn_fwd_cfg")
     << "struct sattn_bwd_cfg : sattn_fwd_cfg {\n"
        "  static constexpr bool HAS_QUERIES = false;\n"
        "  static constexpr bool ATOMIC_DQ = "
     << (deterministic ? "false" : "true") << ";\n  static constexpr int BWD_KEY_WGS = " << m.keyWgs
     << ";\n  static constexpr int BWD_ROW_WGS = " << m.rowWgs << ";\n};\n"
     << "struct sattn_bwd_fwd_cfg : sattn_bwd_cfg {\n"
        "  static constexpr bool HAS_LSE = true;\n"
        "  static constexpr int TILE_M = 64;\n};\n";
  if (lazyRowsAttend(l))
    os << "struct sattn_bwd_lazy_cfg : sattn_bwd_cfg {\n"
          "  static constexpr bool CAUSAL = true;\n"
          "  static constexpr int WINDOW = "
       << l.i("LAZY_WINDOW") << ";\n  static constexpr int SINKS = " << l.i("LAZY_SINKS")
       << ";\n  static constexpr bool HAS_BLOCKS = false;\n"
          "  static constexpr bool HAS_PATTERN = false;\n};\n"
          "struct sattn_bwd_lazy_fwd_cfg : sattn_bwd_lazy_cfg {\n"
          "  static constexpr bool HAS_LSE = true;\n"
          "  static constexpr int TILE_M = 64;\n};\n";
  auto kernel = [&](const char *name, const char *templ, const char *cfg, const char *bounds,
                    const char *params) {
    m.kernels.push_back(name);
    os << "extern \"C\" __global__ void __launch_bounds__(" << bounds << ")\n"
       << name << "(const __grid_constant__ sattn::dev::" << params << " p) {\n"
       << "  sattn::dev::" << templ << "<" << cfg << ">(p);\n}\n";
  };
  const char *fwdBounds = "sattn::dev::kAttnMmaThreads, sattn::dev::kAttnMmaMinBlocks";
  const char *bwdBounds = "sattn::dev::kAttnBwdThreads";
  const std::string dkdvBounds = std::to_string(dev::kAttnBwdThreads * m.keyWgs);
  const std::string dqBounds = std::to_string(dev::kAttnBwdThreads * m.rowWgs);
  const char *rowBounds = "32 * sattn::dev::kAttnBwdDeltaRows";
  kernel("sattn_bwd_fwd", "attn_fwd_mma", "sattn_bwd_fwd_cfg", fwdBounds, "AttnParams");
  kernel("sattn_bwd_delta", "attn_bwd_delta", "sattn_bwd_cfg", rowBounds, "AttnBwdParams");
  kernel("sattn_bwd_transpose", "attn_bwd_transpose", "sattn_bwd_cfg",
         "sattn::dev::kAttnBwdTransposeThreads", "AttnBwdParams");
  kernel("sattn_bwd_transpose_scan", "attn_bwd_transpose_scan", "sattn_bwd_cfg",
         "sattn::dev::kAttnBwdTransposeThreads", "AttnBwdParams");
  const char *dkdv = wg ? "attn_bwd_dkdv_wg" : "attn_bwd_dkdv";
  const char *dq = wg ? "attn_bwd_dq_wg" : "attn_bwd_dq";
  kernel("sattn_bwd_dkdv", dkdv, "sattn_bwd_cfg", dkdvBounds.c_str(), "AttnBwdParams");
  if (deterministic)
    kernel("sattn_bwd_dq", dq, "sattn_bwd_cfg", dqBounds.c_str(), "AttnBwdParams");
  else
    kernel("sattn_bwd_dq_convert", "attn_bwd_dq_convert", "sattn_bwd_cfg", "256",
           "AttnBwdParams");
  if (hasVSlash(l)) { // the kept columns' dK / dV, then added at their keys
    kernel("sattn_bwd_dkdv_cols", wg ? "attn_bwd_dkdv_cols_wg" : "attn_bwd_dkdv_cols",
           "sattn_bwd_cfg", bwdBounds, "AttnBwdParams");
    kernel("sattn_bwd_vs_scatter", "attn_bwd_vs_scatter", "sattn_bwd_cfg", "256",
           "AttnBwdParams");
  }
  if (hasQueries(l))
    kernel("sattn_bwd_split_rows", "attn_bwd_split_rows", "sattn_bwd_cfg", rowBounds,
           "AttnBwdParams");
  if (lazyRowsAttend(l)) {
    kernel("sattn_bwd_fwd_lazy", "attn_fwd_mma", "sattn_bwd_lazy_fwd_cfg", fwdBounds,
           "AttnParams");
    kernel("sattn_bwd_dkdv_lazy", dkdv, "sattn_bwd_lazy_cfg", dkdvBounds.c_str(), "AttnBwdParams");
    if (deterministic)
      kernel("sattn_bwd_dq_lazy", dq, "sattn_bwd_lazy_cfg", dqBounds.c_str(), "AttnBwdParams");
  }
  m.cuda = os.str();
  return m;
}

namespace {

/// Index of the prefill attention launch that writes the first result, or
/// a GpuError saying why this variant has no GPU backward.
size_t attentionLaunch(const Plan &p, const BackwardRequest &req) {
  for (size_t i = 0; i < p.launches.size(); ++i) {
    const Launch &l = p.launches[i];
    if (!detail::isAttention(l) || l.results.empty() || p.results.empty() ||
        l.results[0] != p.results[0])
      continue;
    // The backward kernels are tensor-core kernels of their own (and their
    // own recomputed forward), whatever kernel the forward ran on.
    const int64_t D = l.i("HEAD_DIM");
    if (D != 64 && D != 96 && D != 128)
      throw GpuError("backward on the GPU takes head dims 64, 96 and 128; this variant has head "
                     "dim " +
                     std::to_string(D) + "; compile it for the CPU device to get its gradients");
    const int want[3] = {p.args.at(size_t(req.q)), p.args.at(size_t(req.k)),
                         p.args.at(size_t(req.v))};
    for (int x = 0; x < 3; ++x)
      if (l.operands.at(size_t(x)) != want[x])
        throw GpuError("backward: the attention behind the first result does not read the "
                       "variant's q, k, v inputs directly");
    return i;
  }
  throw GpuError("backward needs a variant whose first result is the output of a prefill "
                 "sattn.attention");
}

} // namespace

/// SATTN_BACKWARD_WGMMA=0 keeps the backward (both modes) on the mma.sync
/// kernels on Hopper too (A/B experiments, and the GPU tests of the
/// portable kernels). Head dim 96 always runs on mma.sync.
/// SATTN_BACKWARD_ATOMIC_WGMMA=0 keeps only the atomic mode on mma.sync
/// (its wgmma kernels, dQ inside the dK/dV CTA, came 2026-12-07).
bool CompiledProgram::backwardOnWgmma(bool deterministic) const {
  const char *env = std::getenv("SATTN_BACKWARD_WGMMA");
  const char *atomic = std::getenv("SATTN_BACKWARD_ATOMIC_WGMMA");
  return p.arch == "sm_90a" && !(env && std::string(env) == "0") &&
         (deterministic || !(atomic && std::string(atomic) == "0"));
}

const CompiledProgram::BackwardModule &CompiledProgram::backwardKernels(size_t attn,
                                                                      bool deterministic) const {
  std::lock_guard<std::mutex> lock(bwdMutex);
  BackwardModule &bm = bwdModules[deterministic ? 1 : 0];
  if (bm.module)
    return bm;
  Driver &drv = Driver::get();
  const codegen::Arch arch = codegen::Arch::forCapability(drv.major(), drv.minor());
  const Launch &l = p.launches[attn];
  const int64_t D = l.i("HEAD_DIM");
  const bool wg = backwardOnWgmma(deterministic) && (D == 64 || D == 128);
  const BackwardModuleSource src = backwardModuleSource(l, deterministic, wg);
  const std::string binary = compileCached(src.cuda, p.name + "_bwd", arch, diskCache, nullptr);
  CUmodule m = nullptr;
  drv.check(drv.cuModuleLoadData_(&m, binary.c_str()), "loading the backward kernels");
  std::map<std::string, CUfunction> fns;
  for (const std::string &name : src.kernels) {
    CUfunction f;
    drv.check(drv.cuModuleGetFunction_(&f, m, name.c_str()), ("finding kernel " + name).c_str());
    fns[name] = f;
  }
  bm.module = m;
  bm.functions = std::move(fns);
  bm.wgmma = wg;
  bm.keyWgs = src.keyWgs;
  bm.rowWgs = src.rowWgs;
  return bm;
}

void CompiledProgram::backward(const std::vector<DeviceTensor> &args, const DeviceTensor &dout,
                               const std::vector<DeviceTensor> &grads, const BackwardRequest &req,
                               CUstream stream) const {
  Driver &drv = Driver::get();
  drv.makeCurrent();
  if (grads.size() != 3)
    throw GpuError("backward writes dq, dk and dv: give 3 gradient buffers");
  const size_t ai = attentionLaunch(p, req);
  const Launch &l = p.launches[ai];
  const BackwardModule &bm = backwardKernels(ai, req.deterministic);
  const std::map<std::string, CUfunction> &fns = bm.functions;

  Run r(*this, functions, stream, nullptr);
  r.bindArgs(args);
  r.execute(0, ai); // the sets the attention reads

  const ValueInfo &qi = p.values[size_t(l.operands[0])], &ki = p.values[size_t(l.operands[1])],
                  &vi = p.values[size_t(l.operands[2])];
  const RtValue &q = r.value(l.operands[0]), &k = r.value(l.operands[1]),
                &v = r.value(l.operands[2]);
  if (k.S != v.S)
    throw GpuError("k and v have different lengths (" + std::to_string(k.S) + " and " +
                   std::to_string(v.S) + ")");
  // A caller's tensor shaped like `like` (batch and length; heads and head
  // dim are checked against the variant by Run::tensor).
  auto bind = [&](const DeviceTensor &t, const ValueInfo &info, const RtValue &like,
                  const char *name) {
    RtValue x = r.tensor(t, info, name);
    if (x.B != like.B || x.S != like.S)
      throw GpuError(std::string(name) + " has batch " + std::to_string(x.B) + " and length " +
                     std::to_string(x.S) + "; expected " + std::to_string(like.B) + " and " +
                     std::to_string(like.S) + " (the shape of " +
                     (&like == &q ? "q" : "k") + ")");
    return x;
  };

  dev::AttnBwdParams bp{};
  bp.f.q = detail::view(q), bp.f.k = detail::view(k), bp.f.v = detail::view(v);
  bp.dout = detail::view(bind(dout, qi, q, "dout"));
  bp.dq = detail::view(bind(grads[0], qi, q, "dq"));
  bp.dk = detail::view(bind(grads[1], ki, k, "dk"));
  bp.dv = detail::view(bind(grads[2], vi, v, "dv"));

  const detail::AttnOperands at = detail::attnOperands(l);
  const RtValue *bs = at.blocks >= 0 ? &r.value(l.operands[size_t(at.blocks)]) : nullptr;
  if (bs) {
    if (bs->list)
      throw GpuError("internal: block list '" + bs->name + "' reached the backward unnormalised");
    if (bs->Sq != q.S || bs->Skv != k.S)
      throw GpuError("the block set was built for other lengths");
    bp.f.blocks = detail::setView(*bs);
  }
  if (at.vslash >= 0) // binds bp.f.vs and gathers the kept columns' K / V per query head
    r.bindVSlash(l, r.value(l.operands[size_t(at.vslash)]), bp.f);
  const int nv = at.vslash >= 0 ? bp.f.vs.nv : 0;
  const bool queries = at.queries >= 0, lazyPass = lazyRowsAttend(l);
  if (queries) {
    const RtValue &qs = r.value(l.operands[size_t(at.queries)]);
    if (qs.kind != ValueKind::Queries || qs.B != q.B || qs.H != q.H || qs.S != q.S)
      throw GpuError("the query set was built for other shapes than this attention's q");
    bp.q_counts = reinterpret_cast<const int *>(qs.p0);
    bp.q_rows = reinterpret_cast<const int *>(qs.p1);
  }

  const int B = q.B, Hq = q.H, Sq = q.S, D = q.D, Hkv = k.H;
  // A contiguous 16-bit [B, Hq, rows, D] scratch tensor (a recomputed O,
  // the vertical-slash columns' dK / dV).
  auto scratch16 = [&](int rows) {
    return dev::Tensor4{reinterpret_cast<void *>(r.scratch(size_t(B) * Hq * rows * D * 2)),
                        int64_t(Hq) * rows * D,
                        int64_t(rows) * D,
                        D,
                        B,
                        Hq,
                        rows,
                        D};
  };
  auto go = [&](const char *name, int64_t gx, int gy, int gz, int threads, int smem,
                void *params) {
    if (gx <= 0 || gy <= 0 || gz <= 0)
      return;
    CUfunction f = fns.at(name);
    if (smem > 48 * 1024)
      drv.check(drv.cuFuncSetAttribute_(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem),
                "raising the shared-memory limit");
    void *kargs[] = {params};
    drv.check(drv.cuLaunchKernel_(f, unsigned(gx), unsigned(gy), unsigned(gz), unsigned(threads),
                                  1, 1, unsigned(smem), stream, kargs, nullptr),
              (std::string("launching ") + name).c_str());
  };
  const int64_t qTiles = bs ? int64_t(bs->nQB) * cdiv(l.i("SET_BQ"), dev::kAttnBwdTile)
                            : cdiv(Sq, dev::kAttnBwdTile);

  // O and LSE: the caller's, or the forward again with its LSE.
  if (req.out) {
    bp.f.o = detail::view(bind(*req.out, qi, q, "out"));
    const DeviceTensor &t = *req.lse;
    const std::vector<int64_t> shape{B, Hq, Sq}, strides{int64_t(Hq) * Sq, Sq, 1};
    // Row-major; a dimension of extent 1 may have any stride (views).
    bool dense = t.strides.size() == 3;
    for (size_t d = 0; dense && d < 3; ++d)
      dense = shape[d] == 1 || t.strides[d] == strides[d];
    if (t.elem != Elem::F32 || t.shape != shape || !dense || t.ptr % 4 != 0)
      throw GpuError("lse must be the forward's f32 [" + std::to_string(B) + ", " +
                     std::to_string(Hq) + ", " + std::to_string(Sq) +
                     "] log-sum-exp, contiguous");
    bp.f.lse = reinterpret_cast<float *>(t.ptr);
  } else {
    // The forward again (O and LSE in scratch); with lazy rows that attend,
    // once per pass: attn_bwd_split_rows picks each row's own.
    auto forward = [&](const char *kernel, int64_t tiles) {
      dev::AttnParams f = bp.f;
      f.o = scratch16(Sq);
      f.lse = reinterpret_cast<float *>(r.scratch(size_t(B) * Hq * Sq * 4));
      go(kernel, tiles, Hq, B, dev::kAttnMmaThreads, dev::attn_mma_smem_bytes(D, 64), &f);
      return f;
    };
    const dev::AttnParams f = forward("sattn_bwd_fwd", qTiles);
    bp.f.o = f.o, bp.f.lse = f.lse;
    if (lazyPass) {
      const dev::AttnParams fl = forward("sattn_bwd_fwd_lazy", cdiv(Sq, dev::kAttnBwdTile));
      bp.o_lazy = fl.o, bp.lse_lazy_src = fl.lse;
    }
  }

  const size_t rowFloats = size_t(B) * Hq * Sq * 4;
  bp.delta = reinterpret_cast<float *>(r.scratch(rowFloats));
  if (queries) { // split_rows writes delta and each pass's LSE
    bp.lse_active = reinterpret_cast<float *>(r.scratch(rowFloats));
    bp.lse_lazy = reinterpret_cast<float *>(r.scratch(rowFloats));
  }
  go(queries ? "sattn_bwd_split_rows" : "sattn_bwd_delta", cdiv(Sq, dev::kAttnBwdDeltaRows), Hq,
     B, 32 * dev::kAttnBwdDeltaRows, 0, &bp);
  if (queries)
    bp.f.lse = bp.lse_active;
  if (bs) {
    // Count, prefix-sum, fill: the transposed lists take no more room than
    // the set's own index array (B x heads x nQB x cap).
    const size_t cols = size_t(bs->B) * bs->H * bs->nKB;
    if (int64_t(bs->nQB) * std::max(bp.f.blocks.cap, 1) > INT32_MAX) // t_offsets are int
      throw GpuError("backward: one head's block set holds more than 2^31 entries (" +
                     std::to_string(bs->nQB) + " query blocks x " +
                     std::to_string(bp.f.blocks.cap) + "); use larger blocks");
    bp.t_counts = reinterpret_cast<int *>(r.scratch(cols * 4));
    bp.t_offsets = reinterpret_cast<int *>(r.scratch(cols * 4));
    bp.t_rows = reinterpret_cast<int *>(
        r.scratch(size_t(bs->B) * bs->H * bs->nQB * size_t(std::max(bp.f.blocks.cap, 1)) * 4));
    const int64_t tx = cdiv(bs->nKB, dev::kAttnBwdTransposeThreads);
    bp.t_fill = 0;
    go("sattn_bwd_transpose", tx, bs->H, bs->B, dev::kAttnBwdTransposeThreads, 0, &bp);
    go("sattn_bwd_transpose_scan", bs->H, bs->B, 1, dev::kAttnBwdTransposeThreads, 0, &bp);
    bp.t_fill = 1;
    go("sattn_bwd_transpose", tx, bs->H, bs->B, dev::kAttnBwdTransposeThreads, 0, &bp);
  }
  if (!req.deterministic) {
    const size_t n = size_t(B) * Hq * Sq * D;
    CUdeviceptr acc = r.scratch(n * 4);
    if (n)
      drv.check(drv.cuMemsetD32Async_(acc, 0, n, stream), "clearing the dQ accumulator");
    bp.dq_accum = reinterpret_cast<float *>(acc);
  }
  const bool wg = bm.wgmma; // as the module was built (launch shapes must match)
  const int kw = bm.keyWgs, cta = dev::kAttnBwdTile * kw; // keys per dK/dV CTA
  // Two warpgroups in the atomic mode add their dQ tiles by TMA reductions
  // (DkDv::reduce_dq): 4-10 % faster than red.global on an H100
  // (docs/performance.md, 2026-12-07 tenth). SATTN_BACKWARD_DQ_TMA=0 keeps
  // red.global, as do maps the driver cannot encode.
  const char *tmaEnv = std::getenv("SATTN_BACKWARD_DQ_TMA");
  if (!req.deterministic && wg && kw > 1 && Sq > 0 && !(tmaEnv && std::string(tmaEnv) == "0"))
    bp.dq_tma = encodeDqAccumTma(drv.cuTensorMapEncodeTiled_, bp.dq_accum, int64_t(B) * Hq, Sq,
                                 int(D), dev::kAttnBwdTile, bp.tdq)
                    ? 1
                    : 0;
  const int64_t kTiles = bs ? int64_t(bs->nKB) * cdiv(l.i("SET_BK"), cta) : cdiv(k.S, cta);
  const int dkdvSmem = wg ? dev::attn_bwd_dkdv_wg_smem_bytes(D, !req.deterministic, kw)
                          : dev::attn_bwd_dkdv_smem_bytes(D);
  // With TMA dQ reductions the dK/dV launch adds the staging tiles.
  const int dkdvMainSmem = bp.dq_tma ? dev::attn_bwd_dq_stage_smem_bytes(int(D), kw) : dkdvSmem;
  const int rw = bm.rowWgs, dqRows = dev::kAttnBwdTile * rw; // query rows per dQ CTA
  const int64_t dqTiles = bs ? int64_t(bs->nQB) * cdiv(l.i("SET_BQ"), dqRows) : cdiv(Sq, dqRows);
  const int dqSmem =
      wg ? dev::attn_bwd_dq_wg_smem_bytes(D, rw) : dev::attn_bwd_dq_smem_bytes(D);
  go("sattn_bwd_dkdv", kTiles, Hkv, B, dev::kAttnBwdThreads * kw, dkdvMainSmem, &bp);
  if (nv > 0) { // vertical-slash columns: dK / dV per query head, then added at their keys
    bp.dkc = scratch16(nv);
    bp.dvc = scratch16(nv);
    // (vertical-slash sets keep one warpgroup per CTA: dkdvSmem fits)
    go("sattn_bwd_dkdv_cols", cdiv(nv, dev::kAttnBwdTile), Hq, B, dev::kAttnBwdThreads, dkdvSmem,
       &bp);
    for (bp.vs_head = 0; bp.vs_head < Hq / Hkv; ++bp.vs_head) // fixed order over a group
      go("sattn_bwd_vs_scatter", cdiv(int64_t(nv) * D / 2, 256), Hkv, B, 256, 0, &bp);
  }
  if (req.deterministic)
    go("sattn_bwd_dq", dqTiles, Hq, B, dev::kAttnBwdThreads * rw, dqSmem, &bp);
  if (lazyPass) { // the lazy rows' path, added to the active pass's gradients
    bp.f.lse = bp.lse_lazy;
    bp.accumulate = 1;
    bp.dq_tma = 0; // launched with dkdvSmem: no staging tiles
    go("sattn_bwd_dkdv_lazy", cdiv(k.S, cta), Hkv, B, dev::kAttnBwdThreads * kw, dkdvSmem, &bp);
    if (req.deterministic)
      go("sattn_bwd_dq_lazy", cdiv(Sq, dqRows), Hq, B, dev::kAttnBwdThreads * rw, dqSmem,
         &bp);
  }
  if (!req.deterministic)
    go("sattn_bwd_dq_convert", cdiv(int64_t(Sq) * D / 2, 256), Hq, B, 256, 0, &bp);
}

} // namespace sattn::gpu
