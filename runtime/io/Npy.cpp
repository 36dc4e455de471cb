//===- Npy.cpp - Read and write NumPy .npy files --------------------------===//
//
// The .npy format (numpy/lib/format.py): the magic "\x93NUMPY", a major and
// minor version byte, the header length (uint16 LE for 1.0, uint32 LE for 2.0
// and 3.0), then an ASCII (UTF-8 for 3.0) Python dict literal with the keys
// 'descr', 'fortran_order' and 'shape', padded with spaces and a newline, and
// finally the raw element bytes.
//
// The header dict is read with a small hand-written parser for the subset of
// Python literals numpy writes (strings, True/False/None, integers, tuples,
// lists), tolerant of the spacing, key order and trailing commas that
// different numpy versions produce. Element bytes are decoded explicitly as
// little-endian, so reading does not depend on the host's byte order; the
// writer emits the same layout numpy does (header padded so the data starts
// at a multiple of 64 bytes).
//
// Writing uses POSIX open/write/fsync/rename so that the output appears
// atomically.
//
//===----------------------------------------------------------------------===//
#include "runtime/io/Npy.h"

#include "runtime/io/Dtype.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <sstream>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace sattn::io {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
// numpy aligns the start of the data to 64 bytes (ARRAY_ALIGN) so it can be
// memory-mapped with any element type; we do the same when writing.
constexpr size_t kArrayAlign = 64;
// numpy cannot create arrays of higher rank (NPY_MAXDIMS), so a file we
// wrote with more dimensions could not be loaded.
constexpr size_t kMaxDims = 64;

[[noreturn]] void failRead(const std::string &path, const std::string &what) {
  throw NpyError("npy file '" + path + "': " + what);
}

[[noreturn]] void failWrite(const std::string &path, const std::string &what) {
  throw NpyError("cannot write npy file '" + path + "': " + what);
}

std::string errnoText(int err) { return std::strerror(err); }

/// Python-style shape text: "()", "(3,)", "(2, 3)".
std::string shapeText(const std::vector<int64_t> &shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1)
    s += ",";
  return s + ")";
}

/// Element count of \p shape, or -1 if an extent is negative or the product
/// overflows int64. \p bytesPerElem lets callers also reject shapes whose
/// byte size would overflow.
int64_t checkedNumel(const std::vector<int64_t> &shape, int64_t bytesPerElem) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0)
      return -1;
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      return -1;
    n *= d;
  }
  if (n != 0 && n > std::numeric_limits<int64_t>::max() / bytesPerElem)
    return -1;
  return n;
}

/// Printable rendering of raw bytes for messages (non-printables as \xNN).
std::string escapeBytes(const unsigned char *p, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = p[i];
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      s += static_cast<char>(c);
    } else {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      s += buf;
    }
  }
  return s;
}

//===----------------------------------------------------------------------===//
// Header dict parser
//===----------------------------------------------------------------------===//

/// A Python literal as it appears in an .npy header.
struct PyValue {
  enum class Kind { Str, Bool, None, Int, Tuple, List };
  Kind kind = Kind::None;
  std::string str;
  bool boolean = false;
  int64_t integer = 0;
  std::vector<PyValue> items;
};

const char *kindName(PyValue::Kind k) {
  switch (k) {
  case PyValue::Kind::Str:
    return "a string";
  case PyValue::Kind::Bool:
    return "a bool";
  case PyValue::Kind::None:
    return "None";
  case PyValue::Kind::Int:
    return "an integer";
  case PyValue::Kind::Tuple:
    return "a tuple";
  case PyValue::Kind::List:
    return "a list";
  }
  return "?";
}

/// Recursive-descent parser for the header's dict literal. Errors are
/// reported as "malformed header" with the offset and the header text, since
/// a bad header almost always means a corrupt or hand-made file.
class HeaderParser {
public:
  HeaderParser(const std::string &filePath, const std::string &headerText)
      : path(filePath), text(headerText) {}

