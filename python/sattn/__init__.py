"""sattn: compile sparse-attention variants once, run them on your tensors.

    import sattn
    session = sattn.Session()                         # GPU if usable, else CPU
    program = session.compile(sattn.patterns.dense(8, 2, 128, causal=True))
    o = program(q, k, v)                              # torch CUDA tensors, zero-copy

A thin ctypes layer over libsattn.so (the C ABI in include/sattn/sattn_c.h);
no compiled extension. A GPU program takes CUDA ``torch.Tensor`` views in any
layout whose last dimension is contiguous (BHSD, or BSHD through
``.transpose(1, 2)``) and runs on ``torch.cuda.current_stream()``. A CPU
program (the float64 reference) takes ``numpy`` float16/float32 arrays or CPU
torch tensors. torch and numpy are imported only by the caller: this package
imports with neither installed.

A variant may also take a block set as input (``patterns.block_mask``): an
int32 list of KV blocks per (batch, head, query block), -1 padded, e.g. from
``sattn.block_list(mask)``.

Arguments are checked here first and wrong ones raise ``ValueError`` naming
the tensor and what was expected; failures inside the library (invalid IR,
no GPU, NVRTC errors) raise ``sattn.Error``.

``Program.backward`` gives dq, dk, dv; ``sattn.autograd.SparseAttention``
(loaded on first use, the only part that needs torch) wraps a program as a
differentiable PyTorch function and a ``torch.compile``-able custom op
(docs/training.md).
"""

import ctypes
import os
import sys
from collections import namedtuple

from . import _lib, patterns
from ._lib import Error

__all__ = ["Session", "Program", "SlimCache", "Error", "TensorSpec", "patterns", "block_list",
           "library_path", "library_version"]
__version__ = "0.1.0"

_check = _lib.check

TensorSpec = namedtuple("TensorSpec", ["name", "dtype", "shape"])
TensorSpec.__doc__ = """What a program expects of an input or output: dtype is "bf16", "fp16",
"f32", "i32" (or "?"), shape a tuple with None for a dimension known only at run time."""


def __getattr__(name):
    # sattn.autograd (PyTorch) loads on first use: the package itself imports
    # with neither torch nor numpy installed.
    if name == "autograd":
        import importlib
        return importlib.import_module(".autograd", __name__)
    raise AttributeError("module 'sattn' has no attribute %r" % (name,))


def library_path():
    """The path of the loaded libsattn.so."""
    return _lib.path()


def library_version():
    """The version libsattn.so reports."""
    return _lib.load().sattn_version().decode()


class _Owned:
    """A libsattn handle released by ``_DESTROY`` on close() or collection."""

    _DESTROY = None  # name of the C destroy function
    _handle = None

    def _h(self):
        if self._handle is None:
            raise ValueError("this sattn.%s is closed" % type(self).__name__)
        return self._handle

    def close(self):
        if getattr(self, "_handle", None) is not None:
            getattr(self._lib, self._DESTROY)(self._handle)
            self._handle = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class Session(_Owned):
    """Compiles variants for one device and caches the programs.

    device: "auto" (the GPU when one is usable, else the CPU), "cpu" or "gpu".
    cache_dir: the kernel disk cache (default $SATTN_CACHE_DIR or ~/.cache/sattn).
    """

    def __init__(self, device="auto", cache_dir=None):
        if device not in ("auto", "cpu", "gpu", "cuda", None):
            raise ValueError('device must be "auto", "cpu" or "gpu", got %r' % (device,))
        self._lib = _lib.load()
        handle = ctypes.c_void_p()
        _check(self._lib.sattn_session_create(
            (device or "auto").encode(),
            os.fsencode(cache_dir) if cache_dir is not None else None, ctypes.byref(handle)))
        self._handle = handle

    _DESTROY = "sattn_session_destroy"

    @property
    def device_name(self):
        """The GPU's name, or "cpu"."""
        buf = ctypes.create_string_buffer(1024)
        _check(self._lib.sattn_session_device(self._h(), buf, len(buf)))
        return buf.value.decode()

    def release_workspace(self):
        """Returns to the driver the GPU workspace sattn's memory pool keeps
        unused between calls (it keeps its reservation, as PyTorch's caching
        allocator does; SATTN_WORKSPACE_KEEP_MB caps it). Call it once the
        work that used it has finished (after torch.cuda.synchronize()), e.g.
        before other code needs the memory. Returns the bytes released (0 on
        a CPU session)."""
        n = ctypes.c_size_t(0)
        _check(self._lib.sattn_session_release_workspace(self._h(), ctypes.byref(n)))
        return n.value

    @property
    def device(self):
        """ "cpu" or "gpu". """
        return "cpu" if self.device_name == "cpu" else "gpu"

    def compile(self, variant, dtype=None):
        """Compiles `variant` (IR text, or the path of a .mlir file) into a Program.

        dtype: None keeps the variant's element type; "bf16" or "fp16" rebinds
        Q/K/V/O. Compiling the same variant again returns a cached program.
        """
        text = _variant_text(variant)
        if dtype not in (None, "bf16", "fp16"):
            raise ValueError('dtype must be None, "bf16" or "fp16", got %r' % (dtype,))
        handle = ctypes.c_void_p()
        _check(self._lib.sattn_compile(self._h(), text.encode("utf-8"),
                                       dtype.encode() if dtype else None, ctypes.byref(handle)))
        return Program(handle, self)

    def close(self):
        """Releases the session; programs compiled by it stay usable."""
        super().close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "sattn.Session(%s)" % (self.device_name if self._handle is not None else "closed")


