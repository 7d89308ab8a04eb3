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


    from .kvm.guest_memory import KvmGuestMemory
    from .kvm.host import KvmVm
    from .xen.hypervisor import XenHypervisor

__all__ = ["VCpu", "Domain", "Machine", "machine_from_dump", "vcpus_of"]


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
    """The machine a dump holds: a Xen host or guest (analyzer.xen.machine),
    else one domain whose memory is the whole dump.  A Linux kernel's KVM VMs
    are added later, when first asked for (analyzer.kvm.machine)."""
    from .xen.machine import xen_machine

    xen = xen_machine(dump, xen_syms)
    if xen is not None:
        return xen
    guest = Domain(0, name=None, type="guest", vcpus=vcpus_of(dump), read_phys=dump.read_phys,
                   vmcoreinfo=dump.vmcoreinfo, ranges=dump.ranges, cpu_states=dump.cpus,
                   page_state=dump.page_state, whole_dump=True)
    return Machine(dump, [guest])


def vcpus_of(dump: Dump) -> list[VCpu]:
    """A dump's saved CPU states as vCPUs."""
    return [VCpu(id=c.cpu, registers=dict(c.registers), running="offline" not in c.sources, pid=c.pid,
                 sources=list(c.sources)) for c in dump.cpus]
