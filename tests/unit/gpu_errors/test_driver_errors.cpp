//===- test_driver_errors.cpp - GPU error messages, checked without a GPU -===//
//
// The driver's failures a user can act on (out of memory, kernels for
// another GPU, no device) must say what to do; the message builder is
// tested directly since this machine has no GPU to fail on.
//
//===----------------------------------------------------------------------===//
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include "runtime/gpu/Driver.h"

using sattn::gpu::describeDriverError;

TEST_CASE("out of memory says what to do", "[errors]") {
  std::string m = describeDriverError(CUDA_ERROR_OUT_OF_MEMORY, "allocating workspace",
                                      "CUDA_ERROR_OUT_OF_MEMORY", "out of memory");
  CHECK_THAT(m,
             Catch::StartsWith("allocating workspace: CUDA_ERROR_OUT_OF_MEMORY (out of memory)"));
  CHECK_THAT(m, Catch::Contains("use smaller inputs"));
}

TEST_CASE("kernels for another GPU point at the driver and the cache", "[errors]") {
  std::string m = describeDriverError(CUDA_ERROR_NO_BINARY_FOR_GPU, "loading the compiled kernels",
                                      "CUDA_ERROR_NO_BINARY_FOR_GPU", "no kernel image");
  CHECK_THAT(m, Catch::Contains("SATTN_CACHE_DIR"));
}

TEST_CASE("no device suggests the CPU", "[errors]") {
  CHECK_THAT(describeDriverError(CUDA_ERROR_NO_DEVICE, "init", nullptr, nullptr),
             Catch::Contains("CUDA error (no description); no GPU is visible: use the CPU device"));
}

TEST_CASE("other failures keep the driver's own words", "[errors]") {
  CHECK(describeDriverError(CUDA_ERROR_INVALID_VALUE, "launching k0", "CUDA_ERROR_INVALID_VALUE",
                            "invalid argument") ==
        "launching k0: CUDA_ERROR_INVALID_VALUE (invalid argument)");
}
