#!/usr/bin/env python3
"""GPU check of sattn's backward from Python (run by hand on a GPU machine).

Not collected by pytest (its name does not match test_*.py). For bf16 and
fp16, GQA 8 / 2, D = 64 and 128, S in {200, 1000, 1536} (batch 2 once):

  * dense (causal and not), streaming (window + sinks), block_mask with a
    random per-head block list (~20% of the blocks, causal and not; one
    per-group list) and topk_blocks;
  * dq, dk, dv from Program.backward against float64 torch autograd over an
    explicitly masked attention: the mask from the pattern's definition
    (docs/semantics.md §1), from the block list (block size the pattern's),
    or, for topk, from ``run_selection(..., blocks=True)`` (the blocks the
    GPU selected); rows that see no key give O = 0 and no gradient;
  * both modes: the fast one (atomic dQ) and the deterministic one, run
    twice, which must give the same bits; gradient outputs are poisoned with
    NaN before every run; inputs and dout are random normal;
  * dense causal once more through a variant with LSE: passing its out/lse to
    the backward must give the gradients of the recomputing path (relative
    difference <= 2.5e-3; the table says when they are bit-equal), and
    sattn.autograd.SparseAttention end to end (plain and torch.compile'd)
    must match the reference;
  * misuse raises ValueError;
  * one timing line per D (S = 4096, B = 1, H = 32, bf16, causal): sattn
    fwd + bwd through SparseAttention against torch's
    scaled_dot_product_attention on the cuDNN backend, CUDA events, median
    of 10 after warm-up.

Prints a table; exits 1 on any failure, 2 if the environment is unusable.
Usage: python3 tests/python/gpu_autograd_check.py [--no-timing] [--cpu]
(--cpu: a smoke run of this script's logic on the CPU reference at small
sizes, no timing; libsattn.so from $SATTN_LIB, next to the package, or
build/runtime/capi).
"""
import math
import os
import statistics
import sys
import traceback

CPU = "--cpu" in sys.argv
TIMING = "--no-timing" not in sys.argv and not CPU

try:
    import torch
except ImportError:
    print("error: this check needs PyTorch%s" % ("" if CPU else " with CUDA"))
    sys.exit(2)
if not CPU and not torch.cuda.is_available():
    print("error: torch.cuda.is_available() is False (--cpu runs the smoke version)")
    sys.exit(2)

try:
    import sattn
except ImportError:
    here = os.path.dirname(os.path.abspath(__file__))
    for cand in (os.path.join(here, "..", "..", "python"), os.path.join(here, "..", "python")):
        if os.path.isfile(os.path.join(cand, "sattn", "__init__.py")):
            sys.path.insert(0, os.path.abspath(cand))
            break
    import sattn
from sattn.autograd import SparseAttention  # noqa: E402

try:
    session = sattn.Session("cpu" if CPU else "gpu")
except Exception as e:
    print("error: cannot open a sattn %s session: %s" % ("CPU" if CPU else "GPU", e))
    sys.exit(2)
print("sattn %s from %s on %s; torch %s" % (sattn.library_version(), sattn.library_path(),
                                          session.device_name, torch.__version__))

if CPU:
    DEV = torch.device("cpu")
else:
    DEV = torch.device("cuda", int(os.environ.get("SATTN_DEVICE", "0") or 0))
    torch.cuda.set_device(DEV)
gen = torch.Generator(device=DEV)
gen.manual_seed(0)
TOL = 1e-2
HQ, HKV = 8, 2
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

results = []  # (check, case, mode, err, nans, ms, status, note)


def record(check, case="", mode="", err=None, nans=None, ms=None, ok=True, note=""):
    results.append((check, case, mode, err, nans, ms,
                    "ok" if ok is True else ok or "FAIL", note))


def sync():
    if not CPU:
        torch.cuda.synchronize(DEV)


class Timer:
    def __enter__(self):
        if CPU:
            import time
            self.t0 = time.perf_counter()
        else:
            self.start = torch.cuda.Event(enable_timing=True)
            self.end = torch.cuda.Event(enable_timing=True)
            self.start.record()
        return self

    def __exit__(self, *exc):
        if CPU:
            import time
            self.ms = (time.perf_counter() - self.t0) * 1e3
        else:
            self.end.record()
            self.end.synchronize()
            self.ms = self.start.elapsed_time(self.end)


