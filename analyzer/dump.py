"""The one memory interface every dump format opens into.

A :class:`Dump` is the dumped machine's physical (or, for a hypervisor,
machine) memory as ranges, plus what the dump tool saved beside it: notes,
per-CPU registers, VMCOREINFO.  Nothing above this layer knows which file
format the dump came in.

Reads name what they could not serve: :class:`~analyzer.errors.OutsideDump`
for addresses in no range, :class:`~analyzer.errors.PageExcluded` for pages
the dump tool filtered out (never silent zeros, unless asked for), and
:class:`~analyzer.errors.PageUnreadable` for damaged data.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from .errors import MemoryFault, PageExcluded
from .notes import CpuState, Note
from .vmcoreinfo import VmcoreInfo

__all__ = ["Dump", "PhysRange", "PageState", "MAX_READ", "pfn_runs", "merge_adjacent"]

#: The largest single read served at once; bigger reads are a caller's bug
#: or a hostile size field.
MAX_READ = 256 << 20


class PageState(enum.Enum):
    """What a dump holds for one page frame."""

    PRESENT = "present"    #: data is in the file
    EXCLUDED = "excluded"  #: RAM, but the dump tool left the page out
    ABSENT = "absent"      #: not in any range the dump describes


@dataclass(frozen=True, order=True)
class PhysRange:
    """A half-open range ``[start, end)`` of physical addresses."""

    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start

    def __contains__(self, addr: object) -> bool:
        return isinstance(addr, int) and self.start <= addr < self.end


def merge_adjacent(spans: "Iterable[tuple[int, int]]") -> list[PhysRange]:
    """Sorted ``(start, end)`` spans as ranges, those that touch joined."""
    out: list[PhysRange] = []
    for start, end in spans:
        if out and out[-1].end == start:
            out[-1] = PhysRange(out[-1].start, end)
        else:
            out.append(PhysRange(start, end))
    return out


def pfn_runs(pfns: "Iterable[int]", page_size: int) -> list[PhysRange]:
    """The ranges covered by sorted page frame numbers."""
    return merge_adjacent((pfn * page_size, (pfn + 1) * page_size) for pfn in pfns)


class Dump(ABC):
    """A dump opened read-only.  Use as a context manager, or call :meth:`close`."""

    #: Short name of the container format ("elf", "kdump", ...).
    format: str = "unknown"

    def __init__(self, path: str) -> None:
        self.path = path
        self.arch = "x86_64"
        self.page_size = 4096
        self.notes: list[Note] = []
        self.cpus: list[CpuState] = []
        self.vmcoreinfo: VmcoreInfo | None = None
        #: Problems found while opening that did not stop it.
        self.warnings: list[str] = []
        #: Format-specific header facts, for ``vmcrash info``.
        self.header: dict[str, Any] = {}

    # -- what each format provides ------------------------------------------

    @property
    @abstractmethod
    def format_description(self) -> str:
        """One line naming the container and its variant."""

    @abstractmethod
    def ranges(self) -> list[PhysRange]:
        """The physical ranges the dump describes (present or excluded), sorted."""

    @abstractmethod
    def page_state(self, pfn: int) -> PageState:
        """Whether page frame ``pfn`` is present, excluded, or absent."""

    @abstractmethod
    def _read_chunk(self, paddr: int, maxlen: int) -> bytes:
        """Return between 1 and ``maxlen`` bytes starting at ``paddr``, or raise
        a :class:`MemoryFault` for ``paddr``.  Chunks may end early (at a page or
        segment boundary); :meth:`read_phys` stitches them."""

    def close(self) -> None:
        """Release the file.  Idempotent."""

    # -- the common read interface ------------------------------------------

    def read_phys(self, paddr: int, size: int, *, fill_excluded: int | None = None) -> bytes:
        """Read ``size`` bytes of physical memory at ``paddr``.

        Raises a :class:`MemoryFault` at the first unreadable address.  With
        ``fill_excluded`` set to a byte value, excluded pages read as that
        byte instead (what crash and drgn do for filtered pages); pages
        outside the dump still fault.
        """
        if size < 0 or size > MAX_READ:
            raise ValueError(f"read of {size} bytes refused (limit {MAX_READ})")
        if paddr < 0:
            raise ValueError(f"negative physical address {paddr:#x}")
        out = bytearray()
        addr = paddr
        end = paddr + size
        while addr < end:
            try:
                chunk = self._read_chunk(addr, end - addr)
            except PageExcluded:
                if fill_excluded is None:
                    raise
                page_end = (addr // self.page_size + 1) * self.page_size
                chunk = bytes([fill_excluded]) * (min(page_end, end) - addr)
            if not chunk:  # a format bug, not a dump problem: never loop forever
                raise MemoryFault(addr, "physical", "reader returned no data")
            out += chunk
            addr += len(chunk)
        return bytes(out)

    def read_page(self, pfn: int) -> bytes:
        """The whole page frame ``pfn``."""
        return self.read_phys(pfn * self.page_size, self.page_size)

    def pfn_count(self) -> int:
        """One past the highest page frame any range covers."""
        rs = self.ranges()
        return -(-rs[-1].end // self.page_size) if rs else 0

    # -- context manager ----------------------------------------------------

    def __enter__(self) -> "Dump":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path!r} {self.format_description}>"
