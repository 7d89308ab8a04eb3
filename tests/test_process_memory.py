"""A process's address space and a KVM guest's memory on hand-built tables:
the page states a real dump rarely shows (swapped, PROT_NONE, damaged
tables).  The real KVM host sample checks the rest (test_kvm_host.py)."""

from __future__ import annotations

import pytest

from analyzer.dump import PageState
from analyzer.errors import MemoryFault, OutsideDump
from analyzer.kvm.guest_memory import KvmGuestMemory
from analyzer.kvm.host import Memslot
from analyzer.linux.process_memory import PageSwappedOut, ProcessMemory, UserPageState
from analyzer.paging import X86_64_4LEVEL
from test_paging import P, RW, Tables, idx, map_4k

DATA = 0x4000000
LIMIT = 0x8000000


class Phys(Tables):
    """Tables plus data pages, read as bytes like a dump."""

    def __init__(self) -> None:
        super().__init__()
        self.pages: dict[int, bytes] = {}

    def read(self, addr: int, size: int) -> bytes:
        if addr >= LIMIT:
            raise OutsideDump(addr)
        base = addr & ~0xFFF
        if base in self.pages:
            page = self.pages[base]
        else:
            page = b"".join(self.mem.get(base + 8 * i, 0).to_bytes(8, "little") for i in range(512))
        off = addr - base
        return page[off:off + size]


def swap_pte(swp_type: int, offset: int) -> int:
    # arch/x86/include/asm/pgtable_64.h: type in the top 5 bits, offset inverted from bit 9
    return (swp_type << 59) | ((~offset << 9) & ((1 << 59) - 1) & ~0x1FF)


@pytest.fixture
def proc() -> tuple[Phys, ProcessMemory]:
    t = Phys()
    root = t.table()
    for i in range(4):
        frame = DATA + i * 0x1000
        t.pages[frame] = bytes([0x41 + i]) * 4096
        map_4k(t, root, 0x7F0000000000 + i * 0x1000, frame)
    # page 4: swapped out; page 5: PROT_NONE (frame stored inverted); page 6: untouched
    map_4k(t, root, 0x7F0000004000, 0, flags=0)
    table = root
    for level in (4, 3, 2):
        table = t.mem[table + 8 * idx(0x7F0000000000, level)] & 0x000FFFFFFFFFF000
    t.set(table, 4, swap_pte(1, 0x1234))
    t.pages[DATA + 0x10000] = b"N" * 4096
    t.set(table, 5, (~(DATA + 0x10000) & 0x000FFFFFFFFFF000) | (1 << 8))
    return t, ProcessMemory(X86_64_4LEVEL, root, t.read, "pid 7")


def test_page_states(proc: tuple[Phys, ProcessMemory]) -> None:
    _, pm = proc
    assert pm.page(0x7F0000001008).state is UserPageState.PRESENT
    assert pm.page(0x7F0000001008).paddr == DATA + 0x1008
    swapped = pm.page(0x7F0000004000)
    assert swapped.state is UserPageState.SWAPPED and "type 1, offset 0x1234" in swapped.detail
    protnone = pm.page(0x7F0000005010)
    assert protnone.state is UserPageState.PRESENT and protnone.paddr == DATA + 0x10010
    assert pm.page(0x7F0000006000).state is UserPageState.UNTOUCHED
    # nothing mapped in this 512 GiB: the miss covers the whole PML4 slot's rest
    far = pm.page(0x7E8000001000)
    assert far.state is UserPageState.UNTOUCHED and far.span == (1 << 39) - 0x1000


def test_read_untouched_is_zero_swapped_raises(proc: tuple[Phys, ProcessMemory]) -> None:
    _, pm = proc
    assert pm.read(0x7F0000000FFE, 4) == b"AABB"
    assert pm.read(0x7F0000006000, 16) == bytes(16)
    with pytest.raises(PageSwappedOut) as e:
        pm.read(0x7F0000003FF0, 0x20)
    assert e.value.address == 0x7F0000004000 and "pid 7 user-virtual" in str(e.value)


def test_runs_skip_empty_tables(proc: tuple[Phys, ProcessMemory]) -> None:
    _, pm = proc
    runs = list(pm.runs(0x7E0000000000, 0x7F0000008000))
    states = [(a, b, s.value) for a, b, s in runs]
    assert states[0] == (0x7E0000000000, 0x7F0000000000, "untouched")
    assert states[1:] == [(0x7F0000000000, 0x7F0000004000, "present"),
                          (0x7F0000004000, 0x7F0000005000, "swapped"),
                          (0x7F0000005000, 0x7F0000006000, "present"),
                          (0x7F0000006000, 0x7F0000008000, "untouched")]


