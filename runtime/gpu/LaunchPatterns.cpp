//===- LaunchPatterns.cpp - launchers of the FlexPrefill device kernels ---===//
//
// Run's launchers for codegen/device/vertical_slash.cuh: sattn.vertical_slash
// (six phases: stats, LSE, lines, slash, picks, rows), and for
// select_head.cuh: select_blocks `per head` (a radix select in four passes,
// ties, rows). Each phase is a companion kernel of the launch
// (codegen::companionKernels); workspace is allocated in stream order.
//
//===----------------------------------------------------------------------===//
#include "runtime/gpu/Run.h"

#include "codegen/device/select_head.cuh"
#include "codegen/device/vertical_slash.cuh"
#include "codegen/device/vslash.cuh"

namespace sattn::gpu::detail {

/// The line phases shared by vertical_slash and vslash (_stats, _lse,
/// _lines, _slash): p.q holds the last rows, p.k the keys, p.nTiles set;
/// fills p.vert / p.slash with their workspace.
void Run::launchLines(const Launch &l, dev::VsParams &p, int B, int Hq, int D, int last) {
  const size_t heads = size_t(B) * Hq;
  const int n = p.q.S, Skv = p.k.S, nd = last + dev::kVsKeys - 1;
  p.stats = reinterpret_cast<float *>(alloc(heads * p.nTiles * n * 2 * 4));
  p.lse2 = reinterpret_cast<float *>(alloc(heads * n * 4));
  p.vert = reinterpret_cast<float *>(alloc(heads * Skv * 4));
  p.slash = reinterpret_cast<float *>(alloc(heads * Skv * 4));
  p.part = reinterpret_cast<float *>(alloc(heads * p.nTiles * nd * 4));
  const unsigned tileSmem = unsigned(dev::vs_tile_smem_bytes(D, last));
  const unsigned gb = unsigned(B), H = unsigned(Hq), T = dev::kVsThreads;
  goNamed(l.kernel + "_stats", unsigned(p.nTiles), H, gb, T, tileSmem, &p);
  goNamed(l.kernel + "_lse", unsigned(cdiv(n, T / 32)), H, gb, T, 0, &p);
  goNamed(l.kernel + "_lines", unsigned(p.nTiles), H, gb, T, tileSmem, &p);
  goNamed(l.kernel + "_slash", unsigned(cdiv(Skv, T)), H, gb, T, 0, &p);
}

/// vertical_slash: operands q, k, then (AWARE) the aware set and the
/// block-mean keys.
void Run::launchVerticalSlash(const Launch &l) {
  auto op = [&](size_t i) -> RtValue & { return vals[l.operands.at(i)]; };
  const RtValue &qAll = op(0), &k = op(1);
  const int D = int(l.i("HEAD_DIM")), Hq = int(l.i("HEADS")), last = int(l.i("LAST"));
  const bool aware = l.b("AWARE");
  if (D % 16 != 0 || D > 256)
    throw GpuError("sattn.vertical_slash on the GPU needs a head dim that is a multiple of 16 up "
                   "to 256; this variant has " +
                   std::to_string(D) + " (run it with --device=cpu)");
  if (qAll.B != k.B)
    throw GpuError("sattn.vertical_slash: q has batch " + std::to_string(qAll.B) +
                   " but k has batch " + std::to_string(k.B));
  RtValue q = observationRows(qAll, last);
  dev::VsParams p{};
  p.q = view(q), p.k = view(k);
  p.Sq = qAll.S;
  p.nTiles = int(cdiv(k.S, dev::kVsKeys));
  RtValue out = blockSet(plan.values[l.results[0]], qAll.B, qAll.S, k.S, 0);
  p.nQB = out.nQB, p.nKB = out.nKB;
  p.out = setView(out);
  vals[l.results[0]] = out;
  if (aware) {
    const RtValue &qa = op(2), &kp = op(3);
    if (qa.list)
      throw GpuError("sattn.vertical_slash: the aware set '" + qa.name +
                     "' is a user list; compute it in the variant (select_blocks per head)");
    if (qa.B != qAll.B || qa.H != Hq || qa.nQB != out.nQB || qa.nKB != out.nKB)
      throw GpuError("sattn.vertical_slash: the aware set does not match q and k's blocks");
    if (kp.B != k.B || kp.S != out.nKB || kp.D != D || kp.ss != kp.D ||
        kp.sh != int64_t(kp.S) * kp.D || kp.sb != int64_t(kp.H) * kp.S * kp.D)
      throw GpuError("sattn.vertical_slash: the block-mean keys must be a contiguous f32 [B, " +
                     std::to_string(k.H) + ", " + std::to_string(out.nKB) + ", " +
                     std::to_string(D) + "] tensor");
    p.aware = setView(qa);
    p.kp = reinterpret_cast<const float *>(kp.p0);
  }
  const int n = q.S;
  const size_t heads = size_t(qAll.B) * Hq;
  if (n == 0 || k.S == 0) {
    drv.check(drv.cuMemsetD32Async_(out.p0, 0, heads * out.nQB, stream), "clearing the block set");
    return;
  }
  const long long pickSmem = dev::vs_pick_smem_bytes(out.nKB, D);
  if (pickSmem > kMaxSmemPerSm)
    throw GpuError("sattn.vertical_slash: Skv = " + std::to_string(k.S) + " gives " +
                   std::to_string(out.nKB) +
                   " KV blocks, more than the selection phase's "
                   "shared memory holds; use larger KV blocks");
  p.picks = reinterpret_cast<unsigned char *>(alloc(heads * 2 * out.nKB));
  p.aware_flag = reinterpret_cast<int *>(alloc(heads * 4));
  launchLines(l, p, qAll.B, Hq, D, last);
  const unsigned B = unsigned(qAll.B), H = unsigned(Hq);
  goNamed(l.kernel + "_pick", H, B, 1, dev::kVsPickThreads, unsigned(pickSmem), &p);
  go(l, unsigned(out.nQB), H, B, dev::kVsThreads, unsigned(out.nKB), &p);
}

/// vslash: operands q, k. The set is one allocation: cols [B, Hq, nv], then
/// the interval counts [B, Hq], then the intervals [B, Hq, ns, 2]
/// (RtValue: p0 cols, p1 intervals, nQB = nv, cap = ns, nKB = bq).
void Run::launchVSlash(const Launch &l) {
  auto op = [&](size_t i) -> RtValue & { return vals[l.operands.at(i)]; };
  const RtValue &qAll = op(0), &k = op(1);
  const int D = int(l.i("HEAD_DIM")), Hq = int(l.i("HEADS")), last = int(l.i("LAST"));
  if (D % 16 != 0 || D > 256)
    throw GpuError("sattn.vslash on the GPU needs a head dim that is a multiple of 16 up to 256; "
                   "this variant has " +
                   std::to_string(D) + " (run it with --device=cpu)");
  if (qAll.B != k.B)
    throw GpuError("sattn.vslash: q has batch " + std::to_string(qAll.B) + " but k has batch " +
                   std::to_string(k.B));
  const int Skv = k.S;
  auto kept = [&](const char *count, const char *forced) {
    return int(std::min<int64_t>(Skv, std::max(l.i(count), l.i(forced))));
  };
  const int nv = kept("VERTICAL", "SINK_COLUMNS"), ns = kept("SLASH", "LOCAL_SLASHES");
  const size_t heads = size_t(qAll.B) * Hq;
  RtValue out;
  out.kind = ValueKind::VSlash;
  out.B = qAll.B, out.H = Hq, out.Sq = qAll.S, out.Skv = Skv;
  out.nQB = nv, out.cap = ns, out.nKB = int(l.i("BQ"));
  out.p0 = alloc((heads * nv + heads) * 4);
  out.p1 = alloc(heads * size_t(std::max(ns, 1)) * 2 * 4);
  vals[l.results[0]] = out;
  int *counts = reinterpret_cast<int *>(out.p0) + heads * nv;
  RtValue q = observationRows(qAll, last);
  if (q.S == 0 || Skv == 0) {
    drv.check(drv.cuMemsetD32Async_(CUdeviceptr(counts), 0, heads, stream),
              "clearing the vertical-slash set");
    return;
  }
  dev::VsParams p{};
  p.q = view(q), p.k = view(k);
  p.Sq = qAll.S;
  p.nTiles = int(cdiv(Skv, dev::kVsKeys));
  p.cols = reinterpret_cast<int *>(out.p0);
  p.ivl_count = counts;
  p.ivl = reinterpret_cast<int *>(out.p1);
  p.dlist = reinterpret_cast<int *>(alloc(heads * ns * 4));
  p.nv = nv, p.ns = ns;
  launchLines(l, p, qAll.B, Hq, D, last);
  go(l, unsigned(Hq), unsigned(qAll.B), 1, dev::kVsPickThreads, 0, &p);
}

void Run::bindVSlash(const Launch &l, const RtValue &vs, dev::AttnParams &p) {
  const dev::Tensor4 &q = p.q;
  if (vs.kind != ValueKind::VSlash || vs.B != q.B || vs.H != q.H || vs.Sq != q.S ||
      vs.Skv != p.k.S)
    throw GpuError("the vertical-slash set was built for other shapes than this attention's q, k");
  if (vs.nKB != int(l.i("VS_BQ"))) // the set's query block (RtValue::nKB for VSlash values)
    throw GpuError("internal: the vertical-slash set has query blocks of " + std::to_string(vs.nKB) +
                   " rows but the attention was compiled for " + std::to_string(l.i("VS_BQ")));
  const size_t heads = size_t(q.B) * q.H, rows = std::max(vs.nQB, 1);
  p.vs.cols = reinterpret_cast<const int *>(vs.p0);
  p.vs.ivl_count = p.vs.cols + heads * vs.nQB;
  p.vs.ivl = reinterpret_cast<const int *>(vs.p1);
  p.vs.nv = vs.nQB, p.vs.ivCap = vs.cap;
  p.vs.kc = reinterpret_cast<void *>(alloc(heads * rows * q.D * 2));
  p.vs.vc = reinterpret_cast<void *>(alloc(heads * rows * q.D * 2));
  goNamed(l.kernel + "_vsgather", unsigned(cdiv(int64_t(vs.nQB) * q.D / 8, dev::kVsGatherThreads)),
          unsigned(q.H), unsigned(q.B), dev::kVsGatherThreads, 0, &p);
}

ref::VSlashSet Run::hostVSlashSet(const RtValue &v) {
  ref::VSlashSet s;
  s.B = v.B, s.H = v.H, s.Sq = v.Sq, s.Skv = v.Skv, s.bq = v.nKB;
  const size_t heads = size_t(v.B) * v.H;
  auto cols = download<int>(v.p0, heads * v.nQB + heads);
  auto ivl = download<int>(v.p1, heads * size_t(std::max(v.cap, 1)) * 2);
  s.columns.resize(heads), s.intervals.resize(heads);
  for (size_t bh = 0; bh < heads; ++bh) {
    s.columns[bh].assign(cols.begin() + bh * v.nQB, cols.begin() + (bh + 1) * v.nQB);
    const int n = std::min(std::max(cols[heads * v.nQB + bh], 0), v.cap);
    for (int x = 0; x < n; ++x)
      s.intervals[bh].emplace_back(ivl[(bh * v.cap + x) * 2], ivl[(bh * v.cap + x) * 2 + 1]);
  }
  return s;
}

/// select_blocks cumulative per head: operand the scores.
void Run::launchSelectHead(const Launch &l) {
  const RtValue &s = vals[l.operands.at(0)];
  dev::SelectParams p{};
  p.scores = reinterpret_cast<const float *>(s.p0);
  p.B = s.B, p.H = s.H, p.nQB = s.nQB, p.nKB = s.nKB, p.Sq = s.Sq, p.Skv = s.Skv;
  p.k = -1;
  if (int64_t(s.nQB) * s.nKB > INT32_MAX)
    throw GpuError("sattn.select_blocks per head: " + std::to_string(s.nQB) + " x " +
                   std::to_string(s.nKB) +
                   " blocks exceed the 2^31 entries one head may have; "
                   "use larger blocks");
  RtValue out = blockSet(plan.values[l.results[0]], s.B, s.Sq, s.Skv, 0);
  p.out = setView(out);
  vals[l.results[0]] = out;
  // The radix select of select_head.cuh: four passes of (histograms per
  // chunk, next 8 bits per head), then the ties, then the rows.
  const size_t heads = size_t(s.B) * s.H;
  p.nChunks = dev::sel_head_chunks(int64_t(s.nQB) * s.nKB);
  p.cut = reinterpret_cast<int *>(alloc(heads * 2 * 4));
  p.hmass = reinterpret_cast<double *>(alloc(heads * p.nChunks * dev::kSelHeadStride * 8));
  p.hcount = reinterpret_cast<int *>(alloc(heads * p.nChunks * dev::kSelHeadBins * 4));
  p.hstate = reinterpret_cast<double *>(alloc(heads * 4 * 8));
  p.istate = reinterpret_cast<int *>(alloc(heads * 4 * 4));
  const unsigned nc = unsigned(p.nChunks), H = unsigned(s.H), B = unsigned(s.B);
  for (p.pass = 0; p.pass < dev::kSelHeadPasses; ++p.pass) {
    goNamed(l.kernel + "_hist", nc, H, B, dev::kSelHeadThreads, 0, &p);
    goNamed(l.kernel + "_digit", H, B, 1, dev::kSelHeadThreads, 0, &p);
  }
  goNamed(l.kernel + "_tie", nc, H, B, dev::kSelHeadThreads, 0, &p);
  goNamed(l.kernel + "_tielast", H, B, 1, dev::kSelHeadThreads, 0, &p);
  go(l, unsigned(s.nQB), H, B, dev::kVsThreads, 0, &p);
}

} // namespace sattn::gpu::detail
