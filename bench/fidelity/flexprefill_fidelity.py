#!/usr/bin/env python3
"""Fidelity of sattn's FlexPrefill selection against the reference (issue #7).

Runs sattn's `patterns.flexprefill` and the reference `get_active_blocks`
(bytedance/FlexPrefill, staged uncommitted by stage_reference.sh) on the same
q, k and compares the selected 128 x 128 blocks per (head, query block):

  agreement      share of causally valid (head, q-block, k-block) pairs where
                 both masks agree (the issue asks >= 0.99)
  row agreement  share of (head, q-block) rows whose block sets are identical
  density        selected / causally valid pairs, for each side

Reference runs (--refs): "torch" (its code on bf16 q, k: what it runs in
practice) and "torch-fp32" (the same bf16 values widened to float32: no bf16
rounding of logits and pools, which separates rounding from differences of
rule). On the GPU its pooling of keys is its own Triton kernel; with
--device cpu (sattn's float64 reference executor) that one kernel is replaced
by the equivalent mean over each block's tokens in torch, and everything else
of get_active_blocks runs unchanged.

get_active_blocks arguments: block_size 128, gamma (--gammas), min_budget =
ceil(--min-budget / 128) blocks, max_budget = ceil(2^31 / 128) blocks (what
flex_prefill_attention passes for no limit), tau = the sqrt-JSD threshold
(--jsds; 0 means no query-aware heads, as sattn's jsd = 0), gqa_interleave
False (query head h uses KV head h / (H / Hkv), as semantics 2 reads GQA).
Sequence lengths are multiples of 128, as the reference's causal mask of the
last queries assumes.

  bash bench/fidelity/stage_reference.sh GIT_DIR     # -> build/ext/flexprefill
  python3 bench/fidelity/flexprefill_fidelity.py --json out.json             # GPU
  python3 bench/fidelity/flexprefill_fidelity.py --device cpu --seqs 1024,2048 \\
      --heads 8 --kv-heads 2                                                   # CPU

Needs torch (and triton, which the reference imports), libsattn.so
(repository or bundle); exits 1 when a gated run is below --min-agreement.
"""
import argparse
import importlib.util
import json
import math
import os
import sys
import types

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(HERE, ".."))  # bench/structured.py
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "python"))
import sattn  # noqa: E402
from common import agreement, csv_of, import_staged, sattn_mask  # noqa: E402
from structured import structured_qkv  # noqa: E402

BLOCK = 128
NO_LIMIT_BLOCKS = math.ceil(2147483647 / BLOCK)  # flex_prefill_attention's max_budget=None


def stub_missing_imports():
    """The reference imports transformers (only to choose a flash-attention
    function for its attention step) and einops (one rearrange merging two
    head axes); stub whichever is absent instead of editing its file."""
    if importlib.util.find_spec("transformers") is None:
        tf, utils = types.ModuleType("transformers"), types.ModuleType("transformers.utils")
        utils.is_flash_attn_2_available = lambda: False
        tf.utils = utils
        sys.modules["transformers"], sys.modules["transformers.utils"] = tf, utils
    if importlib.util.find_spec("einops") is None:
        ein = types.ModuleType("einops")

        def rearrange(x, pattern):
            if pattern != "b h g i j -> b (h g) i j":
                raise NotImplementedError("einops stub of flexprefill_fidelity.py: " + pattern)
            return x.reshape(x.shape[0], x.shape[1] * x.shape[2], *x.shape[3:])
        ein.rearrange = rearrange
        sys.modules["einops"] = ein


def mean_pool_blocks(x, kernel_size, pool_type="avg"):
    """What the reference's triton_bnhd_pool computes for "avg" ([B, N, H, D]
    -> [B, ceil(N / kernel), H, D], each block's mean over its tokens, in
    x's dtype), for --device cpu where Triton kernels cannot run."""
    assert pool_type == "avg", pool_type
    b, n, h, d = x.shape
    m = math.ceil(n / kernel_size)
    xs = torch.nn.functional.pad(x.float(), (0, 0, 0, 0, 0, m * kernel_size - n))
    sums = xs.view(b, m, kernel_size, h, d).sum(2)
    count = (n - torch.arange(m, device=x.device) * kernel_size).clamp(max=kernel_size)
    return (sums / count[None, :, None, None]).to(x.dtype)


