"""``domains`` and ``pcpus``: the guests of a machine, and a hypervisor's
physical CPUs."""

from __future__ import annotations

from typing import Any

from analyzer.plugin import Need, Plugin
from analyzer.results import Column, KeyValues, Kind, Result, Table
from analyzer.session import Session

#: How a Xen crash ends on every pCPU (common/kexec.c, arch/x86/crash.c).
XEN_CRASH_MACHINERY = frozenset({"kexec_crash_save_cpu", "kexec_crash", "do_nmi_crash", "do_crashdump_trigger",
                                 "elf_core_save_regs", "machine_crash_shutdown", "nmi_shootdown_cpus"})

XEN = Need("a Xen hypervisor dump", lambda s: None if s.machine.xen is not None else
           "no Xen hypervisor in this dump (no Xen notes, and no Xen image reachable from a CPU's page tables)")


class Domains(Plugin):
    name = "domains"
    help = "the machine's domains (guests): id, type, memory, vCPUs, kernel"
    description = """\
Every domain of the machine: a plain Linux dump is one domain (0); a Xen
hypervisor dump has Domain-0 and each guest, found through Xen's domain
list, with its memory from the frame table and the M2P; a KVM host's
dump has the host kernel (0) and each VM on its vm_list (1..N), with its
memory through the VM's memslots and QEMU's page tables; a KVM/QEMU
snapshot is its one guest.  Select one for other plugins with --domain N.

examples:
  vmcrash run domains xen-host.vmcore
  vmcrash run ps xen-host.vmcore --domain 1
  vmcrash run domains kvm-host.vmcore
"""

    def run(self, session: Session, **options: Any) -> Result:
        m = session.machine
        result = Result(self.name)
        if m.hypervisor:
            kv = KeyValues(title="hypervisor")
            for k, v in m.hypervisor.items():
                if k == "panic" and isinstance(v, dict):
                    v = f"CPU {v.get('cpu')}: {v.get('message')}"
                kv.add(k, v, Kind.ADDRESS if k == "xen_phys_start" else Kind.STR)
            result.add(kv)
        for note in m.notes:
            result.warn(note)
        xen_details = any(d.details for d in m.domains)
        cols = [Column("id", Kind.INT), Column("name"), Column("type"), Column("memory", Kind.SIZE),
                Column("vcpus", Kind.INT), Column("kernel")]
        if xen_details:  # with xen-syms: what xl would say
            cols += [Column("state"), Column("shutdown"), Column("handle")]
        t = Table(cols)
        for d in m.domains:
            mem = sum(r.size for r in d.memory_ranges())
            release = d.vmcoreinfo.osrelease if d.vmcoreinfo else None
            row: list[object] = [d.id, d.name, d.type, mem, len(d.vcpus), release]
            if xen_details:
                row += [d.details.get("state"), d.details.get("shutdown"), d.details.get("handle")]
            t.add(*row)
        result.add(t)
        return result


class Pcpus(Plugin):
    name = "pcpus"
    help = "Xen's physical CPUs at the crash: registers and page-table root"
    needs = (XEN,)

    def run(self, session: Session, **options: Any) -> Result:
        xen = session.machine.xen
        assert xen is not None
        prog = session.machine.xen_prog
        result = Result(self.name, mode="pCPU registers from the dump's notes" + (
            "; xen-syms" if prog else "; Xen's own symbol table (no xen-syms)"))
        t = Table([Column("pcpu", Kind.INT), Column("domain", Kind.INT), Column("vcpu", Kind.INT),
                   Column("rip", Kind.REGISTER), Column("rsp", Kind.REGISTER), Column("cr3", Kind.ADDRESS),
                   Column("function", Kind.SYMBOL)])
        from analyzer.xen.stacks import best_pcpu_stack, pcpu_current

        cpus = session.dump.cpus
        for i, cr3 in enumerate(xen.pcpu_cr3):
            regs = cpus[i].registers if i < len(cpus) else {}
            cur = pcpu_current(prog, i) if prog is not None else None
            dom, vcpu = cur if cur else (None, None)
            # where it was, past the crash-note machinery
            frames = [f for f in best_pcpu_stack(session.machine, i)[0] if not f.inline]
            useful = [f for f in frames if f.symbol_name not in XEN_CRASH_MACHINERY]
            top = useful or frames
            t.add(i, dom, vcpu, regs.get("rip"), regs.get("rsp"), cr3, top[0].where if top else None)
        result.add(t)
        if prog is None:
            result.note("which vCPU each pCPU ran needs --xen-syms")
        return result


class Vcpus(Plugin):
    name = "vcpus"
    help = "every domain's vCPUs: pCPU, running or not, rip, rsp, cr3"
    description = """\
The vCPUs of every domain (or of --domain N): for a plain dump its CPUs; for
a Xen hypervisor dump, with --xen-syms, each domain's vCPUs as Xen kept them
(the running ones' guest registers from their pCPU's stack); for a KVM
host's VMs the registers KVM saved in each struct kvm_vcpu, the host thread
that runs it, and whether it was in guest mode ("running") at the crash;
for a KVM/QEMU snapshot the vCPUs of its cpu sections.

examples:
  vmcrash run vcpus xen-host.vmcore --xen-syms xen-syms
  vmcrash run vcpus guest.stream --json
  vmcrash run vcpus kvm-host.vmcore --domain 1
"""

    def run(self, session: Session, **options: Any) -> Result:
        result = Result(self.name)
        domains = [session.domain] if session.domain_id is not None else session.machine.domains
        kvm = any(v.mode is not None for d in domains for v in d.vcpus)
        cols = [Column("domain", Kind.INT), Column("vcpu", Kind.INT), Column("pcpu", Kind.INT),
                Column("running", Kind.BOOL), Column("rip", Kind.REGISTER), Column("rsp", Kind.REGISTER),
                Column("cr3", Kind.ADDRESS)]
        if kvm:  # the host thread that runs each vCPU, and KVM's vcpu->mode
            cols += [Column("thread", Kind.INT), Column("mode")]
        t = Table(cols)
        for d in domains:
            for v in d.vcpus:
                r = v.registers
                row = [d.id, v.id, v.pcpu, v.running, r.get("rip"), r.get("rsp"), r.get("cr3")]
                t.add(*(row + [v.host_pid, v.mode] if kvm else row))
        result.add(t)
        if session.machine.xen is not None and not any(d.vcpus for d in session.machine.domains):
            result.warn("Xen keeps vCPUs in struct vcpu: give --xen-syms to read them")
        return result


class Xenlog(Plugin):
    name = "xenlog"
    help = "Xen's console ring (what `xl dmesg` shows), from a hypervisor dump"
    needs = (XEN,)

    def run(self, session: Session, **options: Any) -> Result:
        from analyzer.results import Text

        lines = session.machine.xen_console
        located = "xen-syms" if session.machine.xen_prog is not None else "Xen's own symbol table"
        result = Result(self.name, mode=f"console ring located by {located}" if lines else None)
        if not lines:
            result.warn("the console ring was not found (Xen's symbol table is not in the dump: "
                        "give --xen-syms FILE)")
        result.add(Text("\n".join(lines)))
        return result