  std::vector<std::pair<std::string, PyValue>> parseDict() {
    skipSpace();
    expect('{', "the header must start with '{'");
    std::vector<std::pair<std::string, PyValue>> entries;
    while (true) {
      skipSpace();
      if (atEnd())
        fail("unterminated dict (no closing '}')");
      if (peek() == '}') {
        ++pos;
        break;
      }
      PyValue key = parseValue(0);
      if (key.kind != PyValue::Kind::Str)
        fail(std::string("dict keys must be strings, found ") + kindName(key.kind));
      skipSpace();
      expect(':', "expected ':' after key '" + key.str + "'");
      PyValue value = parseValue(0);
      entries.emplace_back(key.str, std::move(value));
      skipSpace();
      if (atEnd())
        fail("unterminated dict (no closing '}')");
      if (peek() == ',') {
        ++pos; // a trailing comma before '}' is allowed, as in Python
        continue;
      }
      if (peek() != '}')
        fail("expected ',' or '}' after the value of '" + entries.back().first + "'");
    }
    // numpy pads the dict with spaces and ends it with '\n'; anything else
    // after the dict means the length field or the header is wrong.
    skipSpace();
    if (!atEnd())
      fail("unexpected text after the closing '}'");
    return entries;
  }

private:
  const std::string &path;
  const std::string &text;
  size_t pos = 0;

  [[noreturn]] void fail(const std::string &what) const {
    std::string shown = text.substr(0, 200);
    while (!shown.empty() && (shown.back() == ' ' || shown.back() == '\n'))
      shown.pop_back();
    failRead(path,
             "malformed header: " + what + " (at offset " + std::to_string(pos) + " of header \"" +
                 escapeBytes(reinterpret_cast<const unsigned char *>(shown.data()), shown.size()) +
                 "\"); the file is corrupt or was not written by numpy, "
                 "re-save it with np.save");
  }

  bool atEnd() const { return pos >= text.size(); }
  char peek() const { return text[pos]; }

