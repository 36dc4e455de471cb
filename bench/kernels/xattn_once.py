#!/usr/bin/env python3
"""XAttention (examples/patterns/xattention.mlir) on one causal input, per
launch: the estimate, the selection and the block-sparse attention (CUDA
events, median of --reps), beside cuDNN dense causal SDPA, with the density
of the selected blocks. Random or structured (bench/structured.py) inputs.

  python3 bench/kernels/xattn_once.py --seq 32768 --structured
"""
import argparse
import os
import sys
import warnings

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
import sattn  # noqa: E402
from structured import structured_qkv  # noqa: E402
from timing import median_ms  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--seq", type=int, default=32768)
ap.add_argument("--reps", type=int, default=5)
ap.add_argument("--structured", action="store_true")
a = ap.parse_args()
warnings.filterwarnings("ignore")
with open(os.path.join(HERE, "..", "..", "examples", "patterns", "xattention.mlir")) as f:
    prog = sattn.Session().compile(f.read())
if a.structured:
    q, k, v = structured_qkv(a.seq, 32, 8, 128, seed=1)
else:
    q = torch.randn(1, 32, a.seq, 128, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(1, 8, a.seq, 128, device="cuda", dtype=torch.bfloat16)
    v = torch.randn_like(k)
_, rep = prog.run_selection(q, k, v)
phases = {}
for _ in range(a.reps):
    for name, ms in prog.run_timed(q, k, v)[1]:
        phases.setdefault(name, []).append(ms)
with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
    cudnn = median_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                             enable_gqa=True), a.reps)
med = {n: sorted(t)[len(t) // 2] for n, t in phases.items()}
total = sum(med.values())
print("S %d %s: density %.3f" % (a.seq, "structured" if a.structured else "random",
                                  rep.get("density", -1)))
for n, ms in med.items():
    print("  %-24s %9.3f ms" % (n, ms))
print("  %-24s %9.3f ms  (cuDNN dense causal %.3f ms: %.2fx)" % ("total", total, cudnn,
                                                                 cudnn / total))
