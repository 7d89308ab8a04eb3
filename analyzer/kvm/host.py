"""The KVM VMs inside a Linux host's dump.

What the host kernel keeps (Linux 6.1: include/linux/kvm_host.h,
virt/kvm/kvm_main.c, arch/x86/include/asm/kvm_host.h):

* ``vm_list``: every ``struct kvm``, linked through ``kvm.vm_list`` (newest
  first: KVM_CREATE_VM does ``list_add``);
* ``kvm.mm``: the address space of the process that created the VM (QEMU),
  ``kvm.userspace_pid`` its pid;
* ``kvm.memslots[as_id]``: the active ``struct kvm_memslots``; its slots,
  in guest-frame order, form the rb-tree ``gfn_tree`` through
  ``slot.gfn_node[slots.node_idx]``; a slot maps ``npages`` guest frames from
  ``base_gfn`` to QEMU's memory at ``userspace_addr``;
* ``kvm.vcpu_array``: an xarray from ``vcpu_idx`` to ``struct kvm_vcpu`` with
  ``online_vcpus`` entries; ``vcpu.mode`` is ``IN_GUEST_MODE`` while the CPU
  runs the guest; ``vcpu.pid`` the host thread that runs it; ``vcpu.cpu`` the
  host CPU it is loaded on (-1 if none);
* the guest's registers: ``vcpu.arch.regs[]`` (RAX, RCX, RDX, RBX, RSP, RBP,
  RSI, RDI, R8-R15, RIP), ``arch.cr0/cr2/cr3/cr4/efer``; on AMD the rest
  (RFLAGS, segments, FS/GS bases) is in the VMCB's save area,
  ``container_of(vcpu, struct vcpu_svm, vcpu)->vmcb->save``.  On Intel those
  live in the VMCS, whose in-memory layout is the CPU's secret: they are
  reported missing.

Every walk is bounded and guarded against cycles: a corrupt list, tree or
xarray ends the walk with a note, never a hang.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import drgn

from ..errors import MemoryFault, VmcrashError

if TYPE_CHECKING:
    from ..linux.kernel import LinuxGuest

__all__ = ["Memslot", "KvmVcpu", "KvmVm", "find_vms", "VCPU_MODES"]

MAX_VMS = 4096
MAX_SLOTS = 32768      # KVM_MEM_SLOTS_NUM is 32767
MAX_VCPUS = 4096       # KVM_MAX_VCPUS on x86 is 1024 (4096 with MAXSMP)
MAX_CMDLINE = 4096
#: Guest frames stop below 2^40 (52-bit guest-physical addresses).
MAX_GFN = 1 << 40

#: enum of vcpu.mode (include/linux/kvm_host.h)
VCPU_MODES = {0: "outside guest mode", 1: "in guest mode", 2: "exiting guest mode",
              3: "reading shadow page tables"}
GPRS = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip")

READ_ERRORS = (MemoryFault, drgn.FaultError, LookupError, ValueError, AttributeError, OverflowError)


@dataclass(frozen=True)
class Memslot:
    id: int
    as_id: int
    base_gfn: int
    npages: int
    userspace_addr: int
    flags: int

    @property
    def gpa_start(self) -> int:
        return self.base_gfn << 12

    @property
    def gpa_end(self) -> int:
        return (self.base_gfn + self.npages) << 12


@dataclass
class KvmVcpu:
    id: int                      # vcpu_id (the APIC id QEMU gave it)
    index: int                   # vcpu_idx
    address: int
    mode: str
    host_pid: int | None         # the host thread that runs it
    host_cpu: int | None         # the host CPU it was loaded on
    registers: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def in_guest_mode(self) -> bool:
        return self.mode == VCPU_MODES[1]


@dataclass
class KvmVm:
    index: int                   # 1-based, in creation order
    address: int
    pid: int | None              # kvm.userspace_pid: the process that created it
    comm: str | None
    cmdline: list[str]
    mm: int
    pgd: int                     # kernel-virtual address of mm->pgd
    memslots: list[Memslot]
    vcpus: list[KvmVcpu]
    vendor: str | None           # "kvm_amd", "kvm_intel"
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """QEMU's ``-name`` when it was given, else "pid N"."""
        for i, arg in enumerate(self.cmdline[:-1]):
            if arg in ("-name", "--name"):
                value = self.cmdline[i + 1]
                for part in value.split(","):
                    if part.startswith("guest="):
                        return part[6:]
                return value.split(",")[0]
        return f"pid {self.pid}"


