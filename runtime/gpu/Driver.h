//===- Driver.h - the CUDA driver API, loaded at run time -----------------===//
//
// libcuda.so.1 is dlopen'ed on first use so every binary starts on a
// machine without a GPU (design §6). Errors carry the driver's own name for
// the failure plus what to do, e.g. out of memory or no device.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "codegen/DynLib.h"

#include <cuda.h>

#include <mutex>
#include <stdexcept>
#include <string>

namespace sattn::gpu {

/// A failure reported by the CUDA driver (or no usable GPU).
struct GpuError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

#define SATTN_DRIVER_FUNCTIONS(X)                                                                  \
  X(cuInit)                                                                                        \
  X(cuDriverGetVersion)                                                                            \
  X(cuDeviceGetCount)                                                                              \
  X(cuDeviceGet)                                                                                   \
  X(cuDeviceGetName) X(cuDeviceGetAttribute) X(cuDevicePrimaryCtxRetain) X(cuCtxSetCurrent)        \
      X(cuModuleLoadData) X(cuModuleUnload) X(cuModuleGetFunction) X(cuFuncSetAttribute)           \
          X(cuLaunchKernel) X(cuMemAllocAsync) X(cuMemFreeAsync) X(cuMemAlloc) X(cuMemFree)        \
              X(cuMemcpyHtoDAsync) X(cuMemcpyDtoHAsync) X(cuMemsetD32Async) X(cuMemGetInfo)        \
                  X(cuStreamCreate) X(cuStreamDestroy) X(cuStreamSynchronize) X(cuEventCreate)     \
                      X(cuEventDestroy) X(cuEventRecord) X(cuEventSynchronize)                     \
                          X(cuEventElapsedTime) X(cuGetErrorName) X(cuGetErrorString)              \
                              X(cuTensorMapEncodeTiled) X(cuMemPoolCreate)                 \
                                  X(cuMemPoolSetAttribute) X(cuMemAllocFromPoolAsync)      \
                                      X(cuMemPoolTrimTo) X(cuMemPoolGetAttribute)          \
                                          X(cuMemPoolDestroy)

/// The message for a failed driver call: "<what>: <NAME> (<description>)",
/// plus what to do for the failures a user can act on (out of memory,
/// unsupported GPU, no device). Separate from Driver so it is testable
/// without a GPU.
std::string describeDriverError(CUresult r, const char *what, const char *name,
                                const char *description);

class Driver {
public:
  /// Loads libcuda and initialises it; throws LoadError or GpuError.
  static Driver &get();

#define SATTN_DECLARE(fn) decltype(&::fn) fn##_ = nullptr;
  SATTN_DRIVER_FUNCTIONS(SATTN_DECLARE)
#undef SATTN_DECLARE

  /// Throws GpuError "<what>: <CUDA_ERROR_NAME> (<description>)" on failure.
  void check(CUresult r, const char *what) const;

  CUdevice device() const { return dev; }
  CUcontext context() const { return ctx; }
  int major() const { return ccMajor; }
  int minor() const { return ccMinor; }
  /// Streaming multiprocessors (sizes persistent grids).
  int multiprocessors() const { return smCount; }
  /// Dynamic shared memory one CTA may opt in to (sm_90: 227 KB).
  int maxSmemPerBlock() const { return smemOptin; }
  const std::string &name() const { return devName; }
  /// Makes sattn's context current on the calling thread.
  void makeCurrent() const;
  /// Stream-ordered workspace from sattn's own memory pool on this GPU
  /// (created on first use). The pool keeps what it has reserved across
  /// synchronisations up to a release threshold (SATTN_WORKSPACE_KEEP_MB,
  /// default 1024: a 16k training step's dQ accumulator fits; beyond it the
  /// step's GPU time dwarfs the remapping), as PyTorch's caching allocator
  /// keeps its blocks — memory PyTorch cannot reuse, hence the cap and
  /// releaseWorkspace(). The device's default pool returns everything to
  /// the driver at each synchronisation, and mapping a training step's
  /// workspace (tens of MB) again cost ~0.2 ms of host time per call. On
  /// out of memory the pool is trimmed and the allocation tried once more.
  /// Throws GpuError.
  CUdeviceptr allocWorkspace(size_t bytes, CUstream stream);
  /// Returns to the driver what the workspace pool keeps and no pending
  /// work uses (call once the work is done); the bytes released.
  size_t releaseWorkspace();

private:
  Driver();
  DynLib lib;
  CUdevice dev = 0;
  CUcontext ctx = nullptr;
  int ccMajor = 0, ccMinor = 0, smCount = 1, smemOptin = 48 * 1024;
  CUmemoryPool pool = nullptr;
  std::mutex poolMutex;
  std::string devName;
};

} // namespace sattn::gpu
