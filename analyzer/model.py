"""The model a user thinks in: a machine with domains, each with vCPUs.

A plain Linux dump is a machine with one domain (id 0, type "guest"): its
CPUs are the domain's vCPUs.  Xen and KVM dumps build more domains, each
with its own guest-physical memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from .dump import Dump, PageState, PhysRange
from .linux.paging import KernelPaging, find_kernel_paging
from .notes import CpuState
from .paging import X86_64_4LEVEL, PageTableWalker, TableReader
from .spaces import Space
from .translate import VirtualMemory
from .vmcoreinfo import VmcoreInfo

if TYPE_CHECKING:
    import drgn

    from .xen.domain_memory import DomainMemory

    from .kvm.guest_memory import KvmGuestMemory
    from .kvm.host import KvmVm
    from .xen.hypervisor import XenHypervisor
    from .xen.xendump import XenDump

__all__ = ["VCpu", "Domain", "Machine", "machine_from_dump"]


@dataclass
class VCpu:
    id: int
    registers: dict[str, int] = field(default_factory=dict)
    running: bool = True
    pcpu: int | None = None
    pid: int | None = None       # the task a kdump says was running on it
    sources: list[str] = field(default_factory=list)
    #: KVM: the host thread that runs this vCPU, and KVM's vcpu.mode
    host_pid: int | None = None
    mode: str | None = None


class Domain:
    """One guest (or the only OS of a bare-metal dump) and its memory."""

    def __init__(self, id: int, *, name: str | None, type: str, vcpus: list[VCpu],
                 read_phys: Callable[[int, int], bytes], vmcoreinfo: VmcoreInfo | None,
                 ranges: Callable[[], list[PhysRange]],
                 cpu_states: list[CpuState] | None = None,
                 read_machine: Callable[[int, int], bytes] | None = None,
                 pfn_to_mfn: Callable[[int], int | None] | None = None,
                 mfn_to_pfn: Callable[[int], int | None] | None = None,
                 page_state: Callable[[int], PageState] | None = None,
                 whole_dump: bool = False) -> None:
        self.id = id
        #: The dump's whole physical memory is this domain's (a plain kernel
        #: dump, or a KVM host): tools that read the file itself may serve it.
        self.whole_dump = whole_dump
        #: More that the hypervisor knows about it (Xen: handle, state...).
        self.details: dict[str, object] = {}
        #: What the dump holds for each guest frame, when the domain knows
        #: better than "present if mapped" (KVM guests: untouched, swapped).
        self.page_state = page_state
        self._ranges = ranges
        #: For a Xen PV guest: its page tables hold machine frames, read here.
        self.read_machine = read_machine
        self.pfn_to_mfn = pfn_to_mfn
        self.mfn_to_pfn = mfn_to_pfn
        self._name = name
        #: Where a name comes from when it takes work to find (Xen: xenstore).
        self.name_source: Callable[[int], str | None] | None = None
        self.type = type
        self.vcpus = vcpus
        self.read_phys = read_phys
        self.vmcoreinfo = vmcoreinfo
        self._cpu_states = cpu_states or []

    @property
    def name(self) -> str | None:
        if self._name is None and self.name_source is not None:
            source, self.name_source = self.name_source, None
            self._name = source(self.id)
        return self._name

    @name.setter
    def name(self, value: str | None) -> None:
        self._name = value

    def memory_ranges(self) -> list[PhysRange]:
        """The guest-physical ranges this domain's memory covers."""
        return self._ranges()

    @property
    def is_linux(self) -> bool:
        return self.vmcoreinfo is not None and self.vmcoreinfo.osrelease is not None

    @cached_property
    def kernel_paging(self) -> KernelPaging | None:
        return find_kernel_paging(self.vmcoreinfo, self._cpu_states)

    @property
    def is_pv(self) -> bool:
        return self.read_machine is not None

    def page_tables(self, root: int | None = None) -> PageTableWalker | None:
        """A walker over the kernel's tables, or over the tables at ``root``.

        A Xen PV guest's tables hold machine frames: they are walked in
        machine space, and a root found in VMCOREINFO (a pseudo-physical
        address) is turned into its machine address through the p2m.
        """
        paging = self.kernel_paging
        if root is None and paging is None:
            return None
        fmt = paging.fmt if paging else X86_64_4LEVEL
        start = root if root is not None else paging.root  # type: ignore[union-attr]
        if self.read_machine is not None:
            if root is None and paging is not None and not paging.how.startswith("CR3") and self.pfn_to_mfn:
                mfn = self.pfn_to_mfn(start >> 12)
                start = (mfn << 12) if mfn is not None else start
            return PageTableWalker(fmt, start, TableReader(self.read_machine),
                                   input_space=Space.KVADDR, table_space=Space.MADDR)
        return PageTableWalker(fmt, start, TableReader(self.read_phys),
                               input_space=Space.KVADDR, table_space=Space.KPHYSADDR)

    @cached_property
    def kernel_memory(self) -> VirtualMemory | None:
        walker = self.page_tables()
        if walker is None:
            return None
        if self.read_machine is not None:
            return VirtualMemory(walker, self.read_machine)
        paging = self.kernel_paging
        fallbacks = [paging.text_map] if paging and paging.text_map else []
        return VirtualMemory(walker, self.read_phys, fallbacks=fallbacks)


