//===- InputBinding.cpp - bind .npy files and --param values to a variant -===//
//
// Everything the user hands sattn-run is checked here before any kernel
// runs, so a wrong file gives a message naming the input, the expected and
// the actual shape or dtype, rather than a failure deep in a kernel.
//
//===----------------------------------------------------------------------===//
#include "tools/InputBinding.h"

#include "dialect/SattnDialect.h"
#include "dialect/VariantSignature.h"
#include "runtime/io/Dtype.h"
#include "runtime/io/Npy.h"
#include "runtime/reference/Reference.h"
#include "tools/ToolSupport.h"

#include "mlir/IR/Builders.h"

#include <cmath>
#include <set>

using namespace mlir;

namespace sattn::tools {

namespace {

std::string shapeStr(const std::vector<int64_t> &s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i)
    out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

std::string typeStr(Type t) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << t;
  return s;
}

bool isFloatDtype(io::NpyDtype d) {
  return d == io::NpyDtype::Float16 || d == io::NpyDtype::Float32 || d == io::NpyDtype::Float64;
}

bool isIntDtype(io::NpyDtype d) { return !isFloatDtype(d) && d != io::NpyDtype::Bool; }

const char *kDimNames[] = {"batch", "heads", "sequence", "head dim"};

/// True when the argument is the K or V of a paged decode cache, whose
/// first dimension counts pages rather than batch entries.
bool isPagedCache(func::FuncOp func, BlockArgument arg) {
  for (Operation *user : arg.getUsers())
    if (auto d = dyn_cast<DecodeAttentionOp>(user))
      if (d.getPageTable() && (d.getK() == arg || d.getV() == arg))
        return true;
  return false;
}

/// A block-set argument (semantics §14): an integer .npy [B, H, nQB, cap].
/// Rank, heads and dtype are checked here; the rest needs the lengths of q
/// and k (checkBlockLists).
std::shared_ptr<ref::Tensor> bindBlockList(const std::string &name, const std::string &path,
                                           const io::NpyArray &a, BlocksType bt) {
  std::string form = "int32 [B, " + std::to_string(bt.getHeads()) +
                     ", nQB, cap] of KV block indices, -1 for unused slots";
  if (!isIntDtype(a.dtype))
    throw ToolError("input '" + name + "' (" + path + ") has dtype " + io::dtypeName(a.dtype) +
                    "; it is a block set (" + typeStr(bt) + "), so give " + form +
                    " (e.g. numpy's astype(np.int32))");
  if (a.shape.size() != 4)
    throw ToolError("input '" + name + "' (" + path + ") has shape " + shapeStr(a.shape) +
                    " but a block set (" + typeStr(bt) + ") is given as " + form);
  if (a.shape[1] != bt.getHeads())
    throw ToolError("input '" + name + "' (" + path + ") has shape " + shapeStr(a.shape) +
                    " but the variant declares " + name + " as " + typeStr(bt) +
                    ": dimension 1 (heads) is " + std::to_string(a.shape[1]) + ", expected " +
                    std::to_string(bt.getHeads()));
  auto t = std::make_shared<ref::Tensor>(a.shape);
  t->data = a.values;
  return t;
}

/// Checks every bound block list against the lengths of the q and k that
/// its attention uses, on the host, for both devices: shape [B, H, nQB,
/// cap >= 1] and every entry in [-1, nKB) (ref::blockSetFromList's rules).
void checkBlockLists(func::FuncOp func, const std::map<std::string, std::string> &paths,
                     const std::vector<std::shared_ptr<ref::Tensor>> &args) {
  for (BlockArgument arg : func.getArguments()) {
    auto bt = llvm::dyn_cast<BlocksType>(arg.getType());
    if (!bt)
      continue;
    auto [q, k] = blockSetLengths(arg);
    auto qa = llvm::dyn_cast_or_null<BlockArgument>(q);
    auto ka = llvm::dyn_cast_or_null<BlockArgument>(k);
    if (!qa || !ka)
      continue; // never attended, or over computed tensors: checked when run
    const ref::Tensor &qt = *args[qa.getArgNumber()], &kt = *args[ka.getArgNumber()];
    if (qt.shape.size() != 4 || kt.shape.size() != 4)
      continue;
    std::string name = argName(func, arg.getArgNumber());
    try {
      ref::blockSetFromList(*args[arg.getArgNumber()],
                            "input '" + name + "' (" + paths.at(name) + ")", qt.dim(0),
                            bt.getHeads(), qt.dim(2), kt.dim(2), bt.getBq(), bt.getBk());
    } catch (const ref::Error &e) {
      throw ToolError(e.what());
    }
  }
}

} // namespace

