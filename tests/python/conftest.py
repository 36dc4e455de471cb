"""Shared fixtures of the sattn Python tests (CPU path, numpy only).

numpy and pytest come from PyPI (`python3 -m pip install numpy pytest`); a
missing numpy fails the run loudly instead of skipping every test.
"""
import os
import sys
import tempfile

try:
    import numpy  # noqa: F401
except ImportError as e:  # pragma: no cover
    raise ImportError("the sattn Python tests need numpy: python3 -m pip install numpy pytest") from e

import pytest

# The package from this checkout unless PYTHONPATH / an install says otherwise.
_here = os.path.dirname(os.path.abspath(__file__))
_pkg = os.path.join(os.path.dirname(os.path.dirname(_here)), "python")
if _pkg not in sys.path:
    sys.path.append(_pkg)
os.environ.setdefault("SATTN_CACHE_DIR", tempfile.mkdtemp(prefix="sattn-pytest-cache-"))

import sattn  # noqa: E402


@pytest.fixture(scope="session")
def session():
    with sattn.Session("cpu") as s:
        yield s
