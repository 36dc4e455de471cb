#!/usr/bin/env python3
"""Runs the OmniSparse benchmark variant once at one size (for ncu / nsys).

  ncu --kernel-name regex:classify python3 bench/kernels/omni_once.py --seq 32768
"""
import argparse
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
import sattn  # noqa: E402
from bench_omnisparse import D, HQ, omni_ir  # noqa: E402
from structured import structured_qkv  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--seq", type=int, default=32768)
ap.add_argument("--kv-heads", type=int, default=8)
ap.add_argument("--tau", type=float, default=0.8)
ap.add_argument("--theta", type=float, default=0.9)
ap.add_argument("--runs", type=int, default=2)
a = ap.parse_args()
prog = sattn.Session().compile(omni_ir(a.kv_heads, a.tau, a.theta))
q, k, v = structured_qkv(a.seq, HQ, a.kv_heads, D, seed=1)
for _ in range(a.runs):
    prog(q, k, v)
torch.cuda.synchronize()
print("ok")
