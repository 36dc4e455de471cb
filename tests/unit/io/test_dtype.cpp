//===- test_dtype.cpp - Tests of float16 / bfloat16 conversions -----------===//
//
// Exhaustive and edge-case checks of runtime/io/Dtype.h: every half bit
// pattern round-trips, round-to-nearest-even at ties, overflow to infinity,
// subnormals and NaN handling, for both binary16 and bfloat16. Where the
// compiler offers _Float16, its conversions serve as an independent oracle.
// This file also provides Catch2's main() for sattn-io-tests.
//
//===----------------------------------------------------------------------===//
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include "runtime/io/Dtype.h"

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

using namespace sattn::io;

namespace {

bool isHalfNaN(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu); }
bool isBf16NaN(uint16_t b) { return (b & 0x7f80u) == 0x7f80u && (b & 0x7fu); }

uint32_t bitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

float floatOf(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

const double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();

} // namespace

TEST_CASE("every half bit pattern round-trips through float", "[dtype][fp16]") {
  int nans = 0;
  for (uint32_t i = 0; i <= 0xffff; ++i) {
    const uint16_t h = static_cast<uint16_t>(i);
    const float f = halfBitsToFloat(h);
    const uint16_t back = floatToHalfBits(f);
    if (isHalfNaN(h)) {
      ++nans;
      INFO("half bits 0x" << std::hex << i);
      REQUIRE(std::isnan(f));
      REQUIRE(isHalfNaN(back));
      REQUIRE((back & 0x8000u) == (h & 0x8000u)); // sign kept
      REQUIRE(std::isnan(roundToFp16(f)));
    } else {
      if (back != h) {
        INFO("half bits 0x" << std::hex << i << " -> " << f << " -> 0x" << back);
        REQUIRE(back == h);
      }
      // Representable values are fixed points of roundToFp16 (sign of zero
      // included).
      const double r = roundToFp16(f);
      REQUIRE((r == static_cast<double>(f) || (std::isinf(r) && std::isinf(f))));
      REQUIRE(std::signbit(r) == std::signbit(f));
    }
  }
  REQUIRE(nans == 2 * 1023);
}

TEST_CASE("halfBitsToFloat decodes known patterns", "[dtype][fp16]") {
  CHECK(halfBitsToFloat(0x3c00) == 1.0f);
  CHECK(halfBitsToFloat(0xc000) == -2.0f);
  CHECK(halfBitsToFloat(0x7bff) == 65504.0f);
  CHECK(halfBitsToFloat(0x0400) == std::ldexp(1.0f, -14)); // smallest normal
  CHECK(halfBitsToFloat(0x0001) == std::ldexp(1.0f, -24)); // smallest subnormal
  CHECK(halfBitsToFloat(0x03ff) == std::ldexp(1023.0f, -24));
  CHECK(halfBitsToFloat(0x3555) == 0.333251953125f);
  CHECK(halfBitsToFloat(0x7c00) == std::numeric_limits<float>::infinity());
  CHECK(halfBitsToFloat(0xfc00) == -std::numeric_limits<float>::infinity());
  CHECK(halfBitsToFloat(0x8000) == 0.0f);
  CHECK(std::signbit(halfBitsToFloat(0x8000)));
  CHECK(std::isnan(halfBitsToFloat(0x7e00)));
  CHECK(std::isnan(halfBitsToFloat(0x7c01))); // signalling NaN stays NaN
}

TEST_CASE("fp16 rounds ties to even", "[dtype][fp16]") {
  // ulp(1) in half is 2^-10.
  CHECK(roundToFp16(1.0 + std::ldexp(1.0, -11)) == 1.0);
  CHECK(roundToFp16(1.0 + 3 * std::ldexp(1.0, -11)) == 1.0 + std::ldexp(1.0, -9));
  CHECK(roundToFp16(-(1.0 + std::ldexp(1.0, -11))) == -1.0);
  CHECK(roundToFp16(1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -30)) ==
        1.0 + std::ldexp(1.0, -10));
  CHECK(roundToFp16(1.0 + std::ldexp(1.0, -11) - std::ldexp(1.0, -30)) == 1.0);
  // Ties at a binade boundary: 2048 + 1 lies midway between 2048 and 2050.
  CHECK(roundToFp16(2049.0) == 2048.0);
  CHECK(roundToFp16(2051.0) == 2052.0);
  CHECK(floatToHalfBits(1.0f) == 0x3c00);
  CHECK(floatToHalfBits(-2.0f) == 0xc000);
  CHECK(floatToHalfBits(0.1f) == 0x2e66);
}

