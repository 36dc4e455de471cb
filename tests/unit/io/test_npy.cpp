//===- test_npy.cpp - Tests of the .npy reader and writer -----------------===//
//
// Every fixture is built here byte by byte (magic, version, header length,
// header dict, little-endian data) in a fresh temporary directory, so the
// tests need neither Python nor numpy. Covers each supported dtype, header
// versions 1.0/2.0/3.0, the header spellings numpy versions produce, 0-d and
// empty arrays, every rejected input (checking the NpyError message), and
// the atomicity of writes.
//
//===----------------------------------------------------------------------===//
#include <catch2/catch.hpp>

#include "runtime/io/Dtype.h"
#include "runtime/io/Npy.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include <unistd.h>

using namespace sattn::io;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

/// A fresh directory under the system temp dir, removed with its contents.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("sattn-io-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;

  std::string file(const std::string &name) const { return (path / name).string(); }
  /// Sorted names of everything in the directory (temp files included).
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto &e : fs::directory_iterator(path))
      names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
};

/// \p n little-endian bytes of \p v.
std::string le(uint64_t v, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i)
    s += static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

std::string f32Bytes(const std::vector<float> &vals) {
  std::string s;
  for (float f : vals) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    s += le(u, 4);
  }
  return s;
}

std::string f64Bytes(const std::vector<double> &vals) {
  std::string s;
  for (double d : vals) {
    uint64_t u;
    std::memcpy(&u, &d, sizeof u);
    s += le(u, 8);
  }
  return s;
}

std::string intBytes(const std::vector<int64_t> &vals, size_t n) {
  std::string s;
  for (int64_t v : vals)
    s += le(static_cast<uint64_t>(v), n);
  return s;
}

const std::string kMagic("\x93NUMPY", 6);

/// A complete .npy image with header \p dict padded like numpy does (data
/// 64-byte aligned, header ending in '\n').
std::string npyImage(const std::string &dict, const std::string &data, int major = 1,
                     int minor = 0) {
  const size_t lenField = major == 1 ? 2 : 4;
  std::string header = dict;
  const size_t total = kMagic.size() + 2 + lenField + header.size() + 1;
  header += std::string((64 - total % 64) % 64, ' ') + "\n";
  return kMagic + static_cast<char>(major) + static_cast<char>(minor) +
         le(header.size(), lenField) + header + data;
}

/// The dict numpy writes for a C-ordered array.
std::string dictFor(const std::string &descr, const std::string &shape,
                    const std::string &fortran = "False") {
  return "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }";
}

std::string writeRaw(const TempDir &dir, const std::string &name, const std::string &bytes) {
  std::string p = dir.file(name);
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
  return p;
}

std::string readBytes(const std::string &p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// The message of the NpyError \p fn throws; fails the test if it throws
/// nothing (any other exception type propagates and fails it too).
std::string npyErrorOf(const std::function<void()> &fn) {
  try {
    fn();
  } catch (const NpyError &e) {
    return e.what();
  }
  FAIL("expected sattn::io::NpyError, nothing was thrown");
  return {};
}

/// Writes \p bytes as a fixture and returns readNpy's error message, after
/// checking that it names the file.
std::string readError(const TempDir &dir, const std::string &bytes) {
  static int n = 0;
  std::string p = writeRaw(dir, "bad" + std::to_string(n++) + ".npy", bytes);
  std::string msg = npyErrorOf([&] { readNpy(p); });
  CHECK_THAT(msg, Contains(p));
  return msg;
}

/// Compares doubles bit-for-bit in meaning: NaN equals NaN, and the sign of
/// zero matters.
bool sameValue(double a, double b) {
  if (std::isnan(a) || std::isnan(b))
    return std::isnan(a) && std::isnan(b);
  return a == b && std::signbit(a) == std::signbit(b);
}

} // namespace

//===----------------------------------------------------------------------===//
// Reading each dtype
//===----------------------------------------------------------------------===//

