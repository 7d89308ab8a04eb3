"""x86-64 disassembly of kernel code with capstone, targets symbolized.
Shared by the ``dis`` plugin and the TUI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import capstone

__all__ = ["Instruction", "disassemble"]


@dataclass(frozen=True)
class Instruction:
    address: int
    size: int
    bytes_hex: str
    text: str
    target: int | None  # a call or jump's immediate target


def disassemble(code: bytes, address: int, *, limit: int, end: int | None = None) -> list[Instruction]:
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    md.detail = True
    out: list[Instruction] = []
    for insn in md.disasm(code, address):
        if len(out) >= limit or (end is not None and insn.address >= end):
            break
        target = None
        if insn.group(capstone.CS_GRP_JUMP) or insn.group(capstone.CS_GRP_CALL):
            op = insn.operands[0] if insn.operands else None
            if op is not None and op.type == capstone.x86.X86_OP_IMM:
                target = op.imm & ((1 << 64) - 1)
        out.append(Instruction(insn.address, insn.size, insn.bytes.hex(" "),
                               f"{insn.mnemonic} {insn.op_str}".strip(), target))
    return out


def around(read: Callable[[int, int], bytes], pc: int, function_start: int | None, *,
           before: int = 8, after: int = 12) -> list[Instruction]:
    """Instructions around ``pc``: decoded from the function's start when known
    (x86 cannot be decoded backwards reliably), else from ``pc``."""
    start = pc
    if function_start is not None and 0 <= pc - function_start <= 4096:
        start = function_start
    code = read(start, (pc - start) + 16 * after)
    insns = disassemble(code, start, limit=4096)
    idx = next((i for i, x in enumerate(insns) if x.address >= pc), len(insns))
    return insns[max(0, idx - before): idx + after]
