"""PyTorch autograd over sattn programs: ``SparseAttention(program)``.

    import sattn
    from sattn.autograd import SparseAttention
    program = sattn.Session().compile(sattn.patterns.dense(8, 2, 128, lse=True))
    attn = SparseAttention(program)
    o = attn(q, k, v)            # the program's first output, differentiable in q, k, v
    o.backward(dout)             # Program.backward: the sattn backward kernels

The forward runs the program; the backward runs ``Program.backward``. When
the variant returns LSE (a second output, e.g. ``patterns.dense(...,
lse=True)``) the forward keeps O and LSE and the backward reads them; else it
keeps q, k, v only and the backward recomputes the attention. Inputs past q, k,
v (a block list) get no gradient; the selections the forward makes are
recomputed by the backward and held constant (docs/training.md).

With PyTorch >= 2.4 the call goes through two custom ops,
``sattn::attention`` and ``sattn::attention_backward``
(``torch.library.custom_op``) with fake implementations, so ``torch.compile``
treats the attention as one opaque op. The ops name a program by an integer
id from a module-level registry (``register``); a registered program stays
alive for the life of the process. Older PyTorch gets a plain
``torch.autograd.Function`` (eager only).

A GPU program takes CUDA tensors (zero-copy, torch.cuda.current_stream());
a CPU program (the float64 reference) takes CPU tensors and runs
synchronously, which makes everything here testable without a GPU. torch is
imported on first use: this module imports without it.
"""

import itertools
import sys
import threading

from . import _TORCH_DTYPES, Program, _check_dtype, _check_shape

__all__ = ["SparseAttention", "register", "program_by_id"]

_lock = threading.Lock()
_programs = {}  # registry id -> Program (kept alive: compiled graphs hold the id)
_ids = {}  # id(Program) -> registry id
_next_id = itertools.count(1)
_state = {}  # "ops": the custom ops once defined; "function": the autograd.Function


def _torch():
    try:
        import torch
    except ImportError as e:
        raise ImportError("sattn.autograd needs PyTorch: python3 -m pip install torch") from e
    return torch


def register(program):
    """The registry id of `program` (registered on first use): what the
    ``sattn::attention`` op takes to name it."""
    if not isinstance(program, Program):
        raise ValueError("expected a sattn.Program, got %s" % type(program).__name__)
    with _lock:
        pid = _ids.get(id(program))
        if pid is None:
            pid = next(_next_id)
            _ids[id(program)] = pid
            _programs[pid] = program
        return pid


def program_by_id(pid):
    """The Program registered under `pid`."""
    try:
        return _programs[int(pid)]  # int(): a SymInt under torch.compile specialises here
    except (KeyError, TypeError, ValueError):
        raise ValueError("no sattn program is registered under id %r" % (pid,)) from None


class SparseAttention:
    """``f(q, k, v, *extra)`` -> the program's first output, differentiable
    with respect to q, k and v.

    program: a compiled Program whose first three inputs are q, k, v
    ([B, Hq, Sq, D], [B, Hkv, Skv, D] x 2); further inputs (a block list)
    follow in the program's order. deterministic (default True): the backward
    gives the same bits on every run (dQ summed in a fixed order by a pass of
    its own, on the H100 also the faster mode); False: fp32-atomic dQ. custom_op: None uses the
    ``sattn::attention`` custom op where torch has ``torch.library.custom_op``
    (needed for torch.compile), False the plain autograd.Function.
    """

    def __init__(self, program, deterministic=True, custom_op=None):
        if not isinstance(program, Program):
            raise ValueError("SparseAttention needs a sattn.Program, got %s"
                             % type(program).__name__)
        if program.input_names[:3] != ["q", "k", "v"]:
            raise ValueError("SparseAttention needs a variant whose first inputs are q, k, v; "
                             "this one takes (%s)" % ", ".join(program.input_names))
        if not isinstance(deterministic, bool):
            raise ValueError("deterministic must be a bool, got %r" % (deterministic,))
        torch = _torch()
        has_op = hasattr(torch, "library") and hasattr(torch.library, "custom_op")
        if custom_op and not has_op:
            raise ValueError("custom_op=True needs torch.library.custom_op (PyTorch >= 2.4); "
                             "this is torch %s" % torch.__version__)
        self.program = program
        self.deterministic = deterministic
        self._id = register(program)
        self._use_op = has_op if custom_op is None else bool(custom_op)
        if self._use_op:
            _ops(torch)

    def __call__(self, q, k, v, *extra):
        torch = _torch()
        if not _compiling(torch):  # under torch.compile the fake op checks instead
            _check_args(self.program, (q, k, v) + extra)
        if self._use_op:
            o, _ = torch.ops.sattn.attention.default(self._id, self.deterministic, q, k, v,
                                                     list(extra))
            return o
        return _function(torch).apply(self._id, self.deterministic, q, k, v, *extra)

    def __repr__(self):
        return "sattn.autograd.SparseAttention(%r, deterministic=%s, %s)" % (
            self.program, self.deterministic, "custom op" if self._use_op else "Function")


