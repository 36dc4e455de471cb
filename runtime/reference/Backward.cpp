//===- Backward.cpp - Gradients of the masked sparse attention ------------===//
//
// The backward pass of §2 in float64: the oracle of the GPU backward kernels
// (training). Each row (b, h, i) rebuilds its key set A(i) with the same
// detail::KeySets as attention() and recomputes its softmax, so forward and
// backward can never disagree on which keys a row attends. A(i) is taken as
// a constant: block, query and vertical-slash selections have no gradient
// (straight-through), and a lazy row is differentiated along the local +
// sinks path it actually ran.
//
// With s_j = scale * q_i . k_j, P = softmax(s) over A(i), o_i = sum_j P_j v_j
// and the upstream gradient dout_i = dL/do_i:
//   dv_j += P_j dout_i
//   dP_j  = dout_i . v_j
//   D_i   = sum_j P_j dP_j           (= dout_i . o_i)
//   dS_j  = P_j (dP_j - D_i)          (softmax Jacobian)
//   dq_i  = scale * sum_j dS_j k_j
//   dk_j += scale * dS_j q_i
// A KV head is shared by Hq / Hkv query heads, so its dk/dv accumulate over
// them. An empty A(i) has a constant output (O = 0) and adds nothing. The
// loops are O(rows x keys x D) on purpose: obvious beats fast in an oracle.
//
//===----------------------------------------------------------------------===//

#include "runtime/reference/Reference.h"

#include <fmt/format.h>

namespace sattn::ref {

AttentionGrads attentionBackward(const Tensor &q, const Tensor &k, const Tensor &v,
                                 const Tensor &dout, const BlockSet *blocks,
                                 const QuerySet *queries, const AttentionParams &p) {
  int64_t D = detail::checkQKV(q, k, v);
  if (dout.shape != q.shape)
    throw Error(fmt::format("dout has shape [{}] but the attention output (q's shape) is [{}]; "
                            "dout must have exactly that shape",
                            fmt::join(dout.shape, ", "), fmt::join(q.shape, ", ")));
  detail::checkTensor(dout, "dout", 4);
  int64_t B = q.dim(0), Hq = q.dim(1), Sq = q.dim(2), Hkv = k.dim(1), Skv = k.dim(2);
  double scale = detail::resolveScale(p.scale, D);
  detail::KeySets sets(B, Hq, Hkv, Sq, Skv, blocks, queries, p);
  int64_t g = Hq / Hkv;

  AttentionGrads r{Tensor(q.shape), Tensor(k.shape), Tensor(v.shape)};
  std::vector<char> keys;
  std::vector<int64_t> list;
  std::vector<double> prob, dprob;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h)
      for (int64_t i = 0; i < Sq; ++i) {
        sets.keyList(b, h, i, keys, list);
        if (list.empty())
          continue;
        int64_t hk = h / g;
        size_t n = list.size();
        prob.assign(n, 0.0);
        dprob.assign(n, 0.0);
        for (size_t x = 0; x < n; ++x) {
          double dot = 0.0, dd = 0.0;
          for (int64_t d = 0; d < D; ++d) {
            dot += q.at(b, h, i, d) * k.at(b, hk, list[x], d);
            dd += dout.at(b, h, i, d) * v.at(b, hk, list[x], d);
          }
          prob[x] = scale * dot;
          dprob[x] = dd;
        }
        detail::softmaxInPlace(prob); // max-subtracted, as in attention()
        double Di = 0.0;
        for (size_t x = 0; x < n; ++x)
          Di += prob[x] * dprob[x];
        for (size_t x = 0; x < n; ++x) {
          int64_t j = list[x];
          double dS = prob[x] * (dprob[x] - Di);
          for (int64_t d = 0; d < D; ++d) {
            r.dq.at(b, h, i, d) += scale * dS * k.at(b, hk, j, d);
            r.dk.at(b, hk, j, d) += scale * dS * q.at(b, h, i, d);
            r.dv.at(b, hk, j, d) += prob[x] * dout.at(b, h, i, d);
          }
        }
      }
  return r;
}

} // namespace sattn::ref
