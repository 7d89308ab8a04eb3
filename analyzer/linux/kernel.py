"""Facts about a Linux guest, read through drgn: release, tasks, the panic,
stacks, the log, modules.  Plain dataclasses out, so plugins, triage and
the TUI share one reading of the kernel.
"""

from __future__ import annotations


from dataclasses import dataclass
from typing import TYPE_CHECKING
from functools import cached_property

import drgn
from drgn.helpers.linux.cpumask import for_each_online_cpu
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.sched import cpu_curr, task_cpu, task_state_to_char

from ..errors import MemoryFault, VmcrashError
from ..model import Domain
from .program import KernelProgram, pt_regs

if TYPE_CHECKING:
    from .process_memory import ProcessMemory
    from collections.abc import Callable

    from .orc import OrcTable, OrcUnwinder

__all__ = ["LinuxGuest", "Task", "Frame", "PanicInfo", "NeedsTypes", "MAX_TASKS", "MAX_FRAMES", "READ_ERRORS"]

#: Cycle and size guards for walks over kernel lists and stacks.
MAX_TASKS = 1 << 20
MAX_FRAMES = 256
#: x86-64 THREAD_SIZE with KASAN off (16 KiB); stacks are aligned to it.
KERNEL_STACK_SIZE = 16384


#: What reading a damaged or partial guest can raise; callers that must
#: report partial results catch exactly these.
READ_ERRORS = (VmcrashError, LookupError, drgn.FaultError, drgn.MissingDebugInfoError, ValueError)


class NeedsTypes(VmcrashError):
    """The question needs kernel type information, and there is none."""


@dataclass(frozen=True)
class Task:
    pid: int
    ppid: int
    comm: str
    state: str
    cpu: int | None
    address: int  # struct task_struct *


@dataclass(frozen=True)
class Frame:
    index: int
    pc: int
    symbol: str | None
    offset: int | None
    module: str | None
    source: str | None  # "file:line" when debug info has it
    inline: bool = False       # an inlined call inside the next frame's function
    symbol_name: str | None = None  # the ELF/kallsyms symbol holding pc (not an inline name)

    @property
    def where(self) -> str:
        if self.symbol is None:
            return f"{self.pc:#x}"
        if self.inline:  # the offset belongs to the function it is inlined into
            return f"{self.symbol} (inlined)"
        return f"{self.symbol}+{self.offset:#x}" if self.offset else self.symbol


def drgn_frames(prog: drgn.Program, trace: drgn.StackTrace, limit: int | None = None) -> list[Frame]:
    """drgn's frames as ours: name (inlined functions too), symbol+offset,
    module, source line."""
    frames: list[Frame] = []
    for i, f in enumerate(trace):
        if i >= (limit or MAX_FRAMES):
            break
        pc = int(f.pc)
        name = f.function_name  # None when neither DWARF nor a symbol names it
        offset = None
        sym_name = None
        try:
            sym = f.symbol()
            name = name or sym.name
            sym_name = sym.name
            offset = pc - sym.address
        except LookupError:
            pass
        module = None
        try:
            module = prog.module(pc).name
        except LookupError:
            pass
        source = None
        try:
            filename, line, _col = f.source()
            source = f"{filename}:{line}"
        except LookupError:
            pass
        frames.append(Frame(i, pc, name, offset, module, source, bool(f.is_inline), sym_name))
    return frames


@dataclass(frozen=True)
class PanicInfo:
    message: str | None
    cpu: int | None
    pid: int | None
    comm: str | None


def _s(b: bytes) -> str:
    return b.decode("utf-8", "replace")


