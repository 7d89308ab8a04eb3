"""A session: one dump opened for analysis, with its model and plugins.

This is what :func:`analyzer.open` returns and what every plugin receives::

    with analyzer.open("vmcore") as s:
        print(s.machine.domain().vcpus[0].registers["rip"])
        result = s.run("vtop", address=0xffffffff81000000)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .dump import Dump
from .formats import open_dump
from .model import Domain, Machine, VCpu, machine_from_dump
from .plugin import CannotRun, Plugin, PluginError, discover
from .results import Result

if TYPE_CHECKING:
    from .linux.kernel import LinuxGuest

__all__ = ["Session"]


class Session:
    def __init__(self, path: str | os.PathLike[str], *, vmlinux: str | None = None,
                 debuginfo: Sequence[str] = (), xen_syms: str | None = None,
                 domain: int | None = None, vcpu: int | None = None, snapshot: str | None = None,
                 progress: Callable[[int, int], None] | None = None) -> None:
        self.path = os.fspath(path)
        self.vmlinux = vmlinux
        self.debuginfo = list(debuginfo)
        self.xen_syms = xen_syms
        self.domain_id = domain
        self.vcpu_id = vcpu
        self.dump: Dump = open_dump(self.path, snapshot=snapshot, progress=progress)
        self._linux: dict[int, LinuxGuest] = {}

    @cached_property
    def machine(self) -> Machine:
        m = machine_from_dump(self.dump, xen_syms=self.xen_syms)
        host = m.domain() if m.xen is None else None
        if host is not None and host.whole_dump and host.is_linux:
            # A Linux kernel may be a KVM host: its VMs are found through the
            # host kernel's types, so only when someone asks for the domains.
            from .kvm.machine import add_kvm_vms

            m.expand_later(lambda: add_kvm_vms(m, lambda: self.linux(m.domain())))
        return m

    @property
    def domain(self) -> Domain:
        """The selected domain (``--domain``), or the first."""
        try:
            return self.machine.domain(self.domain_id)
        except KeyError as e:
            raise PluginError(str(e).strip("'\"")) from None

    @property
    def vcpu(self) -> VCpu | None:
        """The selected vCPU (``--vcpu``), if any."""
        if self.vcpu_id is None:
            return None
        for v in self.domain.vcpus:
            if v.id == self.vcpu_id:
                return v
        raise PluginError(f"domain {self.domain.id} has no vCPU {self.vcpu_id} "
                          f"(it has {', '.join(str(v.id) for v in self.domain.vcpus) or 'none'})")

    def linux(self, domain: Domain | None = None) -> "LinuxGuest":
        """The Linux kernel of ``domain`` (default: the selected one), through drgn."""
        from .linux.kernel import LinuxGuest
        from .linux.program import open_program

        dom = domain or self.domain
        guest = self._linux.get(dom.id)
        if guest is None:
            native = self.path if self._drgn_can_read_file(dom) else None
            kp = open_program(dom, native_path=native, vmlinux=self.vmlinux, debuginfo=self.debuginfo)
            guest = self._linux[dom.id] = LinuxGuest(kp, dom)
        return guest

    def _drgn_can_read_file(self, dom: Domain) -> bool:
        # drgn reads plain ELF vmcores and makedumpfile kdumps itself; a
        # flattened stream it cannot, and a guest inside a hypervisor dump
        # is not the file's whole memory (a KVM host's own kernel is).
        if not dom.whole_dump or self.dump.header.get("container"):
            return False
        return self.dump.format in ("elf", "kdump")

    @cached_property
    def plugins(self) -> dict[str, type[Plugin]]:
        return discover()

    def run(self, name: str, **options: Any) -> Result:
        """Run plugin ``name`` with keyword ``options``; the same result the
        command line renders."""
        cls = self.plugins.get(name)
        if cls is None:
            raise PluginError(f"no plugin named {name!r} (see `vmcrash plugins`)")
        unknown = set(options) - {o.name for o in cls.options}
        if unknown:
            raise PluginError(f"{name} has no option {', '.join(sorted(unknown))}")
        opts = cls.defaults()
        opts.update(options)
        reason = cls.why_not(self, opts)
        if reason:
            raise CannotRun(f"{name} cannot run on {self.path}: {reason}")
        result = cls().run(self, **opts)
        result.dump = self.path
        return result

    def close(self) -> None:
        self.dump.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
