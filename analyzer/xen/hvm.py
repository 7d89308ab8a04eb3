"""HVM and PVH guests in a Xen hypervisor dump: their guest-physical memory
through the domain's p2m table (with xen-syms for where it is).

Xen 4.17 (xen/include/xen/sched.h, xen/arch/x86/include/asm/p2m.h,
xen/include/public/domctl.h, public/arch-x86/xen.h):

* ``domain.options & XEN_DOMCTL_CDF_hvm`` (bit 0): an HVM-container guest;
  PVH is the one whose ``arch.emulation_flags`` has nothing emulated but
  the local APIC (and vPCI, for a PVH dom0); HVM has the rest (PIT, RTC...);
* ``domain.arch.p2m``: the host p2m.  On AMD (``hvm_funcs.name`` "SVM") the
  table is NPT-format (p2m-pt.c: ordinary long-mode entries, Xen's p2m type
  in the available bits), rooted at ``phys_table.pfn``; on Intel ("VMX") it
  is an EPT (p2m-ept.c) rooted at ``ept.mfn``;
* an HVM vCPU's CR3 is ``vcpu.arch.hvm.guest_cr[3]`` (``arch.cr3`` is Xen's
  monitor table for it).

The table maps guest frames (gfn) to machine frames (mfn); every walk is at
most four levels, and the runs of mapped frames are found by skipping whole
unmapped tables, so a sparse guest costs its tables, not its size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..dump import Dump, PageState, PhysRange
from ..errors import MemoryFault, OutsideDump
from ..paging import EPT_4LEVEL, NPT_4LEVEL, PAGE_SIZES, PageTableFormat, PageTableWalker, TableReader
from ..spaces import Space

__all__ = ["HvmInfo", "HvmUnknown", "hvm_info", "P2mTableMemory", "XEN_DOMCTL_CDF_HVM"]

XEN_DOMCTL_CDF_HVM = 1 << 0
XEN_DOMCTL_CDF_HAP = 1 << 1
X86_EMU_LAPIC, X86_EMU_VPCI = 1 << 0, 1 << 10
#: A guest's frames are below 2^40 (4 PiB); p2m runs are scanned no further.
MAX_GFN = 1 << 40
MAX_RUN_LOOKUPS = 1 << 22


@dataclass(frozen=True)
class HvmInfo:
    type: str              # "hvm" or "pvh"
    fmt: PageTableFormat   # the p2m table's format
    root_mfn: int          # its top-level table
    max_mapped_pfn: int


class HvmUnknown(Exception):
    """Whether a domain is an HVM container could not be read."""


def hvm_info(prog: "object", domain_address: int) -> HvmInfo | None:
    """What a domain's p2m is when the domain is an HVM container; None for a
    PV domain; :class:`HvmUnknown` when xen-syms or the dump cannot say."""
    import drgn

    assert isinstance(prog, drgn.Program)
    try:
        d = drgn.Object(prog, "struct domain *", value=domain_address)
        options = int(d.options)
        if not options & XEN_DOMCTL_CDF_HVM:
            return None
        emu = int(d.arch.emulation_flags)
        kind = "pvh" if emu & ~(X86_EMU_LAPIC | X86_EMU_VPCI) == 0 else "hvm"
        p2m = d.arch.p2m
        vendor = prog["hvm_funcs"].name.string_().decode(errors="replace")
        if vendor == "VMX" and options & XEN_DOMCTL_CDF_HAP:
            fmt, root = EPT_4LEVEL, int(p2m.ept.mfn)
        else:  # AMD's NPT, and shadow paging on either vendor: p2m-pt tables
            fmt, root = NPT_4LEVEL, int(p2m.phys_table.pfn)
        return HvmInfo(kind, fmt, root, int(p2m.max_mapped_pfn))
    except (LookupError, ValueError, AttributeError, drgn.FaultError, MemoryFault) as e:
        raise HvmUnknown(f"domain at {domain_address:#x}: {e}") from None


class P2mTableMemory:
    """An HVM/PVH guest's physical memory: gfn -> mfn through its p2m table."""

    def __init__(self, dump: Dump, info: HvmInfo) -> None:
        self.dump = dump
        self.info = info
        self.walker = PageTableWalker(info.fmt, info.root_mfn << 12, TableReader(dump.read_phys),
                                      input_space=Space.KPHYSADDR, table_space=Space.MADDR)

    def machine_address(self, gpa: int) -> int:
        try:
            return self.walker.translate(gpa)[0]
        except MemoryFault as e:
            raise OutsideDump(gpa, "guest-physical", f"the domain's p2m maps no frame here ({e.detail})") from None

    def read_phys(self, gpa: int, size: int) -> bytes:
        out = bytearray()
        while size > 0:
            n = min(size, 4096 - (gpa & 0xFFF))
            out += self.dump.read_phys(self.machine_address(gpa), n)
            gpa += n
            size -= n
        return bytes(out)

    def pfn_to_mfn(self, pfn: int) -> int | None:
        try:
            return self.walker.translate(pfn << 12)[0] >> 12
        except MemoryFault:
            return None

    def page_state(self, pfn: int) -> PageState:
        mfn = self.pfn_to_mfn(pfn)
        return PageState.ABSENT if mfn is None else self.dump.page_state(mfn)

    def runs(self, end_gfn: int | None = None) -> Iterator[tuple[int, int]]:
        """(first gfn, end gfn) of each run of mapped frames."""
        end = min(end_gfn if end_gfn is not None else self.info.max_mapped_pfn + 1, MAX_GFN) << 12
        addr, start, lookups = 0, None, 0
        while addr < end and lookups < MAX_RUN_LOOKUPS:
            lookups += 1
            try:
                _, size = self.walker.translate(addr)
                mapped = True
            except MemoryFault:
                mapped, size = False, self._hole(addr)
            step = size - (addr & (size - 1))
            if mapped and start is None:
                start = addr
            elif not mapped and start is not None:
                yield start >> 12, addr >> 12
                start = None
            addr += step
        if start is not None:
            yield start >> 12, min(addr, end) >> 12

    def _hole(self, addr: int) -> int:
        w = self.walker.walk(addr)
        level = w.steps[-1].level if w.steps else self.info.fmt.levels
        return PAGE_SIZES.get(level, 1 << (12 + 9 * (level - 1)))

    def ranges(self) -> list[PhysRange]:
        return [PhysRange(a << 12, b << 12) for a, b in self.runs()]

