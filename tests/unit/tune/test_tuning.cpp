//===- test_tuning.cpp - config spaces, buckets, the tuning database ------===//
//
// Everything of the autotuner that needs no GPU: which candidates a
// template declares, which are rejected and why, signatures that ignore
// the tuned knob, power-of-two buckets, the JSON database (round trip,
// lookup, replacement, corrupt files), and that every candidate of the
// tensor-core kernel compiles with NVRTC.
//
//===----------------------------------------------------------------------===//
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include "codegen/Emitter.h"
#include "codegen/Nvrtc.h"
#include "passes/Passes.h"
#include "runtime/tune/Tuning.h"
#include "sattn/sattn.h"
#include "tests/unit/Lowered.h"


#include <cstdio>
#include <fstream>
#include <unistd.h>

using namespace sattn;
using sattn::testing::Lowered;
using Catch::Matchers::Contains;

namespace {

std::string tempPath(const char *name) {
  return "/tmp/sattn-tune-test-" + std::to_string(::getpid()) + "-" + name;
}

} // namespace

TEST_CASE("the tensor-core kernel declares its row tiles; others nothing", "[tune]") {
  auto space = tune::candidates("attn_fwd_mma");
  REQUIRE(space.size() == 2);
  CHECK(space[0].at("TILE_M") == 64); // the heuristic comes first
  CHECK(space[1].at("TILE_M") == 128);
  CHECK(tune::candidates("pool").empty());
  CHECK(tune::candidates("attn_fwd").empty());
}

TEST_CASE("the Hopper kernel declares its ping-pong and consumer knobs, heuristic by head dim",
          "[tune]") {
  auto space = tune::candidates("attn_fwd_wgmma");
  REQUIRE(space.size() == 6);
  CHECK(space[0] == tune::Config{{"PINGPONG", 1}, {"PERSISTENT", 1}, {"CONSUMER_WGS", 0}});
  CHECK(space[3] == tune::Config{{"PINGPONG", 0}, {"PERSISTENT", 0}, {"CONSUMER_WGS", 0}});
  CHECK(space[4] == tune::Config{{"PINGPONG", 0}, {"PERSISTENT", 1}, {"CONSUMER_WGS", 3}});
  Lowered d128(patterns::dense({8, 2, 128, DType::BF16}, true), "sm_90a");
  Lowered d64(patterns::dense({8, 2, 64, DType::BF16}, true), "sm_90a");
  CHECK(d128.attention().deviceTemplate == "attn_fwd_wgmma");
  CHECK(d128.attention().i("PINGPONG") == 1);
  CHECK(d64.attention().i("PINGPONG") == 0);
  CHECK(d128.attention().i("PERSISTENT") == 1);
  CHECK(d64.attention().i("CONSUMER_WGS") == 3);  // 192-row tiles at D = 64
  CHECK(d128.attention().i("CONSUMER_WGS") == 0); // the shape's rule
  CHECK(tune::rejectReason(d128.attention(), space[3]).empty());
  // Three consumer warpgroups (192-row tiles): head dim 64 without sets only.
  CHECK(tune::rejectReason(d64.attention(), space[4]).empty());
  CHECK(tune::rejectReason(d64.attention(), space[5]).empty());
  CHECK_THAT(tune::rejectReason(d128.attention(), space[4]),
             Contains("three consumer warpgroups need head dim 64"));
  // 64-row block-set rows run one consumer warpgroup: nothing to alternate.
  Lowered topk(patterns::topkBlocks({8, 2, 64, DType::BF16}, 32, 64, 4), "sm_90a");
  CHECK_THAT(tune::rejectReason(topk.attention(), space[0]),
             Contains("no partner to take turns with"));
  CHECK(tune::rejectReason(topk.attention(), space[1]).empty());
  CHECK_THAT(tune::rejectReason(topk.attention(), space[4]), Contains("no block, query"));
  CHECK(topk.attention().i("CONSUMER_WGS") == 0);
  // A static block pattern fused into the kernel: not with three consumers.
  Lowered pat(R"(
func.func @v(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  %bs = sattn.static_blocks %q, %k {causal, window = 64 : i64, sinks = 8 : i64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.blocks<bq = 32, bk = 32, heads = 4>
  %o = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 32, bk = 32, heads = 4> {causal} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}
)",
              "sm_90a");
  REQUIRE(pat.attention().b("HAS_PATTERN"));
  CHECK(pat.attention().i("CONSUMER_WGS") == 0);
  CHECK_THAT(tune::rejectReason(pat.attention(), space[4]), Contains("no block pattern"));
}

