#!/usr/bin/env python3
"""Median GPU time (CUDA events) of sattn's dense backward alone, given the
forward's O and LSE, and of cuDNN SDPA's fwd+bwd, per (head dim, causal):
the quick A/B for backward kernel changes (run it once per setting of an
environment switch such as SATTN_BACKWARD_KEY_WGS; each process builds its
own kernels). B = 1, H = 32, bf16. Prints one JSON object per case.

  python3 bench/kernels/bwd_time.py --seq 16384 --dims 64,128 --causal 1,0 [--cudnn]
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
import sattn  # noqa: E402


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
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seq", type=int, default=16384)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--dims", default="64,128")
    ap.add_argument("--causal", default="1,0")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--cudnn", action="store_true", help="time cuDNN SDPA fwd+bwd as well")
    a = ap.parse_args()
    session = sattn.Session()
    s, h = a.seq, a.heads
    for d in [int(x) for x in a.dims.split(",")]:
        for causal in [x == "1" for x in a.causal.split(",")]:
            g = torch.Generator(device="cuda").manual_seed(0)
            q, k, v, do = (torch.randn(1, h, s, d, device="cuda", dtype=torch.bfloat16,
                                       generator=g) for _ in range(4))
            prog = session.compile(sattn.patterns.dense(h, h, d, causal=causal, lse=True))
            o, lse = prog(q, k, v)
            row = {"S": s, "D": d, "causal": causal,
                   "key_wgs_env": os.environ.get("SATTN_BACKWARD_KEY_WGS", ""),
                   "fwd_ms": median_ms(lambda: prog(q, k, v), a.reps),
                   "bwd_ms": median_ms(lambda: prog.backward(q, k, v, dout=do, out=o, lse=lse,
                                                             deterministic=True), a.reps)}
            if a.cudnn:
                qr, kr, vr = (x.detach().requires_grad_() for x in (q, k, v))

                def cudnn():
                    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                        out = F.scaled_dot_product_attention(qr, kr, vr, is_causal=causal)
                    torch.autograd.grad(out, (qr, kr, vr), do)
                row["cudnn_fwd_bwd_ms"] = median_ms(cudnn, a.reps)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
