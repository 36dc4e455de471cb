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

namespace sattn::gpu::detail {

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
  const int nd = last + dev::kVsKeys - 1;
  p.stats = reinterpret_cast<float *>(alloc(heads * p.nTiles * n * 2 * 4));
  p.lse2 = reinterpret_cast<float *>(alloc(heads * n * 4));
  p.vert = reinterpret_cast<float *>(alloc(heads * k.S * 4));
  p.slash = reinterpret_cast<float *>(alloc(heads * k.S * 4));
  p.part = reinterpret_cast<float *>(alloc(heads * p.nTiles * nd * 4));
  p.picks = reinterpret_cast<unsigned char *>(alloc(heads * 2 * out.nKB));
  p.aware_flag = reinterpret_cast<int *>(alloc(heads * 4));
  const unsigned tileSmem = unsigned(dev::vs_tile_smem_bytes(D, last));
  const unsigned B = unsigned(qAll.B), H = unsigned(Hq), T = dev::kVsThreads;
  goNamed(l.kernel + "_stats", unsigned(p.nTiles), H, B, T, tileSmem, &p);
  goNamed(l.kernel + "_lse", unsigned(cdiv(n, T)), H, B, T, 0, &p);
  goNamed(l.kernel + "_lines", unsigned(p.nTiles), H, B, T, tileSmem, &p);
  goNamed(l.kernel + "_slash", unsigned(cdiv(k.S, T)), H, B, T, 0, &p);
  goNamed(l.kernel + "_pick", H, B, 1, dev::kVsPickThreads, unsigned(pickSmem), &p);
  go(l, unsigned(out.nQB), H, B, T, unsigned(out.nKB), &p);
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
