#!/usr/bin/env python3
"""GPU check of the Python package with PyTorch (run by hand on a GPU machine).

Not collected by pytest (its name does not match test_*.py). Imports torch
and Triton *first*, so libsattn.so (with its own, hidden LLVM) is loaded into
a process that already holds Triton's LLVM, then:

  * compiles dense causal (bf16, H=8 / Hkv=2, D=64 and 128; fp16 once; with
    LSE once), streaming and top-k variants and runs them on CUDA tensors,
    both BHSD-contiguous and as BSHD views (``x.transpose(1, 2)`` of a
    [B, S, H, D] tensor, no copy), with Sq == Skv and Sq < Skv;
  * compares with torch's scaled_dot_product_attention in float64 with the
    KV heads repeated for GQA and the mask built here (rel err <= 1e-2, no
    NaN; outputs are poisoned with NaN before every run);
  * runs every call inside ``torch.cuda.stream(s)`` behind a ~50 ms sleep
    kernel on s and synchronises only s: work issued to any other stream
    would finish before the NaN poison that precedes it on s and be caught;
  * runs a block set given as input (patterns.block_mask with a torch.int32
    list from sattn.block_list, unsorted with repeats), per head and per group;
  * checks that wrong shapes, dtypes, devices and layouts raise ValueError;
  * runs a tiny Triton kernel before and after sattn is loaded.

Prints a table; exits 1 on any failure, 2 if the environment is unusable.
Usage: python3 tests/python/gpu_torch_check.py [--allow-no-triton]
(libsattn.so from $SATTN_LIB, next to the package, or build/runtime/capi).
"""
import math
import os
import sys
import time
import traceback

ALLOW_NO_TRITON = "--allow-no-triton" in sys.argv

try:
    import torch
except ImportError:
    print("error: this check needs PyTorch with CUDA")
    sys.exit(2)
try:
    import triton
    import triton.language as tl
except ImportError:
    triton = None
    if not ALLOW_NO_TRITON:
        print("error: Triton is not installed; the point of this check is to load sattn next to "
              "Triton's LLVM (pass --allow-no-triton to run without it)")
        sys.exit(2)

if not torch.cuda.is_available():
    print("error: torch.cuda.is_available() is False")
    sys.exit(2)

results = []  # (check, detail, rel_err or None, nan count or None, ms or None, status)


def record(check, detail="", err=None, nans=None, ms=None, ok=True, note=""):
    results.append((check, detail, err, nans, ms, "ok" if ok is True else ok or "FAIL", note))


# -- Triton before sattn ------------------------------------------------------
if triton is not None:
    @triton.jit
    def _add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + tl.load(y_ptr + offs, mask=mask),
                 mask=mask)


def triton_add_ok():
    x = torch.arange(1000, device="cuda", dtype=torch.float32)
    out = torch.empty_like(x)
    _add_kernel[(triton.cdiv(1000, 256),)](x, x, out, 1000, BLOCK=256)
    torch.cuda.synchronize()
    return bool(torch.equal(out, 2 * x))


triton_before = None
if triton is not None:
    try:
        triton_before = triton_add_ok()
        record("triton kernel before sattn", "triton " + triton.__version__, ok=triton_before)
    except Exception as e:  # Triton itself unusable here: not sattn's fault
        triton_before = None
        record("triton kernel before sattn", type(e).__name__, ok="skip",
               note=str(e).splitlines()[0][:60] if str(e) else "")

# -- sattn --------------------------------------------------------------------
try:
    import sattn
except ImportError:
    here = os.path.dirname(os.path.abspath(__file__))
    for cand in (os.path.join(here, "..", "..", "python"), os.path.join(here, "..", "python"),
                 os.path.join(here, "python")):
        if os.path.isfile(os.path.join(cand, "sattn", "__init__.py")):
            sys.path.insert(0, os.path.abspath(cand))
            break
    import sattn

try:
    session = sattn.Session("gpu")
except Exception as e:
    print("error: cannot open a sattn GPU session: %s" % e)
    sys.exit(2)
print("sattn %s from %s on %s; torch %s%s" % (
    sattn.library_version(), sattn.library_path(), session.device_name, torch.__version__,
    ", triton " + triton.__version__ if triton is not None else ""))

DEV = torch.device("cuda", int(os.environ.get("SATTN_DEVICE", "0") or 0))
torch.cuda.set_device(DEV)
gen = torch.Generator(device=DEV)
gen.manual_seed(0)
SLEEP_CYCLES = int(1e8)  # ~50 ms: the program's kernels queue behind it on s


