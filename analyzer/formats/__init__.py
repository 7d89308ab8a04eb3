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
from ..errors import UnknownFormat
from ..kvm import libvirt, migration, qcow2
from ..kvm.snapshot import SnapshotDump
from ..xen import xendump
from . import diskdump, elf, flattened
from .source import FileSource, Source

__all__ = ["open_dump", "FormatReader", "OpenOptions", "READERS", "detect"]

PROBE_BYTES = 4096
#: Whole-file compressions people send dumps in: said plainly, not "unknown".
COMPRESSED = ((b"\xfd7zXZ\x00", "xz"), (b"\x1f\x8b", "gzip"), (b"\x28\xb5\x2f\xfd", "zstd"),
              (b"BZh", "bzip2"))


@dataclass(frozen=True)
class FormatReader:
    name: str
    description: str
    probe: Callable[[bytes], bool]
    open: Callable[[Source, str, "OpenOptions"], Dump]


@dataclass(frozen=True)
class OpenOptions:
    """What a user may choose about how a file opens."""

    snapshot: str | None = None  # qcow2: which internal snapshot (id or name); default the newest
    progress: Callable[[int, int], None] | None = None


def _open_qcow2(src: Source, container: str, opts: OpenOptions) -> Dump:
    assert isinstance(src, FileSource)
    image = qcow2.Qcow2Image(src)
    snap = image.find(opts.snapshot)
    dump = SnapshotDump(qcow2.VmstateSource(image, snap), container=f"savevm snapshot {snap.id} '{snap.name}'",
                        progress=opts.progress)
    dump.header["snapshots"] = ", ".join(f"{s.id}:{s.name}" + ("" if s.vm_state_size else " (disk only)")
                                         for s in image.snapshots)
    return dump


def _open_libvirt(src: Source, container: str, opts: OpenOptions) -> Dump:
    assert isinstance(src, FileSource)
    header = libvirt.parse_header(src)
    stream_src, base = libvirt.stream_source(src, header, opts.progress)
    dump = SnapshotDump(stream_src, base=base, container=f"libvirt save ({header.compression})",
                        progress=opts.progress)
    dump.path = src.path
    dump.header["libvirt_xml_bytes"] = len(header.xml)
    dump.header["was_running"] = header.was_running
    if header.partial:
        dump.warnings.append("libvirt marked this save file unfinished (LibvirtQemudPart)")
    return dump


READERS: list[FormatReader] = [
    FormatReader("xendump", "Xen xl dump-core ELF (PV and HVM guests)",
                 xendump.probe, lambda src, container, opts: xendump.XenDump(src)),
    FormatReader("elf", "ELF core (Linux /proc/vmcore, makedumpfile -E, QEMU dump-guest-memory)",
                 elf.probe, lambda src, container, opts: elf.ElfDump(src)),
    FormatReader("kdump", "makedumpfile compressed kdump (zlib, lzo, snappy, zstd)",
                 diskdump.probe, lambda src, container, opts: diskdump.KdumpDump(src, container)),
    FormatReader("qemu-migration", "QEMU migration stream (migrate to a file)",
                 migration.probe, lambda src, container, opts: SnapshotDump(src, progress=opts.progress)),
    FormatReader("qcow2-savevm", "qcow2 image with savevm snapshots", qcow2.probe, _open_qcow2),
    FormatReader("libvirt-save", "libvirt save file (virsh save, managed save)", libvirt.probe, _open_libvirt),
]


def detect(head: bytes) -> FormatReader | None:
    for reader in READERS:
        if reader.probe(head):
            return reader
    return None


def open_dump(path: str | os.PathLike[str], *, snapshot: str | None = None,
              progress: Callable[[int, int], None] | None = None) -> Dump:
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
            for magic, tool in COMPRESSED:
                if head.startswith(magic):
                    raise UnknownFormat(base.path, 0, f"this is a {tool} file, not a dump: decompress it first "
                                        f"({tool} -dk {base.path})")
            known = "; ".join(r.description for r in READERS)
            what = "an empty file" if not head else f"starts with {head[:16].hex(' ')}"
            raise UnknownFormat(base.path, 0, f"not a dump vmcrash recognises ({what}). Known formats: {known}")
        return reader.open(source, container, OpenOptions(snapshot=snapshot, progress=progress))
    except BaseException:
        base.close()
        raise