def load_reference(ref_dir, device):
    stub_missing_imports()
    mod, rev = import_staged(ref_dir, "flex_prefill.ops.flex_prefill_attention",
                             os.path.join("flex_prefill", "ops", "flex_prefill_attention.py"))
    if device == "cpu":
        mod.triton_bnhd_pool = mean_pool_blocks
    return mod, rev


def reference_mask(ref, q, k, gamma, jsd, min_blocks, impl):
    """The reference's selected blocks as a bool [B, H, nb, nb] mask."""
    B, H, S, _ = q.shape
    nb = math.ceil(S / BLOCK)
    dtype = torch.float32 if impl == "torch-fp32" else q.dtype
    # Its layout is [B, S, H, D].
    qr = q.to(dtype).transpose(1, 2).contiguous()
    kr = k.to(dtype).transpose(1, 2).contiguous()
    idx = ref.get_active_blocks(qr, kr, kr, BLOCK, gamma, min_blocks, NO_LIMIT_BLOCKS,
                                tau=jsd, gqa_interleave=False)
    mask = torch.zeros(B, H, nb * nb, dtype=torch.bool, device=q.device)
    for b in range(B):
        for h in range(H):
            mask[b, h, idx[b][h].long()] = True
    return mask.view(B, H, nb, nb)


def make_inputs(kind, S, a):
    dev = "cuda" if a.device == "gpu" else "cpu"
    if kind == "structured":
        q, k, _ = structured_qkv(S, a.heads, a.kv_heads, a.head_dim, seed=a.seed, device=dev)
        return q, k
    g = torch.Generator(device=dev).manual_seed(a.seed)
    q = torch.randn(1, a.heads, S, a.head_dim, generator=g, device=dev).to(torch.bfloat16)
    k = torch.randn(1, a.kv_heads, S, a.head_dim, generator=g, device=dev).to(torch.bfloat16)
    return q, k


def show_differences(ours, theirs, limit):
    diff = (ours != theirs).any(-1)[0]  # [H, nQB], batch 0
    for h, qb in diff.nonzero().tolist()[:limit]:
        o, t = ours[0, h, qb], theirs[0, h, qb]
        print("    head %d q-block %d: sattn %d blocks, reference %d; only sattn %s, only "
              "reference %s" % (h, qb, int(o.sum()), int(t.sum()),
                                (o & ~t).nonzero().flatten().tolist()[:10],
                                (t & ~o).nonzero().flatten().tolist()[:10]))


def run_case(session, ref, q, k, case, a):
    S, gamma, jsd = case["S"], case["gamma"], case["jsd"]
    nb = S // BLOCK
    valid = torch.ones(nb, nb, dtype=torch.bool, device=q.device).tril()  # Sq = Skv
    text = sattn.patterns.flexprefill(a.heads, a.kv_heads, a.head_dim, gamma=gamma, jsd=jsd,
                                      min_budget=a.min_budget)
    ours, reported = sattn_mask(session.compile(text), q, k, a.device, BLOCK)
    density = float(ours[:, :, valid].float().mean())
    problems = []
    if reported is not None and abs(reported - density) > 1e-6:
        problems.append("read-out density %.6f != reported %.6f" % (density, reported))
    if ours[:, :, ~valid].any():
        problems.append("sattn's mask has a non-causal block")
    label = "%-10s S %5d gamma %.2f jsd %.2f" % (case["inputs"], S, gamma, jsd)
    out = []
    for impl in a.refs.split(","):
        theirs = reference_mask(ref, q, k, gamma, jsd, math.ceil(a.min_budget / BLOCK), impl)
        same = ours == theirs
        r = dict(case, ref=impl, agreement=agreement(ours, theirs, valid),
                 row_agreement=float(same.all(-1).float().mean()), density_sattn=density,
                 density_ref=float(theirs[:, :, valid].float().mean()),
                 density_reported=reported, differing_pairs=int((~same).sum()),
                 valid_pairs=int(valid.sum()) * q.shape[1], problems=problems,
                 gated=impl in a.gate_refs.split(","))
        r["pass"] = r["agreement"] >= a.min_agreement and not problems
        print("%s ref %-10s: agreement %.4f, rows %.4f, density sattn %.4f ref %.4f%s"
              % (label, impl, r["agreement"], r["row_agreement"], density, r["density_ref"],
                 "  PROBLEM: " + "; ".join(problems) if problems else ""))
        if r["differing_pairs"]:
            show_differences(ours, theirs, a.show)
        out.append(r)
    return out