TEST_CASE("readNpy decodes every supported dtype", "[npy][read]") {
  struct Case {
    std::string descr;
    NpyDtype dtype;
    std::string name;
    size_t itemSize;
    std::string data;
    std::vector<double> expect;
  };
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<Case> cases = {
      {"<f2",
       NpyDtype::Float16,
       "float16",
       2,
       intBytes({0x3c00, 0xc100, 0x7bff, 0x0001, 0x7c00, 0x8000}, 2),
       {1.0, -2.5, 65504.0, std::ldexp(1.0, -24), inf, -0.0}},
      {"<f4",
       NpyDtype::Float32,
       "float32",
       4,
       f32Bytes({1.5f, -0.1f, FLT_MAX, std::numeric_limits<float>::denorm_min(),
                 -std::numeric_limits<float>::infinity()}),
       {1.5, static_cast<double>(-0.1f), static_cast<double>(FLT_MAX),
        static_cast<double>(std::numeric_limits<float>::denorm_min()), -inf}},
      {"<f8",
       NpyDtype::Float64,
       "float64",
       8,
       f64Bytes({0.1, -1e300, std::numeric_limits<double>::denorm_min()}),
       {0.1, -1e300, std::numeric_limits<double>::denorm_min()}},
      {"|i1", NpyDtype::Int8, "int8", 1, intBytes({-128, 127, 0, -1}, 1), {-128, 127, 0, -1}},
      {"<i2", NpyDtype::Int16, "int16", 2, intBytes({-32768, 32767, -1}, 2), {-32768, 32767, -1}},
      {"<i4",
       NpyDtype::Int32,
       "int32",
       4,
       intBytes({INT32_MIN, INT32_MAX, -1}, 4),
       {INT32_MIN, INT32_MAX, -1}},
      {"<i8",
       NpyDtype::Int64,
       "int64",
       8,
       intBytes({-(int64_t{1} << 40), int64_t{1} << 53, -1}, 8),
       {-std::ldexp(1.0, 40), std::ldexp(1.0, 53), -1}},
      {"|u1", NpyDtype::UInt8, "uint8", 1, intBytes({255, 0, 1}, 1), {255, 0, 1}},
      {"<u2", NpyDtype::UInt16, "uint16", 2, intBytes({65535, 7}, 2), {65535, 7}},
      {"<u4", NpyDtype::UInt32, "uint32", 4, intBytes({4294967295LL, 7}, 4), {4294967295.0, 7}},
      {"<u8",
       NpyDtype::UInt64,
       "uint64",
       8,
       le(uint64_t{1} << 63, 8) + le(3, 8),
       {std::ldexp(1.0, 63), 3}},
      {"|b1", NpyDtype::Bool, "bool", 1, intBytes({0, 1, 1, 0}, 1), {0, 1, 1, 0}},
  };
  TempDir dir;
  for (const Case &c : cases) {
    INFO("descr " << c.descr);
    const std::string shape = "(" + std::to_string(c.expect.size()) + ",)";
    std::string p = writeRaw(dir, c.name + ".npy", npyImage(dictFor(c.descr, shape), c.data));
    NpyArray a = readNpy(p);
    CHECK(a.dtype == c.dtype);
    CHECK(dtypeName(a.dtype) == c.name);
    CHECK(dtypeItemSize(a.dtype) == c.itemSize);
    REQUIRE(a.shape == std::vector<int64_t>{static_cast<int64_t>(c.expect.size())});
    REQUIRE(a.values.size() == c.expect.size());
    for (size_t i = 0; i < c.expect.size(); ++i) {
      INFO("element " << i << ": " << a.values[i] << " vs " << c.expect[i]);
      CHECK(sameValue(a.values[i], c.expect[i]));
    }
  }
}

TEST_CASE("readNpy keeps NaN and reads multi-dimensional C order", "[npy][read]") {
  TempDir dir;
  std::string p =
      writeRaw(dir, "m.npy",
               npyImage(dictFor("<f4", "(2, 3)"),
                        f32Bytes({0, 1, 2, 3, std::numeric_limits<float>::quiet_NaN(), 5})));
  NpyArray a = readNpy(p);
  CHECK(a.shape == std::vector<int64_t>{2, 3});
  REQUIRE(a.values.size() == 6);
  CHECK(a.values[3] == 3.0);
  CHECK(std::isnan(a.values[4]));
  CHECK(a.values[5] == 5.0);
}

