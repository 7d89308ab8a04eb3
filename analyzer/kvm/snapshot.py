"""A QEMU migration stream opened as a :class:`~analyzer.dump.Dump`: the
guest's RAM by guest-physical address, and each vCPU's registers from its
``cpu`` section -- so page-table walks and stacks work with no notes at all.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Callable

from ..dump import Dump, PageState, PhysRange
from ..errors import DumpFormatError, OutsideDump, PageExcluded
from ..formats.source import Source
from ..notes import CpuState
from ..vmcoreinfo import VmcoreInfo
from .migration import PAGE_SIZE, MigrationStream, parse_stream, vmsd_leaves
from .x86_layout import GpaMapping, pc_ram_layout

__all__ = ["SnapshotDump", "MAIN_RAM_BLOCKS", "find_vmcoreinfo"]

#: Names QEMU gives the main RAM block of a PC machine.
MAIN_RAM_BLOCKS = ("pc.ram", "ram0", "mem0")

#: QEMU's env.regs order (target/i386/cpu.h R_EAX ...).
_GPRS = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
         "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
_SEGS = ("es", "cs", "ss", "ds", "fs", "gs")


class SnapshotDump(Dump):
    format = "qemu-migration"

    def __init__(self, source: Source, *, base: int = 0, container: str = "migration stream",
                 progress: Callable[[int, int], None] | None = None,
                 stream: MigrationStream | None = None) -> None:
        super().__init__(source.path)
        self.source = source
        self.container = container
        self.stream = stream if stream is not None else _indexed(source, base, container, progress)
        self.warnings.extend(self.stream.warnings)
        block = next((self.stream.blocks[n] for n in MAIN_RAM_BLOCKS if n in self.stream.blocks), None)
        if block is None:
            blocks = ", ".join(self.stream.blocks) or "none"
            raise DumpFormatError(source.path, base, f"no main RAM block in the stream (blocks: {blocks})")
        self.ram = block
        self.mappings: list[GpaMapping] = pc_ram_layout(self.stream.machine_type, block.length)
        self._starts = [m.gpa for m in self.mappings]
        self.cpus = self._cpus()
        self.vmcoreinfo = find_vmcoreinfo(self)
        self.header = {
            "container": container,
            "machine_type": self.stream.machine_type,
            "ram_block": f"{block.name} ({block.length >> 20} MiB)",
            "ram_blocks": len(self.stream.blocks),
            "device_sections": len(self.stream.sections),
            "pages_sent": sum(1 for p in block.pages if p),
            "complete": self.stream.complete,
        }

    @property
    def format_description(self) -> str:
        return f"QEMU {self.container} ({self.stream.machine_type or 'unknown machine'})"

    # -- vCPUs --------------------------------------------------------------

    def _cpus(self) -> list[CpuState]:
        out: list[CpuState] = []
        for sec in sorted((s for s in self.stream.sections if s.idstr == "cpu"), key=lambda s: s.instance_id):
            desc = self.stream.vmdesc_device("cpu", sec.instance_id)
            if desc is None:
                self.warnings.append(f"cpu {sec.instance_id}: no description in the stream, no registers")
                continue
            values: dict[str, int] = {}
            pos = sec.offset
            for name, size in vmsd_leaves(desc):
                if size in (1, 2, 4, 8) and pos + size <= sec.offset + sec.size:
                    values[name] = int.from_bytes(self.source.read(pos, size, "cpu state"), "big")
                pos += size
            regs: dict[str, int] = {}
            for i, r in enumerate(_GPRS):
                if f"env.regs[{i}]" in values:
                    regs[r] = values[f"env.regs[{i}]"]
            for src, dst in (("env.eip", "rip"), ("env.eflags", "rflags"), ("env.efer", "efer"),
                             ("env.kernelgsbase", "kernel_gs_base")):
                if src in values:
                    regs[dst] = values[src]
            for i in (0, 2, 3, 4):
                if f"env.cr[{i}]" in values:
                    regs[f"cr{i}"] = values[f"env.cr[{i}]"]
            for table in ("ldt", "tr", "gdt", "idt"):  # the descriptor tables' bases (crash finds KASLR by the IDT)
                if f"env.{table}.base" in values:
                    regs[f"{table}_base"] = values[f"env.{table}.base"]
            for i, seg in enumerate(_SEGS):
                if f"env.segs[{i}].selector" in values:
                    regs[seg] = values[f"env.segs[{i}].selector"]
                if seg in ("fs", "gs") and f"env.segs[{i}].base" in values:
                    regs[f"{seg}_base"] = values[f"env.segs[{i}].base"]
            out.append(CpuState(cpu=sec.instance_id, registers=regs, sources=["QEMU migration cpu section"]))
        return out

    # -- memory -------------------------------------------------------------

    def ranges(self) -> list[PhysRange]:
        return [PhysRange(m.gpa, m.gpa + m.size) for m in self.mappings]

    def _block_offset(self, paddr: int) -> tuple[int, int] | None:
        i = bisect.bisect_right(self._starts, paddr) - 1
        if i < 0:
            return None
        m = self.mappings[i]
        if paddr >= m.gpa + m.size:
            return None
        return m.offset + (paddr - m.gpa), m.gpa + m.size - paddr

    def page_state(self, pfn: int) -> PageState:
        where = self._block_offset(pfn * PAGE_SIZE)
        if where is None:
            return PageState.ABSENT
        return PageState.PRESENT if self.ram.pages[where[0] // PAGE_SIZE] else PageState.EXCLUDED

    def _read_chunk(self, paddr: int, maxlen: int) -> bytes:
        where = self._block_offset(paddr)
        if where is None:
            raise OutsideDump(paddr)
        offset, _left = where
        entry = self.ram.pages[offset // PAGE_SIZE]
        within = offset % PAGE_SIZE
        n = min(maxlen, PAGE_SIZE - within)
        if entry > 0:
            return self.source.read(entry + within, n, "RAM page")
        if entry < 0:
            return bytes([-(entry + 1) & 0xFF]) * n  # a ZERO record's fill byte
        raise PageExcluded(paddr, detail="the stream never sent this page")

    def close(self) -> None:
        self.source.close()


def _indexed(source: Source, base: int, container: str,
             progress: Callable[[int, int], None] | None) -> MigrationStream:
    """The stream's index, from the cache when this file was indexed before."""
    from . import index_cache

    key = index_cache.cache_key(source.path, base, container)
    if key is not None:
        cached = index_cache.load(key)
        if cached is not None:
            return cached
    stream = parse_stream(source, base, progress)
    if key is not None:
        index_cache.save(key, stream)
    return stream


