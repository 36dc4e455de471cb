#!/usr/bin/env python3
"""Train a tiny decoder-only transformer with sattn attention, dense vs OmniSparse.

The model (4 layers, d_model 512, 8 query heads / 2 KV heads of dim 64,
RoPE, RMSNorm, bf16 autocast) reads bytes of the Python standard library's
own source (every *.py under os.path.dirname(os.__file__)) in sequences of
--seq tokens. It is trained twice from the same initial weights on the same
batches: once with dense causal attention and once with OmniSparse
(sattn.patterns.omnisparse), both through sattn.autograd.SparseAttention
(the sattn forward and backward kernels, no PyTorch attention). If the
OmniSparse backward is not supported on this GPU, the second run uses
topk_blocks instead and says so.

Writes --out/loss.png (matplotlib, when installed) and --out/curves.json
(per-step training loss, held-out loss, ms per step, the sparse variant's
density on the trained model's first layer).

    python3 examples/python/finetune_omnisparse.py                 # one H100: ~2-3 minutes
    python3 examples/python/finetune_omnisparse.py --steps 600 --seq 2048
    python3 examples/python/finetune_omnisparse.py --device cpu    # a tiny smoke run

libsattn.so comes from $SATTN_LIB, next to the package, or build/runtime/capi.
"""
import argparse
import json
import math
import os
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    print("error: this example needs PyTorch (python3 -m pip install torch)")
    sys.exit(2)

try:
    import sattn
except ImportError:
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "..", "python"))
    import sattn
from sattn.autograd import SparseAttention  # noqa: E402

HEAD_DIM = 64


# -- data -----------------------------------------------------------------------
def stdlib_bytes(limit_mb):
    """The bytes of the standard library's *.py files (sorted paths, so every
    run reads the same text), at most limit_mb MiB."""
    root = os.path.dirname(os.__file__)
    paths = []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x not in ("site-packages", "__pycache__"))
        paths += [os.path.join(d, f) for f in sorted(files) if f.endswith(".py")]
    chunks, total = [], 0
    for p in paths:
        try:
            with open(p, "rb") as f:
                b = f.read()
        except OSError:
            continue
        chunks.append(b)
        total += len(b)
        if total >= limit_mb << 20:
            break
    return b"\n".join(chunks), len(chunks), root


class Batches:
    """Random windows of seq + 1 bytes; the same seed gives the same batches."""

    def __init__(self, data, seq, batch, device, seed):
        self.data, self.seq, self.batch, self.device = data, seq, batch, device
        self.gen = torch.Generator().manual_seed(seed)

    def next(self):
        starts = torch.randint(0, len(self.data) - self.seq - 1, (self.batch,), generator=self.gen)
        rows = torch.stack([self.data[s:s + self.seq + 1] for s in starts.tolist()])
        rows = rows.to(self.device, non_blocking=True).long()
        return rows[:, :-1], rows[:, 1:]


# -- model ----------------------------------------------------------------------
class RMSNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-6)).to(x.dtype) * self.weight


def rope(x, cos, sin):
    """Rotary embedding of x [B, S, H, D] (half-split layout), in float32."""
    x1, x2 = x.float().chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Block(nn.Module):
    def __init__(self, d_model, heads, kv_heads, attention, dtype):
        super().__init__()
        self.heads, self.kv_heads, self.attention, self.dtype = heads, kv_heads, attention, dtype
        self.norm1, self.norm2 = RMSNorm(d_model), RMSNorm(d_model)
        self.wq = nn.Linear(d_model, heads * HEAD_DIM, bias=False)
        self.wkv = nn.Linear(d_model, 2 * kv_heads * HEAD_DIM, bias=False)
        self.wo = nn.Linear(heads * HEAD_DIM, d_model, bias=False)
        self.up = nn.Linear(d_model, 4 * d_model, bias=False)
        self.down = nn.Linear(4 * d_model, d_model, bias=False)
        self.captured = None

    def forward(self, x, cos, sin, capture=False):
        B, S, _ = x.shape
        h = self.norm1(x)
        q = self.wq(h).view(B, S, self.heads, HEAD_DIM)
        k, v = self.wkv(h).view(B, S, 2, self.kv_heads, HEAD_DIM).unbind(2)
        # [B, S, H, D] buffers seen as [B, H, S, D]: sattn reads them in place.
        q = rope(q, cos, sin).to(self.dtype).transpose(1, 2)
        k = rope(k, cos, sin).to(self.dtype).transpose(1, 2)
        v = v.to(self.dtype).transpose(1, 2)
        if capture:
            self.captured = (q.detach(), k.detach(), v.detach())
        o = self.attention(q, k, v)  # [B, H, S, D]
        x = x + self.wo(o.transpose(1, 2).reshape(B, S, self.heads * HEAD_DIM))
        return x + self.down(F.gelu(self.up(self.norm2(x))))