def _symbol_object(prog: drgn.Program, name: str, type_name: str) -> drgn.Object | None:
    """A global by kallsyms address and type name: works with DWARF and with
    BTF alone (BTF describes types, not where most globals are)."""
    try:
        return drgn.Object(prog, prog.type(type_name), address=prog.symbol(name).address)
    except (LookupError, ValueError):
        return None


def _list_entries(head: drgn.Object, type_name: str, member: str, notes: list[str], limit: int) -> list[drgn.Object]:
    out: list[drgn.Object] = []
    head_addr = int(head.address_of_().value_())
    seen = {head_addr}
    node = head.next
    while len(out) < limit:
        addr = int(node.value_())
        if addr == head_addr:
            return out
        if addr == 0 or addr in seen:
            notes.append(f"{type_name} list broken at {addr:#x} (cycle or NULL): stopped after {len(out)}")
            return out
        seen.add(addr)
        out.append(drgn.container_of(node, type_name, member))
        node = node.next.read_()
    notes.append(f"{type_name} list longer than {limit}: stopped")
    return out


def _rb_inorder(root: drgn.Object, notes: list[str], limit: int) -> list[int]:
    """Addresses of the rb_nodes of ``root`` in order, iteratively, bounded."""
    out: list[int] = []
    stack: list[drgn.Object] = []
    seen: set[int] = set()
    node = root.rb_node.read_()
    while (stack or node.value_()) and len(out) < limit:
        while node.value_():
            addr = int(node.value_())
            if addr in seen or len(stack) > 128:
                notes.append(f"memslot tree broken at {addr:#x}: stopped after {len(out)} slots")
                return out
            seen.add(addr)
            stack.append(node)
            node = node.rb_left.read_()
        node = stack.pop()
        out.append(int(node.value_()))
        node = node.rb_right.read_()
    return out


def _memslots(kvm: drgn.Object, notes: list[str]) -> list[Memslot]:
    prog = kvm.prog_
    slots: list[Memslot] = []
    try:
        n_as = len(kvm.memslots)
    except TypeError:
        n_as = 1
    for as_id in range(n_as):
        try:
            ms = kvm.memslots[as_id].read_()
            if not ms.value_():
                continue
            idx = int(ms.node_idx.value_()) & 1
            member_off = drgn.offsetof(prog.type("struct kvm_memory_slot"), f"gfn_node[{idx}]")
            for node in _rb_inorder(ms.gfn_tree, notes, MAX_SLOTS):
                s = drgn.Object(prog, "struct kvm_memory_slot", address=node - member_off)
                slot = Memslot(int(s.id.value_()), int(s.as_id.value_()), int(s.base_gfn.value_()),
                               int(s.npages.value_()), int(s.userspace_addr.value_()), int(s.flags.value_()))
                if slot.base_gfn + slot.npages > MAX_GFN or slot.userspace_addr + (slot.npages << 12) > 1 << 57:
                    notes.append(f"memslot {slot.id} (as {slot.as_id}) is implausible (base_gfn "
                                 f"{slot.base_gfn:#x}, {slot.npages} pages at {slot.userspace_addr:#x}): left out")
                    continue
                slots.append(slot)
        except READ_ERRORS as e:
            notes.append(f"memslots of address space {as_id}: {e}")
    return slots


def _vcpu_registers(vcpu: drgn.Object, vendor: str | None, notes: list[str]) -> dict[str, int]:
    regs: dict[str, int] = {}
    arch = vcpu.arch
    try:
        for i, name in enumerate(GPRS):
            regs[name] = int(arch.regs[i].value_())
        for cr in ("cr0", "cr2", "cr3", "cr4", "efer"):
            regs[cr] = int(getattr(arch, cr).value_())
    except READ_ERRORS as e:
        notes.append(f"vCPU registers: {e}")
        return regs
    if vendor == "kvm_amd":
        try:
            svm = drgn.container_of(vcpu.address_of_(), "struct vcpu_svm", "vcpu")
            save = svm.vmcb.save
            regs["rflags"] = int(save.rflags.value_())
            for seg in ("cs", "ss", "ds", "es", "fs", "gs"):
                regs[seg] = int(getattr(save, seg).selector.value_())
            regs["fs_base"] = int(save.fs.base.value_())
            regs["gs_base"] = int(save.gs.base.value_())
            regs["kernel_gs_base"] = int(save.kernel_gs_base.value_())
        except READ_ERRORS as e:
            notes.append(f"VMCB save area: {e}")
    elif vendor == "kvm_intel":
        # RSP, RIP and CR3 are KVM's cached copies, valid only when marked
        # available (arch.regs_avail); the rest lives in the VMCS
        try:
            avail = int(arch.regs_avail.value_())
            for bit, name in ((4, "rsp"), (16, "rip"), (19, "cr3")):  # VCPU_REGS_RSP, _RIP, VCPU_EXREG_CR3
                if not avail >> bit & 1:
                    regs.pop(name, None)
                    notes.append(f"Intel VMX: {name.upper()} is not cached by KVM (it is in the VMCS): left out")
        except READ_ERRORS:
            pass
        notes.append("Intel VMX: RFLAGS, segments and FS/GS bases are in the VMCS, not readable from memory")
    return regs


