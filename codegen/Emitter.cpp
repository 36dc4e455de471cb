//===- Emitter.cpp - kernel-level IR to CUDA C++ --------------------------===//
//
// Output shape, per launch (see codegen/device/params.cuh for the ABI):
//
//   struct k4_attn_fwd_cfg { static constexpr int HEAD_DIM = 64; ... };
//   extern "C" __global__ void __launch_bounds__(sattn::dev::kAttnThreads)
//   k4_attn_fwd(const __grid_constant__ sattn::dev::AttnParams p) {
//     sattn::dev::attn_fwd<k4_attn_fwd_cfg>(p);
//   }
//
// Constants are written in sorted order so equal launches print equally.
//
//===----------------------------------------------------------------------===//
#include "codegen/Emitter.h"

#include "dialect/SattnDialect.h"

#include "llvm/ADT/StringMap.h"

#include <set>
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;

namespace sattn::codegen {

namespace {

// Each module includes only the headers of the templates it instantiates:
// NVRTC time grows with every header parsed (the cold-compile budget).
const TemplateInfo kTemplates[] = {
    {"attn_fwd", "AttnParams", "kAttnThreads", "attention.cuh"},
    {"attn_fwd_mma", "AttnParams", "kAttnMmaThreads", "attention_mma.cuh", "kAttnMmaMinBlocks"},
    {"attn_fwd_wgmma", "AttnParams", "kAttnWgmmaThreads", "attention_wgmma.cuh", nullptr,
     "AttnWgmmaLaunch"},
    {"pool", "PoolParams", "kPoolThreads", "estimation.cuh"},
    {"block_scores", "ScoresParams", "kScoresThreads", "estimation.cuh", "kScoresMinBlocks"},
    {"mean_scores", "MeanScoresParams", "kMeanScoresThreads", "estimation.cuh"},
    {"select_topk", "SelectParams", "kSelectThreads", "selection.cuh"},
    {"select_cumulative", "SelectParams", "kSelectThreads", "selection.cuh"},
    {"head_budget", "SelectParams", "kSelectThreads", "selection.cuh"},
    {"scores_select_topk", "ScoresSelectParams", "kFusedSelectThreads", "fused_select.cuh"},
    {"scores_select_cumulative", "ScoresSelectParams", "kFusedSelectThreads", "fused_select.cuh"},
    {"scores_head_budget", "ScoresSelectParams", "kFusedSelectThreads", "fused_select.cuh"},
    {"static_blocks", "StaticBlocksParams", "kStaticThreads", "selection.cuh"},
    {"block_set_union", "SetBinParams", "kSetBinThreads", "selection.cuh"},
    {"block_set_intersect", "SetBinParams", "kSetBinThreads", "selection.cuh"},
    {"blocks_from_list", "BlocksFromListParams", "kListThreads", "selection.cuh"},
    {"classify_queries", "ClassifyParams", "kClassifyThreads", "classify.cuh",
     "kClassifyMinBlocks"},
    {"decode_attn", "DecodeParams", "kDecodeThreads", "decode.cuh"},
    {"kv_slim_lse", "DecodeParams", "kDecodeThreads", "decode.cuh"},
    {"kv_slim_scores", "SlimScoresParams", "kSlimThreads", "kv_slim.cuh"},
    {"kv_slim_select", "SlimSelectParams", "kSlimSelectThreads", "kv_slim.cuh"},
    {"kv_compact", "KvCompactParams", "kCompactThreads", "kv_slim.cuh"},
    {"antidiag_scores", "AntidiagParams", "kAntidiagThreads", "antidiag.cuh", nullptr,
     "AntidiagLaunch"},
    {"vertical_slash", "VsParams", "kVsThreads", "vertical_slash.cuh"},
    {"vertical_slash_stats", "VsParams", "kVsThreads", "vertical_slash.cuh"},
    {"vertical_slash_lse", "VsParams", "kVsThreads", "vertical_slash.cuh"},
    {"vertical_slash_lines", "VsParams", "kVsThreads", "vertical_slash.cuh"},
    {"vertical_slash_slash", "VsParams", "kVsThreads", "vertical_slash.cuh"},
    {"vertical_slash_pick", "VsParams", "kVsPickThreads", "vertical_slash.cuh"},
    {"vslash", "VsParams", "kVsPickThreads", "vslash.cuh"},
    {"vslash_gather", "AttnParams", "kVsGatherThreads", "vslash.cuh"},
    {"select_cumulative_head", "SelectParams", "kVsThreads", "select_head.cuh"},
    {"select_cumulative_head_hist", "SelectParams", "kSelHeadThreads", "select_head.cuh"},
    {"select_cumulative_head_digit", "SelectParams", "kSelHeadThreads", "select_head.cuh"},
    {"select_cumulative_head_tie", "SelectParams", "kSelHeadThreads", "select_head.cuh"},
    {"select_cumulative_head_tielast", "SelectParams", "kSelHeadThreads", "select_head.cuh"},
};

/// Kernels emitted beside a launch's own, with its configuration, for
/// runtime entry points outside the plan's launch sequence: Program::slim
/// compacts the kept KV of a kv_slim_select with `<kernel>_compact`
/// (codegen/device/kv_slim.cuh), which SlimCache::append also uses.
struct Companion {
  const char *of, *suffix, *templateName;
  const char *when = nullptr; ///< a bool constant that must be true, if any
};
/// sattn.vertical_slash, sattn.vslash and select_blocks `per head` run their
/// earlier phases as companions (codegen/device/vertical_slash.cuh); an
/// attention with a vertical-slash set gathers its columns first
/// (codegen/device/vslash.cuh).
const Companion kCompanions[] = {
    {"kv_slim_select", "_compact", "kv_compact"},
    {"vertical_slash", "_stats", "vertical_slash_stats"},
    {"vertical_slash", "_lse", "vertical_slash_lse"},
    {"vertical_slash", "_lines", "vertical_slash_lines"},
    {"vertical_slash", "_slash", "vertical_slash_slash"},
    {"vertical_slash", "_pick", "vertical_slash_pick"},
    {"vslash", "_stats", "vertical_slash_stats"},
    {"vslash", "_lse", "vertical_slash_lse"},
    {"vslash", "_lines", "vertical_slash_lines"},
    {"vslash", "_slash", "vertical_slash_slash"},
    {"attn_fwd_wgmma", "_vsgather", "vslash_gather", "HAS_VSLASH"},
    {"select_cumulative_head", "_hist", "select_cumulative_head_hist"},
    {"select_cumulative_head", "_digit", "select_cumulative_head_digit"},
    {"select_cumulative_head", "_tie", "select_cumulative_head_tie"},
    {"select_cumulative_head", "_tielast", "select_cumulative_head_tielast"},
};

/// String-valued constants become enumerators of these device enums.
const llvm::StringMap<const char *> &enumTypes() {
  static const llvm::StringMap<const char *> m = {
      {"DTYPE", "DType"}, {"KIND", "PoolKind"}, {"LAZY", "Lazy"}, {"SHARE", "Share"}};
  return m;
}

} // namespace

const char *enumTypeOf(llvm::StringRef constant) {
  auto it = enumTypes().find(constant);
  return it == enumTypes().end() ? nullptr : it->second;
}

namespace {

/// A tiny typed writer so that no pass or emitter concatenates CUDA by hand.
class CudaWriter {
public:
  explicit CudaWriter(llvm::raw_ostream &os) : os(os) {}
  void comment(const llvm::Twine &text) { os << "// " << text << "\n"; }
  void include(llvm::StringRef header) { os << "#include \"" << header << "\"\n"; }
  void blank() { os << "\n"; }
  void beginStruct(llvm::StringRef name) { os << "struct " << name << " {\n"; }
  void endStruct() { os << "};\n"; }
  void constant(llvm::StringRef type, llvm::StringRef name, llvm::StringRef value) {
    os << "  static constexpr " << type << " " << name << " = " << value << ";\n";
  }
  void kernel(llvm::StringRef name, const TemplateInfo &t, llvm::StringRef cfg) {
    os << "extern \"C\" __global__ void __launch_bounds__(";
    if (t.launchTrait) {
      std::string trait = ("sattn::dev::" + llvm::Twine(t.launchTrait) + "<" + cfg + ">").str();
      os << trait << "::threads, " << trait << "::min_blocks";
    } else {
      os << "sattn::dev::" << t.threadsEnum;
      if (t.minBlocksEnum)
        os << ", sattn::dev::" << t.minBlocksEnum;
    }
    os << ")\n"
       << name << "(const __grid_constant__ sattn::dev::" << t.paramsType << " p) {\n"
       << "  sattn::dev::" << t.name << "<" << cfg << ">(p);\n}\n";
  }

private:
  llvm::raw_ostream &os;
};

LogicalResult emitConstant(CudaWriter &w, LaunchOp launch, NamedAttribute c) {
  llvm::StringRef name = c.getName().getValue();
  Attribute v = c.getValue();
  if (auto b = llvm::dyn_cast<BoolAttr>(v))
    return w.constant("bool", name, b.getValue() ? "true" : "false"), success();
  if (auto i = llvm::dyn_cast<IntegerAttr>(v)) {
    int64_t x = i.getInt();
    if (x < INT32_MIN || x > INT32_MAX)
      return launch.emitError() << "constant " << name << " = " << x << " does not fit in int";
    return w.constant("int", name, std::to_string(x)), success();
  }
  if (auto f = llvm::dyn_cast<FloatAttr>(v))
    return w.constant("float", name, llvm::formatv("{0:e9}f", f.getValueAsDouble()).str()),
           success();
  if (auto s = llvm::dyn_cast<StringAttr>(v)) {
    auto it = enumTypes().find(name);
    if (it == enumTypes().end())
      return launch.emitError() << "string constant " << name << " has no device enum";
    std::string type = std::string("sattn::dev::") + it->second;
    return w.constant(type, name, type + "::" + s.getValue().str()), success();
  }
  return launch.emitError() << "constant " << name << " has an unsupported kind";
}

} // namespace

std::vector<std::string> companionKernels(llvm::StringRef templ, llvm::StringRef kernel,
                                          llvm::function_ref<bool(llvm::StringRef)> flag) {
  std::vector<std::string> out;
  for (const Companion &c : kCompanions)
    if (templ == c.of && (!c.when || flag(c.when)))
      out.push_back((kernel + c.suffix).str());
  return out;
}

const TemplateInfo *lookupTemplate(llvm::StringRef name) {
  for (const TemplateInfo &t : kTemplates)
    if (name == t.name)
      return &t;
  return nullptr;
}

namespace {

/// The launches of `func` (kernel-level IR), or a diagnostic.
FailureOr<SmallVector<LaunchOp>> launchesOf(func::FuncOp func) {
  if (!func->getAttrOfType<DictionaryAttr>("sattn.spec"))
    return func.emitError() << "emitting CUDA needs kernel-level IR: run "
                               "--sattn-lower-to-kernels first";
  SmallVector<LaunchOp> launches;
  for (Operation &op : func.getBody().front()) {
    auto launch = dyn_cast<LaunchOp>(op);
    if (!launch) {
      if (isa<func::ReturnOp>(op))
        continue;
      return op.emitError() << "emitting CUDA needs kernel-level IR; found " << op.getName()
                            << " (run --sattn-lower-to-kernels first)";
    }
    if (launch.getDeviceTemplate() == "attn_fwd_vslash_unavailable") {
      auto c = launch.getConsts();
      return launch.emitError()
             << "an attention with a vertical-slash set runs on the GPU only on Hopper (sm_90a), "
                "with head dim 64 or 128 and a query block (bq) that is a multiple of 64; this "
                "variant has "
             << llvm::cast<StringAttr>(func->getAttrOfType<DictionaryAttr>("sattn.spec").get("arch"))
                    .getValue()
             << ", head dim " << llvm::cast<IntegerAttr>(c.get("HEAD_DIM")).getInt() << ", bq "
             << llvm::cast<IntegerAttr>(c.get("VS_BQ")).getInt() << " (run it on the CPU device)";
    }
    if (!lookupTemplate(launch.getDeviceTemplate()))
      return launch.emitError() << "device template '" << launch.getDeviceTemplate()
                                << "' is not in this build's device library yet; run this "
                                   "variant on the CPU device (the reference runs every op)";
    launches.push_back(launch);
  }
  if (launches.empty())
    return func.emitError() << "the variant has no kernel launches";
  return launches;
}

/// One module: a comment, one include per distinct header, then per launch
/// its config struct and kernel wrapper(s).
FailureOr<std::string> emitModule(func::FuncOp func, ArrayRef<LaunchOp> launches) {
  auto spec = func->getAttrOfType<DictionaryAttr>("sattn.spec");
  std::string out;
  llvm::raw_string_ostream os(out);
  CudaWriter w(os);
  w.comment("sattn module for @" + func.getSymName() + ", key " +
            llvm::cast<StringAttr>(spec.get("key")).getValue());
  // The companions a launch gets, by the bool constants they depend on.
  auto companions = [](LaunchOp launch) {
    SmallVector<const Companion *> out;
    for (const Companion &c : kCompanions) {
      if (launch.getDeviceTemplate() != c.of)
        continue;
      if (c.when) {
        auto v = llvm::dyn_cast_or_null<BoolAttr>(launch.getConsts().get(c.when));
        if (!v || !v.getValue())
          continue;
      }
      out.push_back(&c);
    }
    return out;
  };
  std::set<std::string> headers;
  for (LaunchOp launch : launches) {
    headers.insert(lookupTemplate(launch.getDeviceTemplate())->header);
    for (const Companion *c : companions(launch))
      headers.insert(lookupTemplate(c->templateName)->header);
  }
  for (const std::string &h : headers)
    w.include(h);
  for (LaunchOp launch : launches) {
    const TemplateInfo *t = lookupTemplate(launch.getDeviceTemplate());
    std::string cfg = (launch.getKernel() + "_cfg").str();
    w.blank();
    w.comment(launch.getKernel() + ": " + launch.getDeviceTemplate());
    w.beginStruct(cfg);
    for (NamedAttribute c : launch.getConsts())
      if (failed(emitConstant(w, launch, c)))
        return failure();
    w.endStruct();
    w.kernel(launch.getKernel(), *t, cfg);
    for (const Companion *c : companions(launch))
      w.kernel((launch.getKernel() + c->suffix).str(), *lookupTemplate(c->templateName), cfg);
  }
  return out;
}

} // namespace

FailureOr<std::string> emitCuda(func::FuncOp func) {
  FailureOr<SmallVector<LaunchOp>> launches = launchesOf(func);
  if (failed(launches))
    return failure();
  return emitModule(func, *launches);
}

FailureOr<std::vector<std::string>> emitCudaParts(func::FuncOp func) {
  FailureOr<SmallVector<LaunchOp>> launches = launchesOf(func);
  if (failed(launches))
    return failure();
  std::vector<std::string> parts;
  for (LaunchOp launch : *launches) {
    FailureOr<std::string> part = emitModule(func, {launch});
    if (failed(part))
      return failure();
    parts.push_back(std::move(*part));
  }
  return parts;
}

} // namespace sattn::codegen
