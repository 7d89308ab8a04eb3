"""Page-table walks, every step recorded.

A :class:`PageTableFormat` says how to read one kind of table (x86-64 long
mode at 4 or 5 levels, which AMD NPT shares; Intel EPT); a walk reads one
entry per level through a ``read_entry`` callable in the table's own address
space, so the same walker serves a bare-metal kernel (tables in physical
memory), a Xen PV guest (tables in machine memory, entries holding machine
frames) and an HVM guest's EPT inside a hypervisor dump.

A walk never loops: it takes at most ``levels`` steps.  A walk that cannot
finish says why in :attr:`Walk.fault` and keeps the steps it made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import MemoryFault
from .spaces import Address, Space

__all__ = [
    "PageTableFormat", "X86_64_4LEVEL", "X86_64_5LEVEL", "EPT_4LEVEL",
    "WalkStep", "Walk", "PageTableWalker", "PageNotPresent", "TableReader",
]

ADDR_MASK = 0x000F_FFFF_FFFF_F000
LEVEL_NAMES = {5: "PML5", 4: "PML4", 3: "PDPT", 2: "PD", 1: "PT"}
PAGE_SIZES = {1: 1 << 12, 2: 1 << 21, 3: 1 << 30}

_X86_FLAGS = ((0, "P"), (1, "RW"), (2, "US"), (3, "PWT"), (4, "PCD"), (5, "A"),
              (6, "D"), (7, "PS"), (8, "G"), (63, "NX"))
_EPT_FLAGS = ((0, "R"), (1, "W"), (2, "X"), (6, "IPAT"), (7, "PS"), (8, "A"), (9, "D"),
              (10, "XU"), (63, "SVE"))


class TableReader:
    """Reads page-table entries a whole table page at a time, remembering
    the most recent table pages (walks share their upper levels)."""

    def __init__(self, read: Callable[[int, int], bytes], pages: int = 1024) -> None:
        self._read = read
        self._pages: dict[int, bytes] = {}
        self._limit = pages

    def __call__(self, addr: int) -> int:
        base = addr & ~0xFFF
        page = self._pages.get(base)
        if page is None:
            page = self._read(base, 4096)
            if len(self._pages) >= self._limit:
                self._pages.pop(next(iter(self._pages)))
            self._pages[base] = page
        off = addr - base
        return int.from_bytes(page[off:off + 8], "little")


class PageNotPresent(MemoryFault):
    """A page-table entry on the way to the address is not present, or (with
    ``table_unreadable``) a table on the way could not be read at all."""

    reason = "is not mapped"

    def __init__(self, address: int, space: str = "kernel-virtual", detail: str = "",
                 table_unreadable: bool = False) -> None:
        super().__init__(address, space, detail)
        self.table_unreadable = table_unreadable


@dataclass(frozen=True)
class PageTableFormat:
    """How one kind of page table is laid out."""

    name: str
    levels: int
    flag_bits: tuple[tuple[int, str], ...]
    present_mask: int       # entry & present_mask != 0 means present
    large_bit: int = 7      # PS: this entry maps a large page (levels 2 and 3)
    canonical: bool = True  # virtual addresses must be sign-extended

    @property
    def va_bits(self) -> int:
        return 12 + 9 * self.levels

    def decode_flags(self, entry: int) -> list[str]:
        return [name for bit, name in self.flag_bits if entry >> bit & 1]

    def is_canonical(self, vaddr: int) -> bool:
        if not self.canonical:
            return 0 <= vaddr < 1 << self.va_bits
        top = vaddr >> (self.va_bits - 1)
        return top == 0 or top == (1 << (64 - self.va_bits + 1)) - 1


X86_64_4LEVEL = PageTableFormat("x86-64 4-level", 4, _X86_FLAGS, present_mask=1)
X86_64_5LEVEL = PageTableFormat("x86-64 5-level (LA57)", 5, _X86_FLAGS, present_mask=1)
#: Intel EPT: guest-physical to host-physical; present when any of R/W/X is set.
EPT_4LEVEL = PageTableFormat("Intel EPT 4-level", 4, _EPT_FLAGS, present_mask=0x7, canonical=False)
#: AMD NPT tables are ordinary long-mode tables indexed by guest-physical address.
NPT_4LEVEL = PageTableFormat("AMD NPT 4-level", 4, _X86_FLAGS, present_mask=1, canonical=False)


@dataclass(frozen=True)
class WalkStep:
    """One level of a walk: which table, which slot, what it held."""

    level: int
    table: Address       # the table's base, in the table space
    index: int
    entry_addr: Address  # where the entry was read
    entry: int
    flags: tuple[str, ...]

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES.get(self.level, f"L{self.level}")


@dataclass
class Walk:
    """A whole walk: the steps, and the result or why there is none."""

    vaddr: Address
    fmt: PageTableFormat
    steps: list[WalkStep] = field(default_factory=list)
    result: Address | None = None
    page_size: int = 0
    fault: str | None = None
    #: The walk stopped because a table could not be read (damaged or partial
    #: dump), not because an entry said "not present".
    table_unreadable: bool = False

    @property
    def page_base(self) -> Address | None:
        if self.result is None:
            return None
        return Address(self.result.space, self.result.addr & ~(self.page_size - 1))


class PageTableWalker:
    """Walk one hierarchy of tables rooted at ``root`` (e.g. CR3 & mask).

    ``read_entry(addr)`` returns the 8-byte entry at ``addr`` in
    ``table_space`` or raises :class:`MemoryFault`.  ``frame_space`` is the
    space the entries' frame numbers (and the result) are in; for most
    tables it is ``table_space``.
    """

    def __init__(self, fmt: PageTableFormat, root: int, read_entry: Callable[[int], int],
                 *, input_space: Space = Space.KVADDR, table_space: Space = Space.KPHYSADDR,
                 frame_space: Space | None = None,
                 frame_to_table: Callable[[int], int] | None = None) -> None:
        self.fmt = fmt
        self.root = root & ADDR_MASK
        self.read_entry = read_entry
        self.input_space = input_space
        self.table_space = table_space
        self.frame_space = frame_space or table_space
        # Where the next table lives, given an entry's frame address (identity
        # unless the frames are in another space than the tables are read in).
        self.frame_to_table = frame_to_table or (lambda a: a)

    def walk(self, vaddr: int) -> Walk:
        fmt = self.fmt
        w = Walk(Address(self.input_space, vaddr), fmt)
        if not fmt.is_canonical(vaddr):
            w.fault = f"{vaddr:#x} is not a canonical {fmt.va_bits}-bit address"
            return w
        table = self.root
        for level in range(fmt.levels, 0, -1):
            shift = 12 + 9 * (level - 1)
            index = (vaddr >> shift) & 0x1FF
            entry_addr = table + 8 * index
            try:
                entry = self.read_entry(entry_addr)
            except MemoryFault as e:
                w.fault = f"{LEVEL_NAMES.get(level)} entry at {Address(self.table_space, entry_addr)} unreadable: {e}"
                w.table_unreadable = True
                return w
            w.steps.append(WalkStep(level, Address(self.table_space, table), index,
                                    Address(self.table_space, entry_addr), entry,
                                    tuple(fmt.decode_flags(entry))))
            if not entry & fmt.present_mask:
                w.fault = f"{LEVEL_NAMES.get(level)} entry {index} is not present"
                return w
            if level in (2, 3) and entry >> fmt.large_bit & 1:
                size = PAGE_SIZES[level]
                base = entry & ADDR_MASK & ~(size - 1)
                w.result = Address(self.frame_space, base | (vaddr & (size - 1)))
                w.page_size = size
                return w
            frame = entry & ADDR_MASK
            if level == 1:
                w.result = Address(self.frame_space, frame | (vaddr & 0xFFF))
                w.page_size = 1 << 12
                return w
            try:
                table = self.frame_to_table(frame)
            except MemoryFault as e:
                w.fault = f"next table at {Address(self.frame_space, frame)} cannot be located: {e}"
                return w
        return w  # not reached: level 1 always returns

    def translate(self, vaddr: int) -> tuple[int, int]:
        """(address, page size) or :class:`PageNotPresent` naming ``vaddr``.

        The hot path: the same walk as :meth:`walk` without recording steps;
        on any failure it re-walks with :meth:`walk` to say exactly why."""
        fmt = self.fmt
        if fmt.is_canonical(vaddr):
            table = self.root
            present = fmt.present_mask
            try:
                for level in range(fmt.levels, 0, -1):
                    entry = self.read_entry(table + 8 * ((vaddr >> (3 + 9 * level)) & 0x1FF))
                    if not entry & present:
                        break
                    if level == 1:
                        return (entry & ADDR_MASK) | (vaddr & 0xFFF), 1 << 12
                    if level <= 3 and entry >> fmt.large_bit & 1:
                        size = PAGE_SIZES[level]
                        return (entry & ADDR_MASK & ~(size - 1)) | (vaddr & (size - 1)), size
                    table = self.frame_to_table(entry & ADDR_MASK)
            except MemoryFault:
                pass
        w = self.walk(vaddr)
        if w.result is None:
            raise PageNotPresent(vaddr, str(self.input_space), w.fault or "", w.table_unreadable)
        return w.result.addr, w.page_size
