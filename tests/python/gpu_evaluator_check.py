#!/usr/bin/env python3
"""GPU check of the benchmark evaluator (bench/evaluator.py) against the CPU
reference, at sizes where the reference is exact (run on a GPU machine).

Not collected by pytest. For small OmniSparse variants (block 32, pooling
16, lazy window 64) on structured inputs (bench/structured.py):

  * recall and error from the evaluator (the kernel's LSE and O on the
    sampled rows, fp32 PyTorch dense rows) against `sattn-run --device=cpu
    --json` on the same bf16 values (float64; its own selection). With S <=
    256 the sample is every row, so the error covers the same rows;
  * the recall over 257 rows (evaluator.unaligned_rows) against the
    reference's `recall_unaligned`;
  * density from Program.run_selection (the GPU's own sets) against the
    reference's density;
  * the block oracle against a float64 numpy recomputation on every query
    block.
The GPU and CPU selections can differ only where fp32 and float64 scores
tie; the tolerances allow one block of difference.

Usage: python3 tests/python/gpu_evaluator_check.py --sattn-run PATH
Exits 1 on a failed check, 2 when the environment is unusable.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError:
    print("error: this check needs numpy and PyTorch with CUDA")
    sys.exit(2)
if not torch.cuda.is_available():
    print("error: no CUDA device")
    sys.exit(2)

HERE = os.path.dirname(os.path.abspath(__file__))
for cand in (os.path.join(HERE, "..", "..", "bench"), os.path.join(HERE, "..", "bench")):
    if os.path.isfile(os.path.join(cand, "evaluator.py")):
        sys.path.insert(0, cand)
for cand in (os.path.join(HERE, "..", "..", "python"), os.path.join(HERE, "..", "python")):
    if os.path.isdir(os.path.join(cand, "sattn")):
        sys.path.insert(0, cand)
import sattn  # noqa: E402
from bench_omnisparse import omni_ir  # noqa: E402
from evaluator import (dense_rows, oracle_density, recall_and_error, sample_rows,  # noqa: E402
                       unaligned_rows)
from structured import structured_qkv  # noqa: E402

HQ, HKV, D, BLOCK = 4, 2, 64, 32


def oracle_numpy(q, k, block, mass):
    """The block oracle in float64 over every query block."""
    q = q[0].double().cpu().numpy()
    k = k[0].double().cpu().numpy()
    hq, S, d = q.shape
    g = hq // k.shape[0]
    kept = valid = 0
    for h in range(hq):
        s = q[h] @ k[h // g].T / np.sqrt(d)
        s[np.triu_indices(S, 1)] = -np.inf
        p = np.exp(s - s.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        for I in range((S + block - 1) // block):
            r0, r1 = I * block, min(S, (I + 1) * block)
            nkb = (r1 + block - 1) // block
            bm = np.array([p[r0:r1, J * block:min(r1, (J + 1) * block)].sum()
                           for J in range(nkb)])
            c = np.cumsum(np.sort(bm)[::-1])
            kept += min(nkb, int(np.searchsorted(c, mass * bm.sum())) + 1)
            valid += nkb
    return kept / valid


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sattn-run", required=True)
    a = ap.parse_args()
    sess = sattn.Session()
    failures = 0
    print("%-5s %5s %5s | %8s %8s | %8s %8s | %7s %7s | %7s %7s" % (
        "S", "tau", "theta", "recall", "ref", "error", "ref", "density", "ref", "oracle", "f64"))
    work = tempfile.mkdtemp()
    for S, tau, theta, seed in [(256, 0.8, 0.6, 1), (200, 0.6, 0.5, 2), (256, 0.95, 0.9, 3),
                                (500, 0.8, 0.6, 4)]:
        ir = omni_ir(HKV, tau, theta, hq=HQ, d=D, block=BLOCK, pool=16, window=64, sinks=16,
                     keep_every=4)
        prog = sess.compile(ir)
        q, k, v = structured_qkv(S, HQ, HKV, D, seed=seed, segment=32, period=64)
        (o, lse), report = prog.run_selection(q, k, v)
        rows = sample_rows(S)
        o_ref, lse_ref = dense_rows(q, k, v, rows)
        recall, error = recall_and_error(o, lse, rows, o_ref, lse_ref)
        rows_u = unaligned_rows(S)  # 257 rows: other rows than the contract's at S = 500
        recall_u = recall_and_error(o, lse, rows_u, *dense_rows(q, k, v, rows_u))[0]
        oracle = oracle_density(q, k, BLOCK, blocks=10 ** 6)
        oracle64 = oracle_numpy(q, k, BLOCK, 0.95)

        paths = {}
        for name, t in (("q", q), ("k", k), ("v", v)):
            paths[name] = os.path.join(work, name + ".npy")
            np.save(paths[name], t.float().cpu().numpy())
        mlir = os.path.join(work, "v.mlir")
        with open(mlir, "w") as f:
            f.write(ir)
        out = subprocess.run(
            [a.sattn_run, mlir, "--device=cpu", "--dtype=bf16", "--json", "--inputs",
             ",".join("%s=%s" % kv for kv in paths.items()), "--out",
             os.path.join(work, "o.npy"), "--lse", os.path.join(work, "l.npy")],
            capture_output=True, text=True)
        if out.returncode != 0:
            print("sattn-run failed:", out.stderr)
            return 1
        ref = json.loads(out.stdout)
        print("%-5d %5.2f %5.2f | %8.5f %8.5f | %8.5f %8.5f | %7.4f %7.4f | %7.4f %7.4f" % (
            S, tau, theta, recall, ref["recall"], error, ref["error"], report["density"],
            ref["density"], oracle, oracle64))
        one_block = 1.0 / (HQ * sum(I + 1 for I in range((S + BLOCK - 1) // BLOCK)))
        checks = [
            ("recall", abs(recall - ref["recall"]) <= 2e-3),
            ("recall_unaligned", abs(recall_u - ref["recall_unaligned"]) <= 2e-3),
            ("density", abs(report["density"] - ref["density"]) <= one_block + 1e-12),
            ("oracle", abs(oracle - oracle64) <= one_block + 1e-12),
        ]
        if S <= 256:  # every row sampled: the same rows as the reference's error
            checks.append(("error", abs(error - ref["error"]) <= 5e-3))
        for name, ok in checks:
            if not ok:
                print("FAIL: %s at S=%d tau=%g theta=%g" % (name, S, tau, theta))
                failures += 1
    print("evaluator check: %s" % ("ok" if failures == 0 else "%d failures" % failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
