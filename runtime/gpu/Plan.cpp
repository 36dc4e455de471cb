//===- Plan.cpp - typed access to launch constants ------------------------===//
#include "runtime/gpu/Plan.h"

#include "runtime/gpu/Driver.h"

namespace sattn::gpu {

namespace {
template <typename T> const T &constOf(const Launch &l, const std::string &name) {
  auto it = l.consts.find(name);
  if (it == l.consts.end() || !std::holds_alternative<T>(it->second))
    throw GpuError("internal: launch " + l.kernel + " lacks constant " + name);
  return std::get<T>(it->second);
}
} // namespace

int64_t Launch::i(const std::string &n) const { return constOf<int64_t>(*this, n); }
double Launch::f(const std::string &n) const { return constOf<double>(*this, n); }
bool Launch::b(const std::string &n) const { return constOf<bool>(*this, n); }
const std::string &Launch::s(const std::string &n) const { return constOf<std::string>(*this, n); }

} // namespace sattn::gpu