def randn(*shape, dtype):
    return torch.randn(*shape, device=DEV, dtype=torch.float32, generator=gen).to(dtype)


# -- reference ----------------------------------------------------------------
def token_mask(Sq, Skv, causal=True, window=0, sinks=0):
    """docs/semantics.md §1, bottom-right aligned: [Sq, Skv]."""
    i = torch.arange(Sq, device=DEV)[:, None] + (Skv - Sq)
    j = torch.arange(Skv, device=DEV)[None, :]
    mask = torch.ones(Sq, Skv, dtype=torch.bool, device=DEV)
    if causal:
        mask &= j <= i
    if window:
        mask &= (j > i - window) | (j < sinks)
    return mask


def expand_blocks(blocks, bq, bk, Sq, Skv):
    """[B, heads, nQB, nKB] block mask -> [B, HQ, Sq, Skv] (GQA groups repeated)."""
    m = blocks.to(DEV).repeat_interleave(bq, dim=2).repeat_interleave(bk, dim=3)[..., :Sq, :Skv]
    return m.repeat_interleave(HQ // m.shape[1], dim=1)


def reference_grads(q, k, v, dout, mask):
    """float64 O, dq, dk, dv of sum(dout * O), O the masked attention; rows
    that see no key give O = 0."""
    q64, k64, v64 = (x.detach().to(torch.float64).requires_grad_(True) for x in (q, k, v))
    g = q.shape[1] // k.shape[1]
    kk, vv = k64.repeat_interleave(g, dim=1), v64.repeat_interleave(g, dim=1)
    s = (q64 @ kk.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    s = s.masked_fill(~mask, float("-inf"))
    m = s.amax(-1, keepdim=True).detach()
    empty = torch.isinf(m)
    p = torch.exp(s - torch.where(empty, torch.zeros_like(m), m))
    l = p.sum(-1, keepdim=True)
    o = (p @ vv) / torch.where(empty, torch.ones_like(l), l)
    dq, dk, dv = torch.autograd.grad(o, (q64, k64, v64), dout.to(torch.float64))
    return o.detach(), dq, dk, dv


def rel_err(x, ref):
    x = x.to(torch.float64)
    den = float(torch.linalg.vector_norm(ref))
    return float(torch.linalg.vector_norm(x - ref)) / max(den, 1e-30)


def poisoned(*like):
    return tuple(torch.full_like(x, float("nan"), memory_format=torch.contiguous_format)
                 for x in like)


def nan_count(ts):
    return sum(int(torch.isnan(t).sum()) for t in ts)


# -- one case -----------------------------------------------------------------
def run_backward(program, args, dout, deterministic, out=None, lse=None):
    grads = poisoned(*args[:3])
    sync()
    with Timer() as t:
        program.backward(*args, dout=dout, out=out, lse=lse, deterministic=deterministic,
                         grads=grads)
    return grads, t.ms


def check_grads(name, case, program, args, dout, ref):
    """Both modes against the reference; the deterministic one twice, bit-equal."""
    grads_by_mode = {}
    for mode in ("fast", "deterministic"):
        grads, ms = run_backward(program, args, dout, mode == "deterministic")
        nans = nan_count(grads)
        errs = [rel_err(g, r) for g, r in zip(grads, ref[1:])]
        err = max(errs)
        ok = nans == 0 and err <= TOL
        note = "dq %.1e dk %.1e dv %.1e" % tuple(errs)
        if mode == "deterministic":
            again, _ = run_backward(program, args, dout, True)
            same = all(torch.equal(a, b) for a, b in zip(grads, again))
            ok = ok and same
            note += "" if same else "  second run differs"
        record(name, case, mode, err, nans, ms, ok=ok, note=note)
        grads_by_mode[mode] = grads
    return grads_by_mode


def case_label(dt, B, S, D, extra=""):
    return "%s B%d H%d/%d S%d D%d%s" % (dt, B, HQ, HKV, S, D, extra)


def qkv(B, S, D, dtype):
    return (randn(B, HQ, S, D, dtype=dtype), randn(B, HKV, S, D, dtype=dtype),
            randn(B, HKV, S, D, dtype=dtype))


def dense_case(dt, S, D, causal, B=1):
    dtype = DTYPES[dt]
    program = session.compile(sattn.patterns.dense(HQ, HKV, D, causal=causal, dtype=dt))
    q, k, v = qkv(B, S, D, dtype)
    dout = randn(*q.shape, dtype=dtype)
    ref = reference_grads(q, k, v, dout, token_mask(S, S, causal=causal))
    name = "dense causal" if causal else "dense"
    check_grads(name, case_label(dt, B, S, D), program, (q, k, v), dout, ref)


def streaming_case(dt, S, D, window, sinks):
    dtype = DTYPES[dt]
    program = session.compile(sattn.patterns.streaming(HQ, HKV, D, window=window, sinks=sinks,
                                                       dtype=dt))
    q, k, v = qkv(1, S, D, dtype)
    dout = randn(*q.shape, dtype=dtype)
    ref = reference_grads(q, k, v, dout, token_mask(S, S, window=window, sinks=sinks))
    check_grads("streaming w%d s%d" % (window, sinks), case_label(dt, 1, S, D), program,
                (q, k, v), dout, ref)


def block_mask_case(dt, S, D, causal, set_heads, block, density=0.2):
    dtype = DTYPES[dt]
    program = session.compile(sattn.patterns.block_mask(HQ, HKV, D, block=block, causal=causal,
                                                        set_heads=set_heads, dtype=dt))
    q, k, v = qkv(1, S, D, dtype)
    dout = randn(*q.shape, dtype=dtype)
    nb = -(-S // block)
    g = torch.Generator().manual_seed(S * 7 + D + set_heads)
    blocks = torch.rand(1, set_heads, nb, nb, generator=g) < density
    lst = sattn.block_list(blocks.to(DEV))
    mask = expand_blocks(blocks, block, block, S, S)
    if causal:
        mask = mask & token_mask(S, S)
    ref = reference_grads(q, k, v, dout, mask)
    label = case_label(dt, 1, S, D, " sets%d %.0f%%" % (set_heads, 100 * float(blocks.float()
                                                                             .mean())))
    check_grads("block_mask%s" % (" causal" if causal else ""), label, program,
                (q, k, v, lst), dout, ref)


def topk_case(dt, S, D, k_blocks, block):
    dtype = DTYPES[dt]
    program = session.compile(sattn.patterns.topk_blocks(HQ, HKV, D, k=k_blocks, block=block,
                                                         pool=block // 2, dtype=dt))
    q, k, v = qkv(1, S, D, dtype)
    dout = randn(*q.shape, dtype=dtype)
    _, report = program.run_selection(q, k, v, blocks=True)
    bq, bk = report["block_size"]
    blocks = torch.from_numpy(report["blocks"])
    mask = expand_blocks(blocks, bq, bk, S, S) & token_mask(S, S)
    ref = reference_grads(q, k, v, dout, mask)
    label = case_label(dt, 1, S, D, " k%d density %.2f" % (k_blocks, report["density"]))
    check_grads("topk_blocks", label, program, (q, k, v), dout, ref)


def saved_lse_case(dt, S, D):
    """out/lse from a variant with LSE give the recomputing path's gradients;
    SparseAttention (eager and compiled) matches the reference."""
    dtype = DTYPES[dt]
    plain = session.compile(sattn.patterns.dense(HQ, HKV, D, causal=True, dtype=dt))
    with_lse = session.compile(sattn.patterns.dense(HQ, HKV, D, causal=True, lse=True, dtype=dt))
    q, k, v = qkv(1, S, D, dtype)
    dout = randn(*q.shape, dtype=dtype)
    ref = reference_grads(q, k, v, dout, token_mask(S, S))
    o, lse = with_lse(q, k, v)
    label = case_label(dt, 1, S, D)
    for mode in ("fast", "deterministic"):
        det = mode == "deterministic"
        saved, ms = run_backward(plain, (q, k, v), dout, det, out=o, lse=lse)
        recomputed, _ = run_backward(plain, (q, k, v), dout, det)
        nans = nan_count(saved)
        err = max(rel_err(g, r) for g, r in zip(saved, ref[1:]))
        diff = max(rel_err(a, b.to(torch.float64)) for a, b in zip(saved, recomputed))
        same = all(torch.equal(a, b) for a, b in zip(saved, recomputed))
        # The same gradients up to the rounding of a recomputed O / LSE.
        ok = nans == 0 and err <= TOL and diff <= TOL / 4
        record("out/lse given", label, mode, err, nans, ms, ok=ok,
               note="vs recompute %s" % ("bit-equal" if same else "rel %.1e" % diff))

    for how in ("eager", "compiled"):
        attn = SparseAttention(with_lse)
        fn = attn
        if how == "compiled":
            if not hasattr(torch.library, "custom_op"):
                record("SparseAttention", label, how, ok="skip", note="torch < 2.4")
                continue
            fn = torch.compile(lambda a, b, c: attn(a, b, c), backend="aot_eager", fullgraph=True)
        leaves = [x.detach().clone().requires_grad_(True) for x in (q, k, v)]
        with Timer() as t:
            out = fn(*leaves)
            out.backward(dout)
        grads = [x.grad for x in leaves]
        nans = nan_count(grads) + nan_count([out])
        errs = [rel_err(out.detach(), ref[0])] + [rel_err(g, r) for g, r in zip(grads, ref[1:])]
        record("SparseAttention", label, how, max(errs), nans, t.ms,
               ok=nans == 0 and max(errs) <= TOL, note="o %.1e dq %.1e dk %.1e dv %.1e" %
               tuple(errs))


def error_cases():
    D, S = 64, 128
    program = session.compile(sattn.patterns.dense(HQ, HKV, D, causal=True))
    q, k, v = qkv(1, S, D, torch.bfloat16)
    dout = randn(*q.shape, dtype=torch.bfloat16)
    o = program(q, k, v)
    lse = torch.zeros(1, HQ, S, device=DEV, dtype=torch.float32)
    attn = SparseAttention(program)
    other = "cpu" if not CPU else "meta"
    cases = [
        ("out without lse", lambda: program.backward(q, k, v, dout=dout, out=o),
         "both out and lse"),
        ("lse shape", lambda: program.backward(q, k, v, dout=dout, out=o, lse=lse[:, :, 1:]),
         "lse must have shape"),
        ("grads shape", lambda: program.backward(q, k, v, dout=dout, grads=poisoned(q, q, v)),
         "dk must have shape"),
        ("autograd kv heads", lambda: attn(q, q, v), "input 'k' must have shape"),
        ("autograd devices", lambda: attn(q, k.to(other), v), "must be on one device"),
        ("autograd arg count", lambda: attn(q, k, v, v), "takes 3 inputs"),
    ]
    if not CPU:
        cases += [
            ("dout dtype", lambda: program.backward(q, k, v, dout=dout.float()),
             "dout must be torch.bfloat16"),
            ("grads dtype", lambda: program.backward(
                q, k, v, dout=dout, grads=tuple(x.float() for x in (q, k, v))),
             "dq must be torch.bfloat16"),
            ("autograd dtype", lambda: attn(q.half(), k, v), "must be torch.bfloat16"),
        ]
    for name, call, needle in cases:
        try:
            call()
        except ValueError as e:
            record("ValueError: " + name, ok=needle in str(e), note=str(e)[:70])
        except Exception as e:
            record("ValueError: " + name, type(e).__name__, ok=False, note=str(e)[:70])
        else:
            record("ValueError: " + name, "no error raised", ok=False)


def guarded(name, fn, *a, **kw):
    try:
        fn(*a, **kw)
    except Exception as e:
        record(name, type(e).__name__, ok=False, note=str(e).splitlines()[0][:70] if str(e)
               else "")
        traceback.print_exc()


# -- timing -------------------------------------------------------------------
def median_ms(step, warmup=3, reps=10):
    for _ in range(warmup):
        step()
    torch.cuda.synchronize(DEV)
    times = []
    for _ in range(reps):
        with Timer() as t:
            step()
        times.append(t.ms)
    return statistics.median(times)


def timing_lines():
    from torch.nn.attention import SDPBackend, sdpa_kernel
    B, H, S = 1, 32, 4096
    lines = []
    for D in (64, 128):
        q, k, v = (randn(B, H, S, D, dtype=torch.bfloat16).requires_grad_(True)
                   for _ in range(3))
        dout = randn(B, H, S, D, dtype=torch.bfloat16)
        program = session.compile(sattn.patterns.dense(H, H, D, causal=True, lse=True))
        attn = SparseAttention(program)

        def sattn_step():
            o = attn(q, k, v)
            torch.autograd.grad(o, (q, k, v), dout)

        sattn_ms = median_ms(sattn_step)
        torch_ms, backend = None, None
        for name, be in (("cuDNN", SDPBackend.CUDNN_ATTENTION),
                         ("flash (cuDNN unavailable)", SDPBackend.FLASH_ATTENTION)):
            def sdpa_step():
                with sdpa_kernel(be):
                    o = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
                torch.autograd.grad(o, (q, k, v), dout)
            try:
                torch_ms, backend = median_ms(sdpa_step), name
                break
            except RuntimeError as e:
                print("note: SDPA %s: %s" % (name, str(e).splitlines()[0][:100]))
        flops = 4 * B * H * S * S * D * (1 + 2.5) / 2  # causal fwd + bwd (bwd ~ 2.5 fwd)
        line = "timing bf16 causal B%d H%d S%d D%d: sattn fwd+bwd %.3f ms (%.0f TFLOP/s)" % (
            B, H, S, D, sattn_ms, flops / sattn_ms / 1e9)
        if torch_ms is not None:
            line += "; torch SDPA %s %.3f ms (%.0f TFLOP/s); sattn/torch %.2fx" % (
                backend, torch_ms, flops / torch_ms / 1e9, sattn_ms / torch_ms)
        lines.append(line)
    return lines


# -- run ----------------------------------------------------------------------
if CPU:  # the same logic at sizes the float64 CPU reference runs quickly
    for dt in ("bf16", "fp16"):
        guarded("dense causal", dense_case, dt, 77, 64, True, B=2)
        guarded("dense", dense_case, dt, 50, 64, False)
        guarded("streaming", streaming_case, dt, 90, 64, 24, 4)
        guarded("block_mask", block_mask_case, dt, 90, 64, True, HQ, 16, density=0.3)
        guarded("block_mask", block_mask_case, dt, 90, 64, False, HKV, 16, density=0.3)
        guarded("topk_blocks", topk_case, dt, 96, 64, 3, 16)
        guarded("out/lse given", saved_lse_case, dt, 77, 64)
else:
    for dt in ("bf16", "fp16"):
        guarded("dense causal", dense_case, dt, 200, 64, True)
        guarded("dense causal", dense_case, dt, 1000, 128, True, B=2)
        guarded("dense causal", dense_case, dt, 1536, 64, True)
        guarded("dense", dense_case, dt, 1000, 64, False)
        guarded("dense", dense_case, dt, 1536, 128, False)
        guarded("dense causal", dense_case, dt, 1000, 96, True)  # scalar forward, mma.sync backward
        guarded("streaming", streaming_case, dt, 1536, 128, 256, 4)
        guarded("streaming", streaming_case, dt, 1000, 64, 256, 4)
        guarded("block_mask", block_mask_case, dt, 1000, 128, True, HQ, 128)
        guarded("block_mask", block_mask_case, dt, 1536, 64, False, HQ, 128)
        guarded("block_mask", block_mask_case, dt, 200, 64, False, HQ, 128, density=0.5)
        guarded("block_mask", block_mask_case, dt, 1536, 128, True, HKV, 128)
        guarded("topk_blocks", topk_case, dt, 1536, 128, 4, 64)
        guarded("topk_blocks", topk_case, dt, 1000, 64, 4, 64)
        guarded("out/lse given", saved_lse_case, dt, 1000, 128)
        guarded("out/lse given", saved_lse_case, dt, 200, 64)
guarded("errors", error_cases)
timings = []
if TIMING:
    try:
        timings = timing_lines()
    except Exception as e:
        record("timing", type(e).__name__, ok=False, note=str(e).splitlines()[0][:70])
        traceback.print_exc()

# -- report -------------------------------------------------------------------
print()
print("%-26s %-36s %-13s %9s %5s %9s  %s" % ("check", "case", "mode", "max err", "NaN", "ms",
                                             "status"))
print("-" * 122)
for check, case, mode, err, nans, ms, status, note in results:
    print("%-26s %-36s %-13s %9s %5s %9s  %s%s" % (
        check[:26], case[:36], mode, "%.2e" % err if err is not None else "",
        nans if nans is not None else "", "%.3f" % ms if ms is not None else "", status,
        ("  " + note) if note else ""))
failed = [r for r in results if r[6] == "FAIL"]
print("-" * 122)
for line in timings:
    print(line)
print("%d checks, %d failed (tolerance: relative error <= %g against float64)"
      % (len(results), len(failed), TOL))
sys.exit(1 if failed or not results else 0)
