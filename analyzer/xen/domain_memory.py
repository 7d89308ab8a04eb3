"""One Xen guest's pseudo-physical memory inside a whole-machine dump: each
guest frame (pfn) is the machine frame the p2m gives, read from the dump."""

from __future__ import annotations

import bisect
from array import array
from functools import cached_property

from ..dump import Dump, PhysRange, pfn_runs
from ..errors import OutsideDump

__all__ = ["DomainMemory"]


class DomainMemory:
    def __init__(self, dump: Dump, p2m: dict[int, int]) -> None:
        self.dump = dump
        self.p2m = p2m
        self.pfns = array("Q", sorted(p2m))

    def ranges(self) -> list[PhysRange]:
        return list(self._ranges)

    @cached_property
    def _ranges(self) -> list[PhysRange]:
        return pfn_runs(self.pfns, 4096)

    def read_phys(self, paddr: int, size: int) -> bytes:
        out = bytearray()
        while size > 0:
            pfn, off = divmod(paddr, 4096)
            mfn = self.p2m.get(pfn)
            if mfn is None:
                raise OutsideDump(paddr, "guest-physical", "the guest has no machine frame for this page")
            n = min(size, 4096 - off)
            # guest frames that follow each other in machine memory too are
            # read at once (a guest's memory is mostly such runs)
            while n < size and self.p2m.get(pfn + 1 + (off + n - 1) // 4096) == mfn + 1 + (off + n - 1) // 4096:
                n = min(size, n + 4096)
            out += self.dump.read_phys(mfn * 4096 + off, n)
            paddr += n
            size -= n
        return bytes(out)

    def has(self, pfn: int) -> bool:
        i = bisect.bisect_left(self.pfns, pfn)
        return i < len(self.pfns) and self.pfns[i] == pfn
