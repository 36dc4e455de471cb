//===- CacheTestUtil.h - shared helpers of the cache unit tests -----------===//
//
// A fresh temporary directory per test (mkdtemp, removed afterwards) and
// small whole-file read/write helpers.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace sattn::cache::test {

namespace fs = std::filesystem;

/// A unique, empty directory under the system temp dir, removed with its
/// contents when the test ends.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "sattn-cache-test-XXXXXX").string();
    if (!::mkdtemp(tmpl.data()))
      throw std::runtime_error("mkdtemp failed for " + tmpl);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;

  std::string sub(const std::string &name) const { return (path / name).string(); }
};

inline std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::runtime_error("cannot read " + path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline void writeFile(const std::string &path, const std::string &data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!out)
    throw std::runtime_error("cannot write " + path);
}

/// Sorted names of the files in `dir` (empty if it does not exist).
inline std::vector<std::string> listDir(const std::string &dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    names.push_back(it->path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

/// Names in `dir` that look like leftover temporary files of a write.
inline std::vector<std::string> tmpFiles(const std::string &dir) {
  std::vector<std::string> out;
  for (const std::string &n : listDir(dir))
    if (n.find(".tmp") != std::string::npos)
      out.push_back(n);
  return out;
}

/// A payload with every byte value, NULs included (cubins are binary).
inline std::string binaryPayload(size_t n, unsigned seed = 1) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>((i * 131 + seed * 17) & 0xff);
  return s;
}

} // namespace sattn::cache::test
