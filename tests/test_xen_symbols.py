"""Xen's own symbol table (symbols_names, symbols_token_table, ...) found in
a dump without xen-syms, checked against xen-syms' ELF symbol table; and
synthetic, truncated and garbled tables: None, never an exception or a hang."""

from __future__ import annotations

import os
import random
import string
import struct
import time
from bisect import bisect_right
from collections import defaultdict

import pytest
import samples

import analyzer
from analyzer.errors import MemoryFault
from analyzer.xen.hypervisor import XEN_VIRT_START
from analyzer.xen.symbols import XenSymbols, bare_name, find_xen_symbols

HVDUMP = "xen-hypervisor-kdump"
HOST = "xen-host-qemu"
IMAGE = 16 << 20  # scanned from XEN_VIRT_START: more than Xen's image (~6 MiB)
NAMED = ["domain_list", "conring", "conringp", "conringc", "conring_size", "stack_base", "kexec_crash",
         "do_nmi_crash", "handle_keypress", "console_force_unlock", "console_start_sync", "conring_puts",
         "printk", "panic", "symbols_lookup", "idle_pg_table", "max_page", "xen_major_version"]

pytestmark = pytest.mark.skipif(not os.path.exists(os.path.join(samples.SAMPLES, "xen-kernel", "xen-syms.xz")),
                                reason="xen-syms missing")


def _elf_symbols() -> tuple[dict[str, set[int]], dict[str, tuple[int, int, str]]]:
    """xen-syms' symbols: name -> addresses, and name -> (address, size, type)."""
    from elftools.elf.elffile import ELFFile

    by_name: dict[str, set[int]] = defaultdict(set)
    info: dict[str, tuple[int, int, str]] = {}
    with open(samples.path("xen-kernel", "xen-syms.xz"), "rb") as f:
        for s in ELFFile(f).get_section_by_name(".symtab").iter_symbols():
            if s.name and s["st_info"]["type"] not in ("STT_FILE", "STT_SECTION"):
                by_name[s.name].add(s["st_value"])
                info[s.name] = (s["st_value"], s["st_size"], s["st_info"]["type"])
    return by_name, info


@pytest.fixture(scope="module")
def elf() -> tuple[dict[str, set[int]], dict[str, tuple[int, int, str]]]:
    return _elf_symbols()


@pytest.fixture(scope="module")
def kdump_symbols() -> tuple[XenSymbols, float, int]:
    with analyzer.open(samples.path(HVDUMP, "vmcore.elf.xz")) as s:
        xen = s.machine.xen
        assert xen is not None
        t = time.perf_counter()
        syms = find_xen_symbols(xen.read, XEN_VIRT_START, XEN_VIRT_START + IMAGE)
        elapsed = time.perf_counter() - t
        assert syms is not None
        num = int.from_bytes(xen.read(syms.tables["symbols_num_syms"], 4), "little")
    return syms, elapsed, num