TEST_CASE("invalid configurations are rejected with a reason", "[tune]") {
  Lowered dense(patterns::dense({8, 2, 128, DType::BF16}, true));
  CHECK(tune::rejectReason(dense.attention(), {{"TILE_M", 64}}).empty());
  CHECK(tune::rejectReason(dense.attention(), {{"TILE_M", 128}}).empty());
  CHECK_THAT(tune::rejectReason(dense.attention(), {{"TILE_M", 96}}),
             Contains("not in the configuration space"));
  // Block sets of 64-row query blocks cannot fill 128-row tiles.
  Lowered topk(patterns::topkBlocks({8, 2, 64, DType::BF16}, 32, 64, 4));
  CHECK_THAT(tune::rejectReason(topk.attention(), {{"TILE_M", 128}}),
             Contains("taller than the block set's query blocks of 64 rows"));
  CHECK_THAT(tune::rejectReason(topk.plan.launches.front(), {{"TILE_M", 64}}),
             Contains("has no tunable constants"));
}

TEST_CASE("signatures ignore the tuned knob and nothing else", "[tune]") {
  Lowered a(patterns::dense({8, 2, 128, DType::BF16}, true));
  Lowered b(patterns::dense({8, 2, 128, DType::BF16}, false));
  gpu::Launch l = a.attention();
  std::string sig = tune::signature(l);
  l.consts["TILE_M"] = int64_t(128);
  CHECK(tune::signature(l) == sig);
  CHECK(tune::signature(b.attention()) != sig);
  // The Hopper forward: its load path (TMA) is no part of the signature,
  // so databases from before the TMA-only kernel still match.
  Lowered h(patterns::dense({8, 2, 128, DType::BF16}, true), "sm_90a");
  gpu::Launch w = h.attention();
  REQUIRE(w.consts.count("TMA"));
  std::string hs = tune::signature(w);
  w.consts.erase("TMA");
  CHECK(tune::signature(w) == hs);
  w.consts["CAUSAL"] = false;
  CHECK(tune::signature(w) != hs);
}

TEST_CASE("shapes fall into power-of-two buckets", "[tune]") {
  CHECK(tune::bucket({32, 16384, 16384}) == "bh32.q16384.kv16384");
  CHECK(tune::bucket({24, 9000, 1}) == "bh32.q16384.kv1");
  CHECK(tune::bucket({1, 4096, 4097}) == "bh1.q4096.kv8192");
}

TEST_CASE("the database round-trips, replaces and filters", "[tune]") {
  std::string path = tempPath("db.json");
  std::remove(path.c_str());
  {
    tune::Database db(path);
    CHECK(db.loadWarning().empty());
    db.record({"H100", "sm_90a", "tc1", "sigA", "bh32.q4096.kv4096", {{"TILE_M", 128}}, 1.5});
    db.record({"H100", "sm_90a", "tc1", "sigA", "bh32.q16384.kv16384", {{"TILE_M", 64}}, 9.0});
    db.record({"H100", "sm_90a", "tc1", "sigA", "bh32.q4096.kv4096", {{"TILE_M", 64}}, 1.2});
    db.record({"A100", "sm_80", "tc1", "sigA", "bh32.q4096.kv4096", {{"TILE_M", 128}}, 3.0});
    db.save();
  }
  tune::Database db(path);
  auto hits = db.lookup("H100", "sm_90a", "tc1", "sigA");
  REQUIRE(hits.size() == 2);
  CHECK(hits[0].config.at("TILE_M") == 64); // replaced, not duplicated
  CHECK(hits[0].ms == Approx(1.2));
  CHECK(db.lookup("H100", "sm_90a", "tc2", "sigA").empty()); // other toolchain
  CHECK(db.lookup("H100", "sm_90a", "tc1", "sigB").empty());
  std::remove(path.c_str());
}