  void skipSpace() {
    while (!atEnd() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r'))
      ++pos;
  }

  void expect(char c, const std::string &what) {
    if (atEnd() || peek() != c)
      fail(what);
    ++pos;
  }

  bool consumeWord(const char *word) {
    size_t n = std::strlen(word);
    if (text.compare(pos, n, word) != 0)
      return false;
    // Reject prefixes of longer identifiers such as "Trueish".
    if (pos + n < text.size() &&
        (std::isalnum(static_cast<unsigned char>(text[pos + n])) || text[pos + n] == '_'))
      return false;
    pos += n;
    return true;
  }

  PyValue parseValue(int depth) {
    // Nesting only occurs for structured dtypes ([('a', '<f4', (2,))]); a
    // bound keeps a hostile header from exhausting the stack.
    if (depth > 32)
      fail("nesting too deep");
    skipSpace();
    if (atEnd())
      fail("unexpected end of header, expected a value");
    char c = peek();
    PyValue v;
    if (c == '\'' || c == '"') {
      v.kind = PyValue::Kind::Str;
      v.str = parseString();
    } else if (c == '(' || c == '[') {
      v.kind = c == '(' ? PyValue::Kind::Tuple : PyValue::Kind::List;
      char close = c == '(' ? ')' : ']';
      ++pos;
      while (true) {
        skipSpace();
        if (atEnd())
          fail(std::string("unterminated ") +
               (c == '(' ? "tuple (no closing ')')" : "list (no closing ']')"));
        if (peek() == close) {
          ++pos;
          break;
        }
        v.items.push_back(parseValue(depth + 1));
        skipSpace();
        if (atEnd())
          continue; // reported as unterminated above
        if (peek() == ',') {
          ++pos;
          continue;
        }
        if (peek() != close)
          fail(std::string("expected ',' or '") + close + "' in " + (c == '(' ? "tuple" : "list"));
      }
    } else if (c == '-' || c == '+' || std::isdigit(static_cast<unsigned char>(c))) {
      v.kind = PyValue::Kind::Int;
      v.integer = parseInt();
    } else if (consumeWord("True")) {
      v.kind = PyValue::Kind::Bool;
      v.boolean = true;
    } else if (consumeWord("False")) {
      v.kind = PyValue::Kind::Bool;
      v.boolean = false;
    } else if (consumeWord("None")) {
      v.kind = PyValue::Kind::None;
    } else {
      fail(std::string("unexpected character '") +
           escapeBytes(reinterpret_cast<const unsigned char *>(&text[pos]), 1) + "'");
    }
    return v;
  }

  std::string parseString() {
    char quote = text[pos++];
    std::string s;
    while (true) {
      if (atEnd())
        fail("unterminated string");
      char c = text[pos++];
      if (c == quote)
        return s;
      if (c == '\\') {
        // Only simple escapes matter here (dtype strings are plain ASCII);
        // keep the escaped character literally.
        if (atEnd())
          fail("unterminated string");
        c = text[pos++];
      }
      s += c;
    }
  }

  int64_t parseInt() {
    bool negative = false;
    if (peek() == '-' || peek() == '+') {
      negative = peek() == '-';
      ++pos;
    }
    if (atEnd() || !std::isdigit(static_cast<unsigned char>(peek())))
      fail("expected digits after sign");
    // Accumulate as a negative number so INT64_MIN parses without overflow.
    int64_t value = 0;
    while (!atEnd() && std::isdigit(static_cast<unsigned char>(peek()))) {
      int digit = peek() - '0';
      if (value < (std::numeric_limits<int64_t>::min() + digit) / 10)
        failRead(path, "shape extent '" + text.substr(pos, 24) +
                           "...' in the header does not fit in 64 bits; the "
                           "header is corrupt, re-save the array with np.save");
      value = value * 10 - digit;
      ++pos;
    }
    // Python 2 era numpy wrote longs as "3L".
    if (!atEnd() && (peek() == 'L' || peek() == 'l'))
      ++pos;
    if (!negative) {
      if (value == std::numeric_limits<int64_t>::min())
        failRead(path, "shape extent in the header does not fit in 64 bits; "
                       "the header is corrupt, re-save the array with np.save");
      value = -value;
    }
    return value;
  }
};

//===----------------------------------------------------------------------===//
// dtype descriptors
//===----------------------------------------------------------------------===//

/// Maps a descr string such as "<f4" to a supported dtype, or throws a
/// message that explains why the dtype cannot be read and how to convert.
NpyDtype parseDescr(const std::string &path, const std::string &descr) {
  char order = '=';
  std::string body = descr;
  if (!body.empty() && std::strchr("<>|=", body[0])) {
    order = body[0];
    body = body.substr(1);
  }
  if (body.empty())
    failRead(path, "malformed header: empty dtype descriptor '" + descr + "'");
  char kind = body[0];
  std::string sizeText = body.substr(1);
  int size = 0;
  bool sizeOk = !sizeText.empty() && sizeText.size() <= 6;
  for (char c : sizeText)
    sizeOk = sizeOk && std::isdigit(static_cast<unsigned char>(c));
  if (sizeOk)
    size = std::stoi(sizeText);

  const std::string convertHint =
      "; convert it with arr.astype('<f4') (or '<f8' / '<i4' / '<i8') and "
      "save again";
  std::string quoted = "'" + descr + "'";
  switch (kind) {
  case 'c':
    failRead(path, "complex dtype " + quoted +
                       " is not supported; save the real and imaginary parts "
                       "as separate float arrays (arr.real, arr.imag)");
  case 'O':
    failRead(path,
             "object dtype " + quoted + " (pickled Python objects) is not supported" + convertHint);
  case 'U':
  case 'S':
  case 'a':
    failRead(path, "string dtype " + quoted + " is not supported; sattn reads numeric arrays only");
  case 'M':
  case 'm':
    failRead(path, "datetime/timedelta dtype " + quoted + " is not supported" + convertHint);
  case 'V':
    if (size == 2)
      failRead(path, "void dtype " + quoted +
                         " is not supported; this is how bfloat16 arrays (e.g. "
                         "ml_dtypes.bfloat16) are saved, since .npy has no bf16 "
                         "type: save them as float32 with arr.astype(np.float32) "
                         "(bf16 -> f32 is exact)");
    failRead(path, "raw void dtype " + quoted + " is not supported; save a plain numeric array" +
                       convertHint);
  default:
    break;
  }

  NpyDtype dtype = NpyDtype::Float32;
  bool known = sizeOk;
  if (known) {
    switch (kind) {
    case 'f':
      if (size == 2)
        dtype = NpyDtype::Float16;
      else if (size == 4)
        dtype = NpyDtype::Float32;
      else if (size == 8)
        dtype = NpyDtype::Float64;
      else
        failRead(path, "floating dtype " + quoted +
                           " (long double / float128) is not supported; "
                           "convert it with arr.astype('<f8') and save again");
      break;
    case 'i':
    case 'u': {
      bool isSigned = kind == 'i';
      if (size == 1)
        dtype = isSigned ? NpyDtype::Int8 : NpyDtype::UInt8;
      else if (size == 2)
        dtype = isSigned ? NpyDtype::Int16 : NpyDtype::UInt16;
      else if (size == 4)
        dtype = isSigned ? NpyDtype::Int32 : NpyDtype::UInt32;
      else if (size == 8)
        dtype = isSigned ? NpyDtype::Int64 : NpyDtype::UInt64;
      else
        known = false;
      break;
    }
    case 'b':
    case '?':
      known = size == 1;
      dtype = NpyDtype::Bool;
      break;
    default:
      known = false;
      break;
    }
  }
  if (!known)
    failRead(path, "unsupported dtype " + quoted + convertHint);

  // Single-byte types have no byte order ('|'); for wider ones numpy writes
  // '<' or '>'. '=' (native) never comes from np.save; it is taken as
  // little-endian, the byte order of every host sattn runs on.
  if (order == '>' && dtypeItemSize(dtype) > 1) {
    std::string le = "<" + body;
    failRead(path, "big-endian data (" + quoted + ") is not supported; convert with arr.astype('" +
                       le + "') and save again");
  }
  return dtype;
}

uint64_t loadLE(const unsigned char *p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i)
    v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

double decodeElement(NpyDtype dtype, const unsigned char *p) {
  switch (dtype) {
  case NpyDtype::Float16:
    return halfBitsToFloat(static_cast<uint16_t>(loadLE(p, 2)));
  case NpyDtype::Float32: {
    uint32_t u = static_cast<uint32_t>(loadLE(p, 4));
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
  }
  case NpyDtype::Float64: {
    uint64_t u = loadLE(p, 8);
    double d;
    std::memcpy(&d, &u, sizeof d);
    return d;
  }
  case NpyDtype::Int8:
    return static_cast<int8_t>(p[0]);
  case NpyDtype::Int16:
    return static_cast<int16_t>(static_cast<uint16_t>(loadLE(p, 2)));
  case NpyDtype::Int32:
    return static_cast<int32_t>(static_cast<uint32_t>(loadLE(p, 4)));
  case NpyDtype::Int64:
    return static_cast<double>(static_cast<int64_t>(loadLE(p, 8)));
  case NpyDtype::UInt8:
    return p[0];
  case NpyDtype::UInt16:
    return static_cast<double>(loadLE(p, 2));
  case NpyDtype::UInt32:
    return static_cast<double>(loadLE(p, 4));
  case NpyDtype::UInt64:
    return static_cast<double>(loadLE(p, 8));
  case NpyDtype::Bool:
    return p[0] != 0 ? 1.0 : 0.0;
  }
  return 0.0;
}

/// Reads the whole file; the data is needed in full anyway and this gives
/// exact byte counts for the truncation / extra-bytes checks.
std::vector<unsigned char> readAll(const std::string &path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    failRead(path, "is a directory, not a .npy file; pass the path of the "
                   "file inside it");
  std::unique_ptr<FILE, int (*)(FILE *)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) {
    int err = errno;
    std::string hint = err == ENOENT   ? "; check the path (relative paths are resolved "
                                         "from the current directory)"
                       : err == EACCES ? "; check the file's permissions"
                                       : "";
    failRead(path, "cannot open: " + errnoText(err) + hint);
  }
  std::vector<unsigned char> bytes;
  unsigned char buf[1 << 16];
  while (true) {
    size_t got = std::fread(buf, 1, sizeof buf, f.get());
    bytes.insert(bytes.end(), buf, buf + got);
    if (got < sizeof buf) {
      if (std::ferror(f.get()))
        failRead(path, "read error: " + errnoText(errno));
      break;
    }
  }
  return bytes;
}

