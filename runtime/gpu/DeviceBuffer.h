//===- DeviceBuffer.h - owned device memory and contiguous strides --------===//
//
// Small helpers the host side needs wherever it makes its own device
// tensors (sattn-run's uploads, tuning inputs): a buffer freed on scope
// exit, and the element strides of a contiguous row-major shape.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/gpu/Driver.h"

#include <cstdint>
#include <vector>

namespace sattn::gpu {

/// cuMemAlloc'ed memory, freed when the buffer goes away.
struct DeviceBuffer {
  CUdeviceptr ptr = 0;
  explicit DeviceBuffer(size_t bytes, const char *what = "allocating a device buffer") {
    Driver &d = Driver::get();
    d.check(d.cuMemAlloc_(&ptr, bytes ? bytes : 16), what);
  }
  ~DeviceBuffer() {
    if (ptr)
      Driver::get().cuMemFree_(ptr);
  }
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;
};

/// Element strides of a contiguous (row-major) tensor of `shape`.
inline std::vector<int64_t> contiguousStrides(const std::vector<int64_t> &shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (int i = int(shape.size()) - 2; i >= 0; --i)
    s[size_t(i)] = s[size_t(i) + 1] * shape[size_t(i) + 1];
  return s;
}

} // namespace sattn::gpu
