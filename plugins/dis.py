"""``dis``: disassemble kernel code, with branch targets symbolized."""

from __future__ import annotations

from typing import Any

from analyzer.disasm import disassemble
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
        result = Result(self.name, mode=session.linux().mode)
        table = Table([Column("mark", Kind.STR, ""), Column("address", Kind.ADDRESS), Column("where", Kind.SYMBOL),
                       Column("bytes"), Column("instruction"), Column("target", Kind.SYMBOL)])
        insns = disassemble(code, address, limit=limit, end=end)
        for insn in insns:
            table.add("=>" if insn.address == mark else "", insn.address, symbolize(session, insn.address),
                      insn.bytes_hex, insn.text, symbolize(session, insn.target) if insn.target is not None else None)
        result.add(table)
        if not insns:
            result.warn(f"no instruction decodes at {address:#x}")
        return result
