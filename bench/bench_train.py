#!/usr/bin/env python3
"""Training-step attention: forward + backward of sattn against its peers, in one process.

Shapes: B = 1, H = 32 query heads (``--kv-heads`` for GQA, default H), D in
``--dims``, S in ``--seqs``, bf16, random normal Q, K, V and dO (never zero).
Masks, per (S, D):

  causal          dense causal
  full            dense, not causal
  sparse          random 128 x 128 block masks at ``--densities`` (50/20/10 %) of
                  all blocks, the diagonal block always kept
  sparse_causal   the same among the causally visible blocks (lower triangle,
                  diagonal included and always kept); causal inside diagonal blocks

Each density keeps exactly round(density * visible blocks) blocks (diagonal
first, then a seeded random choice among the others); one mask is shared by
batch and heads and given, from the same boolean [nQB, nKB] tensor, to sattn
(``patterns.block_mask``, an int32 list from ``sattn.block_list``) and to
FlexAttention (a BlockMask with BLOCK_SIZE = 128: kept blocks full, diagonal
blocks partial under q >= kv when causal).

Implementations (``--impls``):

  sattn       dense: ``patterns.dense(H, Hkv, D, causal, lse=True)``; sparse:
              ``patterns.block_mask`` with LSE added to its result (the IR text
              patched here; the plain pattern, no LSE, if that does not compile).
              fwd: ``o, lse = program(q, k, v[, blocks])``; bwd:
              ``program.backward(q, k, v[, blocks], dout=do, out=o, lse=lse,
              deterministic=True)`` (the default mode; at S <= --check-seq-max
              also checked bitwise against a second run). Older bindings: a
              TypeError for the new keywords falls back to
              ``backward(..., deterministic=...)`` and then to
              ``backward(..., dout=do)``; the form used is recorded as
              ``bwd_api`` (``fallbacks`` holds the TypeErrors). A sattn.Error
              (no GPU backward for this variant) is recorded and the run goes on.
  sattn_atomic  the same with ``deterministic=False`` (dQ by fp32 atomics
              inside the dK/dV pass)
  sdpa_cudnn, sdpa_flash
              ``F.scaled_dot_product_attention(q, k, v, is_causal=...)`` under
              ``sdpa_kernel(SDPBackend.CUDNN_ATTENTION / FLASH_ATTENTION)``,
              autograd backward (dense masks only)
  flex        ``torch.compile(flex_attention, dynamic=False)`` with the BlockMask
              (dense masks too: an all-kept BlockMask, so each (S, D, causal)
              compiles one graph), autograd backward

Timing (bench/timing.py): CUDA events around calls queued back to back, a few
warm-up calls, median of ``--reps`` (default 20 for S <= 8192, else 10).
fwd = the forward alone (peers: with grad enabled, as in training); bwd = the
backward alone (sattn: ``backward`` given the saved O and LSE; peers:
``torch.autograd.grad(o, (q, k, v), do, retain_graph=True)``: fresh gradients,
no accumulation into .grad); fwd+bwd = both, as one training step runs them.
FLOPs: fwd = 4 B H S^2 D x work, work = the share of the S x S score matrix
computed (dense 1, causal 1/2, sparse the kept blocks, a causal diagonal block
counting 1/2); bwd = 2.5 x fwd; TFLOPS are of fwd+bwd (3.5 x fwd) over its time.
Ratios are peer ms / sattn ms (> 1: sattn faster).

Correctness at S <= ``--check-seq-max`` (default 4096): O, dQ, dK, dV of every
implementation (and sattn's LSE) against fp32 SDPA (math backend, explicit
boolean token mask for block masks; LSE from fp32 scores) on the first
``--check-heads`` query heads (and their KV heads); sattn and sattn_atomic must be
<= 1e-2, and sattn (deterministic) bitwise equal on a second run (exit status 1 otherwise).

Output: a per-implementation table, a one-line-per-case summary with ratios,
JSON (``--json``, default bench/results/train-<date>-<gpu>.json, rewritten
after every case so a cut-off run keeps what it measured) and a PNG chart of
fwd+bwd TFLOPS (``--png``, default the JSON path with .png; matplotlib).
``--replot FILE.json`` redraws tables and chart from a JSON without a GPU.

  python3 bench/bench_train.py                      # S 4k,16k  D 64,128  (~6 min, H100)
  python3 bench/bench_train.py --quick              # S 1k, D 64 smoke run
  python3 bench/bench_train.py --replot bench/results/train-....json
"""
import argparse
import datetime
import gc
import json
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BLOCK = 128
DENSITIES = (0.5, 0.2, 0.1)
MASKS = ("causal", "full", "sparse_causal", "sparse")
IMPLS = ("sattn", "sattn_atomic", "sdpa_cudnn", "sdpa_flash", "flex")
PEERS = ("sdpa_cudnn", "sdpa_flash", "flex")
BWD_FACTOR = 2.5  # backward FLOPs / forward FLOPs
TOL = 1e-2
ERR_KEYS = ("o", "lse", "dq", "dk", "dv")  # compared with the fp32 reference

