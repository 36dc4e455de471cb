//===- test_main.cpp - Catch2 entry point of the codegen unit tests -------===//
//
// Kept alone so that editing a test file does not recompile Catch2's main.
//
//===----------------------------------------------------------------------===//
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
