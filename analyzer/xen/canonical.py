"""Making a Xen PV guest's memory stand on its own: its page tables hold
machine frames (MFNs), which mean nothing outside the host.  For an extracted
vmcore, every kernel page-table page (found by walking the tables from the
kernel's root) gets its entries rewritten to the guest's own frame numbers
(PFNs) through the p2m -- what Xen's save/restore calls canonicalisation --
so crash and drgn can walk them like any kernel's.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import MemoryFault
from ..model import Domain
from ..paging import ADDR_MASK

__all__ = ["kernel_table_pages", "canonicalizer"]

MAX_TABLES = 1 << 20


def kernel_table_pages(domain: Domain) -> dict[int, int]:
    """pfn -> level of every page-table page reachable from the kernel's root
    (machine addresses turned into pfns); bounded and cycle-guarded."""
    walker = domain.page_tables()
    if walker is None or domain.read_machine is None or domain.mfn_to_pfn is None:
        return {}
    levels = walker.fmt.levels
    found: dict[int, int] = {}
    queue = [(walker.root >> 12, levels)]
    seen: set[int] = set()
    while queue and len(found) < MAX_TABLES:
        mfn, level = queue.pop()
        if mfn in seen:
            continue
        seen.add(mfn)
        pfn = domain.mfn_to_pfn(mfn)
        if pfn is None:
            continue
        found[pfn] = level
        if level == 1:
            continue
        try:
            table = domain.read_machine(mfn << 12, 4096)
        except MemoryFault:
            continue
        for i in range(512):
            e = int.from_bytes(table[8 * i:8 * i + 8], "little")
            if e & 1 and not (level in (2, 3) and e & 0x80):
                queue.append(((e & ADDR_MASK) >> 12, level - 1))
    return found


def canonicalizer(domain: Domain) -> Callable[[int, bytes], bytes]:
    """A function (pfn, page bytes) -> page bytes with MFNs turned into PFNs
    in every kernel page-table page; other pages pass unchanged."""
    tables = kernel_table_pages(domain)
    to_pfn = domain.mfn_to_pfn
    assert to_pfn is not None

    def rewrite(pfn: int, page: bytes) -> bytes:
        if pfn not in tables:
            return page
        out = bytearray(page)
        for i in range(512):
            e = int.from_bytes(page[8 * i:8 * i + 8], "little")
            if not e & 1:
                continue
            gpfn = to_pfn((e & ADDR_MASK) >> 12)
            if gpfn is not None:
                e = (e & ~ADDR_MASK) | (gpfn << 12)
                out[8 * i:8 * i + 8] = e.to_bytes(8, "little")
        return bytes(out)

    return rewrite
