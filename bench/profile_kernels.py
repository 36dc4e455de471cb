#!/usr/bin/env python3
"""Per-kernel GPU time of pattern programs, every launch counted (companion
kernels and phases that Program.run_timed folds into one step included).

CUPTI (through torch.profiler) records each kernel of the process, ours
JIT-compiled by NVRTC too; the table is the mean time per program call.
Inputs and shapes as bench/bench_patterns.py (B = 1, 32 / 8 heads, D = 128).

  python3 bench/profile_kernels.py --seq 131072 --patterns flexprefill,unisparse@0.98
"""
import argparse
import os
import sys
import warnings

import torch
from torch.profiler import ProfilerActivity, profile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, HERE)
import sattn  # noqa: E402
from bench_patterns import HKV, HQ, D, pattern_text  # noqa: E402
from structured import structured_qkv  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seq", type=int, default=131072)
    ap.add_argument("--patterns", default="flexprefill,unisparse")
    ap.add_argument("--calls", type=int, default=3)
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    sess = sattn.Session("gpu")
    q, k, v = structured_qkv(a.seq, HQ, HKV, D, seed=a.seq)
    for name in [n for n in a.patterns.split(",") if n]:
        prog = sess.compile(pattern_text(name))
        prog(q, k, v)  # JIT, tune, warm
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(a.calls):
                prog(q, k, v)
            torch.cuda.synchronize()
        per = {}
        for e in prof.events():
            if e.device_type == torch.autograd.DeviceType.CUDA:
                t = per.setdefault(e.name, [0.0, 0])
                t[0] += e.device_time / 1000.0  # us -> ms
                t[1] += 1
        total = sum(t for t, _ in per.values()) / a.calls
        print("\n%s  S=%d  GPU time per call %.3f ms" % (name, a.seq, total))
        for n, (t, c) in sorted(per.items(), key=lambda x: -x[1][0]):
            print("  %9.3f ms %5.1f%%  x%-3d %s" % (t / a.calls, 100 * t / a.calls / total,
                                                   c // a.calls, n[:90]))


if __name__ == "__main__":
    main()
