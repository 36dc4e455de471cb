//===- test_dynlib.cpp - sattn::DynLib and cudaLibraryCandidates ----------===//
//
// A library that cannot be loaded is a LoadError listing every candidate
// tried, the loader's last error and the hint; a missing symbol names the
// library; an environment override is the only candidate (no silent
// fallback); NVRTC with SATTN_NVRTC pointing nowhere says what to do.
//
//===----------------------------------------------------------------------===//
#include <catch2/catch.hpp>

#include "codegen/DynLib.h"
#include "codegen/Nvrtc.h"

#include <cstdlib>
#include <optional>

#include "tests/unit/EnvGuard.h"

using namespace sattn;
using Catch::Matchers::Contains;

using sattn::testing::EnvGuard;

TEST_CASE("a library that cannot be loaded lists every candidate and the hint", "[dynlib]") {
  const std::vector<std::string> candidates = {"/nonexistent/dir/libsattn-a.so",
                                               "libsattn-no-such-library.so.7",
                                               "/nonexistent/libsattn-c.so"};
  try {
    DynLib lib(candidates, "the test library (libsattn-a.so)", "install it or set SATTN_TEST_LIB");
    FAIL("DynLib loaded " + lib.path());
  } catch (const LoadError &e) {
    std::string m = e.what();
    CHECK_THAT(m, Contains("cannot load the test library (libsattn-a.so)"));
    for (const std::string &c : candidates)
      CHECK_THAT(m, Contains(c));
    CHECK_THAT(m, Contains("install it or set SATTN_TEST_LIB"));
    // The loader's own reason for the last candidate.
    CHECK_THAT(m, Contains("libsattn-c.so: cannot open shared object file"));
  }
}

TEST_CASE("DynLib loads the first candidate that exists", "[dynlib]") {
  DynLib lib({"/nonexistent/libc.so.6", "libc.so.6"}, "the C library", "hint");
  CHECK(lib.path() == "libc.so.6");
  CHECK(lib.symbol("strlen") != nullptr);
  auto strlenFn = lib.get<size_t (*)(const char *)>("strlen");
  CHECK(strlenFn("sattn") == 5);
  try {
    lib.symbol("sattn_no_such_symbol");
    FAIL("missing symbol not reported");
  } catch (const LoadError &e) {
    CHECK_THAT(e.what(), Contains("the C library") && Contains("libc.so.6") &&
                             Contains("sattn_no_such_symbol"));
  }
}

TEST_CASE("cudaLibraryCandidates: an override is the only candidate", "[dynlib]") {
  EnvGuard override_("SATTN_TEST_LIB_OVERRIDE"), cudaHome("CUDA_HOME"), cudaPath("CUDA_PATH");
  const std::vector<std::string> sonames = {"libfoo.so.13", "libfoo.so"};
  cudaHome.set("/opt/cuda-home");
  cudaPath.unset();

  SECTION("set") {
    override_.set("/my/libfoo-custom.so");
    CHECK(cudaLibraryCandidates("SATTN_TEST_LIB_OVERRIDE", sonames) ==
          std::vector<std::string>{"/my/libfoo-custom.so"});
  }
  SECTION("unset: sonames, then CUDA_HOME, then /usr/local/cuda") {
    override_.unset();
    CHECK(cudaLibraryCandidates("SATTN_TEST_LIB_OVERRIDE", sonames) ==
          std::vector<std::string>{"libfoo.so.13", "libfoo.so", "/opt/cuda-home/lib64/libfoo.so.13",
                                   "/opt/cuda-home/lib64/libfoo.so",
                                   "/usr/local/cuda/lib64/libfoo.so.13",
                                   "/usr/local/cuda/lib64/libfoo.so"});
  }
  SECTION("empty counts as unset") {
    override_.set("");
    std::vector<std::string> c = cudaLibraryCandidates("SATTN_TEST_LIB_OVERRIDE", sonames);
    REQUIRE(c.size() >= 2);
    CHECK(c[0] == "libfoo.so.13");
  }
}

TEST_CASE("an override that does not load is an error, not a fallback", "[dynlib]") {
  EnvGuard override_("SATTN_TEST_LIB_OVERRIDE");
  override_.set("/nonexistent/libc.so.6");
  // libc.so.6 would load; the override must stop the search before it.
  try {
    DynLib lib(cudaLibraryCandidates("SATTN_TEST_LIB_OVERRIDE", {"libc.so.6"}), "libc", "hint");
    FAIL("fell back to " + lib.path());
  } catch (const LoadError &e) {
    CHECK_THAT(e.what(), Contains("/nonexistent/libc.so.6"));
  }
}

TEST_CASE("NVRTC missing: the error names the path and SATTN_NVRTC", "[dynlib][nvrtc]") {
  EnvGuard nvrtc("SATTN_NVRTC");
  nvrtc.set("/nonexistent/libnvrtc.so");
  try {
    codegen::Nvrtc::get();
    FAIL("NVRTC loaded from /nonexistent");
  } catch (const LoadError &e) {
    CHECK_THAT(e.what(), Contains("cannot load NVRTC") && Contains("/nonexistent/libnvrtc.so") &&
                             Contains("SATTN_NVRTC"));
  }
}
