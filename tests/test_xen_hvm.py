"""An HVM/PVH guest's memory through its p2m table, on hand-built NPT and EPT
tables (the real PVH sample, when present, checks it against the guest's
own facts in test_xen.py)."""

from __future__ import annotations

import pytest

from analyzer.dump import PageState
from analyzer.errors import OutsideDump
from analyzer.paging import EPT_4LEVEL, NPT_4LEVEL
from analyzer.xen.hvm import HvmInfo, P2mTableMemory
from test_paging import PS, Tables, idx


class FakeDump:
    """Machine memory: page tables plus data pages."""

    def __init__(self, t: Tables) -> None:
        self.t = t
        self.pages: dict[int, bytes] = {}

    def read_phys(self, addr: int, size: int) -> bytes:
        base = addr & ~0xFFF
        page = self.pages.get(base)
        if page is None:
            page = b"".join(self.t.read_entry(base + 8 * i).to_bytes(8, "little") for i in range(512))
        return page[addr - base:addr - base + size]

    def page_state(self, pfn: int) -> PageState:
        return PageState.PRESENT


def build(present: int) -> tuple[Tables, int]:
    """gfn 0..3 -> mfn 0x5000..; gfn 0x200..0x3ff as one 2 MiB page at 0x800000."""
    t = Tables()
    root = t.table()
    for gfn, mfn in [(0, 0x5000), (1, 0x5001), (2, 0x5002), (3, 0x5003)]:
        table = root
        for level in (4, 3, 2):
            i = idx(gfn << 12, level)
            e = t.mem.get(table + 8 * i)
            if not e:
                new = t.table()
                t.set(table, i, new | present)
                table = new
            else:
                table = e & ~0xFFF & ((1 << 52) - 1)
        t.set(table, idx(gfn << 12, 1), (mfn << 12) | present)
    pdpt = t.mem[root] & ~0xFFF & ((1 << 52) - 1)
    pd = t.mem[pdpt] & ~0xFFF & ((1 << 52) - 1)
    t.set(pd, 1, 0x800000 | present | PS)
    return t, root


@pytest.mark.parametrize("fmt,present", [(NPT_4LEVEL, 0x7), (EPT_4LEVEL, 0x7)])
def test_p2m_table_memory(fmt, present):
    t, root = build(present)
    dump = FakeDump(t)
    dump.pages[0x5002000] = b"G" * 4096
    dump.pages[0x801000] = b"L" * 4096
    mem = P2mTableMemory(dump, HvmInfo("pvh", fmt, root >> 12, 0x3FF))  # type: ignore[arg-type]
    assert mem.read_phys(0x2010, 3) == b"GGG"
    assert mem.read_phys(0x201FFF, 1) == b"L"
    assert mem.machine_address(0x3FF123) == 0x9FF123  # inside the 2 MiB page
    assert mem.pfn_to_mfn(0x203) == 0x803 and mem.pfn_to_mfn(4) is None
    assert list(mem.runs()) == [(0, 4), (0x200, 0x400)]
    assert mem.page_state(5) is PageState.ABSENT and mem.page_state(1) is PageState.PRESENT
    with pytest.raises(OutsideDump):
        mem.read_phys(0x4000, 8)


def test_domain_memory_reads_runs_of_frames_at_once_and_gaps_page_by_page():
    """Guest frames 0-2 are machine frames 10-12 (one read), frame 3 is 20,
    frame 4 is missing: bytes come out in guest order either way."""
    from analyzer.xen.domain_memory import DomainMemory

    class Machine:
        def __init__(self) -> None:
            self.reads: list[tuple[int, int]] = []

        def read_phys(self, addr: int, size: int) -> bytes:
            self.reads.append((addr, size))
            return b"".join(bytes([(a >> 12) & 0xFF]) for a in range(addr, addr + size))

    m = Machine()
    mem = DomainMemory(m, {0: 10, 1: 11, 2: 12, 3: 20})  # type: ignore[arg-type]
    data = mem.read_phys(0x800, 4 * 4096 - 0x800)
    assert data == bytes([10]) * 0x800 + bytes([11]) * 4096 + bytes([12]) * 4096 + bytes([20]) * 4096
    assert m.reads == [(10 * 4096 + 0x800, 3 * 4096 - 0x800), (20 * 4096, 4096)]
    with pytest.raises(OutsideDump):
        mem.read_phys(3 * 4096, 8192)