# -- checks (metadata only: they run on fake tensors too) ----------------------
def _check_args(program, args, meta_ok=False):
    """ValueError unless `args` suit `program`; meta_ok: the fake op's call, where
    meta tensors stand for either device."""
    torch = sys.modules["torch"]
    specs = program._inputs
    if len(args) != len(specs):
        raise ValueError("the program takes %d inputs (%s), %d were given"
                         % (len(specs), ", ".join(program.input_names), len(args)))
    for x, spec in zip(args, specs):
        if not isinstance(x, torch.Tensor):
            raise ValueError("%s must be a torch.Tensor, got %s"
                             % (spec.label(), type(x).__module__ + "." + type(x).__name__))
    q = args[0]
    for x, spec in zip(args[1:], specs[1:]):
        if x.device != q.device:
            raise ValueError("q, k, v and the further inputs must be on one device: q is on %s, "
                             "%s on %s" % (q.device, spec.label(), x.device))
    gpu = program.device == "gpu"
    if meta_ok and q.device.type == "meta":
        pass
    elif gpu and q.device.type != "cuda":
        raise ValueError("q is on %s but the program runs on the GPU: pass CUDA tensors"
                         % q.device)
    elif not gpu and q.device.type != "cpu":
        raise ValueError("q is on %s but the program runs on the CPU: pass CPU tensors (or "
                         "compile the variant in a GPU session)" % q.device)
    for x, spec in zip(args, specs):
        shape = tuple(x.shape)
        _check_shape(spec.label(), spec.shape, shape)
        name = str(x.dtype).replace("torch.", "")
        code = _TORCH_DTYPES.index(name) if name in _TORCH_DTYPES else None
        _check_dtype(spec.label(), spec.dtype, code, "torch." + name, gpu, "torch")
    k, v = args[1], args[2]
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError("q, k, v must have rank 4 [B, H, S, D], got ranks %d, %d, %d"
                         % (q.dim(), k.dim(), v.dim()))
    for name, x in (("k", k), ("v", v)):
        if x.shape[0] != q.shape[0]:
            raise ValueError("input '%s' has batch %d but q has batch %d"
                             % (name, x.shape[0], q.shape[0]))
    if k.shape[2] != v.shape[2]:
        raise ValueError("k and v must have the same length, got %d and %d"
                         % (k.shape[2], v.shape[2]))


def _compiling(torch):
    fn = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    return bool(fn()) if fn is not None else False


# -- the two directions, on real tensors ---------------------------------------
def _has_lse(program):
    return len(program.outputs) >= 2


def _forward(torch, program, q, k, v, extra):
    """Runs the program; returns (O, LSE), LSE an empty tensor when the variant
    returns none. O is allocated contiguous [B, Hq, Sq, D] like q."""
    o = torch.empty_like(q, memory_format=torch.contiguous_format)
    if _has_lse(program):
        lse = torch.empty(tuple(q.shape[:3]), dtype=torch.float32, device=q.device)
        program(q, k, v, *extra, out=o, lse=lse)
    else:
        program(q, k, v, *extra, out=o)
        lse = torch.empty((0,), dtype=torch.float32, device=q.device)
    return o, lse


def _plain(t):
    """Whether sattn can read `t` as it is (else it is copied)."""
    if t.dim() == 0 or t.stride(-1) != 1 or t.data_ptr() % 16:
        return False
    return all(s != 0 and (s * t.element_size()) % 16 == 0
               for s, n in zip(t.stride()[:-1], t.shape[:-1]) if n > 1)


def _backward(torch, program, deterministic, dout, q, k, v, extra, o, lse):
    if not _plain(dout):
        dout = dout.contiguous()
    grads = tuple(torch.empty_like(x, memory_format=torch.contiguous_format) for x in (q, k, v))
    program.backward(q, k, v, *extra, dout=dout, out=o, lse=lse, deterministic=deterministic,
                     grads=grads)
    return grads


