#!/usr/bin/env python3
"""Decode-step benchmark: sattn's dense and slimmed decode against PyTorch SDPA.

One process, one GPU, the same bf16 inputs for everyone: a KV cache of
``ctx`` tokens with 8 KV heads, 32 query heads (GQA 4), D = 128, one decode
query per sequence, batch 1 and 16. Inputs come from the structured
generator (bench/structured.py, docs/evaluation.md): sinks, local decay,
recurring topics and periodic diagonals, heads from sharp to flat.

* dense: ``sattn.decode_attention`` over the full cache, against
  ``F.scaled_dot_product_attention(..., enable_gqa=True)`` with each SDPA
  backend forced (those that refuse the shape are reported as such).
  Median of ``--reps`` CUDA-event timings of calls queued back to back
  ("queued", includes the Python -> C call) and of the kernel alone
  (``run_timed``).
* slimmed (OmniSparse, examples/omnisparse_decode.mlir with tau_d from
  ``--tau``): as an inference engine runs it. After the prompt (the cache
  holds ctx - 1 tokens) ``Program.slim`` runs kv_slim on the prompt's last
  64 rows and compacts the kept K/V per KV head into a new cache (1 row of
  reserve); the decode token's K/V is appended; ``Program.decode`` runs the
  step over the slimmed cache. Reported: KV bytes before / after (from the
  SlimCache itself), the reduction factor, the step's kernel time and its
  speedup over the dense kernel (target: >= 0.8 x the reduction), recall =
  attention mass of the decode query on the tokens it read
  (exp(LSE_slim - LSE_full), mean over heads and batch), error of O against
  the dense O, and the one-off slim() wall time (kv_slim + compaction + one
  synchronisation).

  python3 bench/bench_decode.py --ctx 32768,131072 --batch 1,16 --tau 0.9,0.95 --json out.json
"""
import argparse
import json
import math
import os
import sys
import time
import warnings

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
import sattn  # noqa: E402
sys.path.insert(0, HERE)
from timing import median_ms  # noqa: E402
from structured import structured_qkv  # noqa: E402

HQ, HKV, D = 32, 8, 128
OBSERVE = 64  # examples/omnisparse_decode.mlir
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


def slim_ir(tau):
    """examples/omnisparse_decode.mlir with kv_slim's tau set to `tau`."""
    with open(os.path.join(HERE, "..", "examples", "omnisparse_decode.mlir")) as f:
        text = f.read()
    assert "tau = 0.95 : f64" in text
    return text.replace("tau = 0.95 : f64", "tau = %r : f64" % float(tau))


def make_inputs(b, ctx, seed):
    """Prompt window, decode query and the cache (decode token last), structured."""
    q, k, v = structured_qkv(ctx, HQ, HKV, D, batch=b, seed=seed)
    prompt = q[:, :, ctx - 1 - OBSERVE:ctx - 1].contiguous()
    q1 = q[:, :, ctx - 1:].contiguous()
    del q
    return prompt, q1, k, v


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ctx", default="32768,131072")
    ap.add_argument("--batch", default="1,16")
    ap.add_argument("--tau", default="0.9,0.95,0.99")
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--json")
    a = ap.parse_args()
    warnings.filterwarnings("ignore")  # SDPA explains every backend it skips
    sess = sattn.Session()
    dense = sess.compile(dense_ir(False))
    dense_lse = sess.compile(dense_ir(True))
    taus = [float(x) for x in a.tau.split(",")]
    slims = {t: sess.compile(slim_ir(t)) for t in taus}
    rows = []
    for ctx in [int(x) for x in a.ctx.split(",")]:
        for b in [int(x) for x in a.batch.split(",")]:
            prompt, q, k, v = make_inputs(b, ctx, seed=ctx + b)
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
            kernel = sorted(dense.run_timed(q, k, v)[1][0][1] for _ in range(a.reps))
            row["dense_kernel_ms"] = kernel[len(kernel) // 2]
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
            o_full, full_lse = dense_lse(q, k, v)
            row["slim"] = []
            for tau in taus:
                prog = slims[tau]
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                cache = prog.slim(prompt, k[:, :, :ctx - 1], v[:, :, :ctx - 1], reserve=1)
                slim_ms = (time.perf_counter() - t0) * 1e3
                cache.append(k[:, :, ctx - 1:], v[:, :, ctx - 1:])
                (o_s, lse_s), _ = prog.decode(cache, q, timed=True)
                times = sorted(prog.decode(cache, q, timed=True)[1] for _ in range(a.reps))
                pt = {"tau": tau, "slim_once_ms": slim_ms,
                      "kernel_ms": times[len(times) // 2],
                      "queued_ms": median_ms(lambda: prog.decode(cache, q), a.reps),
                      "bytes_before": cache.bytes_before, "bytes_after": cache.bytes_after,
                      "tokens": cache.tokens}
                pt["reduction"] = pt["bytes_before"] / pt["bytes_after"]
                pt["speedup"] = row["dense_kernel_ms"] / pt["kernel_ms"]
                pt["recall"] = torch.exp(lse_s.double() - full_lse.double()).mean().item()
                pt["err"] = ((o_s.float() - o_full.float()).norm()
                             / o_full.float().norm()).item()
                row["slim"].append(pt)
                del cache
            rows.append(row)
            print(json.dumps(row), flush=True)
            del prompt, q, k, v, o, o_full
            torch.cuda.empty_cache()

    def f(x):
        return "%8.4f" % x if x else "%8s" % "n/a"

    print("\ndense decode (ms; kernel = the decode launch alone, CUDA events)")
    print("%-7s %3s | %8s %8s %8s %8s %8s | %7s %7s" % (
        "ctx", "B", "queued", "kernel", "cudnn", "flash", "effic", "cud/ker", "fla/ker"))
    for r in rows:
        def ratio(x):
            return "%7.2f" % (x / r["dense_kernel_ms"]) if x else "%7s" % "n/a"
        print("%-7d %3d | %s %s %s %s %s | %s %s" % (
            r["ctx"], r["batch"], f(r["sattn_dense_ms"]), f(r["dense_kernel_ms"]),
            f(r["sdpa_cudnn_ms"]), f(r["sdpa_flash_ms"]), f(r["sdpa_efficient_ms"]),
            ratio(r["sdpa_cudnn_ms"]), ratio(r["sdpa_flash_ms"])))
    print("\nslimmed decode (OmniSparse kv_slim + compacted cache)")
    print("%-7s %3s %6s | %7s %9s %8s %8s %7s %6s | %6s %7s %8s" % (
        "ctx", "B", "tau", "kept", "reduction", "kernel", "queued", "speedup", "/0.8r",
        "recall", "err", "slim ms"))
    for r in rows:
        for pt in r["slim"]:
            kept = pt["tokens"] / (r["batch"] * HKV * r["ctx"])
            print("%-7d %3d %6.3f | %7.3f %9.2f %8.4f %8.4f %7.2f %6.2f | %6.3f %7.4f %8.1f" % (
                r["ctx"], r["batch"], pt["tau"], kept, pt["reduction"], pt["kernel_ms"],
                pt["queued_ms"], pt["speedup"], pt["speedup"] / (0.8 * pt["reduction"]),
                pt["recall"], pt["err"], pt["slim_once_ms"]))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"device": torch.cuda.get_device_name(), "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
