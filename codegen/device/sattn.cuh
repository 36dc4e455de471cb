//===- sattn.cuh - umbrella header of the device template library ---------===//
//
// Everything at once, for hand-written code and tests. Generated modules
// include only the headers of the templates they instantiate (each header
// is self-contained), since NVRTC time grows with every header parsed.
// Compiles under NVRTC with no host includes (ThunderKittens-style no-host
// rule): nothing here may include a standard or toolkit header.
//
//===----------------------------------------------------------------------===//
#ifndef SATTN_DEVICE_SATTN_CUH
#define SATTN_DEVICE_SATTN_CUH

#include "params.cuh"
#include "types.cuh"
#include "masks.cuh"
#include "ptx.cuh"
#include "wgmma.cuh"
#include "attention_common.cuh"
#include "attention.cuh"
#include "attention_mma.cuh"
#include "attention_wgmma.cuh"
#include "estimation.cuh"
#include "selection.cuh"
#include "decode.cuh"
#include "kv_slim.cuh"
#include "classify.cuh"

#endif // SATTN_DEVICE_SATTN_CUH
