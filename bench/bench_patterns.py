#!/usr/bin/env python3
"""The pattern library side by side: every examples/patterns/ variant against
cuDNN dense SDPA and FlexAttention given the same block mask, one process.

Causal prefill, B = 1, 32 query / 8 KV heads, D = 128, bf16, inputs from
bench/structured.py (docs/evaluation.md). Per (S, pattern):
  total      median CUDA-event time of whole program calls, back to back;
  est / attn per-launch medians from Program.run_timed: the attention launch
             vs everything before it (estimation and selection);
  xcudnn     cuDNN dense causal time / total;
  flex       FlexAttention (torch.compile) on the pattern's own block set
             (run_selection(blocks=True)), full blocks below the diagonal,
             q >= kv inside diagonal blocks; xflex = flex / our attention step;
  recall, error, density, oracle: design section 2 metrics (bench/evaluator.py;
             the oracle reaches 95 % of the exact mass over 128-key blocks).
MInference vertical-slash (token-level columns and bands) gives Flex the
64 x 64 blocks it touches with the causal mask_mod only: Flex's work on that
block list, a lower bound of its time on the exact token mask.
Static patterns (StreamingLLM, A-shape) give Flex their block set too
(the fused predicate's blocks) with the exact token mask as mask_mod.
XAttention runs only at S <= --xattn-max (default: every length; its
estimate is one tensor-core GEMM pass of 1/(2·stride) of dense attention's
work, codegen/device/antidiag.cuh).
unisparse_g16 and unisparse_g64 (not in the default list) are UniSparse at
granularities {16, 64} (design §10's) and {64} instead of the default
{32, 64}: the same recall / density curve on these inputs
(bench/selection_study.py) at 3.5x and 0.2x the default's pooled pairs.

  python3 bench/bench_patterns.py --seqs 32768,65536,131072 --json out.json
"""
import argparse
import json
import os
import re
import sys
import warnings

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, HERE)
import sattn  # noqa: E402
from structured import structured_qkv  # noqa: E402
from timing import median_ms  # noqa: E402
from evaluator import (dense_rows, oracle_density, recall_and_error, sample_rows,  # noqa: E402
                       unaligned_rows)
from selection_study import with_granularities  # noqa: E402

try:
    from torch.nn.attention.flex_attention import BlockMask, flex_attention
except ImportError:  # torch < 2.5
    flex_attention = None

HQ, HKV, D = 32, 8, 128
PATTERNS = ["streaming_llm", "minference_ashape", "minference_block_sparse",
            "minference_vertical_slash", "unisparse",
            "composite_budget", "flexprefill", "xattention", "xattention_s16"]
UNISPARSE_GRANS = {"unisparse_g16": (16, 64), "unisparse_g64": (64,)}
STATIC = {"streaming_llm": (4096, 4), "minference_ashape": (3968, 128)}  # window, sinks


def pattern_text(name):
    """The example's IR, returning LSE too (recall needs it). NAME@T sets every
    `tau` of the example to T (a point of a recall/speed curve)."""
    name, _, tau = name.partition("@")
    src = ("xattention" if name.startswith("xattention")
           else "unisparse" if name.startswith("unisparse") else name)
    with open(os.path.join(HERE, "..", "examples", "patterns", src + ".mlir")) as f:
        text = f.read()
    if tau:
        text, n = re.subn(r"tau = [0-9.e-]+ : f64", "tau = %s : f64" % float(tau), text)
        assert n, "no tau in " + src
    if name == "xattention_s16":
        text = text.replace("stride = 8 : i64", "stride = 16 : i64")
    if name in UNISPARSE_GRANS:  # other granularities (bench/selection_study.py)
        text = with_granularities(text, UNISPARSE_GRANS[name])
    return with_lse(text)


def with_lse(text, hq=HQ, d=D):
    """A variant's IR (one attention, result O) made to return its LSE too."""
    q = "tensor<?x%dx?x%dxbf16>" % (hq, d)
    lse = "tensor<?x%dx?xf32>" % hq
    text = re.sub(r"\) -> \(?%s\)? \{" % re.escape(q), ") -> (%s, %s) {" % (q, lse), text,
                  count=1)
    text = text.replace("%o = sattn.attention", "%o, %l = sattn.attention")
    text = re.sub(r"-> %s\n  return %%o : %s" % (re.escape(q), re.escape(q)),
                  "-> %s, %s\n  return %%o, %%l : %s, %s" % (q, lse, q, lse), text)
    assert "return %o, %l" in text, "could not add LSE to:\n" + text
    return text


def cudnn_ms(q, k, v, reps):
    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
        return median_ms(lambda: F.scaled_dot_product_attention(
            q, k, v, is_causal=True, enable_gqa=True), reps)


