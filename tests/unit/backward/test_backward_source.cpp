//===- test_backward_source.cpp - the backward module compiles ------------===//
//
// CompiledProgram::backward builds its kernels from the attention launch
// on first use, on a GPU. Here the same source (gpu::backwardModuleSource)
// is emitted for each kind of attention a variant can have — dense, masked,
// a block set (list or computed), a fused static pattern, query sets with
// lazy rows that attend or write 0, a vertical-slash set — in both modes and both kernel
// families, compiled by NVRTC to PTX, and checked to define every kernel
// the runtime looks up, with wgmma in the sm_90a dK/dV and dQ kernels (both
// modes) and nowhere else, the fast mode's dQ atomics in its dK/dV
// kernels only, and two key warpgroups per dK/dV CTA where they apply.
//
//===----------------------------------------------------------------------===//
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include "codegen/Nvrtc.h"
#include "runtime/gpu/Executor.h"
#include "tests/unit/Lowered.h"

#include <cstdlib>
#include <string>

using namespace sattn;
using Catch::Matchers::Contains;
using sattn::testing::Lowered;

namespace {

/// A query-set variant whose lazy rows write 0 (no builder has that policy).
const char *kLazyZero = R"(
func.func @v(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  %qs = sattn.classify_queries %q, %k {key_group = 16 : i64, window = 64 : i64, sinks = 16 : i64, theta = 0.5 : f64, keep_every = 4 : i64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.queries<heads = 4>
  %o = sattn.attention %q, %k, %v queries %qs : !sattn.queries<heads = 4> lazy zero {causal, lazy_window = 64 : i64, lazy_sinks = 16 : i64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}
)";

/// A static block pattern fused into the attention (HAS_PATTERN).
const char *kPattern = R"(
func.func @v(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  %bs = sattn.static_blocks %q, %k {causal, window = 64 : i64, sinks = 8 : i64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.blocks<bq = 32, bk = 32, heads = 4>
  %o = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 32, bk = 32, heads = 4> {causal} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}
)";

size_t count(const std::string &text, const std::string &what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

/// Emits and compiles the backward module of `v`'s attention for `arch`
/// in both modes; `lazyPass`: the variant's lazy rows attend (a second
/// dK/dV pass is expected).
void check(const std::string &name, const std::string &text, const char *arch, bool lazyPass,
           int forced = 0) {
  Lowered v(text, arch);
  const gpu::Launch &l = v.attention();
  for (bool det : {true, false}) {
    // wgmma in both modes on sm_90a, for head dims 64 and 128.
    const bool wg = std::string(arch) == "sm_90a" && l.i("HEAD_DIM") != 96;
    INFO(name << " " << arch << (det ? " deterministic" : " atomic"));
    const gpu::BackwardModuleSource m = gpu::backwardModuleSource(l, det, wg);
    const std::string &src = m.cuda;
    codegen::CompileOutput out = codegen::Nvrtc::get().compile(
        src, "bwd_check", codegen::Arch::parse(arch), codegen::Emit::Ptx);
    const std::vector<std::string> &names = m.kernels;
    for (const std::string &k : names)
      CHECK_THAT(out.binary, Contains(".entry " + k + "("));
    CHECK(count(out.binary, ".entry ") == names.size());
    CHECK((count(src, "sattn_bwd_dkdv_lazy") > 0) == lazyPass);
    // Vertical-slash sets: the columns' pass and its scatter.
    const bool vs = l.consts.count("HAS_VSLASH") && l.b("HAS_VSLASH");
    CHECK((count(src, "sattn_bwd_dkdv_cols") > 0) == vs);
    CHECK((count(src, "sattn_bwd_vs_scatter") > 0) == vs);
    // Two warpgroups per sm_90a dK/dV (dQ) CTA in both modes wherever no
    // vertical-slash set or KV (query) blocks narrower than 128 forbid it,
    // and in the atomic mode no query set (forced = 1:
    // SATTN_BACKWARD_KEY_WGS=1, one everywhere).
    auto wgs = [&](const char *block) {
      const bool narrow = l.b("HAS_BLOCKS") && l.i(block) % 128 != 0;
      const bool two = forced != 1 && (det || !l.b("HAS_QUERIES"));
      return wg && !vs && !narrow && two ? 2 : 1;
    };
    const int kw = wgs("SET_BK"), rw = wgs("SET_BQ");
    CHECK(m.keyWgs == kw);
    CHECK(m.rowWgs == rw);
    CHECK(count(src, "BWD_KEY_WGS = " + std::to_string(kw) + ";") == 1);
    CHECK(count(src, "BWD_ROW_WGS = " + std::to_string(rw) + ";") == 1);
    CHECK(count(src, "__launch_bounds__(" + std::to_string(128 * kw) + ")\nsattn_bwd_dkdv(") == 1);
    CHECK(count(src, "__launch_bounds__(" + std::to_string(128 * rw) + ")\nsattn_bwd_dq(") ==
          size_t(det));
    // wgmma: the forward recompute is mma.sync, so only the wg kernels.
    CHECK((count(out.binary, "wgmma.mma_async") > 0) == wg);
    CHECK((count(src, "attn_bwd_dkdv_wg<") > 0) == wg);
    // The fast mode's dQ: fp32 atomics inside the dK/dV kernel (wgmma: one
    // vector reduction per column pair); the deterministic mode has none.
    // Two warpgroups (DS2) add their dQ tiles by TMA reductions, falling
    // back to red.global when the runtime has no map.
    CHECK((count(out.binary, "red.global.add.v2.f32") > 0) == (wg && !det));
    CHECK((count(out.binary, "cp.reduce.async.bulk.tensor.3d") > 0) == (wg && !det && kw > 1));
    CHECK((count(out.binary, "atom.global.add.f32") + count(out.binary, "red.global.add.f32") > 0) ==
          (!wg && !det));
  }
}

} // namespace

TEST_CASE("the backward module compiles for every attention kind, mode and arch", "[backward]") {
  const patterns::Heads h{8, 2, 64, DType::BF16};
  for (const char *arch : {"sm_90a", "sm_80"}) {
    check("dense causal lse", patterns::dense({8, 2, 128, DType::BF16}, true, true).text(), arch,
          false);
    check("dense full", patterns::dense({8, 2, 128, DType::BF16}, false, false).text(), arch,
          false);
    check("streaming", patterns::streaming(h, 256, 4).text(), arch, false);
    check("block list per group", patterns::blockMask(h, 64, true, 2).text(), arch, false);
    check("block list 128", patterns::blockMask(h, 128, false).text(), arch, false);
  }
  // Query sets: the forward runs on wgmma (sm_90a) or the scalar kernel
  // (sm_80, head dim 96); the backward on its own tensor-core kernels.
  check("omnisparse", patterns::omnisparse(h).text(), "sm_90a", true);
  check("omnisparse sm_80", patterns::omnisparse(h).text(), "sm_80", true);
  // Head dim 96 (scalar forward): the mma.sync backward, both archs.
  const patterns::Heads h96{8, 2, 96, DType::BF16};
  for (const char *arch : {"sm_90a", "sm_80"}) {
    check("dense causal D96", patterns::dense(h96, true, true).text(), arch, false);
    check("block list D96", patterns::blockMask(h96, 64, true, 8).text(), arch, false);
    check("omnisparse D96", patterns::omnisparse(h96).text(), arch, true);
  }
  check("top-k", patterns::topkBlocks(h, 32, 64, 4).text(), "sm_90a", false);
  check("top-k 128-blocks", patterns::topkBlocks(h, 32, 128, 4).text(), "sm_90a", false);
  // SATTN_BACKWARD_KEY_WGS=1 forces one warpgroup everywhere.
  setenv("SATTN_BACKWARD_KEY_WGS", "1", 1);
  check("forced: dense full", patterns::dense(h, false, true).text(), "sm_90a", false, 1);
  check("forced: omnisparse", patterns::omnisparse(h).text(), "sm_90a", true, 1);
  check("forced: block list 128", patterns::blockMask(h, 128, false).text(), "sm_90a", false, 1);
  // =2: the atomic mode's two-warpgroup dK/dV CTA (one dQ product per 128 keys).
  setenv("SATTN_BACKWARD_KEY_WGS", "2", 1);
  check("forced 2: dense causal", patterns::dense(h, true, true).text(), "sm_90a", false, 2);
  check("forced 2: dense D128",
        patterns::dense({8, 2, 128, DType::BF16}, false, false).text(), "sm_90a", false, 2);
  check("forced 2: omnisparse", patterns::omnisparse(h).text(), "sm_90a", true, 2);
  check("forced 2: block list 128", patterns::blockMask(h, 128, false).text(), "sm_90a", false, 2);
  unsetenv("SATTN_BACKWARD_KEY_WGS");
  check("lazy zero", kLazyZero, "sm_90a", false);
  Lowered pattern(kPattern, "sm_90a");
  CHECK(pattern.attention().b("HAS_PATTERN"));
  check("static pattern", kPattern, "sm_90a", false);
  // Vertical-slash sets (attn_fwd_wgmma only: sm_90a), query blocks of 64 and 128.
  patterns::VerticalSlashOptions vs;
  vs.vertical = 100, vs.slash = 50;
  check("vertical-slash", patterns::minferenceVerticalSlash(h, vs).text(), "sm_90a", false);
  vs.block = 128;
  check("vertical-slash bq 128 D128",
        patterns::minferenceVerticalSlash({8, 2, 128, DType::FP16}, vs).text(), "sm_90a", false);
}