//===----------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------===//

/// Removes the temporary file unless the write was committed by rename.
struct TempFileGuard {
  std::string tmpPath;
  int fd = -1;
  bool committed = false;
  ~TempFileGuard() {
    if (fd >= 0)
      ::close(fd);
    if (!committed && !tmpPath.empty())
      ::unlink(tmpPath.c_str());
  }
};

/// Serialises a numpy-compatible header and \p data and installs the file at
/// \p path atomically.
void writeNpyBytes(const std::string &path, const std::vector<int64_t> &shape,
                   const std::string &descr, const std::vector<unsigned char> &data) {
  // The same dict text numpy writes (numpy also appends spaces so the header
  // can grow in place; readers do not care).
  std::string dict =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shapeText(shape) + ", }";
  // Pad with spaces and a final '\n' so the data starts on a 64-byte
  // boundary; like numpy, pad even when already aligned (1..64 bytes).
  // Version 1.0 always suffices: with at most kMaxDims extents of at most
  // 19 digits the header stays far below v1.0's 65535-byte limit.
  const size_t hlen = dict.size() + 1;
  const size_t pad = kArrayAlign - ((kMagicLen + 2 + 2 + hlen) % kArrayAlign);
  const std::string header = dict + std::string(pad, ' ') + "\n";

  std::vector<unsigned char> bytes(kMagic, kMagic + kMagicLen);
  bytes.push_back(1); // format version 1.0
  bytes.push_back(0);
  bytes.push_back(static_cast<unsigned char>(header.size() & 0xff));
  bytes.push_back(static_cast<unsigned char>(header.size() >> 8));
  bytes.insert(bytes.end(), header.begin(), header.end());
  bytes.insert(bytes.end(), data.begin(), data.end());

  namespace fs = std::filesystem;
  fs::path target(path);
  if (!target.has_filename())
    failWrite(path, "the path has no file name");
  fs::path dir = target.parent_path();
  if (dir.empty())
    dir = ".";

  // The temporary lives next to the target so rename() stays within one
  // file system (and is therefore atomic). O_EXCL plus a pid/counter name
  // keeps concurrent writers apart; mode 0666 lets the umask decide the
  // final permissions exactly as for a file numpy creates.
  static std::atomic<unsigned> counter{0};
  TempFileGuard guard;
  for (int attempt = 0; attempt < 100 && guard.fd < 0; ++attempt) {
    fs::path tmp = dir / ("." + target.filename().string() + ".tmp." + std::to_string(::getpid()) +
                          "." + std::to_string(counter++));
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) {
      guard.fd = fd;
      guard.tmpPath = tmp.string();
      break;
    }
    int err = errno;
    if (err == EEXIST)
      continue;
    std::string hint = err == ENOENT   ? "; the directory does not exist, create it first"
                       : err == EACCES ? "; check the directory's permissions"
                                       : "";
    failWrite(path,
              "cannot create a temporary file in '" + dir.string() + "': " + errnoText(err) + hint);
  }
  if (guard.fd < 0)
    failWrite(path, "cannot create a unique temporary file in '" + dir.string() + "'");

  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(guard.fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      failWrite(path,
                "write to temporary file '" + guard.tmpPath + "' failed: " + errnoText(errno));
    }
    done += static_cast<size_t>(n);
  }
  // fsync before rename: otherwise a crash can leave a renamed but empty
  // file, defeating the point of the atomic write.
  if (::fsync(guard.fd) != 0)
    failWrite(path, "fsync failed: " + errnoText(errno));
  int fd = guard.fd;
  guard.fd = -1;
  if (::close(fd) != 0)
    failWrite(path, "close failed: " + errnoText(errno));
  if (::rename(guard.tmpPath.c_str(), path.c_str()) != 0) {
    int err = errno;
    std::string hint = err == EISDIR ? "; the path is a directory, give a file name" : "";
    failWrite(path, "rename from '" + guard.tmpPath + "' failed: " + errnoText(err) + hint);
  }
  guard.committed = true;
}