class TinyLM(nn.Module):
    def __init__(self, layers, d_model, heads, kv_heads, seq, attention, dtype):
        super().__init__()
        self.embed = nn.Embedding(256, d_model)
        self.blocks = nn.ModuleList(Block(d_model, heads, kv_heads, attention, dtype)
                                    for _ in range(layers))
        self.norm = RMSNorm(d_model)
        self.head = nn.Linear(d_model, 256, bias=False)
        inv = 1.0 / (10000 ** (torch.arange(0, HEAD_DIM, 2).float() / HEAD_DIM))
        ang = torch.arange(seq).float()[:, None] * inv[None, :]
        self.register_buffer("cos", ang.cos()[:, None, :], persistent=False)  # [S, 1, D/2]
        self.register_buffer("sin", ang.sin()[:, None, :], persistent=False)

    def forward(self, tokens, capture=False):
        S = tokens.shape[1]
        x = self.embed(tokens)
        for i, blk in enumerate(self.blocks):
            x = blk(x, self.cos[:S], self.sin[:S], capture=capture and i == 0)
        return self.head(self.norm(x))


# -- training -------------------------------------------------------------------
def lr_at(step, steps, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def train(name, attention, cfg, data, val, device, init_state):
    model = TinyLM(cfg.layers, cfg.d_model, cfg.heads, cfg.kv_heads, cfg.seq, attention,
                   cfg.attn_dtype).to(device)
    model.load_state_dict(init_state)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.1)
    batches = Batches(data, cfg.seq, cfg.batch, device, seed=1)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    losses, pending = [], []
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    t0 = t_log = time.perf_counter()
    for step in range(cfg.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg.steps, cfg.lr, cfg.warmup)
        x, y = batches.next()
        with autocast:
            logits = model(x)
        loss = F.cross_entropy(logits.float().view(-1, 256), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        pending.append(loss.detach())
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            losses += torch.stack(pending).float().cpu().tolist()  # one sync per log line
            pending = []
            now = time.perf_counter()
            n = cfg.log_every if (step + 1) % cfg.log_every == 0 else (step + 1) % cfg.log_every
            print("  %-12s step %4d/%d  loss %.4f  %.1f ms/step" % (
                name, step + 1, cfg.steps, losses[-1], (now - t_log) * 1e3 / n), flush=True)
            t_log = now
    sync()
    seconds = time.perf_counter() - t0

    model.eval()
    vb = Batches(val, cfg.seq, cfg.batch, device, seed=2)
    with torch.no_grad(), autocast:
        vals = [F.cross_entropy(model(vx).float().view(-1, 256), vy.reshape(-1)).item()
                for vx, vy in (vb.next() for _ in range(cfg.val_batches))]
        vx, _ = vb.next()
        model(vx[:1], capture=True)
    return model, {"loss": losses, "val_loss": sum(vals) / len(vals),
                   "ms_per_step": seconds * 1e3 / cfg.steps, "seconds": seconds}


def probe(attention, cfg, device):
    """None if attention runs forward and backward here, else the error."""
    S = min(cfg.seq, 256)
    try:
        q = torch.randn(1, cfg.heads, S, HEAD_DIM, device=device).to(cfg.attn_dtype)
        k = torch.randn(1, cfg.kv_heads, S, HEAD_DIM, device=device).to(cfg.attn_dtype)
        v = torch.randn_like(k)
        for t in (q, k, v):
            t.requires_grad_(True)
        attention(q, k, v).float().sum().backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return None
    except (sattn.Error, ValueError) as e:
        return str(e).splitlines()[0]


def plot(path, runs, cfg, title):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed; no plot (pip install matplotlib)")
        return False
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    w = max(1, cfg.steps // 50)
    for name, run in runs.items():
        y = torch.tensor(run["loss"])
        smooth = y.unfold(0, w, 1).mean(1) if len(y) >= w else y
        ax.plot(range(1, len(y) + 1), y.tolist(), alpha=0.25, linewidth=0.8)
        ax.plot(range(w, w + len(smooth)), smooth.tolist(), color=ax.lines[-1].get_color(),
                label="%s (held-out %.3f)" % (name, run["val_loss"]))
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (nats / byte)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=None, help="training steps per run (300; cpu 10)")
    ap.add_argument("--seq", type=int, default=None, help="sequence length (2048; cpu 128)")
    ap.add_argument("--batch", type=int, default=None, help="sequences per step (8; cpu 2)")
    ap.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"),
                    help="auto: the GPU; cpu: a tiny smoke configuration on the CPU reference")
    ap.add_argument("--out", default="./finetune_out", help="output folder (./finetune_out)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--log-every", type=int, default=None, help="steps between log lines")
    ap.add_argument("--data-mb", type=int, default=48, help="MiB of stdlib source to read")
    args = ap.parse_args()

    if args.device == "cpu":
        device = torch.device("cpu")
        cfg = dict(layers=2, d_model=128, heads=2, kv_heads=1, seq=128, batch=2, steps=10,
                   log_every=5, val_batches=2, warmup=2, attn_dtype=torch.float32)
    else:
        if not torch.cuda.is_available():
            print("This example trains on a GPU and none is visible to PyTorch.\n"
                  "Run it on a CUDA machine, or pass --device cpu for a tiny smoke run on the\n"
                  "float64 reference (minutes per step at real sizes, so the CPU configuration\n"
                  "is 2 layers, d_model 128, 128-token sequences, 10 steps).")
            return 2
        device = torch.device("cuda", torch.cuda.current_device())
        cfg = dict(layers=4, d_model=512, heads=8, kv_heads=2, seq=2048, batch=8, steps=300,
                   log_every=25, val_batches=8, warmup=30, attn_dtype=torch.bfloat16)
    for key in ("steps", "seq", "batch", "log_every"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    cfg["lr"] = args.lr
    cfg = argparse.Namespace(**cfg)
    if cfg.seq < 16 or cfg.steps < 1 or cfg.batch < 1:
        ap.error("--seq must be >= 16 and --steps, --batch >= 1")
    if device.type == "cpu" and cfg.seq * cfg.batch > 4096:
        print("note: the CPU reference is slow; %d tokens per step will take a while"
              % (cfg.seq * cfg.batch))

    try:
        session = sattn.Session("cpu" if device.type == "cpu" else "gpu")
    except sattn.Error as e:
        print("error: cannot open a sattn session on %s: %s" % (device, e))
        return 2
    dt = "bf16"
    dense_prog = session.compile(sattn.patterns.dense(cfg.heads, cfg.kv_heads, HEAD_DIM,
                                                      causal=True, lse=True, dtype=dt))
    sparse_name = "omnisparse"
    sparse_prog = session.compile(sattn.patterns.omnisparse(cfg.heads, cfg.kv_heads, HEAD_DIM,
                                                            dtype=dt))
    dense_attn, sparse_attn = SparseAttention(dense_prog), SparseAttention(sparse_prog)
    err = probe(dense_attn, cfg, device)
    if err:
        print("error: sattn's dense backward does not run here: %s" % err)
        return 1
    err = probe(sparse_attn, cfg, device)
    fallback = None
    if err:
        k_blocks = max(2, (cfg.seq // 64) // 4)
        fallback = ("OmniSparse backward is not supported here (%s); the sparse run uses "
                    "topk_blocks (k=%d of 64-token blocks) instead" % (err, k_blocks))
        print("note: " + fallback)
        sparse_name = "topk_blocks k%d" % k_blocks
        sparse_prog = session.compile(sattn.patterns.topk_blocks(
            cfg.heads, cfg.kv_heads, HEAD_DIM, k=k_blocks, block=64, pool=32, dtype=dt))
        sparse_attn = SparseAttention(sparse_prog)

    text, nfiles, root = stdlib_bytes(args.data_mb)
    data = torch.frombuffer(bytearray(text), dtype=torch.uint8)
    cut = int(len(data) * 0.95)
    train_data, val_data = data[:cut], data[cut:]
    if len(val_data) <= cfg.seq + 1:
        print("error: too little text under %s for --seq %d" % (root, cfg.seq))
        return 2
    print("data: %d files, %.1f MiB of %s; %d-byte sequences, batch %d, %d steps per run"
          % (nfiles, len(data) / 2 ** 20, root, cfg.seq, cfg.batch, cfg.steps))
    print("model: %d layers, d_model %d, %d/%d heads of dim %d, on %s (%s)" % (
        cfg.layers, cfg.d_model, cfg.heads, cfg.kv_heads, HEAD_DIM, session.device_name,
        "bf16 autocast" if device.type == "cuda" else "float32"))

    torch.manual_seed(0)
    init = TinyLM(cfg.layers, cfg.d_model, cfg.heads, cfg.kv_heads, cfg.seq, None,
                  cfg.attn_dtype).state_dict()
    runs = {}
    for name, attn, prog in (("dense", dense_attn, dense_prog),
                             (sparse_name, sparse_attn, sparse_prog)):
        print("training with %s attention" % name)
        model, run = train(name, attn, cfg, train_data, val_data, device, init)
        q, k, v = model.blocks[0].captured
        _, report = prog.run_selection(q, k, v)
        run["layer0_selection"] = report
        print("  %-12s held-out loss %.4f, %.1f ms/step, layer-0 selection %s" % (
            name, run["val_loss"], run["ms_per_step"],
            ", ".join("%s %.3f" % kv for kv in sorted(report.items()))))
        runs[name] = run
        del model

    os.makedirs(args.out, exist_ok=True)
    summary = {"config": {k: (str(v) if isinstance(v, torch.dtype) else v)
                          for k, v in vars(cfg).items()},
               "device": session.device_name, "data": {"files": nfiles, "bytes": len(data)},
               "fallback": fallback, "runs": runs}
    with open(os.path.join(args.out, "curves.json"), "w") as f:
        json.dump(summary, f, indent=1)
    title = "tiny LM on stdlib source, %d-byte sequences, %s" % (cfg.seq, session.device_name)
    plotted = plot(os.path.join(args.out, "loss.png"), runs, cfg, title)
    print("wrote %s%s" % (os.path.join(args.out, "curves.json"),
                          " and " + os.path.join(args.out, "loss.png") if plotted else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
