"""The page-table walker on hand-built tables (the real samples check it
against crash's vtop)."""

from __future__ import annotations

import pytest

from analyzer.errors import OutsideDump
from analyzer.paging import (EPT_4LEVEL, X86_64_4LEVEL, X86_64_5LEVEL, PageNotPresent,
                             PageTableWalker)
from analyzer.spaces import Space
from analyzer.translate import VirtualMemory

P, RW, PS, NX = 1, 2, 1 << 7, 1 << 63


class Tables:
    """Sparse physical memory holding page tables."""

    def __init__(self) -> None:
        self.mem: dict[int, int] = {}
        self.next_frame = 0x100000

    def table(self) -> int:
        t = self.next_frame
        self.next_frame += 0x1000
        return t

    def set(self, table: int, index: int, value: int) -> None:
        self.mem[table + 8 * index] = value

    def read_entry(self, addr: int) -> int:
        if addr >= 0x10000000:
            raise OutsideDump(addr)
        return self.mem.get(addr, 0)


def idx(vaddr: int, level: int) -> int:
    return (vaddr >> (12 + 9 * (level - 1))) & 0x1FF


def map_4k(t: Tables, root: int, vaddr: int, paddr: int, levels: int = 4, flags: int = P | RW) -> None:
    table = root
    for level in range(levels, 1, -1):
        i = idx(vaddr, level)
        entry = t.mem.get(table + 8 * i)
        if not entry:
            new = t.table()
            t.set(table, i, new | P | RW)
            table = new
        else:
            table = entry & 0x000FFFFFFFFFF000
    t.set(table, idx(vaddr, 1), paddr | flags)


KTEXT = 0xFFFFFFFF81000000


def test_4k_walk_has_four_steps_and_flags():
    t = Tables()
    root = t.table()
    map_4k(t, root, KTEXT + 0x5000, 0x2345000, flags=P | NX)
    w = PageTableWalker(X86_64_4LEVEL, root, t.read_entry).walk(KTEXT + 0x5123)
    assert w.fault is None
    assert w.result is not None and w.result.addr == 0x2345123 and w.result.space is Space.KPHYSADDR
    assert w.page_size == 4096
    assert [s.level_name for s in w.steps] == ["PML4", "PDPT", "PD", "PT"]
    assert [s.index for s in w.steps] == [511, 510, 8, 5]
    assert w.steps[-1].flags == ("P", "NX")


def test_2m_and_1g_pages():
    t = Tables()
    root = t.table()
    pdpt = t.table()
    pd = t.table()
    va2m = 0xFFFF888000000000 + (3 << 21)
    t.set(root, idx(va2m, 4), pdpt | P)
    t.set(pdpt, idx(va2m, 3), pd | P)
    t.set(pd, idx(va2m, 2), 0x40000000 | P | PS | (1 << 12))  # PAT bit must not leak into the address
    walker = PageTableWalker(X86_64_4LEVEL, root, t.read_entry)
    w = walker.walk(va2m + 0x12345)
    assert (w.result.addr, w.page_size, len(w.steps)) == (0x40012345, 2 << 20, 3)  # type: ignore[union-attr]
    va1g = 0xFFFF888000000000 + (5 << 30)
    t.set(pdpt, idx(va1g, 3), 0x80000000 | P | PS)
    w = walker.walk(va1g + 0x123456)
    assert (w.result.addr, w.page_size, len(w.steps)) == (0x80123456, 1 << 30, 2)  # type: ignore[union-attr]


def test_not_present_and_unreadable_and_noncanonical():
    t = Tables()
    root = t.table()
    walker = PageTableWalker(X86_64_4LEVEL, root, t.read_entry)
    w = walker.walk(KTEXT)
    assert w.result is None and "PML4" in (w.fault or "") and len(w.steps) == 1
    with pytest.raises(PageNotPresent) as e:
        walker.translate(KTEXT + 8)
    assert e.value.address == KTEXT + 8
    t.set(root, idx(KTEXT, 4), 0x20000000 | P)  # next table outside the dump
    w = walker.walk(KTEXT)
    assert w.result is None and "unreadable" in (w.fault or "")
    w = walker.walk(0x0000900000000000)
    assert "canonical" in (w.fault or "") and not w.steps


def test_5_level():
    t = Tables()
    root = t.table()
    va = 0xFF11000000000000 + 0x7000
    map_4k(t, root, va, 0x9000, levels=5)
    w = PageTableWalker(X86_64_5LEVEL, root, t.read_entry).walk(va)
    assert [s.level_name for s in w.steps] == ["PML5", "PML4", "PDPT", "PD", "PT"]
    assert w.result is not None and w.result.addr == 0x9000
    # Canonical for 5 levels, not for 4.
    assert PageTableWalker(X86_64_4LEVEL, root, t.read_entry).walk(va).fault


def test_ept_present_is_any_of_rwx():
    t = Tables()
    root = t.table()
    gpa = 0x1234000
    table = root
    for level in (4, 3, 2):
        new = t.table()
        t.set(table, idx(gpa, level), new | 0x7)
        table = new
    t.set(table, idx(gpa, 1), 0x7777000 | 0x5)  # R and X, not W
    walker = PageTableWalker(EPT_4LEVEL, root, t.read_entry, input_space=Space.KPHYSADDR,
                             table_space=Space.MADDR)
    w = walker.walk(gpa + 0x10)
    assert w.result is not None and w.result.addr == 0x7777010 and w.result.space is Space.MADDR
    assert w.steps[-1].flags == ("R", "X")


def test_virtual_memory_reads_across_pages_and_caches():
    t = Tables()
    root = t.table()
    phys = {0x5000: b"a" * 4096, 0x9000: b"b" * 4096}
    map_4k(t, root, KTEXT, 0x5000)
    map_4k(t, root, KTEXT + 0x1000, 0x9000)

    def read_phys(addr: int, size: int) -> bytes:
        base = addr & ~0xFFF
        return phys[base][addr - base:addr - base + size]

    vm = VirtualMemory(PageTableWalker(X86_64_4LEVEL, root, t.read_entry), read_phys)
    assert vm.read(KTEXT + 0xFFE, 4) == b"aabb"
    assert vm.walks == 2
    vm.read(KTEXT + 0x10, 8)
    assert vm.walks == 2  # served by the TLB
    with pytest.raises(PageNotPresent) as e:
        vm.read(KTEXT + 0x1FF0, 0x20)
    assert e.value.address == KTEXT + 0x2000


def test_linear_fallback_only_when_a_table_is_unreadable():
    """A damaged dump (a table outside it) falls back to the kernel-text map;
    an entry that says "not present" never does."""
    from analyzer.translate import LinearMap

    t = Tables()
    root = t.table()
    walker = PageTableWalker(X86_64_4LEVEL, root, t.read_entry)
    text_map = LinearMap("kernel text", KTEXT, KTEXT + (1 << 30), 0x1000000 - KTEXT)
    vm = VirtualMemory(walker, lambda paddr, size: bytes(size), fallbacks=[text_map])

    assert walker.walk(KTEXT).table_unreadable is False
    with pytest.raises(PageNotPresent) as e:
        vm.translate(KTEXT)  # PML4 entry not present: the tables have spoken
    assert not e.value.table_unreadable and vm.fallback_used == 0

    t.set(root, idx(KTEXT, 4), 0x20000000 | P)  # next table outside the dump
    assert walker.walk(KTEXT + 0x5000).table_unreadable is True
    assert vm.translate(KTEXT + 0x5123) == 0x1005123 and vm.fallback_used == 1
