"""``dis``: disassemble kernel code, with branch targets symbolized."""

from __future__ import annotations

from typing import Any

import capstone

from analyzer.errors import MemoryFault
from analyzer.needs import KERNEL_PAGE_TABLES, LINUX
from analyzer.plugin import CannotRun, Option, Plugin, PluginError, resolve_address
from analyzer.results import Column, Kind, Result, Table
from analyzer.session import Session

MAX_INSNS = 4096


def symbolize(session: Session, address: int) -> str | None:
    address &= (1 << 64) - 1  # capstone gives some immediates signed
    try:
        sym = session.linux().prog.symbol(address)
    except (LookupError, ValueError, OverflowError):
        return None
    off = address - sym.address
    return f"{sym.name}+{off:#x}" if off else sym.name


class Dis(Plugin):
    name = "dis"
    help = "disassemble kernel code at an address or symbol (x86-64, branch targets symbolized)"
    description = """\
Disassemble COUNT instructions (default 16) at ADDR, which may be a symbol:
with a bare symbol name the whole function is shown (up to 4096
instructions).  The instruction at a marked address (--mark, e.g. a frame's
pc) is flagged with '=>'.  Calls and jumps show their target's symbol.

examples:
  vmcrash run dis vmcore sysrq_handle_crash
  vmcrash run dis vmcore 0xffffffff8155a1c0 --count 8
"""
    options = (
        Option("address", "a number (0x for hex) or a kernel symbol[+offset]", positional=True,
               required=True, metavar="ADDR"),
        Option("count", "how many instructions", type=int, metavar="N"),
        Option("mark", "flag the instruction at this address", metavar="ADDR"),
    )
    needs = (LINUX, KERNEL_PAGE_TABLES)

    def run(self, session: Session, **options: Any) -> Result:
        text = options["address"]
        address = resolve_address(session, text)
        mark = resolve_address(session, options["mark"]) if options.get("mark") else None
        count = options.get("count")
        end = None
        if count is None and isinstance(text, str) and "+" not in text and not text[:1].isdigit():
            try:
                sym = session.linux().prog.symbol(address)
                if sym.size:
                    end = sym.address + sym.size
            except LookupError:
                pass
        limit = min(count or (MAX_INSNS if end else 16), MAX_INSNS)
        vm = session.domain.kernel_memory
        if vm is None:
            raise CannotRun("no kernel page tables")
        length = (end - address) if end else 16 * limit
        try:
            code = vm.read(address, min(length, 16 * MAX_INSNS))
        except MemoryFault as e:
            raise PluginError(f"cannot read code at {address:#x}: {e}") from None
        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        md.detail = True
        result = Result(self.name, mode=session.linux().mode)
        table = Table([Column("mark", Kind.STR, ""), Column("address", Kind.ADDRESS), Column("where", Kind.SYMBOL),
                       Column("bytes"), Column("instruction"), Column("target", Kind.SYMBOL)])
        n = 0
        for insn in md.disasm(code, address):
            if n >= limit or (end is not None and insn.address >= end):
                break
            target = None
            if insn.group(capstone.CS_GRP_JUMP) or insn.group(capstone.CS_GRP_CALL):
                op = insn.operands[0] if insn.operands else None
                if op is not None and op.type == capstone.x86.X86_OP_IMM:
                    target = symbolize(session, op.imm)
            table.add("=>" if insn.address == mark else "", insn.address, symbolize(session, insn.address),
                      insn.bytes.hex(" "), f"{insn.mnemonic} {insn.op_str}".strip(), target)
            n += 1
        result.add(table)
        if n == 0:
            result.warn(f"no instruction decodes at {address:#x}")
        return result
