//===- Tuning.cpp - autotuning: config spaces, shape buckets, the database -===//
#include "runtime/tune/Tuning.h"

#include "codegen/device/attention_wgmma.cuh"

#include "dialect/SattnDialect.h"
#include "runtime/cache/DiskCache.h"
#include "runtime/gpu/PlanFromIR.h"

#include "mlir/IR/Builders.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <unistd.h>

namespace sattn::tune {

namespace {

/// Every template's knobs, in one table (the heuristic value first).
const std::map<std::string, std::vector<Config>> &spaces() {
  static const std::map<std::string, std::vector<Config>> s = {
      {"attn_fwd_mma", {{{"TILE_M", 64}}, {{"TILE_M", 128}}}},
      // CONSUMER_WGS 0: the shape's rule (1 or 2 consumer warpgroups); 3:
      // 192-row tiles, head dim 64 without sets only (rejectReason).
      {"attn_fwd_wgmma",
       {{{"PINGPONG", 1}, {"PERSISTENT", 1}, {"CONSUMER_WGS", 0}},
        {{"PINGPONG", 0}, {"PERSISTENT", 1}, {"CONSUMER_WGS", 0}},
        {{"PINGPONG", 1}, {"PERSISTENT", 0}, {"CONSUMER_WGS", 0}},
        {{"PINGPONG", 0}, {"PERSISTENT", 0}, {"CONSUMER_WGS", 0}},
        {{"PINGPONG", 0}, {"PERSISTENT", 1}, {"CONSUMER_WGS", 3}},
        {{"PINGPONG", 1}, {"PERSISTENT", 1}, {"CONSUMER_WGS", 3}}}},
  };
  return s;
}

int64_t pow2Ceil(int64_t x) {
  int64_t p = 1;
  while (p < x)
    p <<= 1;
  return p;
}

std::string constText(const gpu::Const &c) {
  if (auto *i = std::get_if<int64_t>(&c))
    return std::to_string(*i);
  if (auto *d = std::get_if<double>(&c)) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.9g", *d);
    return buf;
  }
  if (auto *b = std::get_if<bool>(&c))
    return *b ? "true" : "false";
  return std::get<std::string>(c);
}

} // namespace

std::vector<Config> candidates(const std::string &deviceTemplate) {
  auto it = spaces().find(deviceTemplate);
  return it == spaces().end() ? std::vector<Config>{} : it->second;
}

std::string rejectReason(const gpu::Launch &launch, const Config &config) {
  std::vector<Config> space = candidates(launch.deviceTemplate);
  if (space.empty())
    return "template " + launch.deviceTemplate + " has no tunable constants";
  if (std::find(space.begin(), space.end(), config) == space.end())
    return describe(config) + " is not in the configuration space of " + launch.deviceTemplate;
  const bool vslash = launch.consts.count("HAS_VSLASH") && launch.b("HAS_VSLASH");
  const dev::AttnWgmmaShape shape{launch.b("HAS_BLOCKS"), int(launch.i("SET_BQ")),
                                  int(launch.i("SET_BK")), launch.b("HAS_QUERIES"),
                                  int(config.count("CONSUMER_WGS") ? config.at("CONSUMER_WGS") : 0)};
  // Block patterns: the largest kernels, not verified with three consumers.
  if (launch.deviceTemplate == "attn_fwd_wgmma" && shape.consumers != 0 &&
      (vslash || launch.b("HAS_PATTERN") ||
       !dev::attn_wgmma_consumers_valid(int(launch.i("HEAD_DIM")), shape)))
    return describe(config) + ": three consumer warpgroups need head dim 64 and no block, "
                              "query or vertical-slash set and no block pattern";
  if (launch.deviceTemplate == "attn_fwd_wgmma" && config.at("PINGPONG") != 0 &&
      (vslash || dev::attn_wgmma_warpgroups(shape) == 1))
    return describe(config) +
           (vslash                    ? ": a vertical-slash set's 64-row tiles"
            : launch.b("HAS_QUERIES") ? ": a query set's packed row tiles"
                                      : ": block-set rows of " + std::to_string(launch.i("SET_BQ")) +
                                            " queries") +
           " run one consumer warpgroup per CTA, which has no partner to take turns with";
  if (launch.deviceTemplate == "attn_fwd_mma") {
    int64_t tileM = config.at("TILE_M");
    // A CTA's rows share one block list, so a tile taller than the set's
    // query blocks would leave warps without rows.
    if (launch.b("HAS_BLOCKS") && launch.i("SET_BQ") < tileM)
      return describe(config) + ": tiles of " + std::to_string(tileM) +
             " rows are taller than the block set's query blocks of " +
             std::to_string(launch.i("SET_BQ")) + " rows";
  }
  return "";
}

