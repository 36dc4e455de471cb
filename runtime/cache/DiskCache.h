//===- DiskCache.h - compiled kernels on disk, safe to share ---------------===//
//
// Design §6: entries live in $SATTN_CACHE_DIR (default ~/.cache/sattn),
// one file per key. Each entry carries a header (magic, key, payload size,
// SHA-256 of the payload), so a corrupt or truncated file is detected and
// recompiled rather than trusted. Writes go to a temporary file that is
// renamed into place; a per-entry file lock makes concurrent processes
// compile an entry once, and each re-checks the cache after taking it.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

namespace sattn::cache {

struct CacheError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// What happened to one lookup (for tests and --json reports).
enum class Outcome { Hit, Miss, Corrupt };

class DiskCache {
public:
  /// Uses `dir` (created on demand); empty means defaultDir().
  explicit DiskCache(std::string dir = "");

  /// $SATTN_CACHE_DIR, else $XDG_CACHE_HOME/sattn, else $HOME/.cache/sattn.
  static std::string defaultDir();

  /// The payload stored under `key`, if a valid entry exists. A corrupt
  /// entry yields nullopt and sets *outcome to Corrupt.
  std::optional<std::string> load(const std::string &key, Outcome *outcome = nullptr) const;

  /// Stores atomically (temp file + rename); throws CacheError on I/O failure.
  void store(const std::string &key, const std::string &payload) const;

  /// load(), else compile() under the entry's lock and store the result.
  std::string getOrCreate(const std::string &key, const std::function<std::string()> &compile,
                          Outcome *outcome = nullptr) const;

  /// The file that holds `key`.
  std::string pathFor(const std::string &key) const;
  const std::string &directory() const { return dir; }

private:
  std::string dir;
};

/// Hex SHA-256 of `text` (cache keys).
std::string sha256Hex(const std::string &text);

} // namespace sattn::cache