/// Checks that \p shape is valid and holds exactly \p count elements.
void checkWriteShape(const std::string &path, const std::vector<int64_t> &shape, size_t count,
                     int64_t itemSize) {
  if (shape.size() > kMaxDims)
    failWrite(path, "shape has " + std::to_string(shape.size()) +
                        " dimensions, numpy supports at most " + std::to_string(kMaxDims));
  int64_t n = checkedNumel(shape, itemSize);
  if (n < 0)
    failWrite(path,
              "invalid shape " + shapeText(shape) + " (negative extent or too many elements)");
  if (static_cast<uint64_t>(n) != count)
    failWrite(path, "shape " + shapeText(shape) + " has " + std::to_string(n) + " elements but " +
                        std::to_string(count) + " values were given");
}

void storeLE(std::vector<unsigned char> &out, size_t at, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i)
    out[at + i] = static_cast<unsigned char>((v >> (8 * i)) & 0xff);
}

} // namespace

std::string dtypeName(NpyDtype dtype) {
  switch (dtype) {
  case NpyDtype::Float16:
    return "float16";
  case NpyDtype::Float32:
    return "float32";
  case NpyDtype::Float64:
    return "float64";
  case NpyDtype::Int8:
    return "int8";
  case NpyDtype::Int16:
    return "int16";
  case NpyDtype::Int32:
    return "int32";
  case NpyDtype::Int64:
    return "int64";
  case NpyDtype::UInt8:
    return "uint8";
  case NpyDtype::UInt16:
    return "uint16";
  case NpyDtype::UInt32:
    return "uint32";
  case NpyDtype::UInt64:
    return "uint64";
  case NpyDtype::Bool:
    return "bool";
  }
  return "unknown";
}