TEST_CASE("readNpy accepts '>' and '=' on single-byte dtypes", "[npy][read]") {
  TempDir dir;
  std::string p = writeRaw(dir, "b.npy", npyImage(dictFor(">i1", "(2,)"), intBytes({-3, 4}, 1)));
  CHECK(readNpy(p).values == std::vector<double>{-3, 4});
  p = writeRaw(dir, "n.npy", npyImage(dictFor("=u1", "(1,)"), intBytes({9}, 1)));
  CHECK(readNpy(p).values == std::vector<double>{9});
}

//===----------------------------------------------------------------------===//
// Header versions and spellings
//===----------------------------------------------------------------------===//

TEST_CASE("readNpy reads format versions 2.0 and 3.0", "[npy][read]") {
  TempDir dir;
  for (int major : {2, 3}) {
    INFO("version " << major << ".0");
    std::string p = writeRaw(dir, "v" + std::to_string(major) + ".npy",
                             npyImage(dictFor("<f8", "(3,)"), f64Bytes({1, 2, 3}), major));
    NpyArray a = readNpy(p);
    CHECK(a.dtype == NpyDtype::Float64);
    CHECK(a.shape == std::vector<int64_t>{3});
    CHECK(a.values == std::vector<double>{1, 2, 3});
  }
}

TEST_CASE("readNpy accepts the header spellings numpy produces", "[npy][read]") {
  const std::vector<std::string> dicts = {
      // numpy >= 1.9
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
      // no trailing comma
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}",
      // keys in another order
      "{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}",
      // no spaces at all
      "{'descr':'<f4','fortran_order':False,'shape':(2,3),}",
      // odd spacing, newlines, trailing comma inside the tuple
      "{ 'descr' : '<f4' ,\n 'fortran_order' : False , 'shape' : ( 2 , 3 , ) "
      ", }",
      // Python 2 era: double quotes and long integers
      "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2L, 3L)}",
      // numpy >= 1.23 leaves room after the dict for the header to grow
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" + std::string(21, ' '),
  };
  TempDir dir;
  int n = 0;
  for (const std::string &dict : dicts) {
    INFO("header " << dict);
    std::string p = writeRaw(dir, "h" + std::to_string(n++) + ".npy",
                             npyImage(dict, f32Bytes({1, 2, 3, 4, 5, 6})));
    NpyArray a = readNpy(p);
    CHECK(a.dtype == NpyDtype::Float32);
    CHECK(a.shape == std::vector<int64_t>{2, 3});
    CHECK(a.values == std::vector<double>{1, 2, 3, 4, 5, 6});
  }

  SECTION("an unpadded header without newline is accepted") {
    std::string dict = dictFor("<i4", "(2,)");
    std::string bytes = kMagic + '\x01' + '\x00' + le(dict.size(), 2) + dict + intBytes({7, -8}, 4);
    std::string p = writeRaw(dir, "unpadded.npy", bytes);
    CHECK(readNpy(p).values == std::vector<double>{7, -8});
  }
  SECTION("fortran_order True is accepted when the layout is the same") {
    std::string p =
        writeRaw(dir, "f1.npy", npyImage(dictFor("<f4", "(3,)", "True"), f32Bytes({1, 2, 3})));
    CHECK(readNpy(p).values == std::vector<double>{1, 2, 3});
    p = writeRaw(dir, "f2.npy", npyImage(dictFor("<f4", "(1, 3, 1)", "True"), f32Bytes({1, 2, 3})));
    CHECK(readNpy(p).shape == std::vector<int64_t>{1, 3, 1});
  }
}

