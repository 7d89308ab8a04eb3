"""Xen's own stacks, unwound by drgn with xen-syms' debug info.

drgn starts a trace from a ``struct pt_regs``; Xen has none (its saved
registers are ``struct cpu_user_regs``), so the program gets a ``pt_regs``
type of Linux's x86-64 layout, which drgn reads by offset.  Where
xen-syms' CFI ends, drgn follows frame pointers.

Each pCPU's stack starts from the registers in its crash note; Xen keeps the
vCPU a pCPU was running in ``struct cpu_info`` at the top of its stack
(xen/arch/x86/include/asm/current.h).
"""

from __future__ import annotations


from collections.abc import Callable
from typing import TYPE_CHECKING

import drgn

from ..errors import MemoryFault
from ..linux.kernel import Frame, drgn_frames


if TYPE_CHECKING:
    from ..model import Machine
    from .symbols import XenSymbols

__all__ = ["best_pcpu_stack", "pcpu_stack", "pcpu_stack_scan", "pcpu_current", "STACK_SIZE"]

#: xen/arch/x86/include/asm/config.h: STACK_SIZE = PAGE_SIZE << STACK_ORDER (3)
STACK_SIZE = 4096 << 3
MAX_XEN_FRAMES = 64

# arch/x86/include/asm/ptrace.h (Linux) member order; Xen's cpu_user_regs has the same.
_PT_REGS = ("r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8", "ax", "cx", "dx",
            "si", "di", "orig_ax", "ip", "cs", "flags", "sp", "ss")
_OURS = {"rbp": "bp", "rbx": "bx", "rax": "ax", "rcx": "cx", "rdx": "dx", "rsi": "si", "rdi": "di",
         "rip": "ip", "rflags": "flags", "rsp": "sp"}


def _pt_regs_type(prog: drgn.Program) -> drgn.Type:
    u64 = prog.int_type("unsigned long", 8, False)
    return prog.struct_type("pt_regs", 8 * len(_PT_REGS),
                            [drgn.TypeMember(u64, name, 64 * i) for i, name in enumerate(_PT_REGS)])


def pcpu_stack(prog: drgn.Program, registers: dict[str, int]) -> list[Frame]:
    """Xen's stack from a pCPU's saved registers (its crash note)."""
    value = {}
    for k, v in registers.items():
        member = _OURS.get(k, k)
        if member in _PT_REGS:
            value[member] = v & (1 << 64) - 1
    if "ip" not in value or "sp" not in value:
        return []
    regs = drgn.Object(prog, _pt_regs_type(prog), value=value)
    try:
        return drgn_frames(prog, prog.stack_trace(regs), MAX_XEN_FRAMES)
    except (ValueError, LookupError, drgn.FaultError):
        return []


def pcpu_current(prog: drgn.Program, pcpu: int) -> tuple[int, int] | None:
    """(domain id, vCPU id) of the vCPU ``pcpu`` was running, from the
    ``struct cpu_info`` at the top of its stack."""
    try:
        base = int(prog["stack_base"][pcpu])
        if not base:
            return None
        info = drgn.Object(prog, "struct cpu_info", address=base + STACK_SIZE - prog.type("struct cpu_info").size)
        v = info.current_vcpu
        return int(v.domain.domain_id), int(v.vcpu_id)
    except (LookupError, drgn.FaultError, MemoryFault, ValueError):
        return None


def pcpu_stack_scan(read: Callable[[int, int], bytes], symbols: "XenSymbols",
                    registers: dict[str, int]) -> list[Frame]:
    """Without xen-syms: the pc, then every word on the pCPU's stack, from
    rsp to the stack's top, that points into a Xen function (Xen's own
    symbol table in its image).  A *scan*: old return addresses show up too,
    and callers must say so."""
    from .symbols import bare_name

    rip, rsp = registers.get("rip"), registers.get("rsp")
    if rip is None or rsp is None:
        return []
    frames: list[Frame] = []

    def add(pc: int, first: bool = False) -> None:
        hit = symbols.symbolize(pc)
        if hit is None or (not first and hit[1] == 0):
            if first:
                frames.append(Frame(len(frames), pc, None, None, None, None))
            return
        name, offset = hit
        frames.append(Frame(len(frames), pc, bare_name(name), offset, "xen", None, False, bare_name(name)))

    add(rip, first=True)
    top = (rsp | (STACK_SIZE - 1)) + 1
    try:
        data = read(rsp, top - rsp)
    except MemoryFault:
        return frames
    for i in range(0, len(data) - 7, 8):
        word = int.from_bytes(data[i:i + 8], "little")
        if word >> 48 == 0xFFFF and symbols.is_text(word):
            add(word)
            if len(frames) >= MAX_XEN_FRAMES:
                break
    return frames



def best_pcpu_stack(machine: "Machine", pcpu: int) -> tuple[list[Frame], str]:
    """A pCPU's Xen stack and how it was found: "unwind" (xen-syms' DWARF),
    "scan" (Xen's own symbol table, no xen-syms), or "none"."""
    cpus = machine.dump.cpus
    if not 0 <= pcpu < len(cpus) or machine.xen is None:
        return [], "none"
    regs = cpus[pcpu].registers
    if machine.xen_prog is not None:
        frames = pcpu_stack(machine.xen_prog, regs)
        if frames:
            return frames, "unwind"
    symbols = machine.xen.symbols
    if symbols is not None:
        frames = pcpu_stack_scan(machine.xen.read, symbols, regs)
        if frames:
            return frames, "scan"
    return [], "none"