size_t dtypeItemSize(NpyDtype dtype) {
  switch (dtype) {
  case NpyDtype::Int8:
  case NpyDtype::UInt8:
  case NpyDtype::Bool:
    return 1;
  case NpyDtype::Float16:
  case NpyDtype::Int16:
  case NpyDtype::UInt16:
    return 2;
  case NpyDtype::Float32:
  case NpyDtype::Int32:
  case NpyDtype::UInt32:
    return 4;
  case NpyDtype::Float64:
  case NpyDtype::Int64:
  case NpyDtype::UInt64:
    return 8;
  }
  return 0;
}

NpyArray readNpy(const std::string &path) {
  std::vector<unsigned char> bytes = readAll(path);
  const size_t size = bytes.size();

  if (size < kMagicLen || std::memcmp(bytes.data(), kMagic, kMagicLen) != 0) {
    if (size >= 4 && std::memcmp(bytes.data(), "PK\x03\x04", 4) == 0)
      failRead(path, "not an npy file: this is a zip archive, probably an "
                     ".npz; extract the array you need and save it with "
                     "np.save(path, np.load(npz)['name'])");
    failRead(path, "not an npy file (bad magic: expected \\x93NUMPY, found \"" +
                       escapeBytes(bytes.data(), std::min<size_t>(size, 8)) + "\"" +
                       (size == 0 ? ", the file is empty" : "") + "); save arrays with np.save");
  }
  if (size < kMagicLen + 2)
    failRead(path, "truncated: the file ends inside the version bytes");
  const unsigned major = bytes[6], minor = bytes[7];
  if (major < 1 || major > 3 || minor != 0)
    failRead(path, "unsupported .npy format version " + std::to_string(major) + "." +
                       std::to_string(minor) +
                       " (supported: 1.0, 2.0, 3.0); re-save it with np.save "
                       "from numpy >= 1.17");
  const size_t lenField = major == 1 ? 2 : 4;
  const size_t headerStart = kMagicLen + 2 + lenField;
  if (size < headerStart)
    failRead(path, "truncated: the file ends inside the header length field");
  const size_t headerLen = static_cast<size_t>(loadLE(bytes.data() + kMagicLen + 2, lenField));
  if (headerLen > size - headerStart)
    failRead(path, "truncated header: the header length field says " + std::to_string(headerLen) +
                       " bytes but only " + std::to_string(size - headerStart) +
                       " follow; the file was cut short");
  const std::string header(reinterpret_cast<const char *>(bytes.data()) + headerStart, headerLen);

  HeaderParser parser(path, header);
  auto entries = parser.parseDict();
  const PyValue *descr = nullptr, *fortran = nullptr, *shapeVal = nullptr;
  for (const auto &[key, value] : entries) {
    const PyValue **slot = key == "descr"           ? &descr
                           : key == "fortran_order" ? &fortran
                           : key == "shape"         ? &shapeVal
                                                    : nullptr;
    if (!slot)
      failRead(path, "malformed header: unexpected key '" + key +
                         "' (expected 'descr', 'fortran_order', 'shape')");
    if (*slot)
      failRead(path, "malformed header: duplicate key '" + key + "'");
    *slot = &value;
  }
  for (auto [val, name] : {std::pair{descr, "descr"}, std::pair{fortran, "fortran_order"},
                           std::pair{shapeVal, "shape"}})
    if (!val)
      failRead(path, std::string("malformed header: missing '") + name +
                         "' key; re-save the array with np.save");

  if (descr->kind == PyValue::Kind::List)
    failRead(path, "structured (record) dtypes are not supported; save each "
                   "field as its own plain numeric array");
  if (descr->kind != PyValue::Kind::Str)
    failRead(path, std::string("malformed header: 'descr' must be a string, "
                               "found ") +
                       kindName(descr->kind));
  if (fortran->kind != PyValue::Kind::Bool)
    failRead(path, std::string("malformed header: 'fortran_order' must be "
                               "True or False, found ") +
                       kindName(fortran->kind));
  if (shapeVal->kind != PyValue::Kind::Tuple)
    failRead(path, std::string("malformed header: bad shape tuple, 'shape' "
                               "must be a tuple of integers, found ") +
                       kindName(shapeVal->kind));

  NpyArray arr;
  for (const PyValue &item : shapeVal->items) {
    if (item.kind != PyValue::Kind::Int)
      failRead(path, std::string("malformed header: bad shape tuple, "
                                 "extents must be integers, found ") +
                         kindName(item.kind));
    arr.shape.push_back(item.integer);
  }
  for (int64_t d : arr.shape)
    if (d < 0)
      failRead(path,
               "malformed header: bad shape tuple " + shapeText(arr.shape) + ": negative extent");

  arr.dtype = parseDescr(path, descr->str);
  const size_t itemSize = dtypeItemSize(arr.dtype);
  const int64_t numel = checkedNumel(arr.shape, static_cast<int64_t>(itemSize));
  if (numel < 0)
    failRead(path, "malformed header: bad shape tuple " + shapeText(arr.shape) +
                       ": the element count overflows 64 bits");

  // Fortran order only changes the layout when two or more extents exceed
  // 1; numpy itself writes such arrays with fortran_order True only when
  // they are not also C-contiguous, so this is a rare real case.
  if (fortran->boolean) {
    int bigDims = 0;
    for (int64_t d : arr.shape)
      bigDims += d > 1;
    if (bigDims > 1)
      failRead(path, "Fortran-ordered (column-major) arrays are not "
                     "supported; save with np.save(path, "
                     "np.ascontiguousarray(arr))");
  }

  const uint64_t expected = static_cast<uint64_t>(numel) * itemSize;
  const uint64_t present = size - headerStart - headerLen;
  const std::string what = "shape " + shapeText(arr.shape) + " of " + dtypeName(arr.dtype) +
                           " needs " + std::to_string(expected) + " data bytes";
  if (present < expected)
    failRead(path, "truncated data: " + what + " but only " + std::to_string(present) +
                       " are present; the file was cut short (interrupted "
                       "save or incomplete copy?), re-create it");
  if (present > expected)
    failRead(path, "has " + std::to_string(present - expected) + " extra bytes after the data (" +
                       what + ", " + std::to_string(present) +
                       " present); the header does not match the data, "
                       "re-save it with np.save");

  const unsigned char *data = bytes.data() + headerStart + headerLen;
  arr.values.resize(static_cast<size_t>(numel));
  for (size_t i = 0; i < arr.values.size(); ++i)
    arr.values[i] = decodeElement(arr.dtype, data + i * itemSize);
  return arr;
}

