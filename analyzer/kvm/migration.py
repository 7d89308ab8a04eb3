"""QEMU's migration stream (version 3): what ``migrate "exec:cat > FILE"``,
``virsh save`` and ``savevm`` write.

A stream is a sequence of sections (migration/savevm.c):

    u32 "QEVM"  u32 3
    0x07 CONFIGURATION   u32 len, machine type [, subsections]
    0x01 SECTION_START   u32 id, u8 len, idstr, u32 instance, u32 version, data
    0x02 SECTION_PART    u32 id, data
    0x03 SECTION_END     u32 id, data
    0x04 SECTION_FULL    like START
    0x08 COMMAND         u16 cmd, u16 len, data
    0x7e FOOTER          u32 id (after each section, on machines since 2.4)
    0x00 EOF
    0x06 VMDESCRIPTION   u32 len, JSON describing every device section's fields

The "ram" section's data (migration/ram.c) is a list of records, each a
big-endian u64 holding an offset in a RAM block and flags in its low bits:
MEM_SIZE (the block list), PAGE (4 KiB of data), ZERO (one fill byte),
EOS (end of this part).  A record without CONTINUE names its block.  Pages
may be sent more than once: the last one wins.

Device sections are not self-describing; their lengths come from the
VMDESCRIPTION JSON (the same way QEMU's scripts/analyze-migration.py reads
them), and devices with no description are skipped to their footer.  The
``cpu`` sections give each vCPU's registers.

A stream is not random-access: it is indexed once (one pass over the record
headers, page data skipped), and the index is kept on disk, so the second
open is instant.
"""

from __future__ import annotations

import json
import struct
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import DumpFormatError
from ..formats.source import MAX_HEADER_READ, Source

__all__ = ["MigrationStream", "RamBlock", "DeviceSection", "probe", "QEMU_VM_FILE_MAGIC",
           "ZERO_PAGE", "parse_stream"]

QEMU_VM_FILE_MAGIC = b"QEVM"
QEMU_VM_FILE_VERSION = 3

EOF, SECTION_START, SECTION_PART, SECTION_END, SECTION_FULL, SUBSECTION, VMDESCRIPTION, \
    CONFIGURATION, COMMAND = range(9)
SECTION_FOOTER = 0x7E

RAM_SAVE_FLAG_FULL = 0x01
RAM_SAVE_FLAG_ZERO = 0x02
RAM_SAVE_FLAG_MEM_SIZE = 0x04
RAM_SAVE_FLAG_PAGE = 0x08
RAM_SAVE_FLAG_EOS = 0x10
RAM_SAVE_FLAG_CONTINUE = 0x20
RAM_SAVE_FLAG_XBZRLE = 0x40
RAM_SAVE_FLAG_HOOK = 0x80
RAM_SAVE_FLAG_COMPRESS_PAGE = 0x100
RAM_SAVE_FLAG_MULTIFD_FLUSH = 0x200

PAGE_SIZE = 4096
#: Index value of a page sent as ZERO (with fill byte 0); fill byte b is ZERO_PAGE - b.
ZERO_PAGE = -1
MAX_BLOCKS = 4096
MAX_RAM = 1 << 46  # 64 TiB: a bound on what a stream may claim


def probe(head: bytes) -> bool:
    return head[:4] == QEMU_VM_FILE_MAGIC


@dataclass
class RamBlock:
    """One RAMBlock: its name, size, and where each of its pages is in the file
    (0: never sent; > 0: file offset of the data; < 0: a ZERO page, fill byte
    ``ZERO_PAGE - value``)."""

    name: str
    length: int
    pages: "array[int]" = field(repr=False, default_factory=lambda: array("q"))


@dataclass
class DeviceSection:
    idstr: str
    instance_id: int
    version: int
    offset: int  # file offset of the section's data
    size: int


