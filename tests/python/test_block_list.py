"""A block set given as input (docs/semantics.md §14) through the Python
package on the CPU: sattn.block_list from a boolean mask, patterns.block_mask
programs against the numpy reference, and the errors for bad lists."""
import numpy as np
import pytest

import sattn
from attention_ref import attention, rel_err

H, HKV, D = 4, 2, 16
rng = np.random.default_rng(99)


def qkv(B, sq, skv):
    return (rng.standard_normal((B, H, sq, D)).astype(np.float32),
            rng.standard_normal((B, HKV, skv, D)).astype(np.float32),
            rng.standard_normal((B, HKV, skv, D)).astype(np.float32))


def token_mask(mask, block, sq, skv, heads):
    """[B, heads, nQB, nKB] block mask -> [B, H, Sq, Skv] token mask (GQA groups repeated)."""
    m = np.repeat(np.repeat(mask, block, axis=2), block, axis=3)[:, :, :sq, :skv]
    return np.repeat(m, H // heads, axis=1)


def test_block_list_from_mask():
    mask = np.array([[[[1, 0, 1], [0, 0, 0], [1, 1, 1]]]], dtype=bool)
    lst = sattn.block_list(mask)
    assert lst.dtype == np.int32 and lst.shape == (1, 1, 3, 3) and lst.flags.c_contiguous
    assert lst[0, 0].tolist() == [[0, 2, -1], [-1, -1, -1], [0, 1, 2]]
    assert sattn.block_list(mask, cap=5)[0, 0, 0].tolist() == [0, 2, -1, -1, -1]
    assert sattn.block_list(np.zeros((2, 3), bool)).tolist() == [[-1], [-1]]
    with pytest.raises(ValueError, match="keeps 3 blocks but cap is 2"):
        sattn.block_list(mask, cap=2)
    with pytest.raises(TypeError, match="mask must be"):
        sattn.block_list([[True]])


def test_pattern_text_and_inputs(session):
    text = sattn.patterns.block_mask(H, HKV, D, block=8, causal=True, set_heads=HKV)
    assert '{sattn.name = "blocks"}' in text and "heads = 2" in text
    program = session.compile(text)
    assert program.input_names == ["q", "k", "v", "blocks"]
    assert program.inputs[3] == sattn.TensorSpec("blocks", "i32", (None, HKV, None, None))


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("set_heads", [H, HKV])
def test_random_mask_matches_reference(session, causal, set_heads):
    block, B, sq, skv = 8, 2, 37, 45
    program = session.compile(sattn.patterns.block_mask(H, HKV, D, block=block, causal=causal,
                                                        set_heads=set_heads))
    q, k, v = qkv(B, sq, skv)
    nqb, nkb = -(-sq // block), -(-skv // block)
    mask = rng.random((B, set_heads, nqb, nkb)) < 0.4
    mask[:, :, 1] = False  # a row that selects nothing: O = 0 there
    o = program(q, k, v, sattn.block_list(mask))
    ref, _ = attention(q, k, v, causal=causal,
                       allowed=token_mask(mask, block, sq, skv, set_heads))
    assert not np.isnan(o).any()
    assert np.all(o[:, :, block:2 * block] == 0)
    assert rel_err(o, ref) <= 1e-5


def test_unsorted_repeated_padded_list_equals_sorted(session):
    program = session.compile(sattn.patterns.block_mask(H, HKV, D, block=8, causal=True))
    q, k, v = qkv(1, 24, 24)
    mask = np.ones((1, H, 3, 3), bool)
    sorted_list = sattn.block_list(mask)
    messy = np.full((1, H, 3, 7), -1, np.int32)
    messy[..., :3] = sorted_list[..., ::-1]
    messy[..., 5] = sorted_list[..., 1]
    o1 = program(q, k, v, sorted_list)
    o2 = program(q, k, v, messy)
    dense = session.compile(sattn.patterns.dense(H, HKV, D, causal=True))(q, k, v)
    assert np.array_equal(o1, o2) and np.array_equal(o1, dense)


def test_bad_lists(session):
    program = session.compile(sattn.patterns.block_mask(H, HKV, D, block=8, causal=True))
    q, k, v = qkv(1, 24, 24)
    good = np.zeros((1, H, 3, 2), np.int32)
    program(q, k, v, good)
    with pytest.raises(ValueError, match=r"input 'blocks' must be numpy.int32, got numpy.float32"):
        program(q, k, v, good.astype(np.float32))
    with pytest.raises(ValueError, match=r"input 'blocks' must have shape \[\?, 4, \?, \?\]"):
        program(q, k, v, np.zeros((1, HKV, 3, 2), np.int32))
    high = good.copy()
    high[0, 2, 1, 1] = 3
    with pytest.raises(sattn.Error, match=r"input 'blocks' row \(b=0, h=2, I=1\) slot 1 holds 3, "
                                          r"outside the valid range \[-1, 2\]"):
        program(q, k, v, high)
    with pytest.raises(sattn.Error, match=r"dimension 2 \(query blocks\) is 4, expected 3"):
        program(q, k, v, np.zeros((1, H, 4, 2), np.int32))