@pytest.mark.skipif(HVDUMP not in samples.sample_names(), reason="hypervisor kdump sample missing")
class TestKdump:
    def test_tables_are_where_xen_syms_says(self, kdump_symbols, elf):
        syms, elapsed, num = kdump_symbols
        by_name, _ = elf
        for table, address in syms.tables.items():
            assert by_name[table] == {address}, table
        assert set(syms.tables) >= {"symbols_offsets", "symbols_num_syms", "symbols_names", "symbols_markers",
                                    "symbols_token_table", "symbols_token_index", "symbols_sorted_offsets"}
        assert len(syms) == num == 7150
        print(f"find_xen_symbols: {len(syms)} symbols in {elapsed:.3f} s")
        assert elapsed < 2.0

    def test_named_symbols(self, kdump_symbols, elf):
        syms, _, _ = kdump_symbols
        by_name, info = elf
        for name in NAMED:
            assert len(by_name[name]) == 1, name
            address = next(iter(by_name[name]))
            assert syms.lookup(name) == address, name
            off = 5 if info[name][1] > 5 else 0  # conringp and conringc are 4 bytes each
            got = syms.symbolize(address + off)
            assert got is not None and got[1] == off, name
            assert name in {bare_name(n) for n in syms.aliases(address)}
            assert bare_name(got[0]) in by_name and address in by_name[bare_name(got[0])]
        # Xen's own spelling of locals: path/file.c#name.
        assert syms.lookup("arch/x86/crash.c#do_nmi_crash") == syms.lookup("do_nmi_crash")
        assert syms.symbolize(syms.lookup("do_nmi_crash") + 5) == ("arch/x86/crash.c#do_nmi_crash", 5)
        assert syms.lookup("no_such_symbol_anywhere") is None

    def test_random_functions(self, kdump_symbols, elf):
        syms, _, _ = kdump_symbols
        by_name, info = elf
        funcs = sorted(n for n, (a, size, kind) in info.items()
                       if kind == "STT_FUNC" and size > 5 and len(by_name[n]) == 1)
        for name in random.Random(1717).sample(funcs, 200):
            address = info[name][0]
            assert syms.lookup(name) == address, name
            got = syms.symbolize(address + 5)
            assert got is not None and got[1] == 5, name
            assert address in by_name[bare_name(got[0])], (name, got)

    def test_every_symbol_equals_the_elf(self, kdump_symbols, elf):
        """Every ELF symbol but the two absolute ones (the generator drops
        absolute symbols) is in Xen's table at the same address(es), and
        nothing else is."""
        syms, _, _ = kdump_symbols
        by_name, _ = elf
        table: dict[str, set[int]] = defaultdict(set)
        for address, kind, name in syms:
            assert kind.isalpha() or kind == "?"
            table[bare_name(name)].add(address)
        assert set(by_name) - set(table) == {"FIXADDR_X_SIZE", "start_pa"}
        assert set(table) <= set(by_name)
        assert all(table[n] == by_name[n] for n in table)
        # Bare names held by several locals at different addresses are ambiguous.
        assert len(by_name["add_entry"]) > 1 and syms.lookup("add_entry") is None
        assert syms.lookup_all("add_entry") == sorted(by_name["add_entry"])

    def test_symbolize_edges(self, kdump_symbols):
        syms, _, _ = kdump_symbols
        first = next(iter(syms))[0]
        assert syms.symbolize(first - 1) is None
        last_address, kind, last = list(syms)[-1]
        assert last == "__2M_rwdata_end" and kind == "B" and syms.end == last_address + 1
        assert syms.symbolize(last_address) == (syms.aliases(last_address)[0], 0)
        assert syms.symbolize(last_address + 1) is None
        assert syms.symbolize(first) == (next(iter(syms))[2], 0)


def _cr3_reader(dump):
    """Xen's virtual memory through a CPU's CR3 (every page table has Xen's
    slots): no xen-syms, no Xen notes."""
    from analyzer.paging import X86_64_4LEVEL, PageTableWalker, TableReader
    from analyzer.spaces import Space
    from analyzer.translate import VirtualMemory

    for cpu in dump.cpus:
        cr3 = cpu.registers.get("cr3")
        if not cr3:
            continue
        walker = PageTableWalker(X86_64_4LEVEL, cr3 & ~0xFFF, TableReader(dump.read_phys),
                                 table_space=Space.MADDR)
        if walker.walk(XEN_VIRT_START + (2 << 20)).result is not None:
            return VirtualMemory(walker, dump.read_phys).read
    return None


@pytest.mark.skipif(HOST not in samples.sample_names(), reason="host QEMU sample missing")
def test_whole_machine_qemu_dump_without_xen_syms(elf):
    """The QEMU dump of the whole host has no Xen notes (and the machine
    finds no Xen without xen-syms); a CPU's CR3 is enough to read Xen's
    image, and the symbol table is found in it."""
    by_name, _ = elf
    with analyzer.open(samples.path(HOST, "host.elf.xz")) as s:
        read = _cr3_reader(s.dump)
        assert read is not None
        t = time.perf_counter()
        syms = find_xen_symbols(read, XEN_VIRT_START, XEN_VIRT_START + IMAGE)
        elapsed = time.perf_counter() - t
    assert syms is not None and len(syms) == 7150
    print(f"find_xen_symbols (QEMU host dump): {len(syms)} symbols in {elapsed:.3f} s")
    for table, address in syms.tables.items():
        assert by_name[table] == {address}, table
    for name in NAMED:
        assert syms.lookup(name) == next(iter(by_name[name])), name
    assert elapsed < 2.0


# --- synthetic tables ---------------------------------------------------------

BASE = 0xFFFF82D040000000


def _align(buf: bytearray, n: int) -> None:
    buf.extend(b"\0" * (-len(buf) % n))


