//===- Values.cpp - Tensor storage and shared input checks ----------------===//
//
// Defines the dense Tensor of Values.h and the input checks every kernel
// runs first. The reference executor is the oracle of the GPU tests, so a
// malformed input must surface as a readable sattn::ref::Error here rather
// than as an out-of-bounds read or a NaN three ops later.
//
//===----------------------------------------------------------------------===//

#include "runtime/reference/Reference.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <limits>

namespace sattn::ref {

namespace {
std::string shapeString(const std::vector<int64_t> &shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}
} // namespace

Tensor::Tensor(std::vector<int64_t> s, double fill) : shape(std::move(s)) {
  for (int64_t d : shape)
    if (d < 0)
      throw Error(fmt::format("tensor shape {} has a negative dimension; every "
                              "dimension must be >= 0",
                              shapeString(shape)));
  data.assign(static_cast<size_t>(numel()), fill);
}

// A rank-0 shape is a scalar (one element), as in NumPy.
int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

namespace detail {

void checkTensor(const Tensor &t, const char *name, int rank, bool finite) {
  if (rank >= 0 && static_cast<int>(t.shape.size()) != rank)
    throw Error(fmt::format("{} has rank {} (shape {}) but must have rank {}", name, t.shape.size(),
                            shapeString(t.shape), rank));
  for (int64_t d : t.shape)
    if (d < 0)
      throw Error(
          fmt::format("{} has shape {} with a negative dimension", name, shapeString(t.shape)));
  if (static_cast<int64_t>(t.data.size()) != t.numel())
    throw Error(fmt::format("{} holds {} values but its shape {} needs {}; build it "
                            "with Tensor(shape) so data and shape agree",
                            name, t.data.size(), shapeString(t.shape), t.numel()));
  // Checked up front because one inf turns a whole softmax row into NaN.
  for (size_t x = 0; finite && x < t.data.size(); ++x)
    if (!std::isfinite(t.data[x]))
      throw Error(fmt::format("{} holds a non-finite value ({}) at flat index {}; "
                              "the reference only accepts finite inputs",
                              name, t.data[x], x));
}

double resolveScale(std::optional<double> scale, int64_t D) {
  if (scale) {
    if (!std::isfinite(*scale))
      throw Error(fmt::format("softmax scale {} is not finite; pass a finite scale "
                              "or none for 1/sqrt(D)",
                              *scale));
    return *scale;
  }
  if (D <= 0)
    throw Error(fmt::format("head dim D={} leaves the default scale 1/sqrt(D) "
                            "undefined; pass an explicit scale",
                            D));
  return 1.0 / std::sqrt(static_cast<double>(D));
}

void softmaxInPlace(std::vector<double> &logits) {
  double mx = -std::numeric_limits<double>::infinity();
  for (double l : logits) {
    if (!std::isfinite(l))
      throw Error(fmt::format("softmax logit {} overflows float64; rescale the "
                              "inputs or pass a smaller scale",
                              l));
    mx = std::max(mx, l);
  }
  double sum = 0.0;
  for (double &l : logits) {
    l = std::exp(l - mx);
    sum += l;
  }
  for (double &l : logits)
    l /= sum; // sum >= 1: the max term contributes exp(0)
}

} // namespace detail
} // namespace sattn::ref