# The GPU stack, imported by load_gpu_stack() (not at module level, so that
# --replot runs without torch): torch and Triton first, sattn after them, so
# libsattn.so (its own, hidden LLVM) loads into a process that already holds
# Triton's LLVM (tests/python/gpu_torch_check.py).
torch = F = triton = sattn = None
SDPBackend = sdpa_kernel = BlockMask = create_block_mask = flex_attention = None
median_ms = None


def load_gpu_stack():
    global torch, F, triton, sattn, SDPBackend, sdpa_kernel, BlockMask, create_block_mask
    global flex_attention, median_ms
    import torch as torch_
    import torch.nn.functional as F_
    from torch.nn.attention import SDPBackend as SDPBackend_, sdpa_kernel as sdpa_kernel_
    torch, F, SDPBackend, sdpa_kernel = torch_, F_, SDPBackend_, sdpa_kernel_
    try:
        import triton as triton_
        triton = triton_
    except ImportError:
        triton = None
    try:
        from torch.nn.attention.flex_attention import (BlockMask as BM, create_block_mask as cbm,
                                                        flex_attention as fa)
        BlockMask, create_block_mask, flex_attention = BM, cbm, fa
    except ImportError:  # torch < 2.5: no FlexAttention
        flex_attention = None
    # libsattn.so as the other benchmarks find it: the package in python/
    # (sattn/_lib.py: $SATTN_LIB, next to the package, build/runtime/capi).
    sys.path.insert(0, os.path.join(REPO, "python"))
    sys.path.insert(0, HERE)
    import sattn as sattn_
    from timing import median_ms as median_ms_
    sattn, median_ms = sattn_, median_ms_


def log(t0, msg):
    print("[%6.1fs] %s" % (time.time() - t0, msg), file=sys.stderr, flush=True)


def first_line(e, n=300):
    s = str(e).strip().splitlines()
    return (type(e).__name__ + ": " + (s[0] if s else ""))[:n]


def free_memory():
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()