std::string signature(const gpu::Launch &launch) {
  std::vector<Config> space = candidates(launch.deviceTemplate);
  std::string text = launch.deviceTemplate;
  for (const auto &[name, value] : launch.consts) {
    bool tunable = !space.empty() && space.front().count(name);
    // How the kernel loads (TMA, or its copy-load variant for odd strides)
    // does not change which configuration wins: left out, tuning databases
    // written before the constant existed stay valid.
    if (name == "TMA")
      continue;
    if (!tunable)
      text += ";" + name + "=" + constText(value);
  }
  return cache::sha256Hex(text).substr(0, 24);
}

std::string bucket(const Shape &s) {
  return "bh" + std::to_string(pow2Ceil(s.batchHeads)) + ".q" + std::to_string(pow2Ceil(s.seqQ)) +
         ".kv" + std::to_string(pow2Ceil(s.seqKv));
}

std::string describe(const Config &config) {
  std::string s;
  for (const auto &[k, v] : config)
    s += (s.empty() ? "" : ",") + k + "=" + std::to_string(v);
  return s;
}

Config parseConfig(const std::string &text) {
  Config c;
  size_t at = 0;
  while (at <= text.size()) {
    size_t end = text.find(',', at);
    if (end == std::string::npos)
      end = text.size();
    const std::string part = text.substr(at, end - at);
    const size_t eq = part.find('=');
    size_t used = 0;
    int64_t v = 0;
    try {
      if (eq != std::string::npos && eq > 0)
        v = std::stoll(part.substr(eq + 1), &used);
    } catch (const std::exception &) {
      used = 0;
    }
    if (eq == std::string::npos || eq == 0 || used == 0 || eq + 1 + used != part.size())
      throw std::invalid_argument("configuration \"" + text + "\": \"" + part +
                                  "\" is not NAME=INTEGER (expected e.g. "
                                  "\"PINGPONG=0,CONSUMER_WGS=3\")");
    c[part.substr(0, eq)] = v;
    at = end + 1;
  }
  return c;
}

Config mergeConfig(const gpu::Launch &launch, const Config &partial) {
  std::vector<Config> space = candidates(launch.deviceTemplate);
  Config merged;
  bool any = false;
  if (space.empty())
    return merged;
  for (const auto &[k, v] : space.front()) {
    auto it = partial.find(k);
    any |= it != partial.end();
    merged[k] = it != partial.end()              ? it->second
                : launch.consts.count(k) != 0u ? launch.i(k)
                                               : v;
  }
  return any ? merged : Config{};
}

