#!/usr/bin/env python3
"""Median GPU time (CUDA events) of sattn's dense forward and of cuDNN SDPA's
forward, per (head dim, causal): the quick A/B for forward kernel changes
(run it once per setting of an environment switch such as
SATTN_TUNE_CONFIG; each process builds its own kernels). B = 1, H = 32,
bf16. Prints one JSON object per case, with TFLOPS.

  python3 bench/kernels/fwd_time.py --seq 16384 --dims 64,128 --causal 1,0 [--cudnn]
"""
import json
import os
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bwd_time import median_ms  # noqa: E402
from train_kernels import case_parser, dense_cases  # noqa: E402


def main():
    ap = case_parser(__doc__.split("\n")[0])
    ap.add_argument("--cudnn", action="store_true", help="time cuDNN SDPA's forward as well")
    a = ap.parse_args()
    for d, causal, q, k, v, _do, prog, o, _lse in dense_cases(a):
        flop = 4.0 * a.heads * a.seq * a.seq * d * (0.5 if causal else 1.0)
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            ref = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        err = ((o.float() - ref.float()).norm() / ref.float().norm()).item()
        row = {"S": a.seq, "D": d, "causal": causal, "rel_err_vs_cudnn": err,
               "tune_config_env": os.environ.get("SATTN_TUNE_CONFIG", ""),
               "fwd_ms": median_ms(lambda: prog(q, k, v), a.reps)}
        row["tflops"] = flop / row["fwd_ms"] / 1e9
        if a.cudnn:
            with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                row["cudnn_fwd_ms"] = median_ms(
                    lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal), a.reps)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
