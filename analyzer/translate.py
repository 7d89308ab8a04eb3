"""Virtual memory over a dump: a page-table walker plus a TLB.

:class:`VirtualMemory` reads a virtual address space through one
:class:`~analyzer.paging.PageTableWalker` and a physical reader.  Each
translated page is remembered (a TLB keyed by virtual page, bounded), so
repeated reads of a page do not walk again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from .dump import MAX_READ
from .errors import MemoryFault
from .paging import PageNotPresent, PageTableWalker, Walk
from .spaces import Space

__all__ = ["VirtualMemory", "TLB_ENTRIES"]

#: Translations remembered per address space (64 Ki pages = 256 MiB of 4 KiB pages).
TLB_ENTRIES = 1 << 16
_PAGE_SHIFT = 12
_PAGE = 1 << _PAGE_SHIFT


class VirtualMemory:
    """Read virtual memory: translate with ``walker``, read with ``read_phys``."""

    def __init__(self, walker: PageTableWalker, read_phys: Callable[[int, int], bytes],
                 *, space: Space = Space.KVADDR) -> None:
        self.walker = walker
        self.read_phys = read_phys
        self.space = space
        self._tlb: OrderedDict[int, int] = OrderedDict()
        self.walks = 0  # walks done (TLB misses), for benchmarks

    def walk(self, vaddr: int) -> Walk:
        """The full walk of ``vaddr``, every step (what ``vtop`` prints)."""
        return self.walker.walk(vaddr)

    def translate(self, vaddr: int) -> int:
        """The address ``vaddr`` maps to, or :class:`PageNotPresent`."""
        vpage = vaddr >> _PAGE_SHIFT
        base = self._tlb.get(vpage)
        if base is None:
            self.walks += 1
            addr, _size = self.walker.translate(vpage << _PAGE_SHIFT)
            base = addr
            self._tlb[vpage] = base
            if len(self._tlb) > TLB_ENTRIES:
                self._tlb.popitem(last=False)
        return base | (vaddr & (_PAGE - 1))

    def read(self, vaddr: int, size: int) -> bytes:
        """``size`` bytes at ``vaddr``; faults name the first bad virtual address."""
        if size < 0 or size > MAX_READ:
            raise ValueError(f"read of {size} bytes refused (limit {MAX_READ})")
        out = bytearray()
        addr, end = vaddr, vaddr + size
        while addr < end:
            n = min(end, (addr | (_PAGE - 1)) + 1) - addr
            try:
                paddr = self.translate(addr)
            except PageNotPresent:
                raise
            except MemoryFault as e:
                raise PageNotPresent(addr, str(self.space), str(e)) from None
            out += self.read_phys(paddr, n)
            addr += n
        return bytes(out)

    def read_u64(self, vaddr: int) -> int:
        return int.from_bytes(self.read(vaddr, 8), "little")

    def flush(self) -> None:
        self._tlb.clear()
