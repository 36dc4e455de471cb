//===- RunOptions.h - command line of sattn-run (design §7) ---------------===//
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sattn::tools {

struct RunOptions {
  std::string file;
  std::vector<std::pair<std::string, std::string>> inputs; // name -> .npy path
  std::string out;
  std::string device = "cpu";
  std::optional<std::string> dtype; // bf16 | fp16
  bool check = false;
  std::optional<std::string> lse;
  std::vector<std::pair<std::string, std::string>> params;
  std::optional<std::string> segments;
  std::optional<std::string> dumpSelection;
  bool json = false;
  bool help = false;
};

/// Parses argv; throws ToolError naming the bad argument.
RunOptions parseRunOptions(int argc, char **argv);

extern const char *kRunUsage;

} // namespace sattn::tools
