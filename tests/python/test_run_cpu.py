"""Runs compiled patterns on the CPU (numpy arrays) against a float64 reference."""
import numpy as np
import pytest

import sattn
from attention_ref import attention, block_mask, rel_err

H, HKV, D = 4, 2, 16
rng = np.random.default_rng(1234)


def qkv(dtype, B=1, sq=40, skv=40, h=H, hkv=HKV, d=D):
    q = rng.standard_normal((B, h, sq, d)).astype(dtype)
    k = rng.standard_normal((B, hkv, skv, d)).astype(dtype)
    v = rng.standard_normal((B, hkv, skv, d)).astype(dtype)
    return q, k, v


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("sq,skv", [(40, 40), (24, 40), (1, 33)])
def test_dense_causal(session, dtype, sq, skv):
    program = session.compile(sattn.patterns.dense(H, HKV, D, causal=True))
    q, k, v = qkv(dtype, B=2, sq=sq, skv=skv)
    o = program(q, k, v)
    assert o.shape == q.shape and o.dtype == q.dtype
    ref, _ = attention(q, k, v, causal=True)
    assert not np.isnan(o).any()
    assert rel_err(o, ref) <= 1e-2


def test_dense_not_causal(session):
    program = session.compile(sattn.patterns.dense(H, HKV, D, causal=False))
    q, k, v = qkv(np.float32, sq=20, skv=30)
    ref, _ = attention(q, k, v, causal=False)
    assert rel_err(program(q, k, v), ref) <= 1e-5


def test_dense_lse_and_empty_rows(session):
    # Sq > Skv: with bottom-right alignment the first rows see no key.
    program = session.compile(sattn.patterns.dense(H, HKV, D, causal=True, lse=True))
    q, k, v = qkv(np.float32, sq=12, skv=8)
    o, lse = program(q, k, v)
    ref_o, ref_lse = attention(q, k, v, causal=True)
    assert lse.shape == q.shape[:3] and lse.dtype == np.float32
    assert np.all(o[:, :, :4] == 0) and np.all(np.isneginf(lse[:, :, :4]))
    assert rel_err(o, ref_o) <= 1e-5
    assert np.allclose(lse[:, :, 4:], ref_lse[:, :, 4:], rtol=1e-5, atol=1e-5)


def test_out_and_lse_in_place(session):
    program = session.compile(sattn.patterns.dense(H, HKV, D, causal=True, lse=True))
    q, k, v = qkv(np.float16)
    out = np.full(q.shape, np.nan, dtype=np.float32)
    lse = np.full(q.shape[:3], np.nan, dtype=np.float32)
    o, l = program(q, k, v, out=out, lse=lse)
    assert o is out and l is lse
    ref_o, ref_lse = attention(q, k, v)
    assert rel_err(out, ref_o) <= 1e-5 and rel_err(lse, ref_lse) <= 1e-5


def test_strided_bshd_views(session):
    # [B, S, H, D] buffers viewed as [B, H, S, D] without a copy.
    program = session.compile(sattn.patterns.dense(H, HKV, D, causal=True))
    B, S = 2, 24
    q = rng.standard_normal((B, S, H, D)).astype(np.float32).transpose(0, 2, 1, 3)
    k = rng.standard_normal((B, S, HKV, D)).astype(np.float32).transpose(0, 2, 1, 3)
    v = rng.standard_normal((B, S, HKV, D)).astype(np.float32).transpose(0, 2, 1, 3)
    assert not q.flags.c_contiguous
    out = np.empty((B, S, H, D), dtype=np.float32).transpose(0, 2, 1, 3)
    program(q, k, v, out=out)
    ref, _ = attention(q, k, v)
    assert rel_err(out, ref) <= 1e-5


def test_streaming(session):
    window, sinks = 8, 2
    program = session.compile(sattn.patterns.streaming(H, HKV, D, window=window, sinks=sinks))
    q, k, v = qkv(np.float32, sq=40, skv=48)
    ref, _ = attention(q, k, v, causal=True, window=window, sinks=sinks)
    dense, _ = attention(q, k, v, causal=True)
    o = program(q, k, v)
    assert rel_err(o, ref) <= 1e-2
    assert rel_err(o, dense) > 1e-2  # the window really drops keys


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_topk_keeping_every_block_is_dense(session, dtype):
    # 64 tokens in blocks of 16: k = 4 keeps every causally visible block.
    program = session.compile(sattn.patterns.topk_blocks(H, HKV, D, k=4, block=16, pool=8))
    q, k, v = qkv(dtype, B=2, sq=64, skv=64)
    ref, _ = attention(q, k, v, causal=True)
    o = program(q, k, v)
    assert not np.isnan(o).any()
    assert rel_err(o, ref) <= 1e-2


