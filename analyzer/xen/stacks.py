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


import drgn

from ..errors import MemoryFault
from ..linux.kernel import Frame, drgn_frames


__all__ = ["pcpu_stack", "pcpu_current", "STACK_SIZE"]

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
