//===- test_default_dir.cpp - where the cache lives by default ------------===//
//
// DiskCache::defaultDir(): $SATTN_CACHE_DIR, else $XDG_CACHE_HOME/sattn,
// else $HOME/.cache/sattn (an empty variable counts as unset), and a
// DiskCache built with no directory stores there. The three variables are
// restored after every test.
//
//===----------------------------------------------------------------------===//
#include <catch2/catch.hpp>

#include "CacheTestUtil.h"
#include "runtime/cache/DiskCache.h"

#include <cstdlib>
#include <optional>

#include "tests/unit/EnvGuard.h"

using namespace sattn::cache;
using namespace sattn::cache::test;

using sattn::testing::EnvGuard;

TEST_CASE("defaultDir honours SATTN_CACHE_DIR, XDG_CACHE_HOME, HOME in that order",
          "[cache][env]") {
  EnvGuard sattnDir("SATTN_CACHE_DIR"), xdg("XDG_CACHE_HOME"), home("HOME");
  sattnDir.set("/s/dir");
  xdg.set("/x/cache");
  home.set("/h/user");

  SECTION("SATTN_CACHE_DIR wins, used as is") { CHECK(DiskCache::defaultDir() == "/s/dir"); }
  SECTION("then XDG_CACHE_HOME/sattn") {
    sattnDir.unset();
    CHECK(DiskCache::defaultDir() == "/x/cache/sattn");
  }
  SECTION("then HOME/.cache/sattn") {
    sattnDir.unset();
    xdg.unset();
    CHECK(DiskCache::defaultDir() == "/h/user/.cache/sattn");
  }
  SECTION("empty variables count as unset") {
    sattnDir.set("");
    CHECK(DiskCache::defaultDir() == "/x/cache/sattn");
    xdg.set("");
    CHECK(DiskCache::defaultDir() == "/h/user/.cache/sattn");
  }
  SECTION("none set: still a usable absolute path") {
    sattnDir.unset();
    xdg.unset();
    home.unset();
    std::string d = DiskCache::defaultDir();
    CHECK(!d.empty());
    CHECK(d[0] == '/');
  }
}

TEST_CASE("a DiskCache with no directory uses defaultDir()", "[cache][env]") {
  EnvGuard sattnDir("SATTN_CACHE_DIR"), xdg("XDG_CACHE_HOME");
  TempDir tmp;
  SECTION("SATTN_CACHE_DIR") {
    sattnDir.set(tmp.sub("from-env"));
    DiskCache cache;
    CHECK(cache.directory() == tmp.sub("from-env"));
    cache.store("k", "v");
    CHECK(DiskCache(tmp.sub("from-env")).load("k") == std::optional<std::string>("v"));
  }
  SECTION("XDG_CACHE_HOME") {
    sattnDir.unset();
    xdg.set(tmp.sub("xdg"));
    DiskCache cache("");
    CHECK(cache.directory() == tmp.sub("xdg") + "/sattn");
    CHECK(cache.getOrCreate("k", [] { return std::string("v"); }) == "v");
    CHECK(listDir(tmp.sub("xdg") + "/sattn").size() >= 1);
  }
}
