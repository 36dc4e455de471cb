//===- Npy.h - Read and write NumPy .npy files ------------------*- C++ -*-===//
//
// Minimal, strict reader and writer for NumPy's .npy format (header versions
// 1.0, 2.0 and 3.0), used to feed tensors to and from sattn tools. Every
// element is converted to double on reading; the dtype found in the file is
// kept so callers can reject, for example, integer data where they expect
// floats with a precise message.
//
// Only plain little-endian, C-ordered arrays of numeric or bool dtypes are
// accepted; everything else (big-endian, Fortran order, complex, strings,
// objects, structured or void dtypes, truncated or over-long files) raises
// NpyError with a message naming the file, the problem and the fix.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace sattn::io {

/// Element types readNpy understands, named after numpy's dtypes.
enum class NpyDtype {
  Float16,
  Float32,
  Float64,
  Int8,
  Int16,
  Int32,
  Int64,
  UInt8,
  UInt16,
  UInt32,
  UInt64,
  Bool,
};

/// Every failure of readNpy / writeNpy*: bad input file, unsupported
/// content, I/O error. The message names the file, says what is wrong and,
/// where there is one, what to do about it.
class NpyError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// A dense C-ordered array read from a .npy file. `values` holds the
/// product of `shape` elements (1 for a 0-d array, shape `()`), converted to
/// double; int64/uint64 magnitudes above 2^53 lose precision there.
struct NpyArray {
  std::vector<int64_t> shape;
  NpyDtype dtype = NpyDtype::Float32;
  std::vector<double> values;
};

/// numpy's name for \p dtype: "float16", "float32", "int64", "bool", ...
std::string dtypeName(NpyDtype dtype);

/// Size in bytes of one element of \p dtype.
size_t dtypeItemSize(NpyDtype dtype);

/// Reads the .npy file at \p path. Throws NpyError on any problem.
NpyArray readNpy(const std::string &path);

/// Writes \p values (rounded to nearest float32) as a little-endian float32
/// .npy file of shape \p shape. The file appears atomically: it is written
/// to a temporary file in the same directory and renamed over \p path, so
/// on failure nothing is left at \p path (a previous file there is kept) and
/// no temporary file remains. Throws NpyError if values.size() differs from
/// the element count of \p shape, on a negative extent, on more than 64
/// dimensions (numpy's limit), or on I/O failure. Writes format version 1.0.
void writeNpyF32(const std::string &path, const std::vector<int64_t> &shape,
                 const std::vector<double> &values);

/// Like writeNpyF32 but writes int32 elements. Every value must be an
/// integer within int32 range; otherwise NpyError is thrown before any file
/// is created.
void writeNpyI32(const std::string &path, const std::vector<int64_t> &shape,
                 const std::vector<double> &values);

} // namespace sattn::io
