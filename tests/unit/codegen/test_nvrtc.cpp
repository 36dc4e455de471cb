//===- test_nvrtc.cpp - codegen::Nvrtc: cache tag and phase timing --------===//
//
// cacheTag() names the NVRTC version and every option that shapes the
// binary; asking compile() for NVRTC's phase report must not change the
// binary, and the phases must account for the compile (front end, libNVVM,
// and ptxas for a cubin only). Needs NVRTC, not a GPU.
//
//===----------------------------------------------------------------------===//
#include <catch2/catch.hpp>

#include "codegen/Nvrtc.h"

#include <cstdlib>
#include <dirent.h>
#include <string>

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using namespace sattn::codegen;

namespace {
const char *kSource = "#include \"params.cuh\"\n"
                      "extern \"C\" __global__ void k(float *p) { p[threadIdx.x] *= 2.0f; }\n";

/// Files in $TMPDIR (or /tmp) whose name starts with the timing prefix.
int timingFiles() {
  const char *tmp = std::getenv("TMPDIR");
  DIR *d = opendir(tmp && *tmp ? tmp : "/tmp");
  int n = 0;
  if (!d)
    return 0;
  while (dirent *e = readdir(d))
    n += std::string(e->d_name).rfind("sattn-nvrtc-time-", 0) == 0;
  closedir(d);
  return n;
}
} // namespace

TEST_CASE("cacheTag holds the NVRTC version and the code-shaping options", "[nvrtc]") {
  Nvrtc &nvrtc = Nvrtc::get();
  std::string tag = nvrtc.cacheTag();
  CHECK_THAT(tag, StartsWith(nvrtc.version() + " "));
  CHECK_THAT(tag, Contains("-lineinfo") && Contains("-std=c++17"));
  // A digest of the embedded device headers (16 hex digits), stable per build.
  CHECK_THAT(tag, Contains(" headers "));
  CHECK(tag.size() - tag.rfind(" headers ") == 9 + 16);
  CHECK(tag == nvrtc.cacheTag());
  // Options that do not change the binary stay out of the key.
  CHECK_THAT(tag, !Contains("-time") && !Contains("--no-cache"));
}

TEST_CASE("compile() times NVRTC's phases without changing the binary", "[nvrtc]") {
  Nvrtc &nvrtc = Nvrtc::get();
  Arch arch = Arch::parse("sm_90a");
  int before = timingFiles();
  CompileOutput plain = nvrtc.compile(kSource, "timing", arch, Emit::Cubin);
  CompileOutput timed = nvrtc.compile(kSource, "timing", arch, Emit::Cubin, /*timePhases=*/true);
  CHECK_FALSE(plain.phases.has_value());
  REQUIRE(timed.phases.has_value());
  CHECK(timed.binary == plain.binary);
  CHECK(timed.compileMs > 0);
  const CompilePhases &p = *timed.phases;
  CHECK(p.frontendMs >= 0);
  CHECK(p.nvvmMs >= 0);
  CHECK(p.ptxasMs >= 0);
  // Whole milliseconds of parts of the compile: at most the whole (+1 ms each).
  CHECK(p.frontendMs + p.nvvmMs + p.ptxasMs <= timed.compileMs + 3);
  CHECK(timingFiles() == before); // the report's temporary file is gone

  CompileOutput ptx = nvrtc.compile(kSource, "timing", arch, Emit::Ptx, /*timePhases=*/true);
  REQUIRE(ptx.phases.has_value());
  CHECK(ptx.phases->ptxasMs == 0); // PTX: the driver assembles it
  CHECK_THAT(ptx.binary, Contains(".entry k"));
}
