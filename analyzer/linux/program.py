"""A drgn ``Program`` for a Linux guest, whatever vmcrash opened it from.

Two ways in, same result:

* native: drgn opens the file itself (ELF vmcores, and makedumpfile kdumps
  through libkdumpfile) -- used when it can, for speed;
* custom: drgn reads the guest's physical memory through vmcrash (any
  format vmcrash reads, and later guests inside Xen and KVM dumps), with
  the guest's VMCOREINFO (``Program.set_linux_kernel_custom``).

Symbols and types come from a vmlinux with DWARF when given (or found by
build ID), else from kallsyms in the dump's own memory.  Registers from any
source become ``struct pt_regs`` objects to start stack traces from.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import drgn

from ..errors import MemoryFault, VmcrashError
from ..model import Domain

__all__ = ["KernelProgram", "open_program", "pt_regs", "DEBUG_DIRS"]

#: The kernel half of the x86-64 address space (5-level paging's, which
#: contains 4-level's).
KERNEL_HALF = 0xFF00_0000_0000_0000

#: Where distributions put debug files (searched by build ID).
DEBUG_DIRS = ("/usr/lib/debug",)

#: Our register names -> struct pt_regs member names (arch/x86/include/asm/ptrace.h).
PT_REGS_MEMBERS = {
    "r15": "r15", "r14": "r14", "r13": "r13", "r12": "r12", "rbp": "bp", "rbx": "bx",
    "r11": "r11", "r10": "r10", "r9": "r9", "r8": "r8", "rax": "ax", "rcx": "cx",
    "rdx": "dx", "rsi": "si", "rdi": "di", "orig_rax": "orig_ax", "rip": "ip",
    "cs": "cs", "rflags": "flags", "rsp": "sp", "ss": "ss",
}


class NoProgram(VmcrashError):
    """drgn could not be set up for this guest."""


@dataclass
class KernelProgram:
    """A drgn program and how it was made (every output says which mode)."""

    prog: drgn.Program
    access: str                 # "native (drgn reads the file)" or "custom (memory served by vmcrash)"
    symbols: str                # "vmlinux: PATH" or "kallsyms (from the dump)"
    types: str                  # "DWARF", "BTF (from the dump)" or "none"
    notes: list[str] = field(default_factory=list)

    @property
    def has_types(self) -> bool:
        return self.types != "none"

    @property
    def can_unwind(self) -> bool:
        """drgn unwinds with ORC/DWARF from the vmlinux; without it, stacks are scanned."""
        return self.types == "DWARF"

    @property
    def mode(self) -> str:
        types = {"DWARF": "DWARF types", "none": "no type information"}.get(self.types, f"{self.types} types")
        stacks = ("stacks unwound by drgn" if self.can_unwind
                  else "stacks unwound with the ORC tables in the dump (scanned where ORC fails)")
        return f"{self.symbols}; {types}; {stacks}; memory: {self.access}"


def _platform() -> drgn.Platform:
    return drgn.Platform(drgn.Architecture.X86_64,
                         drgn.PlatformFlags.IS_64_BIT | drgn.PlatformFlags.IS_LITTLE_ENDIAN)


def _reader(read_phys: Callable[[int, int], bytes]) -> Callable[[int, int, int, bool], bytes]:
    def read(address: int, count: int, offset: int, physical: bool) -> bytes:
        try:
            return read_phys(address, count)
        except MemoryFault as e:
            raise drgn.FaultError(str(e), e.address) from None
    return read


def _custom_program(domain: Domain) -> drgn.Program:
    if domain.vmcoreinfo is None:
        raise NoProgram("the guest has no VMCOREINFO: drgn cannot be pointed at its kernel")
    prog = drgn.Program(_platform())
    try:
        prog.set_linux_kernel_custom(domain.vmcoreinfo.text.encode(), False)
    except Exception as e:  # noqa: BLE001 - drgn's BadDataError and friends are plain Exceptions
        raise NoProgram(f"drgn rejects this guest's VMCOREINFO: {e}") from None
    read = _reader(domain.read_phys)
    for r in domain.memory_ranges():
        prog.add_memory_segment(r.start, r.size, read, physical=True)
    if domain.is_pv and domain.kernel_memory is not None:
        # A Xen PV guest's page tables hold machine frames, which drgn's own
        # walker would take for physical addresses: serve the kernel half of
        # the address space through vmcrash's p2m-aware walker instead.
        vm = domain.kernel_memory
        prog.add_memory_segment(KERNEL_HALF, (1 << 64) - KERNEL_HALF,
                                lambda address, count, offset, physical: _virt(vm.read, address, count),
                                physical=False)
    return prog


def _virt(read: Callable[[int, int], bytes], address: int, count: int) -> bytes:
    try:
        return read(address, count)
    except MemoryFault as e:
        raise drgn.FaultError(str(e), e.address) from None


def _find_vmlinux(domain: Domain, vmlinux: str | None, debuginfo: Sequence[str]) -> str | None:
    if vmlinux:
        return vmlinux
    build_id = domain.vmcoreinfo.get("BUILD-ID") if domain.vmcoreinfo else None
    for d in list(debuginfo) + list(DEBUG_DIRS):
        candidates = [os.path.join(d, "vmlinux")]
        if build_id and len(build_id) > 2:
            candidates.append(os.path.join(d, ".build-id", build_id[:2], build_id[2:] + ".debug"))
        release = domain.vmcoreinfo.osrelease if domain.vmcoreinfo else None
        if release:
            candidates.append(os.path.join(d, "boot", f"vmlinux-{release}"))
            candidates.append(os.path.join(d, f"vmlinux-{release}"))
        for c in candidates:
            if os.path.isfile(c):
                return c
    return None


def open_program(domain: Domain, *, native_path: str | None = None, vmlinux: str | None = None,
                 debuginfo: Sequence[str] = ()) -> KernelProgram:
    """Set up drgn for ``domain``.  ``native_path`` is the dump file when drgn
    may read it itself (plain Linux dumps); otherwise memory is served by vmcrash."""
    notes: list[str] = []
    prog: drgn.Program | None = None
    access = ""
    if native_path is not None:
        try:
            prog = drgn.Program()
            prog.set_core_dump(native_path)
            access = "native (drgn reads the file)"
        except Exception as e:  # noqa: BLE001 - drgn raises plain Exception for libkdumpfile errors
            notes.append(f"drgn cannot read the file itself ({e}); vmcrash serves its memory")
            prog = None
    if prog is None:
        prog = _custom_program(domain)
        access = "custom (memory served by vmcrash)"

    path = _find_vmlinux(domain, vmlinux, debuginfo)
    types = "none"
    symbols = ""
    if path is not None:
        modules = _module_files(debuginfo)
        try:
            prog.load_debug_info([path, *modules])
        except drgn.MissingDebugInfoError as e:
            notes.append(str(e).splitlines()[0])
        try:
            prog.type("struct task_struct")
            types = "DWARF"
            symbols = f"vmlinux: {path}"
        except LookupError:
            notes.append(f"{path} has no usable debug info for this kernel (build ID mismatch?)")
        else:
            # Last in line: names for module code no debug file covers (a
            # module's init text, modules without .ko files).
            _add_module_kallsyms(prog, notes, index=-1)
    if types == "none":
        from drgn.helpers.linux.kallsyms import load_vmlinux_kallsyms

        try:
            prog.register_symbol_finder("vmcrash-kallsyms", load_vmlinux_kallsyms(prog), enable_index=0)
            symbols = "kallsyms (from the dump, no debug info)"
        except (LookupError, ValueError, drgn.FaultError, drgn.MissingDebugInfoError) as e:
            symbols = "no symbols"
            notes.append(f"kallsyms could not be read from the dump: {e}")
        else:
            types = _try_btf(prog, notes)
    return KernelProgram(prog, access, symbols, types, notes)


def _try_btf(prog: drgn.Program, notes: list[str]) -> str:
    """Give drgn the kernel's own BTF (from its memory) as types."""
    from .btf import BtfError, load_btf_from_memory

    try:
        btf = load_btf_from_memory(prog)
    except BtfError as e:
        notes.append(str(e))
        return "none"
    prog.register_type_finder("vmcrash-btf", btf.type_finder, enable_index=0)
    prog.register_object_finder("vmcrash-btf", btf.object_finder, enable_index=0)
    try:
        prog.type("struct task_struct")
    except LookupError:
        notes.append("the kernel's BTF has no struct task_struct")
        return "none"
    # With types, the modules' own kallsyms can be read too (struct module).
    _add_module_kallsyms(prog, notes, index=1)
    return "BTF (from the dump)"