def block_list(mask, cap=None):
    """The block-set input of a boolean block mask: ``mask[..., I, J]`` true keeps KV
    block J for query block I. Returns int32 ``[..., nQB, cap]`` (same library and
    device as ``mask``: a torch tensor or a numpy array) listing the kept blocks of
    every row in ascending order, padded with -1. ``cap`` defaults to the most
    blocks any row keeps (at least 1); a smaller ``cap`` raises ValueError.

    For a variant from ``patterns.block_mask``, ``mask`` is ``[B, set_heads, nQB,
    nKB]`` (broadcast a shared ``[nQB, nKB]`` mask with ``expand``)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(mask, torch.Tensor):
        m = mask.to(torch.bool)
        nkb = m.shape[-1]
        most = int(m.sum(-1).max().item()) if m.numel() else 0
        width = _list_width(most, cap)
        idx = torch.arange(nkb, device=m.device, dtype=torch.int32).expand(m.shape)
        key = torch.where(m, idx, idx + nkb).sort(dim=-1).values[..., :width]
        out = torch.where(key < nkb, key, torch.full_like(key, -1))
        if width > nkb:
            pad = torch.full(tuple(m.shape[:-1]) + (width - nkb,), -1, dtype=torch.int32,
                             device=m.device)
            out = torch.cat([out, pad], dim=-1)
        return out.to(torch.int32).contiguous()
    np = sys.modules.get("numpy")
    if np is not None and isinstance(mask, np.ndarray):
        m = mask.astype(bool)
        nkb = m.shape[-1]
        most = int(m.sum(-1).max()) if m.size else 0
        width = _list_width(most, cap)
        idx = np.broadcast_to(np.arange(nkb, dtype=np.int64), m.shape)
        key = np.sort(np.where(m, idx, idx + nkb), axis=-1)[..., :width]
        out = np.where(key < nkb, key, -1).astype(np.int32)
        if width > nkb:
            out = np.concatenate(
                [out, np.full(m.shape[:-1] + (width - nkb,), -1, dtype=np.int32)], axis=-1)
        return np.ascontiguousarray(out)
    raise TypeError("mask must be a torch.Tensor or a numpy.ndarray, got %s"
                    % (type(mask).__module__ + "." + type(mask).__name__))


def _list_width(most, cap):
    if cap is None:
        return max(1, most)
    if not isinstance(cap, int) or cap < 1:
        raise ValueError("cap must be a positive int, got %r" % (cap,))
    if cap < most:
        raise ValueError("a row of the mask keeps %d blocks but cap is %d" % (most, cap))
    return cap


def _variant_text(variant):
    if isinstance(variant, bytes):
        variant = variant.decode("utf-8")
    if isinstance(variant, os.PathLike):
        variant = os.fspath(variant)
        return _read(variant)
    if not isinstance(variant, str):
        raise TypeError("variant must be IR text or a path to a .mlir file, got %s"
                        % type(variant).__name__)
    looks_like_path = "\n" not in variant and "{" not in variant and "(" not in variant
    if looks_like_path and (variant.endswith(".mlir") or os.path.isfile(variant)):
        return _read(variant)
    return variant


def _read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise FileNotFoundError("cannot read variant file %r: %s" % (path, e.strerror)) from e


class Program(_Owned):
    """A compiled variant. Call it with q, k, v (and any further inputs the
    variant declares) to run it; see __call__."""

    def __init__(self, handle, session):
        self._lib = _lib.load()
        self._handle = handle
        lib, h = self._lib, handle
        n = ctypes.c_int()
        _check(lib.sattn_program_device(h, ctypes.byref(n)))
        self._device = "gpu" if n.value == _lib.GPU else "cpu"
        self._gpu_ordinal = int(os.environ.get("SATTN_DEVICE", "0") or 0)
        _check(lib.sattn_program_num_inputs(h, ctypes.byref(n)))
        names = [_lib.read_string(lib.sattn_program_input_name, h, i) for i in range(n.value)]
        self._inputs = [self._spec(lib.sattn_program_input_info, i, names[i])
                        for i in range(n.value)]
        _check(lib.sattn_program_num_outputs(h, ctypes.byref(n)))
        self._outputs = [self._spec(lib.sattn_program_output_info, i,
                                    "out" if i == 0 else "lse" if i == 1 else "output %d" % i)
                         for i in range(n.value)]
        key = ctypes.create_string_buffer(128)
        _check(lib.sattn_program_key(h, key, len(key)))
        self._key = key.value.decode()
        self._lowered = self._cuda = None

    def _spec(self, fn, i, name):
        info = _lib.ArgInfo()
        _check(fn(self._handle, i, ctypes.byref(info)))
        shape = None
        if info.ndim >= 0:
            shape = tuple(None if d < 0 else int(d) for d in info.shape[:info.ndim])
        return _Arg(name, info.dtype, shape)

    # -- inspection ---------------------------------------------------------
    @property
    def key(self):
        """The JIT cache key (SHA-256 of the specialised variant)."""
        return self._key

    @property
    def lowered_ir(self):
        """The kernel-level IR."""
        if self._lowered is None:
            self._lowered = _lib.read_string(self._lib.sattn_program_lowered_ir, self._h())
        return self._lowered

    @property
    def cuda_source(self):
        """The generated CUDA C++ ("" for a CPU program)."""
        if self._cuda is None:
            self._cuda = _lib.read_string(self._lib.sattn_program_cuda_source, self._h())
        return self._cuda

    @property
    def device(self):
        """ "gpu" or "cpu". """
        return self._device

    @property
    def input_names(self):
        return [a.name for a in self._inputs]

    @property
    def inputs(self):
        """A TensorSpec per input."""
        return [a.spec() for a in self._inputs]

    @property
    def outputs(self):
        """A TensorSpec per output (O, then LSE when the variant returns it)."""
        return [a.spec() for a in self._outputs]

    def __repr__(self):
        return "sattn.Program(%s, inputs=%s, outputs=%d, key=%s...)" % (
            self._device, self.input_names, len(self._outputs), self._key[:12])

    _DESTROY = "sattn_program_destroy"

    # -- running ------------------------------------------------------------
    def run_timed(self, *args, out=None, lse=None):
        """Like calling the program, then waits for the kernels and returns
        (results, [(kernel name, ms), ...]): the GPU time of each launch from
        CUDA events around it. For profiling; GPU programs only."""
        return self._run(args, out, lse, timed=True)

    def run_selection(self, *args, out=None, lse=None, blocks=False):
        """Like calling the program, then waits and returns (results, report):
        report is a dict with ``density`` (attended / causally valid block
        pairs of the prefill attention, design section 2), ``active_rows``
        (share of active query rows) and ``kv_kept`` (share of cached tokens
        kv_slim kept), each present when the variant has that stage. Copies
        the selection sets to the host: for evaluation, not for timing.

        With ``blocks=True`` the report also holds ``blocks``, the prefill
        attention's block set as a numpy bool array [B, heads, nQB, nKB]
        (True = attended; heads is the set's own), and ``block_size``
        (bq, bk); an error when the variant has no block set."""
        res, report = self._run(args, out, lse, selection=True)
        if blocks:
            report["blocks"], report["block_size"] = self._last_blocks()
        return res, report

    def backward(self, *args, dout, out=None, lse=None, deterministic=True, grads=None):
        """Gradients (dq, dk, dv) of sum(dout * O), O the program's first output,
        with respect to its inputs q, k, v. The selections of the forward are
        recomputed from the same inputs and held constant (docs/training.md).

        A GPU program runs its backward kernels on torch.cuda.current_stream()
        without synchronising; dout and the gradients are CUDA tensors in the
        program's dtype (bf16 / fp16), dq, dk, dv shaped like q, k, v. A CPU
        program runs the float64 reference, synchronously, on numpy arrays or
        CPU torch tensors (gradients in q's, k's, v's float type).

        out, lse: the forward's O and its LSE ([B, Hq, Sq] float32, the second
        output of a variant built with LSE, e.g. ``patterns.dense(...,
        lse=True)``), both or neither. Given, the GPU backward reads them
        instead of recomputing the attention; the CPU recomputes anyway.
        deterministic (default): the same bits on every run (dQ summed in a
        fixed order by a pass of its own; on the H100 also the faster mode);
        False: dQ accumulated with fp32 atomics in an order that varies. The
        CPU is always deterministic. grads: (dq, dk, dv) to write in place, else
        allocated like q, k, v. Returns (dq, dk, dv). ``sattn.autograd`` wraps
        this for torch.autograd."""
        if (out is None) != (lse is None):
            raise ValueError("backward takes both out and lse (the forward's O and its LSE) or "
                             "neither")
        if len(args) != len(self._inputs):
            raise ValueError("the program takes %d inputs (%s), %d were given"
                             % (len(self._inputs), ", ".join(self.input_names), len(args)))
        views = [_view(x, spec, self) for x, spec in zip(args, self._inputs)]
        byname = {s.name: (x, vw, s) for x, vw, s in zip(args, views, self._inputs)}
        if not all(n in byname for n in ("q", "k", "v")):
            raise ValueError("backward needs a variant with inputs q, k and v")
        qv = byname["q"][1]
        dview = _view(dout, _Arg("dout", self._outputs[0].dtype, self._outputs[0].shape), self)
        saved = None
        if out is not None:
            ov = _view(out, self._outputs[0], self)
            want = self._outputs[0].resolve(qv.shape)
            if ov.shape != want:
                raise ValueError("out must have shape %s (from q %s), got %s"
                                 % (_fmt(want), _fmt(qv.shape), _fmt(ov.shape)))
            lv = _view(lse, _Arg("lse", _lib.F32, None), self)
            want = tuple(qv.shape[:3])
            if lv.shape != want:
                raise ValueError("lse must have shape %s (from q %s), got %s"
                                 % (_fmt(want), _fmt(qv.shape), _fmt(lv.shape)))
            saved = (ov, lv)
        if grads is not None and (not isinstance(grads, (tuple, list)) or len(grads) != 3):
            raise ValueError("grads must be a sequence (dq, dk, dv), got %r"
                             % (type(grads).__name__,))
        results, gviews = [], []
        for i, n in enumerate(("q", "k", "v")):
            _, vw, spec = byname[n]
            g = _allocate(vw, spec, vw.shape) if grads is None else grads[i]
            gv = _view(g, _Arg("d" + n, spec.dtype, spec.shape), self, output=True)
            if gv.shape != vw.shape:
                raise ValueError("d%s must have the shape of %s, %s, got %s"
                                 % (n, n, _fmt(vw.shape), _fmt(gv.shape)))
            results.append(g)
            gviews.append(gv)
        c_in = (_lib.Tensor * len(views))(*[vw.c for vw in views])
        c_g = (_lib.Tensor * 3)(*[vw.c for vw in gviews])
        flags = _lib.BACKWARD_DETERMINISTIC if deterministic else _lib.BACKWARD_ATOMIC_DQ
        _check(self._lib.sattn_program_backward_ex(
            self._h(), c_in, len(views),
            ctypes.byref(saved[0].c) if saved else None,
            ctypes.byref(saved[1].c) if saved else None,
            ctypes.byref(dview.c), c_g, 3, flags, self._stream(qv)))
        return tuple(results)

    def _last_blocks(self):
        import numpy as np
        info, needed = _lib.BlockMaskInfo(), ctypes.c_size_t(0)
        _check(self._lib.sattn_program_last_blocks(self._h(), ctypes.byref(info), None, 0,
                                                   ctypes.byref(needed)))
        mask = np.zeros(needed.value, dtype=np.uint8)
        _check(self._lib.sattn_program_last_blocks(
            self._h(), ctypes.byref(info), mask.ctypes.data_as(ctypes.c_void_p), mask.size,
            ctypes.byref(needed)))
        shape = (info.batch, info.heads, info.q_blocks, info.kv_blocks)
        return mask.reshape(shape).astype(bool), (info.bq, info.bk)

    def __call__(self, q, k, v, *extra, out=None, lse=None):
        """Runs the program and returns O, or (O, LSE) when the variant returns LSE.

        A GPU program takes CUDA torch tensors (zero-copy, any strides with a
        contiguous last dimension) and runs on torch.cuda.current_stream()
        without synchronising. A CPU program takes numpy float16/float32 arrays
        or CPU torch tensors and runs synchronously. `out` / `lse` are written
        in place when given, else allocated like q (LSE as float32).

        A block-set input (``patterns.block_mask``'s ``blocks``) is int32
        ``[B, H, nQB, cap]``: torch.int32 on the GPU, numpy.int32 (or a CPU
        torch.int32 tensor) on the CPU; ``block_list`` builds one from a
        boolean mask. The CPU rejects entries outside [-1, nKB); the GPU,
        which cannot read them without a sync, drops them.
        """
        return self._run((q, k, v) + extra, out, lse)

    def _run(self, args, out, lse, timed=False, selection=False):
        if len(args) != len(self._inputs):
            raise ValueError("the program takes %d inputs (%s), %d were given"
                             % (len(self._inputs), ", ".join(self.input_names), len(args)))
        if lse is not None and len(self._outputs) < 2:
            raise ValueError("lse was given but this program returns no LSE (build the "
                             "variant with LSE, e.g. patterns.dense(..., lse=True))")
        views = [_view(x, spec, self) for x, spec in zip(args, self._inputs)]
        qv = views[0]
        for view, spec in zip(views[1:], self._inputs[1:]):
            if (spec.shape and spec.shape[0] is None and qv.shape and view.shape
                    and view.shape[0] != qv.shape[0]):
                raise ValueError("input '%s' has batch %d but q has batch %d"
                                 % (spec.name, view.shape[0], qv.shape[0]))
        byname = {s.name: vw for s, vw in zip(self._inputs, views)}
        if "k" in byname and "v" in byname and len(byname["k"].shape) == 4 \
                and len(byname["v"].shape) == 4 and byname["k"].shape[2] != byname["v"].shape[2]:
            raise ValueError("k and v must have the same length, got %d and %d"
                             % (byname["k"].shape[2], byname["v"].shape[2]))

        # Results follow the input named q (a decode variant's prompt comes first).
        results, out_views = self._outputs_like(qv, byname.get("q", qv), out, lse)
        stream = self._stream(qv)
        c_in = (_lib.Tensor * len(views))(*[vw.c for vw in views])
        c_out = (_lib.Tensor * len(out_views))(*[vw.c for vw in out_views])
        res = results[0] if len(results) == 1 else tuple(results)
        if timed:
            cap = 64
            ms = (ctypes.c_double * cap)()
            count, needed = ctypes.c_int(0), ctypes.c_size_t(0)
            names = ctypes.create_string_buffer(4096)
            _check(self._lib.sattn_program_run_timed(
                self._h(), c_in, len(views), c_out, len(out_views), stream, ms, cap,
                ctypes.byref(count), names, len(names), ctypes.byref(needed)))
            labels = names.value.decode().split("\n") if count.value else []
            return res, list(zip(labels, ms[:min(count.value, cap)]))
        if selection:
            rep = _lib.SelectionReport()
            _check(self._lib.sattn_program_run_selection(
                self._h(), c_in, len(views), c_out, len(out_views), stream, ctypes.byref(rep)))
            report = {name: getattr(rep, name) for name in ("density", "active_rows", "kv_kept")
                      if getattr(rep, name) >= 0}
            return res, report
        _check(self._lib.sattn_program_run(self._h(), c_in, len(views), c_out, len(out_views),
                                           stream))
        return res

    def _outputs_like(self, qv, like, out, lse):
        """The output tensors (given or allocated like q) and their views."""
        given = [out, lse] + [None] * max(0, len(self._outputs) - 2)
        results, out_views = [], []
        for i, spec in enumerate(self._outputs):
            want = spec.resolve(like.shape)
            t = given[i]
            if t is None:
                t = _allocate(qv, spec, want)
            view = _view(t, spec, self, output=True)
            if view.shape != want:
                raise ValueError("%s must have shape %s (from q %s), got %s"
                                 % (spec.name, _fmt(want), _fmt(like.shape), _fmt(view.shape)))
            results.append(t)
            out_views.append(view)
        return results, out_views

    def _stream(self, view):
        if self._device != "gpu":
            return None
        torch = sys.modules["torch"]
        return torch.cuda.current_stream(view.obj.device).cuda_stream

    # -- OmniSparse decode over a slimmed cache -----------------------------
    def _decode_inputs(self):
        if getattr(self, "_dec_inputs", None) is None:  # asked once: decode() runs per token
            cap = len(self._inputs)
            idx, n = (ctypes.c_int * max(cap, 1))(), ctypes.c_int(0)
            _check(self._lib.sattn_program_decode_inputs(self._h(), idx, cap, ctypes.byref(n)))
            self._dec_inputs = list(idx[:n.value])
        return self._dec_inputs

    def slim(self, *args, reserve=0):
        """Runs the variant's kv_slim once and returns a SlimCache holding,
        per (batch, KV head), only the kept K/V rows plus ``reserve`` free
        rows for SlimCache.append. ``args`` are the variant's inputs without
        the decode step's own (for patterns.omnisparse_decode: prompt, k, v).
        Waits for the GPU once; afterwards the full cache may be freed."""
        dec = set(self._decode_inputs())
        specs = [a for i, a in enumerate(self._inputs) if i not in dec]
        if len(args) != len(specs):
            raise ValueError("slim() takes %d inputs (%s), %d were given"
                             % (len(specs), ", ".join(a.name for a in specs), len(args)))
        views = [_view(x, spec, self) for x, spec in zip(args, specs)]
        c_in = (_lib.Tensor * len(views))(*[vw.c for vw in views])
        h = ctypes.c_void_p()
        _check(self._lib.sattn_program_slim(self._h(), c_in, len(views), int(reserve),
                                            self._stream(views[0]), ctypes.byref(h)))
        return SlimCache(h, self, views[0])

    def decode(self, cache, *args, out=None, lse=None, timed=False):
        """One decode step over a SlimCache: ``args`` are the decode step's
        own inputs (q). Returns what calling the program returns; with
        ``timed`` it waits and returns (results, decode kernel ms)."""
        dec = self._decode_inputs()
        specs = [self._inputs[i] for i in dec]
        if len(args) != len(specs):
            raise ValueError("decode() takes %d inputs (%s) after the cache, %d were given"
                             % (len(specs), ", ".join(a.name for a in specs), len(args)))
        if not isinstance(cache, SlimCache):
            raise ValueError("decode() needs a SlimCache from Program.slim, got %s"
                             % type(cache).__name__)
        views = [_view(x, spec, self) for x, spec in zip(args, specs)]
        results, out_views = self._outputs_like(views[0], views[0], out, lse)
        c_in = (_lib.Tensor * len(views))(*[vw.c for vw in views])
        c_out = (_lib.Tensor * len(out_views))(*[vw.c for vw in out_views])
        ms = ctypes.c_double(0.0)
        _check(self._lib.sattn_program_decode(
            self._h(), cache._h(), c_in, len(views), c_out, len(out_views),
            self._stream(views[0]), ctypes.byref(ms) if timed else None))
        res = results[0] if len(results) == 1 else tuple(results)
        return (res, ms.value) if timed else res


class SlimCache(_Owned):
    """A slimmed KV cache (Program.slim): per (batch, KV head) only the kept
    tokens, in sattn-owned memory. ``bytes_before`` / ``bytes_after`` give
    the K/V bytes of the full cache and of this one."""

    def __init__(self, handle, program, like):
        self._lib, self._handle, self._program = program._lib, handle, program
        self._like = like
        info = _lib.SlimInfo()
        _check(self._lib.sattn_slim_cache_info(handle, ctypes.byref(info)))
        self.batch, self.kv_heads, self.head_dim = info.batch, info.kv_heads, info.head_dim
        self.bytes_before = info.bytes_before

    _DESTROY = "sattn_slim_cache_destroy"

    def _info(self):
        info = _lib.SlimInfo()
        _check(self._lib.sattn_slim_cache_info(self._h(), ctypes.byref(info)))
        return info

    @property
    def bytes_after(self):
        return self._info().bytes_after

    @property
    def tokens(self):
        """Entries held over all (batch, KV head)."""
        return self._info().tokens

    def length(self, b, h):
        n, c = ctypes.c_int64(0), ctypes.c_int64(0)
        _check(self._lib.sattn_slim_cache_length(self._h(), b, h, ctypes.byref(n),
                                                 ctypes.byref(c)))
        return n.value

    def capacity(self, b, h):
        n, c = ctypes.c_int64(0), ctypes.c_int64(0)
        _check(self._lib.sattn_slim_cache_length(self._h(), b, h, ctypes.byref(n),
                                                 ctypes.byref(c)))
        return c.value

    def append(self, k, v):
        """Appends k, v [B, Hkv, t, D] as the next t entries of every head
        (the decode step's own tokens go in before the step)."""
        spec = _Arg("k", -1 if self._program._device == "cpu" else self._like.dtype, None)
        kv = _view(k, spec, self._program)
        vv = _view(v, _Arg("v", spec.dtype, None), self._program)
        _check(self._lib.sattn_slim_cache_append(self._h(), ctypes.byref(kv.c), ctypes.byref(vv.c),
                                                 self._program._stream(kv)))

    def __repr__(self):
        return "sattn.SlimCache(batch=%d, kv_heads=%d, tokens=%d, bytes %d -> %d)" % (
            self.batch, self.kv_heads, self.tokens, self.bytes_before, self.bytes_after)


_TORCH_DTYPES = ("bfloat16", "float16", "float32", "int32")  # by code
_NUMPY_DTYPES = {"float16": _lib.FP16, "float32": _lib.F32, "int32": _lib.I32}
_FLOATS = (_lib.BF16, _lib.FP16, _lib.F32)


def _fmt(shape):
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


class _Arg:
    """A program input or output: name, dtype code, shape (None = dynamic)."""

    def __init__(self, name, dtype, shape):
        self.name, self.dtype, self.shape = name, dtype, shape

    def spec(self):
        return TensorSpec(self.name, _lib.DTYPE_NAMES.get(self.dtype, "?"), self.shape)

    def label(self):
        plain = ("out", "lse", "dout", "dq", "dk", "dv")
        return "input '%s'" % self.name if self.name not in plain else self.name

    def resolve(self, q_shape):
        """The shape of an output: static dims as declared, dynamic ones from q."""
        if self.shape is None:
            return tuple(q_shape)
        return tuple(d if d is not None else (q_shape[i] if i < len(q_shape) else None)
                     for i, d in enumerate(self.shape))


class _View:
    """A tensor adapted to sattn_tensor; holds what the C struct points to."""

    def __init__(self, obj, kind, dtype, device, shape, strides, ptr):
        self.obj, self.kind, self.dtype, self.shape = obj, kind, dtype, tuple(shape)
        self._shape = (ctypes.c_int64 * len(shape))(*shape)
        self._strides = (ctypes.c_int64 * len(strides))(*strides)
        self.c = _lib.Tensor(ptr, dtype, device, len(shape), self._shape, self._strides)


def _view(x, arg, program, output=False):
    """Checks `x` against what the program expects of `arg` and returns a _View."""
    what = arg.label()
    gpu = program._device == "gpu"
    torch = sys.modules.get("torch")
    np = sys.modules.get("numpy")
    if torch is not None and isinstance(x, torch.Tensor):
        name = str(x.dtype).replace("torch.", "")
        code = _TORCH_DTYPES.index(name) if name in _TORCH_DTYPES else None
        if gpu:
            if x.device.type != "cuda":
                raise ValueError("%s is on %s but the program runs on the GPU: pass a CUDA tensor"
                                 % (what, x.device))
            if x.device.index != program._gpu_ordinal:
                raise ValueError("%s is on %s but sattn runs on GPU %d (set SATTN_DEVICE before "
                                 "loading sattn)" % (what, x.device, program._gpu_ordinal))
        elif x.device.type != "cpu":
            raise ValueError("%s is on %s but the program runs on the CPU: pass a CPU tensor or "
                             "a numpy array" % (what, x.device))
        shape, strides, ptr, kind = tuple(x.shape), tuple(x.stride()), x.data_ptr(), "torch"
        dtype_text = "torch." + name
        if output and x.requires_grad:
            raise ValueError("%s requires grad; sattn writes it in place" % what)
    elif np is not None and isinstance(x, np.ndarray):
        if gpu:
            raise ValueError("%s is a numpy array but the program runs on the GPU: pass a CUDA "
                             "torch.Tensor" % what)
        name = x.dtype.name
        code = _NUMPY_DTYPES.get(name) if x.dtype.isnative else None
        item = x.dtype.itemsize
        if any(s % item for s in x.strides):
            raise ValueError("%s has strides %s bytes, not a multiple of its %d-byte elements"
                             % (what, x.strides, item))
        if output and not x.flags.writeable:
            raise ValueError("%s is read-only" % what)
        shape, strides, kind = tuple(x.shape), tuple(s // item for s in x.strides), "numpy"
        ptr = x.__array_interface__["data"][0]
        dtype_text = "numpy." + name
    else:
        raise ValueError("%s must be a %s, got %s" % (
            what, "CUDA torch.Tensor" if gpu else "numpy.ndarray or CPU torch.Tensor",
            type(x).__module__ + "." + type(x).__name__))

    _check_shape(what, arg.shape, shape)
    _check_dtype(what, arg.dtype, code, dtype_text, gpu, kind)
    if gpu:
        if shape and shape[-1] != 1 and strides[-1] != 1:
            raise ValueError("%s must have a contiguous last dimension (stride 1), got strides %s"
                             % (what, list(strides)))
        # 16-bit tensors are read with 16-byte vector loads; f32 (LSE) and
        # i32 buffers element by element.
        align = 4 if code in (_lib.I32, _lib.F32) else 16
        if ptr % align:
            raise ValueError("%s must be %d-byte aligned (data_ptr %% %d = %d)"
                             % (what, align, align, ptr % align))
    if output and any(s == 0 for s, n in zip(strides, shape) if n > 1):
        raise ValueError("%s has a zero stride (a broadcast view); outputs must not overlap" % what)
    return _View(x, kind, code, _lib.GPU if gpu else _lib.CPU, shape, strides, ptr)


def _check_shape(what, want, shape):
    """Rank and static dimensions of `shape` against `want` (None: anything)."""
    if want is None:
        return
    if len(shape) != len(want):
        raise ValueError("%s must have rank %d %s, got rank %d %s"
                         % (what, len(want), _fmt(want), len(shape), _fmt(shape)))
    for d, (w, got) in enumerate(zip(want, shape)):
        if w is not None and w != got:
            raise ValueError("%s must have shape %s, got %s (dimension %d is %d, expected %d)"
                             % (what, _fmt(want), _fmt(shape), d, got, w))


def _check_dtype(what, want, code, dtype_text, gpu, kind):
    names = {"torch": ("torch.bfloat16", "torch.float16", "torch.float32", "torch.int32"),
             "numpy": (None, "numpy.float16", "numpy.float32", "numpy.int32")}[kind]
    if want == -1:
        if code is None:
            raise ValueError("%s has unsupported dtype %s" % (what, dtype_text))
        return
    if gpu or want == _lib.I32:
        ok = [want]
    else:  # the CPU reference converts every float view to float64
        ok = [c for c in _FLOATS if names[c]]
    if code not in ok:
        raise ValueError("%s must be %s, got %s" % (
            what, " or ".join(names[c] for c in ok), dtype_text))


def _allocate(qv, spec, shape):
    """An output like q (same library and device); its dtype is the variant's
    on the GPU, q's float type on the CPU, float32 for LSE."""
    if spec.dtype in (_lib.F32, _lib.I32) or (qv.c.device == _lib.GPU and spec.dtype != -1):
        code = spec.dtype
    else:
        code = qv.dtype if qv.dtype in _FLOATS else _lib.F32
    if qv.kind == "torch":
        torch = sys.modules["torch"]
        return torch.empty(shape, dtype=getattr(torch, _TORCH_DTYPES[code]), device=qv.obj.device)
    np = sys.modules["numpy"]
    dtype = {_lib.FP16: np.float16, _lib.I32: np.int32}.get(code, np.float32)
    return np.empty(shape, dtype=dtype)
