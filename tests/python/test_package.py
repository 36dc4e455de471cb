"""The package itself: lazy imports, library lookup, patterns, inspection."""
import os
import re
import subprocess
import sys

import pytest

import sattn

H, HKV, D = 4, 2, 16


def test_imports_without_numpy_or_torch():
    # Blocking numpy and torch makes any eager import of them fail.
    code = ("import sys; sys.modules['numpy'] = None; sys.modules['torch'] = None; "
            "import sattn; s = sattn.Session('cpu'); "
            "p = s.compile(sattn.patterns.dense(4, 2, 16)); print(p.key)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"[0-9a-f]{64}\n", r.stdout)


def test_autograd_module_imports_without_torch():
    # sattn.autograd loads lazily and needs torch only when used.
    code = ("import sys; sys.modules['torch'] = None; import sattn; "
            "assert 'sattn.autograd' not in sys.modules; m = sattn.autograd; "
            "p = sattn.Session('cpu').compile(sattn.patterns.dense(4, 2, 16))\n"
            "try:\n    m.SparseAttention(p)\nexcept ImportError as e:\n    print(e)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "sattn.autograd needs PyTorch" in r.stdout


def test_library():
    assert os.path.isfile(sattn.library_path())
    assert sattn.library_version() == sattn.__version__


def test_missing_library_is_a_clear_error(tmp_path):
    code = "import sattn; sattn.Session('cpu')"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path),
               SATTN_LIB=str(tmp_path / "libsattn.so"))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode != 0
    assert "cannot load libsattn.so" in r.stderr and "SATTN_LIB" in r.stderr


def test_patterns_are_ir_text():
    dense = sattn.patterns.dense(H, HKV, D, causal=True)
    assert dense.startswith("func.func @dense_causal(") and "sattn.attention" in dense
    assert "{causal}" in dense and "tensor<?x4x?x16xbf16>" in dense
    assert "@dense(" in sattn.patterns.dense(H, HKV, D, causal=False)
    assert "xf16>" in sattn.patterns.dense(H, HKV, D, dtype="fp16")
    assert "tensor<?x4x?xf32>" in sattn.patterns.dense(H, HKV, D, lse=True)
    stream = sattn.patterns.streaming(H, HKV, D, window=128, sinks=4)
    assert "window = 128" in stream and "sinks = 4" in stream
    topk = sattn.patterns.topk_blocks(H, HKV, D, k=5, block=64, pool=32)
    assert "sattn.select_blocks topk" in topk and "k = 5" in topk and "group 32" in topk
    assert sattn.patterns.topk is sattn.patterns.topk_blocks
    x = sattn.patterns.xattention(H, HKV, D, stride=16, tau=0.85)
    assert "sattn.antidiag_scores %q, %k {stride = 16 : i64, causal}" in x
    assert "tau = 0.85 : f64" in x and "slack" not in x
    assert "slack = 1 : i64" in sattn.patterns.xattention(H, HKV, D, slack=1)
    with pytest.raises(ValueError, match="slack must be a non-negative int"):
        sattn.patterns.xattention(H, HKV, D, slack=-1)
    qt = sattn.patterns.quest(H, HKV, D, page=32, pages=10)
    assert "bound %kmax" in qt and "group 32" in qt and "k = 10 : i64" in qt
    qi = sattn.patterns.quest(H, HKV, D, bounds_as_inputs=True)
    assert '{sattn.name = "kmin"}' in qi and "sattn.pool min" not in qi
    with pytest.raises(ValueError, match="pages must be a positive int"):
        sattn.patterns.quest(H, HKV, D, pages=0)
    u = sattn.patterns.unisparse(H, HKV, D, tau=0.95, cap=6)
    assert "sattn.mean_scores %s32, %s64" in u and "k = 6 : i64" in u
    with pytest.raises(ValueError, match="tau must lie in"):
        sattn.patterns.unisparse(H, HKV, D, tau=1.5)


def test_program_inspection(session):
    text = sattn.patterns.dense(H, HKV, D, lse=True)
    p = session.compile(text)
    assert re.fullmatch(r"[0-9a-f]{64}", p.key)
    assert session.compile(text).key == p.key
    assert session.compile(text, dtype="fp16").key != p.key
    assert "sattn.launch" in p.lowered_ir
    assert p.cuda_source == ""  # CPU program
    assert p.device == "cpu" and session.device == "cpu" and session.device_name == "cpu"
    assert session.release_workspace() == 0  # a CPU session holds no GPU workspace
    assert p.input_names == ["q", "k", "v"]
    assert p.inputs[1] == sattn.TensorSpec("k", "bf16", (None, HKV, None, D))
    assert [o.name for o in p.outputs] == ["out", "lse"]
    assert p.outputs[1] == sattn.TensorSpec("lse", "f32", (None, H, None))
    assert "inputs=['q', 'k', 'v']" in repr(p)