def _build(symbols: list[tuple[int, str, str]], sort_by_name: bool = True,
           wide: bool = False) -> tuple[bytes, dict[str, int]]:
    """A table laid out as xen/tools/symbols.c writes it: with SYMBOLS_ORIGIN
    (x86) u32 offsets and .align 4, else (``wide``) u64 symbols_addresses
    and .align 8.  Single characters are their own tokens, the other slots
    hold two-character tokens the names never use."""
    symbols = sorted(symbols)
    texts = [t + n for _, t, n in symbols]
    used = sorted({ord(c) for text in texts for c in text})
    fillers = iter(a + b for a in string.ascii_lowercase for b in string.ascii_lowercase)
    tokens = [chr(c) if c in used else next(fillers) for c in range(256)]
    algn = 8 if wide else 4
    buf = bytearray(b"\x90" * 60)  # code before .rodata
    at = {}

    def label(name: str) -> None:
        _align(buf, algn)
        at[name] = len(buf)

    label("symbols_addresses" if wide else "symbols_offsets")
    for a, _, _ in symbols:
        buf += struct.pack("<Q", a) if wide else struct.pack("<I", a - BASE)
    label("symbols_num_syms")
    buf += struct.pack("<I", len(symbols))
    label("symbols_names")
    markers, stream = [], []
    off = 0
    for i, text in enumerate(texts):
        if i % 256 == 0:
            markers.append(off)
        stream.append(off)
        buf += bytes([len(text)]) + text.encode()
        off += len(text) + 1
    label("symbols_markers")
    for m in markers:
        buf += struct.pack("<I", m)
    label("symbols_token_table")
    index = []
    for tok in tokens:
        index.append(len(buf) - at["symbols_token_table"])
        buf += tok.encode() + b"\0"
    label("symbols_token_index")
    buf += struct.pack("<256H", *index)
    if sort_by_name:
        label("symbols_sorted_offsets")
        for i in sorted(range(len(symbols)), key=lambda i: (symbols[i][2], symbols[i][1])):
            buf += struct.pack("<II", stream[i], i)
    buf += b"\xcc" * 256
    return bytes(buf), at


def _symbols(n: int, seed: int = 5) -> list[tuple[int, str, str]]:
    rng = random.Random(seed)
    out = []
    address = BASE + 0x200000
    for i in range(n):
        address += rng.randrange(0, 200)
        local = rng.random() < 0.3
        name = f"fn_{i}_{rng.choice(['init', 'exit', 'lock', 'irq', 'vcpu'])}"
        out.append((address, "t" if local else "T", f"common/f{i % 7}.c#{name}" if local else name))
    return out


def _reader(buf: bytes, base: int = BASE, calls: list[tuple[int, int]] | None = None):
    def read(vaddr: int, size: int) -> bytes:
        if calls is not None:
            calls.append((vaddr, size))
        off = vaddr - base
        if off < 0 or off + size > len(buf):
            raise MemoryFault(max(vaddr, base + len(buf)) if off >= 0 else vaddr, "xen-virtual")
        return buf[off:off + size]
    return read


@pytest.mark.parametrize("n,sort_by_name,wide", [(1, False, False), (300, True, False), (1000, True, False),
                                                  (3000, False, False), (1, True, True), (700, True, True),
                                                  (2000, False, True)])
def test_synthetic_table_is_found(n, sort_by_name, wide):
    symbols = _symbols(n)
    buf, at = _build(symbols, sort_by_name, wide)
    syms = find_xen_symbols(_reader(buf), BASE, BASE + len(buf))
    assert syms is not None and len(syms) == n
    assert syms.tables == {k: BASE + v for k, v in at.items()}
    addresses = sorted(a for a, _, _ in symbols)
    for address, _, name in symbols:
        assert syms.lookup(name) == address
        got = syms.symbolize(address + 1)
        assert got is not None
        assert address + 1 - got[1] == addresses[bisect_right(addresses, address + 1) - 1]


