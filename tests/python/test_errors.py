"""Wrong arguments raise ValueError naming the tensor and expected vs actual;
failures inside the library raise sattn.Error with its diagnostics."""
import numpy as np
import pytest

import sattn

H, HKV, D = 4, 2, 16


@pytest.fixture(scope="module")
def program(session):
    return session.compile(sattn.patterns.dense(H, HKV, D, causal=True))


def arrays(dtype=np.float32, B=1, S=16):
    return (np.zeros((B, H, S, D), dtype), np.zeros((B, HKV, S, D), dtype),
            np.zeros((B, HKV, S, D), dtype))


def test_wrong_number_of_inputs(program):
    q, k, v = arrays()
    with pytest.raises(ValueError, match=r"takes 3 inputs \(q, k, v\), 4 were given"):
        program(q, k, v, v)
    with pytest.raises(TypeError):
        program(q, k)


def test_wrong_head_count(program):
    q, k, v = arrays()
    with pytest.raises(ValueError, match=r"input 'k' must have shape \[\?, 2, \?, 16\], got "
                                         r"\[1, 3, 16, 16\] \(dimension 1 is 3, expected 2\)"):
        program(q, np.zeros((1, 3, 16, D), np.float32), v)


def test_wrong_head_dim(program):
    q, k, v = arrays()
    with pytest.raises(ValueError, match=r"input 'q' must have shape .*dimension 3 is 8, expected 16"):
        program(np.zeros((1, H, 16, 8), np.float32), k, v)


def test_wrong_rank(program):
    q, k, v = arrays()
    with pytest.raises(ValueError, match=r"input 'v' must have rank 4 .*got rank 3"):
        program(q, k, v[0])


def test_wrong_dtype(program):
    q, k, v = arrays()
    with pytest.raises(ValueError, match=r"input 'q' must be numpy.float16 or numpy.float32, "
                                         r"got numpy.float64"):
        program(q.astype(np.float64), k, v)
    with pytest.raises(ValueError, match=r"input 'k' must be .* got numpy.int32"):
        program(q, k.astype(np.int32), v)


def test_not_an_array(program):
    q, k, v = arrays()
    with pytest.raises(ValueError, match=r"input 'v' must be a numpy.ndarray or CPU torch.Tensor, "
                                         r"got builtins.list"):
        program(q, k, v.tolist())


def test_batch_and_length_mismatch(program):
    q, k, v = arrays()
    with pytest.raises(ValueError, match=r"input 'k' has batch 2 but q has batch 1"):
        program(q, np.zeros((2, HKV, 16, D), np.float32), v)
    with pytest.raises(ValueError, match=r"k and v must have the same length, got 16 and 12"):
        program(q, k, np.zeros((1, HKV, 12, D), np.float32))


def test_wrong_outputs(program):
    q, k, v = arrays()
    with pytest.raises(ValueError, match=r"out must have shape \[1, 4, 16, 16\] \(from q "
                                         r"\[1, 4, 16, 16\]\), got \[1, 4, 15, 16\]"):
        program(q, k, v, out=np.zeros((1, H, 15, D), np.float32))
    with pytest.raises(ValueError, match=r"out must be numpy.float16 or numpy.float32"):
        program(q, k, v, out=np.zeros(q.shape, np.float64))
    with pytest.raises(ValueError, match=r"lse was given but this program returns no LSE"):
        program(q, k, v, lse=np.zeros(q.shape[:3], np.float32))
    readonly = np.zeros(q.shape, np.float32)
    readonly.setflags(write=False)
    with pytest.raises(ValueError, match=r"out is read-only"):
        program(q, k, v, out=readonly)


def test_invalid_ir_carries_the_diagnostic(session):
    with pytest.raises(sattn.Error, match=r"not valid sattn IR:\n.*custom op 'sattn.bogus' is unknown"):
        session.compile("func.func @f(%q: tensor<?x2x?x8xbf16>) -> tensor<?x2x?x8xbf16> {\n"
                        "  %o = sattn.bogus %q : tensor<?x2x?x8xbf16>\n"
                        "  return %o : tensor<?x2x?x8xbf16>\n}\n")


def test_verifier_error_carries_the_diagnostic(session):
    bad = sattn.patterns.dense(4, 2, 16).replace("?x4x", "?x3x")
    with pytest.raises(sattn.Error, match=r"query heads \(3\) must be a multiple of KV heads \(2\)"):
        session.compile(bad)


def test_not_one_function(session):
    with pytest.raises(sattn.Error, match=r"exactly one func.func"):
        session.compile("module {}")


def test_bad_options(session):
    with pytest.raises(ValueError, match=r"dtype must be None, \"bf16\" or \"fp16\", got 'fp8'"):
        session.compile(sattn.patterns.dense(H, HKV, D), dtype="fp8")
    with pytest.raises(ValueError, match=r"device must be"):
        sattn.Session("tpu")
    with pytest.raises(FileNotFoundError, match=r"cannot read variant file"):
        session.compile("/nonexistent/variant.mlir")
    with pytest.raises(TypeError):
        session.compile(42)


def test_bad_pattern_arguments():
    with pytest.raises(sattn.Error, match=r"heads \(3\) must be a multiple of kv_heads \(2\)"):
        sattn.patterns.dense(3, 2, 16)
    with pytest.raises(ValueError, match=r"dtype must be"):
        sattn.patterns.dense(4, 2, 16, dtype="f64")
    with pytest.raises(TypeError, match=r"heads must be an int"):
        sattn.patterns.dense(4.0, 2, 16)


def test_gpu_session_without_gpu_says_why():
    try:
        s = sattn.Session("gpu")
    except sattn.Error as e:
        assert "GPU" in str(e) and len(str(e)) > 30
    else:
        assert s.device == "gpu"


def test_closed_handles(session):
    s = sattn.Session("cpu")
    p = s.compile(sattn.patterns.dense(H, HKV, D))
    s.close()
    s.close()
    with pytest.raises(ValueError, match=r"closed"):
        s.compile(sattn.patterns.dense(H, HKV, D))
    q, k, v = arrays()
    assert p(q, k, v).shape == q.shape  # a program outlives its session
    p.close()
    with pytest.raises(ValueError, match=r"closed"):
        p(q, k, v)
