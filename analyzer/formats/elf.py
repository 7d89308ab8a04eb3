"""ELF cores: Linux kdump's /proc/vmcore (as saved by cp or ``makedumpfile
-E``) and QEMU's ``dump-guest-memory`` output.

Physical memory is the PT_LOAD segments by ``p_paddr``.  Bytes between
``p_filesz`` and ``p_memsz`` are pages the dump tool left out (excluded).
Segments may overlap physically: /proc/vmcore describes the kernel image
twice (through the kernel-text mapping and the direct map); the first
segment that covers an address serves it.
"""

from __future__ import annotations

import bisect
import io
from dataclasses import dataclass

from elftools.common.exceptions import ELFError, ELFParseError
from elftools.construct.core import ConstructError as ElftoolsConstructError
from elftools.elf.elffile import ELFFile

from ..dump import Dump, PageState, PhysRange, merge_adjacent
from ..errors import DumpFormatError, OutsideDump, PageExcluded, PageUnreadable
from ..notes import cpu_states_from_notes, parse_note_blob
from ..vmcoreinfo import VmcoreInfo
from .source import MAX_HEADER_READ, Source, SourceStream

__all__ = ["ElfDump", "probe", "open_elf"]

ELF_MAGIC = b"\x7fELF"
EM_NAMES = {"EM_X86_64": "x86_64", "EM_386": "i386", "EM_AARCH64": "aarch64",
            "EM_PPC64": "ppc64", "EM_S390": "s390x"}
#: Program headers needed per segment; a file claiming more than its size can
#: hold is corrupt.
PHDR_SIZE = 56


def probe(head: bytes) -> bool:
    """An ELF core with program headers (xendumps have none; see analyzer.xen)."""
    if len(head) < 64 or not head.startswith(ELF_MAGIC):
        return False
    if head[4] != 2:  # ELFCLASS64 only: x86-64 dumps
        return False
    e_type = int.from_bytes(head[16:18], "little")
    e_phnum = int.from_bytes(head[56:58], "little")
    return e_type == 4 and e_phnum > 0  # ET_CORE


@dataclass(frozen=True)
class _Piece:
    """A physically contiguous part of one PT_LOAD, not overlapped by another."""

    start: int         # first physical address
    end: int           # one past the last (p_memsz)
    offset: int        # file offset of ``start``
    present_end: int   # data is in the file below this address
    filesz_end: int    # [present_end, filesz_end): should be in the file, but is cut off


