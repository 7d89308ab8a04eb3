"""Access to the real sample dumps in sample-dumps/.

Samples are stored compressed (``.xz``) in git; :func:`path` unpacks one
into a cache on first use (``$VMCRASH_SAMPLE_CACHE``, default
``~/.cache/vmcrash/samples``) and returns where it is.  Each sample folder
has a ``facts.json`` (see sample-dumps/README.md) that says which files it
holds and what crash and drgn report about them.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import shutil
import tempfile
from functools import lru_cache
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(ROOT, "sample-dumps")
CACHE = os.environ.get("VMCRASH_SAMPLE_CACHE", os.path.expanduser("~/.cache/vmcrash/samples"))


def sample_names() -> list[str]:
    if not os.path.isdir(SAMPLES):
        return []
    return sorted(d for d in os.listdir(SAMPLES)
                  if os.path.isfile(os.path.join(SAMPLES, d, "facts.json")))


@lru_cache(maxsize=None)
def facts(sample: str) -> dict[str, Any]:
    with open(os.path.join(SAMPLES, sample, "facts.json")) as f:
        return json.load(f)  # type: ignore[no-any-return]


def dump_files(sample: str) -> list[str]:
    """The dump files of a sample (names as stored, e.g. ``vmcore.elf.xz``)."""
    return sorted(facts(sample).get("files", {}))


def _archive(sample: str, name: str) -> str | None:
    if not os.path.isfile(os.path.join(SAMPLES, sample, "facts.json")):
        return None  # e.g. sample-dumps/kernel: files, no facts
    return facts(sample).get("files", {}).get(name, {}).get("archive")


def _derived_from(sample: str, name: str) -> str | None:
    if not os.path.isfile(os.path.join(SAMPLES, sample, "facts.json")):
        return None
    return facts(sample).get("files", {}).get(name, {}).get("derived_from")


def _available(sample: str, name: str, depth: int = 0) -> bool:
    origin = _derived_from(sample, name)
    if origin is not None:
        return depth < 4 and _available(sample, origin, depth + 1)
    return os.path.exists(os.path.join(SAMPLES, sample, _archive(sample, name) or name))


def all_dumps() -> list[tuple[str, str]]:
    return [(s, f) for s in sample_names() for f in dump_files(s) if _available(s, f)]


def path(sample: str, name: str) -> str:
    """A readable path to ``sample/name``, unpacking ``.xz`` (or the
    ``.tar.xz`` archive facts.json names for it) into the cache."""
    archive = _archive(sample, name)
    if archive is not None:
        return _from_archive(sample, archive, name)
    origin = _derived_from(sample, name)
    if origin is not None:
        return _derive(sample, origin, name)
    src = os.path.join(SAMPLES, sample, name)
    if not name.endswith(".xz"):
        return src
    st = os.stat(src)
    key = hashlib.sha256(f"{src}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
    dst = os.path.join(CACHE, sample, key, name[:-3])
    if not os.path.exists(dst):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dst))
        with os.fdopen(fd, "wb") as out, lzma.open(src) as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
        os.replace(tmp, dst)
    return dst


def _from_archive(sample: str, archive: str, name: str) -> str:
    import tarfile

    src = os.path.join(SAMPLES, sample, archive)
    st = os.stat(src)
    key = hashlib.sha256(f"{src}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
    dst_dir = os.path.join(CACHE, sample, key)
    done = os.path.join(dst_dir, ".unpacked")
    if not os.path.exists(done):
        os.makedirs(dst_dir, exist_ok=True)
        with tarfile.open(src, "r:xz") as tar:
            for member in tar.getmembers():
                if member.isfile() and "/" not in member.name and not member.name.startswith("."):
                    tar.extract(member, dst_dir, filter="data")
        open(done, "w").close()
    return os.path.join(dst_dir, name)


def _derive(sample: str, origin: str, name: str) -> str:
    """A sample derived from a real one by a recipe script (the snappy kdump:
    no Debian makedumpfile writes snappy), made once into the cache."""
    import subprocess
    import sys

    src = path(sample, origin)
    st = os.stat(src)
    key = hashlib.sha256(f"{src}:{st.st_size}:{st.st_mtime_ns}:{name}".encode()).hexdigest()[:16]
    dst = os.path.join(CACHE, sample, key, name)
    if not os.path.exists(dst):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        tool = os.path.join(SAMPLES, "recipe", "reencode_snappy.py")
        subprocess.run([sys.executable, tool, src, dst + ".tmp"], check=True, capture_output=True)
        os.replace(dst + ".tmp", dst)
    return dst


def stored_name(name: str) -> str:
    """The file's name without a storage suffix (``vmcore.elf.xz`` -> ``vmcore.elf``)."""
    return name[:-3] if name.endswith(".xz") else name


def vmlinux() -> str | None:
    """The sample kernel's vmlinux (with DWARF), unpacked into the cache."""
    for name in ("vmlinux.xz", "vmlinux"):
        if os.path.exists(os.path.join(SAMPLES, "kernel", name)):
            return path("kernel", name)
    return None


def module_dir() -> str | None:
    """sample-dumps/kernel when it holds module files (for --debuginfo)."""
    d = os.path.join(SAMPLES, "kernel")
    if not os.path.isdir(d):
        return None
    return d if any(f.endswith((".ko", ".ko.xz")) for f in os.listdir(d)) else None


def primary_dump(sample: str) -> str | None:
    """The sample's first ELF or kdump file, for the slower Linux-level tests."""
    files = [f for s, f in all_dumps() if s == sample]
    return files[0] if files else None