def test_damaged_table_is_unreadable(proc: tuple[Phys, ProcessMemory]) -> None:
    t, pm = proc
    table = pm.walker.root
    t.set(table, idx(0x7D0000000000, 4), (LIMIT + 0x1000) | P | RW)
    assert pm.page(0x7D0000000000).state is UserPageState.UNREADABLE
    with pytest.raises(MemoryFault):
        pm.read(0x7D0000000000, 8)


def test_guest_memory_through_memslots(proc: tuple[Phys, ProcessMemory]) -> None:
    t, pm = proc
    slots = [Memslot(0, 0, 0, 4, 0x7F0000000000, 0), Memslot(1, 0, 0x100, 4, 0x7F0000004000, 0),
             Memslot(2, 1, 0, 4, 0x7F0000000000, 0)]  # SMM address space: not the guest's RAM
    mem = KvmGuestMemory(slots, pm, lambda pfn: PageState.PRESENT if pfn << 12 < LIMIT else PageState.ABSENT)
    assert [(r.start, r.end) for r in mem.ranges()] == [(0, 0x4000), (0x100000, 0x104000)]
    assert mem.read_phys(0x2000, 2) == b"CC"
    assert mem.read_phys(0x102000, 3) == bytes(3)           # untouched: zeros
    assert mem.page_state(2) is PageState.PRESENT
    assert mem.page_state(0x100) is PageState.EXCLUDED       # swapped
    assert mem.page_state(0x102) is PageState.EXCLUDED       # untouched
    assert mem.page_state(0x50) is PageState.ABSENT
    with pytest.raises(PageSwappedOut) as e:
        mem.read_phys(0x100000, 8)
    assert e.value.space == "guest-physical" and "QEMU address 0x7f0000004000" in str(e.value)
    with pytest.raises(OutsideDump):
        mem.read_phys(0x5000, 8)
    assert mem.slot_pages(slots[1]) == {"present": 1, "untouched": 2, "swapped": 1, "unreadable": 0, "truncated": 0}


def test_huge_page_states_and_odd_addresses(proc: tuple[Phys, ProcessMemory]) -> None:
    """A PROT_NONE 2 MiB page is still mapped (frame inverted); a non-present
    huge entry in swap format is not zeros; a non-canonical address is
    unreadable; a walk stopped by its limit says so."""
    t, pm = proc
    pd = pm.walker.root
    for level in (4, 3):
        pd = t.mem[pd + 8 * idx(0x7F0000000000, level)] & 0x000FFFFFFFFFF000
    t.pages[0x1000000 + 0x1000] = b"H" * 4096
    t.set(pd, 8, (~0x1000000 & 0x000FFFFFFFFFF000) | (1 << 8) | (1 << 7))   # 0x7f0001000000: PROT_NONE PMD
    t.set(pd, 9, swap_pte(0, 0x777) | (1 << 7))                              # 0x7f0001200000: swap-format PMD
    huge = pm.page(0x7F0001001010)
    assert huge.state is UserPageState.PRESENT and huge.paddr == 0x1001010 and huge.page_size == 2 << 20
    assert pm.read(0x7F0001001010, 2) == b"HH"
    assert pm.page(0x7F0001200000).state is UserPageState.SWAPPED
    with pytest.raises(PageSwappedOut):
        pm.read(0x7F0001234000, 8)
    assert pm.page(0x8000_0000_0000).state is UserPageState.UNREADABLE
    list(pm.runs(0x7F0000000000, 0x7F0000008000, limit=3))
    assert pm.truncated
    list(pm.runs(0x7F0000000000, 0x7F0000008000))
    assert not pm.truncated


def test_vmcoreinfo_scan_of_unreadable_memory_ends() -> None:
    """A guest whose memory all faults (swapped, outside the dump) costs the
    scan its bound, not a walk over 2^60 bytes."""
    import time

    from analyzer.dump import PhysRange
    from analyzer.linux.find import scan_for_vmcoreinfo

    def read(addr: int, size: int) -> bytes:
        raise OutsideDump(addr)

    t = time.perf_counter()
    assert scan_for_vmcoreinfo([PhysRange(0, 1 << 60)], read, limit_bytes=1 << 30) is None
    assert time.perf_counter() - t < 2