def _saved(ctx, q, k, v, extra, o, lse, program):
    ctx.has_lse = _has_lse(program)
    ctx.n_extra = len(extra)
    if ctx.has_lse:
        ctx.save_for_backward(q, k, v, o, lse, *extra)
    else:
        ctx.save_for_backward(q, k, v, *extra)


def _unpack(ctx):
    t = ctx.saved_tensors
    if ctx.has_lse:
        return t[0], t[1], t[2], list(t[5:]), t[3], t[4]
    return t[0], t[1], t[2], list(t[3:]), None, None


def _wanted(ctx, grads, first):
    """None for the inputs that need no gradient."""
    need = getattr(ctx, "needs_input_grad", None)
    if need is None:
        return tuple(grads)
    return tuple(g if need[first + i] else None for i, g in enumerate(grads))


# -- torch.library custom ops (torch >= 2.4) -----------------------------------
def _ops(torch):
    with _lock:
        if "ops" in _state:
            return _state["ops"]
        from typing import List, Optional, Tuple

        Tensor = torch.Tensor

        @torch.library.custom_op("sattn::attention", mutates_args=())
        def attention(program_id: int, deterministic: bool, q: Tensor, k: Tensor, v: Tensor,
                      extra: List[Tensor]) -> Tuple[Tensor, Tensor]:
            return _forward(torch, program_by_id(program_id), q, k, v, extra)

        @attention.register_fake
        def _(program_id, deterministic, q, k, v, extra):
            program = program_by_id(program_id)
            _check_args(program, (q, k, v) + tuple(extra), meta_ok=True)
            o = torch.empty_like(q, memory_format=torch.contiguous_format)
            shape = tuple(q.shape[:3]) if _has_lse(program) else (0,)
            return o, q.new_empty(shape, dtype=torch.float32)

        @torch.library.custom_op("sattn::attention_backward", mutates_args=())
        def attention_backward(program_id: int, deterministic: bool, dout: Tensor, q: Tensor,
                               k: Tensor, v: Tensor, extra: List[Tensor], out: Optional[Tensor],
                               lse: Optional[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
            return _backward(torch, program_by_id(program_id), deterministic, dout, q, k, v,
                             extra, out, lse)

        @attention_backward.register_fake
        def _(program_id, deterministic, dout, q, k, v, extra, out, lse):
            return tuple(torch.empty_like(x, memory_format=torch.contiguous_format)
                         for x in (q, k, v))

        def setup_context(ctx, inputs, output):
            program_id, deterministic, q, k, v, extra = inputs
            o, lse = output
            ctx.program_id, ctx.deterministic = program_id, deterministic
            _saved(ctx, q, k, v, extra, o, lse, program_by_id(program_id))

        def backward(ctx, grad_o, grad_lse):  # LSE is not differentiated
            none = [None] * ctx.n_extra  # the list input gets a list back
            if grad_o is None:
                return None, None, None, None, None, none
            q, k, v, extra, o, lse = _unpack(ctx)
            grads = torch.ops.sattn.attention_backward.default(
                ctx.program_id, ctx.deterministic, grad_o, q, k, v, extra, o, lse)
            return (None, None) + _wanted(ctx, grads, 2) + (none,)

        attention.register_autograd(backward, setup_context=setup_context)
        _state["ops"] = (attention, attention_backward)
        return _state["ops"]


# -- torch.autograd.Function (older torch, or custom_op=False) -----------------
def _function(torch):
    fn = _state.get("function")
    if fn is not None:
        return fn

    class SparseAttentionFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, program_id, deterministic, q, k, v, *extra):
            program = program_by_id(program_id)
            o, lse = _forward(torch, program, q, k, v, list(extra))
            ctx.program_id, ctx.deterministic = program_id, deterministic
            _saved(ctx, q, k, v, list(extra), o, lse, program)
            return o

        @staticmethod
        def backward(ctx, grad_o):
            q, k, v, extra, o, lse = _unpack(ctx)
            grads = _backward(torch, program_by_id(ctx.program_id), ctx.deterministic, grad_o,
                              q, k, v, extra, o, lse)
            return (None, None) + _wanted(ctx, grads, 2) + (None,) * ctx.n_extra

    _state["function"] = SparseAttentionFunction
    return SparseAttentionFunction
