"""Ready-made variants, returned as sattn IR text.

The text is ordinary IR (the same the C++ ``sattn::patterns`` builds), so it
can be printed, edited, saved as a .mlir file, or passed straight to
``Session.compile``. Sequence lengths and batch stay dynamic; head counts,
head dim and dtype are part of the variant.
"""

from . import _lib

__all__ = ["dense", "streaming", "topk_blocks", "topk", "block_mask", "omnisparse",
           "omnisparse_decode", "xattention", "flexprefill", "minference_vertical_slash",
           "unisparse", "quest"]


def _text(name, heads, kv_heads, head_dim, dtype, a=0, b=0, c=0):
    lib = _lib.load()
    for what, value in (("heads", heads), ("kv_heads", kv_heads), ("head_dim", head_dim)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError("%s must be an int, got %r" % (what, value))
    if dtype not in (None, "bf16", "fp16"):
        raise ValueError('dtype must be "bf16" or "fp16", got %r' % (dtype,))
    dt = dtype.encode() if dtype else None
    return _lib.read_string(lib.sattn_pattern_text, name.encode(), heads, kv_heads, head_dim,
                            dt, int(a), int(b), int(c))


def dense(heads, kv_heads, head_dim, causal=True, dtype="bf16", lse=False):
    """Dense attention (causal aligns bottom-right); returns O, and LSE when `lse`."""
    return _text("dense_causal" if causal else "dense", heads, kv_heads, head_dim, dtype,
                 1 if lse else 0)


def streaming(heads, kv_heads, head_dim, window, sinks=4, dtype="bf16"):
    """StreamingLLM: the first `sinks` keys plus a causal window of `window` keys."""
    return _text("streaming", heads, kv_heads, head_dim, dtype, window, sinks)


def topk_blocks(heads, kv_heads, head_dim, k, block=64, pool=32, dtype="bf16"):
    """Top-k KV blocks per query block, from scores of mean-pooled Q and K (groups of
    `pool` tokens) over `block` x `block` tiles; the sink and diagonal blocks are
    always kept and count towards `k`."""
    return _text("topk_blocks", heads, kv_heads, head_dim, dtype, pool, block, k)


topk = topk_blocks


def block_mask(heads, kv_heads, head_dim, block=128, causal=False, set_heads=None, dtype="bf16"):
    """Attention over a block set given at run time: the program takes a fourth input
    ``blocks``, int32 ``[B, set_heads, ceil(Sq / block), cap]`` listing the KV blocks
    (``block`` x ``block`` tiles) of every (batch, head, query block), -1 for unused
    slots; order and repeats do not matter (docs/semantics.md §14). ``set_heads``:
    ``heads`` (default, one list per query head) or ``kv_heads`` (one per GQA group).
    ``causal`` still applies inside the chosen blocks. ``sattn.block_list`` builds the
    input from a boolean block mask."""
    return _text("block_mask", heads, kv_heads, head_dim, dtype, block, 1 if causal else 0,
                 set_heads or 0)


def omnisparse(heads, kv_heads, head_dim, dtype="bf16"):
    """OmniSparse prefill (causal) with the defaults of docs/patterns/omnisparse.md:
    lazy/active query rows, the flattest head's block budget shared by the heads
    of a row, each head's own top blocks; lazy rows attend to sinks + window."""
    return _text("omnisparse", heads, kv_heads, head_dim, dtype)


def omnisparse_decode(heads, kv_heads, head_dim, dtype="bf16"):
    """OmniSparse decode: inputs prompt, k, v, q (one decode row). kv_slim keeps per
    KV head the cached tokens the prompt's last 64 rows attend to (tau 0.95, 4
    sinks, 64 recent); the decode reads only those. Returns O and LSE."""
    return _text("omnisparse_decode", heads, kv_heads, head_dim, dtype)



def _thousandths(what, tau):
    if not 0.0 < tau <= 1.0:
        raise ValueError("%s must lie in (0, 1], got %r" % (what, tau))
    return int(round(tau * 1000))


def xattention(heads, kv_heads, head_dim, stride=8, tau=0.9, slack=0, dtype="bf16"):
    """XAttention (docs/patterns/xattention.md): strided antidiagonal block scores
    (`stride` 8 or 16, 128 x 128 blocks), per query block the sink and diagonal blocks
    plus the largest others up to `tau` of the estimated mass, and `slack` more blocks
    past it (1 reproduces the mit-han-lab/x-attention prefill selection); causal."""
    if not isinstance(slack, int) or isinstance(slack, bool) or slack < 0:
        raise ValueError("slack must be a non-negative int, got %r" % (slack,))
    return _text("xattention", heads, kv_heads, head_dim, dtype, stride,
                 _thousandths("tau", tau), slack)


def flexprefill(heads, kv_heads, head_dim, gamma=0.9, jsd=0.1, min_budget=1024,
                dtype="bf16"):
    """FlexPrefill (docs/patterns/flexprefill.md): vertical and slash mass of the last
    128 queries, coverage budgets at `gamma` (at least `min_budget` tokens), block 0 and
    the diagonal plus the best columns and diagonals; heads whose pooled estimate lies
    within sqrt-JSD `jsd` of their vertical mass also take a head-wide cumulative
    `gamma` of pooled block scores (`jsd` = 0: no query-aware heads); causal, 128 x 128
    blocks."""
    if not isinstance(min_budget, int) or isinstance(min_budget, bool) or min_budget < 1:
        raise ValueError("min_budget must be a positive int (tokens), got %r" % (min_budget,))
    if not 0.0 <= jsd <= 1.0:
        raise ValueError("jsd must lie in [0, 1], got %r" % (jsd,))
    return _text("flexprefill", heads, kv_heads, head_dim, dtype, _thousandths("gamma", gamma),
                 int(round(jsd * 1000)) if jsd > 0 else -1, min_budget)


def minference_vertical_slash(heads, kv_heads, head_dim, vertical=1000, slash=6096, block=64,
                              dtype="bf16"):
    """MInference vertical-slash at token granularity (docs/patterns/minference.md):
    per head the first 30 keys and the best `vertical` key columns, the distances
    0..99 and the best `slash` slashes of the last 64 queries' attention; each slash
    is a band `block` distances wide through every `block`-row query block; one
    causal attention reads the bands as key ranges and the columns as gathered keys."""
    for what, value in (("vertical", vertical), ("slash", slash), ("block", block)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError("%s must be a positive int, got %r" % (what, value))
    return _text("minference_vertical_slash", heads, kv_heads, head_dim, dtype, vertical, slash,
                 block)


def unisparse(heads, kv_heads, head_dim, tau=0.9, cap=0, dtype="bf16"):
    """UniSparse (docs/patterns/unisparse.md): composite tokens at granularities 32 and
    64, their block scores averaged, per query block the sink and diagonal blocks plus
    the largest others up to `tau` of the estimated mass (at most `cap` blocks when
    `cap` > 0); causal, 128 x 128 blocks."""
    return _text("unisparse", heads, kv_heads, head_dim, dtype, _thousandths("tau", tau), cap)


def quest(heads, kv_heads, head_dim, page=16, pages=64, bounds_as_inputs=False, dtype="bf16"):
    """Quest (docs/patterns/quest.md): per page of `page` keys their elementwise min
    and max; per query the upper bound of its logits in each page; the current page
    plus the top pages by that bound (`pages` in all); causal. With
    `bounds_as_inputs` the page bounds are inputs kmin, kmax ([B, kv_heads,
    ceil(Skv / page), head_dim] float32: the min / max over each page's keys, e.g.
    k.unflatten(2, (-1, page)).amin(3) when page divides Skv) instead of being
    pooled from the whole cache on every call."""
    for what, value in (("page", page), ("pages", pages)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError("%s must be a positive int, got %r" % (what, value))
    return _text("quest", heads, kv_heads, head_dim, dtype, page, pages,
                 1 if bounds_as_inputs else 0)

