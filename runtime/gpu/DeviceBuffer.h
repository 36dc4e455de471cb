//===- DeviceBuffer.h - owned device memory and contiguous strides --------===//
//
// Small helpers the host side needs wherever it makes its own device
// tensors (sattn-run's uploads, tuning inputs): a buffer freed on scope
// exit, the element strides of a contiguous row-major shape, and a result
// buffer shaped from the plan.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/gpu/Driver.h"
#include "runtime/gpu/Plan.h"

#include <cstdint>
#include <memory>
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

/// A device tensor for result `r` of `plan` (O like q, else LSE [B, H, Sq]
/// f32), backed by a new buffer appended to `buffers`.
inline DeviceTensor allocateResult(const Plan &plan, size_t r, int64_t batch, int64_t seqQ,
                                   Elem elem, std::vector<std::unique_ptr<DeviceBuffer>> &buffers) {
  const ValueInfo &info = plan.values[plan.results[r]];
  bool o = info.kind == ValueKind::Tensor4;
  std::vector<int64_t> shape = o ? std::vector<int64_t>{batch, info.heads, seqQ, info.dim}
                                 : std::vector<int64_t>{batch, info.heads, seqQ};
  size_t n = 1;
  for (int64_t s : shape)
    n *= size_t(s);
  buffers.push_back(std::make_unique<DeviceBuffer>(n * (o ? 2 : 4), "allocating an output"));
  return {buffers.back()->ptr, o ? elem : Elem::F32, shape, contiguousStrides(shape)};
}

} // namespace sattn::gpu