TEST_CASE("readNpy handles 0-d and empty arrays", "[npy][read]") {
  TempDir dir;
  SECTION("0-d array, shape ()") {
    std::string p = writeRaw(dir, "s.npy", npyImage(dictFor("<f8", "()"), f64Bytes({2.5})));
    NpyArray a = readNpy(p);
    CHECK(a.shape.empty());
    CHECK(a.values == std::vector<double>{2.5});
  }
  SECTION("zero-element arrays") {
    for (const char *shape : {"(0,)", "(2, 0, 3)", "(0, 0)"}) {
      INFO("shape " << shape);
      std::string p = writeRaw(dir, "e.npy", npyImage(dictFor("<f4", shape), ""));
      NpyArray a = readNpy(p);
      CHECK(a.values.empty());
      CHECK(a.shape.size() >= 1);
    }
  }
  SECTION("a huge extent times zero is still empty") {
    std::string p =
        writeRaw(dir, "z.npy", npyImage(dictFor("<f8", "(0, 9223372036854775807)"), ""));
    CHECK(readNpy(p).values.empty());
  }
}

//===----------------------------------------------------------------------===//
// Rejected inputs
//===----------------------------------------------------------------------===//

TEST_CASE("readNpy reports files it cannot open", "[npy][error]") {
  TempDir dir;
  SECTION("missing file") {
    std::string p = dir.file("nope.npy");
    std::string msg = npyErrorOf([&] { readNpy(p); });
    CHECK_THAT(msg, Contains(p) && Contains("cannot open") &&
                        Contains("No such file or directory") && Contains("check the path"));
  }
  SECTION("directory") {
    std::string msg = npyErrorOf([&] { readNpy(dir.path.string()); });
    CHECK_THAT(msg, Contains("is a directory"));
  }
  SECTION("unreadable file") {
    if (::geteuid() == 0)
      return; // root ignores file permissions
    std::string p = writeRaw(dir, "locked.npy", npyImage(dictFor("<f4", "(1,)"), f32Bytes({1})));
    fs::permissions(p, fs::perms::none);
    CHECK_THAT(npyErrorOf([&] { readNpy(p); }),
               Contains("cannot open") && Contains("Permission denied"));
  }
}

TEST_CASE("readNpy rejects files that are not .npy", "[npy][error]") {
  TempDir dir;
  CHECK_THAT(readError(dir, "hello world, not numpy at all"),
             Contains("not an npy file") && Contains("bad magic") && Contains("hello wo"));
  CHECK_THAT(readError(dir, ""), Contains("not an npy file") && Contains("the file is empty"));
  CHECK_THAT(readError(dir, std::string("PK\x03\x04rest-of-zip", 16)),
             Contains("zip archive") && Contains(".npz"));
  CHECK_THAT(readError(dir, kMagic + '\x01'), Contains("truncated") && Contains("version bytes"));
  CHECK_THAT(readError(dir, kMagic + '\x01' + '\x00' + '\x10'),
             Contains("truncated") && Contains("header length"));
}

TEST_CASE("readNpy rejects unsupported format versions", "[npy][error]") {
  TempDir dir;
  const std::string dict = dictFor("<f4", "(1,)");
  CHECK_THAT(readError(dir, npyImage(dict, f32Bytes({1}), 4)),
             Contains("unsupported .npy format version 4.0") &&
                 Contains("supported: 1.0, 2.0, 3.0"));
  CHECK_THAT(readError(dir, npyImage(dict, f32Bytes({1}), 1, 1)),
             Contains("unsupported .npy format version 1.1"));
  CHECK_THAT(readError(dir, npyImage(dict, f32Bytes({1}), 0)),
             Contains("unsupported .npy format version 0.0"));
}

