"""Format readers on small synthetic dumps: edge cases the real samples do
not show (excluded tails, overlapping segments, every codec, cut files)."""

from __future__ import annotations

import os

import pytest

import analyzer
from analyzer import OutsideDump, PageExcluded, PageState, PageUnreadable
from dumpwriter import KdumpSpec, Load, flatten, note, prstatus, vmcoreinfo_note, write_elf, write_kdump

PAGE = 4096


def page(i: int) -> bytes:
    return bytes([i & 0xFF]) * 8 + os.urandom(PAGE - 8)


@pytest.fixture
def pages() -> dict[int, bytes]:
    return {pfn: page(pfn) for pfn in (0, 1, 2, 5, 6, 100, 101, 4095)}


@pytest.mark.parametrize("codec", ["zlib", "lzo", "snappy", "zstd", "none"])
def test_kdump_every_codec_reads_back(tmp_path, pages, codec):
    # Compressible pages too, so the codec is really used.
    pages = dict(pages)
    pages[7] = b"A" * PAGE
    path = str(tmp_path / "k")
    write_kdump(path, KdumpSpec(pages=pages, ram_pfns={3, 4}, compress=codec))
    with analyzer.open_dump(path) as d:
        assert d.format == "kdump"
        for pfn, data in pages.items():
            assert d.read_page(pfn) == data
        assert d.page_state(3) is PageState.EXCLUDED
        assert d.page_state(8) is PageState.ABSENT
        with pytest.raises(PageExcluded) as e:
            d.read_phys(3 * PAGE + 10, 4)
        assert e.value.address == 3 * PAGE + 10
        with pytest.raises(OutsideDump):
            d.read_phys(9 * PAGE, 1)
        assert d.read_phys(3 * PAGE, 8, fill_excluded=0) == bytes(8)
        # A read across pages stitches them.
        assert d.read_phys(PAGE - 4, 8) == pages[0][-4:] + pages[1][:4]


def test_kdump_ranges_follow_the_ram_bitmap(tmp_path, pages):
    path = str(tmp_path / "k")
    write_kdump(path, KdumpSpec(pages=pages, ram_pfns={3, 4}))
    with analyzer.open_dump(path) as d:
        assert [(r.start // PAGE, r.end // PAGE) for r in d.ranges()] == [(0, 7), (100, 102), (4095, 4096)]


def test_kdump_notes_and_vmcoreinfo(tmp_path, pages):
    notes = note("CORE", 1, prstatus(42, {"rip": 0xFFFFFFFF81000000, "rsp": 0x1234})) + \
        vmcoreinfo_note("OSRELEASE=6.1.0-x\nPAGESIZE=4096\nKERNELOFFSET=1e000000\n")
    path = str(tmp_path / "k")
    write_kdump(path, KdumpSpec(pages=pages, notes=notes, vmcoreinfo="OSRELEASE=6.1.0-x\nKERNELOFFSET=1e000000\n"))
    with analyzer.open_dump(path) as d:
        assert d.vmcoreinfo is not None and d.vmcoreinfo.kernel_offset == 0x1E000000
        assert len(d.cpus) == 1
        assert d.cpus[0].pid == 42
        assert d.cpus[0].registers["rip"] == 0xFFFFFFFF81000000


def test_kdump_corrupt_page_is_a_fault_not_a_crash(tmp_path, pages):
    pages[4095] = b"compressible" * 341 + b"1234"  # last in the file, really compressed
    path = str(tmp_path / "k")
    write_kdump(path, KdumpSpec(pages=pages, compress="zlib"))
    with open(path, "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        f.seek(size - 20)
        f.write(b"\xff" * 12)  # damage the last page's zlib stream
    with analyzer.open_dump(path) as d:
        with pytest.raises(PageUnreadable) as e:
            d.read_page(4095)
        assert path in str(e.value)
        assert d.read_page(0) == pages[0]


def test_elf_segments_excluded_tail_and_overlap(tmp_path):
    a = page(1) + page(2)
    text = a[:PAGE]  # the kernel image seen twice, as /proc/vmcore does
    path = str(tmp_path / "e")
    notes = note("CORE", 1, prstatus(7, {"rip": 1})) + vmcoreinfo_note("OSRELEASE=6.1\nPAGESIZE=4096\n")
    write_elf(path, [Load(0x1000, text, vaddr=0xFFFFFFFF81000000),
                     Load(0x1000, a, memsz=4 * PAGE),
                     Load(0x100000, page(9))], notes)
    with analyzer.open_dump(path) as d:
        assert d.format == "elf"
        assert d.read_phys(0x1000, 2 * PAGE) == a
        assert d.page_state(3) is PageState.EXCLUDED
        with pytest.raises(PageExcluded):
            d.read_phys(0x3000, 1)
        with pytest.raises(OutsideDump):
            d.read_phys(0x5000, 1)
        assert [(r.start, r.end) for r in d.ranges()] == [(0x1000, 0x5000), (0x100000, 0x101000)]
        assert d.cpus[0].pid == 7
        assert d.vmcoreinfo is not None and d.vmcoreinfo.osrelease == "6.1"


def test_elf_cut_short_reads_what_remains(tmp_path):
    path = str(tmp_path / "e")
    write_elf(path, [Load(0, page(1) + page(2))])
    size = os.path.getsize(path)
    os.truncate(path, size - PAGE // 2)
    with analyzer.open_dump(path) as d:
        assert d.warnings and "truncated" in d.warnings[0]
        d.read_page(0)
        with pytest.raises(PageUnreadable):
            d.read_page(1)


@pytest.mark.parametrize("order", [None, "reversed"])
def test_flattened_kdump_equals_plain(tmp_path, pages, order):
    plain = str(tmp_path / "k")
    flat = str(tmp_path / "k.flat")
    write_kdump(plain, KdumpSpec(pages=pages))
    n = -(-os.path.getsize(plain) // 5000)
    flatten(plain, flat, chunk=5000, order=list(reversed(range(n))) if order else None)
    with analyzer.open_dump(plain) as p, analyzer.open_dump(flat) as f:
        assert f.header["container"] == "flattened"
        for pfn in pages:
            assert f.read_page(pfn) == p.read_page(pfn)


def test_flattened_elf_opens(tmp_path):
    plain = str(tmp_path / "e")
    write_elf(plain, [Load(0, page(3))], vmcoreinfo_note("OSRELEASE=x\n"))
    flat = str(tmp_path / "e.flat")
    flatten(plain, flat, chunk=1000)
    with analyzer.open_dump(flat) as d:
        assert d.format == "elf"
        assert d.read_page(0) == open(plain, "rb").read()[-PAGE:]


def test_unknown_and_empty_files_name_the_file(tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    junk = tmp_path / "junk"
    junk.write_bytes(b"hello world" * 10)
    for p in (empty, junk):
        with pytest.raises(analyzer.UnknownFormat) as e:
            analyzer.open_dump(str(p))
        assert str(p) in str(e.value)


def test_a_compressed_file_is_named_as_such(tmp_path):
    import lzma

    p = tmp_path / "vmcore.xz"
    p.write_bytes(lzma.compress(b"x" * 1000))
    with pytest.raises(analyzer.UnknownFormat) as e:
        analyzer.open_dump(str(p))
    assert "xz file" in str(e.value) and "xz -dk" in str(e.value)
