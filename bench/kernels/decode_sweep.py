#!/usr/bin/env python3
"""Dense decode kernel sweep (GQA 32/8, D = 128, bf16): cp.async vs TMA
loads, the TMA ring depth and the split count, against cuDNN SDPA in the
same process.

For each (ctx, batch): the decode kernel's median time (CUDA events around
the launch, ``run_timed``) with SATTN_DECODE_TMA = 0 / 1, for TMA each
SATTN_DECODE_STAGES of ``--stages``, and SATTN_DECODE_SPLITS = auto or each
forced count (all read at launch), and cuDNN's median time for the same
step. Prints one table.

  python3 bench/kernels/decode_sweep.py --ctx 32768,131072 --batch 1,16
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
from bench_decode import HQ, HKV, D, dense_ir  # noqa: E402
from timing import median_ms  # noqa: E402


def kernel_ms(prog, args, reps):
    t = sorted(prog.run_timed(*args)[1][0][1] for _ in range(reps))
    return t[len(t) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ctx", default="32768,131072")
    ap.add_argument("--batch", default="1,16")
    ap.add_argument("--splits", default="auto,1,2,4,8,16,32")
    ap.add_argument("--stages", default="auto,3,5,7")
    ap.add_argument("--modes", default="0,1", help="SATTN_DECODE_TMA values")
    ap.add_argument("--reps", type=int, default=30)
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    prog = sattn.Session().compile(dense_ir(False))
    print("%-7s %3s %9s | %s | %8s" % ("ctx", "B", "tma/stg", " ".join(
        "%7s" % s for s in a.splits.split(",")), "cudnn"))
    for ctx in [int(x) for x in a.ctx.split(",")]:
        for b in [int(x) for x in a.batch.split(",")]:
            q = torch.randn(b, HQ, 1, D, device="cuda", dtype=torch.bfloat16)
            k = torch.randn(b, HKV, ctx, D, device="cuda", dtype=torch.bfloat16)
            v = torch.randn_like(k)
            with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                cudnn = median_ms(lambda: F.scaled_dot_product_attention(
                    q, k, v, enable_gqa=True), a.reps)
            modes = [(m, st) for m in a.modes.split(",")
                     for st in (["auto"] if m == "0" else a.stages.split(","))]
            for tma, st in modes:
                os.environ["SATTN_DECODE_TMA"] = tma
                if st == "auto":
                    os.environ.pop("SATTN_DECODE_STAGES", None)
                else:
                    os.environ["SATTN_DECODE_STAGES"] = st
                cells = []
                for sp in a.splits.split(","):
                    if sp == "auto":
                        os.environ.pop("SATTN_DECODE_SPLITS", None)
                    else:
                        os.environ["SATTN_DECODE_SPLITS"] = sp
                    cells.append(kernel_ms(prog, (q, k, v), a.reps))
                os.environ.pop("SATTN_DECODE_SPLITS", None)
                print("%-7d %3d %9s | %s | %8.4f" % (ctx, b, tma + "/" + st, " ".join(
                    "%7.4f" % c for c in cells), cudnn), flush=True)
            del q, k, v
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
