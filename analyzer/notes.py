"""ELF notes as dumps carry them, and the register sets inside them.

Notes come from an ELF core's PT_NOTE segments, or from the note blob that
makedumpfile and QEMU copy into a compressed kdump.  pyelftools walks the
note headers; this module decodes the descriptors vmcrash understands:

* ``CORE``/NT_PRSTATUS: Linux ``struct elf_prstatus`` (x86-64): the pid and
  the general registers of one CPU at the crash.
* ``QEMU``/0: QEMU's ``QEMUCPUState`` (target/i386/arch_dump.c): registers,
  segments with their bases, and the control registers, which NT_PRSTATUS
  lacks (CR3 above all).
* ``VMCOREINFO``/0: the kernel's VMCOREINFO text.
"""

from __future__ import annotations

import io
import types
from dataclasses import dataclass, field
from typing import Any, cast

from construct import Array, Int16ul, Int32sl, Int32ul, Int64ul, Padding, Struct
from construct.core import ConstructError
from elftools.common.exceptions import ELFError
from elftools.construct.core import ConstructError as ElftoolsConstructError
from elftools.elf.enums import ENUM_CORE_NOTE_N_TYPE
from elftools.elf.notes import iter_notes
from elftools.elf.structs import ELFStructs

__all__ = [
    "Note",
    "CpuState",
    "parse_note_blob",
    "prstatus_registers",
    "qemu_cpu_state_registers",
    "cpu_states_from_notes",
    "NT_PRSTATUS",
]

NT_PRSTATUS = 1

#: Register order of x86-64 ``struct user_regs_struct`` (``elf_gregset_t``).
X86_64_PRSTATUS_REGS = (
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8",
    "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "rflags",
    "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs",
)

_timeval = Struct("sec" / Int64ul, "usec" / Int64ul)

#: Linux ``struct elf_prstatus`` on x86-64 (336 bytes).
ELF_PRSTATUS_X86_64 = Struct(
    "si_signo" / Int32sl,
    "si_code" / Int32sl,
    "si_errno" / Int32sl,
    "pr_cursig" / Int16ul,
    Padding(2),
    "pr_sigpend" / Int64ul,
    "pr_sighold" / Int64ul,
    "pr_pid" / Int32sl,
    "pr_ppid" / Int32sl,
    "pr_pgrp" / Int32sl,
    "pr_sid" / Int32sl,
    "pr_utime" / _timeval,
    "pr_stime" / _timeval,
    "pr_cutime" / _timeval,
    "pr_cstime" / _timeval,
    "pr_reg" / Array(len(X86_64_PRSTATUS_REGS), Int64ul),
    "pr_fpvalid" / Int32sl,
)

_qemu_segment = Struct(
    "selector" / Int32ul, "limit" / Int32ul, "flags" / Int32ul, Padding(4), "base" / Int64ul,
)

_QEMU_GPRS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
              "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags")
_QEMU_SEGMENTS = ("cs", "ds", "es", "fs", "gs", "ss", "ldt", "tr", "gdt", "idt")

#: QEMU's ``QEMUCPUState`` for x86 (version 1).  ``kernel_gs_base`` exists only
#: when ``size`` says so (it was appended later).
QEMU_CPU_STATE = Struct(
    "version" / Int32ul,
    "size" / Int32ul,
    *[name / Int64ul for name in _QEMU_GPRS],
    *[name / _qemu_segment for name in _QEMU_SEGMENTS],
    "cr" / Array(5, Int64ul),
)
_QEMU_KERNEL_GS_BASE_OFFSET = QEMU_CPU_STATE.sizeof()


@dataclass(frozen=True)
class Note:
    """One ELF note: its owner name, type, descriptor, and where it was found."""

    name: str
    type: int
    desc: bytes
    offset: int  # file offset of the note header (or -1 if not from the file)


@dataclass
class CpuState:
    """The saved state of one CPU (or vCPU) as a dump recorded it."""

    cpu: int
    registers: dict[str, int] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    pid: int | None = None


def _note_structs() -> ELFStructs:
    structs = ELFStructs(little_endian=True, elfclass=64)
    structs.create_basic_structs()
    structs.create_advanced_structs("ET_CORE", "EM_X86_64", "ELFOSABI_SYSV")
    return structs


_STRUCTS = _note_structs()


