//===- two_variants.cpp - build two variants with the C++ API and run them -===//
//
// Uses only the public API (include/sattn/sattn.h) plus the CUDA runtime
// for device memory: a dense causal variant from the pattern library and a
// top-k block-sparse variant written as IR text, run on random inputs on
// the GPU when one is usable, else on the float64 CPU reference. Prints
// each program's cache key, its kernels, and how far the sparse output is
// from the dense one.
//
//===----------------------------------------------------------------------===//
#include "sattn/sattn.h"

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

namespace {

/// float -> bf16 bits, round to nearest even (inputs are bf16).
uint16_t toBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fff + ((u >> 16) & 1);
  return uint16_t(u >> 16);
}

float fromBf16(uint16_t b) {
  uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

/// Host or device storage for one bf16 tensor, viewed as sattn::TensorView.
struct Buffer {
  std::vector<uint16_t> host;
  void *device = nullptr;
  std::vector<int64_t> shape;
  sattn::Device where;

  Buffer(std::vector<int64_t> s, sattn::Device d, std::mt19937 *rng) : shape(s), where(d) {
    size_t n = 1;
    for (int64_t x : s)
      n *= size_t(x);
    host.resize(n);
    std::normal_distribution<float> n01;
    for (uint16_t &h : host)
      h = rng ? toBf16(n01(*rng)) : 0;
    if (where == sattn::Device::Gpu) {
      if (cudaMalloc(&device, n * 2) != cudaSuccess)
        throw sattn::Error("cudaMalloc failed");
      cudaMemcpy(device, host.data(), n * 2, cudaMemcpyHostToDevice);
    }
  }
  ~Buffer() {
    if (device)
      cudaFree(device);
  }
  sattn::TensorView view() {
    return {
        where == sattn::Device::Gpu ? device : host.data(), sattn::DType::BF16, where, shape, {}};
  }
  std::vector<float> values() {
    if (device)
      cudaMemcpy(host.data(), device, host.size() * 2, cudaMemcpyDeviceToHost);
    std::vector<float> v(host.size());
    for (size_t i = 0; i < v.size(); ++i)
      v[i] = fromBf16(host[i]);
    return v;
  }
};

const char *kTopK = R"mlir(
func.func @topk(%q: tensor<?x8x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> tensor<?x8x?x64xbf16> {
  %qp = sattn.pool mean %q group 32 : tensor<?x8x?x64xbf16> -> tensor<?x8x?x64xf32>
  %kp = sattn.pool mean %k group 32 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 32 : i64, k_group = 32 : i64, causal}
      : tensor<?x8x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>
      -> !sattn.scores<bq = 64, bk = 64, heads = 8>
  %bs = sattn.select_blocks cumulative %s {tau = 0.9 : f64, forced = #sattn.forced<sink = 1, diagonal = true>}
      : !sattn.scores<bq = 64, bk = 64, heads = 8> -> !sattn.blocks<bq = 64, bk = 64, heads = 2>
  %o = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 64, bk = 64, heads = 2> {causal}
      : tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x8x?x64xbf16>
  return %o : tensor<?x8x?x64xbf16>
}
)mlir";

} // namespace

int main(int argc, char **argv) {
  try {
    int64_t seq = argc > 1 ? std::atoll(argv[1]) : 1000;
    sattn::Session session;
    std::printf("device: %s\n", session.deviceName().c_str());
    sattn::patterns::Heads heads{8, 2, 64, sattn::DType::BF16};
    auto dense = session.compile(sattn::patterns::dense(heads, /*causal=*/true));
    auto sparse = session.compile(sattn::Variant::fromText(kTopK));

    std::mt19937 rng(7);
    sattn::Device d = session.device();
    Buffer q({1, 8, seq, 64}, d, &rng), k({1, 2, seq, 64}, d, &rng), v({1, 2, seq, 64}, d, &rng);
    Buffer o1({1, 8, seq, 64}, d, nullptr), o2({1, 8, seq, 64}, d, nullptr);
    dense->run({q.view(), k.view(), v.view()}, {o1.view()});
    sparse->run({q.view(), k.view(), v.view()}, {o2.view()});
    if (d == sattn::Device::Gpu)
      cudaDeviceSynchronize();

    for (auto &[name, p] : {std::pair{"dense", dense}, std::pair{"top-k", sparse}}) {
      std::printf("%-6s key %.16s…  kernels:", name, p->key().c_str());
      for (size_t pos = p->loweredIR().find("sattn.launch \""); pos != std::string::npos;
           pos = p->loweredIR().find("sattn.launch \"", pos + 1))
        std::printf(
            " %s",
            p->loweredIR().substr(pos + 14, p->loweredIR().find('"', pos + 14) - pos - 14).c_str());
      std::printf("\n");
    }
    std::vector<float> a = o1.values(), b = o2.values();
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i)
      num += (a[i] - b[i]) * (a[i] - b[i]), den += a[i] * a[i];
    std::printf("||O_topk - O_dense|| / ||O_dense|| = %.4f at S = %lld\n", std::sqrt(num / den),
                (long long)seq);
    return 0;
  } catch (const sattn::Error &e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
