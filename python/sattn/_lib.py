"""Finds and loads libsattn.so and declares its C ABI (include/sattn/sattn_c.h).

The library is looked up, in order, at ``$SATTN_LIB``, next to this package
(``sattn/libsattn.so``, where the bundle script copies it) and in the build
tree of the repository this package sits in (``build/runtime/capi``).
It is loaded with RTLD_LOCAL: it exports only ``sattn_*`` and keeps its own
LLVM hidden, so it coexists with PyTorch and Triton in one process.
"""

import ctypes
import os
import threading

# Status codes, dtype and device codes: the #defines of sattn_c.h.
OK, ERR_ARGUMENT, ERR_SATTN, ERR_INTERNAL = 0, 1, 2, 3
BF16, FP16, F32, I32 = 0, 1, 2, 3
CPU, GPU = 0, 1
MAX_RANK = 8
BACKWARD_DETERMINISTIC = 1  # SATTN_BACKWARD_DETERMINISTIC, a flag of sattn_program_backward_ex
BACKWARD_ATOMIC_DQ = 2      # SATTN_BACKWARD_ATOMIC_DQ

DTYPE_NAMES = {BF16: "bf16", FP16: "fp16", F32: "f32", I32: "i32", -1: "?"}


class Error(RuntimeError):
    """A failure reported by libsattn: invalid IR (the message holds the MLIR
    diagnostics), shapes the variant rejects, a missing GPU, driver or NVRTC.
    ``status`` is the C status code (1 argument, 2 sattn, 3 internal)."""

    def __init__(self, message, status=ERR_SATTN):
        super().__init__(message)
        self.status = status


def check(status):
    """Raises Error with the library's message when `status` is not OK."""
    if status != OK:
        msg = load().sattn_last_error()
        raise Error(msg.decode("utf-8", "replace") if msg else "sattn: unknown error", status)


class Tensor(ctypes.Structure):
    """sattn_tensor: a non-owning, DLPack-like view."""

    _fields_ = [
        ("data", ctypes.c_void_p),
        ("dtype", ctypes.c_int32),
        ("device", ctypes.c_int32),
        ("ndim", ctypes.c_int32),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
    ]


class SelectionReport(ctypes.Structure):
    """sattn_selection_report: what a run selected (-1: no such stage)."""

    _fields_ = [
        ("density", ctypes.c_double),
        ("active_rows", ctypes.c_double),
        ("kv_kept", ctypes.c_double),
    ]


class BlockMaskInfo(ctypes.Structure):
    """sattn_block_mask_info: geometry of the last selection's block mask."""

    _fields_ = [(name, ctypes.c_int64) for name in
                ("batch", "heads", "q_blocks", "kv_blocks", "bq", "bk")]


class SlimInfo(ctypes.Structure):
    """sattn_slim_info: size and bytes of a slimmed KV cache."""

    _fields_ = [
        ("batch", ctypes.c_int64),
        ("kv_heads", ctypes.c_int64),
        ("head_dim", ctypes.c_int64),
        ("bytes_before", ctypes.c_int64),
        ("bytes_after", ctypes.c_int64),
        ("tokens", ctypes.c_int64),
        ("device", ctypes.c_int),
    ]


class ArgInfo(ctypes.Structure):
    """sattn_arg_info: what a program expects of one input or output."""

    _fields_ = [
        ("dtype", ctypes.c_int32),
        ("ndim", ctypes.c_int32),
        ("shape", ctypes.c_int64 * MAX_RANK),
    ]


def _candidates():
    env = os.environ.get("SATTN_LIB")
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    return [
        os.path.join(here, "libsattn.so"),
        os.path.join(repo, "build", "runtime", "capi", "libsattn.so"),
    ]


_P = ctypes.c_void_p
_S = ctypes.c_char_p
_I = ctypes.c_int
_SZ = ctypes.c_size_t
_PSZ = ctypes.POINTER(ctypes.c_size_t)

