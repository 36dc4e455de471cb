//===- Driver.cpp - the CUDA driver API, loaded at run time ---------------===//
//
// Symbol names come from cuda.h's own macros (cuMemAlloc is cuMemAlloc_v2),
// so the versions we call match the header we compiled against.
//
//===----------------------------------------------------------------------===//
#include "runtime/gpu/Driver.h"

#include <cstdlib>

#define SATTN_STR2(x) #x
#define SATTN_STR(x) SATTN_STR2(x)

namespace sattn::gpu {

Driver::Driver()
    : lib({"libcuda.so.1", "libcuda.so"}, "the CUDA driver (libcuda.so.1)",
          "this machine has no NVIDIA driver; install one, or use the CPU device "
          "(sattn-run --device=cpu, or a CPU session)") {
#define SATTN_LOAD(fn) fn##_ = lib.get<decltype(fn##_)>(SATTN_STR(fn));
  SATTN_DRIVER_FUNCTIONS(SATTN_LOAD)
#undef SATTN_LOAD
  CUresult r = cuInit_(0);
  if (r == CUDA_ERROR_NO_DEVICE)
    throw GpuError("no CUDA GPU is visible (CUDA_ERROR_NO_DEVICE); use the CPU device "
                   "(sattn-run --device=cpu, or a CPU session)");
  check(r, "initialising the CUDA driver");
  int count = 0;
  check(cuDeviceGetCount_(&count), "counting GPUs");
  int ordinal = 0;
  if (const char *e = std::getenv("SATTN_DEVICE"); e && *e)
    ordinal = std::atoi(e);
  if (count == 0)
    throw GpuError("no CUDA GPU is visible; use the CPU device (sattn-run --device=cpu, or a "
                   "CPU session)");
  if (ordinal < 0 || ordinal >= count)
    throw GpuError("SATTN_DEVICE=" + std::to_string(ordinal) + " but only " +
                   std::to_string(count) + " GPU(s) are visible");
  check(cuDeviceGet_(&dev, ordinal), "opening the GPU");
  check(cuDeviceGetAttribute_(&ccMajor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev),
        "reading the compute capability");
  check(cuDeviceGetAttribute_(&ccMinor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev),
        "reading the compute capability");
  check(cuDeviceGetAttribute_(&smCount, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev),
        "querying the number of multiprocessors");
  check(cuDeviceGetAttribute_(&smemOptin, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
                              dev),
        "querying the shared memory per block");
  char buf[256] = {0};
  check(cuDeviceGetName_(buf, sizeof(buf) - 1, dev), "reading the GPU name");
  devName = buf;
  check(cuDevicePrimaryCtxRetain_(&ctx, dev), "creating the CUDA context");
  makeCurrent();
}

Driver &Driver::get() {
  static Driver instance;
  return instance;
}

void Driver::makeCurrent() const { check(cuCtxSetCurrent_(ctx), "making the context current"); }

CUdeviceptr Driver::allocWorkspace(size_t bytes, CUstream stream) {
  {
    std::lock_guard<std::mutex> lock(poolMutex);
    if (!pool) {
      cuuint64_t keep = cuuint64_t(1024) << 20;
      if (const char *e = std::getenv("SATTN_WORKSPACE_KEEP_MB"); e && *e) {
        char *end = nullptr;
        const long long mb = std::strtoll(e, &end, 10);
        if (*end || mb < 0 || mb > (1ll << 40))
          throw GpuError(std::string("SATTN_WORKSPACE_KEEP_MB must be a number of megabytes "
                                     "(0 keeps nothing between calls), got '") +
                         e + "'");
        keep = cuuint64_t(mb) << 20;
      }
      CUmemPoolProps props{};
      props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
      props.handleTypes = CU_MEM_HANDLE_TYPE_NONE;
      props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
      props.location.id = dev;
      CUmemoryPool created = nullptr;
      check(cuMemPoolCreate_(&created, &props), "creating sattn's workspace memory pool");
      CUresult r = cuMemPoolSetAttribute_(created, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &keep);
      if (r != CUDA_SUCCESS)
        cuMemPoolDestroy_(created);
      check(r, "setting the workspace pool's release threshold");
      pool = created;
    }
  }
  CUdeviceptr p = 0;
  const size_t n = bytes ? bytes : 16;
  CUresult r = cuMemAllocFromPoolAsync_(&p, n, pool, stream);
  if (r == CUDA_ERROR_OUT_OF_MEMORY) { // give back what the pool keeps unused, then once more
    cuMemPoolTrimTo_(pool, 0);
    r = cuMemAllocFromPoolAsync_(&p, n, pool, stream);
  }
  check(r, "allocating workspace");
  return p;
}

size_t Driver::releaseWorkspace() {
  std::lock_guard<std::mutex> lock(poolMutex);
  if (!pool)
    return 0;
  cuuint64_t before = 0, after = 0;
  check(cuMemPoolGetAttribute_(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &before),
        "reading the workspace pool's size");
  check(cuMemPoolTrimTo_(pool, 0), "releasing the workspace pool");
  check(cuMemPoolGetAttribute_(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &after),
        "reading the workspace pool's size");
  return before > after ? size_t(before - after) : 0;
}

std::string describeDriverError(CUresult r, const char *what, const char *name,
                                const char *description) {
  std::string msg = std::string(what) + ": " + (name ? name : "CUDA error") + " (" +
                    (description ? description : "no description") + ")";
  switch (r) {
  case CUDA_ERROR_OUT_OF_MEMORY:
    return msg + "; the GPU is out of memory: use smaller inputs or free memory held by "
                 "other processes";
  case CUDA_ERROR_NO_BINARY_FOR_GPU:
  case CUDA_ERROR_UNSUPPORTED_PTX_VERSION:
    return msg + "; the kernels were built for another GPU or a newer toolkit than the "
                 "driver supports: update the driver, or clear the cache (SATTN_CACHE_DIR)";
  case CUDA_ERROR_NO_DEVICE:
    return msg + "; no GPU is visible: use the CPU device (sattn-run --device=cpu)";
  default:
    return msg;
  }
}

void Driver::check(CUresult r, const char *what) const {
  if (r == CUDA_SUCCESS)
    return;
  const char *name = nullptr, *desc = nullptr;
  if (cuGetErrorName_)
    cuGetErrorName_(r, &name);
  if (cuGetErrorString_)
    cuGetErrorString_(r, &desc);
  throw GpuError(describeDriverError(r, what, name, desc));
}

} // namespace sattn::gpu
