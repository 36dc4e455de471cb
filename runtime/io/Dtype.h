//===- Dtype.h - float16 / bfloat16 conversions and rounding ----*- C++ -*-===//
//
// Conversions between float/double and the two 16-bit float formats sattn
// emulates on the host: IEEE 754 binary16 ("half", numpy float16) and
// bfloat16 (the top 16 bits of a float32). All rounding is
// round-to-nearest-even, independent of the FPU's rounding mode, and done on
// the bit patterns so results are identical on every host and compiler.
//
// Assumes `float` and `double` are IEEE 754 binary32 / binary64 (checked
// below with static_asserts).
//
// Why hand-written and not a library: the one fitting header-only Debian
// package, libfp16-dev, covers binary16 only (no bfloat16), and Imath's half
// (libimath-dev) needs its compiled lookup-table library and has no bfloat16
// either; neither is installed on a fresh project machine, so either would
// add an install step for ~100 lines of code. The conversions below are
// checked exhaustively (all 65536 half patterns) in tests/unit/io.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace sattn::io {

static_assert(std::numeric_limits<float>::is_iec559 && std::numeric_limits<double>::is_iec559,
              "sattn::io assumes IEEE 754 float and double");

namespace detail {

inline uint32_t floatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float bitsToFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline uint64_t doubleBits(double d) {
  uint64_t u;
  std::memcpy(&u, &d, sizeof u);
  return u;
}

/// Shifts \p m right by \p shift (1..63) rounding to nearest, ties to even.
inline uint64_t shiftRoundNearestEven(uint64_t m, unsigned shift) {
  uint64_t kept = m >> shift;
  uint64_t rem = m & ((uint64_t{1} << shift) - 1);
  uint64_t half = uint64_t{1} << (shift - 1);
  if (rem > half || (rem == half && (kept & 1)))
    ++kept;
  return kept;
}

} // namespace detail

/// Rounds a double directly to the nearest IEEE binary16 value (ties to even)
/// and returns its bit pattern. Rounding straight from double, not through
/// float, avoids double rounding (e.g. 1 + 2^-11 + 2^-40 must round up).
/// Values of magnitude >= 65520 become +-inf; NaN stays a quiet NaN with the
/// sign and the top payload bits kept.
inline uint16_t doubleToHalfBits(double d) {
  const uint64_t u = detail::doubleBits(d);
  const uint16_t sign = static_cast<uint16_t>((u >> 48) & 0x8000u);
  const int exp = static_cast<int>((u >> 52) & 0x7ff);
  const uint64_t frac = u & ((uint64_t{1} << 52) - 1);

  if (exp == 0x7ff) {
    if (frac == 0)
      return sign | 0x7c00u; // infinity
    // Keep the top 10 payload bits and force the quiet bit so a signalling
    // NaN whose payload lives only in the low bits cannot turn into inf.
    return static_cast<uint16_t>(sign | 0x7e00u | (frac >> 42));
  }
  // Double subnormals (and zero) are far below half's smallest subnormal
  // (2^-24): they round to a signed zero.
  if (exp == 0)
    return sign;

  const int e = exp - 1023;                      // unbiased exponent
  const uint64_t m = frac | (uint64_t{1} << 52); // 53-bit significand
  if (e > 15)
    return sign | 0x7c00u; // >= 65536: beyond any rounding to 65504
  if (e >= -14) {
    // Normal range: keep 11 significant bits (implicit 1 + 10 stored).
    uint64_t k = detail::shiftRoundNearestEven(m, 42); // in [2^10, 2^11]
    // k carries the implicit bit, so adding it to (e+14)<<10 yields the
    // biased exponent e+15; a rounding carry bumps the exponent, and from
    // e = 15 it lands exactly on the infinity pattern 0x7c00.
    return static_cast<uint16_t>(sign | ((static_cast<uint64_t>(e + 14) << 10) + k));
  }
  // Subnormal range: the result is k * 2^-24 with k = m * 2^(e - 52 + 24).
  const unsigned shift = static_cast<unsigned>(28 - e); // >= 43
  if (shift > 60)
    return sign; // far below 2^-25, rounds to zero
  // k may round up to 0x400, which is exactly the smallest normal pattern.
  return static_cast<uint16_t>(sign | detail::shiftRoundNearestEven(m, shift));
}

/// Rounds a float to the nearest IEEE binary16 (ties to even) and returns its
/// bit pattern. Exact widening to double, then doubleToHalfBits.
inline uint16_t floatToHalfBits(float f) { return doubleToHalfBits(static_cast<double>(f)); }

/// Converts an IEEE binary16 bit pattern to float; exact for every pattern
/// (subnormals included). NaN payloads are kept.
inline float halfBitsToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t frac = h & 0x3ffu;
  if (exp == 0x1f) // inf / NaN
    return detail::bitsToFloat(sign | 0x7f800000u | (frac << 13));
  if (exp == 0) {
    // Zero or subnormal: frac * 2^-24, exact in float.
    float mag = std::ldexp(static_cast<float>(frac), -24);
    return sign ? -mag : mag;
  }
  return detail::bitsToFloat(sign | ((exp - 15 + 127) << 23) | (frac << 13));
}

/// Rounds a double to the nearest representable IEEE binary16 value (ties to
/// even, overflow to +-inf, gradual underflow) and returns it as a double.
inline double roundToFp16(double d) {
  return static_cast<double>(halfBitsToFloat(doubleToHalfBits(d)));
}

/// Rounds a float to bfloat16 (ties to even) and returns its bit pattern.
/// Overflow rounds to +-inf naturally (0x7f7f + carry = 0x7f80); NaN stays a
/// quiet NaN with its sign.
inline uint16_t floatToBf16Bits(float f) {
  const uint32_t u = detail::floatBits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) // NaN: truncating could yield inf
    return static_cast<uint16_t>((u >> 16) | 0x0040u);
  // Adding 0x7fff plus the lowest kept bit rounds to nearest with ties to
  // even in one integer add.
  const uint32_t rounded = u + 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(rounded >> 16);
}

/// Converts a bfloat16 bit pattern to float (exact: bf16 is a truncated
/// float32).
inline float bf16BitsToFloat(uint16_t b) {
  return detail::bitsToFloat(static_cast<uint32_t>(b) << 16);
}

/// Rounds a double to bfloat16 the way a framework's bf16 cast of a float32
/// tensor would: first to float32 (nearest-even), then to bfloat16
/// (nearest-even). NaN stays NaN, +-inf stays +-inf. The double rounding is
/// deliberate: it matches data that went through float32 on its way to bf16.
inline double roundToBf16(double d) {
  return static_cast<double>(bf16BitsToFloat(floatToBf16Bits(static_cast<float>(d))));
}

} // namespace sattn::io
