"""The model a user thinks in: a machine with domains, each with vCPUs.

A plain Linux dump is a machine with one domain (id 0, type "guest"): its
CPUs are the domain's vCPUs.  Xen and KVM dumps build more domains, each
with its own guest-physical memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from .dump import Dump, PhysRange
from .linux.paging import KernelPaging, find_kernel_paging
from .notes import CpuState
from .paging import X86_64_4LEVEL, PageTableWalker, TableReader
from .spaces import Space
from .translate import VirtualMemory
from .vmcoreinfo import VmcoreInfo

__all__ = ["VCpu", "Domain", "Machine", "machine_from_dump"]


@dataclass
class VCpu:
    id: int
    registers: dict[str, int] = field(default_factory=dict)
    running: bool = True
    pcpu: int | None = None
    pid: int | None = None       # the task a kdump says was running on it
    sources: list[str] = field(default_factory=list)


class Domain:
    """One guest (or the only OS of a bare-metal dump) and its memory."""

    def __init__(self, id: int, *, name: str | None, type: str, vcpus: list[VCpu],
                 read_phys: Callable[[int, int], bytes], vmcoreinfo: VmcoreInfo | None,
                 ranges: Callable[[], list[PhysRange]],
                 cpu_states: list[CpuState] | None = None) -> None:
        self.id = id
        self._ranges = ranges
        self.name = name
        self.type = type
        self.vcpus = vcpus
        self.read_phys = read_phys
        self.vmcoreinfo = vmcoreinfo
        self._cpu_states = cpu_states or []

    def memory_ranges(self) -> list[PhysRange]:
        """The guest-physical ranges this domain's memory covers."""
        return self._ranges()

    @property
    def is_linux(self) -> bool:
        return self.vmcoreinfo is not None and self.vmcoreinfo.osrelease is not None

    @cached_property
    def kernel_paging(self) -> KernelPaging | None:
        return find_kernel_paging(self.vmcoreinfo, self._cpu_states)

    def page_tables(self, root: int | None = None) -> PageTableWalker | None:
        """A walker over the kernel's tables, or over the tables at ``root``."""
        paging = self.kernel_paging
        if root is None and paging is None:
            return None
        fmt = paging.fmt if paging else X86_64_4LEVEL
        start = root if root is not None else paging.root  # type: ignore[union-attr]
        return PageTableWalker(fmt, start, TableReader(self.read_phys),
                               input_space=Space.KVADDR, table_space=Space.KPHYSADDR)

    @cached_property
    def kernel_memory(self) -> VirtualMemory | None:
        walker = self.page_tables()
        if walker is None:
            return None
        paging = self.kernel_paging
        fallbacks = [paging.text_map] if paging and paging.text_map else []
        return VirtualMemory(walker, self.read_phys, fallbacks=fallbacks)


class Machine:
    def __init__(self, dump: Dump, domains: list[Domain]) -> None:
        self.dump = dump
        self.domains = domains
        self.hypervisor: dict[str, object] | None = None

    def domain(self, id: int | None = None) -> Domain:
        if id is None:
            return self.domains[0]
        for d in self.domains:
            if d.id == id:
                return d
        raise KeyError(f"no domain {id} in this dump (domains: {', '.join(str(d.id) for d in self.domains)})")


def machine_from_dump(dump: Dump) -> Machine:
    vcpus = [VCpu(id=c.cpu, registers=dict(c.registers), running=True, pid=c.pid, sources=list(c.sources))
             for c in dump.cpus]
    guest = Domain(0, name=None, type="guest", vcpus=vcpus, read_phys=dump.read_phys,
                   vmcoreinfo=dump.vmcoreinfo, ranges=dump.ranges, cpu_states=dump.cpus)
    return Machine(dump, [guest])
