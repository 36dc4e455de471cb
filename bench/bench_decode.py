#!/usr/bin/env python3
"""Decode-step benchmark: sattn's dense and slimmed decode against PyTorch SDPA.

One process, one GPU, the same bf16 inputs for everyone: a KV cache of
``ctx`` tokens with 8 KV heads, 32 query heads (GQA 4), D = 128, one decode
query per sequence, batch 1 and 16.

* dense: ``sattn.decode_attention`` over the full cache, against
  ``F.scaled_dot_product_attention(..., enable_gqa=True)`` with each SDPA
  backend forced (those that refuse the shape are reported as such).
  Median of ``--reps`` CUDA-event timings of calls queued back to back.
* slimmed (OmniSparse, examples/omnisparse_decode.mlir): ``kv_slim`` keeps
  per KV head the tokens holding tau = 0.95 of the prompt's last 64 queries'
  attention plus 4 sinks and 64 recent tokens; the decode then reads only
  those. ``Program.run_timed`` gives each launch's time (CUDA events), so
  the slimming (once per prompt) and the decode step are reported apart.

The cache is synthetic but not random noise, since random keys give flat
attention and nothing to slim: per KV head a random 4% of the tokens carry
a head-specific direction that the queries share (a "retrieval" head), the
rest is noise. Reported beside the times: kept fraction (KV bytes after /
before, from an independent PyTorch implementation of semantics §11 on the
same inputs), recall = attention mass of the decode query on the kept
tokens (exp(LSE_slim - LSE_full)), and error of O against the dense O.

  python3 bench/bench_decode.py --ctx 32768,131072 --batch 1,16 --json out.json
"""
import argparse
import json
import math
import os
import sys
import warnings

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
import sattn  # noqa: E402
sys.path.insert(0, HERE)
from timing import median_ms  # noqa: E402

HQ, HKV, D = 32, 8, 128
OBSERVE, TAU, SINKS, RECENT = 64, 0.95, 4, 64
PEERS = {
    "sdpa_flash": SDPBackend.FLASH_ATTENTION,
    "sdpa_cudnn": SDPBackend.CUDNN_ATTENTION,
    "sdpa_efficient": SDPBackend.EFFICIENT_ATTENTION,
}


def dense_ir(lse):
    q = "tensor<?x%dx1x%dxbf16>" % (HQ, D)
    k = "tensor<?x%dx?x%dxbf16>" % (HKV, D)
    l = "tensor<?x%dx1xf32>" % HQ
    res = "(%s, %s)" % (q, l) if lse else q
    outs = "%s, %s" % (q, l) if lse else q
    return ("func.func @decode(%%q: %s, %%k: %s, %%v: %s) -> %s {\n"
            "  %s = sattn.decode_attention %%q, %%k, %%v : %s, %s, %s -> %s\n"
            "  return %s : %s\n}\n" % (q, k, k, res, "%o, %l" if lse else "%o", q, k, k, outs,
                                       "%o, %l" if lse else "%o", outs))


