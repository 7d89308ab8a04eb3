"""``vtop``: translate a virtual address, showing every level of the walk."""

from __future__ import annotations

from typing import Any

from analyzer.errors import MemoryFault
from analyzer.needs import KERNEL_PAGE_TABLES
from analyzer.plugin import CannotRun, Option, Plugin, parse_int, resolve_address
from analyzer.results import Column, KeyValues, Kind, Result, Table
from analyzer.session import Session


class Vtop(Plugin):
    name = "vtop"
    help = "translate a virtual address to physical, showing each page-table level"
    description = """\
Walk the page tables for ADDR and print every level: the table's address,
the index used, the entry read and its decoded flags, then the result in
each address space.  Uses the kernel's own tables (from VMCOREINFO, or a
CPU's saved CR3), or the tables at --cr3.

examples:
  vmcrash run vtop vmcore 0xffffffff81000000
  vmcrash run vtop vmcore 0x7f0000001000 --cr3 0x3a2c000
  vmcrash run vtop kvm-host.vmcore --domain 1 linux_banner   (also QEMU's address and host-physical)
"""
    options = (
        Option("address", "the virtual address: a number (0x for hex) or a symbol[+offset]",
               positional=True, required=True, metavar="ADDR"),
        Option("cr3", "walk the tables at this physical address instead of the kernel's",
               type=parse_int, metavar="X"),
    )
    needs = (KERNEL_PAGE_TABLES,)

    @classmethod
    def why_not(cls, session: Session, options: dict[str, Any] | None = None) -> str | None:
        if options and options.get("cr3") is not None:
            return None
        return super().why_not(session)

    def run(self, session: Session, **options: Any) -> Result:
        domain = session.domain
        address = resolve_address(session, options["address"])
        cr3: int | None = options.get("cr3")
        walker = domain.page_tables(cr3)
        if walker is None:
            raise CannotRun("no page tables to walk: give --cr3")
        walk = walker.walk(address)
        result = Result(self.name)
        summary = KeyValues()
        summary.add("virtual", address, Kind.ADDRESS)
        if walk.result is not None:
            summary.add(str(walk.result.space), walk.result.addr, Kind.ADDRESS)
            if domain.mfn_to_pfn is not None:  # a PV guest's tables give machine frames
                pfn = domain.mfn_to_pfn(walk.result.addr >> 12)
                summary.add("guest-physical", None if pfn is None else (pfn << 12) | (walk.result.addr & 0xFFF),
                            Kind.ADDRESS)
            # (a VM is a domain of type "kvm": plain dumps never look for VMs here)
            kvm = session.machine.kvm_memory.get(domain.id) if domain.type == "kvm" else None
            if kvm is not None:  # a KVM guest: where QEMU holds the page, and where that is in the host
                try:
                    hva = kvm.hva(walk.result.addr)
                    page = kvm.process.page(hva)
                    summary.add("QEMU address", hva, Kind.ADDRESS)
                    summary.add("host-physical", page.paddr, Kind.ADDRESS)
                    if page.paddr is None:
                        summary.add("host page", page.state.value)
                except MemoryFault as e:
                    result.warn(f"{walk.result.addr:#x}: {e}")
            summary.add("page size", walk.page_size, Kind.SIZE)
        summary.add("paging", walk.fmt.name)
        how = "--cr3" if cr3 is not None else domain.kernel_paging.how  # type: ignore[union-attr]
        summary.add("root table", walker.root, Kind.ADDRESS)
        summary.add("root from", how)
        result.add(summary)
        steps = Table([
            Column("level"), Column("table", Kind.ADDRESS), Column("index", Kind.INT),
            Column("entry_address", Kind.ADDRESS, "ENTRY ADDR"), Column("entry", Kind.REGISTER),
            Column("flags"),
        ], title="walk")
        for s in walk.steps:
            steps.add(s.level_name, s.table.addr, s.index, s.entry_addr.addr, s.entry, " ".join(s.flags))
        result.add(steps)
        if walk.fault:
            result.warn(f"{address:#x} does not translate: {walk.fault}")
        return result
