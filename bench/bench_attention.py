#!/usr/bin/env python3
"""Times sattn against the attention kernels installed beside it, in one process.

Peers: PyTorch SDPA with each backend forced (flash, cuDNN, memory-efficient).
Every configuration runs on the same random (never zero) bf16 inputs; each
timing is the median of `--reps` CUDA-event measurements after warm-up, with
the inputs rotated over several copies so repeated runs do not just measure
L2. Prints a table (ms, dense-equivalent TFLOPS, sattn/peer speed ratio),
writes JSON and a PNG chart.

  python3 bench/bench_attention.py --seqs 4096,16384 --dims 64,128 --json out.json --png out.png
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
import sattn  # noqa: E402

PEERS = {
    "sdpa_flash": SDPBackend.FLASH_ATTENTION,
    "sdpa_cudnn": SDPBackend.CUDNN_ATTENTION,
    "sdpa_efficient": SDPBackend.EFFICIENT_ATTENTION,
}


def median_ms(fn, reps, warmup=5):
    for _ in range(warmup):
        fn(0)
    torch.cuda.synchronize()
    times = []
    for i in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn(i)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def flops(b, h, s, d, causal):
    full = 4.0 * b * h * s * s * d
    return full / 2 if causal else full


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seqs", default="4096,16384")
    ap.add_argument("--dims", default="64,128")
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--copies", type=int, default=3)
    ap.add_argument("--json")
    ap.add_argument("--png")
    a = ap.parse_args()

    session = sattn.Session("gpu")
    rows = []
    for s in [int(x) for x in a.seqs.split(",")]:
        for d in [int(x) for x in a.dims.split(",")]:
            for causal in (True, False):
                gen = torch.Generator(device="cuda").manual_seed(s + d)
                shape = (a.batch, a.heads, s, d)
                sets = [[torch.randn(shape, device="cuda", dtype=torch.bfloat16, generator=gen)
                         for _ in range(3)] for _ in range(a.copies)]
                out = torch.empty(shape, device="cuda", dtype=torch.bfloat16)
                prog = session.compile(sattn.patterns.dense(a.heads, a.heads, d, causal=causal))
                # Correctness first: compare with cuDNN/flash SDPA in fp32.
                q, k, v = sets[0]
                prog(q, k, v, out=out)
                ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=causal)
                err = ((out.float() - ref).norm() / ref.norm()).item()
                row = {"S": s, "D": d, "causal": causal, "H": a.heads, "B": a.batch, "rel_err": err,
                       "flops": flops(a.batch, a.heads, s, d, causal)}
                row["sattn_ms"] = median_ms(lambda i: prog(*sets[i % a.copies], out=out), a.reps)
                for name, backend in PEERS.items():
                    try:
                        with sdpa_kernel(backend):
                            row[name + "_ms"] = median_ms(
                                lambda i: F.scaled_dot_product_attention(*sets[i % a.copies], is_causal=causal),
                                a.reps)
                    except RuntimeError as e:  # backend unavailable for this shape
                        row[name + "_ms"] = None
                        row[name + "_error"] = str(e).splitlines()[0][:120]
                rows.append(row)
                print(f"done S={s} D={d} causal={causal}", file=sys.stderr)

    head = f"{'S':>6} {'D':>4} {'causal':>6} {'err':>8} {'sattn ms':>9} {'TFLOPS':>7}"
    for name in PEERS:
        head += f" {name + ' ms':>18} {'ratio':>6}"
    print(head)
    for r in rows:
        tf = r["flops"] / r["sattn_ms"] / 1e9
        line = f"{r['S']:>6} {r['D']:>4} {str(r['causal']):>6} {r['rel_err']:>8.1e} {r['sattn_ms']:>9.3f} {tf:>7.1f}"
        for name in PEERS:
            ms = r[name + "_ms"]
            line += f" {ms:>18.3f} {ms / r['sattn_ms']:>6.2f}" if ms else f" {'n/a':>18} {'':>6}"
        print(line)
    print("ratio = peer time / sattn time (> 1: sattn faster)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                       "rows": rows}, f, indent=1)
    if a.png:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        labels = [f"S{r['S'] // 1024}k D{r['D']} {'c' if r['causal'] else 'nc'}" for r in rows]
        fig, ax = plt.subplots(figsize=(10, 4))
        width = 0.2
        for j, name in enumerate(["sattn"] + list(PEERS)):
            vals = [r["flops"] / r[name + "_ms"] / 1e9 if r.get(name + "_ms") else 0 for r in rows]
            ax.bar([i + j * width for i in range(len(rows))], vals, width, label=name)
        ax.set_xticks([i + 1.5 * width for i in range(len(rows))], labels, rotation=30, ha="right")
        ax.set_ylabel("TFLOPS (dense-equivalent)")
        ax.set_title(f"bf16 attention forward, H={a.heads}, B={a.batch}, {torch.cuda.get_device_name()}")
        ax.legend()
        fig.tight_layout()
        fig.savefig(a.png, dpi=120)
    bad = [r for r in rows if not r["rel_err"] <= 1e-2]
    if bad:
        print(f"FAILED: {len(bad)} configurations above 1e-2 relative error", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
