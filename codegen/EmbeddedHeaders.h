//===- EmbeddedHeaders.h - the device library, compiled into the binary ---===//
//
// The headers of codegen/device/ as strings (generated at build time by
// EmbedHeaders.cmake), handed to NVRTC as in-memory include files.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <vector>

namespace sattn::codegen {

struct EmbeddedHeader {
  const char *name;     ///< file name as included, e.g. "sattn.cuh"
  const char *contents; ///< full text
};

const std::vector<EmbeddedHeader> &deviceHeaders();

} // namespace sattn::codegen
