#!/usr/bin/env python3
"""Recall and density of UniSparse's block selection for other granularities,
on the structured generator, without running any attention.

What a selection keeps does not depend on the kernel that runs it: it is the
block scores (design section 10: the causal softmax of mean-pooled Q . K^T
at each granularity c, summed into 128 x 128 blocks, averaged over the
granularities) and the cumulative rule (section 2: forced sink and diagonal
blocks first, counted, then the shortest prefix by descending score whose
sum reaches tau of the row). This script computes both in torch, on the CPU
or a GPU, for any set of granularities, and the section 2 metrics from exact
fp32 attention of sampled rows:

  recall   mean over heads and M evenly spaced rows of the exact attention
           mass on the blocks the row's query block kept (M = 509 by default:
           rows at every in-block offset, unlike the contract's 256 rows,
           which at these lengths are all first rows of their blocks;
           bench/evaluator.py unaligned_rows);
  density  kept / causally valid block pairs;
  oracle   the block oracle of bench/evaluator.py (95 % of the mass).

Timing stays with bench/bench_patterns.py on the GPU; this says which
granularities are worth timing. The estimate's cost is reported as pooled
query-key pairs relative to design §10's {16, 64}: the 16-token grid is 16x
the 64-token one and at 128k it is most of the estimate.

  python3 bench/selection_study.py --seq 32768 --configs 16+64,32+64,32
  python3 bench/selection_study.py --check   # against sattn's own selection
  python3 bench/selection_study.py --seq 131072 --sharing

--sharing gives the bounds of OmniSparse's head budgets with exact scores
instead of estimates: the density at which per-head budgets (`share =
none`) and the flattest head's budget for every head (`share = flattest`)
reach a mean recall, on 32 sampled query blocks per head.

--check runs examples/patterns/unisparse.mlir (and its {16, 64} and {64} forms) on
sattn's CPU reference (or the GPU) at a small size and requires the same
block sets as this script's (at least 99 % of the (head, query block) rows
identical: a block sitting exactly at tau may flip between float types).
"""
import argparse
import math
import os
import re
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from evaluator import oracle_density, sample_rows, sorted_block_masses  # noqa: E402
from structured import structured_qkv  # noqa: E402