TEST_CASE("readNpy rejects malformed header dicts", "[npy][error]") {
  TempDir dir;
  const std::string data = f32Bytes({1, 2, 3});
  auto err = [&](const std::string &dict) { return readError(dir, npyImage(dict, data)); };

  SECTION("header length beyond the end of the file") {
    std::string bytes = kMagic + '\x01' + '\x00' + le(500, 2) + "{'descr'";
    CHECK_THAT(readError(dir, bytes), Contains("truncated header") && Contains("says 500 bytes") &&
                                          Contains("only 8 follow"));
  }
  SECTION("unterminated dict") {
    CHECK_THAT(err("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), "),
               Contains("malformed header") && Contains("unterminated dict") &&
                   Contains("np.save"));
  }
  SECTION("unterminated string") {
    CHECK_THAT(err("{'descr: '<f4'}"), Contains("malformed header"));
    CHECK_THAT(err("{'descr"), Contains("unterminated string"));
  }
  SECTION("unterminated tuple") {
    CHECK_THAT(err("{'descr': '<f4', 'fortran_order': False, 'shape': (3,"),
               Contains("unterminated tuple"));
  }
  SECTION("not a dict") {
    CHECK_THAT(err("['descr', '<f4']"),
               Contains("malformed header") && Contains("must start with '{'"));
  }
  SECTION("missing colon, comma or value") {
    CHECK_THAT(err("{'descr' '<f4'}"), Contains("expected ':' after key 'descr'"));
    CHECK_THAT(err("{'descr': '<f4' 'shape': (3,)}"), Contains("expected ',' or '}'"));
    CHECK_THAT(err("{'descr': }"), Contains("unexpected character '}'"));
    CHECK_THAT(err("{'descr': '<f4', 'fortran_order': Falsey, 'shape': (3,)}"),
               Contains("unexpected character 'F'"));
  }
  SECTION("text after the dict") {
    CHECK_THAT(err(dictFor("<f4", "(3,)") + " junk"),
               Contains("unexpected text after the closing '}'"));
  }
  SECTION("non-string key") { CHECK_THAT(err("{1: 2}"), Contains("dict keys must be strings")); }
  SECTION("missing keys") {
    CHECK_THAT(err("{'fortran_order': False, 'shape': (3,)}"), Contains("missing 'descr'"));
    CHECK_THAT(err("{'descr': '<f4', 'shape': (3,)}"), Contains("missing 'fortran_order'"));
    CHECK_THAT(err("{'descr': '<f4', 'fortran_order': False}"), Contains("missing 'shape'"));
  }
  SECTION("unexpected and duplicate keys") {
    CHECK_THAT(err("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), "
                   "'extra': 1}"),
               Contains("unexpected key 'extra'"));
    CHECK_THAT(err("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, "
                   "'shape': (3,)}"),
               Contains("duplicate key 'descr'"));
  }
  SECTION("wrongly typed values") {
    CHECK_THAT(err("{'descr': 4, 'fortran_order': False, 'shape': (3,)}"),
               Contains("'descr' must be a string"));
    CHECK_THAT(err("{'descr': '<f4', 'fortran_order': 0, 'shape': (3,)}"),
               Contains("'fortran_order' must be True or False"));
    CHECK_THAT(err("{'descr': '', 'fortran_order': False, 'shape': (3,)}"),
               Contains("empty dtype descriptor"));
  }
  SECTION("bad shape tuples") {
    CHECK_THAT(err(dictFor("<f4", "[3]")), Contains("bad shape tuple") && Contains("found a list"));
    CHECK_THAT(err(dictFor("<f4", "3")), Contains("bad shape tuple"));
    CHECK_THAT(err(dictFor("<f4", "(3, 'a')")),
               Contains("bad shape tuple") && Contains("found a string"));
    CHECK_THAT(err(dictFor("<f4", "(-3,)")),
               Contains("bad shape tuple (-3,)") && Contains("negative extent"));
    CHECK_THAT(err(dictFor("<f4", "(99999999999999999999,)")), Contains("does not fit in 64 bits"));
    CHECK_THAT(err(dictFor("<f4", "(4294967296, 4294967296)")), Contains("overflows 64 bits"));
    // Fits int64 as an element count but not as a byte count.
    CHECK_THAT(err(dictFor("<f8", "(2305843009213693952,)")), Contains("overflows 64 bits"));
  }
}