def flex_mask(mask, block, static=None):
    """BlockMask of a per-head bool [1, H, nQB, nKB] block mask (Sq == Skv):
    blocks below the diagonal full, diagonal blocks partial (q >= kv); for a
    static pattern every block is partial under its exact token mask."""
    _, h, nq, nk = mask.shape
    cols = torch.arange(nk, device=mask.device)
    rows = torch.arange(nq, device=mask.device)[:, None]

    def lists(m):
        counts = m.sum(-1).to(torch.int32)
        order = torch.where(m, cols, cols + nk).sort(-1).values
        order = torch.where(order < nk, order, torch.zeros_like(order)).to(torch.int32)
        return counts.contiguous(), order.contiguous()

    if static:
        window, sinks = static

        def mod(b, hh, q_idx, kv_idx):
            return (q_idx >= kv_idx) & ((kv_idx < sinks) | (q_idx - kv_idx < window))
        partial, full = mask, torch.zeros_like(mask)
    else:
        def mod(b, hh, q_idx, kv_idx):
            return q_idx >= kv_idx
        full, partial = mask & (cols < rows), mask & (cols == rows)
    kv_num, kv_idx = lists(partial)
    full_num, full_idx = lists(full)
    return BlockMask.from_kv_blocks(kv_num, kv_idx, full_num, full_idx, BLOCK_SIZE=block,
                                    mask_mod=mod)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seqs", default="32768,65536,131072")
    ap.add_argument("--patterns", default=",".join(PATTERNS),
                    help="comma list; NAME@TAU overrides the example's tau")
    ap.add_argument("--xattn-max", type=int, default=1 << 30)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json")
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    import torch._dynamo as dynamo
    dynamo.config.cache_size_limit = max(dynamo.config.cache_size_limit, 64)
    flex = torch.compile(flex_attention, dynamic=False) if flex_attention else None
    sess = sattn.Session("gpu")
    names = [n for n in a.patterns.split(",") if n]
    progs = {n: sess.compile(pattern_text(n)) for n in names}
    dense = sess.compile(sattn.patterns.dense(HQ, HKV, D, causal=True))
    rows = []
    for S in [int(x) for x in a.seqs.split(",")]:
        q, k, v = structured_qkv(S, HQ, HKV, D, seed=S)
        sample = sample_rows(S)
        o_ref, lse_ref = dense_rows(q, k, v, sample)
        sample_u = unaligned_rows(S)  # every in-block offset (evaluator.py)
        o_ref_u, lse_ref_u = dense_rows(q, k, v, sample_u)
        base = {"S": S, "oracle_density": oracle_density(q, k, 128),
                "cudnn_ms": cudnn_ms(q, k, v, a.reps),
                "sattn_dense_ms": median_ms(lambda: dense(q, k, v), a.reps)}
        for name in names:
            if name.startswith("xattention") and S > a.xattn_max:
                continue
            prog = progs[name]
            row = dict(base, pattern=name)
            (o, lse), rep = prog.run_selection(q, k, v, blocks=True)
            assert not torch.isnan(o).any(), "NaN in " + name
            row["recall"], row["error"] = recall_and_error(o, lse, sample, o_ref, lse_ref)
            row["recall_unaligned"] = recall_and_error(o, lse, sample_u, o_ref_u, lse_ref_u)[0]
            row["density"] = rep["density"]
            reps = a.reps if not name.startswith("xattention") else 2
            row["total_ms"] = median_ms(lambda: prog(q, k, v), reps, warmup=1)
            phases = {}
            for _ in range(max(2, reps // 2)):
                for n, ms in prog.run_timed(q, k, v)[1]:
                    phases.setdefault(n, []).append(ms)
            med = {n: sorted(t)[len(t) // 2] for n, t in phases.items()}
            row["phases_ms"] = med
            row["attention_ms"] = sum(t for n, t in med.items() if "attn_fwd" in n)
            row["estimation_ms"] = sum(t for n, t in med.items() if "attn_fwd" not in n)
            if flex is not None:
                mask = torch.from_numpy(rep["blocks"]).cuda()
                bq, bk = rep["block_size"]
                if mask.shape[1] != HQ:  # a per-group set: each query head reads its group's
                    mask = mask.repeat_interleave(HQ // mask.shape[1], 1)
                bm = flex_mask(mask, bq, STATIC.get(name))
                # Its default tiles are 128 x 128; a 64-block mask needs 64-row tiles.
                opts = {"BLOCK_M": bq, "BLOCK_N": bk} if (bq, bk) != (128, 128) else None
                try:
                    row["flex_ms"] = median_ms(
                        lambda: flex(q, k, v, block_mask=bm, enable_gqa=True, kernel_options=opts),
                        a.reps)
                except Exception as e:  # report, keep benchmarking the others
                    row["flex_error"] = "%s: %s" % (type(e).__name__, str(e).split("\n")[0][:200])
            rows.append(row)
            print(json.dumps(row), flush=True)
            if a.json:  # after every row: a run cut short keeps what it measured
                write_json(a.json, rows)
        del q, k, v
        torch.cuda.empty_cache()

    print("\n%-24s %6s | %8s %8s | %8s %8s %8s %5s | %6s %8s %6s | %6s %6s %7s %6s %6s" % (
        "pattern", "S", "cudnn", "dense", "total", "attn", "est", "est%", "xcudnn", "flex",
        "xflex", "recall", "rec257", "error", "dens", "oracle"))
    for r in rows:
        flex_ms = r.get("flex_ms", float("nan"))
        print("%-24s %6d | %8.3f %8.3f | %8.3f %8.3f %8.3f %5.1f | %6.2f %8.3f %6.2f | "
              "%6.3f %6.3f %7.4f %6.3f %6.3f" % (
                  r["pattern"], r["S"], r["cudnn_ms"], r["sattn_dense_ms"], r["total_ms"],
                  r["attention_ms"], r["estimation_ms"],
                  100 * r["estimation_ms"] / max(1e-9, r["attention_ms"] + r["estimation_ms"]),
                  r["cudnn_ms"] / r["total_ms"], flex_ms, flex_ms / r["attention_ms"],
                  r["recall"], r["recall_unaligned"], r["error"], r["density"],
                  r["oracle_density"]))
    if a.json:
        write_json(a.json, rows)


def write_json(path, rows):
    with open(path, "w") as f:
        json.dump({"device": torch.cuda.get_device_name(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
