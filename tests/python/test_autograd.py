"""sattn.autograd on the CPU (the float64 reference behind a CPU program):
SparseAttention's gradients against torch.autograd over an explicitly masked
float64 attention, through the sattn::attention custom op and through the
plain autograd.Function, torch.compile of a function calling the op, which
inputs get gradients, and the ValueErrors of bad arguments. Skipped when
torch is not installed (CI has no torch)."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import sattn  # noqa: E402
from sattn.autograd import SparseAttention, program_by_id, register  # noqa: E402

H, HKV, D, S = 4, 2, 64, 77
PATHS = ["op", "function"] if hasattr(torch.library, "custom_op") else ["function"]


def make(B=1, sq=S, skv=S, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(B, h, s, D, generator=g, dtype=torch.float32)
                 for h, s in ((H, sq), (HKV, skv), (HKV, skv)))


def causal_mask(sq, skv):
    i = torch.arange(sq)[:, None] + (skv - sq)
    return torch.arange(skv)[None, :] <= i


def reference(q, k, v, mask):
    """float64 masked attention, differentiable; rows that see no key give O = 0."""
    k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
    v = v.repeat_interleave(q.shape[1] // v.shape[1], dim=1)
    s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    s = s.masked_fill(~mask, float("-inf"))
    m = s.amax(-1, keepdim=True).detach()
    empty = torch.isinf(m)
    p = torch.exp(s - torch.where(empty, torch.zeros_like(m), m))
    l = p.sum(-1, keepdim=True)
    return (p @ v) / torch.where(empty, torch.ones_like(l), l)


def rel_err(x, ref):
    x, ref = x.detach().double(), ref.detach().double()
    return float(torch.linalg.vector_norm(x - ref) / torch.linalg.vector_norm(ref))


def grads_of(fn, q, k, v, w, *extra):
    """(O, dq, dk, dv) of sum(w * fn(q, k, v, *extra))."""
    q, k, v = (x.detach().clone().requires_grad_(True) for x in (q, k, v))
    o = fn(q, k, v, *extra)
    (o * w).sum().backward()
    return o.detach(), q.grad, k.grad, v.grad


def ref_grads(q, k, v, w, mask):
    return grads_of(lambda a, b, c: reference(a, b, c, mask), *(x.double() for x in (q, k, v)),
                    w.double())


def assert_close(got, want, tol=1e-2):
    for name, a, b in zip(("o", "dq", "dk", "dv"), got, want):
        assert a is not None and a.shape == b.shape, name
        assert not torch.isnan(a).any(), name
        assert rel_err(a, b) <= tol, (name, rel_err(a, b))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("lse", [False, True])
@pytest.mark.parametrize("deterministic", [False, True])
def test_dense_causal_gqa(session, path, lse, deterministic):
    program = session.compile(sattn.patterns.dense(H, HKV, D, causal=True, lse=lse))
    attn = SparseAttention(program, deterministic=deterministic, custom_op=path == "op")
    q, k, v = make(B=2)
    w = torch.randn(q.shape, generator=torch.Generator().manual_seed(7))
    got = grads_of(attn, q, k, v, w)
    assert got[0].dtype == torch.float32 and got[1].dtype == torch.float32
    assert_close(got, ref_grads(q, k, v, w, causal_mask(S, S)))


@pytest.mark.parametrize("path", PATHS)
def test_dense_not_causal_shorter_queries(session, path):
    program = session.compile(sattn.patterns.dense(H, HKV, D, causal=False))
    attn = SparseAttention(program, custom_op=path == "op")
    q, k, v = make(sq=33, skv=77, seed=1)
    w = torch.randn(q.shape, generator=torch.Generator().manual_seed(8))
    mask = torch.ones(33, 77, dtype=torch.bool)
    assert_close(grads_of(attn, q, k, v, w), ref_grads(q, k, v, w, mask))


def token_mask(blocks, block, sq, skv):
    """[B, heads, nQB, nKB] -> [B, H, Sq, Skv] (GQA groups repeated)."""
    m = blocks.repeat_interleave(block, dim=2).repeat_interleave(block, dim=3)[:, :, :sq, :skv]
    return m.repeat_interleave(H // blocks.shape[1], dim=1)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("set_heads", [H, HKV])
def test_block_mask_list(session, path, causal, set_heads):
    block, B = 16, 2
    program = session.compile(sattn.patterns.block_mask(H, HKV, D, block=block, causal=causal,
                                                        set_heads=set_heads))
    attn = SparseAttention(program, custom_op=path == "op")
    q, k, v = make(B=B, seed=2)
    nb = -(-S // block)
    g = torch.Generator().manual_seed(3)
    blocks = torch.rand(B, set_heads, nb, nb, generator=g) < 0.5
    blocks[:, :, 1] = False  # a query block that sees nothing: O = 0, no gradient
    lst = sattn.block_list(blocks)
    assert lst.dtype == torch.int32
    w = torch.randn(q.shape, generator=g)
    mask = token_mask(blocks, block, S, S)
    if causal:
        mask = mask & causal_mask(S, S)
    got = grads_of(attn, q, k, v, w, lst)
    assert torch.all(got[0][:, :, block:2 * block] == 0)
    assert torch.all(got[1][:, :, block:2 * block] == 0)
    assert_close(got, ref_grads(q, k, v, w, mask))


@pytest.mark.parametrize("path", PATHS)
def test_only_some_inputs_need_grad(session, path):
    program = session.compile(sattn.patterns.dense(H, HKV, D, causal=True))
    attn = SparseAttention(program, custom_op=path == "op")
    q, k, v = make(seed=4)
    o = attn(q, k, v)  # nothing requires grad: a plain forward
    assert not o.requires_grad
    assert torch.equal(o, program(q, k, v))
    v.requires_grad_(True)
    w = torch.randn(q.shape, generator=torch.Generator().manual_seed(5))
    (attn(q, k, v) * w).sum().backward()
    assert q.grad is None and k.grad is None
    _, _, _, dv = ref_grads(q, k, v.detach(), w, causal_mask(S, S))
    assert rel_err(v.grad, dv) <= 1e-2


def test_expanded_dout(session):
    # d(o.sum())/do is an expanded tensor with zero strides: copied, not rejected.
    program = session.compile(sattn.patterns.dense(H, HKV, D, causal=True))
    attn = SparseAttention(program)
    q, k, v = (x.requires_grad_(True) for x in make(seed=6))
    attn(q, k, v).sum().backward()
    want = ref_grads(q.detach(), k.detach(), v.detach(), torch.ones(q.shape), causal_mask(S, S))
    for got, ref in zip((q.grad, k.grad, v.grad), want[1:]):
        assert rel_err(got, ref) <= 1e-2


@pytest.mark.skipif(not hasattr(torch.library, "custom_op"), reason="needs torch >= 2.4")
@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_torch_compile(session, backend):
    program = session.compile(sattn.patterns.dense(H, HKV, D, causal=True, lse=True))
    attn = SparseAttention(program)
    w = torch.randn(1, H, S, D, generator=torch.Generator().manual_seed(9))

    def loss(q, k, v):
        return (torch.tanh(attn(q, k, v)) * w).sum()

    compiled = torch.compile(loss, backend=backend, fullgraph=True)
    q, k, v = make(seed=10)
    eager = grads_of(lambda *a: loss(*a).reshape(1), q, k, v, torch.ones(1))
    got = grads_of(lambda *a: compiled(*a).reshape(1), q, k, v, torch.ones(1))
    for a, b in zip(got, eager):
        assert rel_err(a, b) <= 1e-6


@pytest.mark.skipif(not hasattr(torch.library, "custom_op"), reason="needs torch >= 2.4")
def test_custom_op_fake_checks_shapes(session):
    program = session.compile(sattn.patterns.dense(H, HKV, D, causal=True))
    pid = register(program)
    assert register(program) == pid and program_by_id(pid) is program
    SparseAttention(program)  # defines the ops
    q, k, v = (x.to("meta") for x in make())
    o, lse = torch.ops.sattn.attention.default(pid, False, q, k, v, [])
    assert o.shape == q.shape and o.device.type == "meta" and lse.numel() == 0
    with pytest.raises(ValueError, match=r"input 'k' must have shape"):
        torch.ops.sattn.attention.default(pid, False, q, q, v, [])
    with pytest.raises(ValueError, match="no sattn program is registered"):
        program_by_id(10 ** 9)


def test_wrong_arguments(session):
    program = session.compile(sattn.patterns.dense(H, HKV, D, causal=True))
    attn = SparseAttention(program)
    q, k, v = make()
    with pytest.raises(ValueError, match=r"input 'k' must have shape \[\?, 2, \?, 64\], got "
                                         r"\[1, 4, 77, 64\]"):
        attn(q, q, v)
    with pytest.raises(ValueError, match=r"input 'q' must have rank 4"):
        attn(q[0], k, v)
    with pytest.raises(ValueError, match=r"input 'v' must be a torch.Tensor, got numpy.ndarray"):
        attn(q, k, v.numpy())
    with pytest.raises(ValueError, match=r"takes 3 inputs \(q, k, v\), 4 were given"):
        attn(q, k, v, v)
    with pytest.raises(ValueError, match=r"input 'q' must be .*torch.float32, got torch.float64"):
        attn(q.double(), k, v)
    with pytest.raises(ValueError, match=r"input 'k' has batch 2 but q has batch 1"):
        attn(q, torch.cat([k, k]), torch.cat([v, v]))
    with pytest.raises(ValueError, match=r"k and v must have the same length, got 77 and 76"):
        attn(q, k, v[:, :, :76])
    with pytest.raises(ValueError, match=r"one device: q is on cpu, input 'k' on meta"):
        attn(q, k.to("meta"), v)
    with pytest.raises(ValueError, match=r"the program runs on the CPU"):
        attn(q.to("meta"), k.to("meta"), v.to("meta"))
    decode = session.compile(sattn.patterns.omnisparse_decode(H, HKV, D))
    with pytest.raises(ValueError, match=r"first inputs are q, k, v; this one takes "
                                         r"\(prompt, k, v, q\)"):
        SparseAttention(decode)
    with pytest.raises(ValueError, match=r"needs a sattn.Program"):
        SparseAttention("dense")
    with pytest.raises(ValueError, match=r"deterministic must be a bool"):
        SparseAttention(program, deterministic=1)


def test_program_backward_out_lse_and_grads(session):
    """Program.backward's new arguments on the CPU (numpy): out/lse both or
    neither, their shapes, gradients written in place."""
    program = session.compile(sattn.patterns.dense(H, HKV, D, causal=True, lse=True))
    rng = np.random.default_rng(0)
    q = rng.standard_normal((1, H, 20, D)).astype(np.float32)
    k = rng.standard_normal((1, HKV, 20, D)).astype(np.float32)
    v = rng.standard_normal((1, HKV, 20, D)).astype(np.float32)
    dout = rng.standard_normal(q.shape).astype(np.float32)
    o, lse = program(q, k, v)
    plain = program.backward(q, k, v, dout=dout)
    saved = program.backward(q, k, v, dout=dout, out=o, lse=lse, deterministic=True)
    for a, b in zip(plain, saved):
        assert np.array_equal(a, b)
    grads = tuple(np.full(x.shape, np.nan, np.float32) for x in (q, k, v))
    res = program.backward(q, k, v, dout=dout, grads=grads)
    assert all(a is b for a, b in zip(res, grads))
    for a, b in zip(plain, grads):
        assert np.array_equal(a, b)
    with pytest.raises(ValueError, match=r"both out and lse .* or neither"):
        program.backward(q, k, v, dout=dout, out=o)
    with pytest.raises(ValueError, match=r"lse must have shape \[1, 4, 20\]"):
        program.backward(q, k, v, dout=dout, out=o, lse=lse[:, :, :19])
    with pytest.raises(ValueError, match=r"out must have shape \[1, 4, 20, 64\]"):
        program.backward(q, k, v, dout=dout, out=o[:, :, :19], lse=lse)
    with pytest.raises(ValueError,
                       match=r"dk must have shape \[\?, 2, \?, 64\], got \[1, 4, 20, 64\]"):
        program.backward(q, k, v, dout=dout, grads=(grads[0], grads[0], grads[2]))