def test_topk_two_blocks_is_sink_plus_diagonal(session):
    # k = 2 leaves room for the forced blocks only: the sink and the diagonal.
    block = 16
    program = session.compile(sattn.patterns.topk_blocks(H, HKV, D, k=2, block=block, pool=8))
    q, k, v = qkv(np.float32, sq=64, skv=64)
    allowed = block_mask((1, H, 64, 64), block, lambda I: {0, I})
    ref, _ = attention(q, k, v, causal=True, allowed=allowed)
    dense, _ = attention(q, k, v, causal=True)
    o = program(q, k, v)
    assert rel_err(o, ref) <= 1e-2
    assert rel_err(o, dense) > 1e-2


def test_run_selection_reports_density(session):
    # Sink + diagonal of 4 causal 16-blocks: query block I keeps min(2, I + 1)
    # of its I + 1 visible blocks -> (1 + 2 + 2 + 2) / (1 + 2 + 3 + 4).
    program = session.compile(sattn.patterns.topk_blocks(H, HKV, D, k=2, block=16, pool=8))
    q, k, v = qkv(np.float32, sq=64, skv=64)
    o, report = program.run_selection(q, k, v)
    assert report == {"density": pytest.approx(7 / 10)}
    assert rel_err(o, program(q, k, v)) == 0
    # Dense causal attention: every valid block pair, and no other stage.
    dense = session.compile(sattn.patterns.dense(H, HKV, D, causal=True))
    _, report = dense.run_selection(q, k, v)
    assert report == {"density": 1.0}
    # OmniSparse on 64 rows: every row puts all its mass in the 1024-key
    # window, so all are lazy and every 8th stays active.
    omni = session.compile(sattn.patterns.omnisparse(H, HKV, D))
    _, report = omni.run_selection(q, k, v)
    assert report == {"density": 1.0, "active_rows": 0.125}


def test_run_selection_returns_the_block_mask(session):
    program = session.compile(sattn.patterns.topk_blocks(H, HKV, D, k=2, block=16, pool=8))
    q, k, v = qkv(np.float32, sq=64, skv=64)
    _, report = program.run_selection(q, k, v, blocks=True)
    mask = report["blocks"]
    assert mask.shape == (1, H, 4, 4) and mask.dtype == bool and report["block_size"] == (16, 16)
    for I in range(4):
        # The sink and the diagonal block, nothing above the diagonal.
        assert mask[0, :, I, 0].all() and mask[0, :, I, I].all()
        assert not mask[0, :, I, I + 1:].any()
        assert (mask[0, :, I].sum(axis=-1) == min(2, I + 1)).all()
    assert mask.sum() / (H * 10) == pytest.approx(report["density"])
    # Without a block set: the token mask's 128 x 128 blocks (a sliding
    # window of 100 keys over 300 rows leaves the corner block out).
    window = session.compile(sattn.patterns.streaming(H, HKV, D, window=100, sinks=0))
    q, k, v = qkv(np.float32, sq=300, skv=300)
    _, report = window.run_selection(q, k, v, blocks=True)
    want = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1]], dtype=bool)
    assert report["block_size"] == (128, 128)
    assert (report["blocks"] == want[None, None]).all()
    fresh = session.compile(sattn.patterns.topk_blocks(H, HKV, D, k=3, block=16, pool=8))
    with pytest.raises(sattn.Error, match="no sattn_program_run_selection has run"):
        fresh._last_blocks()


