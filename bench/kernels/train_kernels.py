#!/usr/bin/env python3
"""Per-kernel GPU time of one attention training step (forward, then the
backward given the saved O and LSE), sattn in both backward modes and cuDNN
SDPA, recorded by CUPTI through torch.profiler: where the fwd+bwd time of
bench/bench_train.py goes. Dense attention, B = 1, bf16.

  python3 bench/kernels/train_kernels.py --seq 16384 --dims 64,128 --causal 1,0
"""
import argparse
import os
import sys
import warnings

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import ProfilerActivity, profile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
import sattn  # noqa: E402


def kernel_table(step, reps):
    """{kernel name: mean ms per step} of `reps` calls of step()."""
    step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(reps):
            step()
        torch.cuda.synchronize()
    out = {}
    for e in prof.key_averages():
        if e.device_type.name == "CUDA" and e.self_device_time_total > 0:
            out[e.key] = out.get(e.key, 0.0) + e.self_device_time_total / 1e3 / reps
    return out


def show(title, table):
    total = sum(table.values())
    print("%s: %.3f ms" % (title, total))
    for name, ms in sorted(table.items(), key=lambda x: -x[1])[:8]:
        print("  %8.3f  %5.1f%%  %s" % (ms, 100 * ms / total, name[:90]))


def case_parser(description):
    """The shape options shared with bwd_time.py."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--seq", type=int, default=16384)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--dims", default="64,128")
    ap.add_argument("--causal", default="1,0")
    ap.add_argument("--reps", type=int, default=5)
    return ap


def dense_cases(a):
    """Per (head dim, causal) of the options `a`: (d, causal, q, k, v, dout,
    the compiled dense variant, its O and LSE) on seeded random bf16 data."""
    session = sattn.Session()
    s, h = a.seq, a.heads
    for d in [int(x) for x in a.dims.split(",")]:
        for causal in [x == "1" for x in a.causal.split(",")]:
            g = torch.Generator(device="cuda").manual_seed(0)
            q, k, v, do = (torch.randn(1, h, s, d, device="cuda", dtype=torch.bfloat16,
                                       generator=g) for _ in range(4))
            prog = session.compile(sattn.patterns.dense(h, h, d, causal=causal, lse=True))
            o, lse = prog(q, k, v)
            yield d, causal, q, k, v, do, prog, o, lse


def main():
    a = case_parser(__doc__.split("\n")[0]).parse_args()
    warnings.filterwarnings("ignore")
    s = a.seq
    for d, causal, q, k, v, do, prog, o, lse in dense_cases(a):
        label = "S %d D %d %s" % (s, d, "causal" if causal else "full")
        show(label + ", sattn forward", kernel_table(lambda: prog(q, k, v), a.reps))
        for det in (True, False):
            show(label + ", sattn backward (%s)" % ("deterministic" if det else "atomic dQ"),
                 kernel_table(lambda: prog.backward(q, k, v, dout=do, out=o, lse=lse,
                                                    deterministic=det), a.reps))
        qr, kr, vr = (x.detach().requires_grad_() for x in (q, k, v))

        def cudnn():
            with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                out = F.scaled_dot_product_attention(qr, kr, vr, is_causal=causal)
            torch.autograd.grad(out, (qr, kr, vr), do)
        show(label + ", cuDNN SDPA fwd+bwd", kernel_table(cudnn, a.reps))


if __name__ == "__main__":
    main()