Database::Database(std::string path) : file(std::move(path)) {
  auto buf = llvm::MemoryBuffer::getFile(file);
  if (!buf)
    return; // no database yet
  llvm::Expected<llvm::json::Value> doc = llvm::json::parse((*buf)->getBuffer());
  if (!doc) {
    warning = "tuning database '" + file + "' is not valid JSON (" +
              llvm::toString(doc.takeError()) + "); ignoring it — delete it or rerun sattn-tune";
    return;
  }
  const llvm::json::Array *list =
      doc->getAsObject() ? doc->getAsObject()->getArray("entries") : nullptr;
  if (!list) {
    warning = "tuning database '" + file + "' has no \"entries\" array; ignoring it";
    return;
  }
  for (const llvm::json::Value &v : *list) {
    const llvm::json::Object *o = v.getAsObject();
    if (!o)
      continue;
    Entry e;
    auto str = [&](const char *k, std::string &out) {
      if (auto s = o->getString(k))
        out = s->str();
    };
    str("gpu", e.gpu), str("arch", e.arch), str("toolchain", e.toolchain);
    str("signature", e.signature), str("bucket", e.bucket);
    if (auto ms = o->getNumber("ms"))
      e.ms = *ms;
    if (const llvm::json::Object *c = o->getObject("config"))
      for (const auto &kv : *c)
        if (auto i = kv.second.getAsInteger())
          e.config[kv.first.str()] = *i;
    if (!e.signature.empty() && !e.config.empty())
      entries.push_back(std::move(e));
  }
}

std::vector<Entry> Database::lookup(const std::string &gpu, const std::string &arch,
                                    const std::string &toolchain, const std::string &sig) const {
  std::vector<Entry> out;
  for (const Entry &e : entries)
    if (e.gpu == gpu && e.arch == arch && e.toolchain == toolchain && e.signature == sig)
      out.push_back(e);
  return out;
}

void Database::record(const Entry &e) {
  for (Entry &old : entries)
    if (old.gpu == e.gpu && old.arch == e.arch && old.toolchain == e.toolchain &&
        old.signature == e.signature && old.bucket == e.bucket) {
      old = e;
      return;
    }
  entries.push_back(e);
}

void Database::save() const {
  llvm::json::Array list;
  for (const Entry &e : entries) {
    llvm::json::Object config;
    for (const auto &[k, v] : e.config)
      config[k] = v;
    list.push_back(llvm::json::Object{{"gpu", e.gpu},
                                      {"arch", e.arch},
                                      {"toolchain", e.toolchain},
                                      {"signature", e.signature},
                                      {"bucket", e.bucket},
                                      {"config", std::move(config)},
                                      {"ms", e.ms}});
  }
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::formatv("{0:2}", llvm::json::Value(llvm::json::Object{{"entries", std::move(list)}}));
  os.flush();
  std::string tmp = file + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text << "\n";
    if (!out)
      throw std::runtime_error("cannot write the tuning database '" + tmp +
                               "'; set SATTN_CACHE_DIR to a writable directory");
  }
  if (std::rename(tmp.c_str(), file.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot replace the tuning database '" + file + "'");
  }
}

void applyConfig(mlir::func::FuncOp lowered, const std::string &kernel, const Config &config) {
  mlir::Builder b(lowered.getContext());
  lowered.walk([&](LaunchOp launch) {
    if (launch.getKernel() != kernel)
      return;
    mlir::NamedAttrList consts(launch.getConsts());
    for (const auto &[k, v] : config)
      consts.set(k, b.getI64IntegerAttr(v));
    launch.setConstsAttr(consts.getDictionary(lowered.getContext()));
  });
}

Config forcedConfig() {
  const char *text = std::getenv("SATTN_TUNE_CONFIG");
  if (!text || !*text)
    return {};
  try {
    return parseConfig(text);
  } catch (const std::invalid_argument &e) {
    throw std::invalid_argument(std::string("SATTN_TUNE_CONFIG: ") + e.what());
  }
}

void applyForced(mlir::func::FuncOp lowered, const Config &forced) {
  if (forced.empty())
    return;
  for (const gpu::Launch &l : gpu::planFromIR(lowered).launches) {
    const Config c = mergeConfig(l, forced);
    if (!c.empty() && rejectReason(l, c).empty())
      applyConfig(lowered, l.kernel, c);
  }
}

} // namespace sattn::tune
