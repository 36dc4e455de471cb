//===- DiskCache.cpp - compiled kernels on disk, safe to share -------------===//
//
// Entry layout: "SATTNKC1" | u32 key length | key | u64 payload size |
// 32-byte SHA-256 of payload | payload. Any mismatch — short file, wrong
// magic, other key (hash collision of file names), size or digest — is a
// corrupt entry: recompiled and replaced, never loaded.
//
//===----------------------------------------------------------------------===//
#include "runtime/cache/DiskCache.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/SHA256.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace sattn::cache {

namespace {
constexpr char kMagic[8] = {'S', 'A', 'T', 'T', 'N', 'K', 'C', '1'};

std::string digest(const std::string &text) {
  auto h = llvm::SHA256::hash(llvm::arrayRefFromStringRef(text));
  return std::string(h.begin(), h.end());
}

void makeDirs(const std::string &path) {
  std::string cur;
  std::stringstream ss(path);
  std::string part;
  if (!path.empty() && path[0] == '/')
    cur = "/";
  while (std::getline(ss, part, '/')) {
    if (part.empty())
      continue;
    cur += part + "/";
    if (mkdir(cur.c_str(), 0755) != 0) {
      int e = errno;
      struct stat st;
      if (e == EEXIST && stat(cur.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
        continue;
      throw CacheError("cannot create cache directory '" + path + "' ('" + cur +
                       "': " + std::strerror(e == EEXIST ? ENOTDIR : e) +
                       "); set SATTN_CACHE_DIR to a writable directory");
    }
  }
}

template <typename T> void put(std::string &out, T v) {
  out.append(reinterpret_cast<const char *>(&v), sizeof(T));
}
} // namespace

std::string sha256Hex(const std::string &text) {
  return llvm::toHex(llvm::arrayRefFromStringRef(digest(text)), /*LowerCase=*/true);
}

DiskCache::DiskCache(std::string d) : dir(d.empty() ? defaultDir() : std::move(d)) {}

std::string DiskCache::defaultDir() {
  if (const char *e = std::getenv("SATTN_CACHE_DIR"); e && *e)
    return e;
  if (const char *e = std::getenv("XDG_CACHE_HOME"); e && *e)
    return std::string(e) + "/sattn";
  if (const char *e = std::getenv("HOME"); e && *e)
    return std::string(e) + "/.cache/sattn";
  return "/tmp/sattn-cache";
}

std::string DiskCache::pathFor(const std::string &key) const {
  return dir + "/" + sha256Hex(key).substr(0, 40) + ".bin";
}

std::optional<std::string> DiskCache::load(const std::string &key, Outcome *outcome) const {
  if (outcome)
    *outcome = Outcome::Miss;
  std::ifstream in(pathFor(key), std::ios::binary);
  if (!in)
    return std::nullopt;
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto corrupt = [&]() -> std::optional<std::string> {
    if (outcome)
      *outcome = Outcome::Corrupt;
    return std::nullopt;
  };
  size_t pos = 0;
  auto take = [&](size_t n) -> const char * {
    if (data.size() - pos < n)
      return nullptr;
    const char *p = data.data() + pos;
    pos += n;
    return p;
  };
  const char *magic = take(8);
  if (!magic || std::memcmp(magic, kMagic, 8) != 0)
    return corrupt();
  const char *klen = take(4);
  if (!klen)
    return corrupt();
  uint32_t keyLen;
  std::memcpy(&keyLen, klen, 4);
  const char *k = take(keyLen);
  if (!k || std::string(k, keyLen) != key)
    return corrupt();
  const char *psize = take(8);
  const char *sum = take(32);
  if (!psize || !sum)
    return corrupt();
  uint64_t size;
  std::memcpy(&size, psize, 8);
  if (data.size() - pos != size)
    return corrupt();
  std::string payload = data.substr(pos);
  if (digest(payload) != std::string(sum, 32))
    return corrupt();
  if (outcome)
    *outcome = Outcome::Hit;
  return payload;
}

void DiskCache::store(const std::string &key, const std::string &payload) const {
  makeDirs(dir);
  std::string blob(kMagic, 8);
  put<uint32_t>(blob, static_cast<uint32_t>(key.size()));
  blob += key;
  put<uint64_t>(blob, payload.size());
  blob += digest(payload);
  blob += payload;
  std::string path = pathFor(key);
  std::string tmp = path + ".tmp.XXXXXX";
  int fd = mkstemp(tmp.data());
  if (fd < 0)
    throw CacheError("cannot write cache entry in '" + dir + "': " + std::strerror(errno) +
                     "; set SATTN_CACHE_DIR to a writable directory");
  size_t done = 0;
  while (done < blob.size()) {
    ssize_t n = write(fd, blob.data() + done, blob.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      int e = errno;
      close(fd);
      std::remove(tmp.c_str());
      throw CacheError("cannot write cache entry '" + tmp + "': " + std::strerror(e) +
                       "; set SATTN_CACHE_DIR to a directory with free space");
    }
    done += size_t(n);
  }
  close(fd);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    std::remove(tmp.c_str());
    throw CacheError("cannot place cache entry '" + path + "': " + std::strerror(e));
  }
}

std::string DiskCache::getOrCreate(const std::string &key,
                                   const std::function<std::string()> &compile,
                                   Outcome *outcome) const {
  Outcome first;
  if (std::optional<std::string> hit = load(key, &first)) {
    if (outcome)
      *outcome = Outcome::Hit;
    return *hit;
  }
  makeDirs(dir);
  // One compiler per entry across processes: take the lock, then look again.
  std::string lockPath = pathFor(key) + ".lock";
  int fd = open(lockPath.c_str(), O_CREAT | O_RDWR, 0644);
  if (fd < 0)
    throw CacheError("cannot open cache lock '" + lockPath + "': " + std::strerror(errno) +
                     "; set SATTN_CACHE_DIR to a writable directory");
  while (flock(fd, LOCK_EX) != 0 && errno == EINTR) {
  }
  struct Unlock {
    int fd;
    ~Unlock() {
      flock(fd, LOCK_UN);
      close(fd);
    }
  } unlock{fd};
  Outcome second;
  if (std::optional<std::string> hit = load(key, &second)) {
    if (outcome)
      *outcome = Outcome::Hit;
    return *hit;
  }
  std::string payload = compile();
  store(key, payload);
  if (outcome)
    *outcome = (first == Outcome::Corrupt || second == Outcome::Corrupt) ? Outcome::Corrupt
                                                                         : Outcome::Miss;
  return payload;
}

} // namespace sattn::cache
