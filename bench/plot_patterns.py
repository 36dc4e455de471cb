#!/usr/bin/env python3
"""Chart of bench/bench_patterns.py results (one or more --json files; a later
file's row replaces an earlier one with the same pattern and S).

Three panels: end-to-end speed-up over cuDNN dense per pattern and length
with the estimation share stacked in; attention step vs FlexAttention on the
identical mask; recall against speed-up at the longest length, with the
issue #7 UniSparse target (>= 2.61x at recall >= 0.95) drawn in.

  python3 bench/plot_patterns.py bench/results/patterns-*.json -o docs/img/patterns.png
"""
import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(paths):
    rows, device = {}, None
    for p in paths:
        with open(p) as f:
            d = json.load(f)
        device = device or d.get("device")
        for r in d["rows"]:
            rows[(r["pattern"], r["S"])] = r
    return list(rows.values()), device


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("json", nargs="+")
    ap.add_argument("-o", "--out", required=True)
    a = ap.parse_args()
    rows, device = load(a.json)
    if not rows:
        raise SystemExit("plot_patterns: no rows in " + ", ".join(a.json))
    names = list(dict.fromkeys(r["pattern"] for r in rows))
    seqs = sorted({r["S"] for r in rows})
    at = {(r["pattern"], r["S"]): r for r in rows}

    fig, axes = plt.subplots(3, 1, figsize=(12, 12))
    width = 0.8 / len(seqs)
    x = range(len(names))
    ax = axes[0]
    for j, S in enumerate(seqs):
        pos = [i + j * width for i in x]
        speed = [at[(n, S)]["cudnn_ms"] / at[(n, S)]["total_ms"] if (n, S) in at else 0
                 for n in names]
        # The estimation part of each bar: its share of the total time.
        est = [s * at[(n, S)]["estimation_ms"] /
               max(1e-9, at[(n, S)]["estimation_ms"] + at[(n, S)]["attention_ms"])
               if (n, S) in at else 0 for n, s in zip(names, speed)]
        bars = ax.bar(pos, speed, width, label="S=%dk" % (S // 1024))
        ax.bar(pos, est, width, color="black", alpha=0.35)
        for b, n in zip(bars, names):
            if (n, S) in at:
                ax.annotate("%.2f" % b.get_height(), (b.get_x() + b.get_width() / 2,
                                                      b.get_height()),
                            ha="center", va="bottom", fontsize=7)
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_ylabel("x cuDNN dense (end to end)")
    ax.set_title("sparse prefill, causal, B=1, 32/8 heads, D=128 — %s; dark part: estimation "
                 "share" % (device or "GPU"))
    ax.set_xticks([i + 0.4 - width / 2 for i in x], names, rotation=20, ha="right")
    ax.legend()

    ax = axes[1]
    for j, S in enumerate(seqs):
        pos = [i + j * width for i in x]
        vals = [at[(n, S)]["flex_ms"] / at[(n, S)]["attention_ms"]
                if (n, S) in at and "flex_ms" in at[(n, S)] else 0 for n in names]
        ax.bar(pos, vals, width, label="S=%dk" % (S // 1024))
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_ylabel("FlexAttention / our attention step")
    ax.set_title("attention step vs FlexAttention on the identical block mask")
    ax.set_xticks([i + 0.4 - width / 2 for i in x], names, rotation=20, ha="right")
    ax.legend()

    ax = axes[2]
    S = seqs[-1]
    for n in names:
        r = at.get((n, S))
        if r:
            sp = r["cudnn_ms"] / r["total_ms"]
            ax.scatter(sp, r["recall"])
            ax.annotate(n, (sp, r["recall"]), fontsize=7, xytext=(4, 2),
                        textcoords="offset points")
    ax.axhline(0.95, color="red", lw=0.8, ls="--")
    ax.axvline(2.61, color="red", lw=0.8, ls="--")
    ax.set_xlabel("x cuDNN dense (end to end), S=%dk" % (S // 1024))
    ax.set_ylabel("recall (design §2)")
    ax.set_title("recall vs speed-up; dashed: the UniSparse target (>= 2.61x at recall >= 0.95)")
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
