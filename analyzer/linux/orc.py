"""An ORC unwinder that needs no debug file: x86-64 kernels built with
CONFIG_UNWINDER_ORC keep their unwind tables in memory (``.orc_unwind_ip``,
``.orc_unwind``, found through kallsyms), and modules keep theirs in
``struct module``'s ``arch`` member.

Entries (arch/x86/include/asm/orc_types.h, Linux 4.14 to 6.2 layout):
``s16 sp_offset; s16 bp_offset; u4 sp_reg; u4 bp_reg; u2 type; u1 end``.
The ip table holds 32-bit offsets relative to each entry's own address,
sorted by the ip they give.  The walk follows arch/x86/kernel/unwind_orc.c:
find the previous frame's stack from sp or bp, then read the return address
(call frames) or a ``struct pt_regs`` (interrupt and entry frames).  Every
walk is bounded by :data:`MAX_FRAMES` and by the stack only growing up.
"""

from __future__ import annotations

import bisect
import struct
from array import array
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import MemoryFault

__all__ = ["OrcTable", "OrcUnwinder", "OrcFrame", "MAX_FRAMES"]

MAX_FRAMES = 128
STACK_SIZE = 16384  # x86-64 THREAD_SIZE (and the IRQ stacks' size) without KASAN
MAX_ENTRIES = 4 << 20

REG_UNDEFINED, REG_PREV_SP, REG_DX, REG_DI, REG_BP, REG_SP, REG_R10, REG_R13, REG_BP_INDIRECT, REG_SP_INDIRECT = range(10)
TYPE_CALL, TYPE_REGS, TYPE_REGS_PARTIAL = 0, 1, 2

#: Offsets in struct pt_regs (arch/x86/include/asm/ptrace.h), in 8-byte slots.
PT_REGS = {"r15": 0, "r14": 1, "r13": 2, "r12": 3, "rbp": 4, "rbx": 5, "r11": 6, "r10": 7, "r9": 8,
           "r8": 9, "rax": 10, "rcx": 11, "rdx": 12, "rsi": 13, "rdi": 14, "orig_rax": 15, "rip": 16,
           "cs": 17, "rflags": 18, "rsp": 19, "ss": 20}
IRET_FRAME_OFFSET = 8 * PT_REGS["rip"]


@dataclass(frozen=True)
class OrcEntry:
    sp_offset: int
    bp_offset: int
    sp_reg: int
    bp_reg: int
    type: int
    end: bool


@dataclass(frozen=True)
class OrcFrame:
    pc: int
    sp: int
    interrupted: bool  # reached through a pt_regs (interrupt, exception, syscall entry)


class OrcTable:
    """One ORC table (vmlinux's or a module's): sorted ips and their entries."""

    def __init__(self, ips: "array[int]", entries: bytes) -> None:
        self.ips = ips
        self.entries = entries

    @classmethod
    def load(cls, read: Callable[[int, int], bytes], ip_table: int, count: int, orc_table: int) -> "OrcTable":
        if not 0 < count <= MAX_ENTRIES:
            raise ValueError(f"implausible ORC table size {count}")
        rel = array("i")
        rel.frombytes(read(ip_table, 4 * count))
        ips = array("Q", ((ip_table + 4 * i + r) & 0xFFFFFFFFFFFFFFFF for i, r in enumerate(rel)))
        return cls(ips, read(orc_table, 6 * count))

    def find(self, ip: int) -> OrcEntry | None:
        i = bisect.bisect_right(self.ips, ip) - 1
        if i < 0:
            return None
        sp_off, bp_off, bits = struct.unpack_from("<hhH", self.entries, 6 * i)
        return OrcEntry(sp_off, bp_off, bits & 0xF, (bits >> 4) & 0xF, (bits >> 8) & 3, bool(bits >> 10 & 1))

    @property
    def first_ip(self) -> int:
        return self.ips[0] if len(self.ips) else 0

    @property
    def last_ip(self) -> int:
        return self.ips[-1] if len(self.ips) else 0