class _Cursor:
    def __init__(self, src: Source, pos: int) -> None:
        self.src = src
        self.pos = pos

    def bytes(self, n: int, what: str) -> bytes:
        b = self.src.read(self.pos, n, what)
        self.pos += n
        return b

    def u8(self, what: str = "stream") -> int:
        return self.bytes(1, what)[0]

    def be16(self, what: str = "stream") -> int:
        return int(struct.unpack(">H", self.bytes(2, what))[0])

    def be32(self, what: str = "stream") -> int:
        return int(struct.unpack(">I", self.bytes(4, what))[0])

    def be64(self, what: str = "stream") -> int:
        return int(struct.unpack(">Q", self.bytes(8, what))[0])

    def idstr(self, what: str) -> str:
        n = self.u8(what)
        return self.bytes(n, what).decode("utf-8", "replace")

    def peek(self) -> int | None:
        if self.pos >= self.src.size:
            return None
        return self.src.read(self.pos, 1)[0]


@dataclass
class MigrationStream:
    """Everything indexed from one stream."""

    machine_type: str | None = None
    blocks: dict[str, RamBlock] = field(default_factory=dict)
    sections: list[DeviceSection] = field(default_factory=list)
    vmdesc: dict[str, Any] | None = None
    footers: bool = False
    complete: bool = False
    warnings: list[str] = field(default_factory=list)
    base: int = 0  # where the stream starts in its source (after a libvirt header, say)
    last_block: RamBlock | None = field(default=None, repr=False)

    def device(self, idstr: str, instance_id: int) -> DeviceSection | None:
        for s in self.sections:
            if s.idstr == idstr and s.instance_id == instance_id:
                return s
        return None

    def vmdesc_device(self, idstr: str, instance_id: int) -> dict[str, Any] | None:
        for d in (self.vmdesc or {}).get("devices", []):
            if d.get("name") == idstr and d.get("instance_id") == instance_id:
                return d  # type: ignore[no-any-return]
        return None