def _pid_nr(pid: drgn.Object) -> int | None:
    if not pid.value_():
        return None
    return int(pid.numbers[0].nr.value_())


def _vcpus(kvm: drgn.Object, vendor: str | None, notes: list[str]) -> list[KvmVcpu]:
    from drgn.helpers.linux.xarray import xa_load

    out: list[KvmVcpu] = []
    n = int(kvm.online_vcpus.counter.value_())
    if not 0 <= n <= MAX_VCPUS:
        notes.append(f"online_vcpus is {n}: reading at most {MAX_VCPUS}")
        n = max(0, min(n, MAX_VCPUS))
    for i in range(n):
        vnotes: list[str] = []
        try:
            p = xa_load(kvm.vcpu_array.address_of_(), i)
            if not p.value_():
                notes.append(f"vCPU index {i} missing from vcpu_array")
                continue
            v = drgn.cast("struct kvm_vcpu *", p)
            mode = VCPU_MODES.get(int(v.mode.value_()), f"mode {int(v.mode.value_())}")
            cpu = int(v.cpu.value_())
            out.append(KvmVcpu(int(v.vcpu_id.value_()), int(v.vcpu_idx.value_()), int(v.value_()), mode,
                               _pid_nr(v.pid.read_()), cpu if cpu >= 0 else None,
                               _vcpu_registers(v[0], vendor, vnotes), vnotes))
        except READ_ERRORS as e:
            notes.append(f"vCPU index {i}: {e}")
    return out


def _vendor(prog: drgn.Program) -> str | None:
    ops = _symbol_object(prog, "kvm_x86_ops", "struct kvm_x86_ops")
    if ops is None:
        return None
    try:
        return ops.name.string_().decode(errors="replace") or None
    except READ_ERRORS:
        return None


def find_vms(linux: "LinuxGuest", notes: list[str]) -> list[KvmVm]:
    """Every VM on the host's ``vm_list``, in creation order."""
    prog = linux.prog
    head = _symbol_object(prog, "vm_list", "struct list_head")
    if head is None:
        return []
    try:
        kvms = _list_entries(head, "struct kvm", "vm_list", notes, MAX_VMS)
    except READ_ERRORS as e:
        notes.append(f"vm_list: {e}")
        return []
    vendor = _vendor(prog)
    vms: list[KvmVm] = []
    for index, kvm in enumerate(reversed(kvms), start=1):
        vnotes: list[str] = []
        try:
            address = int(kvm.value_())
            pid = int(kvm.userspace_pid.value_())
            mm = kvm.mm.read_()
            pgd = int(mm.pgd.value_())
        except READ_ERRORS as e:
            notes.append(f"VM {index}: {e}")
            continue
        try:  # one VM's damaged struct costs that VM's details, never the others
            comm, cmdline = _process(linux, pid, mm, vnotes)
            slots = _memslots(kvm, vnotes)
            vcpus = _vcpus(kvm, vendor, vnotes)
        except READ_ERRORS as e:
            notes.append(f"VM {index} (pid {pid}): {e}")
            continue
        vms.append(KvmVm(index, address, pid, comm, cmdline, int(mm.value_()), pgd, slots, vcpus, vendor, vnotes))
    return vms


def _process(linux: "LinuxGuest", pid: int, mm: drgn.Object, notes: list[str]) -> tuple[str | None, list[str]]:
    comm = None
    try:
        task = linux.find_task(pid)
        comm = task.comm.string_().decode(errors="replace")
    except (*READ_ERRORS, VmcrashError) as e:
        notes.append(f"task {pid}: {e}")
    cmdline: list[str] = []
    try:
        start, end = int(mm.arg_start.value_()), int(mm.arg_end.value_())
        mem = linux.process_memory(int(mm.pgd.value_()), f"pid {pid}")
        if 0 < end - start <= MAX_CMDLINE:
            raw = mem.read(start, end - start)
            cmdline = [a.decode(errors="replace") for a in raw.rstrip(b"\0").split(b"\0")]
    except READ_ERRORS as e:
        notes.append(f"command line of pid {pid}: {e}")
    return comm, cmdline
