//===- test_copy_load_source.cpp - one load path per forward kernel -------===//
//
// The lowering builds the Hopper forward with TMA loads only (TMA = 1); a
// launch whose views TMA cannot describe runs the copy-load variant the
// runtime compiles from gpu::copyLoadSource (TMA = 0). Without a GPU: both
// compile with NVRTC for sm_90a, and each holds only its own load path —
// the TMA kernel issues tensor copies and no cp.async, the copy variant
// cp.async and no tensor copy.
//
//===----------------------------------------------------------------------===//
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include "codegen/Emitter.h"
#include "codegen/Nvrtc.h"
#include "runtime/gpu/Executor.h"
#include "tests/unit/Lowered.h"

#include <string>

using namespace sattn;
using Catch::Matchers::Contains;
using sattn::testing::Lowered;

namespace {

std::string ptx(const std::string &source) {
  return codegen::Nvrtc::get()
      .compile(source, "load_check", codegen::Arch::parse("sm_90a"), codegen::Emit::Ptx)
      .binary;
}

void check(const std::string &name, const std::string &text) {
  INFO(name);
  Lowered v(text, "sm_90a");
  const gpu::Launch &l = v.attention();
  REQUIRE(l.deviceTemplate == "attn_fwd_wgmma");
  mlir::FailureOr<std::string> module = codegen::emitCuda(v.func);
  REQUIRE(mlir::succeeded(module));
  const std::string tma = ptx(*module);
  CHECK_THAT(tma, Contains("cp.async.bulk.tensor"));
  // Three consumer warpgroups keep both paths behind the run-time flag
  // (no TMA constant; KernelTable.cpp says why).
  if (l.i("CONSUMER_WGS") == 3) {
    CHECK(l.consts.count("TMA") == 0);
    CHECK_THAT(tma, Contains("cp.async.cg.shared.global"));
    return;
  }
  REQUIRE(l.consts.count("TMA"));
  CHECK(l.i("TMA") == 1);
  // Otherwise the lowered module's kernel loads by TMA only.
  const bool gathersQ = l.b("HAS_QUERIES"); // query sets gather Q rows with cp.async
  CHECK((tma.find("cp.async.cg.shared.global") != std::string::npos) == gathersQ);
  // Its copy-load variant: copies only, one entry point named after the launch.
  const std::string src = gpu::copyLoadSource(l);
  CHECK_THAT(src, Contains("static constexpr int TMA = 0;"));
  const std::string copy = ptx(src);
  CHECK_THAT(copy, Contains(".entry " + l.kernel + "_copy("));
  CHECK_THAT(copy, Contains("cp.async.cg.shared.global"));
  CHECK(copy.find("cp.async.bulk.tensor") == std::string::npos);
}

} // namespace

TEST_CASE("the Hopper forward compiles one load path per kernel", "[codegen]") {
  const patterns::Heads h{8, 2, 64, DType::BF16};
  check("dense causal D64 (three consumers: both paths)", patterns::dense(h, true, true).text());
  check("dense D128 fp16", patterns::dense({8, 2, 128, DType::FP16}, false, false).text());
  check("streaming", patterns::streaming(h, 256, 4).text());
  check("block list", patterns::blockMask(h, 128, false).text());
  check("dense D128 causal", patterns::dense({8, 2, 128, DType::BF16}, true, true).text());
  check("omnisparse (query set)", patterns::omnisparse(h).text());
}
