"""Structured attention inputs for evaluating sparse attention (docs/evaluation.md).

Random N(0, 1) queries and keys give almost uniform attention, where every
sparse method must keep nearly everything; real long-context and long-video
models do not look like that. This generator builds Q, K, V whose logits
q_i . k_j / sqrt(D) are a sum of the structures such models show, with one
amplitude per structure and per head, so heads range from sharp to flat:

  sinks      the first `sinks` keys carry a direction every query shares
             (attention sinks);
  local      rotary-style features cos(w (i - j)) summed over a band of
             frequencies: a peak at the diagonal decaying with distance;
  content    tokens belong to `topics` recurring segments (a topic's
             segments are spread over the whole sequence); a query and a
             key of the same topic share a direction (long-range retrieval);
  periodic   features cos(2 pi (i - j) / period): diagonals every `period`
             tokens (frame-periodic video tokens);
  noise      N(0, 1) in the remaining dimensions.

Each head h draws a sharpness s_h evenly from [flat, sharp] (then shuffled
with the seed), and multiplies every structured amplitude by it: a flat
head spreads its mass, a sharp one concentrates it. Nothing here refers to
blocks, budgets, lazy rows or any method's parameters.
"""

import math

import torch


def structured_qkv(S, heads, kv_heads, D, *, batch=1, dtype=torch.bfloat16, device="cuda",
                   seed=0, sinks=4, topics=64, segment=256, period=1024, flat=0.25, sharp=1.5):
    """Returns q [B, heads, S, D], k, v [B, kv_heads, S, D] (dtype, on device)."""
    assert D >= 64 and D % 16 == 0, "head dim must be >= 64 and a multiple of 16"
    # Built on `device` in float32 (angles reduced in float64 first, so long
    # sequences keep exact phases); random draws from a generator there.
    g = torch.Generator(device=device).manual_seed(seed)
    f64 = dict(dtype=torch.float64, device=device)
    # Dimension budget: 1 sink, 2 x 12 local frequencies, 8 content, 2 x 2
    # periodic harmonics; the rest is noise.
    n_loc, n_per, n_con = 12, 2, 8
    d_sink, d_loc, d_per = 0, 1, 1 + 2 * n_loc
    d_con = d_per + 2 * n_per
    d_noise = d_con + n_con
    assert d_noise < D
    pos = torch.arange(S, **f64)
    sharp_h = torch.linspace(flat, sharp, heads, dtype=torch.float64)
    sharp_h = sharp_h[torch.randperm(heads, generator=torch.Generator().manual_seed(seed))]
    topic_dirs = torch.randn(topics, n_con, generator=g, **f64)
    topic_dirs /= topic_dirs.norm(dim=1, keepdim=True)
    # Segment topics: a random topic per segment, so each topic recurs
    # throughout the sequence.
    seg_topic = torch.randint(0, topics, (math.ceil(S / segment),), generator=g, device=device)
    tok_topic = seg_topic[(pos // segment).long()]

    # Key features are unit-scale; a query's features carry the logit
    # amplitudes (times sqrt(D), which attention divides back out), so for
    # a head of sharpness s: sinks 8 s, the diagonal 8 s (decaying with
    # distance), same-topic keys 5 s, every period-th diagonal 3 s, noise
    # of std ~0.4 on every logit.
    L_SINK, L_LOCAL, L_CONTENT, L_PERIOD, Q_NOISE = 8.0, 8.0, 5.0, 3.0, 0.5
    w = 2 * math.pi / torch.logspace(math.log10(8), math.log10(4096), n_loc, **f64)
    ang = torch.remainder(pos[:, None] * w[None, :], 2 * math.pi)
    cos_l, sin_l = torch.cos(ang).float(), torch.sin(ang).float()
    wp = 2 * math.pi / period * torch.arange(1, n_per + 1, **f64)
    angp = torch.remainder(pos[:, None] * wp[None, :], 2 * math.pi)
    cos_p, sin_p = torch.cos(angp).float(), torch.sin(angp).float()
    topic = topic_dirs[tok_topic].float()
    f32 = dict(dtype=torch.float32, device=device)

    def features(is_query, amp):
        # One [S, D] float32 matrix of structured features.
        x = torch.zeros(S, D, **f32)
        r = math.sqrt(D) * amp if is_query else 1.0
        if is_query:
            x[:, d_sink] = r * L_SINK
        else:
            x[:sinks, d_sink] = 1.0
        c = r * L_LOCAL / n_loc if is_query else 1.0
        x[:, d_loc:d_loc + 2 * n_loc:2] = c * cos_l
        x[:, d_loc + 1:d_loc + 2 * n_loc:2] = c * sin_l
        c = r * L_PERIOD / n_per if is_query else 1.0
        x[:, d_per:d_per + 2 * n_per:2] = c * cos_p
        x[:, d_per + 1:d_per + 2 * n_per:2] = c * sin_p
        x[:, d_con:d_con + n_con] = (r * L_CONTENT if is_query else 1.0) * topic
        noise = torch.randn(S, D - d_noise, generator=g, **f32)
        x[:, d_noise:] = Q_NOISE * noise if is_query else noise
        return x

    ks = [features(False, 1.0) for _ in range(kv_heads)]
    vs = [torch.randn(S, D, generator=g, **f32) for _ in range(kv_heads)]
    qs = [features(True, float(sharp_h[h])) for h in range(heads)]
    out = []
    for xs in (qs, ks, vs):
        x = torch.stack([t.to(dtype) for t in xs])[None]
        out.append(x.expand(batch, -1, -1, -1).contiguous())
    return tuple(out)