TEST_CASE("readNpy rejects data it cannot represent", "[npy][error]") {
  TempDir dir;
  auto err = [&](const std::string &descr, const std::string &data,
                 const std::string &fortran = "False", const std::string &shape = "(2,)") {
    return readError(dir, npyImage(dictFor(descr, shape, fortran), data));
  };

  SECTION("big-endian") {
    CHECK_THAT(err(">f4", std::string(8, '\0')), Contains("big-endian") && Contains("'>f4'") &&
                                                     Contains("convert with arr.astype('<f4')"));
    CHECK_THAT(err(">i8", std::string(16, '\0')),
               Contains("big-endian") && Contains("arr.astype('<i8')"));
  }
  SECTION("Fortran order") {
    CHECK_THAT(err("<f4", std::string(24, '\0'), "True", "(2, 3)"),
               Contains("Fortran-ordered") && Contains("np.ascontiguousarray"));
  }
  SECTION("complex") {
    CHECK_THAT(err("<c8", std::string(16, '\0')),
               Contains("complex dtype '<c8' is not supported") && Contains("arr.real"));
    CHECK_THAT(err("<c16", std::string(32, '\0')), Contains("complex dtype"));
  }
  SECTION("object") {
    CHECK_THAT(err("|O", std::string(16, '\0')),
               Contains("object dtype") && Contains("astype('<f4')"));
  }
  SECTION("strings") {
    CHECK_THAT(err("<U5", std::string(40, '\0')), Contains("string dtype '<U5'"));
    CHECK_THAT(err("|S3", std::string(6, '\0')), Contains("string dtype '|S3'"));
  }
  SECTION("bfloat16 saved as void") {
    CHECK_THAT(err("|V2", std::string(4, '\0')), Contains("'|V2'") && Contains("bfloat16") &&
                                                     Contains(".npy has no bf16") &&
                                                     Contains("astype(np.float32)"));
    CHECK_THAT(err("|V8", std::string(16, '\0')), Contains("raw void dtype"));
  }
  SECTION("structured") {
    CHECK_THAT(readError(dir, npyImage("{'descr': [('a', '<f4'), ('b', '<i4')], "
                                       "'fortran_order': False, 'shape': (2,), }",
                                       std::string(16, '\0'))),
               Contains("structured (record) dtypes are not supported"));
  }
  SECTION("other dtypes") {
    CHECK_THAT(err("<f16", std::string(32, '\0')),
               Contains("float128") && Contains("astype('<f8')"));
    CHECK_THAT(err("<M8[ns]", std::string(16, '\0')), Contains("datetime/timedelta dtype"));
    CHECK_THAT(err("<i3", std::string(6, '\0')), Contains("unsupported dtype '<i3'"));
    CHECK_THAT(err("<x4", std::string(8, '\0')), Contains("unsupported dtype '<x4'"));
    CHECK_THAT(err("|b2", std::string(4, '\0')), Contains("unsupported dtype '|b2'"));
  }
}

TEST_CASE("readNpy checks the data length against the shape", "[npy][error]") {
  TempDir dir;
  const std::string dict = dictFor("<f4", "(2, 3)");
  CHECK_THAT(readError(dir, npyImage(dict, std::string(20, '\0'))),
             Contains("truncated data") &&
                 Contains("shape (2, 3) of float32 needs 24 data bytes") &&
                 Contains("only 20 are present"));
  CHECK_THAT(readError(dir, npyImage(dict, "")),
             Contains("truncated data") && Contains("only 0 are present"));
  CHECK_THAT(readError(dir, npyImage(dict, std::string(28, '\0'))),
             Contains("has 4 extra bytes") && Contains("28 present"));
  CHECK_THAT(readError(dir, npyImage(dictFor("<f8", "()"), std::string(16, '\0'))),
             Contains("has 8 extra bytes"));
  CHECK_THAT(readError(dir, npyImage(dictFor("<f4", "(0,)"), "x")), Contains("has 1 extra bytes"));
  CHECK_THAT(readError(dir, npyImage(dictFor("<f4", "(1152921504606846975,)"), "abcd")),
             Contains("truncated data"));
}

//===----------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------===//

