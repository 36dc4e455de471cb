#!/usr/bin/env python3
"""Fidelity of sattn's XAttention selection against the reference (issue #7).

Runs sattn's `patterns.xattention` and the reference `xattn_estimate`
(mit-han-lab/x-attention, staged uncommitted by stage_reference.sh) on the
same q, k and compares the selected 128 x 128 blocks per (head, query block):

  agreement      share of causally valid (head, q-block, k-block) pairs where
                 both masks agree (the issue asks >= 0.99)
  row agreement  share of (head, q-block) rows whose block sets are identical
  density        selected / causally valid pairs, for each side
  scores, rule   sattn's selection rule (semantics 6) applied to the
                 reference's attn_sums, compared with sattn's mask (does the
                 estimate agree?) and with the reference's mask (do the rules?)

Reference runs (--refs): "torch" (its PyTorch path in bf16: what it runs on an
H200, whose name fails its "100" check), "triton" (its Triton kernels in bf16,
what it runs on A100/H100: forced here) and "torch-fp32" (its PyTorch path on
the same bf16 values widened to float32: no bf16 rounding of logits and block
sums, so it separates rounding from semantic differences). Exits 1 when any
run of the gated slack (--gate-slack) is below --min-agreement (on
`agreement`, or `scores` with --gate scores).

Read from the code: with Sq = Skv the first chunk's find_blocks_chunked runs
at current_index 0, where its diagonal overwrites the forced block 0; it then
keeps the shortest prefix of (diagonal, the others with block 0 by descending
score) reaching tau, plus the next block, plus block 0: one block per row more
than semantics 6's rule. sattn runs with --slacks (default 0 and 1): slack 0 is
the paper's rule (expect `rule` < 1), slack 1 keeps one more block past tau and
should reproduce the reference.

  bash bench/fidelity/stage_reference.sh GIT_DIR     # -> build/ext/x-attention
  python3 bench/fidelity/xattention_fidelity.py --ref-dir build/ext/x-attention --json out.json

  python3 bench/fidelity/xattention_fidelity.py --device cpu --heads 8 --kv-heads 2 \
      --seqs 2048 --refs torch,torch-fp32      # sattn's float64 executor, their torch path

Needs torch, triton (on the GPU) and libsattn.so (repository or bundle).
"""
import argparse
import contextlib
import importlib.util
import io
import json
import math
import os
import re
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

BLOCK, HEADS, KV_HEADS, D = 128, 32, 8, 128

# What we pass to xattn_estimate beyond q, k, stride and threshold, and why.
REF_OPTIONS = [
    ("block_size=128", "sattn's variant selects 128 x 128 blocks"),
    ("norm=1", "logit scale 1/(sqrt(D) * stride), semantics 4a (theirs: 1/sqrt(D)/stride/norm)"),
    ("softmax=True", "4a takes a softmax over each regrouped row"),
    ("select_mode='inverse'", "reversed queries: 4a's antidiagonals (what Xattention_prefill passes)"),
    ("kdb=1", "every regrouped row is scored (kdb > 1 subsamples them)"),
    ("causal=True", "the variant is causal; Sq = Skv, so their block-aligned and our token-aligned "
                    "causal masks coincide"),
    ("chunk_size=Xattention_prefill's rule", "= S for S <= 16k: one chunk, as sattn does not chunk "
                                             "(with several chunks dividing S, their torch path "
                                             "also masks the earlier chunks' columns)"),
    ("keep_sink=False, keep_recent=False", "find_blocks_chunked (prefill, causal) already keeps "
                                           "the diagonal and block 0, as forced<sink = 1, diagonal> "
                                           "does; keep_sink=True would set all of query-block row 0"),
    ("k repeated to 32 heads", "xattn_estimate asserts Hq == Hkv; repeat_interleave gives query head h "
                              "KV head h / 4, as semantics 2 reads GQA"),
]


