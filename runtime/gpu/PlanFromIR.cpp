//===- PlanFromIR.cpp - extract a Plan from kernel-level IR --------------===//
#include "runtime/gpu/PlanFromIR.h"

#include "dialect/SattnDialect.h"
#include "dialect/VariantSignature.h"
#include "runtime/gpu/Driver.h"

#include "llvm/ADT/DenseMap.h"

using namespace mlir;

namespace sattn::gpu {

namespace {

Elem elemOf(Type t) {
  if (t.isBF16())
    return Elem::BF16;
  if (t.isF16())
    return Elem::FP16;
  if (t.isF32())
    return Elem::F32;
  if (t.isInteger(64))
    return Elem::I64;
  return Elem::I32;
}

ValueInfo infoOf(Type t) {
  ValueInfo v{};
  if (auto rt = llvm::dyn_cast<RankedTensorType>(t)) {
    v.elem = elemOf(rt.getElementType());
    if (rt.getRank() == 4) {
      v.kind = ValueKind::Tensor4;
      v.heads = rt.getDimSize(1);
      v.dim = rt.getDimSize(3);
      v.seqStatic = rt.isDynamicDim(2) ? -1 : rt.getDimSize(2);
    } else if (llvm::isa<IntegerType>(rt.getElementType())) {
      v.kind = ValueKind::Ints;
    } else if (rt.getRank() == 3 && rt.getElementType().isF32()) {
      v.kind = ValueKind::Lse; // LSE [B, H, S]; kv-slim scores share the shape
      v.heads = rt.getDimSize(1);
    } else {
      v.kind = ValueKind::Tensor3F32;
    }
  } else if (auto s = llvm::dyn_cast<ScoresType>(t)) {
    v = {ValueKind::Scores, Elem::F32, s.getHeads(), 0, s.getBq(), s.getBk()};
  } else if (auto b = llvm::dyn_cast<BlocksType>(t)) {
    v = {ValueKind::Blocks, Elem::I32, b.getHeads(), 0, b.getBq(), b.getBk()};
  } else if (auto b = llvm::dyn_cast<BudgetType>(t)) {
    v = {ValueKind::Budget, Elem::I32, b.getHeads(), 0, b.getBq(), 0};
  } else if (auto q = llvm::dyn_cast<QueriesType>(t)) {
    v = {ValueKind::Queries, Elem::I32, q.getHeads()};
  } else if (auto q = llvm::dyn_cast<TokensType>(t)) {
    v = {ValueKind::Tokens, Elem::I32, q.getHeads()};
  } else if (auto q = llvm::dyn_cast<VSlashType>(t)) {
    v = {ValueKind::VSlash, Elem::I32, q.getHeads(), 0, q.getBq(), 0};
  }
  return v;
}

Const constOf(Attribute a) {
  if (auto b = llvm::dyn_cast<BoolAttr>(a))
    return b.getValue();
  if (auto i = llvm::dyn_cast<IntegerAttr>(a))
    return i.getInt();
  if (auto f = llvm::dyn_cast<FloatAttr>(a))
    return f.getValueAsDouble();
  return llvm::cast<StringAttr>(a).getValue().str();
}

} // namespace

Plan planFromIR(func::FuncOp func) {
  auto spec = func->getAttrOfType<DictionaryAttr>("sattn.spec");
  if (!spec)
    throw GpuError("the GPU runtime needs kernel-level IR (run --sattn-lower-to-kernels)");
  Plan plan;
  plan.name = func.getSymName().str();
  plan.key = llvm::cast<StringAttr>(spec.get("key")).str();
  plan.dtype = llvm::cast<StringAttr>(spec.get("dtype")).str();
  if (auto arch = spec.getAs<StringAttr>("arch"))
    plan.arch = arch.str();
  llvm::DenseMap<Value, int> ids;
  auto idOf = [&](Value v) {
    auto [it, inserted] = ids.try_emplace(v, int(plan.values.size()));
    if (inserted)
      plan.values.push_back(infoOf(v.getType()));
    return it->second;
  };
  for (BlockArgument a : func.getArguments()) {
    plan.args.push_back(idOf(a));
    plan.argNames.push_back(argName(func, a.getArgNumber()));
  }
  for (Operation &op : func.getBody().front()) {
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      for (Value v : ret.getOperands()) {
        plan.results.push_back(idOf(v));
        int like = 0;
        if (auto launch = v.getDefiningOp<LaunchOp>(); launch && !launch.getArgs().empty())
          if (auto arg = llvm::dyn_cast<BlockArgument>(launch.getArgs()[0]))
            like = int(arg.getArgNumber());
        plan.resultArg.push_back(like);
      }
      continue;
    }
    auto launch = dyn_cast<LaunchOp>(op);
    if (!launch)
      throw GpuError("the GPU runtime needs kernel-level IR; found " +
                     op.getName().getStringRef().str());
    Launch l;
    l.kernel = launch.getKernel().str();
    l.deviceTemplate = launch.getDeviceTemplate().str();
    for (NamedAttribute c : launch.getConsts())
      l.consts[c.getName().str()] = constOf(c.getValue());
    for (Value v : launch.getArgs())
      l.operands.push_back(idOf(v));
    for (Value v : launch.getResults())
      l.results.push_back(idOf(v));
    plan.launches.push_back(std::move(l));
  }
  return plan;
}

} // namespace sattn::gpu
