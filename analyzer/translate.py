"""Virtual memory over a dump: a page-table walker plus a TLB.

:class:`VirtualMemory` reads a virtual address space through one
:class:`~analyzer.paging.PageTableWalker` and a physical reader.  Each
translated page is remembered (a TLB keyed by virtual page, bounded), so
repeated reads of a page do not walk again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .dump import MAX_READ
from .errors import MemoryFault
from .paging import PageNotPresent, PageTableWalker, Walk
from .spaces import Space

__all__ = ["VirtualMemory", "LinearMap", "TLB_ENTRIES"]

#: Translations remembered per address space (64 Ki pages = 256 MiB of 4 KiB pages).
TLB_ENTRIES = 1 << 16
_PAGE_SHIFT = 12
_PAGE = 1 << _PAGE_SHIFT


@dataclass(frozen=True)
class LinearMap:
    """``[start, end)`` maps to ``start + delta`` (mod 2**64): the kernel-text
    mapping, or the direct map."""

    name: str
    start: int
    end: int
    delta: int

    def translate(self, vaddr: int) -> int | None:
        if self.start <= vaddr < self.end:
            return (vaddr + self.delta) & ((1 << 64) - 1)
        return None


class VirtualMemory:
    """Read virtual memory: translate with ``walker``, read with ``read_phys``.

    ``fallbacks`` are linear maps used only when the walk itself cannot be
    done (a page table unreadable in a damaged or partial dump) -- never when
    the tables say an address is not mapped.
    """

    def __init__(self, walker: PageTableWalker, read_phys: Callable[[int, int], bytes],
                 *, space: Space = Space.KVADDR, fallbacks: Sequence[LinearMap] = ()) -> None:
        self.walker = walker
        self.read_phys = read_phys
        self.space = space
        self.fallbacks = tuple(fallbacks)
        self.fallback_used = 0
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
            try:
                base, _size = self.walker.translate(vpage << _PAGE_SHIFT)
            except PageNotPresent as e:
                base = self._fallback(vpage << _PAGE_SHIFT, e)
            self._tlb[vpage] = base
            if len(self._tlb) > TLB_ENTRIES:
                self._tlb.popitem(last=False)
        return base | (vaddr & (_PAGE - 1))

    def _fallback(self, vaddr: int, fault: PageNotPresent) -> int:
        if fault.table_unreadable:  # the walk could not be done, not "not mapped"
            for m in self.fallbacks:
                paddr = m.translate(vaddr)
                if paddr is not None:
                    self.fallback_used += 1
                    return paddr
        raise fault

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
