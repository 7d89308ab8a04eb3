"""``memslots`` and ``kvm``: the VMs of a KVM host's dump."""

from __future__ import annotations

from typing import Any

from analyzer.plugin import Need, Option, Plugin
from analyzer.results import Column, KeyValues, Kind, Result, Table
from analyzer.session import Session

KVM_HOST = Need("a KVM host with VMs", lambda s: None if s.machine.kvm_vms else
                "no KVM VMs in this dump (not a KVM host, or the host kernel's types are unknown: "
                "give --vmlinux)" + (f"; {'; '.join(s.machine.notes)}" if s.machine.notes else ""))


def _selected(session: Session) -> list[int]:
    if session.domain_id is None or session.domain_id == 0:
        return [vm.index for vm in session.machine.kvm_vms]
    session.domain  # noqa: B018 - a bad --domain is reported here
    return [session.domain_id]


def _host_where(session: Session, pid: int | None) -> str | None:
    """Where the vCPU's host thread was in the host kernel: its innermost KVM
    frame (svm_vcpu_run when the crash caught it in the guest,
    kvm_vcpu_block when the guest was halted), else its innermost frame."""
    from analyzer.linux.kernel import READ_ERRORS

    if pid is None:
        return None
    try:
        linux = session.linux(session.machine.domain(0))
        frames, _method = linux.best_stack_of_task(linux.find_task(pid))
    except (*READ_ERRORS, LookupError):
        return None
    named = [f for f in frames if f.symbol and not f.inline]
    kvm = [f for f in named if any(k in (f.symbol_name or f.symbol or "") for k in ("kvm", "svm", "vmx"))]
    best = kvm or named
    return best[0].where if best else None


class Memslots(Plugin):
    name = "memslots"
    help = "a KVM VM's memory slots: guest-physical ranges, QEMU addresses, pages in the dump"
    description = """\
Each memory slot KVM keeps for a VM (kvm->memslots): the guest-physical
range, the QEMU user address it maps to, its flags, and how many of its
pages QEMU's page tables show as present (in the host's RAM), untouched
(never written by the guest: they read as zeros), swapped out, or
unreadable (a page table the dump lacks).  All VMs, or --domain N.

examples:
  vmcrash run memslots kvm-host.vmcore
  vmcrash run memslots kvm-host.vmcore --domain 1 --json
"""
    options = (Option("no_count", "do not count pages per state (faster on big guests)", type=bool, default=False),)
    needs = (KVM_HOST,)

    def run(self, session: Session, **options: Any) -> Result:
        m = session.machine
        result = Result(self.name, mode="KVM memslots and QEMU's page tables in the host dump")
        count = not options.get("no_count")
        cols = [Column("vm", Kind.INT), Column("slot", Kind.INT), Column("as", Kind.INT),
                Column("gpa_start", Kind.ADDRESS), Column("gpa_end", Kind.ADDRESS), Column("size", Kind.SIZE),
                Column("qemu_address", Kind.ADDRESS), Column("flags", Kind.ADDRESS)]
        if count:
            cols += [Column(n, Kind.INT) for n in ("present", "untouched", "swapped", "unreadable")]
        t = Table(cols)
        for index in _selected(session):
            vm = next(v for v in m.kvm_vms if v.index == index)
            mem = m.kvm_memory.get(index)
            for s in vm.memslots:
                row: list[Any] = [index, s.id, s.as_id, s.gpa_start, s.gpa_end, s.npages << 12,
                                  s.userspace_addr, s.flags]
                if count:
                    if mem is not None:
                        c = mem.slot_pages(s)
                        row += [c["present"], c["untouched"], c["swapped"], c["unreadable"]]
                        if c["truncated"]:
                            result.warn(f"VM {index} slot {s.id}: counted only part of it (too many lookups)")
                    else:
                        row += [None] * 4
                t.add(*row)
            for note in vm.notes:
                result.warn(f"VM {index}: {note}")
        result.add(t)
        return result


class Kvm(Plugin):
    name = "kvm"
    help = "a KVM host's VMs: the QEMU process, its command line, vCPU threads and modes"
    description = """\
For each VM on the host kernel's vm_list: the process that created it
(pid, command, command line from its memory), the struct kvm address, and
each vCPU's host thread, host CPU and KVM mode (whether it was in guest
mode when the host crashed), and where that thread was in the host kernel
(its innermost KVM frame: svm_vcpu_run or vmx_vcpu_run when the crash
caught it in the guest, kvm_vcpu_block when the guest was halted).  Select a VM as a domain for the guest's own
kernel: `vmcrash run ps DUMP --domain N`.

examples:
  vmcrash run kvm kvm-host.vmcore
  vmcrash run ps kvm-host.vmcore --domain 1
"""
    needs = (KVM_HOST,)

    def run(self, session: Session, **options: Any) -> Result:
        m = session.machine
        result = Result(self.name, mode="the host kernel's struct kvm")
        for index in _selected(session):
            vm = next(v for v in m.kvm_vms if v.index == index)
            kv = KeyValues(title=f"VM {index}: {vm.name}")
            kv.add("struct kvm", vm.address, Kind.ADDRESS)
            kv.add("pid", vm.pid, Kind.INT)
            kv.add("comm", vm.comm)
            kv.add("cmdline", " ".join(vm.cmdline))
            kv.add("vendor", vm.vendor)
            kv.add("memslots", len(vm.memslots), Kind.INT)
            kv.add("memory", sum(s.npages << 12 for s in vm.memslots if s.as_id == 0), Kind.SIZE)
            result.add(kv)
            t = Table([Column("vcpu", Kind.INT), Column("thread", Kind.INT), Column("host_cpu", Kind.INT),
                       Column("mode"), Column("rip", Kind.REGISTER), Column("rsp", Kind.REGISTER),
                       Column("cr3", Kind.ADDRESS), Column("host_where", Kind.SYMBOL)], title=f"VM {index} vCPUs")
            for v in vm.vcpus:
                r = v.registers
                t.add(v.id, v.host_pid, v.host_cpu, v.mode, r.get("rip"), r.get("rsp"), r.get("cr3"),
                      _host_where(session, v.host_pid))
                for note in v.notes:
                    result.warn(f"VM {index} vCPU {v.id}: {note}")
            result.add(t)
            for note in vm.notes:
                result.warn(f"VM {index}: {note}")
        return result
