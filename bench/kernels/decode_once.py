#!/usr/bin/env python3
"""One dense decode step (GQA 32/8, D = 128, bf16) for profilers:
  ncu --kernel-name regex:decode_attn --launch-skip 3 --launch-count 1 \\
      python3 bench/kernels/decode_once.py --ctx 32768 --batch 16
Runs the step a few times so the profiled launch is warm."""
import argparse
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
import sattn  # noqa: E402
from bench_decode import HQ, HKV, D, dense_ir  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--ctx", type=int, default=32768)
ap.add_argument("--batch", type=int, default=16)
ap.add_argument("--time", action="store_true", help="print the median kernel time (ms)")
a = ap.parse_args()
prog = sattn.Session().compile(dense_ir(False))
q = torch.randn(a.batch, HQ, 1, D, device="cuda", dtype=torch.bfloat16)
k = torch.randn(a.batch, HKV, a.ctx, D, device="cuda", dtype=torch.bfloat16)
v = torch.randn_like(k)
for _ in range(6):
    prog(q, k, v)
torch.cuda.synchronize()
if a.time:
    t = sorted(prog.run_timed(q, k, v)[1][0][1] for _ in range(30))
    gb = 2 * k.numel() * 2 / 1e9
    print("ctx %d B %d splits %s: %.4f ms, %.2f TB/s" % (
        a.ctx, a.batch, os.environ.get("SATTN_DECODE_SPLITS", "auto"), t[15], gb / t[15]))