TEST_CASE("writeNpyF32 writes numpy's layout and reads back", "[npy][write]") {
  TempDir dir;
  const std::string p = dir.file("out.npy");
  const std::vector<double> vals = {
      0.1, -2.0, 1e39, -1e39, std::numeric_limits<double>::quiet_NaN(), 65504.0};
  writeNpyF32(p, {2, 3}, vals);

  const std::string bytes = readBytes(p);
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  REQUIRE(bytes.size() == 128 + 24);
  CHECK(bytes.substr(0, 8) == kMagic + '\x01' + '\x00');
  CHECK(bytes.substr(8, 2) == le(118, 2));
  CHECK(bytes.substr(10, dict.size()) == dict);
  CHECK(bytes[127] == '\n');
  CHECK(bytes.substr(10 + dict.size(), 117 - dict.size()) == std::string(117 - dict.size(), ' '));
  CHECK(bytes.substr(128) == f32Bytes({0.1f, -2.0f, std::numeric_limits<float>::infinity(),
                                       -std::numeric_limits<float>::infinity(),
                                       std::numeric_limits<float>::quiet_NaN(), 65504.0f}));

  NpyArray a = readNpy(p);
  CHECK(a.dtype == NpyDtype::Float32);
  CHECK(a.shape == std::vector<int64_t>{2, 3});
  REQUIRE(a.values.size() == 6);
  CHECK(a.values[0] == static_cast<double>(0.1f));
  CHECK(a.values[1] == -2.0);
  CHECK(std::isinf(a.values[2]));
  CHECK(a.values[3] < 0);
  CHECK(std::isnan(a.values[4]));
  CHECK(a.values[5] == 65504.0);
  CHECK(dir.entries() == std::vector<std::string>{"out.npy"});
}

TEST_CASE("writeNpyI32 writes int32 and reads back", "[npy][write]") {
  TempDir dir;
  const std::string p = dir.file("idx.npy");
  writeNpyI32(p, {4}, {0, -1, 2147483647.0, -2147483648.0});
  CHECK(readBytes(p).substr(10, 16) == "{'descr': '<i4',");
  NpyArray a = readNpy(p);
  CHECK(a.dtype == NpyDtype::Int32);
  CHECK(a.shape == std::vector<int64_t>{4});
  CHECK(a.values == std::vector<double>{0, -1, 2147483647.0, -2147483648.0});
}

TEST_CASE("writeNpy handles 0-d, empty and rank-64 shapes", "[npy][write]") {
  TempDir dir;
  SECTION("0-d") {
    writeNpyF32(dir.file("s.npy"), {}, {3.5});
    CHECK(readBytes(dir.file("s.npy")).find("'shape': (), }") != std::string::npos);
    NpyArray a = readNpy(dir.file("s.npy"));
    CHECK(a.shape.empty());
    CHECK(a.values == std::vector<double>{3.5});
  }
  SECTION("empty") {
    writeNpyI32(dir.file("e.npy"), {2, 0}, {});
    NpyArray a = readNpy(dir.file("e.npy"));
    CHECK(a.shape == std::vector<int64_t>{2, 0});
    CHECK(a.values.empty());
    CHECK(readBytes(dir.file("e.npy")).size() % 64 == 0);
  }
  SECTION("64 dimensions, numpy's maximum") {
    std::vector<int64_t> shape(64, 1);
    writeNpyF32(dir.file("r64.npy"), shape, {7.0});
    NpyArray a = readNpy(dir.file("r64.npy"));
    CHECK(a.shape == shape);
    CHECK(a.values == std::vector<double>{7.0});
  }
}

TEST_CASE("writeNpy rejects bad arguments before creating anything", "[npy][write][error]") {
  TempDir dir;
  const std::string p = dir.file("x.npy");
  CHECK_THAT(npyErrorOf([&] {
               writeNpyF32(p, {2, 3}, {1, 2, 3, 4, 5});
             }),
             Contains(p) && Contains("shape (2, 3) has 6 elements but 5 "
                                     "values were given"));
  CHECK_THAT(npyErrorOf([&] { writeNpyF32(p, {-1}, {}); }), Contains("invalid shape (-1,)"));
  CHECK_THAT(npyErrorOf([&] { writeNpyF32(p, std::vector<int64_t>(65, 1), {1}); }),
             Contains("65 dimensions, numpy supports at most 64"));
  CHECK_THAT(npyErrorOf([&] {
               writeNpyI32(p, {2}, {1, 1.5});
             }),
             Contains("value 1.5 at flat index 1 is not an integer in int32 "
                      "range"));
  CHECK_THAT(npyErrorOf([&] { writeNpyI32(p, {1}, {2147483648.0}); }),
             Contains("not an integer in int32 range"));
  CHECK_THAT(npyErrorOf([&] { writeNpyI32(p, {1}, {std::numeric_limits<double>::quiet_NaN()}); }),
             Contains("not an integer in int32 range"));
  CHECK(dir.entries().empty());
}

