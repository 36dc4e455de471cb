//===- Views.h - caller tensor views on the API's two paths ---------------===//
//
// Shared by Program.cpp (run) and SlimCache.cpp (slim / decode): checks of
// a TensorView against the program, its conversion to a device tensor for
// the GPU executor, and to and from float64 host tensors for the CPU
// reference (bf16 / fp16 / f32 / int32 element by element, any strides).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/api/ProgramImpl.h"

#include "runtime/gpu/DeviceBuffer.h"
#include "runtime/io/Dtype.h"
#include "runtime/reference/Reference.h"

namespace sattn::api {

inline std::vector<int64_t> stridesOf(const TensorView &t) {
  if (t.strides.empty())
    return gpu::contiguousStrides(t.shape);
  if (t.strides.size() != t.shape.size())
    throw Error("a tensor view has " + std::to_string(t.shape.size()) + " dimensions but " +
                std::to_string(t.strides.size()) + " strides");
  return t.strides;
}

inline gpu::Elem elemOf(DType t) {
  switch (t) {
  case DType::BF16:
    return gpu::Elem::BF16;
  case DType::FP16:
    return gpu::Elem::FP16;
  case DType::F32:
    return gpu::Elem::F32;
  case DType::I32:
    return gpu::Elem::I32;
  }
  return gpu::Elem::F32;
}

/// Flat element offset of index `idx` (row-major over `shape`) under `strides`.
inline int64_t stridedOffset(int64_t idx, const std::vector<int64_t> &shape,
                             const std::vector<int64_t> &strides) {
  int64_t off = 0;
  for (int d = int(shape.size()) - 1; d >= 0; --d) {
    off += (idx % shape[size_t(d)]) * strides[size_t(d)];
    idx /= shape[size_t(d)];
  }
  return off;
}

inline double readElem(const TensorView &t, int64_t off) {
  switch (t.dtype) {
  case DType::BF16:
    return io::bf16BitsToFloat(static_cast<const uint16_t *>(t.data)[off]);
  case DType::FP16:
    return io::halfBitsToFloat(static_cast<const uint16_t *>(t.data)[off]);
  case DType::F32:
    return static_cast<const float *>(t.data)[off];
  case DType::I32:
    return static_cast<const int32_t *>(t.data)[off];
  }
  return 0;
}

inline void writeElem(const TensorView &t, int64_t off, double x) {
  switch (t.dtype) {
  case DType::BF16:
    static_cast<uint16_t *>(t.data)[off] = io::floatToBf16Bits(float(x));
    break;
  case DType::FP16:
    static_cast<uint16_t *>(t.data)[off] = io::floatToHalfBits(float(x));
    break;
  case DType::F32:
    static_cast<float *>(t.data)[off] = float(x);
    break;
  case DType::I32:
    static_cast<int32_t *>(t.data)[off] = int32_t(x);
    break;
  }
}

inline void checkView(const TensorView &t, Device want, const std::string &what) {
  if (t.device != want)
    throw Error(what + " lives on the " + (t.device == Device::Gpu ? "GPU" : "CPU") +
                " but the program runs on the " + (want == Device::Gpu ? "GPU" : "CPU"));
  if (!t.data)
    throw Error(what + " has a null data pointer");
  for (int64_t s : t.shape)
    if (s < 0)
      throw Error(what + " has a negative dimension");
}

/// A GPU executor tensor for a view (checked by checkView first).
inline gpu::DeviceTensor deviceTensor(const TensorView &t) {
  return {reinterpret_cast<CUdeviceptr>(t.data), elemOf(t.dtype), t.shape, stridesOf(t)};
}

/// A host view's values as a float64 tensor of its shape.
inline ref::Tensor hostCopy(const TensorView &t) {
  ref::Tensor host(t.shape);
  std::vector<int64_t> strides = stridesOf(t);
  for (int64_t e = 0; e < host.numel(); ++e)
    host.data[size_t(e)] = readElem(t, stridedOffset(e, t.shape, strides));
  return host;
}

/// Writes `src` into host view `t` of the same shape (converted to its dtype).
inline void writeHost(const TensorView &t, const ref::Tensor &src) {
  std::vector<int64_t> strides = stridesOf(t);
  for (int64_t e = 0; e < src.numel(); ++e)
    writeElem(t, stridedOffset(e, t.shape, strides), src.data[size_t(e)]);
}

/// Input `i` of a CPU program as a float64 host tensor, after checking it
/// against the variant's argument type (dtype kind, rank, static dims).
inline std::shared_ptr<ref::Tensor> hostInput(const Program::Impl &impl, size_t i,
                                              const TensorView &t) {
  mlir::func::FuncOp func = impl.func;
  mlir::Type argType = func.getArgument(unsigned(i)).getType();
  const std::string &name = impl.inputNames[i];
  if (auto bt = mlir::dyn_cast<BlocksType>(argType)) {
    // A user block list (semantics §14): int32 [B, H, nQB, cap]; the
    // executor checks it against q and k when the attention uses it.
    if (t.dtype != DType::I32 || t.shape.size() != 4 || t.shape[1] != bt.getHeads())
      throw Error("block-set input '" + name + "' must be an int32 tensor [B, " +
                  std::to_string(bt.getHeads()) +
                  ", nQB, cap] of KV block indices (-1 for unused slots)");
  } else if (auto type = mlir::dyn_cast<mlir::RankedTensorType>(argType)) {
    bool floatArg = mlir::isa<mlir::FloatType>(type.getElementType());
    if (floatArg == (t.dtype == DType::I32))
      throw Error("input '" + name + "' must hold " +
                  (floatArg ? "floating-point (bf16, fp16 or f32)" : "int32") + " values");
    if (int64_t(t.shape.size()) != type.getRank())
      throw Error("input '" + name + "' has rank " + std::to_string(t.shape.size()) +
                  ", the variant expects " + std::to_string(type.getRank()));
    for (int64_t d = 0; d < type.getRank(); ++d)
      if (!type.isDynamicDim(d) && type.getDimSize(d) != t.shape[size_t(d)])
        throw Error("input '" + name + "' has " + std::to_string(t.shape[size_t(d)]) +
                    " in dimension " + std::to_string(d) + ", the variant expects " +
                    std::to_string(type.getDimSize(d)));
  } else {
    throw Error("input '" + name + "' has a type the CPU path cannot bind");
  }
  return std::make_shared<ref::Tensor>(hostCopy(t));
}

/// Checks the output views of a CPU program against the variant's result
/// types before anything is computed.
inline void checkHostOutputs(const Program::Impl &impl, const std::vector<TensorView> &outputs) {
  for (size_t i = 0; i < outputs.size(); ++i) {
    auto type =
        mlir::cast<mlir::RankedTensorType>(mlir::func::FuncOp(impl.func).getResultTypes()[i]);
    const TensorView &t = outputs[i];
    bool shapeOk = int64_t(t.shape.size()) == type.getRank();
    for (int64_t d = 0; shapeOk && d < type.getRank(); ++d)
      shapeOk = type.isDynamicDim(d) || type.getDimSize(d) == t.shape[size_t(d)];
    if (!shapeOk || t.dtype == DType::I32)
      throw Error("output " + std::to_string(i) + " does not match the variant's result type");
  }
}

/// Writes a float64 result into output view `t` (its shape must match).
inline void writeHostOutput(size_t i, const TensorView &t, const ref::Tensor &src) {
  if (t.shape != src.shape)
    throw Error("output " + std::to_string(i) + " has shape of rank " +
                std::to_string(t.shape.size()) + " that differs from the result's");
  writeHost(t, src);
}

} // namespace sattn::api
