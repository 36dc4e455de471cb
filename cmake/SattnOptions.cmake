# SattnOptions.cmake - project-wide compile and link flags.
#
# Tools link libstdc++ statically and use fmt header-only so that a bundle
# built here runs on a GPU machine with no LLVM/MLIR/fmt installed (design §9).
add_compile_definitions(FMT_HEADER_ONLY)
add_compile_options(-Wall -Wno-unused-parameter)
# LLVM is built without RTTI; match it so MLIR classes link.
if(NOT LLVM_ENABLE_RTTI)
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-fno-rtti>)
endif()
set(SATTN_STATIC_LINK_FLAGS -static-libstdc++ -static-libgcc)