def make(B, S, H, D, dtype, layout):
    """A [B, H, S, D] tensor, BHSD-contiguous, a BSHD transpose view, or
    "odd": the first D elements of rows of D + 4 (row stride 2 D + 8 bytes,
    not a multiple of 16), which TMA cannot describe: the wgmma kernel's
    copy-load variant, compiled on first use, runs it."""
    if layout == "bshd":
        return torch.randn(B, S, H, D, device=DEV, dtype=torch.float32, generator=gen).to(
            dtype).transpose(1, 2)
    if layout == "odd":
        return torch.randn(B, H, S, D + 4, device=DEV, dtype=torch.float32, generator=gen).to(
            dtype)[..., :D]
    return torch.randn(B, H, S, D, device=DEV, dtype=torch.float32, generator=gen).to(dtype)


def reference(q, k, v, causal=True, window=0, sinks=0, block=0, kept=None):
    """float64 SDPA with repeated KV heads and a bottom-right-aligned mask."""
    B, H, Sq, D = q.shape
    Hkv, Skv = k.shape[1], k.shape[2]
    q64, k64, v64 = (x.to(torch.float64) for x in (q, k, v))
    k64 = k64.repeat_interleave(H // Hkv, dim=1)
    v64 = v64.repeat_interleave(H // Hkv, dim=1)
    i = torch.arange(Sq, device=DEV)[:, None] + (Skv - Sq)
    j = torch.arange(Skv, device=DEV)[None, :]
    mask = torch.ones(Sq, Skv, dtype=torch.bool, device=DEV)
    if causal:
        mask &= j <= i
    if window:
        mask &= (j > i - window) | (j < sinks)
    if kept is not None:  # kept(I) -> KV block indices of query block I
        bm = torch.zeros(Sq, Skv, dtype=torch.bool, device=DEV)
        for I in range((Sq + block - 1) // block):
            for J in kept(I):
                bm[I * block:(I + 1) * block, J * block:(J + 1) * block] = True
        mask &= bm
    o = torch.nn.functional.scaled_dot_product_attention(q64, k64, v64, attn_mask=mask)
    s = (q64 @ k64.transpose(-1, -2)) / math.sqrt(D)
    lse = torch.logsumexp(s.masked_fill(~mask, float("-inf")), dim=-1)
    return o, lse


def rel_err(x, ref):
    x = x.to(torch.float64)
    return float(torch.linalg.vector_norm(x - ref) / torch.linalg.vector_norm(ref))


def run_on_side_stream(program, q, k, v, out, lse=None):
    """Runs `program` inside torch.cuda.stream(s) behind a sleep kernel and a
    NaN poison of the outputs on s; synchronises only s. Returns ms."""
    s = torch.cuda.Stream(device=DEV)
    s.wait_stream(torch.cuda.current_stream(DEV))
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    with torch.cuda.stream(s):
        torch.cuda._sleep(SLEEP_CYCLES)
        out.fill_(float("nan"))
        if lse is not None:
            lse.fill_(float("nan"))
        start.record(s)
        if lse is not None:
            program(q, k, v, out=out, lse=lse)
        else:
            program(q, k, v, out=out)
        end.record(s)
    s.synchronize()
    return start.elapsed_time(end)


def check_attention(name, program, shape, dtype, layout, tol=1e-2, **mask):
    B, H, Hkv, Sq, Skv, D = shape
    q = make(B, Sq, H, D, dtype, layout)
    k = make(B, Skv, Hkv, D, dtype, layout)
    v = make(B, Skv, Hkv, D, dtype, layout)
    if layout == "bshd":
        out = torch.empty(B, Sq, H, D, device=DEV, dtype=dtype).transpose(1, 2)
    else:
        out = torch.empty(B, H, Sq, D, device=DEV, dtype=dtype)
    with_lse = len(program.outputs) == 2
    lse = torch.empty(B, H, Sq, device=DEV, dtype=torch.float32) if with_lse else None
    ms = run_on_side_stream(program, q, k, v, out, lse)
    ref, ref_lse = reference(q, k, v, **mask)
    nans = int(torch.isnan(out).sum()) + (int(torch.isnan(lse).sum()) if with_lse else 0)
    err = rel_err(out, ref)
    if with_lse:
        err = max(err, rel_err(lse, ref_lse))
    detail = "%s B%d H%d/%d Sq%d Skv%d D%d %s" % (
        str(dtype).replace("torch.", ""), B, H, Hkv, Sq, Skv, D, layout)
    record(name, detail, err, nans, ms, ok=nans == 0 and err <= tol)
    # Also the default-allocated output (torch.empty like q).
    o2 = program(q, k, v)
    o2 = o2[0] if isinstance(o2, tuple) else o2
    torch.cuda.current_stream(DEV).synchronize()
    if o2.shape != q.shape or o2.dtype != dtype or o2.device != q.device:
        record(name + " (allocated out)", "%s %s" % (tuple(o2.shape), o2.dtype), ok=False)
    return q, k, v, out


def guarded(name, fn):
    try:
        fn()
    except Exception as e:
        record(name, type(e).__name__, ok=False, note=str(e).splitlines()[0][:70])
        traceback.print_exc()


def dense_cases():
    for D in (64, 128):
        program = session.compile(sattn.patterns.dense(8, 2, D, causal=True))
        if not program.cuda_source or len(program.key) != 64:
            record("dense causal inspect", "D%d" % D, ok=False, note="no CUDA source or key")
        for layout in ("bhsd", "bshd", "odd"):
            check_attention("dense causal", program, (2, 8, 2, 1024, 1024, D), torch.bfloat16,
                            layout, causal=True)
        check_attention("dense causal", program, (1, 8, 2, 256, 1000, D), torch.bfloat16, "bshd",
                        causal=True)
    fp16 = session.compile(sattn.patterns.dense(8, 2, 128, causal=True), dtype="fp16")
    check_attention("dense causal fp16", fp16, (2, 8, 2, 777, 777, 128), torch.float16, "bhsd",
                    causal=True)
    with_lse = session.compile(sattn.patterns.dense(8, 2, 128, causal=True, lse=True))
    check_attention("dense causal + LSE", with_lse, (1, 8, 2, 512, 512, 128), torch.bfloat16,
                    "bshd", causal=True)
    not_causal = session.compile(sattn.patterns.dense(8, 2, 64, causal=False))
    check_attention("dense", not_causal, (1, 8, 2, 300, 500, 64), torch.bfloat16, "bhsd",
                    causal=False)


def streaming_cases():
    program = session.compile(sattn.patterns.streaming(8, 2, 128, window=256, sinks=4))
    for layout in ("bhsd", "bshd", "odd"):
        check_attention("streaming w256 s4", program, (2, 8, 2, 1024, 1024, 128), torch.bfloat16,
                        layout, causal=True, window=256, sinks=4)


def topk_cases():
    S, block = 1024, 64
    nblocks = S // block
    every = session.compile(sattn.patterns.topk_blocks(8, 2, 128, k=nblocks, block=block,
                                                       pool=32))
    check_attention("topk keep-all", every, (2, 8, 2, S, S, 128), torch.bfloat16, "bshd",
                    causal=True)
    forced = session.compile(sattn.patterns.topk_blocks(8, 2, 64, k=2, block=block, pool=32))
    check_attention("topk k=2 (sink+diag)", forced, (2, 8, 2, S, S, 64), torch.bfloat16, "bhsd",
                    causal=True, block=block, kept=lambda I: {0, I})
    # A real selection: rows of the first 4 query blocks see at most 4 blocks,
    # so they match dense attention whatever the scores are.
    sparse = session.compile(sattn.patterns.topk_blocks(8, 2, 128, k=4, block=block, pool=32))
    q, k, v, out = check_attention("topk k=4 (first blocks)", sparse, (1, 8, 2, S, S, 128),
                                   torch.bfloat16, "bshd", tol=float("inf"), causal=True)
    ref, _ = reference(q, k, v, causal=True)
    rows = slice(0, 4 * block)
    err = rel_err(out[:, :, rows], ref[:, :, rows])
    whole = rel_err(out, ref)
    record("topk k=4 rows<4 blocks", "vs dense; whole-tensor err %.3f" % whole, err,
           int(torch.isnan(out).sum()), ok=err <= 1e-2 and whole > 1e-3)


def block_mask_cases():
    """A block set given as input: a torch.int32 CUDA list from sattn.block_list."""
    S, block = 1000, 128  # a partial last block
    nb = -(-S // block)
    g = torch.Generator().manual_seed(3)
    m = (torch.rand(nb, nb, generator=g) < 0.3) | torch.eye(nb, dtype=torch.bool)
    kept = lambda I: set(torch.nonzero(m[I]).flatten().tolist())  # noqa: E731
    for set_heads, causal in ((8, False), (2, True)):
        program = session.compile(sattn.patterns.block_mask(8, 2, 128, block=block, causal=causal,
                                                            set_heads=set_heads))
        q = make(2, S, 8, 128, torch.bfloat16, "bshd")
        k = make(2, S, 2, 128, torch.bfloat16, "bshd")
        v = make(2, S, 2, 128, torch.bfloat16, "bshd")
        lst = sattn.block_list(m.to(DEV).expand(2, set_heads, nb, nb))
        lst = torch.cat([lst.flip(-1), lst[..., :1]], dim=-1).contiguous()  # unsorted, repeats
        out = torch.full((2, 8, S, 128), float("nan"), device=DEV, dtype=torch.bfloat16)
        program(q, k, v, lst, out=out)
        torch.cuda.current_stream(DEV).synchronize()
        ref, _ = reference(q, k, v, causal=causal, block=block, kept=kept)
        nans = int(torch.isnan(out).sum())
        err = rel_err(out, ref)
        record("block_mask input", "set heads %d causal %s S%d" % (set_heads, causal, S), err,
               nans, ok=nans == 0 and err <= 1e-2)
    try:
        program(q, k, v, lst.long())
    except ValueError as e:
        record("ValueError: int64 list", "", ok="must be torch.int32" in str(e), note=str(e)[:70])
    else:
        record("ValueError: int64 list", "no error raised", ok=False)


def error_cases():
    program = session.compile(sattn.patterns.dense(8, 2, 64, causal=True))
    B, S = 1, 128
    q = make(B, S, 8, 64, torch.bfloat16, "bhsd")
    k = make(B, S, 2, 64, torch.bfloat16, "bhsd")
    v = make(B, S, 2, 64, torch.bfloat16, "bhsd")
    cases = [
        ("kv heads", lambda: program(q, make(B, S, 4, 64, torch.bfloat16, "bhsd"), v),
         "input 'k' must have shape"),
        ("head dim", lambda: program(make(B, S, 8, 128, torch.bfloat16, "bhsd"), k, v),
         "dimension 3 is 128, expected 64"),
        ("rank", lambda: program(q[0], k, v), "must have rank 4"),
        ("dtype", lambda: program(q.half(), k, v), "must be torch.bfloat16, got torch.float16"),
        ("device", lambda: program(q.cpu(), k, v), "runs on the GPU"),
        ("last dim stride", lambda: program(q.transpose(2, 3).contiguous().transpose(2, 3), k, v),
         "contiguous last dimension"),
        ("out shape", lambda: program(q, k, v, out=torch.empty(B, 8, S - 1, 64, device=DEV,
                                                                dtype=torch.bfloat16)),
         "out must have shape"),
        ("arg count", lambda: program(q, k, v, v), "takes 3 inputs"),
        ("batch", lambda: program(q, make(2, S, 2, 64, torch.bfloat16, "bhsd"), v),
         "has batch 2 but q has batch 1"),
    ]
    for name, call, needle in cases:
        try:
            call()
        except ValueError as e:
            record("ValueError: " + name, "", ok=needle in str(e), note=str(e)[:70])
        except Exception as e:
            record("ValueError: " + name, type(e).__name__, ok=False, note=str(e)[:70])
        else:
            record("ValueError: " + name, "no error raised", ok=False)


def workspace_cases():
    """The workspace pool keeps its reservation between calls; released, the
    next run allocates again and stays correct."""
    torch.cuda.synchronize(DEV)
    released = session.release_workspace()
    record("release_workspace", "%d bytes" % released, ok=released >= 0)
    program = session.compile(sattn.patterns.dense(8, 2, 64, causal=True))
    check_attention("dense causal after release", program, (1, 8, 2, 300, 300, 64),
                    torch.bfloat16, "bhsd", causal=True)


for name, fn in (("dense", dense_cases), ("streaming", streaming_cases), ("topk", topk_cases),
                 ("block_mask", block_mask_cases), ("errors", error_cases),
                 ("workspace", workspace_cases)):
    guarded(name, fn)

if triton is not None and triton_before:
    try:
        record("triton kernel after sattn", "", ok=triton_add_ok())
    except Exception as e:
        record("triton kernel after sattn", type(e).__name__, ok=False, note=str(e)[:70])

# -- report -------------------------------------------------------------------
print()
print("%-28s %-44s %9s %5s %8s  %s" % ("check", "case", "rel_err", "NaN", "ms", "status"))
print("-" * 110)
for check, detail, err, nans, ms, status, note in results:
    print("%-28s %-44s %9s %5s %8s  %s%s" % (
        check[:28], detail[:44], "%.2e" % err if err is not None else "",
        nans if nans is not None else "", "%.3f" % ms if ms is not None else "", status,
        ("  " + note) if note else ""))
failed = [r for r in results if r[5] == "FAIL"]
print("-" * 110)
print("%d checks, %d failed" % (len(results), len(failed)))
sys.exit(1 if failed or not results else 0)
