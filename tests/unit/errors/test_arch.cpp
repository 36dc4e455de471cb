//===- test_arch.cpp - codegen::Arch::parse and Arch::forCapability -------===//
//
// Hopper (9.0) gets sm_90a, Ampere/Ada get sm_80/sm_86/sm_89; GPUs older
// than sm_80 and unknown --arch names are a std::invalid_argument whose
// message says what was given and what to choose instead.
//
//===----------------------------------------------------------------------===//
#include <catch2/catch.hpp>

#include "codegen/Nvrtc.h"

#include <stdexcept>

using Catch::Matchers::Contains;
using sattn::codegen::Arch;

namespace {
using Caps = std::initializer_list<std::pair<int, int>>;

/// The message of the std::invalid_argument `f` throws ("" if none).
template <typename F> std::string invalidArgument(F f) {
  try {
    f();
  } catch (const std::invalid_argument &e) {
    return e.what();
  }
  return "";
}
} // namespace

TEST_CASE("Arch::parse accepts the supported names", "[arch]") {
  for (const char *name : {"sm_90a", "sm_90", "sm_89", "sm_86", "sm_80"}) {
    CAPTURE(name);
    CHECK(Arch::parse(name).name == name);
  }
}

TEST_CASE("Arch::parse rejects other names, listing the choices", "[arch][errors]") {
  std::string bad = GENERATE(std::string("sm_70"), std::string("sm_75"), std::string("sm_100"),
                             std::string("SM_90A"), std::string("sm_90a "), std::string("90a"),
                             std::string("compute_90a"), std::string(""));
  CAPTURE(bad);
  std::string msg = invalidArgument([&] { Arch::parse(bad); });
  REQUIRE_FALSE(msg.empty());
  CHECK_THAT(msg, Contains("unsupported GPU architecture '" + bad + "'"));
  CHECK_THAT(msg,
             Contains("sm_90a") && Contains("sm_80") && Contains("sm_86") && Contains("sm_89"));
}

TEST_CASE("Arch::forCapability maps compute capabilities", "[arch]") {
  CHECK(Arch::forCapability(9, 0).name == "sm_90a"); // Hopper: wgmma path
  CHECK(Arch::forCapability(8, 0).name == "sm_80");  // A100
  CHECK(Arch::forCapability(8, 6).name == "sm_86");  // RTX 30xx, A10
  CHECK(Arch::forCapability(8, 9).name == "sm_89");  // Ada
  // Every result is itself a valid --arch.
  for (auto [major, minor] : Caps{{8, 0}, {8, 6}, {8, 7}, {8, 9}, {9, 0}}) {
    CAPTURE(major, minor);
    std::string name = Arch::forCapability(major, minor).name;
    CHECK(Arch::parse(name).name == name);
  }
}

TEST_CASE("Arch::forCapability rejects GPUs older than sm_80", "[arch][errors]") {
  std::string msg = invalidArgument([] { Arch::forCapability(7, 5); });
  REQUIRE_FALSE(msg.empty());
  CHECK_THAT(msg, Contains("7.5") && Contains("sm_80"));
  for (auto [major, minor] : Caps{{7, 0}, {6, 1}, {3, 5}}) {
    CAPTURE(major, minor);
    CHECK_THROWS_AS(Arch::forCapability(major, minor), std::invalid_argument);
  }
}
