#!/usr/bin/env python3
"""Where a training step through sattn.autograd.SparseAttention spends its
time, against the same kernels called directly (Program.__call__ +
Program.backward) and cuDNN SDPA: per path, the host time to enqueue one
fwd+bwd step (perf_counter, no synchronisation), the time of `--reps` steps
queued back to back (one synchronisation at the end) and the time of one
step synchronised on its own (what gpu_autograd_check.py's timing line
measures). Dense causal, B = 1, H = 32, bf16.

  python3 bench/kernels/autograd_time.py --seq 4096 --dims 64,128
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
import sattn  # noqa: E402
from sattn.autograd import SparseAttention  # noqa: E402


def measure(step, reps):
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    host = []
    for _ in range(reps):  # host enqueue time of one step
        t0 = time.perf_counter()
        step()
        host.append((time.perf_counter() - t0) * 1e3)
        torch.cuda.synchronize()
    single = []
    for _ in range(reps):  # one step, synchronised on its own
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize()
        single.append((time.perf_counter() - t0) * 1e3)
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(reps):
        step()
    b.record()
    torch.cuda.synchronize()
    return {"host_ms": statistics.median(host), "single_ms": statistics.median(single),
            "queued_ms": a.elapsed_time(b) / reps}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seq", type=int, default=4096)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--dims", default="64,128")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--profile", action="store_true",
                    help="also cProfile the host side of each SparseAttention path (top 25)")
    a = ap.parse_args()
    session = sattn.Session()
    for d in [int(x) for x in a.dims.split(",")]:
        g = torch.Generator(device="cuda").manual_seed(0)
        q, k, v, do = (torch.randn(1, a.heads, a.seq, d, device="cuda", dtype=torch.bfloat16,
                                   generator=g) for _ in range(4))
        prog = session.compile(sattn.patterns.dense(a.heads, a.heads, d, causal=True, lse=True))
        o = torch.empty_like(q)
        lse = torch.empty(1, a.heads, a.seq, device="cuda", dtype=torch.float32)
        grads = tuple(torch.empty_like(x) for x in (q, k, v))

        def direct():
            prog(q, k, v, out=o, lse=lse)
            prog.backward(q, k, v, dout=do, out=o, lse=lse, deterministic=True, grads=grads)

        qr, kr, vr = (x.detach().requires_grad_() for x in (q, k, v))
        paths = {"direct": direct}
        for name, op in (("SparseAttention op", None), ("SparseAttention Function", False)):
            attn = SparseAttention(prog, custom_op=op)
            paths[name] = (lambda attn: lambda: torch.autograd.grad(attn(qr, kr, vr),
                                                                    (qr, kr, vr), do))(attn)

        def cudnn():
            with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                out = F.scaled_dot_product_attention(qr, kr, vr, is_causal=True)
            torch.autograd.grad(out, (qr, kr, vr), do)
        paths["cuDNN SDPA"] = cudnn
        for name, step in paths.items():
            row = {"S": a.seq, "D": d, "path": name}
            row.update(measure(step, a.reps))
            print(json.dumps(row), flush=True)
            if a.profile and name.startswith("SparseAttention"):
                import cProfile
                import pstats
                prof = cProfile.Profile()
                prof.enable()
                for _ in range(a.reps):
                    step()
                    torch.cuda.synchronize()
                prof.disable()
                print("-- cProfile of %d steps, %s" % (a.reps, name))
                pstats.Stats(prof).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
