//===- test_concurrency.cpp - several processes sharing one cache ---------===//
//
// N forked children call getOrCreate at the same moment (released together
// by closing a pipe). The compile callback sleeps 200 ms and appends a line
// to a counter file (O_APPEND). On one key exactly one compile may happen
// and every child must get the same payload; on distinct keys each compiles
// its own, in parallel. Children report through files and exit codes; a
// hung child is killed by alarm() so the test fails instead of hanging.
//
//===----------------------------------------------------------------------===//
#include <catch2/catch.hpp>

#include "CacheTestUtil.h"
#include "runtime/cache/DiskCache.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <functional>
#include <fcntl.h>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

using namespace sattn::cache;
using namespace sattn::cache::test;

namespace {

constexpr int kChildren = 6;

/// Exit codes of a child: its Outcome, or a failure.
enum ChildExit { ExitHit = 0, ExitMiss = 1, ExitCorrupt = 2, ExitError = 20 };

struct ChildResult {
  bool exited = false;
  int code = -1;
  std::string payload;
};

void appendLine(const std::string &path, const std::string &line) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0)
    ::_exit(ExitError + 1);
  std::string l = line + "\n";
  if (::write(fd, l.data(), l.size()) != ssize_t(l.size()))
    ::_exit(ExitError + 2);
  ::close(fd);
}

/// Forks kChildren processes; child i runs getOrCreate(keyOf(i)) once all
/// are started, writing what it got to out/child-i. Returns their results.
std::vector<ChildResult> race(const TempDir &tmp, const std::function<std::string(int)> &keyOf) {
  const std::string cacheDir = tmp.sub("cache"), out = tmp.sub("out");
  fs::create_directories(out);
  int gate[2];
  REQUIRE(::pipe(gate) == 0);
  std::vector<pid_t> pids;
  for (int i = 0; i < kChildren; ++i) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::alarm(30);
      ::close(gate[1]);
      char c;
      while (::read(gate[0], &c, 1) < 0 && errno == EINTR) {
      } // EOF once the parent closes its end: all children start together
      try {
        DiskCache cache(cacheDir);
        Outcome o = Outcome::Corrupt;
        std::string key = keyOf(i);
        std::string got = cache.getOrCreate(
            key,
            [&] {
              ::usleep(200 * 1000);
              appendLine(tmp.sub("compiles.txt"), key);
              return "payload for " + key + " compiled by pid " + std::to_string(::getpid()) +
                     std::string(100000, char('a' + i));
            },
            &o);
        writeFile(out + "/child-" + std::to_string(i), got);
        ::_exit(o == Outcome::Hit ? ExitHit : o == Outcome::Miss ? ExitMiss : ExitCorrupt);
      } catch (...) {
        ::_exit(ExitError);
      }
    }
    pids.push_back(pid);
  }
  ::close(gate[0]);
  ::close(gate[1]); // go
  std::vector<ChildResult> results(kChildren);
  for (int i = 0; i < kChildren; ++i) {
    int status = 0;
    REQUIRE(::waitpid(pids[size_t(i)], &status, 0) == pids[size_t(i)]);
    results[size_t(i)].exited = WIFEXITED(status);
    results[size_t(i)].code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    std::error_code ec;
    if (fs::exists(out + "/child-" + std::to_string(i), ec))
      results[size_t(i)].payload = readFile(out + "/child-" + std::to_string(i));
  }
  return results;
}

std::vector<std::string> lines(const std::string &path) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::exists(path, ec))
    return out;
  std::istringstream in(readFile(path));
  for (std::string l; std::getline(in, l);)
    out.push_back(l);
  return out;
}

} // namespace

TEST_CASE("processes racing on one key compile it once", "[cache][concurrency]") {
  TempDir tmp;
  const std::string key = "shared key";
  bool seedCorrupt = GENERATE(false, true);
  CAPTURE(seedCorrupt);
  if (seedCorrupt) {
    // A damaged entry is already there: still exactly one recompile.
    fs::create_directories(tmp.sub("cache"));
    writeFile(DiskCache(tmp.sub("cache")).pathFor(key), "SATTNKC1 garbage");
  }

  std::vector<ChildResult> r = race(tmp, [&](int) { return key; });

  int compiled = 0, hits = 0;
  for (int i = 0; i < kChildren; ++i) {
    CAPTURE(i, r[size_t(i)].code);
    REQUIRE(r[size_t(i)].exited);
    REQUIRE(r[size_t(i)].code < ExitError);
    compiled += r[size_t(i)].code != ExitHit;
    hits += r[size_t(i)].code == ExitHit;
    CHECK(!r[size_t(i)].payload.empty());
    CHECK(r[size_t(i)].payload == r[0].payload);
  }
  CHECK(lines(tmp.sub("compiles.txt")).size() == 1);
  CHECK(compiled == 1);
  CHECK(hits == kChildren - 1);

  DiskCache cache(tmp.sub("cache"));
  Outcome o = Outcome::Miss;
  std::optional<std::string> entry = cache.load(key, &o);
  CHECK(o == Outcome::Hit);
  CHECK(entry == std::optional<std::string>(r[0].payload));
  CHECK(tmpFiles(tmp.sub("cache")).empty());
}

TEST_CASE("processes on different keys compile in parallel", "[cache][concurrency]") {
  TempDir tmp;
  auto keyOf = [](int i) { return "key " + std::to_string(i); };
  auto start = std::chrono::steady_clock::now();
  std::vector<ChildResult> r = race(tmp, keyOf);
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();

  std::vector<std::string> compiled = lines(tmp.sub("compiles.txt"));
  std::sort(compiled.begin(), compiled.end());
  std::vector<std::string> expected;
  for (int i = 0; i < kChildren; ++i)
    expected.push_back(keyOf(i));
  std::sort(expected.begin(), expected.end());
  CHECK(compiled == expected); // each key compiled exactly once

  DiskCache cache(tmp.sub("cache"));
  for (int i = 0; i < kChildren; ++i) {
    CAPTURE(i, r[size_t(i)].code);
    REQUIRE(r[size_t(i)].exited);
    CHECK(r[size_t(i)].code == ExitMiss);
    CHECK(r[size_t(i)].payload.rfind("payload for " + keyOf(i) + " ", 0) == 0);
    Outcome o = Outcome::Miss;
    CHECK(cache.load(keyOf(i), &o) == std::optional<std::string>(r[size_t(i)].payload));
    CHECK(o == Outcome::Hit);
  }
  // Six 200 ms compiles one after another would take 1.2 s.
  CHECK(ms < 1000);
  CHECK(tmpFiles(tmp.sub("cache")).empty());
}
