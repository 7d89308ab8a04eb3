"""A KVM host's dump as a machine: the host kernel is domain 0, each VM on
its ``vm_list`` a domain 1..N with its vCPUs and its memory seen through
its memslots and QEMU's page tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..linux.find import GUEST_SCAN, scan_for_vmcoreinfo
from ..model import Domain, Machine, VCpu
from ..notes import CpuState
from .guest_memory import KvmGuestMemory
from .host import READ_ERRORS, KvmVm, find_vms

if TYPE_CHECKING:
    from ..linux.kernel import LinuxGuest

__all__ = ["add_kvm_vms", "vm_domain"]


def add_kvm_vms(machine: Machine, host_linux: Callable[[], "LinuxGuest"]) -> None:
    """Find the host's VMs and add them to ``machine`` (nothing when the
    kernel runs none, or its types are unknown)."""
    from ..errors import VmcrashError

    host = machine.domain()
    try:
        linux = host_linux()
        if not linux.kp.has_types:
            if _has_symbol(linux, "vm_list"):
                machine.notes.append("KVM VMs need the host kernel's types: give --vmlinux (no BTF found)")
            return
        vms = find_vms(linux, machine.notes)
    except (*READ_ERRORS, VmcrashError) as e:
        machine.notes.append(f"KVM VMs could not be looked for: {e}")
        return
    if not vms:
        return
    machine.kvm_vms = vms
    host.name, host.type = "host", "host"
    for vm in vms:
        try:
            dom, mem = vm_domain(linux, vm)
        except (*READ_ERRORS, VmcrashError) as e:
            machine.notes.append(f"VM {vm.index} (pid {vm.pid}): {e}")
            continue
        machine.domains.append(dom)
        machine.kvm_memory[vm.index] = mem
        machine.notes.extend(f"VM {vm.index}: {n}" for n in vm.notes)
    panic = linux.panic()
    machine.hypervisor = {
        "name": "kvm", "version": linux.release or "unknown",
        "panic": {"cpu": panic.cpu, "message": panic.message} if panic.message or panic.cpu is not None else None,
        "vendor": vms[0].vendor, "vms": len(vms),
    }


def vm_domain(linux: "LinuxGuest", vm: KvmVm) -> tuple[Domain, KvmGuestMemory]:
    host = linux.domain
    process = linux.process_memory(vm.pgd, f"pid {vm.pid}")
    if host.page_state is None:
        raise LookupError("the host's dump does not say which pages it holds")
    mem = KvmGuestMemory(vm.memslots, process, host.page_state)
    vcpus = [VCpu(id=v.id, registers=dict(v.registers), running=v.in_guest_mode, pcpu=v.host_cpu,
                  sources=["KVM struct kvm_vcpu (host kernel)", *v.notes], host_pid=v.host_pid, mode=v.mode)
             for v in vm.vcpus]
    found = scan_for_vmcoreinfo(mem.ranges(), mem.read_phys, limit_bytes=GUEST_SCAN)
    dom = Domain(vm.index, name=vm.name, type="kvm", vcpus=vcpus, read_phys=mem.read_phys,
                 vmcoreinfo=found[0] if found else None, ranges=mem.ranges,
                 cpu_states=[CpuState(v.id, dict(v.registers)) for v in vm.vcpus], page_state=mem.page_state)
    return dom, mem



def _has_symbol(linux: "LinuxGuest", name: str) -> bool:
    try:
        linux.prog.symbol(name)
    except LookupError:
        return False
    return True