def find_vmcoreinfo(dump: Dump) -> VmcoreInfo | None:
    """VMCOREINFO from the guest's memory, when the guest has QEMU's
    vmcoreinfo device: its state (the ``vmcoreinfo`` section) holds the
    guest-physical address and size of the note the guest wrote."""
    stream: MigrationStream | None = getattr(dump, "stream", None)
    if stream is None:
        return None
    sec = stream.device("vmcoreinfo", 0)
    desc = stream.vmdesc_device("vmcoreinfo", 0)
    if sec is None or desc is None:
        return None
    values: dict[str, bytes] = {}
    pos = sec.offset
    src: Source = getattr(dump, "source")
    for name, size in vmsd_leaves(desc):
        values[name] = src.read(pos, size, "vmcoreinfo state")
        pos += size
    # hw/misc/vmcoreinfo.c migrates guest_format, size and paddr as plain
    # (big-endian on the wire) integers.
    try:
        if values.get("has_vmcoreinfo", b"\1") == b"\0":
            return None
        paddr = int.from_bytes(values["vmcoreinfo.paddr"], "big")
        size = int.from_bytes(values["vmcoreinfo.size"], "big")
    except KeyError:
        return None
    if not 0 < size <= 1 << 16:
        return None
    try:
        note = dump.read_phys(paddr, size)
    except Exception:  # noqa: BLE001 - an unreadable note is just no VMCOREINFO
        return None
    # An ELF note: namesz, descsz, type, "VMCOREINFO\0" padded, then the text.
    if len(note) < 12:
        return None
    namesz, descsz, _t = struct.unpack_from("<III", note, 0)
    off = 12 + ((namesz + 3) & ~3)
    if note[12:12 + namesz].rstrip(b"\0") != b"VMCOREINFO" or off + descsz > len(note):
        return None
    return VmcoreInfo.from_bytes(note[off:off + descsz])