TEST_CASE("writeNpy is atomic", "[npy][write][atomic]") {
  TempDir dir;
  SECTION("missing target directory: error, nothing created") {
    const std::string p = (dir.path / "no-such-dir" / "out.npy").string();
    CHECK_THAT(npyErrorOf([&] { writeNpyF32(p, {1}, {1}); }),
               Contains(p) && Contains("No such file or directory") &&
                   Contains("does not exist, create it first"));
    CHECK_FALSE(fs::exists(p));
    CHECK(dir.entries().empty());
  }
  SECTION("target is a directory: error, no temp file left") {
    fs::create_directory(dir.path / "sub");
    const std::string p = dir.file("sub");
    CHECK_THAT(npyErrorOf([&] { writeNpyF32(p, {1}, {1}); }), Contains(p) && Contains("rename"));
    CHECK(dir.entries() == std::vector<std::string>{"sub"});
    CHECK(fs::is_empty(dir.path / "sub"));
  }
  SECTION("a failed write keeps the previous file intact") {
    const std::string p = dir.file("keep.npy");
    writeNpyF32(p, {2}, {1, 2});
    CHECK_THROWS_AS(writeNpyF32(p, {3}, {1, 2}), NpyError);
    CHECK_THROWS_AS(writeNpyI32(p, {1}, {0.5}), NpyError);
    CHECK(readNpy(p).values == std::vector<double>{1, 2});
    CHECK(dir.entries() == std::vector<std::string>{"keep.npy"});
  }
  SECTION("overwriting replaces the file and leaves no temp files") {
    const std::string p = dir.file("a.npy");
    writeNpyF32(p, {2}, {1, 2});
    writeNpyI32(p, {3}, {4, 5, 6});
    writeNpyF32(dir.file("b.npy"), {}, {9});
    CHECK(readNpy(p).values == std::vector<double>{4, 5, 6});
    CHECK(readNpy(p).dtype == NpyDtype::Int32);
    CHECK(dir.entries() == std::vector<std::string>{"a.npy", "b.npy"});
  }
  SECTION("a path without a file name is rejected") {
    CHECK_THAT(npyErrorOf([&] { writeNpyF32(dir.path.string() + "/", {1}, {1}); }),
               Contains("no file name"));
    CHECK(dir.entries().empty());
  }
}

TEST_CASE("dtypeName matches numpy's names", "[npy]") {
  CHECK(dtypeName(NpyDtype::Float16) == "float16");
  CHECK(dtypeName(NpyDtype::Float32) == "float32");
  CHECK(dtypeName(NpyDtype::Float64) == "float64");
  CHECK(dtypeName(NpyDtype::Int8) == "int8");
  CHECK(dtypeName(NpyDtype::Int16) == "int16");
  CHECK(dtypeName(NpyDtype::Int32) == "int32");
  CHECK(dtypeName(NpyDtype::Int64) == "int64");
  CHECK(dtypeName(NpyDtype::UInt8) == "uint8");
  CHECK(dtypeName(NpyDtype::UInt16) == "uint16");
  CHECK(dtypeName(NpyDtype::UInt32) == "uint32");
  CHECK(dtypeName(NpyDtype::UInt64) == "uint64");
  CHECK(dtypeName(NpyDtype::Bool) == "bool");
}

TEST_CASE("float16 files agree with Dtype.h", "[npy][dtype]") {
  // Every finite half value written as raw bits reads back as the float
  // halfBitsToFloat gives, and roundToFp16 leaves it unchanged.
  TempDir dir;
  std::string data;
  std::vector<double> expect;
  for (uint32_t h = 0; h < 0x7c00; h += 37) {
    data += le(h, 2);
    expect.push_back(halfBitsToFloat(static_cast<uint16_t>(h)));
  }
  std::string p = writeRaw(
      dir, "h.npy", npyImage(dictFor("<f2", "(" + std::to_string(expect.size()) + ",)"), data));
  NpyArray a = readNpy(p);
  REQUIRE(a.values == expect);
  for (double v : a.values)
    REQUIRE(roundToFp16(v) == v);
}
