//===- RunOptions.cpp - command line of sattn-run (design §7) -------------===//
//
// Hand-parsed rather than llvm::cl so that every error starts with
// `error:` as the tool contract requires, and both `--opt=value` and
// `--opt value` work.
//
//===----------------------------------------------------------------------===//
#include "tools/RunOptions.h"

#include "tools/ToolSupport.h"

namespace sattn::tools {

const char *kRunUsage =
    "usage: sattn-run FILE.mlir --inputs q=Q.npy,k=K.npy,v=V.npy --out O.npy\n"
    "         [--device=cpu|gpu] [--dtype=bf16|fp16] [--check] [--lse LSE.npy]\n"
    "         [--param NAME=VALUE ...] [--segments SEG.npy] [--dump-selection DIR] [--json]\n"
    "Runs a sattn variant on .npy inputs (BHSD, float16/32/64) and writes O (and LSE) as "
    "float32.\n"
    "A block-set input (!sattn.blocks argument, e.g. blocks=B.npy) is an integer .npy\n"
    "[B, H, cdiv(Sq, bq), cap] of KV block indices, -1 for unused slots.\n";

namespace {
std::pair<std::string, std::string> splitPair(const std::string &s, const std::string &flag) {
  size_t eq = s.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == s.size())
    throw ToolError(flag + " expects NAME=VALUE, got '" + s + "'");
  return {s.substr(0, eq), s.substr(eq + 1)};
}
} // namespace

RunOptions parseRunOptions(int argc, char **argv) {
  RunOptions o;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i], value;
    bool hasValue = false;
    if (a.rfind("--", 0) == 0) {
      size_t eq = a.find('=');
      if (eq != std::string::npos)
        value = a.substr(eq + 1), a = a.substr(0, eq), hasValue = true;
    }
    auto take = [&]() -> std::string {
      if (hasValue)
        return value;
      if (i + 1 >= args.size())
        throw ToolError(a + " needs a value");
      return args[++i];
    };
    if (a == "--help" || a == "-h") {
      o.help = true;
    } else if (a == "--inputs") {
      std::string list = take();
      size_t start = 0;
      while (start <= list.size()) {
        size_t comma = list.find(',', start);
        std::string item =
            list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        o.inputs.push_back(splitPair(item, "--inputs"));
        if (comma == std::string::npos)
          break;
        start = comma + 1;
      }
    } else if (a == "--out") {
      o.out = take();
    } else if (a == "--device") {
      o.device = take();
      if (o.device != "cpu" && o.device != "gpu")
        throw ToolError("--device must be cpu or gpu, got '" + o.device + "'");
    } else if (a == "--dtype") {
      o.dtype = take();
      if (*o.dtype != "bf16" && *o.dtype != "fp16")
        throw ToolError("--dtype must be bf16 or fp16, got '" + *o.dtype + "'");
    } else if (a == "--check") {
      o.check = true;
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--lse") {
      o.lse = take();
    } else if (a == "--param") {
      o.params.push_back(splitPair(take(), "--param"));
    } else if (a == "--segments") {
      o.segments = take();
    } else if (a == "--dump-selection") {
      o.dumpSelection = take();
    } else if (a.rfind("-", 0) == 0) {
      throw ToolError("unknown option '" + a + "' (see --help)");
    } else if (o.file.empty()) {
      o.file = a;
    } else {
      throw ToolError("more than one input file: '" + o.file + "' and '" + a + "'");
    }
  }
  if (o.help)
    return o;
  if (o.file.empty())
    throw ToolError("no input file (see --help)");
  if (o.inputs.empty())
    throw ToolError("no inputs; pass --inputs q=Q.npy,k=K.npy,v=V.npy");
  if (o.out.empty())
    throw ToolError("no output; pass --out O.npy");
  return o;
}

} // namespace sattn::tools
