"""Small synthetic dumps for edge cases and fuzzing (never for correctness
against the real world: that is what sample-dumps/ is for).

``write_elf`` writes an ELF core with the given PT_LOADs and notes;
``write_kdump`` a makedumpfile compressed kdump with the given pages;
``flatten`` turns any file into makedumpfile's flattened stream.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

PAGE = 4096


def note(name: str, ntype: int, desc: bytes) -> bytes:
    from analyzer.extract import elf_note

    return elf_note(name.encode(), ntype, desc)


def prstatus(pid: int, regs: dict[str, int]) -> bytes:
    from analyzer.extract import prstatus_desc

    return prstatus_desc(pid, regs)


def vmcoreinfo_note(text: str) -> bytes:
    return note("VMCOREINFO", 0, text.encode())


@dataclass
class Load:
    paddr: int
    data: bytes
    memsz: int | None = None  # > len(data): the rest is excluded
    vaddr: int = 0


def write_elf(path: str, loads: list[Load], notes: bytes = b"") -> None:
    phnum = len(loads) + (1 if notes else 0)
    ehdr_size, phdr_size = 64, 56
    offset = ehdr_size + phnum * phdr_size
    phdrs = b""
    body = b""
    if notes:
        phdrs += struct.pack("<IIQQQQQQ", 4, 0, offset, 0, 0, len(notes), len(notes), 4)
        body += notes
        offset += len(notes)
    for ld in loads:
        memsz = ld.memsz if ld.memsz is not None else len(ld.data)
        phdrs += struct.pack("<IIQQQQQQ", 1, 7, offset, ld.vaddr, ld.paddr, len(ld.data), memsz, PAGE)
        body += ld.data
        offset += len(ld.data)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    ehdr = ident + struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0, ehdr_size, 0, 0,
                               ehdr_size, phdr_size, phnum, 64, 0, 0)
    with open(path, "wb") as f:
        f.write(ehdr + phdrs + body)


@dataclass
class KdumpSpec:
    pages: dict[int, bytes]                 # pfn -> page data (dumped)
    ram_pfns: set[int] = field(default_factory=set)  # extra RAM pages that are excluded
    max_mapnr: int | None = None
    compress: str = "zlib"                  # zlib | lzo | snappy | zstd | none
    vmcoreinfo: str = "OSRELEASE=6.1.0-test\nPAGESIZE=4096\n"
    notes: bytes = b""
    release: str = "6.1.0-test"
    nr_cpus: int = 1
    header_version: int = 6


def _compress(kind: str, page: bytes) -> tuple[bytes, int]:
    if kind == "zlib":
        return zlib.compress(page), 0x1
    if kind == "lzo":
        import lzo
        return lzo.compress(page, 1, False), 0x2
    if kind == "snappy":
        import cramjam
        return bytes(cramjam.snappy.compress_raw(page)), 0x4
    if kind == "zstd":
        import zstandard
        return zstandard.ZstdCompressor().compress(page), 0x20
    return page, 0


def write_kdump(path: str, spec: KdumpSpec) -> None:
    from analyzer.formats.diskdump import DISK_DUMP_HEADER, KDUMP_SUB_HEADER, PAGE_DESC

    bs = PAGE
    all_pfns = set(spec.pages) | spec.ram_pfns
    max_mapnr = spec.max_mapnr or (max(all_pfns) + 1 if all_pfns else 1)
    bitmap_bytes = -(-max_mapnr // 8)
    bitmap_blocks = 2 * -(-bitmap_bytes // bs)
    half = bitmap_blocks * bs // 2
    bm1, bm2 = bytearray(half), bytearray(half)
    for pfn in all_pfns:
        bm1[pfn >> 3] |= 1 << (pfn & 7)
    for pfn in spec.pages:
        bm2[pfn >> 3] |= 1 << (pfn & 7)
    sub_hdr_size = 1
    vmci = spec.vmcoreinfo.encode()
    vmci_off = bs + KDUMP_SUB_HEADER.sizeof()
    note_off = vmci_off + len(vmci)
    assert note_off + len(spec.notes) <= 2 * bs, "notes too large for this writer"
    desc_off = (1 + sub_hdr_size + bitmap_blocks) * bs
    data_off = desc_off + len(spec.pages) * PAGE_DESC.sizeof()
    descs = b""
    data = b""
    for pfn in sorted(spec.pages):
        comp, flag = _compress(spec.compress, spec.pages[pfn])
        if flag and len(comp) >= bs:
            comp, flag = spec.pages[pfn], 0
        descs += PAGE_DESC.build(dict(offset=data_off + len(data), size=len(comp), flags=flag, page_flags=0))
        data += comp
    uts = dict(sysname=b"Linux", nodename=b"synthetic", release=spec.release.encode(),
               version=b"#1", machine=b"x86_64", domainname=b"(none)")
    hdr = DISK_DUMP_HEADER.build(dict(
        signature=b"KDUMP   ", header_version=spec.header_version,
        utsname={k: v.ljust(65, b"\0") for k, v in uts.items()},
        timestamp_sec=1700000000, timestamp_usec=0,
        status={"zlib": 1, "lzo": 2, "snappy": 4, "zstd": 0x20}.get(spec.compress, 0),
        block_size=bs, sub_hdr_size=sub_hdr_size, bitmap_blocks=bitmap_blocks,
        max_mapnr=min(max_mapnr, 0xFFFFFFFF), total_ram_blocks=0, device_blocks=0,
        written_blocks=0, current_cpu=0, nr_cpus=spec.nr_cpus))
    sub = KDUMP_SUB_HEADER.build(dict(
        phys_base=0, dump_level=31, split=0, start_pfn=0, end_pfn=0,
        offset_vmcoreinfo=vmci_off, size_vmcoreinfo=len(vmci),
        offset_note=note_off if spec.notes else 0, size_note=len(spec.notes),
        offset_eraseinfo=0, size_eraseinfo=0, start_pfn_64=0, end_pfn_64=0, max_mapnr_64=max_mapnr))
    block0 = hdr.ljust(bs, b"\0")
    block1 = (sub + vmci + spec.notes).ljust(bs, b"\0")
    with open(path, "wb") as f:
        f.write(block0 + block1 + bytes(bm1) + bytes(bm2) + descs + data)


def flatten(src_path: str, dst_path: str, chunk: int = 65536, order: list[int] | None = None) -> None:
    """Write ``src_path`` as a flattened stream of ``chunk``-byte records
    (in ``order`` of chunk indexes if given, to test out-of-order streams)."""
    with open(src_path, "rb") as f:
        data = f.read()
    header = b"makedumpfile".ljust(16, b"\0") + struct.pack(">qq", 1, 1)
    out = bytearray(header.ljust(4096, b"\0"))
    idx = order if order is not None else list(range(-(-len(data) // chunk)))
    for i in idx:
        piece = data[i * chunk:(i + 1) * chunk]
        out += struct.pack(">qq", i * chunk, len(piece)) + piece
    out += struct.pack(">qq", -1, -1)
    with open(dst_path, "wb") as f:
        f.write(out)


def write_sparse_elf(path: str, ram_bytes: int, pages: dict[int, bytes] | None = None) -> None:
    """An ELF vmcore of a guest with ``ram_bytes`` of RAM in one PT_LOAD, as a
    sparse file: only the given pages are written."""
    ehdr_size, phdr_size = 64, 56
    data_off = 4096
    phdr = struct.pack("<IIQQQQQQ", 1, 7, data_off, 0, 0, ram_bytes, ram_bytes, PAGE)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    ehdr = ident + struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0, ehdr_size, 0, 0, ehdr_size, phdr_size, 1, 64, 0, 0)
    with open(path, "wb") as f:
        f.write(ehdr + phdr)
        for pfn, data in (pages or {}).items():
            f.seek(data_off + pfn * PAGE)
            f.write(data)
        f.truncate(data_off + ram_bytes)


def write_sparse_kdump(path: str, ram_bytes: int, pages: dict[int, bytes]) -> None:
    """A compressed kdump of a guest with ``ram_bytes`` of RAM, all of it in
    the RAM bitmap and only ``pages`` dumped (zlib): the bitmaps are the only
    thing that grows with the guest."""
    from analyzer.formats.diskdump import DISK_DUMP_HEADER, KDUMP_SUB_HEADER, PAGE_DESC

    bs = PAGE
    max_mapnr = ram_bytes // PAGE
    half = -(-(max_mapnr // 8) // bs) * bs
    bitmap_blocks = 2 * half // bs
    bm2 = bytearray(half)
    for pfn in pages:
        bm2[pfn >> 3] |= 1 << (pfn & 7)
    desc_off = (2 + bitmap_blocks) * bs
    data_off = desc_off + len(pages) * PAGE_DESC.sizeof()
    descs, blob = b"", b""
    for pfn in sorted(pages):
        comp = zlib.compress(pages[pfn])
        descs += PAGE_DESC.build(dict(offset=data_off + len(blob), size=len(comp), flags=1, page_flags=0))
        blob += comp
    uts = {k: v.ljust(65, b"\0") for k, v in dict(sysname=b"Linux", nodename=b"big", release=b"6.1.0-big",
                                                   version=b"#1", machine=b"x86_64", domainname=b"").items()}
    hdr = DISK_DUMP_HEADER.build(dict(
        signature=b"KDUMP   ", header_version=6, utsname=uts, timestamp_sec=0, timestamp_usec=0, status=1,
        block_size=bs, sub_hdr_size=1, bitmap_blocks=bitmap_blocks, max_mapnr=min(max_mapnr, 0xFFFFFFFF),
        total_ram_blocks=0, device_blocks=0, written_blocks=0, current_cpu=0, nr_cpus=1))
    vmci = b"OSRELEASE=6.1.0-big\nPAGESIZE=4096\n"
    sub = KDUMP_SUB_HEADER.build(dict(
        phys_base=0, dump_level=31, split=0, start_pfn=0, end_pfn=0,
        offset_vmcoreinfo=bs + KDUMP_SUB_HEADER.sizeof(), size_vmcoreinfo=len(vmci), offset_note=0, size_note=0,
        offset_eraseinfo=0, size_eraseinfo=0, start_pfn_64=0, end_pfn_64=0, max_mapnr_64=max_mapnr))
    ones = b"\xff" * (1 << 20)
    with open(path, "wb") as f:
        f.write(hdr.ljust(bs, b"\0") + (sub + vmci).ljust(bs, b"\0"))
        left = max_mapnr // 8
        while left > 0:  # the RAM bitmap: all ones (a guest's RAM is mostly one range)
            n = min(left, len(ones))
            f.write(ones[:n])
            left -= n
        f.seek(2 * bs + half)
        f.write(bytes(bm2))
        f.seek(desc_off)
        f.write(descs + blob)