def parse_note_blob(blob: bytes, base_offset: int = -1) -> list[Note]:
    """Decode every note in ``blob`` (the bytes of one PT_NOTE segment).

    ``base_offset`` is the blob's offset in the dump file, so each note can
    say where it came from.  A damaged note ends the walk: the notes before
    it are kept.  The blob is bounded by the caller, so a hostile ``descsz``
    cannot make this read more than the blob holds.
    """
    fake_elf = types.SimpleNamespace(stream=io.BytesIO(blob), structs=_STRUCTS, elfclass=64)
    notes: list[Note] = []
    try:
        for n in iter_notes(cast(Any, fake_elf), 0, len(blob)):
            desc = bytes(n["n_descdata"])
            if len(desc) != n["n_descsz"]:
                break  # the descriptor runs past the segment: truncated or corrupt
            raw_type = n["n_type"]
            # pyelftools names the core note types it knows
            ntype = ENUM_CORE_NOTE_N_TYPE.get(raw_type, -1) if isinstance(raw_type, str) else int(raw_type)
            notes.append(Note(
                name=n["n_name"] or "",
                type=ntype,
                desc=desc,
                offset=(base_offset + n["n_offset"]) if base_offset >= 0 else -1,
            ))
    except (ConstructError, ElftoolsConstructError, ELFError, UnicodeDecodeError, ValueError):
        pass  # the rest of the segment is unreadable; keep what came before
    return notes


def prstatus_registers(desc: bytes) -> tuple[int, dict[str, int]] | None:
    """(pid, registers) from an x86-64 NT_PRSTATUS descriptor, or None if it
    is not one (wrong size)."""
    if len(desc) < ELF_PRSTATUS_X86_64.sizeof() - 4:
        return None
    st = ELF_PRSTATUS_X86_64.parse(desc.ljust(ELF_PRSTATUS_X86_64.sizeof(), b"\0"))
    return st.pr_pid, dict(zip(X86_64_PRSTATUS_REGS, st.pr_reg))


def qemu_cpu_state_registers(desc: bytes) -> dict[str, int] | None:
    """Registers from QEMU's x86 ``QEMUCPUState`` note, or None if it is not one."""
    if len(desc) < QEMU_CPU_STATE.sizeof():
        return None
    st = QEMU_CPU_STATE.parse(desc)
    if st.version != 1:
        return None
    regs = {name: st[name] for name in _QEMU_GPRS}
    for seg in _QEMU_SEGMENTS:
        if seg in ("ldt", "tr", "gdt", "idt"):
            regs[f"{seg}_base"] = st[seg].base
            continue
        regs[seg] = st[seg].selector
        if seg in ("fs", "gs"):
            regs[f"{seg}_base"] = st[seg].base
    for i, value in enumerate(st.cr):
        if i != 1:  # CR1 is reserved
            regs[f"cr{i}"] = value
    if st.size >= _QEMU_KERNEL_GS_BASE_OFFSET + 8 and len(desc) >= _QEMU_KERNEL_GS_BASE_OFFSET + 8:
        regs["kernel_gs_base"] = int.from_bytes(
            desc[_QEMU_KERNEL_GS_BASE_OFFSET:_QEMU_KERNEL_GS_BASE_OFFSET + 8], "little")
    return regs


def cpu_states_from_notes(notes: list[Note]) -> list[CpuState]:
    """One :class:`CpuState` per CPU, in note order.

    The n-th NT_PRSTATUS and the n-th QEMU note describe the same CPU (QEMU
    writes them in that order; the kernel writes one NT_PRSTATUS per CPU).
    """
    prstatus = [n for n in notes if n.name == "CORE" and n.type == NT_PRSTATUS]
    qemu = [n for n in notes if n.name == "QEMU"]
    cpus: list[CpuState] = []
    for i in range(max(len(prstatus), len(qemu))):
        state = CpuState(cpu=i)
        if i < len(prstatus):
            parsed = prstatus_registers(prstatus[i].desc)
            if parsed is not None:
                state.pid, regs = parsed
                state.registers.update(regs)
                state.sources.append("NT_PRSTATUS")
        if i < len(qemu):
            qregs = qemu_cpu_state_registers(qemu[i].desc)
            if qregs is not None:
                # QEMU's note has the control registers and segment bases
                # NT_PRSTATUS lacks; the general registers agree.
                for k, v in qregs.items():
                    state.registers.setdefault(k, v)
                state.sources.append("QEMU")
        if state.sources:
            cpus.append(state)
    return cpus