class LinuxGuest:
    """One Linux kernel, seen through a :class:`KernelProgram`."""

    def __init__(self, kp: KernelProgram, domain: Domain) -> None:
        self.kp = kp
        self.prog = kp.prog
        self.domain = domain

    @property
    def mode(self) -> str:
        return self.kp.mode

    def _need_types(self, what: str) -> None:
        if not self.kp.has_types:
            raise NeedsTypes(f"{what} needs kernel types: give --vmlinux (or --debuginfo DIR)")

    # -- identity -----------------------------------------------------------

    @cached_property
    def release(self) -> str | None:
        if self.domain.vmcoreinfo is not None and self.domain.vmcoreinfo.osrelease:
            return self.domain.vmcoreinfo.osrelease
        if self.kp.has_types:
            return _s(self.prog["init_uts_ns"].name.release.string_())
        return None

    def uts(self) -> dict[str, str]:
        self._need_types("the kernel's utsname")
        name = self.prog["init_uts_ns"].name
        return {f: _s(getattr(name, f).string_()) for f in ("sysname", "nodename", "release", "version", "machine")}

    def online_cpus(self) -> list[int]:
        self._need_types("the online CPU mask")
        return list(for_each_online_cpu(self.prog))

    def memory_bytes(self) -> int | None:
        if not self.kp.has_types:
            return None
        try:
            pages = self.prog["_totalram_pages"].counter.value_()
        except (KeyError, LookupError, AttributeError):
            return None
        return int(pages) * self.domain_page_size

    @property
    def domain_page_size(self) -> int:
        vmci = self.domain.vmcoreinfo
        return (vmci.page_size if vmci and vmci.page_size else 4096)

    def uptime_seconds(self) -> float | None:
        """Seconds since boot, from jiffies as crash computes it."""
        if not self.kp.has_types:
            return None
        try:
            jiffies = self.prog["jiffies_64"].value_()
            hz = self._hz()
        except (KeyError, LookupError):
            return None
        initial = (-300 * hz) & 0xFFFFFFFF  # INITIAL_JIFFIES ((unsigned long)(unsigned int)(-300*HZ))
        return float(((int(jiffies) - initial) & ((1 << 64) - 1)) / hz)

    def _hz(self) -> int:
        from drgn.helpers.linux.kconfig import get_kconfig

        try:
            return int(get_kconfig(self.prog).get("CONFIG_HZ", "250"))
        except LookupError:
            return 250

    def taint(self) -> int | None:
        return self._read_global("tainted_mask", 8, signed=False)

    def _read_global(self, name: str, size: int, *, signed: bool) -> int | None:
        """A plain integer global, by type when there are types, else by its
        kallsyms address and the given size."""
        try:
            if self.kp.has_types:
                value = self.prog[name].value_()
                if isinstance(value, dict):  # atomic_t and friends
                    value = value.get("counter")
                return int(value) if isinstance(value, int) else None
            return int.from_bytes(self.prog.read(self.prog.symbol(name).address, size), "little", signed=signed)
        except (KeyError, LookupError, drgn.FaultError):
            return None

    # -- tasks --------------------------------------------------------------

    def tasks(self) -> list[Task]:
        self._need_types("the task list")
        out: list[Task] = []
        for i, t in enumerate(for_each_task(self.prog)):
            if i >= MAX_TASKS:
                break
            out.append(self._task(t))
        return out

    def _task(self, t: drgn.Object) -> Task:
        return Task(
            pid=int(t.pid.value_()),
            ppid=int(t.real_parent.pid.value_()) if t.real_parent.value_() else 0,
            comm=_s(t.comm.string_()),
            state=task_state_to_char(t),
            cpu=int(task_cpu(t)),
            address=int(t.value_()),
        )

    def find_task(self, pid: int) -> drgn.Object:
        self._need_types("finding a task")
        from drgn.helpers.linux.pid import find_task

        t = find_task(self.prog, pid)
        if not t:
            raise LookupError(f"no task with pid {pid}")
        return t

    def process_memory(self, pgd: int, name: str = "process") -> "ProcessMemory":
        """A process's user address space from its ``mm->pgd`` (a kernel-virtual
        address in the direct map), walked in this kernel's physical memory."""
        from .process_memory import ProcessMemory

        paging = self.domain.kernel_paging
        vm = self.domain.kernel_memory
        if paging is None or vm is None:
            raise LookupError("the kernel's page tables are not known: cannot find a process's tables")
        return ProcessMemory(paging.fmt, vm.translate(pgd), self.domain.read_phys, name)

    def active_task(self, cpu: int) -> drgn.Object:
        self._need_types("a CPU's current task")
        return cpu_curr(self.prog, cpu)

    # -- the panic ----------------------------------------------------------

    def panic_cpu(self) -> int | None:
        """The CPU that panicked, from the kernel's own ``panic_cpu``."""
        value = self._read_global("panic_cpu", 4, signed=True)
        return value if value is not None and value >= 0 else None

    def panic(self) -> PanicInfo:
        message = None
        try:
            from drgn.helpers.linux.panic import _panic_message

            raw = _panic_message(self.dmesg())
            if raw is not None:
                message = _s(raw)
        except READ_ERRORS:
            pass
        cpu = self.panic_cpu()
        pid = comm = None
        if cpu is not None and self.kp.has_types:
            try:
                t = self.active_task(cpu)
                pid, comm = int(t.pid.value_()), _s(t.comm.string_())
            except READ_ERRORS:
                pass
        return PanicInfo(message, cpu, pid, comm)

    # -- stacks -------------------------------------------------------------

    def best_stack_of_cpu(self, cpu: int) -> tuple[list[Frame], str]:
        """The stack of ``cpu``'s task and how it was found: "unwind" (drgn,
        with debug info), "orc" (the ORC tables in the dump's memory), or
        "scan" (kernel-text words on the stack)."""
        regs = next((v.registers for v in self.domain.vcpus if v.id == cpu), None)
        if self.kp.can_unwind:
            try:
                frames = self.stack_of_cpu(cpu)
            except (LookupError, ValueError, drgn.FaultError):
                frames = []
            if frames and (frames[-1].pc < 1 << 63 or not regs):
                return frames, "unwind"  # drgn got down to user space (or nothing else can)
            # drgn stopped inside the kernel (code it has no CFI for, such as a
            # module's init text): the ORC tables in memory may go further.
            orc = self.orc_stack(regs) if regs else []
            if len(orc) > len([f for f in frames if not f.inline]):
                return orc, "orc"
            if frames:
                return frames, "unwind"
        if not regs:
            return [], "none"
        return self.stack_from_registers(regs)

    def stack_from_registers(self, regs: dict[str, int]) -> tuple[list[Frame], str]:
        """Without debug info: ORC from the dump's memory, else a scan."""
        frames = self.orc_stack(regs)
        if len(frames) > 1:
            return frames, "orc"
        return self.scan_stack(regs), "scan"

    @cached_property
    def _orc(self) -> "OrcUnwinder | None":
        from .orc import OrcTable, OrcUnwinder

        vm = self.domain.kernel_memory
        if vm is None:
            return None
        try:
            start_ip = self.prog.symbol("__start_orc_unwind_ip").address
            stop_ip = self.prog.symbol("__stop_orc_unwind_ip").address
            start_orc = self.prog.symbol("__start_orc_unwind").address
            vmlinux_table = OrcTable.load(vm.read, start_ip, (stop_ip - start_ip) // 4, start_orc)
        except READ_ERRORS:
            return None
        modules: list[OrcTable] = []
        if self.kp.has_types:
            modules = self._module_orc_tables(vm.read)

        def table_for(ip: int) -> OrcTable | None:
            if vmlinux_table.first_ip <= ip <= vmlinux_table.last_ip + 4096:
                return vmlinux_table
            for t in modules:
                if t.first_ip <= ip <= t.last_ip + 4096:
                    return t
            return None

        return OrcUnwinder(vm.read, table_for)

    def _module_orc_tables(self, read: "Callable[[int, int], bytes]") -> "list[OrcTable]":
        from drgn.helpers.linux.module import for_each_module

        from .orc import OrcTable

        tables = []
        try:
            for i, mod in enumerate(for_each_module(self.prog)):
                if i >= 4096:
                    break
                arch = mod.arch
                n = int(arch.num_orcs.value_())
                if n:
                    tables.append(OrcTable.load(read, int(arch.orc_unwind_ip.value_()), n,
                                                int(arch.orc_unwind.value_())))
        except (*READ_ERRORS, AttributeError):
            pass
        return tables

    def orc_stack(self, regs: dict[str, int]) -> list[Frame]:
        unwinder = self._orc
        if unwinder is None:
            return []
        return [self._symbolize(i, f.pc) for i, f in enumerate(unwinder.unwind(regs))]

    def best_stack_of_task(self, task: drgn.Object) -> tuple[list[Frame], str]:
        """Like :meth:`best_stack_of_cpu`, for any task (a sleeping task is
        scanned from its saved stack pointer)."""
        if self.kp.can_unwind:
            try:
                return self.stack_of_task(task), "unwind"
            except (LookupError, ValueError, drgn.FaultError):
                pass
        cpu = int(task_cpu(task))
        try:
            if int(self.active_task(cpu).value_()) == int(task.value_()):
                return self.best_stack_of_cpu(cpu)
        except (LookupError, drgn.FaultError):
            pass
        try:
            sp = int(task.thread.sp.value_())
        except (AttributeError, LookupError, drgn.FaultError):
            return [], "none"
        # A sleeping task's saved sp points at its inactive_task_frame (the
        # registers __switch_to_asm pushed, then the return address).
        try:
            frame = self.prog.read(sp, 8 * 7)
            words = [int.from_bytes(frame[i:i + 8], "little") for i in range(0, len(frame), 8)]
            regs = {"rsp": sp + 8 * 7, "rip": words[6], "rbp": words[5]}
            frames = self.orc_stack(regs)
            if len(frames) > 1:
                return frames, "orc"
        except READ_ERRORS:
            pass
        return self.scan_stack({"rsp": sp}), "scan"

    def stack_of_task(self, task: drgn.Object) -> list[Frame]:
        """A task's stack: from its saved context if it was sleeping, from its
        CPU's saved registers if it was running when the dump was taken."""
        if not self.kp.can_unwind:
            raise LookupError("unwinding needs the vmlinux (ORC and DWARF); without it use a stack scan")
        if not self.kp.access.startswith("native"):
            cpu = int(task_cpu(task))
            try:
                running = int(self.active_task(cpu).value_()) == int(task.value_())
            except (LookupError, drgn.FaultError):
                running = False
            if running:
                return self.stack_of_cpu(cpu)
        return self._frames(self.prog.stack_trace(task))

    def stack_of_cpu(self, cpu: int) -> list[Frame]:
        """The stack of the task running on ``cpu`` when the dump was taken,
        from the dump's own saved registers for that CPU."""
        if not self.kp.can_unwind:
            raise LookupError("unwinding needs the vmlinux (ORC and DWARF); without it use a stack scan")
        if self.kp.access.startswith("native"):
            return self.stack_of_task(self.active_task(cpu))
        vcpus = {v.id: v for v in self.domain.vcpus}
        if cpu not in vcpus or not vcpus[cpu].registers:
            raise LookupError(f"the dump has no saved registers for CPU {cpu}")
        return self._frames(self.prog.stack_trace(pt_regs(self.prog, vcpus[cpu].registers)))

    def scan_stack(self, registers: dict[str, int]) -> list[Frame]:
        """A stack *scan*, for when nothing can unwind: the pc, then every word
        on the kernel stack above rsp that points into kernel text.  Marked as
        a scan by the caller; return addresses of old calls show up too."""
        rip, rsp = registers.get("rip"), registers.get("rsp")
        frames: list[Frame] = []
        if rip is not None:
            frames.append(self._symbolize(0, rip))
        vm = self.domain.kernel_memory
        if rsp is None or vm is None or rsp < (1 << 63):
            return frames
        top = (rsp | (KERNEL_STACK_SIZE - 1)) + 1
        try:
            words = vm.read(rsp, top - rsp)
        except (MemoryFault, ValueError):
            return frames
        for off in range(0, len(words) - 7, 8):
            value = int.from_bytes(words[off:off + 8], "little")
            if value < (1 << 63):
                continue
            f = self._symbolize(len(frames), value, text_only=True)
            if f.symbol is not None:
                frames.append(f)
            if len(frames) >= MAX_FRAMES:
                break
        return frames

    def _symbolize(self, index: int, pc: int, text_only: bool = False) -> Frame:
        try:
            sym = self.prog.symbol(pc)
        except LookupError:
            return Frame(index, pc, None, None, None, None)
        if text_only and sym.kind not in (drgn.SymbolKind.FUNC, drgn.SymbolKind.UNKNOWN):
            return Frame(index, pc, None, None, None, None)
        if text_only and pc == sym.address:
            return Frame(index, pc, None, None, None, None)  # a function pointer, not a return address
        module = None
        try:
            module = self.prog.module(pc).name
        except LookupError:
            pass
        return Frame(index, pc, sym.name, pc - sym.address, module, None, False, sym.name)

    def _frames(self, trace: drgn.StackTrace) -> list[Frame]:
        return drgn_frames(self.prog, trace)

    # -- log and modules ----------------------------------------------------

    def dmesg(self) -> bytes:
        """The log as dmesg prints it: through drgn with types, else through
        VMCOREINFO's printk offsets (the same text; the tests hold them equal)."""
        if self.kp.has_types:
            from drgn.helpers.linux.printk import get_dmesg

            return get_dmesg(self.prog)
        return "".join(line + "\n" for line in self._log_without_types()).encode()

    def _log_without_types(self) -> list[str]:
        from .printk import NoPrintkInfo, format_record, read_printk_ringbuffer

        vm = self.domain.kernel_memory
        if self.domain.vmcoreinfo is None or vm is None:
            raise NoPrintkInfo("no VMCOREINFO or kernel page tables: cannot find the log without debug info")
        return [format_record(r) for r in read_printk_ringbuffer(self.domain.vmcoreinfo, vm.read)]

    def log_lines(self) -> list[str]:
        return _s(self.dmesg()).splitlines()

    def modules(self) -> list[dict[str, object]]:
        self._need_types("the module list")
        from drgn.helpers.linux.module import for_each_module, module_address_regions

        out: list[dict[str, object]] = []
        for i, mod in enumerate(for_each_module(self.prog)):
            if i >= 65536:
                break
            regions = module_address_regions(mod)
            base = min((a for a, _ in regions), default=0)
            out.append({"name": _s(mod.name.string_()), "address": int(mod.value_()),
                        "base": base, "size": sum(s for _, s in regions)})
        return out
