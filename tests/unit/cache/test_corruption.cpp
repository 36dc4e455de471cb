//===- test_corruption.cpp - corrupt cache entries are never trusted ------===//
//
// Each way an entry can be damaged (truncated at offsets in every header
// field and in the payload, a flipped byte in the magic, key, size, digest
// or payload, another key's entry at the path, trailing bytes, an empty
// file, a huge key length) must make load() report Outcome::Corrupt, and
// getOrCreate() must recompile and replace the file so the next load hits.
//
// Entry layout (DiskCache.cpp): "SATTNKC1" | u32 key length | key |
// u64 payload size | 32-byte SHA-256 | payload.
//
//===----------------------------------------------------------------------===//
#include <catch2/catch.hpp>

#include "CacheTestUtil.h"
#include "runtime/cache/DiskCache.h"

#include <functional>

using namespace sattn::cache;
using namespace sattn::cache::test;

namespace {

const std::string kKey = "sattn 0.1.0\nnvrtc 13.0\narch sm_90a\n// kernel source";
const std::string kOld = binaryPayload(1000, 3);
const std::string kNew = binaryPayload(700, 9);

// Offsets of the fields for kKey.
constexpr size_t kMagicEnd = 8, kKeyLenEnd = 12;
size_t keyEnd() { return kKeyLenEnd + kKey.size(); }
size_t sizeEnd() { return keyEnd() + 8; }
size_t headerEnd() { return sizeEnd() + 32; }

/// Stores kOld under kKey, damages the file with `mutate`, then checks the
/// entry is reported corrupt and that getOrCreate replaces it.
void checkCorruptThenRecovered(const std::function<void(std::string &)> &mutate) {
  TempDir tmp;
  DiskCache cache(tmp.sub("c"));
  cache.store(kKey, kOld);
  const std::string path = cache.pathFor(kKey);
  std::string bytes = readFile(path);
  REQUIRE(bytes.size() == headerEnd() + kOld.size()); // the layout assumed here
  mutate(bytes);
  writeFile(path, bytes);

  Outcome o = Outcome::Hit;
  CHECK_FALSE(cache.load(kKey, &o));
  CHECK(o == Outcome::Corrupt);

  int compiles = 0;
  o = Outcome::Hit;
  std::string got = cache.getOrCreate(
      kKey,
      [&] {
        ++compiles;
        return kNew;
      },
      &o);
  CHECK(compiles == 1);
  CHECK(got == kNew);
  CHECK(o == Outcome::Corrupt);

  // The file was replaced: the next lookups hit without compiling.
  o = Outcome::Corrupt;
  std::optional<std::string> again = cache.load(kKey, &o);
  REQUIRE(again);
  CHECK(o == Outcome::Hit);
  CHECK(*again == kNew);
  CHECK(cache.getOrCreate(kKey, [&] {
    ++compiles;
    return std::string("x");
  }) == kNew);
  CHECK(compiles == 1);
  CHECK(tmpFiles(tmp.sub("c")).empty());
}

void flip(std::string &bytes, size_t at) {
  REQUIRE(at < bytes.size());
  bytes[at] = static_cast<char>(bytes[at] ^ 0x01);
}

} // namespace

TEST_CASE("an intact entry is not reported corrupt", "[cache][corrupt]") {
  // Guards the helper: with no damage, the entry must hit.
  TempDir tmp;
  DiskCache cache(tmp.sub("c"));
  cache.store(kKey, kOld);
  REQUIRE(readFile(cache.pathFor(kKey)).size() == headerEnd() + kOld.size());
  Outcome o = Outcome::Miss;
  CHECK(cache.load(kKey, &o) == std::optional<std::string>(kOld));
  CHECK(o == Outcome::Hit);
}

TEST_CASE("a truncated entry is corrupt", "[cache][corrupt]") {
  size_t cut = GENERATE(size_t(1), size_t(4), kMagicEnd, size_t(10), kKeyLenEnd, kKeyLenEnd + 5,
                        keyEnd(), keyEnd() + 3, sizeEnd(), sizeEnd() + 16, headerEnd(),
                        headerEnd() + 1, headerEnd() + 500, headerEnd() + 999);
  CAPTURE(cut);
  checkCorruptThenRecovered([&](std::string &b) { b.resize(cut); });
}

TEST_CASE("an empty file is corrupt", "[cache][corrupt]") {
  checkCorruptThenRecovered([](std::string &b) { b.clear(); });
}

TEST_CASE("a flipped byte anywhere is corrupt", "[cache][corrupt]") {
  size_t at = GENERATE(size_t(0), size_t(7),                               // magic
                       size_t(8), size_t(11),                              // key length
                       kKeyLenEnd, keyEnd() - 1,                           // key
                       keyEnd(), sizeEnd() - 1,                            // payload size
                       sizeEnd(), headerEnd() - 1,                         // digest
                       headerEnd(), headerEnd() + 500, headerEnd() + 999); // payload
  CAPTURE(at);
  checkCorruptThenRecovered([&](std::string &b) { flip(b, at); });
}

TEST_CASE("extra trailing bytes are corrupt", "[cache][corrupt]") {
  std::string extra = GENERATE(std::string(1, '\0'), std::string("x"), std::string(4096, 'z'));
  CAPTURE(extra.size());
  checkCorruptThenRecovered([&](std::string &b) { b += extra; });
}

TEST_CASE("a huge key length is corrupt, not a crash", "[cache][corrupt]") {
  checkCorruptThenRecovered([](std::string &b) {
    for (size_t i = kMagicEnd; i < kKeyLenEnd; ++i)
      b[i] = '\xff';
  });
}

TEST_CASE("another key's entry at the path is corrupt", "[cache][corrupt]") {
  TempDir tmp;
  DiskCache cache(tmp.sub("c"));
  const std::string a = "key A", b = "key B";
  cache.store(a, "payload of A");
  // Simulates a file-name collision: B's path holds A's (valid) entry.
  writeFile(cache.pathFor(b), readFile(cache.pathFor(a)));

  Outcome o = Outcome::Hit;
  CHECK_FALSE(cache.load(b, &o));
  CHECK(o == Outcome::Corrupt);

  int compiles = 0;
  o = Outcome::Hit;
  CHECK(cache.getOrCreate(
            b,
            [&] {
              ++compiles;
              return std::string("payload of B");
            },
            &o) == "payload of B");
  CHECK(compiles == 1);
  CHECK(o == Outcome::Corrupt);
  o = Outcome::Miss;
  CHECK(cache.load(b, &o) == std::optional<std::string>("payload of B"));
  CHECK(o == Outcome::Hit);
  // A's entry is untouched.
  CHECK(cache.load(a) == std::optional<std::string>("payload of A"));
}
