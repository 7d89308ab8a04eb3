"""One process's address space in a Linux dump: its ``mm->pgd`` walked in
the dump's physical memory.

A user page is in one of four states, and a reader must say which:

* present -- the PTE maps a frame (read it from the dump, if the dump kept it);
* untouched -- no PTE at all: the process never touched the page, so an
  anonymous mapping would read as zeros;
* swapped -- a non-present PTE holding a swap entry: the data was on the
  swap device, not in RAM, and no memory dump has it;
* unreadable -- a page table on the way is not in the dump.

x86-64 facts (arch/x86/include/asm/pgtable_64.h, pgtable-invert.h): a swap
PTE keeps the swap type in its top 5 bits and the inverted offset from bit 9;
a PROT_NONE PTE (``_PAGE_PROTNONE``, bit 8, with P clear) still maps a frame
whose number is stored inverted (the L1TF mitigation).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..errors import MemoryFault
from ..paging import ADDR_MASK, PAGE_SIZES, PageTableFormat, PageTableWalker, TableReader
from ..spaces import Space

__all__ = ["UserPage", "UserPageState", "ProcessMemory", "PageSwappedOut"]

PROTNONE = 1 << 8
LARGE = 1 << 7  # PSE: a 2 MiB or 1 GiB page
SWP_TYPE_SHIFT = 59
SWP_OFFSET_SHIFT = 9


class UserPageState(enum.Enum):
    PRESENT = "present"
    UNTOUCHED = "untouched"
    SWAPPED = "swapped"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class UserPage:
    state: UserPageState
    paddr: int | None = None     # host-physical address of the byte asked for (present pages)
    page_size: int = 4096
    detail: str = ""
    #: For a miss: how many bytes from the address asked for share its fate
    #: (a missing upper-level table leaves a whole 2 MiB/1 GiB region untouched).
    span: int = 4096


class PageSwappedOut(MemoryFault):
    """The page was on the host's swap device when the dump was taken."""

    reason = "is in a page the host had swapped out"


class ProcessMemory:
    """A process's user address space, given the physical address of its
    top-level table (``mm->pgd`` through the kernel's direct map)."""

    def __init__(self, fmt: PageTableFormat, pgd_paddr: int, read_phys: Callable[[int, int], bytes],
                 name: str = "process") -> None:
        self.name = name
        self.read_phys = read_phys
        self._reader = TableReader(read_phys)
        self.truncated = False
        self.walker = PageTableWalker(fmt, pgd_paddr, self._reader, input_space=Space.KVADDR,
                                      table_space=Space.KPHYSADDR)

    def page(self, uaddr: int) -> UserPage:
        """Where ``uaddr`` is, or why it is nowhere."""
        try:
            paddr, size = self.walker.translate(uaddr)
            return UserPage(UserPageState.PRESENT, paddr, size)
        except MemoryFault:
            pass
        w = self.walker.walk(uaddr)
        if w.table_unreadable:
            return UserPage(UserPageState.UNREADABLE, detail=w.fault or "")
        if not w.steps:  # not a canonical address: no process has it
            return UserPage(UserPageState.UNREADABLE, detail=w.fault or "not a canonical address")
        last = w.steps[-1]
        entry, level = last.entry, last.level
        size = PAGE_SIZES.get(level, 1 << (12 + 9 * (level - 1)))
        span = size - (uaddr & (size - 1))
        if entry == 0:
            return UserPage(UserPageState.UNTOUCHED, detail=f"{last.level_name} entry is empty", span=span)
        large = level in (2, 3) and entry & LARGE
        if entry & PROTNONE and (level == 1 or large):
            # PROT_NONE (or a NUMA-balancing hint): still mapped, frame stored inverted
            frame = ~entry & ADDR_MASK & ~(size - 1)
            return UserPage(UserPageState.PRESENT, frame | (uaddr & (size - 1)), size, detail="PROT_NONE")
        swp_type = entry >> SWP_TYPE_SHIFT
        offset = (~entry & ((1 << SWP_TYPE_SHIFT) - 1)) >> SWP_OFFSET_SHIFT
        # a swap-format entry: on the swap device, or (special types) being
        # migrated; a huge page's (level 2) too -- its data is not in RAM here
        return UserPage(UserPageState.SWAPPED, detail=f"{last.level_name} swap entry {entry:#x}: type {swp_type}, "
                                                      f"offset {offset:#x}", span=span if level > 1 else 4096)

    def read(self, uaddr: int, size: int, *, untouched_as_zero: bool = True) -> bytes:
        """``size`` bytes at ``uaddr``.  Untouched pages read as zeros (as the
        process would see them); swapped and unreadable ones raise."""
        out = bytearray()
        while size > 0:
            n = min(size, 4096 - (uaddr & 0xFFF))
            p = self.page(uaddr)
            if p.state is UserPageState.PRESENT and p.paddr is not None:
                out += self.read_phys(p.paddr, n)
            elif p.state is UserPageState.UNTOUCHED and untouched_as_zero:
                out += bytes(n)
            elif p.state is UserPageState.SWAPPED:
                raise PageSwappedOut(uaddr, f"{self.name} user-virtual", p.detail)
            else:
                raise MemoryFault(uaddr, f"{self.name} user-virtual", p.detail or p.state.value)
            uaddr += n
            size -= n
        return bytes(out)

    def runs(self, start: int, end: int, limit: int = 1 << 24) -> Iterator[tuple[int, int, UserPageState]]:
        """(start, end, state) runs over ``[start, end)``, skipping a whole
        region where an upper-level table is missing, so a sparse range costs
        its tables, not its pages.  At most ``limit`` page lookups."""
        addr = start
        run_start, run_state = start, None
        lookups = 0
        self.truncated = False
        while addr < end and lookups < limit:
            lookups += 1
            p = self.page(addr)
            step = p.span if p.state is UserPageState.UNTOUCHED else \
                (p.page_size - (addr & (p.page_size - 1)) if p.state is UserPageState.PRESENT else 4096 - (addr & 0xFFF))
            step = max(step, 1)
            if p.state is not run_state:
                if run_state is not None:
                    yield run_start, addr, run_state
                run_start, run_state = addr, p.state
            addr = min(end, addr + step)
        if run_state is not None:
            yield run_start, addr, run_state
        #: the last runs() stopped at its limit before ``end``: its counts are short
        self.truncated = addr < end
