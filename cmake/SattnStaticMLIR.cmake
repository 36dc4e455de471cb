# SattnStaticMLIR.cmake - find MLIR/LLVM and link them statically.
#
# Debian ships MLIR as static archives whose exported targets nevertheless
# link to the shared libLLVM (the `LLVM` target) and expect a
# `zstd::libzstd_shared` target. Our tools must run on a GPU machine with no
# LLVM installed (design §9), so we point every MLIR target at the static
# LLVMSupport/LLVMDemangle archives instead and give LLVMSupport static zlib
# and zstd. libz3 is dropped: nothing we link uses LLVM's SMT solver API.

set(SATTN_LLVM_VERSION 22 CACHE STRING "The one pinned LLVM/MLIR major version")
set(_llvm_prefix "/usr/lib/llvm-${SATTN_LLVM_VERSION}")

find_library(SATTN_ZSTD_STATIC NAMES libzstd.a REQUIRED)
find_library(SATTN_ZLIB_STATIC NAMES libz.a REQUIRED)
if(NOT TARGET zstd::libzstd_shared)
  add_library(zstd::libzstd_shared INTERFACE IMPORTED)
  set_target_properties(zstd::libzstd_shared PROPERTIES
    INTERFACE_LINK_LIBRARIES "${SATTN_ZSTD_STATIC}")
endif()

find_package(MLIR REQUIRED CONFIG PATHS "${_llvm_prefix}/lib/cmake/mlir" NO_DEFAULT_PATH)
message(STATUS "Using MLIR ${LLVM_PACKAGE_VERSION} from ${MLIR_DIR}")

list(APPEND CMAKE_MODULE_PATH "${MLIR_CMAKE_DIR}" "${LLVM_CMAKE_DIR}")
include(TableGen)
include(AddLLVM)
include(AddMLIR)

# LLVMSupport: system libraries only, static compression libraries.
set_target_properties(LLVMSupport PROPERTIES
  INTERFACE_LINK_LIBRARIES "rt;dl;m;pthread;${SATTN_ZLIB_STATIC};${SATTN_ZSTD_STATIC};LLVMDemangle")

# Replace the shared `LLVM` in every imported MLIR/LLVM target.
get_property(_imported DIRECTORY PROPERTY IMPORTED_TARGETS)
foreach(_t IN LISTS _imported)
  get_target_property(_libs ${_t} INTERFACE_LINK_LIBRARIES)
  if(_libs AND NOT _t STREQUAL "LLVM")
    list(TRANSFORM _libs REPLACE "^LLVM$" "LLVMSupport")
    list(TRANSFORM _libs REPLACE "^ZLIB::ZLIB$" "${SATTN_ZLIB_STATIC}")
    set_target_properties(${_t} PROPERTIES INTERFACE_LINK_LIBRARIES "${_libs}")
  endif()
endforeach()
# The remark streamer is the one MLIR library that needs more of LLVM than
# Support (the shared libLLVM used to hide that).
if(TARGET MLIRRemarkStreamer)
  set_property(TARGET MLIRRemarkStreamer APPEND PROPERTY INTERFACE_LINK_LIBRARIES LLVMRemarks)
endif()

include_directories(SYSTEM ${LLVM_INCLUDE_DIRS} ${MLIR_INCLUDE_DIRS})
link_directories(${LLVM_BUILD_LIBRARY_DIR})
add_definitions(${LLVM_DEFINITIONS})
set(SATTN_LIT "${_llvm_prefix}/bin/lit")
set(SATTN_FILECHECK_DIR "${_llvm_prefix}/bin")