def test_topk_three_blocks_is_a_valid_selection(session):
    # k = 3 of 4 blocks: each (head, query block) must match attention over
    # the sink, the diagonal and exactly one other visible block.
    block, S = 16, 64
    program = session.compile(sattn.patterns.topk_blocks(H, HKV, D, k=3, block=block, pool=8))
    q, k, v = qkv(np.float32, sq=S, skv=S)
    o = program(q, k, v)
    dense, _ = attention(q, k, v, causal=True)
    for I in range(S // block):
        rows = slice(I * block, (I + 1) * block)
        others = [J for J in range(1, I)]
        candidates = [{0, I} | {J} for J in others] or [set(range(I + 1))]
        for h in range(H):
            errs = []
            for kept in candidates:
                allowed = block_mask((1, H, S, S), block, lambda _I, kept=kept: kept)
                ref, _ = attention(q, k, v, causal=True, allowed=allowed)
                errs.append(rel_err(o[0, h, rows], ref[0, h, rows]))
            assert min(errs) <= 1e-2, (I, h, errs)
    assert rel_err(o, dense) > 1e-3


def test_fp16_specialisation_runs(session):
    program = session.compile(sattn.patterns.dense(H, HKV, D), dtype="fp16")
    assert program.inputs[0].dtype == "fp16"
    q, k, v = qkv(np.float16)
    ref, _ = attention(q, k, v)
    assert rel_err(program(q, k, v), ref) <= 1e-2


def test_variant_from_file(session, tmp_path):
    path = tmp_path / "dense.mlir"
    path.write_text(sattn.patterns.dense(H, HKV, D))
    q, k, v = qkv(np.float32)
    ref, _ = attention(q, k, v)
    for variant in (path, str(path)):
        program = session.compile(variant)
        assert rel_err(program(q, k, v), ref) <= 1e-5


def test_slim_cache_decode_matches_run(session):
    # OmniSparse decode in two calls: slim() once, decode() per step.
    program = session.compile(sattn.patterns.omnisparse_decode(H, HKV, D))
    prompt = rng.standard_normal((2, H, 70, D)).astype(np.float32) + 0.3
    _, k, v = qkv(np.float32, B=2, sq=1, skv=120)
    q = rng.standard_normal((2, H, 1, D)).astype(np.float32) + 0.3
    (o_run, lse_run), report = program.run_selection(prompt, k, v, q)
    cache = program.slim(prompt, k, v, reserve=1)
    o, lse = program.decode(cache, q)
    assert np.abs(o - o_run).max() < 1e-6 and np.abs(lse - lse_run).max() < 1e-6
    kept = sum(cache.length(b, h) for b in range(2) for h in range(HKV))
    assert cache.tokens == kept and kept == round(report["kv_kept"] * 2 * HKV * 120)
    assert cache.capacity(0, 0) == cache.length(0, 0) + 1
    assert cache.bytes_before == 2 * 2 * HKV * 120 * D * 2
    assert cache.bytes_after == 2 * (kept + 2 * HKV) * D * 2 + 2 * HKV * 12
    cache.append(k[:, :, :1], v[:, :, :1])
    assert cache.length(1, 1) == cache.capacity(1, 1)
    with pytest.raises(sattn.Error, match="larger reserve"):
        cache.append(k[:, :, :1], v[:, :, :1])
    with pytest.raises(ValueError, match=r"slim\(\) takes 3 inputs \(prompt, k, v\)"):
        program.slim(prompt, k)


def _vslash_mask(q, k, vertical, slash, block, last=64, sink_columns=30, local_slashes=100):
    """Semantics 12b in numpy: the allowed [B, H, Sq, Skv] keys."""
    q, k = np.asarray(q, np.float64), np.asarray(k, np.float64)
    B, Hq, Sq, Dh = q.shape
    Skv = k.shape[2]
    k = np.repeat(k, Hq // k.shape[1], axis=1)
    n = min(last, Sq)
    allowed = np.zeros((B, Hq, Sq, Skv), dtype=bool)
    rows = np.arange(Sq - n, Sq)
    pos = rows + Skv - Sq
    for b in range(B):
        for h in range(Hq):
            s = q[b, h, rows] @ k[b, h].T / np.sqrt(Dh)
            s = np.where(np.arange(Skv)[None, :] <= pos[:, None], s, -np.inf)
            p = np.exp(s - s.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            vert = p.sum(axis=0)
            sl = np.zeros(Skv)
            for r, ip in enumerate(pos):
                sl[: ip + 1] += p[r, ip - np.arange(ip + 1)]

            def pick(x, forced, count):
                forced = min(forced, Skv)
                rest = forced + np.argsort(-x[forced:], kind="stable")
                return np.concatenate([np.arange(forced), rest])[: min(Skv, max(count, forced))]

            cols = set(pick(vert, sink_columns, vertical).tolist())
            dists = pick(sl, local_slashes, slash)
            band = np.zeros(Skv + block, dtype=bool)
            for d in dists:
                band[d : d + block] = True
            for i in range(Sq):
                e = min((i // block + 1) * block, Sq) + Skv - Sq
                for j in range(min(i + Skv - Sq + 1, Skv)):
                    allowed[b, h, i, j] = band[e - 1 - j] or j in cols
    return allowed


def test_minference_vertical_slash_token_level(session):
    # 300 keys, 16-row blocks: bands of 16 distances per kept slash, 40 columns.
    text = sattn.patterns.minference_vertical_slash(H, HKV, D, vertical=40, slash=100, block=16)
    assert "sattn.vslash %q, %k {last = 64 : i64, vertical = 40 : i64, slash = 100 : i64" in text
    program = session.compile(text)
    q, k, v = qkv(np.float32, B=2, sq=250, skv=300)
    allowed = _vslash_mask(q, k, 40, 100, 16)
    ref, _ = attention(q, k, v, causal=True, allowed=allowed)
    dense, _ = attention(q, k, v, causal=True)
    o, report = program.run_selection(q, k, v, blocks=True)
    assert rel_err(o, ref) <= 1e-2
    assert rel_err(o, dense) > 1e-3  # keys really dropped
    causal = np.tril(np.ones((250, 300), dtype=bool), 300 - 250)
    assert report["density"] == pytest.approx(allowed.sum() / (2 * H * causal.sum()))
    # Block mask: the 16 x 16 blocks the set touches.
    mask = report["blocks"]
    assert report["block_size"] == (16, 16) and mask.shape == (2, H, 16, 19)
    touched = allowed.reshape(2, H, 250, 300)
    for I in range(16):
        rows = touched[:, :, I * 16 : (I + 1) * 16].any(axis=2)
        want = np.stack([rows[..., J * 16 : (J + 1) * 16].any(axis=-1) for J in range(19)], -1)
        assert (mask[:, :, I] == want).all()
    with pytest.raises(ValueError, match="vertical must be a positive int"):
        sattn.patterns.minference_vertical_slash(H, HKV, D, vertical=0)


def test_backward_matches_finite_differences(session):
    """Program.backward (CPU): gradients of sum(dout * O) against central
    differences of the forward on sampled elements."""
    program = session.compile(sattn.patterns.dense(H, HKV, D, causal=True))
    q, k, v = qkv(np.float32, B=1, sq=11, skv=11)
    dout = rng.standard_normal(q.shape).astype(np.float32)
    dq, dk, dv = program.backward(q, k, v, dout=dout)
    assert dq.shape == q.shape and dk.shape == k.shape and dv.shape == v.shape

    def loss():
        return float((dout.astype(np.float64) * program(q, k, v)).sum())

    for x, g in ((q, dq), (k, dk), (v, dv)):
        rms = float(np.sqrt((g.astype(np.float64) ** 2).mean()))
        assert rms > 1e-3  # a zero gradient fails
        for e in rng.choice(x.size, 8, replace=False):
            idx = np.unravel_index(e, x.shape)
            x0 = x[idx]
            x[idx] = x0 + 1e-2
            up = loss()
            x[idx] = x0 - 1e-2
            down = loss()
            x[idx] = x0
            assert abs((up - down) / 2e-2 - g[idx]) <= 2e-3 * rms + 1e-4


def test_backward_misuse(session):
    program = session.compile(sattn.patterns.dense(H, HKV, D, causal=True))
    q, k, v = qkv(np.float32)
    with pytest.raises(sattn.Error, match="dout must be"):
        program.backward(q, k, v, dout=np.zeros((1, H, 39, D), np.float32))


def test_backward_c_flags(session):
    """sattn_program_backward_ex: flags 0 is the deterministic default, the
    two mode flags exclude each other, unknown bits are refused."""
    import ctypes
    from sattn import _lib

    program = session.compile(sattn.patterns.dense(H, HKV, D, causal=True))
    q, k, v = qkv(np.float32, B=1, sq=9, skv=9)
    dout = rng.standard_normal(q.shape).astype(np.float32)
    want = program.backward(q, k, v, dout=dout)
    for det in (True, False):  # both modes reach the C call; the CPU is exact either way
        got = program.backward(q, k, v, dout=dout, deterministic=det)
        for a, b in zip(got, want):
            assert np.array_equal(a, b)
    lib = program._lib
    for flags, msg in ((_lib.BACKWARD_DETERMINISTIC | _lib.BACKWARD_ATOMIC_DQ, "exclude each other"),
                       (8, "unknown flags 8")):
        rc = lib.sattn_program_backward_ex(program._h(), None, 0, None, None, None, None, 0,
                                           flags, None)
        assert rc != 0
        assert msg in lib.sattn_last_error().decode()