TEST_CASE("fp16 rounds straight from double (no double rounding)", "[dtype][fp16]") {
  // Through float32 this value would first become exactly 1 + 2^-11 (a tie)
  // and then round down to 1; rounded directly it lies above the tie.
  const double d = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40);
  REQUIRE(static_cast<float>(d) == static_cast<float>(1.0 + std::ldexp(1.0, -11)));
  CHECK(roundToFp16(d) == 1.0 + std::ldexp(1.0, -10));
  CHECK(doubleToHalfBits(d) == 0x3c01);
}

TEST_CASE("fp16 overflows to infinity", "[dtype][fp16]") {
  CHECK(roundToFp16(65504.0) == 65504.0);
  CHECK(roundToFp16(65519.99) == 65504.0);
  // 65520 is the tie between 65504 (odd significand) and 65536: to inf.
  CHECK(roundToFp16(65520.0) == kInf);
  CHECK(roundToFp16(-65520.0) == -kInf);
  CHECK(roundToFp16(65536.0) == kInf);
  CHECK(roundToFp16(1e10) == kInf);
  CHECK(roundToFp16(-1e300) == -kInf);
  CHECK(roundToFp16(DBL_MAX) == kInf);
  CHECK(roundToFp16(kInf) == kInf);
  CHECK(roundToFp16(-kInf) == -kInf);
  CHECK(floatToHalfBits(FLT_MAX) == 0x7c00);
  CHECK(floatToHalfBits(-FLT_MAX) == 0xfc00);
}

TEST_CASE("fp16 subnormals and underflow", "[dtype][fp16]") {
  const double s = std::ldexp(1.0, -24); // smallest subnormal
  CHECK(roundToFp16(s) == s);
  CHECK(roundToFp16(-s) == -s);
  CHECK(roundToFp16(s / 2) == 0.0); // tie between 0 and s: even is 0
  CHECK(std::signbit(roundToFp16(-s / 2)));
  CHECK(roundToFp16(s / 2 + std::ldexp(1.0, -60)) == s);
  CHECK(roundToFp16(s / 4) == 0.0);
  CHECK(roundToFp16(1.5 * s) == 2 * s); // tie, 1 is odd -> 2
  CHECK(roundToFp16(2.5 * s) == 2 * s); // tie, 2 is even
  CHECK(roundToFp16(1023 * s) == 1023 * s);
  // Midway between the largest subnormal and the smallest normal: rounds to
  // the even one, the normal 2^-14.
  CHECK(roundToFp16(1023.5 * s) == std::ldexp(1.0, -14));
  CHECK(doubleToHalfBits(1023.5 * s) == 0x0400);
  CHECK(roundToFp16(std::numeric_limits<double>::denorm_min()) == 0.0);
  CHECK(roundToFp16(std::ldexp(1.0, -1070)) == 0.0);
  CHECK(floatToHalfBits(std::numeric_limits<float>::denorm_min()) == 0x0000);
  CHECK(floatToHalfBits(-0.0f) == 0x8000);
}

TEST_CASE("fp16 NaN stays NaN", "[dtype][fp16]") {
  CHECK(std::isnan(roundToFp16(kNaN)));
  CHECK(std::isnan(roundToFp16(-kNaN)));
  CHECK(isHalfNaN(floatToHalfBits(std::numeric_limits<float>::quiet_NaN())));
  // A float NaN whose payload is only in low bits must not become inf.
  CHECK(isHalfNaN(floatToHalfBits(floatOf(0x7f800001u))));
  CHECK(isHalfNaN(floatToHalfBits(floatOf(0xff800001u))));
  CHECK((floatToHalfBits(floatOf(0xff800001u)) & 0x8000u) != 0);
}

#if defined(__FLT16_MANT_DIG__) && (defined(__x86_64__) || defined(__aarch64__))
TEST_CASE("floatToHalfBits agrees with the compiler's _Float16", "[dtype][fp16]") {
  // Stride through all float bit patterns (about 1M samples, every exponent)
  // plus every float near the half range with full density.
  auto check = [](uint32_t u) {
    const float f = floatOf(u);
    const _Float16 h = static_cast<_Float16>(f);
    uint16_t expect;
    std::memcpy(&expect, &h, sizeof expect);
    const uint16_t got = floatToHalfBits(f);
    if (std::isnan(f)) {
      REQUIRE(isHalfNaN(got));
    } else if (got != expect) {
      INFO("float bits 0x" << std::hex << u);
      REQUIRE(got == expect);
    }
  };
  for (uint64_t u = 0; u <= 0xffffffffu; u += 4093)
    check(static_cast<uint32_t>(u));
  // [2^-26, 2^16] spans all subnormal/normal half rounding boundaries.
  for (uint32_t u = bitsOf(std::ldexp(1.0f, -26)); u <= bitsOf(65536.0f); u += 7)
    check(u);
}
#endif