def _find_vmdesc(src: Source, base: int) -> dict[str, Any] | None:
    """The VMDESCRIPTION JSON at the end of the stream (found as QEMU's
    analyze-migration.py finds it: the last NUL, then the first brace)."""
    tail_len = min(src.size - base, MAX_HEADER_READ // 16)
    tail = src.read(src.size - tail_len, tail_len, "stream tail")
    nul = tail.rfind(b"\0")
    start = tail.find(b"{", nul + 1)
    if start < 5 or tail[start - 5] != VMDESCRIPTION:
        return None
    length = struct.unpack(">I", tail[start - 4:start])[0]
    if start + length != len(tail):
        return None
    try:
        desc = json.loads(tail[start:])
    except ValueError:
        return None
    return desc if isinstance(desc, dict) else None


def _skip_vmsd(cur: _Cursor, vmsd: dict[str, Any], depth: int = 0) -> None:
    """Skip one vmstate-described object (fields, then its subsections)."""
    if depth > 32:
        raise ValueError("vmstate nesting too deep")
    for f in vmsd.get("fields", []):
        for _ in range(int(f.get("array_len", 1))):
            if f.get("type") == "struct":
                _skip_vmsd(cur, f["struct"], depth + 1)
            elif "fields" in f:  # VMSTATE_WITH_TMP: its fields are inline
                _skip_vmsd(cur, f, depth + 1)
            else:
                cur.pos += int(f["size"])
    subs = {s.get("vmsd_name"): s for s in vmsd.get("subsections", [])}
    own = str(vmsd.get("vmsd_name", ""))
    while cur.peek() == SUBSECTION:
        # As QEMU's vmstate_subsection_load: a 0x05 byte starts a subsection
        # only if a name "<this vmsd's name>/..." follows; otherwise it is data
        # of whatever comes next.
        n = cur.src.read(cur.pos + 1, 1, "subsection")[0]
        name = cur.src.read(cur.pos + 2, n, "subsection name").decode("utf-8", "replace")
        if n < len(own) + 1 or not name.startswith(own):
            return
        sub = subs.get(name)
        if sub is None:
            raise ValueError(f"subsection {name!r} is not in the stream's description")
        cur.pos += 2 + n
        cur.be32("subsection version")
        _skip_vmsd(cur, sub, depth + 1)


def vmsd_leaves(vmsd: dict[str, Any], prefix: str = "", depth: int = 0) -> list[tuple[str, int]]:
    """(path, size) of every leaf field in stream order, top-level fields only
    (subsections follow them in the stream and are not included)."""
    out: list[tuple[str, int]] = []
    if depth > 32:
        return out
    for f in vmsd.get("fields", []):
        n = int(f.get("array_len", 1))
        for i in range(n):
            name = f"{prefix}{f['name']}" + (f"[{i}]" if n > 1 else "")
            if f.get("type") == "struct":
                out += vmsd_leaves(f["struct"], name + ".", depth + 1)
            elif "fields" in f:
                out += vmsd_leaves(f, name + ".", depth + 1)
            else:
                out.append((name, int(f["size"])))
    return out


def _skip_to_footer(cur: _Cursor, section_id: int) -> None:
    """For a device the description does not cover: find its footer."""
    pattern = bytes([SECTION_FOOTER]) + struct.pack(">I", section_id)
    window = 1 << 20
    start = cur.pos
    while cur.pos < cur.src.size and cur.pos - start < 64 * window:
        chunk = cur.src.read(cur.pos, min(window + 4, cur.src.size - cur.pos), "device section")
        i = chunk.find(pattern)
        if i >= 0:
            cur.pos += i
            return
        cur.pos += window
    raise ValueError(f"no footer found for section {section_id}")


def _configuration(cur: _Cursor, stream: MigrationStream) -> None:
    n = cur.be32("configuration")
    if n > 256:
        raise ValueError(f"machine type of {n} bytes")
    stream.machine_type = cur.bytes(n, "machine type").decode("utf-8", "replace")
    while cur.peek() == SUBSECTION:  # migration/savevm.c vmstate_configuration's subsections
        cur.pos += 1
        name = cur.idstr("configuration subsection")
        cur.be32("subsection version")
        if name == "configuration/target-page-bits":
            cur.be32()
        elif name == "configuration/uuid":
            cur.bytes(16, "uuid")
        elif name == "configuration/capabilities":
            for _ in range(cur.be32()):
                cur.idstr("capability")
        else:
            raise ValueError(f"unknown configuration subsection {name!r}")


def _ram(cur: _Cursor, stream: MigrationStream, path: str) -> None:
    """One part of the "ram" section, up to its EOS record.  The current block
    carries over from one part to the next (QEMU keeps it across calls)."""
    block = stream.last_block
    while True:
        rec_at = cur.pos
        value = cur.be64("RAM record")
        flags = value & (PAGE_SIZE - 1)
        addr = value & ~(PAGE_SIZE - 1)
        if flags & RAM_SAVE_FLAG_EOS:
            return
        if flags & RAM_SAVE_FLAG_MEM_SIZE:
            total, seen = addr, 0
            while seen < total:
                name = cur.idstr("RAM block name")
                length = cur.be64("RAM block length")
                if length > MAX_RAM or len(stream.blocks) >= MAX_BLOCKS:
                    raise DumpFormatError(path, cur.pos - 8, f"RAM block {name!r} claims {length} bytes")
                if name not in stream.blocks:
                    stream.blocks[name] = RamBlock(name, length, array("q", bytes(8 * (length // PAGE_SIZE))))
                seen += length
            continue
        if flags & (RAM_SAVE_FLAG_ZERO | RAM_SAVE_FLAG_PAGE | RAM_SAVE_FLAG_COMPRESS_PAGE | RAM_SAVE_FLAG_XBZRLE):
            if not flags & RAM_SAVE_FLAG_CONTINUE:
                name = cur.idstr("RAM block name")
                block = stream.blocks.get(name)
                if block is None:
                    raise DumpFormatError(path, rec_at, f"page for unknown RAM block {name!r}")
                stream.last_block = block
            if block is None:
                raise DumpFormatError(path, rec_at, "CONTINUE record with no block before it")
            index = addr // PAGE_SIZE
            if index >= len(block.pages):
                raise DumpFormatError(path, rec_at, f"page at {addr:#x} is past the end of block {block.name!r}")
            if flags & RAM_SAVE_FLAG_ZERO:
                block.pages[index] = ZERO_PAGE - cur.u8("zero page fill")
            elif flags & RAM_SAVE_FLAG_PAGE:
                block.pages[index] = cur.pos
                cur.pos += PAGE_SIZE
                if cur.pos > cur.src.size:
                    raise DumpFormatError(path, rec_at, "page data runs past the end of the file")
            elif flags & RAM_SAVE_FLAG_COMPRESS_PAGE:
                raise DumpFormatError(path, rec_at, "compressed RAM pages (the 'compress' migration "
                                      "capability) are not supported; migrate without it")
            else:
                raise DumpFormatError(path, rec_at, "XBZRLE-encoded RAM pages cannot be in a file stream "
                                      "(they need the previous page)")
            continue
        if flags & RAM_SAVE_FLAG_HOOK:
            raise DumpFormatError(path, rec_at, "RAM hook records (RDMA migration) are not supported")
        if flags & RAM_SAVE_FLAG_MULTIFD_FLUSH:
            continue
        raise DumpFormatError(path, rec_at, f"unknown RAM record flags {flags:#x}")


def parse_stream(src: Source, base: int = 0, progress: Callable[[int, int], None] | None = None) -> MigrationStream:
    """Index the stream starting at ``base`` in ``src``."""
    path = src.path
    cur = _Cursor(src, base)
    if cur.bytes(4, "stream magic") != QEMU_VM_FILE_MAGIC:
        raise DumpFormatError(path, base, "not a QEMU migration stream (no QEVM magic)")
    version = cur.be32("stream version")
    if version != QEMU_VM_FILE_VERSION:
        raise DumpFormatError(path, base + 4, f"migration stream version {version}; only version 3 is read")
    stream = MigrationStream(base=base)
    stream.vmdesc = _find_vmdesc(src, base)
    if stream.vmdesc is None:
        stream.warnings.append("the stream has no VMDESCRIPTION: device sections are skipped by their footers")
    ids: dict[int, tuple[str, int, int]] = {}
    last_progress = 0
    try:
        while True:
            if progress is not None and cur.pos - last_progress > 64 << 20:
                progress(cur.pos - base, src.size - base)
                last_progress = cur.pos
            at = cur.pos
            kind = cur.u8("section type")
            if kind == EOF:
                stream.complete = True
                break
            if kind == CONFIGURATION:
                _configuration(cur, stream)
                continue
            if kind == COMMAND:
                cur.be16()
                cur.bytes(cur.be16(), "command")
                continue
            if kind == SECTION_FOOTER:
                cur.be32("footer")
                stream.footers = True
                continue
            if kind == VMDESCRIPTION:
                break
            if kind not in (SECTION_START, SECTION_PART, SECTION_END, SECTION_FULL):
                raise DumpFormatError(path, at, f"unknown section type {kind:#x}")
            section_id = cur.be32("section id")
            if kind in (SECTION_START, SECTION_FULL):
                idstr = cur.idstr("section name")
                instance, ver = cur.be32(), cur.be32()
                ids[section_id] = (idstr, instance, ver)
            if section_id not in ids:
                raise DumpFormatError(path, at, f"section {section_id} continues a section never started")
            idstr, instance, ver = ids[section_id]
            if idstr == "ram":
                _ram(cur, stream, path)
                continue
            start = cur.pos
            desc = stream.vmdesc_device(idstr, instance)
            if desc is not None and desc.get("fields") is not None:
                _skip_vmsd(cur, desc)
            else:
                _skip_to_footer(cur, section_id)
            stream.sections.append(DeviceSection(idstr, instance, ver, start, cur.pos - start))
    except DumpFormatError as e:
        stream.warnings.append(str(e))
    except (ValueError, KeyError, TypeError) as e:
        stream.warnings.append(f"{path} at offset {cur.pos:#x}: {e}")
    if not stream.complete:
        stream.warnings.append("the stream ends before its EOF section: later pages and devices are missing")
    if progress is not None:
        progress(src.size - base, src.size - base)
    return stream
