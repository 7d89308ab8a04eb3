"""The on-disk cache of migration-stream indexes, so a stream is read end to
end once and every later open is instant.

A cache entry is keyed by the stream file's absolute path, size and
modification time (and where the stream starts in it): a changed file is
indexed again.  Entries live in ``$VMCRASH_CACHE/stream-index``
(default ``~/.cache/vmcrash``); a cache that cannot be written is skipped
silently -- it only costs the next open its speed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import struct
from array import array
from typing import Any

from .migration import DeviceSection, MigrationStream, RamBlock

__all__ = ["cache_key", "load", "save", "CACHE_DIR", "FORMAT_VERSION"]

CACHE_DIR = os.path.join(os.environ.get("VMCRASH_CACHE", os.path.expanduser("~/.cache/vmcrash")), "stream-index")
FORMAT_VERSION = 1
MAGIC = b"VMCRIDX1"


def cache_key(path: str, base: int, extra: str = "") -> str | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    text = f"{FORMAT_VERSION}:{os.path.abspath(path)}:{st.st_size}:{st.st_mtime_ns}:{base}:{extra}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _file(key: str) -> str:
    return os.path.join(CACHE_DIR, key + ".idx")


def save(key: str, stream: MigrationStream) -> None:
    meta: dict[str, Any] = {
        "machine_type": stream.machine_type, "footers": stream.footers, "complete": stream.complete,
        "warnings": stream.warnings, "base": stream.base, "vmdesc": stream.vmdesc,
        "blocks": [(b.name, b.length, len(b.pages)) for b in stream.blocks.values()],
        "sections": [dataclasses.astuple(s) for s in stream.sections],
    }
    blob = json.dumps(meta).encode()
    try:
        os.makedirs(CACHE_DIR, exist_ok=True)
        tmp = _file(key) + f".{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(MAGIC + struct.pack("<Q", len(blob)) + blob)
            for b in stream.blocks.values():
                b.pages.tofile(f)
        os.replace(tmp, _file(key))
    except OSError:
        pass


def load(key: str) -> MigrationStream | None:
    try:
        with open(_file(key), "rb") as f:
            if f.read(8) != MAGIC:
                return None
            (n,) = struct.unpack("<Q", f.read(8))
            meta = json.loads(f.read(n))
            blocks: dict[str, RamBlock] = {}
            for name, length, npages in meta["blocks"]:
                pages: array[int] = array("q")
                pages.fromfile(f, npages)
                blocks[name] = RamBlock(name, length, pages)
    except (OSError, ValueError, EOFError, KeyError, struct.error):
        return None
    return MigrationStream(
        machine_type=meta["machine_type"], blocks=blocks,
        sections=[DeviceSection(*s) for s in meta["sections"]], vmdesc=meta["vmdesc"],
        footers=meta["footers"], complete=meta["complete"], warnings=meta["warnings"], base=meta["base"])