void writeNpyF32(const std::string &path, const std::vector<int64_t> &shape,
                 const std::vector<double> &values) {
  checkWriteShape(path, shape, values.size(), 4);
  std::vector<unsigned char> data(values.size() * 4);
  for (size_t i = 0; i < values.size(); ++i) {
    // Nearest float32; beyond float's range this gives +-inf, NaN stays NaN.
    float f = static_cast<float>(values[i]);
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    storeLE(data, i * 4, u, 4);
  }
  writeNpyBytes(path, shape, "<f4", data);
}

void writeNpyI32(const std::string &path, const std::vector<int64_t> &shape,
                 const std::vector<double> &values) {
  checkWriteShape(path, shape, values.size(), 4);
  std::vector<unsigned char> data(values.size() * 4);
  for (size_t i = 0; i < values.size(); ++i) {
    double v = values[i];
    // Silently truncating or wrapping would corrupt indices, so refuse.
    if (!(v >= -2147483648.0 && v <= 2147483647.0) || std::trunc(v) != v) {
      std::ostringstream os;
      os.precision(17);
      os << v;
      failWrite(path, "value " + os.str() + " at flat index " + std::to_string(i) +
                          " is not an integer in int32 range");
    }
    storeLE(data, i * 4, static_cast<uint32_t>(static_cast<int32_t>(v)), 4);
  }
  writeNpyBytes(path, shape, "<i4", data);
}

} // namespace sattn::io