def prefill_chunk_size(k_len):
    """The chunk size Xattention_prefill picks when given none (its rule)."""
    p = 1 << (k_len - 1).bit_length()
    return int(max(min(max(2048, p), 128 * 1024 * 2048 // p), 2048))


def load_reference(ref_dir):
    """xattn_estimate from the staged files, without editing them."""
    # Xattention.py imports block_sparse_attn (a CUDA extension used only by
    # Xattention_prefill's attention step) at top level; the estimate never
    # calls it. Stub it when absent so the module imports with torch + triton.
    if importlib.util.find_spec("block_sparse_attn") is None:
        stub = types.ModuleType("block_sparse_attn")

        def block_sparse_attn_func(*args, **kwargs):
            raise RuntimeError("block_sparse_attn is stubbed by xattention_fidelity.py")
        stub.block_sparse_attn_func = block_sparse_attn_func
        sys.modules["block_sparse_attn"] = stub
    mod, rev = import_staged(ref_dir, "xattn.src.Xattention",
                             os.path.join("xattn", "src", "Xattention.py"))
    return mod.xattn_estimate, rev


@contextlib.contextmanager
def device_name_passes_triton_check(enabled):
    """xattn_estimate drops to its torch path unless the GPU's name contains
    "100" (A100/H100); an H200 fails that. For the "triton" run, report a name
    that passes, for the duration of the call only."""
    if not enabled:
        yield
        return
    real = torch.cuda.get_device_properties

    class Props:
        def __init__(self, props):
            self._props = props

        @property
        def name(self):
            return self._props.name + " (treated as x100 by xattention_fidelity.py)"

        def __getattr__(self, attr):
            return getattr(self._props, attr)

    torch.cuda.get_device_properties = lambda *a, **kw: Props(real(*a, **kw))
    try:
        yield
    finally:
        torch.cuda.get_device_properties = real


@contextlib.contextmanager
def cuda_moves_stay_on_cpu(enabled):
    """For --device cpu: xattn_estimate moves its padded tensors with
    .to("cuda") and asks the CUDA device's name (to choose Triton). For the
    duration of the call, .to("cuda") keeps a tensor where it is and the name
    fails the Triton check, so its torch path runs on the CPU unchanged."""
    if not enabled:
        yield
        return
    real_to, real_props, real_cur = (torch.Tensor.to, torch.cuda.get_device_properties,
                                     torch.cuda.current_device)

    def to(self, *args, **kwargs):
        args = tuple("cpu" if (isinstance(x, str) and x.startswith("cuda")) or
                     (isinstance(x, torch.device) and x.type == "cuda") else x for x in args)
        if str(kwargs.get("device", "")).startswith("cuda"):
            kwargs["device"] = "cpu"
        return real_to(self, *args, **kwargs)
    torch.Tensor.to = to
    torch.cuda.get_device_properties = lambda *a, **kw: types.SimpleNamespace(name="cpu")
    torch.cuda.current_device = lambda: 0
    try:
        yield
    finally:
        torch.Tensor.to = real_to
        torch.cuda.get_device_properties, torch.cuda.current_device = real_props, real_cur


def reference_mask(xattn_estimate, q, k, stride, tau, impl):
    """(block sums [B, H, nQB, nKB] float32, mask bool, the path that ran)."""
    B, H, S, _ = q.shape
    nb = S // BLOCK
    dtype = torch.float32 if impl == "torch-fp32" else q.dtype
    use_triton = impl == "triton"
    k_rep = k.repeat_interleave(H // k.shape[1], dim=1)
    log = io.StringIO()
    with device_name_passes_triton_check(use_triton), cuda_moves_stay_on_cpu(q.device.type == "cpu"), \
            contextlib.redirect_stdout(log):
        sums, mask = xattn_estimate(
            q.to(dtype), k_rep.to(dtype), block_size=BLOCK, stride=stride, norm=1, softmax=True,
            threshold=tau, chunk_size=prefill_chunk_size(S), select_mode="inverse",
            use_triton=use_triton, causal=True, kdb=1, keep_sink=False, keep_recent=False)
    # Their padding to a whole chunk adds blocks past the sequence: drop them.
    ran = "triton" if use_triton and "use triton to false" not in log.getvalue() else "torch"
    return sums[:, :, :nb, :nb].float(), mask[:, :, :nb, :nb].bool(), ran


def antidiag_row_scores(q, k, h, qb, stride):
    """Semantics 4a block scores of one (head, query block) row in float32,
    recomputed here for diagnosis (sattn reports no scores); [nKB]."""
    S = q.shape[2]
    rows = torch.arange(qb * BLOCK // stride, (qb + 1) * BLOCK // stride, device=q.device)
    t = torch.arange(stride, device=q.device)
    qr = q[0, h].float()[rows[:, None] * stride + stride - 1 - t[None, :]].reshape(len(rows), -1)
    kr = k[0, h // (q.shape[1] // k.shape[1])].float().reshape(S // stride, stride * D)
    logits = qr @ kr.T / (math.sqrt(D) * stride)
    cols = torch.arange(S // stride, device=q.device)
    logits = logits.masked_fill(cols[None, :] * stride > (rows[:, None] * stride + stride - 1),
                                float("-inf"))
    return logits.softmax(-1).sum(0).reshape(-1, BLOCK // stride).sum(-1)


def sattn_rule(scores, tau, slack=0):
    """Semantics 6 (cumulative tau plus `slack` blocks, forced sink 1 + diagonal,
    ties to the lower index) applied to given block scores [B, H, nQB, nKB],
    Sq = Skv. On the
    reference's attn_sums it splits a mismatch into one of scores (sattn vs
    this) and one of selection rules (this vs the reference's mask)."""
    nb = scores.shape[-1]
    j = torch.arange(nb, device=scores.device)
    visible = j[None, :] <= j[:, None]
    forced = (j[None, :] == 0) | (j[None, :] == j[:, None])
    s = scores.double().masked_fill(~visible, 0)
    total = s.sum(-1, keepdim=True)
    kept_mass = s.masked_fill(~forced, 0).sum(-1, keepdim=True)
    # Candidates by descending score, lower index first on ties (stable
    # sort); forced and invisible blocks get -1 and come last, never kept.
    key = s.masked_fill(forced | ~visible, -1.0)
    sv, order = key.sort(dim=-1, descending=True, stable=True)
    gain = sv.clamp(min=0)
    before = kept_mass + gain.cumsum(-1) - gain  # mass kept before each candidate
    keep = (before < tau * total) & (sv >= 0)
    # `before` grows along the order, so `keep` is a prefix: extend it.
    rank = torch.arange(nb, device=scores.device)
    keep = (rank < keep.sum(-1, keepdim=True) + slack) & (sv >= 0)
    chosen = torch.zeros_like(keep).scatter_(-1, order, keep)
    return (chosen | forced) & visible


def show_differences(ours, theirs, ref_sums, q, k, stride, tau, limit, what="reference"):
    """Prints up to `limit` rows whose sets differ, with each side's shares."""
    diff = (ours != theirs).any(-1)[0]  # [H, nQB], batch 0
    for h, qb in diff.nonzero().tolist()[:limit]:
        s4a = antidiag_row_scores(q, k, h, qb, stride)
        s4a = s4a / s4a.sum()
        ref = ref_sums[0, h, qb] / ref_sums[0, h, qb].sum()
        o, t = ours[0, h, qb], theirs[0, h, qb]
        print("    head %d q-block %d: sattn keeps %d blocks (fp32 4a share %.4f), %s %d "
              "(fp32 4a share %.4f, by the reference's attn_sums %.4f); tau %.2f"
              % (h, qb, int(o.sum()), float(s4a[o].sum()), what, int(t.sum()),
                 float(s4a[t].sum()), float(ref[t].sum()), tau))
        for j in (o != t).nonzero().flatten().tolist()[:8]:
            print("      block %3d  sattn %d  other %d  fp32 4a score %.5f  ref attn_sum %.5f"
                  % (j, int(o[j]), int(t[j]), float(s4a[j]), float(ref[j])))


def make_inputs(kind, S, seed, device):
    dev = "cuda" if device == "gpu" else "cpu"
    if kind == "structured":
        q, k, _ = structured_qkv(S, HEADS, KV_HEADS, D, seed=seed, device=dev)
        return q, k
    g = torch.Generator(device=dev).manual_seed(seed)
    q = torch.randn(1, HEADS, S, D, generator=g, device=dev, dtype=torch.bfloat16)
    k = torch.randn(1, KV_HEADS, S, D, generator=g, device=dev, dtype=torch.bfloat16)
    return q, k


def variant_text(stride, tau, slack):
    """The variant's IR and where it came from: the patterns.xattention builder,
    or, for a package or libsattn.so without it, the example with stride and
    tau substituted (its heads, head dim and dtype are the cases')."""
    builder = getattr(sattn.patterns, "xattention", None)
    if builder is not None:
        try:
            return (builder(HEADS, KV_HEADS, D, stride=stride, tau=tau, slack=slack),
                    "patterns.xattention")
        except (sattn.Error, TypeError):
            pass
    with open(os.path.join(ROOT, "examples", "patterns", "xattention.mlir")) as f:
        text = f.read()
    text = re.sub(r"stride = \d+ : i64", "stride = %d : i64" % stride, text)
    text = re.sub(r"tau = [-+0-9.eE]+ : f64", "tau = %r : f64" % tau, text)
    if slack:
        text = re.sub(r"(select_blocks cumulative[^{]*\{)", r"\1slack = %d : i64, " % slack, text)
    return text, "examples/patterns/xattention.mlir"


def compile_variant(session, stride, tau, slack):
    text, source = variant_text(stride, tau, slack)
    m = re.search(r"tau = ([-+0-9.eE]+) : f64", text)
    has_slack = ("slack = %d : i64" % slack) in text if slack else "slack" not in text
    if ("stride = %d :" % stride) not in text or not m or abs(float(m.group(1)) - tau) > 1e-9 \
            or not has_slack:
        sys.exit("%s gives no stride %d / tau %g / slack %d:\n%s"
                 % (source, stride, tau, slack, text))
    print("variant: %s, stride %d, tau %g, slack %d" % (source, stride, tau, slack))
    return session.compile(text)


def sattn_problems(ours, reported, valid):
    """What is wrong with sattn's read-out mask itself, if anything."""
    problems = []
    density = float(ours[:, :, valid].float().mean())
    if reported is not None and abs(reported - density) > 1e-6:
        problems.append("read-out density %.6f != reported %.6f" % (density, reported))
    diag = torch.arange(valid.shape[0], device=ours.device)
    if not (ours[..., 0].all() and ours[..., diag, diag].all() and not ours[:, :, ~valid].any()):
        problems.append("sattn's mask lacks a forced block or has a non-causal one")
    return density, problems


def run_case(session, xattn_estimate, q, k, case, a):
    """One (inputs, S, stride, tau): every reference run once, then sattn with
    each slack against each of them."""
    S, stride, tau = case["S"], case["stride"], case["tau"]
    nb = S // BLOCK
    valid = torch.ones(nb, nb, dtype=torch.bool, device=q.device).tril()  # Sq = Skv
    label = "%-10s S %5d stride %2d tau %.2f" % (case["inputs"], S, stride, tau)
    refs, out = [], []
    for impl in a.refs.split(","):
        try:
            refs.append((impl, reference_mask(xattn_estimate, q, k, stride, tau, impl)))
        except Exception as e:  # e.g. their Triton kernels on this GPU / Triton version
            for slack in a.slacks:
                r = dict(case, slack=slack, ref=impl, error="%s: %s" % (type(e).__name__, e),
                         gated=slack == a.gate_slack)
                r["pass"] = False
                out.append(r)
            print("%s ref %-10s FAILED: %s" % (label, impl, out[-1]["error"]))
    # The reference's own runs against each other (bf16 torch vs bf16 Triton,
    # ...): how far its masks move with nothing but the order and precision
    # of its own sums, the noise floor for sattn's agreement.
    for i in range(len(refs)):
        for j in range(i + 1, len(refs)):
            (ni, (_, mi, _)), (nj, (_, mj, _)) = refs[i], refs[j]
            print("%s reference %s vs reference %s: agreement %.4f"
                  % (label, ni, nj, agreement(mi, mj, valid)))
            out.append(dict(case, ref="%s~%s" % (ni, nj), self_agreement=agreement(mi, mj, valid),
                            gated=False, **{"pass": True}))
    for slack in a.slacks:
        ours, reported = sattn_mask(compile_variant(session, stride, tau, slack), q, k, a.device,
                                     BLOCK)
        density, problems = sattn_problems(ours, reported, valid)
        for impl, (sums, theirs, ran) in refs:
            r = dict(case, slack=slack, ref=impl, gated=slack == a.gate_slack)
            same = ours == theirs
            ruled = sattn_rule(sums, tau, slack)
            r.update(ran=ran, agreement=agreement(ours, theirs, valid),
                     row_agreement=float(same.all(-1).float().mean()),
                     scores_agreement=agreement(ours, ruled, valid),
                     rule_agreement=agreement(ruled, theirs, valid), density_sattn=density,
                     density_ref=float(theirs[:, :, valid].float().mean()),
                     density_reported=reported, differing_pairs=int((~same).sum()),
                     valid_pairs=int(valid.sum()) * q.shape[1], problems=problems)
            gated = r["scores_agreement" if a.gate == "scores" else "agreement"]
            r["pass"] = gated >= a.min_agreement and not problems
            print("%s slack %d ref %-10s (ran %s): agreement %.4f, rows %.4f (same rule on "
                  "their scores: scores %.4f, rule %.4f), density sattn %.4f ref %.4f%s"
                  % (label, slack, impl, ran, r["agreement"], r["row_agreement"],
                     r["scores_agreement"], r["rule_agreement"], density, r["density_ref"],
                     "  PROBLEM: " + "; ".join(problems) if problems else ""))
            if not r["pass"] and r["gated"]:
                if a.gate == "scores":
                    show_differences(ours, ruled, sums, q, k, stride, tau, a.show,
                                     "sattn's rule on the reference's attn_sums")
                else:
                    show_differences(ours, theirs, sums, q, k, stride, tau, a.show)
            out.append(r)
    return out


def print_table(results, gate, min_agreement):
    print("\n%-10s %5s %6s %4s %5s %-10s %-6s %9s %7s %7s %7s %8s %8s %s"
          % ("inputs", "S", "stride", "tau", "slack", "ref", "ran", "agreement", "rows", "scores", "rule",
             "d_sattn", "d_ref", "ok"))
    for r in results:
        head = "%-10s %5d %6d %4.2f %5s %-10s" % (r["inputs"], r["S"], r["stride"], r["tau"],
                                                  r.get("slack", "-"), r["ref"])
        if "error" in r:
            print("%s error: %s" % (head, r["error"][:60]))
        elif "self_agreement" in r:
            print("%s %-6s %9.4f  (the reference against itself)" % (head, "", r["self_agreement"]))
        else:
            print("%s %-6s %9.4f %7.4f %7.4f %7.4f %8.4f %8.4f %s"
                  % (head, r["ran"], r["agreement"], r["row_agreement"], r["scores_agreement"],
                     r["rule_agreement"], r["density_sattn"], r["density_ref"],
                     ("yes" if r["pass"] else "NO") + ("" if r["gated"] else " (not gated)")))
    gated = [r for r in results if r["gated"]]
    print("%d/%d gated runs pass (%s >= %.2f)" % (sum(r["pass"] for r in gated), len(gated), gate,
                                                   min_agreement))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref-dir", default=os.path.join(ROOT, "build", "ext", "x-attention"))
    ap.add_argument("--device", choices=["gpu", "cpu"], default="gpu",
                    help="where sattn runs (cpu: its float64 reference executor; the "
                         "reference then runs its torch path on the CPU)")
    ap.add_argument("--seqs", type=csv_of(int), default=[4096, 8192, 16384])
    ap.add_argument("--strides", type=csv_of(int), default=[8, 16])
    ap.add_argument("--taus", type=csv_of(float), default=[0.9, 0.8])
    ap.add_argument("--inputs", type=csv_of(str), default=["random", "structured"])
    ap.add_argument("--refs", default="torch,triton,torch-fp32")
    ap.add_argument("--slacks", type=csv_of(int), default=[0, 1],
                    help="sattn variants: blocks kept past tau (0: paper, 1: reference prefill)")
    ap.add_argument("--gate-slack", type=int, default=1,
                    help="the slack whose runs decide the exit status")
    ap.add_argument("--heads", type=int, default=HEADS)
    ap.add_argument("--kv-heads", type=int, default=KV_HEADS)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--min-agreement", type=float, default=0.99)
    ap.add_argument("--gate", choices=["agreement", "scores"], default="agreement",
                    help="what must reach --min-agreement: agreement with the reference's mask, "
                         "or (scores) with sattn's rule applied to the reference's attn_sums")
    ap.add_argument("--show", type=int, default=3, help="differing rows printed per failing run")
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    globals().update(HEADS=a.heads, KV_HEADS=a.kv_heads)
    for S in a.seqs:
        if S % BLOCK:
            sys.exit("--seqs must be multiples of %d, got %d" % (BLOCK, S))
    # The fp32 runs (theirs and the 4a recomputation) must not drop to TF32.
    torch.backends.cuda.matmul.allow_tf32 = False

    xattn_estimate, rev = load_reference(a.ref_dir)
    session = sattn.Session(a.device)
    print("sattn %s on %s; reference mit-han-lab/x-attention %s (%s)"
          % (sattn.library_path(), session.device_name, rev, a.ref_dir))
    print("xattn_estimate options:")
    for opt, why in REF_OPTIONS:
        print("  %-38s %s" % (opt, why))

    results = []
    for kind in a.inputs:
        for S in a.seqs:
            q, k = make_inputs(kind, S, a.seed, a.device)
            for stride in a.strides:
                for tau in a.taus:
                    case = dict(inputs=kind, S=S, stride=stride, tau=tau)
                    results += run_case(session, xattn_estimate, q, k, case, a)
            del q, k
            if a.device == "gpu":
                torch.cuda.empty_cache()

    print_table(results, a.gate, a.min_agreement)
    ok = all(r["pass"] for r in results if r["gated"])
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(device=session.device_name, reference_revision=rev,
                           gate=a.gate, gate_slack=a.gate_slack, min_agreement=a.min_agreement,
                           options=[o for o, _ in REF_OPTIONS],
                           all_pass=ok, results=results), f, indent=1)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