class Machine:
    def __init__(self, dump: Dump, domains: list[Domain]) -> None:
        self.dump = dump
        self._domains = domains
        self._hypervisor: dict[str, object] | None = None
        self.xen: "XenHypervisor | None" = None
        #: Xen's console ring, when xen-syms says where it is.
        self.xen_console: list[str] = []
        #: drgn over Xen's address space with xen-syms (types, symbols, stacks).
        self.xen_prog: "drgn.Program | None" = None
        self._kvm_vms: "list[KvmVm]" = []
        self._kvm_memory: "dict[int, KvmGuestMemory]" = {}
        self._notes: list[str] = []
        self._expand: Callable[[], None] | None = None

    def expand_later(self, expand: Callable[[], None]) -> None:
        """More domains may exist, found by ``expand`` (e.g. KVM VMs, which
        need the host kernel's types): run on first use of ``domains`` or
        ``hypervisor``, never for the first domain alone."""
        self._expand = expand

    def _expanded(self) -> None:
        expand, self._expand = self._expand, None
        if expand is not None:
            expand()

    @property
    def domains(self) -> list[Domain]:
        self._expanded()
        return self._domains

    @property
    def hypervisor(self) -> dict[str, object] | None:
        self._expanded()
        return self._hypervisor

    @hypervisor.setter
    def hypervisor(self, value: dict[str, object] | None) -> None:
        self._hypervisor = value

    @property
    def kvm_vms(self) -> "list[KvmVm]":
        """KVM VMs found in a Linux host's dump (domains 1..N)."""
        self._expanded()
        return self._kvm_vms

    @kvm_vms.setter
    def kvm_vms(self, value: "list[KvmVm]") -> None:
        self._kvm_vms = value

    @property
    def kvm_memory(self) -> "dict[int, KvmGuestMemory]":
        """Each KVM VM's memory view, by domain id."""
        self._expanded()
        return self._kvm_memory

    @property
    def notes(self) -> list[str]:
        """What could not be found while building the machine."""
        self._expanded()
        return self._notes

    def domain(self, id: int | None = None) -> Domain:
        if not self._domains:
            raise KeyError("no domain is known in this dump" + (f" ({self._notes[0]})" if self._notes else ""))
        first = self._domains[0]
        if id is None or id == first.id:
            return first
        for d in self.domains:
            if d.id == id:
                return d
        why = f"; {'; '.join(self._notes)}" if self._notes else ""
        raise KeyError(f"no domain {id} in this dump (domains: {', '.join(str(d.id) for d in self.domains)}){why}")