_SIGNATURES = {
    "sattn_last_error": ([], _S),
    "sattn_version": ([], _S),
    "sattn_session_create": ([_S, _S, ctypes.POINTER(_P)], _I),
    "sattn_session_destroy": ([_P], _I),
    "sattn_session_device": ([_P, ctypes.c_char_p, _SZ], _I),
    "sattn_session_release_workspace": ([_P, _PSZ], _I),
    "sattn_compile": ([_P, _S, _S, ctypes.POINTER(_P)], _I),
    "sattn_pattern_text": (
        [_S, _I, _I, _I, _S, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
         ctypes.c_char_p, _SZ, _PSZ], _I),
    "sattn_program_run": (
        [_P, ctypes.POINTER(Tensor), _I, ctypes.POINTER(Tensor), _I, _P], _I),
    "sattn_program_backward": (
        [_P, ctypes.POINTER(Tensor), _I, ctypes.POINTER(Tensor), ctypes.POINTER(Tensor), _I, _P],
        _I),
    "sattn_program_backward_ex": (
        [_P, ctypes.POINTER(Tensor), _I, ctypes.POINTER(Tensor), ctypes.POINTER(Tensor),
         ctypes.POINTER(Tensor), ctypes.POINTER(Tensor), _I, _I, _P], _I),
    "sattn_program_run_timed": (
        [_P, ctypes.POINTER(Tensor), _I, ctypes.POINTER(Tensor), _I, _P,
         ctypes.POINTER(ctypes.c_double), _I, ctypes.POINTER(_I), ctypes.c_char_p, _SZ, _PSZ], _I),
    "sattn_program_run_selection": (
        [_P, ctypes.POINTER(Tensor), _I, ctypes.POINTER(Tensor), _I, _P,
         ctypes.POINTER(SelectionReport)], _I),
    "sattn_program_last_blocks": (
        [_P, ctypes.POINTER(BlockMaskInfo), _P, _SZ, _PSZ], _I),
    "sattn_program_decode_inputs": ([_P, ctypes.POINTER(_I), _I, ctypes.POINTER(_I)], _I),
    "sattn_program_slim": (
        [_P, ctypes.POINTER(Tensor), _I, ctypes.c_int64, _P, ctypes.POINTER(_P)], _I),
    "sattn_program_decode": (
        [_P, _P, ctypes.POINTER(Tensor), _I, ctypes.POINTER(Tensor), _I, _P,
         ctypes.POINTER(ctypes.c_double)], _I),
    "sattn_slim_cache_info": ([_P, ctypes.POINTER(SlimInfo)], _I),
    "sattn_slim_cache_length": (
        [_P, ctypes.c_int64, ctypes.c_int64, ctypes.POINTER(ctypes.c_int64),
         ctypes.POINTER(ctypes.c_int64)], _I),
    "sattn_slim_cache_append": ([_P, ctypes.POINTER(Tensor), ctypes.POINTER(Tensor), _P], _I),
    "sattn_slim_cache_destroy": ([_P], _I),
    "sattn_program_num_inputs": ([_P, ctypes.POINTER(_I)], _I),
    "sattn_program_num_outputs": ([_P, ctypes.POINTER(_I)], _I),
    "sattn_program_device": ([_P, ctypes.POINTER(_I)], _I),
    "sattn_program_input_info": ([_P, _I, ctypes.POINTER(ArgInfo)], _I),
    "sattn_program_output_info": ([_P, _I, ctypes.POINTER(ArgInfo)], _I),
    "sattn_program_input_name": ([_P, _I, ctypes.c_char_p, _SZ, _PSZ], _I),
    "sattn_program_key": ([_P, ctypes.c_char_p, _SZ], _I),
    "sattn_program_lowered_ir": ([_P, ctypes.c_char_p, _SZ, _PSZ], _I),
    "sattn_program_cuda_source": ([_P, ctypes.c_char_p, _SZ, _PSZ], _I),
    "sattn_program_destroy": ([_P], _I),
}

_lock = threading.Lock()
_handle = None
_path = None


def load():
    """The loaded library (loaded on first use)."""
    global _handle, _path
    if _handle is not None:
        return _handle
    with _lock:
        if _handle is not None:
            return _handle
        tried = []
        for path in _candidates():
            if not os.path.isfile(path):
                tried.append(path + " (missing)")
                continue
            try:
                lib = ctypes.CDLL(path, mode=os.RTLD_LOCAL | os.RTLD_NOW)
            except OSError as e:
                tried.append("%s (%s)" % (path, e))
                continue
            for name, (args, res) in _SIGNATURES.items():
                fn = getattr(lib, name)
                fn.argtypes = args
                fn.restype = res
            _path = path
            _handle = lib
            return lib
        raise ImportError(
            "sattn: cannot load libsattn.so; tried:\n  " + "\n  ".join(tried) +
            "\nBuild it (ninja -C build sattn_shared) or set SATTN_LIB to its path.")


def path():
    load()
    return _path


def read_string(fn, *args):
    """Calls a function with the (buf, n, needed) protocol and returns the text."""
    needed = ctypes.c_size_t(0)
    check(fn(*args, None, 0, ctypes.byref(needed)))
    buf = ctypes.create_string_buffer(needed.value)
    check(fn(*args, buf, needed.value, ctypes.byref(needed)))
    return buf.value.decode("utf-8")