def test_pages_that_cannot_be_read_are_skipped():
    """Unreadable pages elsewhere in the range do not hide the table."""
    buf, _ = _build(_symbols(600))
    pad = 3 << 20
    image = bytes(pad) + buf
    holes = {p for p in range(0, pad, 4096) if p % (5 * 4096) == 0}

    def read(vaddr: int, size: int) -> bytes:
        off = vaddr - BASE
        for p in range(off // 4096, (off + size - 1) // 4096 + 1):
            if p * 4096 in holes or p * 4096 >= len(image):
                raise MemoryFault(BASE + max(off, p * 4096), "xen-virtual")
        return image[off:off + size]

    syms = find_xen_symbols(read, BASE, BASE + len(image) + (1 << 20))
    assert syms is not None and len(syms) == 600


def _expect_none_quickly(buf: bytes, limit: float = 5.0) -> None:
    t = time.perf_counter()
    assert find_xen_symbols(_reader(buf), BASE, BASE + len(buf)) is None
    assert time.perf_counter() - t < limit


def test_truncated_tables_give_none():
    buf, at = _build(_symbols(700))
    for name in ("symbols_token_index", "symbols_token_table", "symbols_markers", "symbols_names"):
        for cut in (at[name] + 1, at[name] + 37, at[name] + 300):
            _expect_none_quickly(buf[:cut])


def test_garbled_token_tables_give_none():
    buf, at = _build(_symbols(700))
    table, index = at["symbols_token_table"], at["symbols_token_index"]
    rng = random.Random(99)
    for _ in range(40):
        b = bytearray(buf)
        kind = rng.randrange(4)
        if kind == 0:  # a NUL added or taken out: tokens no longer match the index
            p = rng.randrange(table, index - 4)
            b[p] = 0 if b[p] else 0x41
        elif kind == 1:  # the index out of order
            i = rng.randrange(1, 255)
            struct.pack_into("<H", b, index + 2 * i, 0xFFFF)
        elif kind == 2:  # bytes dropped from the table
            p = rng.randrange(table, index - 8)
            del b[p:p + rng.randrange(1, 5)]
        else:  # the index's first entry not 0
            struct.pack_into("<H", b, index, 1)
        _expect_none_quickly(bytes(b))


def test_garbled_markers_names_and_counts_give_none():
    buf, at = _build(_symbols(700))
    cases = []
    b = bytearray(buf)
    struct.pack_into("<I", b, at["symbols_num_syms"], 7000)  # count disagrees with the markers
    cases.append(b)
    b = bytearray(buf)
    struct.pack_into("<I", b, at["symbols_markers"] + 4, 12345)  # a marker off
    cases.append(b)
    b = bytearray(buf)
    b[at["symbols_names"]] = 0  # the first length byte zero
    cases.append(b)
    b = bytearray(buf)
    struct.pack_into("<I", b, at["symbols_offsets"] + 40, 0xFFFFFFF0)  # offsets unsorted
    cases.append(b)
    for c in cases:
        _expect_none_quickly(bytes(c))


def test_random_garbling_never_raises_or_hangs():
    buf, _ = _build(_symbols(700))
    rng = random.Random(4242)
    t = time.perf_counter()
    for _ in range(150):
        b = bytearray(buf)
        for _ in range(rng.randrange(1, 20)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        out = find_xen_symbols(_reader(bytes(b)), BASE, BASE + len(b))
        assert out is None or isinstance(out, XenSymbols)
    assert time.perf_counter() - t < 30


@pytest.mark.parametrize("filler", [b"\0", b"a\0", b"a\0b\0c\0d\0", b"ab\0", b"\xff", b"A\0B\0C\0D\0\x01"])
def test_hostile_fillers_give_none_quickly(filler):
    _expect_none_quickly(filler * ((4 << 20) // len(filler)))


def test_reader_failures_give_none():
    def faulty(vaddr: int, size: int) -> bytes:
        raise MemoryFault(vaddr, "xen-virtual")

    def short(vaddr: int, size: int) -> bytes:
        return b"\0" * (size // 2)

    calls: list[tuple[int, int]] = []
    buf, _ = _build(_symbols(50))
    assert find_xen_symbols(faulty, BASE, BASE + (64 << 20)) is None
    assert find_xen_symbols(short, BASE, BASE + (8 << 20)) is None
    assert find_xen_symbols(_reader(buf), BASE, BASE + 10) is None
    # A huge range is capped: at most MAX_IMAGE bytes are asked for.
    assert find_xen_symbols(_reader(b"\0" * 4096, calls=calls), BASE, BASE + (1 << 50)) is None
    assert calls and max(a + n for a, n in calls) <= BASE + (64 << 20)


def test_work_is_bounded(monkeypatch):
    """Past its work budget the scan gives up: None, even on a good table."""
    import analyzer.xen.symbols as xs

    buf, _ = _build(_symbols(700))
    assert find_xen_symbols(_reader(buf), BASE, BASE + len(buf)) is not None
    monkeypatch.setattr(xs, "MAX_WORK", 100)
    assert find_xen_symbols(_reader(buf), BASE, BASE + len(buf)) is None


def test_many_decoy_token_tables_give_none_quickly():
    """Hundreds of token tables with their indexes but nothing in front."""
    buf, at = _build(_symbols(700))
    decoy = buf[at["symbols_token_table"]:at["symbols_token_index"] + 512]
    junk = bytes(random.Random(3).randrange(256) for _ in range(1000))
    _expect_none_quickly((junk + bytes(-len(junk) % 4) + decoy) * 300, limit=10.0)
