"""A Xen dump as a machine: the one guest of an ``xl dump-core`` file, or a
hypervisor dump's domains -- each with its vCPUs (with xen-syms) and its
memory: a PV guest's through the frame table and M2P, an HVM or PVH guest's
through its own p2m table (with xen-syms; else through the M2P) -- and
Xen's console ring and panic."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..dump import Dump, PhysRange
from ..model import Domain, Machine, VCpu, vcpus_of
from ..vmcoreinfo import VmcoreInfo

if TYPE_CHECKING:
    from .domain_memory import DomainMemory
    from .hypervisor import XenHypervisor
    from .xendump import XenDump

__all__ = ["xen_machine"]


def xen_machine(dump: Dump, xen_syms: str | None = None) -> Machine | None:
    """The Xen machine in ``dump``, or None when it holds no Xen."""
    from .hypervisor import find_xen
    from .xendump import XenDump

    if isinstance(dump, XenDump):
        return Machine(dump, [_xendump_domain(dump, vcpus_of(dump))])
    xen = find_xen(dump)
    if xen is None and xen_syms is not None:
        from .hypervisor import find_xen_with_syms

        xen = find_xen_with_syms(dump, xen_syms)
    if xen is None and _may_be_a_xen_host(dump):
        from .hypervisor import find_xen_in_memory

        xen = find_xen_in_memory(dump)
    return _xen_machine(dump, xen, xen_syms) if xen is not None else None


def _may_be_a_xen_host(dump: Dump) -> bool:
    """A dump with CPU states but no kernel of its own (a kernel's kdump has
    VMCOREINFO): a QEMU dump of a whole Xen host looks like this."""
    vmci = dump.vmcoreinfo
    return bool(dump.cpus) and (vmci is None or vmci.osrelease is None or "xen" in (vmci.get("OSRELEASE") or ""))


def _xen_machine(dump: Dump, xen: "XenHypervisor", xen_syms: str | None = None) -> Machine:
    """A Xen host: the hypervisor, and each domain as a guest of its own whose
    memory is read through the p2m built from the frame table and the M2P.
    (vCPU registers of guests need xen-syms; the pCPUs' are in the notes.)"""
    from ..linux.find import GUEST_SCAN, scan_for_vmcoreinfo
    from .domain_memory import DomainMemory
    from .hypervisor import DOMID_FIRST_SPECIAL

    prog = None
    if xen_syms is not None:
        from .hypervisor import xen_program

        prog = xen_program(xen, xen_syms)
    domains: list[Domain] = []
    notes: list[str] = []
    for info in xen.domains:
        if info.id >= DOMID_FIRST_SPECIAL:
            continue
        hvm = None
        type_known = prog is not None
        if prog is not None:
            from .hvm import HvmUnknown, hvm_info

            try:
                hvm = hvm_info(prog, info.address)
            except HvmUnknown as e:
                notes.append(f"domain {info.id}: PV or HVM could not be read ({e}); judged from its kernel's tables")
                type_known = False
        hvm_type = hvm.type if hvm is not None else None
        if hvm is not None and not hvm.root_mfn:
            notes.append(f"domain {info.id}: its p2m table is not set up; its frames come from the M2P")
            hvm = None
        vcpus: list[VCpu] = []
        if prog is not None:
            from .hypervisor import xen_vcpus

            vcpus = [VCpu(id=int(v["id"]), registers=dict(v["registers"]),  # type: ignore[call-overload]
                          running=bool(v["running"]), pcpu=int(v["pcpu"]),  # type: ignore[call-overload]
                          sources=["Xen struct vcpu (xen-syms)"])
                     for v in xen_vcpus(prog, info.address, hvm=hvm_type is not None)]
        name = "Domain-0" if info.id == 0 else None
        details: dict[str, object] = {}
        if prog is not None:
            from .hypervisor import xen_domain_details

            details = xen_domain_details(prog, info.address)
        if hvm is not None:
            # an HVM container: its frames through its own p2m table
            from .hvm import P2mTableMemory

            table = P2mTableMemory(dump, hvm)
            # which frames it has: the frame table and M2P say it at once
            # (a walk of the whole p2m would cost a lookup per 4 KiB mapping)
            ranges = DomainMemory(dump, xen.m2p(info.mfns)).ranges() or table.ranges()
            found = scan_for_vmcoreinfo(ranges, table.read_phys, limit_bytes=GUEST_SCAN)
            domains.append(Domain(info.id, name=name, type=hvm.type, vcpus=vcpus, read_phys=table.read_phys,
                                  vmcoreinfo=found[0] if found else None, ranges=_fixed(ranges),
                                  pfn_to_mfn=table.pfn_to_mfn, page_state=table.page_state))
            domains[-1].details = details
            continue
        mem = DomainMemory(dump, xen.m2p(info.mfns))
        found = scan_for_vmcoreinfo(mem.ranges(), mem.read_phys, limit_bytes=GUEST_SCAN)
        if type_known:
            pv = hvm_type is None
        else:  # without xen-syms: what the guest kernel's own tables hold
            pv = found is None or _tables_hold_machine_frames(mem, found[0])
        domains.append(Domain(info.id, name=name, type="pv" if pv else (hvm_type or "hvm"), vcpus=vcpus,
                              read_phys=mem.read_phys, vmcoreinfo=found[0] if found else None,
                              ranges=mem.ranges, read_machine=dump.read_phys if pv else None,
                              pfn_to_mfn=mem.p2m.get,
                              mfn_to_pfn={m: p for p, m in mem.p2m.items()}.get if pv else None))
        domains[-1].details = details
    names = _xenstore_names_of(domains)
    for d in domains:
        d.name_source = names
    machine = Machine(dump, domains)
    machine._notes.extend(notes)
    machine.hypervisor = {"name": "xen", "version": xen.version, "panic": None,
                          "xen_phys_start": xen.xen_phys_start, "pcpus": len(xen.pcpu_cr3)}
    machine.xen = xen
    from .hypervisor import console_ring, hypervisor_panic

    machine.xen_prog = prog
    # with xen-syms, or through the symbol table in Xen's own image
    machine.xen_console = console_ring(xen, prog)
    machine.hypervisor["panic"] = hypervisor_panic(machine.xen_console)
    if not domains:
        machine.notes.append("Xen's domains need the offsets in VMCOREINFO_XEN (a Xen kdump) or xen-syms: "
                             "give --xen-syms FILE")
    return machine


def _xenstore_names_of(domains: list[Domain]) -> Callable[[int], str | None]:
    """Names from xenstored's records in dom0's memory, looked for once, when
    a name is first asked for."""
    found: dict[int, str] | None = None

    def name(domid: int) -> str | None:
        nonlocal found
        if found is None:
            from .xenstore import xenstore_names

            dom0 = next((d for d in domains if d.id == 0), None)
            found = xenstore_names(dom0.memory_ranges(), dom0.read_phys) if dom0 is not None else {}
        return found.get(domid)
    return name


def _fixed(ranges: list[PhysRange]) -> Callable[[], list[PhysRange]]:
    return lambda: list(ranges)


def _tables_hold_machine_frames(mem: "DomainMemory", vmci: VmcoreInfo) -> bool:
    """Without xen-syms, whether a guest is PV: its kernel's top-level table
    (found through its VMCOREINFO) points at machine frames it owns (PV)
    rather than at its own guest frames (an HVM container)."""
    from ..linux.paging import find_kernel_paging

    paging = find_kernel_paging(vmci, [])
    if paging is None:
        return True
    pfn = paging.root >> 12
    mfn = mem.p2m.get(pfn)
    if mfn is None:  # the root's pfn is not this guest's: a PV root is a machine address? say PV
        return True
    table = mem.read_phys(pfn << 12, 4096)
    owned = set(mem.p2m.values())
    votes_pv = votes_hvm = 0
    for i in range(256, 512):  # the kernel half
        e = int.from_bytes(table[8 * i:8 * i + 8], "little")
        if not e & 1:
            continue
        frame = (e & 0x000FFFFFFFFFF000) >> 12
        votes_pv += frame in owned
        votes_hvm += frame in mem.p2m
    return votes_pv >= votes_hvm


def _xendump_domain(dump: "XenDump", vcpus: list[VCpu]) -> Domain:
    """The one guest of an ``xl dump-core`` file.  The dump has no VMCOREINFO:
    the guest kernel's own copy is found in its memory."""
    from ..linux.find import scan_for_vmcoreinfo

    found = scan_for_vmcoreinfo(dump.ranges(), dump.read_phys)
    vmci = found[0] if found else None
    pv = not dump.is_hvm
    return Domain(0, name=None, type="pv" if pv else "hvm", vcpus=vcpus, read_phys=dump.read_phys,
                  vmcoreinfo=vmci, ranges=dump.ranges, cpu_states=dump.cpus, page_state=dump.page_state,
                  read_machine=dump.read_machine if pv else None,
                  pfn_to_mfn=dump.p2m.get if pv else None, mfn_to_pfn=dump.m2p.get if pv else None)
