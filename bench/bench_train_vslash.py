#!/usr/bin/env python3
"""Training step through MInference vertical-slash (token-level bands and
gathered columns, semantics section 12b): forward + backward of sattn's
``patterns.minference_vertical_slash`` against dense causal attention, in one
process on one GPU.

Shapes: B = 1, H = 32 query heads, 8 KV heads, D = 128, S in ``--seqs``,
bf16, random normal Q, K, V and dO (never zero). Rows:

  sattn_vslash   the pattern with its attention's LSE returned too (the IR
                 patched as bench_train.add_lse does); fwd: ``o, lse =
                 program(q, k, v)`` (selection + attention); bwd:
                 ``program.backward(q, k, v, dout=do, out=o, lse=lse)`` (the
                 selection recomputed, then the band and column passes);
                 ``vs_bwd_recompute``: the plain pattern's backward, which
                 also recomputes the forward
  sattn_causal   ``patterns.dense(..., causal=True, lse=True)``, backward given
                 the saved O and LSE
  sdpa_cudnn     ``F.scaled_dot_product_attention(..., is_causal=True)`` under
                 the cuDNN backend, autograd backward

Timing: bench/timing.py (CUDA events, median of ``--reps``). The density
(attended / causally valid (row, key) pairs of the variant's set) comes from
``run_selection``. Ratios are peer ms / sattn_vslash ms (> 1: sattn faster).
Correctness of the vertical-slash backward is the GPU test suite's job
(tests/gpu/test_backward.cpp, against the float64 reference on the GPU's
own set); here only finiteness is checked.
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import median_ms  # noqa: E402

import sattn  # noqa: E402
from sattn import patterns  # noqa: E402
from bench_train import add_lse  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seqs", default="16384,32768")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--vertical", type=int, default=1000)
    ap.add_argument("--slash", type=int, default=300,
                    help="slashes kept (the pattern's default 6096 covers every distance < 16k)")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    H, HKV, D = 32, 8, 128
    session = sattn.Session("gpu")
    text = patterns.minference_vertical_slash(H, HKV, D, vertical=a.vertical, slash=a.slash)
    plain = session.compile(text)
    vs = session.compile(add_lse(text, H))
    dense = session.compile(patterns.dense(H, HKV, D, causal=True, lse=True))
    rows = []
    for S in [int(x) for x in a.seqs.split(",")]:
        g = torch.Generator(device="cuda").manual_seed(S)
        mk = lambda h: torch.randn(1, h, S, D, device="cuda", dtype=torch.bfloat16, generator=g)
        q, k, v, do = mk(H), mk(HKV), mk(HKV), mk(H)
        _, rep = vs.run_selection(q, k, v)
        row = {"S": S, "density": rep.get("density")}
        o, l = vs(q, k, v)
        grads = vs.backward(q, k, v, dout=do, out=o, lse=l)
        again = plain.backward(q, k, v, dout=do)  # recomputed forward: the same gradients
        row["finite"] = bool(torch.isfinite(o).all()) and all(
            bool(torch.isfinite(x).all()) for x in grads)
        row["recompute_rel_diff"] = max(
            float((x.float() - y.float()).norm() / y.float().norm()) for x, y in zip(again, grads))
        row["vslash_fwd"] = median_ms(lambda: vs(q, k, v), a.reps, 2)
        row["vslash_bwd"] = median_ms(lambda: vs.backward(q, k, v, dout=do, out=o, lse=l),
                                      a.reps, 2)
        row["vs_bwd_recompute"] = median_ms(lambda: plain.backward(q, k, v, dout=do), a.reps, 2)
        od, lse = dense(q, k, v)
        row["causal_fwd"] = median_ms(lambda: dense(q, k, v), a.reps, 2)
        row["causal_bwd"] = median_ms(
            lambda: dense.backward(q, k, v, dout=do, out=od, lse=lse), a.reps, 2)
        qe, ke, ve = (x.detach().requires_grad_() for x in (q, k, v))
        from torch.nn.attention import SDPBackend, sdpa_kernel
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            def f():
                return F.scaled_dot_product_attention(qe, ke, ve, is_causal=True,
                                                      enable_gqa=True)
            row["cudnn_fwd"] = median_ms(f, a.reps, 2)
            oc = f()
            row["cudnn_bwd"] = median_ms(
                lambda: torch.autograd.grad(oc, (qe, ke, ve), do, retain_graph=True), a.reps, 2)
        for n in ("vslash", "causal", "cudnn"):
            row[n + "_step"] = row[n + "_fwd"] + row[n + "_bwd"]
        rows.append(row)
        del q, k, v, do, grads, again, o, l, od, lse, qe, ke, ve, oc
        torch.cuda.empty_cache()
    print("%-6s %-8s %-6s | %9s %9s %9s %9s | %9s %9s %9s | %8s %8s" % (
        "S", "density", "finite", "vs fwd", "vs bwd", "bwd recmp", "vs step", "causal", "cuDNN",
        "cuDNN bwd", "causal/vs", "cuDNN/vs"))
    for r in rows:
        print("%-6d %-8.3f %-6s | %9.2f %9.2f %9.2f %9.2f | %9.2f %9.2f %9.2f | %8.2f %8.2f" % (
            r["S"], r["density"] or float("nan"), r["finite"], r["vslash_fwd"], r["vslash_bwd"],
            r["vs_bwd_recompute"], r["vslash_step"], r["causal_step"], r["cudnn_step"],
            r["cudnn_bwd"],
            r["causal_step"] / r["vslash_step"], r["cudnn_step"] / r["vslash_step"]))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"gpu": torch.cuda.get_device_name(), "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