def print_table(results, min_agreement):
    print("\n%-10s %6s %5s %5s %-10s %9s %7s %8s %8s %s"
          % ("inputs", "S", "gamma", "jsd", "ref", "agreement", "rows", "d_sattn", "d_ref", "ok"))
    for r in results:
        print("%-10s %6d %5.2f %5.2f %-10s %9.4f %7.4f %8.4f %8.4f %s"
              % (r["inputs"], r["S"], r["gamma"], r["jsd"], r["ref"], r["agreement"],
                 r["row_agreement"], r["density_sattn"], r["density_ref"],
                 ("yes" if r["pass"] else "NO") + ("" if r["gated"] else " (not gated)")))
    gated = [r for r in results if r["gated"]]
    print("%d/%d gated runs pass (agreement >= %.2f)"
          % (sum(r["pass"] for r in gated), len(gated), min_agreement))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref-dir", default=os.path.join(ROOT, "build", "ext", "flexprefill"))
    ap.add_argument("--device", choices=["gpu", "cpu"], default="gpu",
                    help="where sattn runs (cpu: its float64 reference executor)")
    ap.add_argument("--seqs", type=csv_of(int), default=[4096, 8192, 16384])
    ap.add_argument("--gammas", type=csv_of(float), default=[0.9, 0.95])
    ap.add_argument("--jsds", type=csv_of(float), default=[0.0, 0.1, 0.3])
    ap.add_argument("--inputs", type=csv_of(str), default=["random", "structured"])
    ap.add_argument("--refs", default="torch,torch-fp32")
    ap.add_argument("--gate-refs", default="torch", help="the reference runs deciding the exit")
    ap.add_argument("--min-budget", type=int, default=1024, help="tokens")
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--min-agreement", type=float, default=0.99)
    ap.add_argument("--show", type=int, default=3, help="differing rows printed per run")
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    for S in a.seqs:
        if S % BLOCK or S < 2 * BLOCK:
            sys.exit("--seqs must be multiples of %d of at least %d, got %d"
                     % (BLOCK, 2 * BLOCK, S))
    if a.device == "gpu":
        # The fp32 reference run must not drop to TF32.
        torch.backends.cuda.matmul.allow_tf32 = False
    ref, rev = load_reference(a.ref_dir, a.device)
    session = sattn.Session(a.device)
    print("sattn %s on %s; reference bytedance/FlexPrefill %s (%s)"
          % (sattn.library_path(), session.device_name, rev, a.ref_dir))

    results = []
    for kind in a.inputs:
        for S in a.seqs:
            q, k = make_inputs(kind, S, a)
            for gamma in a.gammas:
                for jsd in a.jsds:
                    case = dict(inputs=kind, S=S, gamma=gamma, jsd=jsd)
                    results += run_case(session, ref, q, k, case, a)
            del q, k
    print_table(results, a.min_agreement)
    ok = all(r["pass"] for r in results if r["gated"])
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(device=session.device_name, reference_revision=rev,
                           min_agreement=a.min_agreement, min_budget=a.min_budget,
                           heads=a.heads, kv_heads=a.kv_heads, head_dim=a.head_dim,
                           all_pass=ok, results=results), f, indent=1)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
