//===- LaunchOmniSparse.cpp - launchers of the OmniSparse device kernels --===//
//
// Run's launchers for codegen/device/decode.cuh (decode_attn, kv_slim_lse),
// kv_slim.cuh (kv_slim_scores, kv_slim_select) and classify.cuh
// (classify_queries): shapes checked against the values bound so far,
// workspace (split partials, merge counters, lazy flags) allocated in
// stream order, grids as the headers' launch contracts say.
//
//===----------------------------------------------------------------------===//
#include "runtime/gpu/Run.h"

#include "codegen/device/classify.cuh"
#include "codegen/device/decode.cuh"
#include "codegen/device/kv_slim.cuh"
#include "runtime/gpu/AttnTma.h"

namespace sattn::gpu::detail {

/// Splits of the cache length for `base` (batch, KV head, row group)
/// rows of `tiles` key tiles each, with `slots` CTAs resident at once:
/// about two waves of CTAs, but at least 16 tiles per CTA, since each
/// split adds a partial to write and merge. Measured on an H100 (GQA
/// 32/8, D = 128, 32k keys; docs/performance.md): batch 1 best at 32
/// splits (16 tiles each), batch 16 at 4; a wave-count cost model that
/// allowed 100+ tiny splits was 1.5x slower.
int64_t Run::decodeSplits(int64_t base, int64_t tiles, int64_t slots) {
  if (base <= 0)
    return 1;
  int64_t s = std::min(cdiv(2 * slots, base), std::max<int64_t>(1, tiles / 16));
  return std::clamp<int64_t>(s, 1, dev::kDecodeMaxSplits);
}

/// Splits with TMA loads (measured on an H200, GQA 32/8, D = 128, 32k and
/// 128k keys; docs/performance.md 2026-12-04): about one CTA per SM, each
/// with a deep ring, beats more, shallower CTAs, whose partials also cost a
/// merge: batch 1 best at 16 splits (8 KV heads x 16 = 128 CTAs), batch 16
/// at 1-2. At least 8 key tiles per CTA.
int64_t Run::decodeSplitsTma(int64_t base, int64_t tiles, int64_t sms) {
  if (base <= 0)
    return 1;
  int64_t s = sms / base; // CTAs <= SMs: one each
  return std::clamp<int64_t>(std::min(s, tiles / 8), 1, dev::kDecodeMaxSplits);
}

/// The observation rows of kv_slim: the last min(observe, Sq) rows of q.
RtValue Run::observationRows(const RtValue &q, int64_t observe) {
  RtValue o = q;
  int w = int(std::min<int64_t>(observe, q.S));
  o.p0 = q.p0 + CUdeviceptr(int64_t(q.S - w) * q.ss * 2);
  o.S = w;
  return o;
}

/// Sets p.tma and the maps of `k` (and `v`) when the decode may load its
/// dense rows by TMA: Hopper or later, head dim a multiple of 64, views TMA
/// can describe. SATTN_DECODE_TMA=0 turns it off (A/B experiments).
void Run::decodeTma(dev::DecodeParams &p, const dev::Tensor4 &k, const dev::Tensor4 *v) {
  p.tma = 0;
  const char *env = std::getenv("SATTN_DECODE_TMA");
  if (drv.major() < 9 || k.D % 64 != 0 || (env && std::string(env) == "0"))
    return;
  bool fp16 = plan.dtype == "fp16";
  auto encode = drv.cuTensorMapEncodeTiled_;
  if (encodeAttnTma(encode, k, fp16, dev::kDecodeKeyTile, p.tk) &&
      (!v || encodeAttnTma(encode, *v, fp16, dev::kDecodeKeyTile, p.tv)))
    p.tma = 1;
}

/// decode_attn (sattn.decode_attention) and kv_slim_lse (kv_slim phase 1).
void Run::launchDecode(const Launch &l) {
  const bool slim = l.deviceTemplate == "kv_slim_lse";
  auto op = [&](size_t i) -> RtValue & { return vals[l.operands.at(i)]; };
  const int D = int(l.i("HEAD_DIM")), Hkv = int(l.i("KV_HEADS"));
  const char *what = slim ? "sattn.kv_slim" : "sattn.decode_attention";
  if (!dev::decode_supported(D))
    throw GpuError(std::string(what) +
                   " on the GPU needs a head dim that is a multiple of 16 in "
                   "[16, 256]; this variant has " +
                   std::to_string(D) + " (run it with --device=cpu)");
  RtValue q = slim ? observationRows(op(0), l.i("OBSERVE")) : op(0);
  if (!slim && slimCache) {
    launchDecodeSlimmed(l, q);
    return;
  }
  const RtValue &k = op(1);
  dev::DecodeParams p{};
  p.q = view(q), p.k = view(k);
  size_t next = slim ? 2 : 3;
  if (!slim) {
    const RtValue &v = op(2);
    if (v.S != k.S || v.B != k.B)
      throw GpuError("the decode cache's k and v have different shapes");
    p.v = view(v);
  }
  const bool paged = l.b("PAGED"), hasTok = l.b("HAS_TOKENS");
  p.Skv = k.S;
  int64_t maxEntries = k.S;
  if (!paged && k.B != q.B)
    throw GpuError("q has batch " + std::to_string(q.B) + " but the cache has batch " +
                   std::to_string(k.B));
  if (hasTok) {
    const RtValue &ts = op(next++);
    if (ts.kind != ValueKind::Tokens || ts.B != q.B || ts.H != Hkv)
      throw GpuError("the token set has batch " + std::to_string(ts.B) + " and " +
                     std::to_string(ts.H) + " heads; the decode needs batch " +
                     std::to_string(q.B) + " and " + std::to_string(Hkv) + " KV heads");
    if (!paged && ts.S != k.S)
      throw GpuError("the token set was built for " + std::to_string(ts.S) +
                     " cached tokens but the cache holds " + std::to_string(k.S) +
                     "; rebuild it for this cache");
    p.tok_counts = reinterpret_cast<const int *>(ts.p0);
    p.tok_idx = reinterpret_cast<const int *>(ts.p1);
    p.tok_cap = ts.S;
    maxEntries = ts.S;
  }
  if (paged) {
    const RtValue &table = op(next++), &lens = op(next++);
    if (table.shape.size() != 2 || table.i64 || table.shape[0] != q.B ||
        (table.shape[1] > 1 && table.strides[1] != 1))
      throw GpuError("page_table must be int32 [B, maxPages] with B = " + std::to_string(q.B) +
                     " and a contiguous last dimension");
    if (lens.shape.size() != 1 || lens.i64 || lens.shape[0] != q.B || lens.strides[0] != 1)
      throw GpuError("seq_lens must be a contiguous int32 [B] with B = " + std::to_string(q.B));
    p.page_table = reinterpret_cast<const int *>(table.p0);
    p.pt_sb = table.strides[0];
    p.seq_lens = reinterpret_cast<const int *>(lens.p0);
    p.page = k.S; // pages [P, Hkv, page, D]
    if (!hasTok)
      maxEntries = table.shape[1] * int64_t(k.S);
  }
  if (!paged && !hasTok)
    decodeTma(p, p.k, slim ? nullptr : &p.v);
  decodeOutputs(l, q, p, maxEntries, slim);
}

/// decode_attn over a slimmed cache (Program::decode): the cache's dense
/// per-head rows replace k, v and the token set.
void Run::launchDecodeSlimmed(const Launch &l, const RtValue &q) {
  const SlimStorage &c = *slimCache;
  const int D = int(l.i("HEAD_DIM")), Hkv = int(l.i("KV_HEADS"));
  if (q.B != c.batch)
    throw GpuError("q has batch " + std::to_string(q.B) + " but the slimmed cache has batch " +
                   std::to_string(c.batch));
  if (c.kvHeads != Hkv || c.dim != D || c.elem != plan.values[l.operands[1]].elem)
    throw GpuError("the slimmed cache was built by another variant (" + std::to_string(c.kvHeads) +
                   " KV heads, head dim " + std::to_string(c.dim) + ", " + elemName(c.elem) +
                   "); this decode needs " + std::to_string(Hkv) + ", " + std::to_string(D) + ", " +
                   elemName(plan.values[l.operands[1]].elem));
  int64_t longest = 0, total = 0;
  for (int64_t n : c.lengths)
    longest = std::max(longest, n), total += n;
  dev::DecodeParams p{};
  p.q = view(q);
  p.k = dev::Tensor4{reinterpret_cast<void *>(c.k), 0, 0, D, c.batch, Hkv, int(longest), D};
  p.v = dev::Tensor4{reinterpret_cast<void *>(c.v), 0, 0, D, c.batch, Hkv, int(longest), D};
  p.Skv = int(longest);
  p.rag_off = reinterpret_cast<const dev::i64 *>(c.off);
  p.rag_len = reinterpret_cast<const int *>(c.len);
  // One map over all rows ([1, 1, rows, D]); the kernel adds each head's offset.
  const int rows = int(std::max<int64_t>(1, c.rows()));
  dev::Tensor4 km{
      reinterpret_cast<void *>(c.k), int64_t(rows) * D, int64_t(rows) * D, D, 1, 1, rows, D};
  dev::Tensor4 vm = km;
  vm.ptr = reinterpret_cast<void *>(c.v);
  decodeTma(p, km, &vm);
  decodeOutputs(l, q, p, longest, false, total);
}

/// The split-KV workspace and outputs of a decode launch, then the launch.
void Run::decodeOutputs(const Launch &l, const RtValue &q, dev::DecodeParams &p, int64_t maxEntries,
                        bool slim, int64_t totalEntries) {
  const int D = int(l.i("HEAD_DIM")), Hq = int(l.i("HEADS")), Hkv = int(l.i("KV_HEADS"));
  int rowGroups = int(cdiv(int64_t(Hq / Hkv) * q.S, dev::kDecodeRows));
  if (q.S == 0 || q.B == 0)
    rowGroups = 0;
  int64_t base = int64_t(q.B) * Hkv * rowGroups;
  int64_t tiles = std::max<int64_t>(1, cdiv(maxEntries, dev::kDecodeKeyTile));
  const int64_t sms = drv.multiprocessors();
  // Heads of unequal length (a slimmed cache): every head is cut into the
  // same number of chunks, so cut the longest to about one SM's share of
  // all the work; the shorter heads' CTAs finish early and free their slots.
  int64_t splits;
  if (totalEntries > 0 && base > 0) {
    int64_t share = std::max<int64_t>(1, totalEntries * (base / (int64_t(q.B) * Hkv)) / sms);
    splits = std::clamp<int64_t>(
        cdiv(maxEntries, share), 1,
        std::max<int64_t>(1, std::min<int64_t>(tiles / 8, dev::kDecodeMaxSplits)));
  } else {
    splits = p.tma ? decodeSplitsTma(base, tiles, sms) : decodeSplits(base, tiles, 2 * sms);
  }
  // Experiments only (bench/kernels): force the split count / ring depth.
  if (const char *env = std::getenv("SATTN_DECODE_SPLITS"); env && *env)
    splits =
        std::clamp<int64_t>(std::atoll(env), 1, std::min<int64_t>(tiles, dev::kDecodeMaxSplits));
  p.splits = int(splits), p.row_groups = rowGroups;
  int smem = dev::decode_smem_bytes(D);
  if (p.tma) {
    // One CTA per SM takes the deepest ring that fits, two share the SM.
    const int perSm = base * splits > sms ? 2 : 1;
    const int budget = kMaxSmemPerSm / perSm - 1024 - 8 * dev::kDecodeMaxTmaStages;
    p.stages =
        std::clamp(budget / dev::decode_tma_stage_bytes(D), 2, int(dev::kDecodeMaxTmaStages));
    if (const char *env = std::getenv("SATTN_DECODE_STAGES"); env && *env)
      p.stages = std::clamp(std::atoi(env), 2, int(dev::kDecodeMaxTmaStages));
    smem = std::max(smem, dev::decode_tma_smem_bytes(D, p.stages));
  }
  if (splits > 1) {
    p.part_o = reinterpret_cast<float *>(
        alloc(size_t(base * splits) * dev::kDecodeRows * (slim ? 1 : size_t(D)) * 4));
    p.part_lse = reinterpret_cast<float *>(alloc(size_t(base * splits) * dev::kDecodeRows * 4));
    CUdeviceptr done = alloc(size_t(base) * 4);
    drv.check(drv.cuMemsetD32Async_(done, 0, size_t(base), stream), "clearing the merge counters");
    p.done = reinterpret_cast<int *>(done);
  }
  if (slim) {
    RtValue lse;
    lse.kind = ValueKind::Lse, lse.B = q.B, lse.H = Hq, lse.S = q.S;
    lse.p0 = alloc(size_t(q.B) * Hq * q.S * 4);
    p.lse = reinterpret_cast<float *>(lse.p0);
    vals[l.results[0]] = lse;
  } else {
    RtValue o = outTensor(l.results[0], q, Hq);
    p.o = view(o);
    vals[l.results[0]] = o;
    if (l.b("HAS_LSE")) {
      RtValue lse;
      lse.kind = ValueKind::Lse, lse.B = q.B, lse.H = Hq, lse.S = q.S;
      lse.p0 = lseBuffer(l.results[1], q.B, Hq, q.S);
      p.lse = reinterpret_cast<float *>(lse.p0);
      vals[l.results[1]] = lse;
    }
  }
  go(l, unsigned(splits), unsigned(Hkv * rowGroups), unsigned(q.B), dev::kDecodeThreads,
     unsigned(smem), &p, /*maxCarveout=*/true);
}

/// kv_slim_scores and kv_slim_select (kv_slim phases 2 and 3).
void Run::launchSlim(const Launch &l) {
  auto op = [&](size_t i) -> RtValue & { return vals[l.operands.at(i)]; };
  const int D = int(l.i("HEAD_DIM")), Hkv = int(l.i("KV_HEADS"));
  const RtValue &k = op(1);
  if (l.deviceTemplate == "kv_slim_scores") {
    RtValue q = observationRows(op(0), l.i("OBSERVE"));
    const RtValue &lse = vals[l.operands.back()];
    RtValue sc;
    sc.kind = ValueKind::Lse, sc.B = k.B, sc.H = Hkv, sc.S = k.S;
    sc.p0 = alloc(size_t(k.B) * Hkv * k.S * 4);
    dev::SlimScoresParams p{view(q), view(k), reinterpret_cast<const float *>(lse.p0),
                            reinterpret_cast<float *>(sc.p0)};
    vals[l.results[0]] = sc;
    go(l, unsigned(cdiv(k.S, dev::kSlimKeys)), unsigned(Hkv), unsigned(k.B), dev::kSlimThreads,
       unsigned(dev::slim_scores_smem_bytes(D)), &p);
    return;
  }
  const RtValue &sc = vals[l.operands.back()];
  dev::SlimSelectParams p{};
  p.score = reinterpret_cast<const float *>(sc.p0);
  p.Skv = k.S;
  if (l.b("HAS_SEGMENTS")) {
    const RtValue &seg = op(2);
    if (seg.shape.size() != 3 || seg.shape[0] != k.B || seg.shape[2] != 2 || seg.strides[2] != 1)
      throw GpuError("segments must be [B, nSegments, 2] [start, end) pairs with B = " +
                     std::to_string(k.B) + " and a contiguous last dimension");
    p.segments = reinterpret_cast<const void *>(seg.p0);
    p.seg_sb = seg.strides[0], p.seg_sr = seg.strides[1], p.nSeg = int(seg.shape[1]);
  }
  RtValue ts;
  ts.kind = ValueKind::Tokens, ts.B = k.B, ts.H = Hkv, ts.S = k.S;
  ts.p0 = alloc(size_t(k.B) * Hkv * 4);
  ts.p1 = alloc(size_t(k.B) * Hkv * std::max(k.S, 1) * 4);
  p.tok_counts = reinterpret_cast<int *>(ts.p0);
  p.tok_idx = reinterpret_cast<int *>(ts.p1);
  vals[l.results[0]] = ts;
  go(l, unsigned(Hkv), unsigned(k.B), 1, dev::kSlimSelectThreads, 0, &p);
}

/// classify_queries (sattn.classify_queries after the pool of K).
void Run::launchClassify(const Launch &l) {
  auto op = [&](size_t i) -> RtValue & { return vals[l.operands.at(i)]; };
  const RtValue &q = op(0), &k = op(1), &kp = op(2);
  const int Hq = int(l.i("HEADS"));
  RtValue qs;
  qs.kind = ValueKind::Queries, qs.B = q.B, qs.H = Hq, qs.S = q.S;
  size_t rows = size_t(q.B) * Hq;
  qs.p0 = alloc(rows * 4);
  qs.p1 = alloc(rows * std::max(q.S, 1) * 4);
  CUdeviceptr lazy = alloc(rows * std::max(q.S, 1));
  CUdeviceptr done = alloc(rows * 4);
  drv.check(drv.cuMemsetD32Async_(done, 0, rows, stream), "clearing the classify counters");
  drv.check(drv.cuMemsetD32Async_(qs.p0, 0, rows, stream), "clearing the query counts");
  dev::ClassifyParams p{view(q),
                        reinterpret_cast<const float *>(kp.p0),
                        kp.S,
                        k.S,
                        reinterpret_cast<unsigned char *>(lazy),
                        reinterpret_cast<int *>(done),
                        reinterpret_cast<int *>(qs.p0),
                        reinterpret_cast<int *>(qs.p1)};
  vals[l.results[0]] = qs;
  const int D = int(l.i("HEAD_DIM"));
  go(l, unsigned(cdiv(q.S, dev::classify_rows(D))), unsigned(Hq), unsigned(q.B),
     dev::kClassifyThreads, unsigned(dev::classify_smem_bytes(D)), &p);
}

} // namespace sattn::gpu::detail