std::vector<std::shared_ptr<ref::Tensor>> bindInputs(func::FuncOp func, const RunOptions &opts,
                                                     const std::string &dtype) {
  std::map<std::string, std::string> paths;
  for (auto &[name, path] : opts.inputs)
    if (!paths.emplace(name, path).second)
      throw ToolError("input '" + name + "' is given twice");

  // --segments binds the argument that feeds a kv_slim's segments.
  std::optional<unsigned> segmentsArg;
  func.walk([&](KvSlimOp s) {
    if (auto a = llvm::dyn_cast_or_null<BlockArgument>(s.getSegments()))
      segmentsArg = a.getArgNumber();
  });
  if (opts.segments) {
    if (!segmentsArg)
      throw ToolError("--segments given but the variant has no kv_slim with a segments "
                      "operand");
    paths[argName(func, *segmentsArg)] = *opts.segments;
  }

  std::set<std::string> known;
  for (unsigned i = 0; i < func.getNumArguments(); ++i)
    known.insert(argName(func, i));
  for (auto &[name, path] : paths)
    if (!known.count(name)) {
      std::string list;
      for (const std::string &k : known)
        list += (list.empty() ? "" : ", ") + k;
      throw ToolError("unknown input '" + name + "'; the variant takes " + list);
    }

  std::vector<std::shared_ptr<ref::Tensor>> args;
  int64_t batch = -1, kvLen = -1;
  std::string batchFrom;
  for (unsigned i = 0; i < func.getNumArguments(); ++i) {
    std::string name = argName(func, i);
    auto it = paths.find(name);
    if (it == paths.end())
      throw ToolError("input '" + name + "' is missing; pass --inputs " + name + "=FILE.npy" +
                      (segmentsArg && *segmentsArg == i ? " or --segments FILE.npy" : ""));
    const std::string &path = it->second;
    io::NpyArray a;
    try {
      a = io::readNpy(path);
    } catch (const io::NpyError &e) {
      throw ToolError(std::string("input '") + name + "': " + e.what());
    }
    if (auto bt = llvm::dyn_cast<BlocksType>(func.getArgument(i).getType())) {
      args.push_back(bindBlockList(name, path, a, bt));
      continue;
    }
    auto type = llvm::dyn_cast<RankedTensorType>(func.getArgument(i).getType());
    if (!type)
      throw ToolError("argument '" + name + "' has type " + typeStr(func.getArgument(i).getType()) +
                      ", which sattn-run cannot bind to a .npy file");
    bool floatArg = llvm::isa<FloatType>(type.getElementType());
    if (floatArg && !isFloatDtype(a.dtype))
      throw ToolError("input '" + name + "' (" + path + ") has dtype " + io::dtypeName(a.dtype) +
                      "; the variant declares " + typeStr(type) +
                      ", so give float16, float32 or float64");
    if (!floatArg && !isIntDtype(a.dtype))
      throw ToolError("input '" + name + "' (" + path + ") has dtype " + io::dtypeName(a.dtype) +
                      "; the variant declares " + typeStr(type) + ", so give integers");
    if (int64_t(a.shape.size()) != type.getRank())
      throw ToolError("input '" + name + "' (" + path + ") has shape " + shapeStr(a.shape) +
                      " but the variant declares " + typeStr(type) + " (rank " +
                      std::to_string(type.getRank()) + ")");
    for (int64_t d = 0; d < type.getRank(); ++d)
      if (!type.isDynamicDim(d) && type.getDimSize(d) != a.shape[size_t(d)])
        throw ToolError("input '" + name + "' (" + path + ") has shape " + shapeStr(a.shape) +
                        " but the variant declares " + name + " as " + typeStr(type) +
                        ": dimension " + std::to_string(d) +
                        (type.getRank() == 4 ? std::string(" (") + kDimNames[d] + ")" : "") +
                        " is " + std::to_string(a.shape[size_t(d)]) + ", expected " +
                        std::to_string(type.getDimSize(d)));
    auto t = std::make_shared<ref::Tensor>(a.shape);
    for (size_t e = 0; e < a.values.size(); ++e) {
      double x = a.values[e];
      if (floatArg && !std::isfinite(x))
        throw ToolError("input '" + name + "' (" + path +
                        ") holds a non-finite value at flat index " + std::to_string(e));
      if (floatArg && type.getRank() == 4)
        x = dtype == "bf16" ? io::roundToBf16(x) : io::roundToFp16(x);
      t->data[e] = x;
    }
    if (floatArg && type.getRank() == 4 && !isPagedCache(func, func.getArgument(i))) {
      if (batch >= 0 && a.shape[0] != batch)
        throw ToolError("input '" + name + "' has batch " + std::to_string(a.shape[0]) + " but '" +
                        batchFrom + "' has batch " + std::to_string(batch));
      if (batch < 0)
        batch = a.shape[0], batchFrom = name;
      if (name == "k" || name == "v") {
        if (kvLen >= 0 && a.shape[2] != kvLen)
          throw ToolError("k and v have different sequence lengths (" + std::to_string(kvLen) +
                          " and " + std::to_string(a.shape[2]) + ")");
        kvLen = a.shape[2];
      }
    }
    args.push_back(std::move(t));
  }
  checkBlockLists(func, paths, args);
  return args;
}

void applyParams(func::FuncOp func, const RunOptions &opts) {
  static const std::set<std::string> kFloatAttrs = {"tau", "theta", "scale"};
  Builder b(func.getContext());
  for (auto &[name, text] : opts.params) {
    Attribute value;
    if (kFloatAttrs.count(name)) {
      char *end = nullptr;
      double v = std::strtod(text.c_str(), &end);
      if (end == text.c_str() || *end)
        throw ToolError("--param " + name + "=" + text + ": expected a number");
      value = b.getF64FloatAttr(v);
    } else {
      char *end = nullptr;
      long long v = std::strtoll(text.c_str(), &end, 10);
      if (end == text.c_str() || *end)
        throw ToolError("--param " + name + "=" + text + ": expected an integer");
      value = b.getI64IntegerAttr(v);
    }
    int applied = 0;
    func.walk([&](Operation *op) {
      if (!isa<SattnDialect>(op->getDialect()))
        return;
      std::optional<RegisteredOperationName> info = op->getName().getRegisteredInfo();
      if (!info || !llvm::is_contained(info->getAttributeNames(), b.getStringAttr(name)))
        return;
      op->setAttr(name, value);
      ++applied;
    });
    if (!applied)
      throw ToolError("--param " + name + ": no op of the variant has an attribute '" + name + "'");
  }
}

} // namespace sattn::tools
