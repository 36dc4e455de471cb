#!/usr/bin/env python3
"""Quest decode steps (docs/patterns/quest.md) against dense decode, one process.

A KV cache of ``ctx`` tokens (structured generator, bench/structured.py), 32
query / 8 KV heads, D = 128, bf16, batch 1, one decode query (the cache's
last position). Per (ctx, pages):

  quest       patterns.quest with the page bounds as inputs (kept beside the
              cache, as a server would: computed once here, outside the
              timing): bound scores + top pages + attention over them;
  quest+pool  the self-contained example: min / max pooled from the whole
              cache on every step (reads all of K);
  sdpa        PyTorch SDPA decode over the whole cache, flash and cuDNN
              backends (those that refuse the shape are skipped);
  est / attn  per-launch medians (Program.run_timed): everything before the
              attention launch vs the attention launch;
  kv read     tokens the attention reads / ctx (pages x page / ctx);
  recall      attention mass of the query on the tokens it read,
              exp(LSE_quest - LSE_dense), mean over heads; error of O vs the
              fp32 dense O.

  python3 bench/bench_quest.py --ctx 32768,131072 --pages 64,256 --json out.json
"""
import argparse
import json
import os
import sys
import warnings

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, HERE)
import sattn  # noqa: E402
from bench_patterns import with_lse  # noqa: E402
from evaluator import dense_rows  # noqa: E402
from structured import structured_qkv  # noqa: E402
from timing import median_ms  # noqa: E402

HQ, HKV, D, PAGE = 32, 8, 128, 16


def sdpa_ms(q, k, v, backend, reps):
    try:
        with sdpa_kernel(backend):
            return median_ms(lambda: F.scaled_dot_product_attention(
                q, k, v, is_causal=False, enable_gqa=True), reps)
    except RuntimeError:
        return float("nan")


def phases(prog, args, reps):
    runs = {}
    for _ in range(reps):
        for n, ms in prog.run_timed(*args)[1]:
            runs.setdefault(n, []).append(ms)
    med = {n: sorted(t)[len(t) // 2] for n, t in runs.items()}
    attn = sum(t for n, t in med.items() if "attn_fwd" in n)
    return med, attn, sum(med.values()) - attn


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ctx", default="32768,131072")
    ap.add_argument("--pages", default="64,256")
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--json")
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    sess = sattn.Session("gpu")
    rows = []
    for ctx in [int(x) for x in a.ctx.split(",")]:
        # The cache and the decode query: the last position of a structured
        # sequence of ctx tokens (its K/V are in the cache; causal bottom-right).
        q_all, k, v = structured_qkv(ctx, HQ, HKV, D, seed=ctx)
        q = q_all[:, :, -1:].contiguous()
        del q_all
        last = torch.tensor([0], device="cuda")
        o_ref, lse_ref = dense_rows(q, k, v, last)
        kmin = k.unflatten(2, (-1, PAGE)).amin(3).float().contiguous()
        kmax = k.unflatten(2, (-1, PAGE)).amax(3).float().contiguous()
        base = {"ctx": ctx,
                "flash_ms": sdpa_ms(q, k, v, SDPBackend.FLASH_ATTENTION, a.reps),
                "cudnn_ms": sdpa_ms(q, k, v, SDPBackend.CUDNN_ATTENTION, a.reps)}
        for pages in [int(x) for x in a.pages.split(",")]:
            row = dict(base, pages=pages, kv_read=min(1.0, pages * PAGE / ctx))
            given = sess.compile(with_lse(sattn.patterns.quest(
                HQ, HKV, D, page=PAGE, pages=pages, bounds_as_inputs=True)))
            pooled = sess.compile(with_lse(sattn.patterns.quest(
                HQ, HKV, D, page=PAGE, pages=pages)))
            o, lse = given(q, k, v, kmin, kmax)
            assert not torch.isnan(o).any(), "NaN in quest"
            o2, _ = pooled(q, k, v)
            row["pooled_matches"] = bool(torch.equal(o, o2))
            row["recall"] = torch.exp(lse[0, :, 0].double() - lse_ref[:, 0].double()).mean().item()
            row["error"] = ((o[0, :, 0].float() - o_ref[:, 0]).norm() / o_ref.norm()).item()
            row["quest_ms"] = median_ms(lambda: given(q, k, v, kmin, kmax), a.reps)
            row["pooled_ms"] = median_ms(lambda: pooled(q, k, v), a.reps)
            row["phases_ms"], row["attention_ms"], row["estimation_ms"] = phases(
                given, (q, k, v, kmin, kmax), 10)
            rows.append(row)
            print(json.dumps(row), flush=True)
        del k, v, kmin, kmax
        torch.cuda.empty_cache()
    print("\n%7s %6s %7s | %8s %8s | %8s %8s %8s %10s | %7s %7s %7s" % (
        "ctx", "pages", "kv_read", "flash", "cudnn", "quest", "est", "attn", "quest+pool",
        "xcudnn", "recall", "error"))
    for r in rows:
        print("%7d %6d %7.3f | %8.4f %8.4f | %8.4f %8.4f %8.4f %10.4f | %7.2f %7.3f %7.4f" % (
            r["ctx"], r["pages"], r["kv_read"], r["flash_ms"], r["cudnn_ms"], r["quest_ms"],
            r["estimation_ms"], r["attention_ms"], r["pooled_ms"], r["cudnn_ms"] / r["quest_ms"],
            r["recall"], r["error"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
