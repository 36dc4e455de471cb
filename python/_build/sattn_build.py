"""A minimal PEP 517 backend for the sattn package (no setuptools, no network).

It packs python/sattn/*.py (and sattn/libsattn.so when the bundle script has
copied it there) into a wheel; `pip install -e` gets a .pth file pointing at
python/. The version is the package's __version__.
"""

import base64
import hashlib
import os
import re
import sysconfig
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = os.path.join(ROOT, "sattn")
NAME = "sattn"


def _version():
    with open(os.path.join(PKG, "__init__.py"), encoding="utf-8") as f:
        return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


def _files():
    out = []
    for name in sorted(os.listdir(PKG)):
        if name.endswith(".py") or name == "libsattn.so":
            out.append((os.path.join(PKG, name), NAME + "/" + name))
    return out


def _tag(files):
    if any(arc.endswith(".so") for _, arc in files):
        plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
        return "py3-none-" + plat, False
    return "py3-none-any", True


def _metadata():
    return ("Metadata-Version: 2.1\nName: %s\nVersion: %s\n"
            "Summary: Python bindings (ctypes) for sattn, a sparse-attention JIT compiler\n"
            "Requires-Python: >=3.8\nProvides-Extra: test\n"
            "Requires-Dist: numpy; extra == \"test\"\nRequires-Dist: pytest; extra == \"test\"\n"
            % (NAME, _version()))


def _record_line(arc, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (arc, digest, len(data))


def _write_wheel(directory, entries, tag, pure):
    dist = "%s-%s" % (NAME, _version())
    info = dist + ".dist-info"
    entries = list(entries) + [
        (info + "/METADATA", _metadata().encode()),
        (info + "/WHEEL", ("Wheel-Version: 1.0\nGenerator: sattn_build\nRoot-Is-Purelib: %s\n"
                           "Tag: %s\n" % ("true" if pure else "false", tag)).encode()),
        (info + "/top_level.txt", (NAME + "\n").encode()),
    ]
    record = [_record_line(arc, data) for arc, data in entries] + [info + "/RECORD,,"]
    entries.append((info + "/RECORD", ("\n".join(record) + "\n").encode()))
    wheel = "%s-%s.whl" % (dist, tag)
    with zipfile.ZipFile(os.path.join(directory, wheel), "w", zipfile.ZIP_DEFLATED) as z:
        for arc, data in entries:
            zi = zipfile.ZipInfo(arc, date_time=(2020, 1, 1, 0, 0, 0))
            zi.external_attr = (0o755 if arc.endswith(".so") else 0o644) << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    return wheel


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = _files()
    entries = []
    for path, arc in files:
        with open(path, "rb") as f:
            entries.append((arc, f.read()))
    tag, pure = _tag(files)
    return _write_wheel(wheel_directory, entries, tag, pure)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    entries = [("__editable__.%s.pth" % NAME, (ROOT + "\n").encode())]
    return _write_wheel(wheel_directory, entries, "py3-none-any", True)


def build_sdist(sdist_directory, config_settings=None):
    import tarfile

    base = "%s-%s" % (NAME, _version())
    name = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as tar:
        for rel in ("pyproject.toml", "_build/sattn_build.py"):
            tar.add(os.path.join(ROOT, rel), base + "/" + rel)
        for path, arc in _files():
            tar.add(path, base + "/" + arc)
        pkg_info = os.path.join(sdist_directory, "PKG-INFO.tmp")
        with open(pkg_info, "w") as f:
            f.write(_metadata())
        tar.add(pkg_info, base + "/PKG-INFO")
        os.remove(pkg_info)
    return name
