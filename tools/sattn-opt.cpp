//===- sattn-opt.cpp - mlir-opt with the sattn dialect and passes ---------===//
//
// Parses, verifies, transforms and prints sattn IR; pipelines by name
// (`--sattn-lower-to-kernels`). A thin MlirOptMain (design §7).
//
//===----------------------------------------------------------------------===//
#include "tools/RegisterSattn.h"

#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  sattn::registerSattnDialects(registry);
  sattn::registerSattnPassesAll();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "sattn optimizer driver\n", registry));
}
