#!/usr/bin/env python3
"""Times sattn against the attention kernels installed beside it, in one process.

Dense: sattn against PyTorch SDPA with each backend forced (flash, cuDNN,
memory-efficient) and FlexAttention (``torch.compile(flex_attention)``), causal
and not. Block-sparse: random non-causal masks of 128x128 blocks at densities
50/20/10/5% (the diagonal block always kept, so no row is empty; a fixed seed
per length), given to FlexAttention as a BlockMask and to sattn as a block-set
input (``patterns.block_mask``, an int32 list from ``sattn.block_list``) built
from the same boolean [nQB, nKB] tensor. sattn's time includes its per-call
list normalisation (``blocks_from_list``); Flex's BlockMask is built once,
outside the timing.

Every configuration runs on the same random (never zero) bf16 inputs; each
timing is the median of ``--reps`` CUDA-event measurements after warm-up, with
the inputs rotated over several copies so repeated runs do not just measure
L2. Correctness first: dense sattn against fp32 SDPA on the first
``--check-heads`` heads; on one small block-sparse case sattn against Flex and
both against an fp32 masked SDPA. Prints tables (ms, dense-equivalent TFLOPS,
effective TFLOPS counting only computed blocks, peer/sattn ratios,
sattn sparse/dense time), writes JSON and a PNG chart. GPU only.

  python3 bench/bench_attention.py --seqs 4096,16384,65536 --dims 64,128 \\
      --json out.json --png out.png
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import sattn  # noqa: E402

try:
    from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention
except ImportError:  # torch < 2.5: no FlexAttention
    flex_attention = None

PEERS = {
    "sdpa_flash": SDPBackend.FLASH_ATTENTION,
    "sdpa_cudnn": SDPBackend.CUDNN_ATTENTION,
    "sdpa_efficient": SDPBackend.EFFICIENT_ATTENTION,
}
BLOCK = 128  # block-sparse granularity (queries and keys), as FlexAttention's default
DENSITIES = (0.5, 0.2, 0.1, 0.05)


def median_ms(fn, reps, warmup=5):
    """Median GPU time per call. Calls are queued back to back with an event
    pair around each and one synchronisation at the end (as
    triton.testing.do_bench does), so every library's per-call host cost
    overlaps the previous call's kernels instead of being timed as GPU idle
    time; `host_us` below reports that cost separately."""
    for i in range(warmup):
        fn(i)
    torch.cuda.synchronize()
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
              for _ in range(reps)]
    for i, (start, end) in enumerate(events):
        start.record()
        fn(i)
        end.record()
    torch.cuda.synchronize()
    times = sorted(start.elapsed_time(end) for start, end in events)
    return times[len(times) // 2]


def host_us(fn, reps=200):
    """Host time per call in microseconds (issue only, GPU work not awaited)."""
    fn(0)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for i in range(reps):
        fn(i)
    elapsed = time.perf_counter() - t
    torch.cuda.synchronize()
    return elapsed / reps * 1e6


def flops(b, h, s, d, causal):
    full = 4.0 * b * h * s * s * d
    return full / 2 if causal else full


def rel_err(x, ref):
    x, ref = x.float(), ref.float()
    return ((x - ref).norm() / ref.norm()).item()


def random_block_mask(n, density, seed):
    """A non-causal [n, n] boolean block mask with about `density` of the blocks
    set, the diagonal always (so every query block attends something)."""
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(n, n, generator=gen) < density
    mask |= torch.eye(n, dtype=torch.bool)
    return mask.cuda()


def flex_block_mask(mask, causal, seq):
    """FlexAttention's BlockMask of a boolean [nQB, nKB] block mask shared by
    batch and heads. Not causal: every kept block is a full block (no mask_mod
    evaluated). Causal: blocks below the diagonal are full, diagonal blocks
    partial under q >= kv. Built from the block lists (BlockMask.from_kv_blocks),
    so nothing of size S x S is materialised at 64k; older torch versions fall
    back to create_block_mask over a mask_mod reading the tensor."""
    nq, nk = mask.shape
    dev = mask.device
    cols = torch.arange(nk, device=dev, dtype=torch.int32)
    rows = torch.arange(nq, device=dev, dtype=torch.int32)[:, None]

    def causal_mod(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx

    def lists(m):  # (counts [1, 1, nQB], indices [1, 1, nQB, nKB]), kept blocks first
        counts = m.sum(-1).to(torch.int32)
        order = torch.where(m, cols, cols + nk).sort(-1).values
        order = torch.where(order < nk, order, torch.zeros_like(order)).to(torch.int32)
        return counts[None, None].contiguous(), order[None, None].contiguous()

    if causal:
        full, partial, mod = mask & (cols[None, :] < rows), mask & (cols[None, :] == rows), causal_mod
    else:
        full, partial, mod = mask, torch.zeros_like(mask), None
    try:
        kv_num, kv_idx = lists(partial)
        full_num, full_idx = lists(full)
        return BlockMask.from_kv_blocks(kv_num, kv_idx, full_num, full_idx, BLOCK_SIZE=BLOCK,
                                        mask_mod=mod)
    except (AttributeError, TypeError):
        blocks = mask

        def mask_mod(b, h, q_idx, kv_idx):
            keep = blocks[q_idx // BLOCK, kv_idx // BLOCK]
            return keep & (q_idx >= kv_idx) if causal else keep

        try:
            return create_block_mask(mask_mod, None, None, seq, seq, device=dev,
                                     BLOCK_SIZE=BLOCK, _compile=True)
        except TypeError:
            return create_block_mask(mask_mod, None, None, seq, seq, device=dev,
                                     BLOCK_SIZE=BLOCK)


def token_mask(mask, seq):
    """[nQB, nKB] block mask -> [S, S] token mask (for the small fp32 check only)."""
    return mask.repeat_interleave(BLOCK, 0).repeat_interleave(BLOCK, 1)[:seq, :seq]


def sdpa_fp32(q, k, v, heads, **kw):
    """fp32 SDPA on the first `heads` heads (memory-efficient kernel: nothing S x S at 64k
    unless an explicit mask is given)."""
    q, k, v = (x[:, :heads].float() for x in (q, k, v))
    backends = [SDPBackend.EFFICIENT_ATTENTION] + ([SDPBackend.MATH] if "attn_mask" in kw else [])
    with sdpa_kernel(backends):
        return F.scaled_dot_product_attention(q, k, v, **kw)


def sparse_check(session, flex, heads, batch):
    """sattn and Flex on one small block-sparse case, against each other and an
    fp32 masked SDPA on the first two heads."""
    s, d = 2048, 128
    gen = torch.Generator(device="cuda").manual_seed(7)
    shape = (batch, heads, s, d)
    q, k, v = (torch.randn(shape, device="cuda", dtype=torch.bfloat16, generator=gen)
               for _ in range(3))
    mask = random_block_mask(s // BLOCK, 0.2, seed=7)
    prog = session.compile(sattn.patterns.block_mask(heads, heads, d, block=BLOCK, causal=False))
    lst = sattn.block_list(mask).expand(batch, heads, mask.shape[0], -1)
    o = prog(q, k, v, lst)
    ref = sdpa_fp32(q, k, v, 2, attn_mask=token_mask(mask, s))
    out = {"S": s, "D": d, "density": mask.float().mean().item(),
           "sattn_vs_fp32": rel_err(o[:, :2], ref)}
    if flex is not None:
        of = flex(q, k, v, block_mask=flex_block_mask(mask, False, s))
        out["sattn_vs_flex"] = rel_err(o, of)
        out["flex_vs_fp32"] = rel_err(of[:, :2], ref)
    torch.cuda.synchronize()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seqs", default="4096,16384", help="e.g. 4096,16384,65536")
    ap.add_argument("--dims", default="64,128")
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--copies", type=int, default=3)
    ap.add_argument("--densities", default=",".join(str(x) for x in DENSITIES))
    ap.add_argument("--check-heads", type=int, default=2,
                    help="heads compared with fp32 SDPA in the dense correctness check")
    ap.add_argument("--no-sparse", action="store_true", help="dense comparison only")
    ap.add_argument("--json")
    ap.add_argument("--png")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("error: this benchmark needs a CUDA GPU (torch.cuda.is_available() is False)",
              file=sys.stderr)
        return 2

    session = sattn.Session("gpu")
    # One compiled Flex graph per (S, D, mask kind): keep them all, never fall
    # back to eager flex_attention (which materialises the scores).
    import torch._dynamo as dynamo
    dynamo.config.cache_size_limit = max(dynamo.config.cache_size_limit, 256)
    if hasattr(dynamo.config, "accumulated_cache_size_limit"):
        dynamo.config.accumulated_cache_size_limit = max(
            dynamo.config.accumulated_cache_size_limit, 1024)
    flex = torch.compile(flex_attention, dynamic=False) if flex_attention is not None else None
    if flex is None:
        print("note: this torch has no FlexAttention; its columns stay empty", file=sys.stderr)
    densities = [float(x) for x in a.densities.split(",") if x]
    rows, sparse = [], []
    check = sparse_check(session, flex, a.heads, a.batch) if not a.no_sparse else None
    for s in [int(x) for x in a.seqs.split(",")]:
        if s % BLOCK:
            print(f"error: --seqs must be multiples of {BLOCK}, got {s}", file=sys.stderr)
            return 2
        for d in [int(x) for x in a.dims.split(",")]:
            gen = torch.Generator(device="cuda").manual_seed(s + d)
            shape = (a.batch, a.heads, s, d)
            sets = [[torch.randn(shape, device="cuda", dtype=torch.bfloat16, generator=gen)
                     for _ in range(3)] for _ in range(a.copies)]
            out = torch.empty(shape, device="cuda", dtype=torch.bfloat16)
            dense_ms = None
            for causal in (True, False):
                prog = session.compile(sattn.patterns.dense(a.heads, a.heads, d, causal=causal))
                # Correctness first: fp32 SDPA on the first heads (memory-efficient kernel).
                q, k, v = sets[0]
                prog(q, k, v, out=out)
                ref = sdpa_fp32(q, k, v, a.check_heads, is_causal=causal)
                err = rel_err(out[:, :a.check_heads], ref)
                del ref
                row = {"S": s, "D": d, "causal": causal, "H": a.heads, "B": a.batch,
                       "rel_err": err, "flops": flops(a.batch, a.heads, s, d, causal)}
                row["sattn_ms"] = median_ms(lambda i: prog(*sets[i % a.copies], out=out), a.reps)
                row["sattn_host_us"] = host_us(lambda i: prog(*sets[i % a.copies], out=out))
                if not causal:
                    dense_ms = row["sattn_ms"]
                for name, backend in PEERS.items():
                    try:
                        with sdpa_kernel(backend):
                            row[name + "_ms"] = median_ms(
                                lambda i: F.scaled_dot_product_attention(*sets[i % a.copies],
                                                                         is_causal=causal),
                                a.reps)
                    except RuntimeError as e:  # backend unavailable for this shape
                        row[name + "_ms"] = None
                        row[name + "_error"] = str(e).splitlines()[0][:120]
                row["flex_ms"] = None
                if flex is not None:
                    bm = flex_block_mask(torch.ones(s // BLOCK, s // BLOCK, dtype=torch.bool,
                                                    device="cuda"), True, s) if causal else None
                    row["flex_ms"] = median_ms(
                        lambda i: flex(*sets[i % a.copies], block_mask=bm), a.reps)
                rows.append(row)
                print(f"done dense S={s} D={d} causal={causal}", file=sys.stderr)

            if a.no_sparse:
                continue
            prog = session.compile(sattn.patterns.block_mask(a.heads, a.heads, d, block=BLOCK,
                                                             causal=False))
            for density in densities:
                mask = random_block_mask(s // BLOCK, density, seed=1000 + s // BLOCK +
                                         int(round(density * 1000)))
                kept = mask.float().mean().item()
                # One list shared by batch and heads: a zero-stride view, no copy.
                lst = sattn.block_list(mask).expand(a.batch, a.heads, s // BLOCK, -1)
                full = flops(a.batch, a.heads, s, d, False)
                row = {"S": s, "D": d, "H": a.heads, "B": a.batch, "density": kept,
                       "target_density": density, "cap": lst.shape[-1], "flops_dense": full,
                       "flops_effective": full * kept}
                row["sattn_ms"] = median_ms(lambda i: prog(*sets[i % a.copies], lst, out=out),
                                            a.reps)
                row["sattn_dense_ms"] = dense_ms
                row["flex_ms"] = None
                if flex is not None:
                    bm = flex_block_mask(mask, False, s)
                    row["flex_ms"] = median_ms(
                        lambda i: flex(*sets[i % a.copies], block_mask=bm), a.reps)
                sparse.append(row)
                print(f"done sparse S={s} D={d} density={kept:.3f}", file=sys.stderr)
            del sets, out
            torch.cuda.empty_cache()

    def ratio(peer, mine):
        return f"{peer / mine:>6.2f}" if peer else f"{'':>6}"

    head = f"{'S':>6} {'D':>4} {'causal':>6} {'err':>8} {'sattn ms':>9} {'TFLOPS':>7}"
    for name in list(PEERS) + ["flex"]:
        head += f" {name + ' ms':>18} {'ratio':>6}"
    print(head)
    for r in rows:
        tf = r["flops"] / r["sattn_ms"] / 1e9
        line = (f"{r['S']:>6} {r['D']:>4} {str(r['causal']):>6} {r['rel_err']:>8.1e} "
                f"{r['sattn_ms']:>9.3f} {tf:>7.1f}")
        for name in list(PEERS) + ["flex"]:
            ms = r[name + "_ms"]
            line += f" {ms:>18.3f} {ratio(ms, r['sattn_ms'])}" if ms else f" {'n/a':>18} {'':>6}"
        print(line)
    print("ratio = peer time / sattn time (> 1: sattn faster); TFLOPS dense-equivalent "
          "(causal counts half)")
    hosts = [r["sattn_host_us"] for r in rows]
    if hosts:
        print(f"sattn host cost per call (Python -> C ABI -> runtime, issue only): "
              f"{min(hosts):.0f}-{max(hosts):.0f} us")
    if sparse:
        print()
        print(f"{'S':>6} {'D':>4} {'density':>7} {'sattn ms':>9} {'TF dense':>8} {'TF eff':>7} "
              f"{'flex ms':>9} {'flex TFe':>8} {'flex/sattn':>10} {'sparse/dense':>12}")
        for r in sparse:
            ms, fms = r["sattn_ms"], r["flex_ms"]
            tf_dense = r["flops_dense"] / ms / 1e9
            tf_eff = r["flops_effective"] / ms / 1e9
            ftf = f"{r['flops_effective'] / fms / 1e9:>8.1f}" if fms else f"{'n/a':>8}"
            fm = f"{fms:>9.3f}" if fms else f"{'n/a':>9}"
            sd = f"{ms / r['sattn_dense_ms']:>12.3f}" if r["sattn_dense_ms"] else f"{'':>12}"
            print(f"{r['S']:>6} {r['D']:>4} {r['density']:>7.3f} {ms:>9.3f} {tf_dense:>8.1f} "
                  f"{tf_eff:>7.1f} {fm} {ftf} {ratio(fms, ms):>10} {sd}")
        print(f"random non-causal masks of {BLOCK}x{BLOCK} blocks (diagonal kept); TF dense = "
              "dense-equivalent, TF eff = computed blocks only; flex/sattn = Flex time / sattn "
              "time; sparse/dense = sattn block-sparse time / sattn dense (non-causal) time")
    if check:
        print()
        print("block-sparse check (S=%d, D=%d, density %.3f): sattn vs fp32 %.2e%s" % (
            check["S"], check["D"], check["density"], check["sattn_vs_fp32"],
            ", sattn vs flex %.2e, flex vs fp32 %.2e" % (check["sattn_vs_flex"],
                                                          check["flex_vs_fp32"])
            if "sattn_vs_flex" in check else ""))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                       "rows": rows, "sparse": sparse, "sparse_check": check}, f, indent=1)
    if a.png:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(2 if sparse else 1, 1, figsize=(11, 8 if sparse else 4),
                                 squeeze=False)
        ax = axes[0][0]
        labels = [f"S{r['S'] // 1024}k D{r['D']} {'c' if r['causal'] else 'nc'}" for r in rows]
        names = ["sattn"] + list(PEERS) + ["flex"]
        width = 0.8 / len(names)
        for j, name in enumerate(names):
            vals = [r["flops"] / r[name + "_ms"] / 1e9 if r.get(name + "_ms") else 0 for r in rows]
            ax.bar([i + j * width for i in range(len(rows))], vals, width, label=name)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))], labels, rotation=30,
                      ha="right")
        ax.set_ylabel("TFLOPS (dense-equivalent)")
        ax.set_title(f"bf16 attention forward, H={a.heads}, B={a.batch}, "
                     f"{torch.cuda.get_device_name()}")
        ax.legend()
        if sparse:
            ax = axes[1][0]
            labels = [f"S{r['S'] // 1024}k D{r['D']} {r['density']:.0%}" for r in sparse]
            for j, name in enumerate(["sattn", "flex"]):
                vals = [r["flops_effective"] / r[name + "_ms"] / 1e9 if r.get(name + "_ms") else 0
                        for r in sparse]
                ax.bar([i + j * 0.4 for i in range(len(sparse))], vals, 0.4, label=name)
            ax.set_xticks([i + 0.2 for i in range(len(sparse))], labels, rotation=30, ha="right")
            ax.set_ylabel("TFLOPS (computed blocks)")
            ax.set_title(f"random {BLOCK}x{BLOCK} block masks (non-causal)")
            ax.legend()
        fig.tight_layout()
        fig.savefig(a.png, dpi=120)
    status = 0
    bad = [r for r in rows if not r["rel_err"] <= 1e-2]
    if bad:
        print(f"FAILED: {len(bad)} configurations above 1e-2 relative error", file=sys.stderr)
        status = 1
    if check and not check["sattn_vs_fp32"] <= 1e-2:
        print("FAILED: block-sparse sattn above 1e-2 relative error", file=sys.stderr)
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
