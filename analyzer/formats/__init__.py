"""Dump formats: recognise a file by its content and open it as a :class:`~analyzer.dump.Dump`.

Each reader module has a cheap ``probe(head) -> bool`` over the file's first
bytes and a class that opens a :class:`~analyzer.formats.source.Source`.
Containers that wrap another format (makedumpfile's flattened stream) are
unwrapped first, then the readers are probed again on what is inside.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from ..dump import Dump
from ..errors import DumpFormatError, UnknownFormat
from ..kvm import migration
from ..kvm.snapshot import SnapshotDump
from . import diskdump, elf, flattened
from .source import FileSource, Source

__all__ = ["open_dump", "FormatReader", "READERS", "detect"]

PROBE_BYTES = 4096


@dataclass(frozen=True)
class FormatReader:
    name: str
    description: str
    probe: Callable[[bytes], bool]
    open: Callable[[Source, str], Dump]


READERS: list[FormatReader] = [
    FormatReader("elf", "ELF core (Linux /proc/vmcore, makedumpfile -E, QEMU dump-guest-memory)",
                 elf.probe, lambda src, container: elf.ElfDump(src)),
    FormatReader("kdump", "makedumpfile compressed kdump (zlib, lzo, snappy, zstd)",
                 diskdump.probe, lambda src, container: diskdump.KdumpDump(src, container)),
    FormatReader("qemu-migration", "QEMU migration stream (migrate to a file, virsh save's payload)",
                 migration.probe, lambda src, container: SnapshotDump(src)),
]


def detect(head: bytes) -> FormatReader | None:
    for reader in READERS:
        if reader.probe(head):
            return reader
    return None


def open_dump(path: str | os.PathLike[str]) -> Dump:
    """Open any dump vmcrash reads, by content, read-only.

    Raises :class:`UnknownFormat` if no reader recognises it and
    :class:`DumpFormatError` if one does but the file is damaged.
    """
    base = FileSource(path)
    try:
        source: Source = base
        container = ""
        head = base.read(0, min(PROBE_BYTES, base.size), "file header")
        if flattened.probe(head):
            source = flattened.FlattenedSource(base)
            container = "flattened"
            head = source.read(0, min(PROBE_BYTES, source.size), "flattened dump header")
        reader = detect(head)
        if reader is None:
            known = "; ".join(r.description for r in READERS)
            what = "an empty file" if not head else f"starts with {head[:16].hex(' ')}"
            raise UnknownFormat(base.path, 0, f"not a dump vmcrash recognises ({what}). Known formats: {known}")
        return reader.open(source, container)
    except BaseException:
        base.close()
        raise
