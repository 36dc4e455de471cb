"""float64 numpy reference of masked attention (design §2 semantics).

Q [B, H, Sq, D], K/V [B, Hkv, Skv, D]; KV heads are repeated for GQA;
causal masks align bottom-right (query i sees key j when j <= i + Skv - Sq);
a window W admits j in (i' - W, i'], sinks n admit j < n; an optional
`block_mask(qblock_rows, kv_block)` further restricts keys by block. A row
that sees no key gives O = 0 and LSE = -inf.
"""
import numpy as np


def attention(q, k, v, causal=True, window=0, sinks=0, allowed=None):
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    B, H, Sq, D = q.shape
    Hkv, Skv = k.shape[1], k.shape[2]
    k = np.repeat(k, H // Hkv, axis=1)
    v = np.repeat(v, H // Hkv, axis=1)
    s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(D)
    i = np.arange(Sq)[:, None] + Skv - Sq
    j = np.arange(Skv)[None, :]
    mask = np.ones((Sq, Skv), dtype=bool)
    if causal:
        mask &= j <= i
    if window:
        mask &= (j > i - window) | (j < sinks)
    mask = np.broadcast_to(mask, s.shape)
    if allowed is not None:
        mask = mask & allowed
    s = np.where(mask, s, -np.inf)
    m = s.max(axis=-1, keepdims=True)
    empty = ~np.isfinite(m)
    m = np.where(empty, 0.0, m)
    p = np.where(mask, np.exp(s - m), 0.0)
    l = p.sum(axis=-1, keepdims=True)
    o = np.where(empty, 0.0, (p @ v) / np.where(empty, 1.0, l))
    lse = np.where(empty, -np.inf, m + np.log(np.where(empty, 1.0, l)))[..., 0]
    return o, lse


def block_mask(shape, block, kept):
    """A [B, H, Sq, Skv] mask keeping, for each query block I, the KV blocks
    kept(I) (a set), expanded to tokens."""
    B, H, Sq, Skv = shape
    mask = np.zeros(shape, dtype=bool)
    for I in range(-(-Sq // block)):
        for J in kept(I):
            mask[..., I * block:(I + 1) * block, J * block:(J + 1) * block] = True
    return mask


def rel_err(x, ref):
    x = np.asarray(x, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    return float(np.linalg.norm(x - ref) / max(np.linalg.norm(ref), 1e-30))
