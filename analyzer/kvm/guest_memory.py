"""A KVM guest's physical memory inside its host's dump.

guest-physical --(the VM's memslots)--> QEMU's user address --(QEMU's page
tables in the host dump)--> host-physical --(the dump)--> bytes.

A guest page QEMU never touched has no PTE: it reads as zeros, as the guest
would see it.  A page the host had swapped out, or whose host frame the
dump left out, cannot be read and says so.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

from ..dump import PageState, PhysRange, merge_adjacent
from ..errors import MemoryFault, OutsideDump
from ..linux.process_memory import PageSwappedOut, ProcessMemory, UserPageState
from .host import Memslot

__all__ = ["KvmGuestMemory"]

#: Guest frames whose host page is remembered (64K pages: 256 MiB of guest).
CACHE_PAGES = 1 << 16
UNTOUCHED_PAGE = -1


class KvmGuestMemory:
    def __init__(self, slots: list[Memslot], process: ProcessMemory,
                 host_page_state: Callable[[int], PageState]) -> None:
        # Address space 0 is the guest's RAM and ROMs; 1 is SMM's view.
        self.slots = sorted((s for s in slots if s.as_id == 0 and s.npages > 0), key=lambda s: s.base_gfn)
        self._bases = [s.base_gfn for s in self.slots]
        self.process = process
        self._host_state = host_page_state
        self._cache: dict[int, int] = {}

    def ranges(self) -> list[PhysRange]:
        return merge_adjacent((s.gpa_start, s.gpa_end) for s in self.slots)

    def slot(self, gfn: int) -> Memslot | None:
        i = bisect.bisect_right(self._bases, gfn) - 1
        if i >= 0 and gfn < self.slots[i].base_gfn + self.slots[i].npages:
            return self.slots[i]
        return None

    def hva(self, gpa: int) -> int:
        """QEMU's user address for ``gpa``."""
        s = self.slot(gpa >> 12)
        if s is None:
            raise OutsideDump(gpa, "guest-physical", "in no memslot of this VM")
        return s.userspace_addr + (gpa - s.gpa_start)

    def _host_page(self, gfn: int) -> int:
        """The host-physical address of guest frame ``gfn``'s page, or
        UNTOUCHED_PAGE; cached, as drgn reads the same pages many times."""
        hpa = self._cache.get(gfn)
        if hpa is not None:
            return hpa
        hva = self.hva(gfn << 12)
        p = self.process.page(hva)
        if p.state is UserPageState.PRESENT and p.paddr is not None:
            hpa = p.paddr & ~0xFFF
        elif p.state is UserPageState.UNTOUCHED:
            hpa = UNTOUCHED_PAGE
        elif p.state is UserPageState.SWAPPED:
            raise PageSwappedOut(gfn << 12, "guest-physical", f"QEMU address {hva:#x}: {p.detail}")
        else:
            raise MemoryFault(gfn << 12, "guest-physical", f"QEMU address {hva:#x}: {p.detail or p.state.value}")
        if len(self._cache) >= CACHE_PAGES:
            self._cache.clear()
        self._cache[gfn] = hpa
        return hpa

    def read_phys(self, gpa: int, size: int) -> bytes:
        out = bytearray()
        while size > 0:
            off = gpa & 0xFFF
            n = min(size, 4096 - off)
            hpa = self._host_page(gpa >> 12)
            if hpa == UNTOUCHED_PAGE:
                chunk = bytes(n)  # never touched: the guest reads zeros there
            else:
                chunk = self.process.read_phys(hpa + off, n)
            if n == size and not out:
                return chunk
            out += chunk
            gpa += n
            size -= n
        return bytes(out)

    def page_state(self, gfn: int) -> PageState:
        """PRESENT when the page's data is in the dump; EXCLUDED when the guest
        has the page but the dump does not (untouched, swapped, or filtered
        out on the host); ABSENT outside every memslot."""
        if self.slot(gfn) is None:
            return PageState.ABSENT
        try:
            hpa = self._host_page(gfn)  # the same cached lookup the reads use
        except MemoryFault:
            return PageState.EXCLUDED
        if hpa == UNTOUCHED_PAGE:
            return PageState.EXCLUDED
        return PageState.PRESENT if self._host_state(hpa >> 12) is PageState.PRESENT else PageState.EXCLUDED

    def slot_pages(self, s: Memslot) -> dict[str, int]:
        """How many of a slot's pages are in each state (present, untouched,
        swapped, unreadable), from QEMU's page tables."""
        counts = {st.value: 0 for st in UserPageState}
        start = s.userspace_addr
        for a, b, st in self.process.runs(start, start + (s.npages << 12)):
            counts[st.value] += (b - a) >> 12
        counts["truncated"] = int(self.process.truncated)
        return counts