TEST_CASE("a corrupt database is reported and ignored", "[tune]") {
  std::string path = tempPath("bad.json");
  std::ofstream(path) << "{ not json";
  tune::Database db(path);
  CHECK_THAT(db.loadWarning(), Contains("is not valid JSON"));
  CHECK(db.lookup("H100", "sm_90a", "tc1", "sigA").empty());
  std::ofstream(path) << "{\"other\": 1}";
  CHECK_THAT(tune::Database(path).loadWarning(), Contains("no \"entries\" array"));
  std::remove(path.c_str());
}

TEST_CASE("every candidate of the tensor-core kernels compiles with NVRTC", "[tune]") {
  for (const char *arch : {"sm_80", "sm_90a"})
    for (int d : {64, 128}) {
      Lowered v(patterns::dense({8, 2, d, DType::BF16}, true, /*lse=*/true), arch);
      const std::string tmpl = v.attention().deviceTemplate;
      for (const tune::Config &c : tune::candidates(tmpl)) {
        if (!tune::rejectReason(v.attention(), c).empty())
          continue; // e.g. three consumer warpgroups at D = 128 (a static_assert)
        tune::applyConfig(v.func, v.attention().kernel, c);
        mlir::FailureOr<std::string> cuda = codegen::emitCuda(v.func);
        REQUIRE(mlir::succeeded(cuda));
        INFO(arch << " D=" << d << " " << tune::describe(c));
        const auto &[knob, value] = *c.begin();
        CHECK_THAT(*cuda, Contains("static constexpr int " + knob + " = " + std::to_string(value)));
        codegen::CompileOutput out = codegen::Nvrtc::get().compile(
            *cuda, "tune_check", codegen::Arch::parse("sm_90a"), codegen::Emit::Ptx);
        CHECK_THAT(out.binary, Contains(".entry k0_" + tmpl));
        if (c.count("CONSUMER_WGS")) // producer + consumers: 128 threads each
          CHECK_THAT(out.binary, Contains(".maxntid " + std::to_string(c.at("CONSUMER_WGS") == 3
                                                                          ? 512
                                                                          : 384)));
      }
    }
}

TEST_CASE("a forced configuration: parsed, merged into a launch's knobs", "[tune]") {
  CHECK(tune::parseConfig("CONSUMER_WGS=3") == tune::Config{{"CONSUMER_WGS", 3}});
  CHECK(tune::parseConfig("PINGPONG=0,TILE_M=-1") == tune::Config{{"PINGPONG", 0}, {"TILE_M", -1}});
  for (const char *bad : {"", "X", "=3", "X=", "X=3,", "X=3y", "X=3,Y"})
    CHECK_THROWS_WITH(tune::parseConfig(bad), Contains("is not NAME=INTEGER"));
  Lowered d64(patterns::dense({8, 2, 64, DType::BF16}, true), "sm_90a");
  const tune::Config m = tune::mergeConfig(d64.attention(), {{"CONSUMER_WGS", 3}, {"TILE_M", 128}});
  CHECK(m == tune::Config{{"PINGPONG", 0}, {"PERSISTENT", 1}, {"CONSUMER_WGS", 3}});
  CHECK(tune::rejectReason(d64.attention(), m).empty());
  CHECK(tune::mergeConfig(d64.attention(), {{"TILE_M", 128}}).empty()); // not its knob
}