class ElfDump(Dump):
    format = "elf"

    def __init__(self, source: Source) -> None:
        super().__init__(source.path)
        self.source = source
        self._pieces: list[_Piece] = []
        self._starts: list[int] = []
        self.variant = "ELF core"
        try:
            self._parse()
        except (ELFError, ELFParseError, ElftoolsConstructError) as e:
            raise DumpFormatError(source.path, None, f"bad ELF header: {e}") from None

    # -- opening --------------------------------------------------------------

    def _parse(self) -> None:
        src = self.source
        elf = ELFFile(io.BufferedReader(SourceStream(src)))
        hdr = elf.header
        self.arch = EM_NAMES.get(str(hdr["e_machine"]), str(hdr["e_machine"]))
        phnum = elf.num_segments()
        phoff = hdr["e_phoff"]
        if hdr["e_phentsize"] != PHDR_SIZE:
            raise DumpFormatError(src.path, 54, f"program header size {hdr['e_phentsize']}, expected {PHDR_SIZE}")
        if phoff + phnum * PHDR_SIZE > src.size:
            raise DumpFormatError(
                src.path, phoff,
                f"{phnum} program headers do not fit in the file ({src.size:#x} bytes; truncated?)")
        loads: list[tuple[int, int, int, int]] = []
        for i in range(phnum):
            ph = elf.get_segment(i).header
            ptype = ph["p_type"]
            if ptype == "PT_NOTE":
                self._read_notes(ph["p_offset"], ph["p_filesz"], phoff + i * PHDR_SIZE)
            elif ptype == "PT_LOAD" and ph["p_memsz"]:
                loads.append((ph["p_paddr"], ph["p_memsz"], ph["p_filesz"], ph["p_offset"]))
        self._build_pieces(loads)
        self.cpus = cpu_states_from_notes(self.notes)
        for n in self.notes:
            if n.name == "VMCOREINFO":
                self.vmcoreinfo = VmcoreInfo.from_bytes(n.desc)
                break
        if self.vmcoreinfo and self.vmcoreinfo.page_size:
            self.page_size = self.vmcoreinfo.page_size
        names = {n.name for n in self.notes}
        if "QEMU" in names:
            self.variant = "QEMU dump-guest-memory ELF"
        elif "Xen" in names:
            self.variant = "Xen hypervisor kdump ELF"
        elif "VMCOREINFO" in names:
            self.variant = "Linux kdump ELF (/proc/vmcore)"
        self.header = {
            "elf_class": 64,
            "program_headers": phnum,
            "load_segments": len(loads),
            "notes": len(self.notes),
        }

    def _read_notes(self, offset: int, size: int, phdr_offset: int) -> None:
        if size > MAX_HEADER_READ:
            self.warnings.append(f"PT_NOTE at header {phdr_offset:#x} claims {size} bytes; ignored")
            return
        avail = max(0, min(size, self.source.size - offset))
        if avail < size:
            self.warnings.append(
                f"PT_NOTE at file offset {offset:#x} is cut off after {avail} of {size} bytes")
        if avail:
            self.notes.extend(parse_note_blob(self.source.read(offset, avail, "notes"), offset))

    def _build_pieces(self, loads: list[tuple[int, int, int, int]]) -> None:
        file_size = self.source.size
        covered = 0
        truncated = 0
        for paddr, memsz, filesz, offset in sorted(loads, key=lambda t: (t[0], -t[1])):
            end = paddr + memsz
            start = max(paddr, covered)
            if start >= end:
                continue  # wholly inside an earlier segment
            filesz = min(filesz, memsz)
            filesz_end = paddr + filesz
            present_end = paddr + max(0, min(filesz, file_size - offset))
            if present_end < filesz_end:
                truncated += filesz_end - present_end
            self._pieces.append(_Piece(
                start=start, end=end, offset=offset + (start - paddr),
                present_end=max(start, present_end), filesz_end=max(start, filesz_end)))
            covered = end
        self._starts = [p.start for p in self._pieces]
        if truncated:
            self.warnings.append(
                f"file is truncated: {truncated} bytes of PT_LOAD data are missing (file ends at {file_size:#x})")

    # -- the Dump interface ---------------------------------------------------

    @property
    def format_description(self) -> str:
        return self.variant

    def ranges(self) -> list[PhysRange]:
        return merge_adjacent((p.start, p.end) for p in self._pieces)

    def _piece(self, paddr: int) -> _Piece | None:
        i = bisect.bisect_right(self._starts, paddr) - 1
        if i >= 0 and paddr < self._pieces[i].end:
            return self._pieces[i]
        return None

    def page_state(self, pfn: int) -> PageState:
        addr = pfn * self.page_size
        p = self._piece(addr)
        if p is None:
            return PageState.ABSENT
        return PageState.PRESENT if addr < p.present_end else PageState.EXCLUDED

    def _read_chunk(self, paddr: int, maxlen: int) -> bytes:
        p = self._piece(paddr)
        if p is None:
            raise OutsideDump(paddr)
        if paddr < p.present_end:
            n = min(maxlen, p.present_end - paddr)
            return self.source.read(p.offset + (paddr - p.start), n)
        if paddr < p.filesz_end:
            raise PageUnreadable(paddr, detail=f"{self.path} is cut off before this data")
        raise PageExcluded(paddr)

    def close(self) -> None:
        self.source.close()


def open_elf(source: Source) -> ElfDump:
    return ElfDump(source)