def machine_from_dump(dump: Dump, xen_syms: str | None = None) -> Machine:
    from .xen.xendump import XenDump

    vcpus = [VCpu(id=c.cpu, registers=dict(c.registers), running="offline" not in c.sources, pid=c.pid,
                  sources=list(c.sources)) for c in dump.cpus]
    if isinstance(dump, XenDump):
        return Machine(dump, [_xendump_domain(dump, vcpus)])
    from .xen.hypervisor import find_xen

    xen = find_xen(dump)
    if xen is None and xen_syms is not None:
        from .xen.hypervisor import find_xen_with_syms

        xen = find_xen_with_syms(dump, xen_syms)
    if xen is None and _may_be_a_xen_host(dump):
        from .xen.hypervisor import find_xen_in_memory

        xen = find_xen_in_memory(dump)
    if xen is not None:
        return _xen_machine(dump, xen, xen_syms)
    guest = Domain(0, name=None, type="guest", vcpus=vcpus, read_phys=dump.read_phys,
                   vmcoreinfo=dump.vmcoreinfo, ranges=dump.ranges, cpu_states=dump.cpus,
                   page_state=dump.page_state, whole_dump=True)
    return Machine(dump, [guest])


def _may_be_a_xen_host(dump: Dump) -> bool:
    """A dump with CPU states but no kernel of its own (a kernel's kdump has
    VMCOREINFO): a QEMU dump of a whole Xen host looks like this."""
    vmci = dump.vmcoreinfo
    return bool(dump.cpus) and (vmci is None or vmci.osrelease is None or "xen" in (vmci.get("OSRELEASE") or ""))


def _xen_machine(dump: Dump, xen: "XenHypervisor", xen_syms: str | None = None) -> Machine:
    """A Xen host: the hypervisor, and each domain as a guest of its own whose
    memory is read through the p2m built from the frame table and the M2P.
    (vCPU registers of guests need xen-syms; the pCPUs' are in the notes.)"""
    from .linux.find import GUEST_SCAN, scan_for_vmcoreinfo
    from .xen.domain_memory import DomainMemory
    from .xen.hypervisor import DOMID_FIRST_SPECIAL

    prog = None
    if xen_syms is not None:
        from .xen.hypervisor import xen_program

        prog = xen_program(xen, xen_syms)
    domains: list[Domain] = []
    notes: list[str] = []
    for info in xen.domains:
        if info.id >= DOMID_FIRST_SPECIAL:
            continue
        hvm = None
        type_known = prog is not None
        if prog is not None:
            from .xen.hvm import HvmUnknown, hvm_info

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
            from .xen.hypervisor import xen_vcpus

            vcpus = [VCpu(id=int(v["id"]), registers=dict(v["registers"]),  # type: ignore[call-overload]
                          running=bool(v["running"]), pcpu=int(v["pcpu"]),  # type: ignore[call-overload]
                          sources=["Xen struct vcpu (xen-syms)"])
                     for v in xen_vcpus(prog, info.address, hvm=hvm_type is not None)]
        name = "Domain-0" if info.id == 0 else None
        details: dict[str, object] = {}
        if prog is not None:
            from .xen.hypervisor import xen_domain_details

            details = xen_domain_details(prog, info.address)
        if hvm is not None:
            # an HVM container: its frames through its own p2m table
            from .xen.hvm import P2mTableMemory

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
    from .xen.hypervisor import console_ring, hypervisor_panic

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
            from .xen.xenstore import xenstore_names

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
    from .linux.paging import find_kernel_paging

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
    from .linux.find import scan_for_vmcoreinfo

    found = scan_for_vmcoreinfo(dump.ranges(), dump.read_phys)
    vmci = found[0] if found else None
    pv = not dump.is_hvm
    return Domain(0, name=None, type="pv" if pv else "hvm", vcpus=vcpus, read_phys=dump.read_phys,
                  vmcoreinfo=vmci, ranges=dump.ranges, cpu_states=dump.cpus, page_state=dump.page_state,
                  read_machine=dump.read_machine if pv else None,
                  pfn_to_mfn=dump.p2m.get if pv else None, mfn_to_pfn=dump.m2p.get if pv else None)
