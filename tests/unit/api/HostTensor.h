//===- HostTensor.h - float32 host tensors for the API tests --------------===//
#pragma once

#include "sattn/sattn.h"

#include <cmath>
#include <random>
#include <vector>

namespace sattn::testing {

/// A float32 host tensor, N(boost, 1) when `rng` is given, else NaN
/// (poisoned outputs), viewed contiguously or through `strides`.
struct HostTensor {
  std::vector<float> data;
  std::vector<int64_t> shape, strides;
  HostTensor(std::vector<int64_t> s, std::mt19937 *rng, float boost = 0.f) : shape(s) {
    size_t n = 1;
    for (int64_t x : s)
      n *= size_t(x);
    data.resize(n, std::nanf(""));
    std::normal_distribution<float> n01;
    if (rng)
      for (float &x : data)
        x = n01(*rng) + boost;
  }
  TensorView view() { return {data.data(), DType::F32, Device::Cpu, shape, strides}; }
};

} // namespace sattn::testing
