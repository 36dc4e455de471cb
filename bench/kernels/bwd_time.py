#!/usr/bin/env python3
"""Median GPU time (CUDA events) of sattn's dense backward alone, given the
forward's O and LSE, and of cuDNN SDPA's fwd+bwd, per (head dim, causal):
the quick A/B for backward kernel changes (run it once per setting of an
environment switch such as SATTN_BACKWARD_KEY_WGS; each process builds its
own kernels). B = 1, H = 32, bf16. Prints one JSON object per case.

  python3 bench/kernels/bwd_time.py --seq 16384 --dims 64,128 --causal 1,0 [--cudnn]
"""
import json
import os
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from train_kernels import case_parser, dense_cases  # noqa: E402


def median_ms(fn, reps):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    return sorted(times)[len(times) // 2]


def main():
    ap = case_parser(__doc__.split("\n")[0])
    ap.add_argument("--cudnn", action="store_true", help="time cuDNN SDPA fwd+bwd as well")
    ap.add_argument("--atomic", action="store_true", help="the fast (atomic dQ) mode")
    a = ap.parse_args()
    for d, causal, q, k, v, do, prog, o, lse in dense_cases(a):
        row = {"S": a.seq, "D": d, "causal": causal,
               "key_wgs_env": os.environ.get("SATTN_BACKWARD_KEY_WGS", ""),
               "mode": "atomic" if a.atomic else "deterministic",
               "fwd_ms": median_ms(lambda: prog(q, k, v), a.reps),
               "bwd_ms": median_ms(lambda: prog.backward(q, k, v, dout=do, out=o, lse=lse,
                                                         deterministic=not a.atomic), a.reps)}
        for env in ("DQ_TMA", "DQ_SPLIT", "QDO_TMA"):  # the A/B switches in force
            row[env.lower() + "_env"] = os.environ.get("SATTN_BACKWARD_" + env, "")
        qr, kr, vr = (x.detach().requires_grad_() for x in (q, k, v))

        def cudnn():
            with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                out = F.scaled_dot_product_attention(qr, kr, vr, is_causal=causal)
            return torch.autograd.grad(out, (qr, kr, vr), do)
        # Gradients against cuDNN's on the same inputs (poisoned outputs: a
        # gradient the kernels do not write stays NaN and shows here).
        mine = [torch.full_like(x, float("nan")) for x in (q, k, v)]
        prog.backward(q, k, v, dout=do, out=o, lse=lse, deterministic=not a.atomic, grads=mine)
        for name, x, r in zip(("dq", "dk", "dv"), mine, cudnn()):
            row["rel_err_" + name] = ((x.float() - r.float()).norm() / r.float().norm()).item()
        if a.cudnn:
            row["cudnn_fwd_bwd_ms"] = median_ms(cudnn, a.reps)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