TEST_CASE("every bf16 bit pattern round-trips through float", "[dtype][bf16]") {
  for (uint32_t i = 0; i <= 0xffff; ++i) {
    const uint16_t b = static_cast<uint16_t>(i);
    const float f = bf16BitsToFloat(b);
    REQUIRE(bitsOf(f) == (i << 16)); // bf16 is the top half of a float32
    const uint16_t back = floatToBf16Bits(f);
    if (isBf16NaN(b)) {
      REQUIRE(std::isnan(f));
      REQUIRE(isBf16NaN(back));
      REQUIRE((back & 0x8000u) == (b & 0x8000u));
    } else {
      REQUIRE(back == b);
    }
  }
}

TEST_CASE("bf16 rounds ties to even", "[dtype][bf16]") {
  // ulp(1) in bf16 is 2^-7.
  CHECK(roundToBf16(1.0 + std::ldexp(1.0, -8)) == 1.0);
  CHECK(roundToBf16(1.0 + 3 * std::ldexp(1.0, -8)) == 1.0 + std::ldexp(1.0, -6));
  CHECK(roundToBf16(-(1.0 + std::ldexp(1.0, -8))) == -1.0);
  CHECK(roundToBf16(1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -20)) == 1.0 + std::ldexp(1.0, -7));
  CHECK(roundToBf16(1.0 + std::ldexp(1.0, -8) - std::ldexp(1.0, -20)) == 1.0);
  CHECK(floatToBf16Bits(1.0f) == 0x3f80);
  CHECK(floatToBf16Bits(-2.0f) == 0xc000);
  CHECK(floatToBf16Bits(floatOf(0x3f808000u)) == 0x3f80); // tie, even below
  CHECK(floatToBf16Bits(floatOf(0x3f818000u)) == 0x3f82); // tie, even above
  CHECK(floatToBf16Bits(floatOf(0x3f808001u)) == 0x3f81);
  CHECK(floatToBf16Bits(floatOf(0x3f807fffu)) == 0x3f80);
}

TEST_CASE("roundToBf16 goes through float32 first", "[dtype][bf16]") {
  // 1 + 2^-8 + 2^-30 rounds to the float 1 + 2^-8 (a bf16 tie) and then to
  // 1: the documented float32-then-bf16 behaviour of framework casts.
  const double d = 1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -30);
  CHECK(roundToBf16(d) == 1.0);
}

TEST_CASE("bf16 overflow, infinities and NaN", "[dtype][bf16]") {
  const double bf16Max = static_cast<double>(bf16BitsToFloat(0x7f7f));
  CHECK(bf16Max == std::ldexp(255.0, 120));
  CHECK(roundToBf16(bf16Max) == bf16Max);
  CHECK(roundToBf16(FLT_MAX) == kInf); // above bf16Max + ulp/2
  CHECK(roundToBf16(-FLT_MAX) == -kInf);
  CHECK(roundToBf16(1e39) == kInf); // beyond float range
  CHECK(roundToBf16(-1e300) == -kInf);
  CHECK(roundToBf16(kInf) == kInf);
  CHECK(roundToBf16(-kInf) == -kInf);
  CHECK(std::isnan(roundToBf16(kNaN)));
  CHECK(std::isnan(roundToBf16(-kNaN)));
  // NaN with payload only in the low 16 bits must not truncate to inf.
  CHECK(isBf16NaN(floatToBf16Bits(floatOf(0x7f800001u))));
  CHECK((floatToBf16Bits(floatOf(0xff800001u)) & 0x8000u) != 0);
  CHECK(floatToBf16Bits(-0.0f) == 0x8000);
}

TEST_CASE("bf16 subnormals", "[dtype][bf16]") {
  const double s = std::ldexp(1.0, -133); // smallest bf16 subnormal
  CHECK(bf16BitsToFloat(0x0001) == static_cast<float>(s));
  CHECK(roundToBf16(s) == s);
  CHECK(roundToBf16(s / 2) == 0.0);     // tie to even 0
  CHECK(roundToBf16(1.5 * s) == 2 * s); // tie, 1 odd -> 2
  CHECK(roundToBf16(0.75 * s) == s);
  CHECK(roundToBf16(std::ldexp(1.0, -150)) == 0.0);
  CHECK(std::signbit(roundToBf16(-s / 2)));
}