def gpu_short_name(name):
    m = re.search(r"\b([A-Z]{1,3}\d{2,4}[A-Za-z]*)\b", name)
    return (m.group(1) if m else re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")).lower()


# -- masks ------------------------------------------------------------------------

def causal_mod(b, h, q_idx, kv_idx):  # module level: one function object, one Flex graph
    return q_idx >= kv_idx


def random_block_mask(nb, density, causal, seed):
    """A CPU [nb, nb] boolean block mask keeping round(density * visible) blocks:
    the diagonal always, the rest a seeded random choice among the visible
    off-diagonal blocks (visible: all, or the lower triangle when causal)."""
    gen = torch.Generator().manual_seed(seed)
    visible = torch.ones(nb, nb, dtype=torch.bool)
    if causal:
        visible = visible.tril()
    eye = torch.eye(nb, dtype=torch.bool)
    cand = (visible & ~eye).flatten().nonzero().flatten()
    want = max(0, min(cand.numel(), int(round(density * int(visible.sum()))) - nb))
    keep = eye.flatten().clone()
    keep[cand[torch.randperm(cand.numel(), generator=gen)[:want]]] = True
    return keep.view(nb, nb)


def dense_block_mask(nb, causal):
    m = torch.ones(nb, nb, dtype=torch.bool)
    return m.tril() if causal else m


def mask_stats(mask, causal):
    """(kept / visible blocks, work = computed share of the S x S scores)."""
    nb = mask.shape[0]
    kept = int(mask.sum())
    visible = nb * (nb + 1) // 2 if causal else nb * nb
    work = kept - 0.5 * int(mask.diagonal().sum()) if causal else kept
    return kept / visible, work / (nb * nb)


def flex_block_mask(mask, causal):
    """FlexAttention's BlockMask of a CUDA boolean [nQB, nKB] block mask shared by
    batch and heads: kept blocks full; when causal, diagonal blocks partial under
    q >= kv (the mask must lie in the lower triangle). From the block lists
    (BlockMask.from_kv_blocks), nothing S x S; older torch falls back to
    create_block_mask over a mask_mod reading the tensor."""
    nq, nk = mask.shape
    dev = mask.device
    cols = torch.arange(nk, device=dev, dtype=torch.int32)
    rows = torch.arange(nq, device=dev, dtype=torch.int32)[:, None]

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
        blocks, seq = mask, nq * BLOCK

        def mask_mod(b, h, q_idx, kv_idx):
            keep = blocks[q_idx // BLOCK, kv_idx // BLOCK]
            return keep & (q_idx >= kv_idx) if causal else keep

        return create_block_mask(mask_mod, None, None, seq, seq, device=dev, BLOCK_SIZE=BLOCK)


def token_mask(mask, causal, seq):
    """[nQB, nKB] block mask -> [S, S] boolean token mask (the fp32 check only)."""
    m = mask.repeat_interleave(BLOCK, 0).repeat_interleave(BLOCK, 1)[:seq, :seq]
    if causal:
        m = m & torch.ones(seq, seq, dtype=torch.bool, device=m.device).tril()
    return m


# -- sattn ------------------------------------------------------------------------

def add_lse(text, heads):
    """patterns.block_mask's IR with the attention's LSE returned too (the same
    form patterns.dense(lse=True) writes), or None if the text is not as expected."""
    m = re.search(r"%q: (tensor<[^>]*>)", text)
    if not m:
        return None
    qt, lt = m.group(1), "tensor<?x%dx?xf32>" % heads
    for old, new in ((") -> (%s) {" % qt, ") -> (%s, %s) {" % (qt, lt)),
                     ("%o = sattn.attention", "%o, %l = sattn.attention"),
                     ("-> %s\n  return %%o : %s" % (qt, qt),
                      "-> %s, %s\n  return %%o, %%l : %s, %s" % (qt, lt, qt, lt))):
        if text.count(old) != 1:
            return None
        text = text.replace(old, new)
    return text


def sattn_candidates(h, hkv, d, causal, sparse):
    """[(IR text, how it was built)], the preferred first."""
    if not sparse:
        return [(sattn.patterns.dense(h, hkv, d, causal=causal, lse=True),
                 "patterns.dense(lse=True)")]
    try:  # a binding that grew an lse flag
        return [(sattn.patterns.block_mask(h, hkv, d, block=BLOCK, causal=causal, lse=True),
                 "patterns.block_mask(lse=True)")]
    except TypeError:
        pass
    plain = sattn.patterns.block_mask(h, hkv, d, block=BLOCK, causal=causal)
    out = []
    patched = add_lse(plain, h)
    if patched:
        out.append((patched, "patterns.block_mask + LSE result (IR patched here)"))
    out.append((plain, "patterns.block_mask (no LSE: backward recomputes it)"))
    return out


class SattnRunner:
    """Compiled programs per (D, causal, sparse), the first candidate that compiles
    and runs; remembers failures so a broken variant is not retried per shape."""

    def __init__(self, session, h, hkv):
        self.session, self.h, self.hkv = session, h, hkv
        self.cache = {}

    def forward_probe(self, d, causal, sparse, args):
        """(program, result of a first forward, note). Raises the last error."""
        key = (d, causal, sparse)
        if key in self.cache:
            prog, note = self.cache[key]
            return prog, prog(*args), note
        errors, last = [], None
        for text, how in sattn_candidates(self.h, self.hkv, d, causal, sparse):
            try:
                prog = self.session.compile(text)
                res = prog(*args)
                torch.cuda.synchronize()
                note = how + ("" if not errors else " [after: %s]" % "; ".join(errors))
                self.cache[key] = (prog, note)
                return prog, res, note
            except Exception as e:  # sattn.Error / ValueError: try the next candidate
                errors.append("%s: %s" % (how, first_line(e, 160)))
                last = e
        raise last


def split_result(prog, res):
    """(O, LSE or None) of a program call."""
    if isinstance(res, tuple):
        return res[0], (res[1] if len(res) > 1 else None)
    return res, None


def sattn_backward(prog, args, do, o, lse, deterministic):
    """Calls program.backward the newest way it accepts. Returns (grads, api label,
    kwargs builder (o, lse) -> dict, [TypeErrors of the forms it refused])."""
    tries = []
    if lse is not None:
        tries.append(("dout,out,lse,deterministic",
                      lambda o_, l_: dict(dout=do, out=o_, lse=l_, deterministic=deterministic)))
    tries.append(("dout,deterministic", lambda o_, l_: dict(dout=do, deterministic=deterministic)))
    if not deterministic:  # the old binding's only mode is the fast one
        tries.append(("dout", lambda o_, l_: dict(dout=do)))
    refused = []
    for label, kw in tries:
        try:
            return prog.backward(*args, **kw(o, lse)), label, kw, refused
        except TypeError as e:
            refused.append("%s: %s" % (label, first_line(e, 200)))
    raise TypeError("program.backward accepts none of the forms tried (%s)" % "; ".join(refused))


# -- timing -------------------------------------------------------------------------

def time_autograd(f, q, k, v, do, reps, warmup, keep_grads):
    """fwd / bwd / fwd+bwd ms of an autograd attention f(q, k, v) -> o, and the
    first call's (o, grads) when keep_grads."""
    o = f(q, k, v)  # first call: compiles (Flex); errors surface here
    grads = torch.autograd.grad(o, (q, k, v), do, retain_graph=True)
    first = (o.detach(), grads) if keep_grads else None
    del grads
    r = {"fwd_ms": median_ms(lambda: f(q, k, v), reps, warmup)}
    r["bwd_ms"] = median_ms(lambda: torch.autograd.grad(o, (q, k, v), do, retain_graph=True),
                            reps, warmup)
    del o
    r["fwdbwd_ms"] = median_ms(lambda: torch.autograd.grad(f(q, k, v), (q, k, v), do), reps,
                               warmup)
    return r, first


def rel_err(x, ref):
    x, ref = x.float(), ref.float()
    return float((x - ref).norm() / ref.norm())


class Reference:
    """fp32 O, LSE, dQ, dK, dV on the first query heads (whole GQA groups) and their KV heads."""

    def __init__(self, q, k, v, do, causal, tmask, heads):
        h, hkv = q.shape[1], k.shape[1]
        g = h // hkv
        self.nq = min(h, -(-max(1, heads) // g) * g)
        self.nkv = self.nq // g
        qs = q[:, :self.nq].detach().float().requires_grad_()
        ks = k[:, :self.nkv].detach().float().requires_grad_()
        vs = v[:, :self.nkv].detach().float().requires_grad_()
        kr, vr = ks.repeat_interleave(g, 1), vs.repeat_interleave(g, 1)
        old_tf32 = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False
        try:
            with torch.enable_grad(), sdpa_kernel([SDPBackend.MATH]):
                if tmask is not None:
                    o = F.scaled_dot_product_attention(qs, kr, vr, attn_mask=tmask)
                else:
                    o = F.scaled_dot_product_attention(qs, kr, vr, is_causal=causal)
                grads = torch.autograd.grad(o, (qs, ks, vs), do[:, :self.nq].float())
            with torch.no_grad():  # natural-log LSE of the scaled scores over the kept keys
                sc = (qs @ kr.transpose(-1, -2)) * qs.shape[-1] ** -0.5
                keep = tmask if tmask is not None else (
                    torch.ones(sc.shape[-2:], dtype=torch.bool, device=sc.device).tril()
                    if causal else None)
                if keep is not None:
                    sc.masked_fill_(~keep, float("-inf"))
                self.lse = torch.logsumexp(sc, -1)
                del sc, keep
        finally:
            torch.backends.cuda.matmul.allow_tf32 = old_tf32
        self.o = o.detach()
        self.dq, self.dk, self.dv = grads

    def errors(self, o, grads, lse=None):
        e = {}
        if o is not None:
            e["o"] = rel_err(o[:, :self.nq], self.o)
        if lse is not None:
            e["lse"] = rel_err(lse[:, :self.nq], self.lse)
        if grads is not None:
            dq, dk, dv = grads
            e["dq"] = rel_err(dq[:, :self.nq], self.dq)
            e["dk"] = rel_err(dk[:, :self.nkv], self.dk)
            e["dv"] = rel_err(dv[:, :self.nkv], self.dv)
        return e


# -- one case ---------------------------------------------------------------------

def run_sattn(ctx, row, inputs, blocks, causal, sparse, reps, ref):
    q, k, v, do = (x.detach() for x in inputs)
    args = (q, k, v) + ((blocks,) if sparse else ())
    d = q.shape[-1]
    try:
        prog, res, note = ctx.sattn.forward_probe(d, causal, sparse, args)
    except Exception as e:
        for name in ("sattn", "sattn_atomic"):
            if name in ctx.impls:
                row["impls"][name] = {"error": "forward: " + first_line(e)}
        return
    row["sattn_variant"] = note
    o, lse = split_result(prog, res)
    row["sattn_lse"] = lse is not None
    try:
        fwd_ms = median_ms(lambda: prog(*args), reps, ctx.warmup)
    except Exception as e:
        for name in ("sattn", "sattn_atomic"):
            if name in ctx.impls:
                row["impls"][name] = {"error": "forward: " + first_line(e)}
        return
    o_err = ref.errors(o, None, lse) if ref else None
    for name, det in (("sattn", True), ("sattn_atomic", False)):
        if name not in ctx.impls:
            continue
        r = row["impls"][name] = {"fwd_ms": fwd_ms}
        if o_err:
            r["check"] = dict(o_err)
        try:
            grads, api, kw, refused = sattn_backward(prog, args, do, o, lse, det)
        except Exception as e:  # sattn.Error (no GPU backward), TypeError, ValueError
            r["error"] = "backward: " + first_line(e)
            continue
        r["bwd_api"] = api
        if refused:
            r["fallbacks"] = refused
        try:
            torch.cuda.synchronize()
            if ref:
                r["check"].update(ref.errors(None, grads))
                if det:
                    again = prog.backward(*args, **kw(o, lse))
                    r["check"]["bitwise_repeat"] = all(bool(torch.equal(a, b))
                                                       for a, b in zip(grads, again))
                    del again
            del grads
            r["bwd_ms"] = median_ms(lambda: prog.backward(*args, **kw(o, lse)), reps, ctx.warmup)

            def step():
                o_, l_ = split_result(prog, prog(*args))
                return prog.backward(*args, **kw(o_, l_))

            r["fwdbwd_ms"] = median_ms(step, reps, ctx.warmup)
        except Exception as e:
            r["error"] = "backward: " + first_line(e)
            free_memory()


def run_peer(ctx, name, row, inputs, mask, causal, reps, ref):
    q, k, v, do = inputs
    gqa = q.shape[1] != k.shape[1]
    key = (name, row["S"], row["D"], causal)
    if key in ctx.peer_failed:  # the same graph failed for an earlier density
        row["impls"][name] = {"error": "skipped: " + ctx.peer_failed[key]}
        return
    kw = {"enable_gqa": True} if gqa else {}
    if name == "flex":
        if ctx.flex is None:
            row["impls"][name] = {"error": "this torch has no FlexAttention"}
            return
        kw["block_mask"] = flex_block_mask(mask, causal)
        flex = ctx.flex

        def f(q_, k_, v_):
            return flex(q_, k_, v_, **kw)
        scope = None
    else:
        kw["is_causal"] = causal

        def f(q_, k_, v_):
            return F.scaled_dot_product_attention(q_, k_, v_, **kw)
        scope = SDPBackend.CUDNN_ATTENTION if name == "sdpa_cudnn" else SDPBackend.FLASH_ATTENTION
    try:
        if scope is not None:
            with sdpa_kernel(scope):
                r, first = time_autograd(f, q, k, v, do, reps, ctx.warmup, ref is not None)
        else:
            r, first = time_autograd(f, q, k, v, do, reps, ctx.warmup, ref is not None)
        if first is not None:
            r["check"] = ref.errors(*first)
        row["impls"][name] = r
    except Exception as e:
        msg = first_line(e)
        row["impls"][name] = {"error": msg}
        ctx.peer_failed[key] = msg
    free_memory()


def run_case(ctx, s, d, kind, density, inputs):
    causal = kind in ("causal", "sparse_causal")
    sparse = kind.startswith("sparse")
    nb = s // BLOCK
    if sparse:
        seed = 1000 * nb + int(round(density * 1000)) + (1 if causal else 0)
        mask_cpu = random_block_mask(nb, density, causal, seed)
    else:
        mask_cpu = dense_block_mask(nb, causal)
    kept, work = mask_stats(mask_cpu, causal)
    h, hkv = ctx.heads, ctx.kv_heads
    flops = 4.0 * ctx.batch * h * s * s * d * work
    row = {"S": s, "D": d, "B": ctx.batch, "H": h, "Hkv": hkv, "mask": kind, "causal": causal,
           "sparse": sparse, "target_density": density, "density": kept, "work": work,
           "flops_fwd": flops, "flops_bwd": BWD_FACTOR * flops, "impls": {}}
    reps = ctx.reps or (20 if s <= 8192 else 10)
    row["reps"] = reps
    mask = mask_cpu.cuda()
    blocks = None
    if sparse:
        # One list per (batch, head), as a training step with per-head masks has it.
        blocks = sattn.block_list(mask).expand(ctx.batch, h, nb, -1).contiguous()
    ref = None
    if ctx.check and s <= ctx.check_seq_max:
        try:
            tmask = token_mask(mask, causal, s) if sparse else None
            ref = Reference(*inputs, causal, tmask, ctx.check_heads)
            row["check_heads"] = [ref.nq, ref.nkv]
            del tmask
        except Exception as e:
            row["check_error"] = first_line(e)
            ref = None
        free_memory()
    if "sattn" in ctx.impls or "sattn_atomic" in ctx.impls:
        run_sattn(ctx, row, inputs, blocks, causal, sparse, reps, ref)
        free_memory()
    for name in PEERS:
        if name in ctx.impls and (name == "flex" or not sparse):
            run_peer(ctx, name, row, inputs, mask, causal, reps, ref)
    del ref, blocks, mask
    finish_row(row)
    return row


def finish_row(row):
    """TFLOPS and peer/sattn ratios from the times."""
    total = row["flops_fwd"] + row["flops_bwd"]
    base = row["impls"].get("sattn", {})
    for name, r in row["impls"].items():
        if r.get("fwdbwd_ms"):
            r["tflops_fwdbwd"] = total / r["fwdbwd_ms"] / 1e9
        if r.get("fwd_ms"):
            r["tflops_fwd"] = row["flops_fwd"] / r["fwd_ms"] / 1e9
        if r.get("bwd_ms"):
            r["tflops_bwd"] = row["flops_bwd"] / r["bwd_ms"] / 1e9
        if name != "sattn":
            for t in ("fwd_ms", "bwd_ms", "fwdbwd_ms"):
                if r.get(t) and base.get(t):
                    r["x_sattn_" + t[:-3]] = r[t] / base[t]  # this / sattn: peer ms / sattn ms


# -- report -------------------------------------------------------------------------

def case_label(r, short=False):
    if r["sparse"]:
        m = "%s%.0f%%" % ("sp-c " if r["causal"] else "sp ", 100 * r["target_density"])
    else:
        m = r["mask"]
    if short:
        return "S%dk D%d %s" % (r["S"] // 1024, r["D"], m) if r["S"] >= 1024 else \
            "S%d D%d %s" % (r["S"], r["D"], m)
    return "S%-6d D%-4d %-13s" % (r["S"], r["D"], m)


def fmt(x, spec, width):
    return format(x, spec).rjust(width) if isinstance(x, (int, float)) else "-".rjust(width)


def print_tables(doc):
    rows = doc["rows"]
    print()
    print("%-27s %-10s %5s %9s %9s %9s %8s %8s  %s" % (
        "case", "impl", "dens", "fwd ms", "bwd ms", "f+b ms", "TFLOPS", "x sattn", "note"))
    print("-" * 110)
    for r in rows:
        first = True
        for name in IMPLS:
            if name not in r["impls"]:
                continue
            x = r["impls"][name]
            note = x.get("error", "")
            if not note and name.startswith("sattn") and x.get("bwd_api"):
                note = "bwd(%s)" % x["bwd_api"]
            print("%-27s %-10s %5s %9s %9s %9s %8s %8s  %s" % (
                case_label(r) if first else "", name,
                "%.2f" % r["density"] if first else "",
                fmt(x.get("fwd_ms"), ".3f", 9), fmt(x.get("bwd_ms"), ".3f", 9),
                fmt(x.get("fwdbwd_ms"), ".3f", 9), fmt(x.get("tflops_fwdbwd"), ".1f", 8),
                fmt(x.get("x_sattn_fwdbwd"), ".2f", 8), note[:60]))
            first = False
    print("TFLOPS: fwd+bwd over the computed blocks (fwd 4*B*H*S^2*D*work, bwd 2.5x); "
          "x sattn: this impl's fwd+bwd ms / sattn's (> 1: sattn faster); dens: kept / visible "
          "blocks")

    print()
    print("%-27s %9s %7s %9s %8s %8s %8s %9s %9s" % (
        "case", "sattn f+b", "TFLOPS", "atomic/s", "cudnn/s", "flash/s", "flex/s",
        "max err", "atom err"))
    print("-" * 110)
    for r in rows:
        im = r["impls"]
        s = im.get("sattn", {})
        atomic = im.get("sattn_atomic", {})

        def ratio(name):
            return fmt(im.get(name, {}).get("x_sattn_fwdbwd"), ".2f", 8)

        def worst(x):
            c = x.get("check") or {}
            vals = [v for key, v in c.items() if key in ERR_KEYS]
            return max(vals) if vals else None
        print("%-27s %9s %7s %9s %8s %8s %8s %9s %9s" % (
            case_label(r), fmt(s.get("fwdbwd_ms"), ".3f", 9), fmt(s.get("tflops_fwdbwd"), ".1f", 7),
            fmt(atomic.get("x_sattn_fwdbwd"), ".2f", 9), ratio("sdpa_cudnn"), ratio("sdpa_flash"),
            ratio("flex"), fmt(worst(s), ".1e", 9), fmt(worst(atomic), ".1e", 9)))
    print("ratios: peer fwd+bwd ms / sattn fwd+bwd ms; max err: worst of O, LSE, dQ, dK, dV against "
          "fp32 SDPA (checked shapes only)")

    checked = [r for r in rows if any("check" in x for x in r["impls"].values())]
    if checked:
        print()
        print("correctness against fp32 SDPA on the first heads (rel. error, <= %.0e expected "
              "for sattn):" % TOL)
        print("%-27s %-10s %9s %9s %9s %9s %9s  %s" % ("case", "impl", "O", "LSE", "dQ", "dK", "dV",
                                                       ""))
        for r in checked:
            first = True
            for name in IMPLS:
                c = r["impls"].get(name, {}).get("check")
                if not c:
                    continue
                extra = ""
                if "bitwise_repeat" in c:
                    extra = "repeat bitwise %s" % ("equal" if c["bitwise_repeat"] else "DIFFERENT")
                bad = name.startswith("sattn") and any(
                    not c.get(g, 0) <= TOL for g in ERR_KEYS)
                print("%-27s %-10s %9s %9s %9s %9s %9s  %s%s" % (
                    case_label(r) if first else "", name, fmt(c.get("o"), ".1e", 9),
                    fmt(c.get("lse"), ".1e", 9),
                    fmt(c.get("dq"), ".1e", 9), fmt(c.get("dk"), ".1e", 9),
                    fmt(c.get("dv"), ".1e", 9), "FAIL " if bad else "", extra))
                first = False
    apis = sorted({(x.get("bwd_api"), "; ".join(x.get("fallbacks", [])))
                   for r in rows for n, x in r["impls"].items() if n.startswith("sattn")
                   and x.get("bwd_api")})
    for api, fb in apis:
        print("sattn backward called as backward(q, k, v[, blocks], %s)%s" % (
            api.replace(",", ", "), ("  (refused: %s)" % fb) if fb else ""))
    variants = sorted({r.get("sattn_variant") for r in rows if r.get("sattn_variant")})
    for v in variants:
        print("sattn variant: %s" % v)


def failures(doc):
    bad = []
    for r in doc["rows"]:
        for name in ("sattn", "sattn_atomic"):
            c = r["impls"].get(name, {}).get("check") or {}
            if any(not c.get(g, 0) <= TOL for g in ERR_KEYS):
                bad.append("%s %s" % (case_label(r, True), name))
            if c.get("bitwise_repeat") is False:
                bad.append("%s %s not bitwise repeatable" % (case_label(r, True), name))
    return bad


def plot(doc, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: no matplotlib, no chart", file=sys.stderr)
        return False
    rows = doc["rows"]
    groups = [(t, rs) for t, rs in (
        ("dense", [r for r in rows if not r["sparse"]]),
        ("random %dx%d block masks (density = kept / visible blocks)" % (BLOCK, BLOCK),
         [r for r in rows if r["sparse"]])) if rs]
    if not groups:
        return False
    def present(rs):
        return [n for n in IMPLS if any(r["impls"].get(n, {}).get("tflops_fwdbwd") for r in rs)]

    bars = max(len(rs) * max(1, len(present(rs))) for _, rs in groups)
    fig, axes = plt.subplots(len(groups), 1, figsize=(min(24, max(10, 0.16 * bars)),
                                                      4.5 * len(groups)), squeeze=False)
    for ax, (title, rs) in zip(axes[:, 0], groups):
        impls = present(rs)
        width = 0.8 / max(1, len(impls))
        for j, name in enumerate(impls):
            vals = [r["impls"].get(name, {}).get("tflops_fwdbwd") or 0 for r in rs]
            ax.bar([i + j * width for i in range(len(rs))], vals, width, label=name,
                   color="C%d" % IMPLS.index(name))
        top = max([r["impls"].get(n, {}).get("tflops_fwdbwd") or 0 for r in rs for n in impls])
        ax.set_ylim(0, 1.18 * top if top > 0 else 1)  # room for the legend
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(rs))],
                      [case_label(r, True) for r in rs], rotation=35, ha="right", fontsize=7)
        ax.set_ylabel("fwd+bwd TFLOPS (computed blocks)")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, ncol=len(impls), loc="upper center")
        ax.grid(axis="y", alpha=0.3)
    r0 = rows[0]
    fig.suptitle("attention forward + backward, bf16, B=%d, H=%d/%d — %s (torch %s)" % (
        r0["B"], r0["H"], r0["Hkv"], doc.get("device", "GPU"), doc.get("torch", "?")), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def png_path(a, json_path):
    if a.png:
        return a.png
    return os.path.splitext(json_path)[0] + ".png" if json_path else None


# -- main -------------------------------------------------------------------------

class Context:
    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seqs", default="4096,16384")
    ap.add_argument("--dims", default="64,128")
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=None, help="KV heads (default: --heads)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--densities", default=",".join(str(x) for x in DENSITIES))
    ap.add_argument("--masks", default=",".join(MASKS), help="of " + ",".join(MASKS))
    ap.add_argument("--impls", default=",".join(IMPLS), help="of " + ",".join(IMPLS))
    ap.add_argument("--reps", type=int, default=None,
                    help="timed calls per median (default 20 for S <= 8192, else 10)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--check-heads", type=int, default=4)
    ap.add_argument("--check-seq-max", type=int, default=4096)
    ap.add_argument("--no-check", action="store_true")
    ap.add_argument("--quick", action="store_true", help="smoke run: S=1024, D=64, 5 reps")
    ap.add_argument("--json", help="default bench/results/train-<date>-<gpu>.json")
    ap.add_argument("--png", help="default: the JSON path with .png")
    ap.add_argument("--no-png", action="store_true")
    ap.add_argument("--replot", metavar="JSON", help="tables and chart from an earlier JSON; "
                    "no GPU needed")
    a = ap.parse_args()

    if a.replot:
        with open(a.replot) as f:
            doc = json.load(f)
        print_tables(doc)
        png = png_path(a, a.replot)
        if not a.no_png and png and plot(doc, png):
            print("wrote", png)
        return 0

    if a.quick:
        a.seqs, a.dims = "1024", "64"
        a.reps = a.reps or 5
    seqs = [int(x) for x in a.seqs.split(",") if x]
    dims = [int(x) for x in a.dims.split(",") if x]
    densities = [float(x) for x in a.densities.split(",") if x]
    masks = [x for x in a.masks.split(",") if x]
    impls = [x for x in a.impls.split(",") if x]
    for bad, allowed, what in ((set(masks) - set(MASKS), MASKS, "--masks"),
                               (set(impls) - set(IMPLS), IMPLS, "--impls")):
        if bad:
            print("error: %s: unknown %s (of %s)" % (what, ",".join(sorted(bad)),
                                                     ",".join(allowed)), file=sys.stderr)
            return 2
    if any(s % BLOCK for s in seqs):
        print("error: --seqs must be multiples of %d" % BLOCK, file=sys.stderr)
        return 2
    kv_heads = a.kv_heads or a.heads
    if a.heads % kv_heads:
        print("error: --heads must be a multiple of --kv-heads", file=sys.stderr)
        return 2

    t0 = time.time()
    load_gpu_stack()
    if not torch.cuda.is_available():
        print("error: this benchmark needs a CUDA GPU (torch.cuda.is_available() is False)",
              file=sys.stderr)
        return 2
    device = torch.cuda.get_device_name()
    json_path = a.json or os.path.join(
        HERE, "results", "train-%s%s-%s.json" % ("quick-" if a.quick else "",
                                                 datetime.date.today().isoformat(),
                                                 gpu_short_name(device)))
    os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)

    ctx = Context()
    ctx.heads, ctx.kv_heads, ctx.batch = a.heads, kv_heads, a.batch
    ctx.reps, ctx.warmup, ctx.impls = a.reps, a.warmup, impls
    ctx.check, ctx.check_heads, ctx.check_seq_max = not a.no_check, a.check_heads, a.check_seq_max
    ctx.peer_failed = {}
    ctx.sattn = None
    if "sattn" in impls or "sattn_atomic" in impls:
        try:
            ctx.sattn = SattnRunner(sattn.Session("gpu"), a.heads, kv_heads)
        except Exception as e:
            print("error: cannot open a sattn GPU session: %s" % first_line(e), file=sys.stderr)
            return 2
    ctx.flex = None
    if "flex" in impls and flex_attention is not None:
        import torch._dynamo as dynamo
        dynamo.config.cache_size_limit = max(dynamo.config.cache_size_limit, 256)
        if hasattr(dynamo.config, "accumulated_cache_size_limit"):
            dynamo.config.accumulated_cache_size_limit = max(
                dynamo.config.accumulated_cache_size_limit, 1024)
        ctx.flex = torch.compile(flex_attention, dynamic=False)

    def lib_info(fn):
        try:
            return fn()
        except Exception as e:
            return first_line(e)

    doc = {"benchmark": "bench/bench_train.py", "date": datetime.datetime.now().isoformat(
        timespec="seconds"), "device": device, "gpu": gpu_short_name(device),
        "torch": torch.__version__, "triton": triton.__version__ if triton else None,
        "cudnn": torch.backends.cudnn.version(),
        "sattn_version": lib_info(sattn.library_version),
        "sattn_library": lib_info(sattn.library_path), "args": vars(a),
        "flops": "fwd = 4*B*H*S^2*D*work (work: computed share of the S x S scores, causal "
                 "diagonal blocks counting 1/2); bwd = 2.5 x fwd",
        "ratios": "x_sattn_* = this impl's ms / sattn's ms (> 1: sattn faster)",
        "rows": [], "failed_cases": []}
    log(t0, "%s, torch %s, triton %s, sattn %s" % (device, torch.__version__, doc["triton"],
                                                   doc["sattn_version"]))

    def save():
        doc["elapsed_s"] = round(time.time() - t0, 1)
        with open(json_path, "w") as f:
            json.dump(doc, f, indent=1)

    gen = torch.Generator(device="cuda")
    for s in seqs:
        for d in dims:
            gen.manual_seed(s * 1000 + d)
            qshape = (a.batch, a.heads, s, d)
            kvshape = (a.batch, kv_heads, s, d)
            inputs = [torch.randn(shape, device="cuda", dtype=torch.bfloat16, generator=gen)
                      .requires_grad_(i < 3)
                      for i, shape in enumerate((qshape, kvshape, kvshape, qshape))]
            for kind in masks:
                for density in (densities if kind.startswith("sparse") else [None]):
                    try:
                        row = run_case(ctx, s, d, kind, density, inputs)
                    except Exception as e:  # something outside the guarded calls
                        doc["failed_cases"].append({"S": s, "D": d, "mask": kind,
                                                    "target_density": density,
                                                    "error": first_line(e)})
                        log(t0, "S=%d D=%d %s %s failed: %s" % (s, d, kind, density,
                                                                first_line(e)))
                        free_memory()
                        continue
                    doc["rows"].append(row)
                    save()
                    im = row["impls"]
                    log(t0, "%s: %s" % (case_label(row, True), ", ".join(
                        "%s %s" % (n, "%.2f ms" % im[n]["fwdbwd_ms"] if im[n].get("fwdbwd_ms")
                                   else "error") for n in IMPLS if n in im)))
            del inputs
            free_memory()

    save()
    print_tables(doc)
    print("\nwrote", json_path)
    png = png_path(a, json_path)
    if not a.no_png and png and plot(doc, png):
        print("wrote", png)
    log(t0, "done")
    bad = failures(doc)
    if bad:
        print("FAILED (sattn above %.0e or not repeatable): %s" % (TOL, ", ".join(bad)),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