def _add_module_kallsyms(prog: drgn.Program, notes: list[str], index: int) -> None:
    from drgn.helpers.linux.kallsyms import load_module_kallsyms

    try:
        prog.register_symbol_finder("vmcrash-module-kallsyms", load_module_kallsyms(prog), enable_index=index)
    except Exception as e:  # noqa: BLE001 - drgn raises several kinds here; modules are optional
        notes.append(f"module symbols could not be read: {e}")


def _module_files(debuginfo: Sequence[str]) -> list[str]:
    found: list[str] = []
    for d in debuginfo:
        for dirpath, _dirs, files in os.walk(d):
            found += [os.path.join(dirpath, f) for f in files if f.endswith((".ko", ".ko.debug"))]
            if len(found) > 10000:
                return found
    return found


def pt_regs(prog: drgn.Program, registers: dict[str, int]) -> drgn.Object:
    """A ``struct pt_regs`` holding ``registers`` (needs the type)."""
    ty = prog.type("struct pt_regs")
    names = {m.name for m in ty.type.members} if hasattr(ty, "type") else {m.name for m in ty.members}
    value: dict[str, Any] = {}
    for ours, member in PT_REGS_MEMBERS.items():
        if member in names and ours in registers:
            value[member] = registers[ours]
    return drgn.Object(prog, ty, value=value)