def make_inputs(b, ctx, seed):
    """Cache with a sharp retrieval structure per KV head (see the module doc)."""
    g = torch.Generator(device="cuda").manual_seed(seed)
    k = torch.randn(b, HKV, ctx, D, device="cuda", generator=g)
    v = torch.randn(b, HKV, ctx, D, device="cuda", generator=g)
    u = F.normalize(torch.randn(b, HKV, 1, D, device="cuda", generator=g), dim=-1)
    hot = torch.rand(b, HKV, ctx, 1, device="cuda", generator=g) < 0.04
    k = k + hot * 24.0 * u  # logit boost about 6 over the noise (scale 1/sqrt(D))
    rep = lambda x: x.repeat_interleave(HQ // HKV, dim=1)  # noqa: E731
    prompt = torch.randn(b, HQ, OBSERVE, D, device="cuda", generator=g) + 3.0 * rep(u)
    q = torch.randn(b, HQ, 1, D, device="cuda", generator=g) + 3.0 * rep(u)
    return [x.to(torch.bfloat16).contiguous() for x in (prompt, k, v, q)]


def kept_fraction(prompt, k):
    """Semantics §11 in PyTorch (fp32): the number of tokens kv_slim keeps."""
    b, _, ctx, _ = k.shape
    kept = 0
    for bi in range(b):
        for hk in range(HKV):
            qo = prompt[bi, hk * (HQ // HKV):(hk + 1) * (HQ // HKV)].float().reshape(-1, D)
            s = (qo @ k[bi, hk].float().T) / math.sqrt(D)
            rows = torch.arange(OBSERVE, device="cuda").repeat(HQ // HKV) + ctx - OBSERVE
            s = s.masked_fill(torch.arange(ctx, device="cuda")[None, :] > rows[:, None],
                              float("-inf"))
            score = s.softmax(-1).sum(0).double()
            forced = torch.zeros(ctx, dtype=torch.bool, device="cuda")
            forced[:SINKS] = True
            forced[max(0, ctx - RECENT):] = True
            total = score.sum()
            need = TAU * total - score[forced].sum()
            rest = score[~forced].sort(descending=True).values
            n = 0 if need <= 0 else int(torch.searchsorted(rest.cumsum(0), need).item()) + 1
            kept += int(forced.sum().item()) + min(n, rest.numel())
    return kept / (b * HKV * ctx)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ctx", default="32768,131072")
    ap.add_argument("--batch", default="1,16")
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--json")
    a = ap.parse_args()
    warnings.filterwarnings("ignore")  # SDPA explains every backend it skips
    sess = sattn.Session()
    dense = sess.compile(dense_ir(False))
    dense_lse = sess.compile(dense_ir(True))
    with open(os.path.join(HERE, "..", "examples", "omnisparse_decode.mlir")) as f:
        slim = sess.compile(f.read())
    rows = []
    for ctx in [int(x) for x in a.ctx.split(",")]:
        for b in [int(x) for x in a.batch.split(",")]:
            prompt, k, v, q = make_inputs(b, ctx, seed=ctx + b)
            row = {"ctx": ctx, "batch": b, "kv_bytes": 2 * k.numel() * 2}
            o = dense(q, k, v)
            num = den = 0.0
            for bi in range(b):  # fp32 reference one sequence at a time (memory)
                ref = F.scaled_dot_product_attention(q[bi:bi + 1].float(), k[bi:bi + 1].float(),
                                                     v[bi:bi + 1].float(), enable_gqa=True)
                num += (o[bi:bi + 1].float() - ref).norm().item() ** 2
                den += ref.norm().item() ** 2
            row["dense_err"] = math.sqrt(num / den)
            row["sattn_dense_ms"] = median_ms(lambda: dense(q, k, v), a.reps)
            for name, backend in PEERS.items():
                try:
                    with sdpa_kernel(backend):
                        F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
                        row[name + "_ms"] = median_ms(
                            lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True),
                            a.reps)
                except RuntimeError as e:
                    row[name + "_ms"] = None
                    row[name + "_why"] = str(e).split("\n")[0][:120]
            # Slimmed: per-launch times over several runs, medians.
            _, full_lse = dense_lse(q, k, v)
            phases = {}
            for _ in range(max(5, a.reps // 5)):
                (o_s, lse_s), ph = slim.run_timed(prompt, k, v, q)
                for name, ms in ph:
                    phases.setdefault(name.split("_", 1)[1], []).append(ms)
            med = {n: sorted(t)[len(t) // 2] for n, t in phases.items()}
            row["slim_phases_ms"] = med
            row["slim_select_ms"] = sum(t for n, t in med.items() if n.startswith("kv_slim"))
            row["slim_decode_ms"] = med.get("decode_attn")
            # The dense step timed the same way as the slimmed one (per-launch events).
            dense_ph = sorted(dense.run_timed(q, k, v)[1][0][1] for _ in range(max(5, a.reps // 5)))
            row["dense_decode_event_ms"] = dense_ph[len(dense_ph) // 2]
            recall = torch.exp(lse_s.double() - full_lse.double()).mean().item()
            o_full = dense(q, k, v)
            row["slim_recall"] = recall
            row["slim_err"] = ((o_s.float() - o_full.float()).norm() / o_full.float().norm()).item()
            row["kept_fraction"] = kept_fraction(prompt, k)
            rows.append(row)
            print(json.dumps(row), flush=True)

    print("\n%-7s %3s | %9s %9s %9s %9s | %7s %7s | %8s %8s %6s %6s %7s" % (
        "ctx", "B", "sattn", "cudnn", "flash", "effic", "x cudnn", "x flash",
        "slim dec", "slimming", "kept", "recall", "speedup"))
    for r in rows:
        def f(x):
            return "%9.4f" % x if x else "%9s" % "n/a"

        def ratio(x):
            return "%7.2f" % (x / r["sattn_dense_ms"]) if x else "%7s" % "n/a"
        print("%-7d %3d | %s %s %s %s | %s %s | %8.4f %8.3f %6.3f %6.3f %7.2f" % (
            r["ctx"], r["batch"], f(r["sattn_dense_ms"]), f(r["sdpa_cudnn_ms"]),
            f(r["sdpa_flash_ms"]), f(r["sdpa_efficient_ms"]), ratio(r["sdpa_cudnn_ms"]),
            ratio(r["sdpa_flash_ms"]), r["slim_decode_ms"], r["slim_select_ms"],
            r["kept_fraction"], r["slim_recall"],
            r["dense_decode_event_ms"] / r["slim_decode_ms"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