class OrcUnwinder:
    """Unwind kernel stacks with ORC tables read from the dump.

    ``read(vaddr, size)`` reads kernel-virtual memory; ``tables`` is asked
    for the table covering an ip (vmlinux's, or a module's)."""

    def __init__(self, read: Callable[[int, int], bytes], tables: Callable[[int], OrcTable | None]) -> None:
        self.read = read
        self.tables = tables

    def _u64(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 8), "little")

    def _find(self, ip: int) -> OrcEntry | None:
        t = self.tables(ip)
        return t.find(ip) if t is not None else None

    def unwind(self, registers: dict[str, int]) -> list[OrcFrame]:
        ip, sp, bp = registers.get("rip"), registers.get("rsp"), registers.get("rbp", 0)
        if ip is None or sp is None:
            return []
        regs: dict[str, int] | None = dict(registers)  # full registers for the first frame
        frames = [OrcFrame(ip, sp, False)]
        signal = True  # the first ip is exact, not a return address
        resyncs = 0
        while len(frames) < MAX_FRAMES and ip >= 1 << 63:
            orc = self._find(ip if signal else ip - 1)
            if orc is None or orc.sp_reg == REG_UNDEFINED:
                if orc is not None and orc.end:
                    break  # the documented end of a kernel stack
                # Code ORC has no entry for (hand-written asm such as the
                # register save in crash_setup_regs): find the next return
                # address on the stack that follows a call and that ORC
                # knows, and go on from there.  The kernel's own unwinder
                # would give up (or guess a frame pointer) here.
                found = self._resync(sp) if resyncs < 4 else None
                if found is None:
                    break
                resyncs += 1
                ip, sp = found
                regs, signal = None, False
                frames.append(OrcFrame(ip, sp, False))
                continue
            try:
                cfa = self._cfa(orc, sp, bp, regs)
                if cfa is None:
                    break
                new_sp = cfa
                if orc.type == TYPE_CALL:
                    ip = self._u64(new_sp - 8)
                    regs, signal = None, False
                elif orc.type == TYPE_REGS:
                    regs = {name: self._u64(new_sp + 8 * slot) for name, slot in PT_REGS.items()}
                    ip, new_sp, signal = regs["rip"], regs["rsp"], True
                elif orc.type == TYPE_REGS_PARTIAL:
                    ip, new_sp = self._u64(new_sp), self._u64(new_sp + 24)
                    regs, signal = None, True
                else:
                    break
                if orc.bp_reg == REG_PREV_SP:
                    bp = self._u64(cfa + orc.bp_offset)
                elif orc.bp_reg == REG_BP:
                    bp = self._u64(bp + orc.bp_offset)
                elif orc.bp_reg == REG_UNDEFINED and regs is not None:
                    bp = regs.get("rbp", bp)
            except MemoryFault:
                break
            if new_sp <= sp and not signal:
                break  # a stack only grows up as we unwind: a loop guard
            sp = new_sp
            frames.append(OrcFrame(ip, sp, signal))
        return frames

    def _resync(self, sp: int) -> tuple[int, int] | None:
        # Look no further than 2 KiB, and never past the end of the 16 KiB
        # kernel stack (the page after it is usually unmapped).
        end = min(sp + 2048, (sp | (STACK_SIZE - 1)) + 1)
        try:
            words = self.read(sp, end - sp)
        except MemoryFault:
            return None
        for off in range(0, len(words) - 7, 8):
            w = int.from_bytes(words[off:off + 8], "little")
            if w < 1 << 63:
                continue
            orc = self._find(w - 1)
            if orc is None or orc.sp_reg == REG_UNDEFINED or not self._follows_call(w):
                continue
            return w, sp + off + 8
        return None

    def _follows_call(self, ret: int) -> bool:
        """Whether the bytes before ``ret`` end with a call instruction."""
        try:
            code = self.read(ret - 7, 7)
        except MemoryFault:
            return False
        if code[2] == 0xE8:  # call rel32
            return True
        for back in (2, 3, 6, 7):  # call r/m64: ff /2 with a 0-, 1- or 4-byte displacement
            op, modrm = code[7 - back], code[8 - back] if back > 1 else 0
            if op == 0xFF and (modrm >> 3) & 7 == 2:
                return True
        return False

    def _cfa(self, orc: OrcEntry, sp: int, bp: int, regs: dict[str, int] | None) -> int | None:
        r = orc.sp_reg
        if r == REG_SP:
            return sp + orc.sp_offset
        if r == REG_BP:
            return bp + orc.sp_offset
        if r == REG_SP_INDIRECT:
            return self._u64(sp) + orc.sp_offset
        if r == REG_BP_INDIRECT:
            return self._u64(bp + orc.sp_offset)
        name = {REG_R10: "r10", REG_R13: "r13", REG_DI: "rdi", REG_DX: "rdx"}.get(r)
        if name is not None and regs is not None and name in regs:
            return regs[name]
        return None
