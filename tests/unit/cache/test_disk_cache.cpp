//===- test_disk_cache.cpp - DiskCache basics and I/O errors --------------===//
//
// store/load round trips (binary payloads, empty payloads, overwrites), a
// miss, getOrCreate compiling once and then hitting, no temporary files left
// behind, and a CacheError naming the directory and SATTN_CACHE_DIR when
// the cache directory cannot be created or written.
//
//===----------------------------------------------------------------------===//
#include <catch2/catch.hpp>

#include "CacheTestUtil.h"
#include "runtime/cache/DiskCache.h"

#include <fstream>

using namespace sattn::cache;
using namespace sattn::cache::test;
using Catch::Matchers::Contains;

TEST_CASE("store then load returns the same bytes", "[cache]") {
  TempDir tmp;
  DiskCache cache(tmp.sub("c"));
  const std::string payload = binaryPayload(5000);
  cache.store("key-1", payload);
  cache.store("key-2", "");

  Outcome o = Outcome::Corrupt;
  std::optional<std::string> got = cache.load("key-1", &o);
  REQUIRE(got);
  CHECK(o == Outcome::Hit);
  CHECK(*got == payload);

  got = cache.load("key-2", &o);
  REQUIRE(got);
  CHECK(o == Outcome::Hit);
  CHECK(got->empty());

  // A later store replaces the entry.
  cache.store("key-1", "second");
  CHECK(cache.load("key-1") == std::optional<std::string>("second"));
  // Another DiskCache on the same directory sees the entries.
  CHECK(DiskCache(tmp.sub("c")).load("key-1") == std::optional<std::string>("second"));
  CHECK(tmpFiles(tmp.sub("c")).empty());
}

TEST_CASE("entries live in the directory, one file per key", "[cache]") {
  TempDir tmp;
  DiskCache cache(tmp.sub("c"));
  CHECK(cache.directory() == tmp.sub("c"));
  std::string a = cache.pathFor("a"), b = cache.pathFor("b");
  CHECK(a != b);
  CHECK(a.rfind(tmp.sub("c") + "/", 0) == 0);
  CHECK(cache.pathFor("a") == a); // stable
  cache.store("a", "x");
  cache.store("b", "y");
  CHECK(listDir(tmp.sub("c")).size() == 2);
  CHECK(readFile(a).find('x') != std::string::npos);
}

TEST_CASE("a key never stored is a miss", "[cache]") {
  TempDir tmp;
  DiskCache cache(tmp.sub("c"));
  Outcome o = Outcome::Hit;
  CHECK_FALSE(cache.load("absent", &o));
  CHECK(o == Outcome::Miss);
  cache.store("present", "p");
  o = Outcome::Hit;
  CHECK_FALSE(cache.load("absent", &o));
  CHECK(o == Outcome::Miss);
  // Keys differing in one character are different entries.
  CHECK_FALSE(cache.load("presenT"));
}

TEST_CASE("getOrCreate compiles once, then hits", "[cache]") {
  TempDir tmp;
  DiskCache cache(tmp.sub("c"));
  int compiles = 0;
  auto compile = [&] {
    ++compiles;
    return binaryPayload(300, 7);
  };
  Outcome o = Outcome::Hit;
  CHECK(cache.getOrCreate("k", compile, &o) == binaryPayload(300, 7));
  CHECK(o == Outcome::Miss);
  CHECK(compiles == 1);
  for (int i = 0; i < 3; ++i) {
    o = Outcome::Miss;
    CHECK(cache.getOrCreate("k", compile, &o) == binaryPayload(300, 7));
    CHECK(o == Outcome::Hit);
  }
  CHECK(compiles == 1);
  // A new DiskCache (a new process) hits too.
  CHECK(DiskCache(tmp.sub("c")).getOrCreate("k", compile) == binaryPayload(300, 7));
  CHECK(compiles == 1);
  // Another key compiles.
  CHECK(cache.getOrCreate("k2", [&] {
    ++compiles;
    return std::string("two");
  }) == "two");
  CHECK(compiles == 2);
  CHECK(cache.load("k2") == std::optional<std::string>("two"));
  CHECK(tmpFiles(tmp.sub("c")).empty());
}

TEST_CASE("a compile that throws leaves no entry and can be retried", "[cache]") {
  TempDir tmp;
  DiskCache cache(tmp.sub("c"));
  CHECK_THROWS_WITH(
      cache.getOrCreate("k", []() -> std::string { throw std::runtime_error("boom"); }), "boom");
  Outcome o = Outcome::Hit;
  CHECK_FALSE(cache.load("k", &o));
  CHECK(o == Outcome::Miss);
  // The entry lock was released: a retry does not block and succeeds.
  CHECK(cache.getOrCreate("k", [] { return std::string("ok"); }) == "ok");
  CHECK(cache.load("k") == std::optional<std::string>("ok"));
}

TEST_CASE("a directory under a regular file is a CacheError naming it", "[cache][errors]") {
  TempDir tmp;
  writeFile(tmp.sub("file"), "not a directory");
  const std::string dir = tmp.sub("file") + "/sub/cache";
  DiskCache cache(dir);
  // Loading from a directory that cannot exist is a plain miss.
  CHECK_FALSE(cache.load("k"));

  SECTION("store") {
    try {
      cache.store("k", "x");
      FAIL("store did not throw");
    } catch (const CacheError &e) {
      CHECK_THAT(e.what(), Contains(tmp.sub("file")) && Contains("SATTN_CACHE_DIR"));
    }
  }
  SECTION("getOrCreate") {
    try {
      cache.getOrCreate("k", [] { return std::string("x"); });
      FAIL("getOrCreate did not throw");
    } catch (const CacheError &e) {
      CHECK_THAT(e.what(), Contains(tmp.sub("file")) && Contains("SATTN_CACHE_DIR"));
    }
  }
  // Nothing was created inside or next to the regular file.
  CHECK(readFile(tmp.sub("file")) == "not a directory");
  CHECK(listDir(tmp.path.string()) == std::vector<std::string>{"file"});
}

// A regular file where the directory should be: EEXIST from mkdir must not
// count as success.
TEST_CASE("a cache directory that is a regular file is a CacheError naming it", "[cache][errors]") {
  TempDir tmp;
  writeFile(tmp.sub("file"), "not a directory");
  DiskCache cache(tmp.sub("file"));
  try {
    cache.store("k", "x");
    FAIL("store did not throw");
  } catch (const CacheError &e) {
    CHECK_THAT(e.what(), Contains(tmp.sub("file")) && Contains("SATTN_CACHE_DIR"));
  }
  CHECK(readFile(tmp.sub("file")) == "not a directory");
}