def pooled(x, c):
    """Mean over groups of c tokens along dim 1 of x [H, S, D] (the last
    group partial), float64."""
    H, S, D = x.shape
    n = -(-S // c)
    pad = n * c - S
    xs = torch.cat([x, x.new_zeros(H, pad, D)], 1) if pad else x
    sums = xs.view(H, n, c, D).double().sum(2)
    counts = torch.full((n,), float(c), dtype=torch.float64, device=x.device)
    counts[-1] = c - pad
    return sums / counts[None, :, None]


def pooled_var(x, c):
    """Per-dimension variance over groups of c tokens (dim 1), float64; the
    last partial group over its own tokens."""
    m = pooled(x, c)
    m2 = pooled(x.double() ** 2, c)
    return (m2 - m ** 2).clamp(min=0)


def unisparse_scores(q, k, grans, block, weights=None, sharpen=1.0, corrected=False):
    """Block scores [Hq, nQB, nKB] (float64) of q [Hq, S, D], k [Hkv, S, D]:
    the weighted mean over granularities of each one's causal pooled softmax
    summed into blocks (mean over a query block's pooled rows). `sharpen`
    multiplies the pooled logits (1: the design's 1 / sqrt(D) scale).
    `corrected` (an experiment, not a sattn rule): each pooled logit gets
    + var / 2 of the token logits it stands for, var = sum_d (qm_d^2 vk_d
    + vq_d km_d^2 + vq_d vk_d) scale^2 from per-dimension group means and
    variances (the log-normal mean of exp over the group's pairs)."""
    hq, S, D = q.shape
    g = hq // k.shape[0]
    nb = -(-S // block)
    weights = weights or [1.0 / len(grans)] * len(grans)
    out = torch.zeros(hq, nb, nb, dtype=torch.float64, device=q.device)
    for c, w in zip(grans, weights):
        assert block % c == 0, "granularity %d does not divide the block %d" % (c, block)
        qp, kp = pooled(q, c), pooled(k, c)
        if corrected:
            vq, vk = pooled_var(q, c), pooled_var(k, c)
        n = qp.shape[1]
        r = torch.arange(n, device=q.device)
        last = torch.clamp(r * c + c - 1, max=S - 1)  # the pooled row's last query
        visible = (r[None, :] * c) <= last[:, None]  # [row, pooled key]
        per = block // c
        rows_in = torch.bincount(r * c // block, minlength=nb).double()
        for h in range(hq):
            s = (qp[h] @ kp[h // g].T) * (sharpen / math.sqrt(D))
            if corrected:
                kh = h // g
                var = ((qp[h] ** 2) @ vk[kh].T + vq[h] @ (kp[kh] ** 2).T + vq[h] @ vk[kh].T) / D
                s = s + 0.5 * var
            p = torch.softmax(s.masked_fill(~visible, float("-inf")), -1)
            pad = nb * per - n
            if pad:
                p = torch.cat([p, p.new_zeros(n, pad)], 1)
            pk = p.view(n, nb, per).sum(-1)  # [pooled row, key block]
            blk = torch.zeros(nb, nb, dtype=torch.float64, device=q.device)
            blk.index_add_(0, r * c // block, pk)
            out[h] += w * blk / rows_in[:, None]
    return out


def select_cumulative(sc, tau, sink=1):
    """Kept blocks [H, nQB, nKB] (bool): the sink blocks and the diagonal,
    then by descending score (ties to the lower index) the shortest prefix
    whose sum with the forced ones is >= tau of the row's total (Sq == Skv)."""
    H, nq, nk = sc.shape
    I = torch.arange(nq, device=sc.device)[:, None]
    J = torch.arange(nk, device=sc.device)[None, :]
    vis = (J <= I).expand(H, nq, nk)
    forced = ((J < sink) | (J == I)) & (J <= I)
    forced = forced.expand(H, nq, nk)
    total = (sc * vis).sum(-1)
    fsum = (sc * forced).sum(-1)
    cand = vis & ~forced
    vals = torch.where(cand, sc, torch.full_like(sc, -1.0))
    # Stable sort on the negated score: equal scores keep the lower index first.
    order = torch.sort(-vals, dim=-1, stable=True).indices
    sv = torch.gather(vals, -1, order).clamp(min=0)
    cums = fsum[..., None] + torch.cumsum(sv, -1)
    need = tau * total
    n = (cums < need[..., None]).sum(-1) + 1
    n = torch.where(fsum >= need, torch.zeros_like(n), n)
    n = torch.minimum(n, cand.sum(-1))
    rank = torch.empty_like(order)
    rank.scatter_(-1, order, torch.arange(nk, device=sc.device).expand(H, nq, nk).contiguous())
    return forced | (cand & (rank < n[..., None]))


def row_block_mass(q, k, rows, block):
    """Exact fp32 causal attention mass per key block [Hq, M, nKB] of the
    given query rows (Sq == Skv)."""
    hq, S, D = q.shape
    g = hq // k.shape[0]
    nb = -(-S // block)
    j = torch.arange(S, device=q.device)
    out = torch.zeros(hq, len(rows), nb, device=q.device)
    for h in range(hq):
        s = (q[h, rows].float() @ k[h // g].float().T) / math.sqrt(D)
        p = torch.softmax(s.masked_fill(j[None, :] > rows[:, None], float("-inf")), -1)
        pad = nb * block - S
        if pad:
            p = torch.cat([p, p.new_zeros(len(rows), pad)], 1)
        out[h] = p.view(len(rows), nb, block).sum(-1)
    return out


def oracle_sharing(q, k, block, blocks=32):
    """Bounds for budget rules given exact scores (design §10, OmniSparse
    `head_budget`): per sampled query block I and head h, k_h(tau) = the
    fewest KV blocks whose exact mass (summed over the block's rows)
    reaches tau of the total, and every head keeps its own top blocks —
    k_h of them (`share = none`) or max_h k_h (`share = flattest`). Returns
    (per_head, flattest): lists of (recall, density) over tau, recall = the
    kept share of each (head, query block)'s mass averaged, density =
    attended / causally valid block pairs of the sampled query blocks."""
    hq = q.shape[0]
    picks, masses = sorted_block_masses(q[None], k[None], block, blocks)
    # [h][x]: normalised cumulative mass of the sorted blocks
    cums = [[(c / c[-1]).double().cpu() for c in (torch.cumsum(m, 0) for m in row)]
            for row in masses]
    valid = hq * sum(float(I + 1) for I in picks)
    per_head, flattest = [], []
    for t in [x / 200 for x in range(60, 200)] + [0.9975, 0.999]:
        need = [[min(int(torch.searchsorted(c, t).item()) + 1, len(c)) for c in row]
                for row in cums]
        kmax = [max(need[h][x] for h in range(hq)) for x in range(len(picks))]
        rec_h = sum(cums[h][x][need[h][x] - 1].item() for h in range(hq)
                    for x in range(len(picks))) / (hq * len(picks))
        rec_f = sum(cums[h][x][kmax[x] - 1].item() for h in range(hq)
                    for x in range(len(picks))) / (hq * len(picks))
        per_head.append((rec_h, sum(map(sum, need)) / valid))
        flattest.append((rec_f, hq * sum(kmax) / valid))
    return per_head, flattest


def metrics(keep, mass, rows, block):
    """(recall, density) of the kept blocks given the sampled rows' masses."""
    nq = keep.shape[1]
    I = torch.arange(nq, device=keep.device)
    valid = (I[:, None] >= I[None, :]).sum().item() * keep.shape[0]
    density = keep.sum().item() / valid
    kr = keep[:, rows // block].float()  # [H, M, nKB]
    recall = (kr * mass).sum(-1).mean().item()
    return recall, density


def at_recall(points, target=0.95):
    """Density interpolated linearly at `target` recall from (recall,
    density) points sorted by tau; None when no two bracket it."""
    for (r0, d0), (r1, d1) in zip(points, points[1:]):
        if r0 <= target <= r1 and r1 > r0:
            return d0 + (d1 - d0) * (target - r0) / (r1 - r0)
    return None


def with_granularities(text, grans):
    """UniSparse IR (examples/patterns/unisparse.mlir) with its granularities
    32 and 64 replaced by `grans` (pool groups and score groups); one
    granularity (c,) keeps only the 64 branch (regrouped to c) and drops
    the mean."""
    if len(grans) == 1:
        text, n = re.subn(r"  %qp32 = .*?\n(?=  %qp64 = )", "", text, flags=re.S)
        assert n == 1, "no 32-token branch in the UniSparse IR"
        text, n = re.subn(r"  %s = sattn\.mean_scores %s32, %s64 : .*?\n", "", text)
        assert n == 1, "no mean_scores in the UniSparse IR"
        text = text.replace("%s64 ", "%s ")
        grans = (32, grans[0])
    for old, new in zip((32, 64), grans):
        if old == new:
            continue
        for fmt in ("group %d ", "q_group = %d ", "k_group = %d "):
            assert fmt % old in text, "no %r in the UniSparse IR" % (fmt % old)
            text = text.replace(fmt % old, fmt % new)
    return text


def example_text(grans, tau):
    """examples/patterns/unisparse.mlir (32 / 8 heads, D 128) with its two
    granularities replaced by `grans` and its tau by `tau`."""
    with open(os.path.join(HERE, "..", "examples", "patterns", "unisparse.mlir")) as f:
        text = f.read()
    return with_granularities(text, grans).replace("tau = 0.9 : f64", "tau = %r : f64" % tau)


def check(a):
    """sattn's selection (run_selection) against this script's, for the
    example's granularities {32, 64}, for {16, 64} and for {64}."""
    import sattn
    dev = "cuda" if a.device == "cuda" else "cpu"
    sess = sattn.Session("gpu" if dev == "cuda" else "cpu")
    S, hq, hkv, D = a.check_seq, 32, 8, 128
    q, k, v = structured_qkv(S, hq, hkv, D, device=dev, seed=7)
    worst = 1.0
    for grans in ((32, 64), (16, 64), (64,)):
        for tau in (0.8, 0.97):
            prog = sess.compile(example_text(grans, tau))
            _, rep = prog.run_selection(q, k, v, blocks=True)
            theirs = torch.as_tensor(rep["blocks"][0])
            mine = select_cumulative(unisparse_scores(q[0], k[0], list(grans), 128), tau).cpu()
            assert theirs.shape == mine.shape, (theirs.shape, mine.shape)
            same = (theirs == mine).all(-1).float().mean().item()
            worst = min(worst, same)
            n = mine.shape[0] * mine.shape[1]
            print("granularities %s, tau %.2f: %d of %d (head, query block) rows identical, "
                  "density %.4f (sattn) vs %.4f"
                  % ("+".join(map(str, grans)), tau, round(same * n), n, rep["density"],
                     metrics(mine, torch.zeros(hq, 1, mine.shape[2]),
                             torch.zeros(1, dtype=torch.long), 128)[1]))
    if worst < 0.99:
        sys.exit("selection_study: the script's selection differs from sattn's")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seq", type=int, default=32768)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--configs", default="16+64,32+64,32,64,8+64,16+32+64",
                    help="comma list of granularity sets, each a +-list (optionally "
                         "weighted: 32:0.75+64:0.25)")
    ap.add_argument("--sharpen", default="1",
                    help="comma list of factors on the pooled logits (1 = the design's scale)")
    ap.add_argument("--corrected", action="store_true",
                    help="also each config with the variance-corrected pooled logits")
    ap.add_argument("--taus", default="0.9,0.93,0.95,0.96,0.97,0.98,0.99")
    ap.add_argument("--rows", type=int, default=509,
                    help="evenly spaced rows per head (default 509: a count whose spacing is "
                         "no multiple of the block, so every in-block offset is visited; "
                         "256 gives the contract's block-aligned rows)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=None, help="default: the sequence length")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--sharing", action="store_true",
                    help="only the exact-score bounds of per-head and flattest budgets")
    ap.add_argument("--check-seq", type=int, default=2048)
    a = ap.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    if a.check:
        check(a)
        return
    S, B = a.seq, a.block
    q, k, _ = structured_qkv(S, a.heads, a.kv_heads, a.dim, device=a.device,
                             seed=S if a.seed is None else a.seed)
    q, k = q[0], k[0]
    if a.sharing:
        per_head, flattest = oracle_sharing(q, k, B)
        print("S %d, %d/%d heads: exact-score budgets (32 sampled query blocks per head), "
              "density at mean recall" % (S, a.heads, a.kv_heads))
        for target in (0.9, 0.95, 0.97):
            ph, fl = at_recall(sorted(per_head), target), at_recall(sorted(flattest), target)
            print("  recall %.2f: per head %s, flattest %s" % (
                target, "%.4f" % ph if ph else "-", "%.4f" % fl if fl else "-"))
        return
    rows = sample_rows(S, a.rows, a.device)
    M = len(rows)
    mass = row_block_mass(q, k, rows, B)
    oracle = oracle_density(q[None], k[None], B)
    taus = [float(t) for t in a.taus.split(",")]
    base_pairs = sum((S / c) ** 2 for c in (16, 64))
    print("S %d, %d/%d heads, D %d, blocks %d, %d rows per head; oracle density (95 %%) %.4f"
          % (S, a.heads, a.kv_heads, a.dim, B, M, oracle))
    print("%-16s %-10s %5s  %s" % ("granularities", "est. cost", "", "tau: recall / density"))
    for cfg, sharpen, corr in [(c, float(x), v) for c in a.configs.split(",")
                               for x in a.sharpen.split(",")
                               for v in ((False, True) if a.corrected else (False,))]:
        parts = [p.split(":") for p in cfg.split("+")]
        grans = [int(p[0]) for p in parts]
        weights = [float(p[1]) for p in parts] if all(len(p) > 1 for p in parts) else None
        sc = unisparse_scores(q, k, grans, B, weights, sharpen, corr)
        if sharpen != 1.0:
            cfg = "%s x%g" % (cfg, sharpen)
        if corr:
            cfg += " +var"
        pts = []
        for tau in taus:
            pts.append(metrics(select_cumulative(sc, tau), mass, rows, B))
        cost = sum((S / c) ** 2 for c in grans) / base_pairs
        d95 = at_recall(pts)
        print("%-16s %-10s %5s  %s" % (
            cfg, "%.2fx" % cost, "", "  ".join("%.2f: %.3f/%.3f" % (t, r, d)
                                               for t, (r, d) in zip(taus, pts))))
        print("%-16s density at recall 0.95: %s" % ("", "%.4f" % d95 if d95 else "not bracketed"))


if __name__ == "__main__":
    main()
