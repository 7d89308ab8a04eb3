"""``xl dump-core``'s ELF xendump: one Xen guest's memory and vCPUs.

An ELF core with no program headers, only sections (tools/libs/guest/xg_core.h):

    .note.Xen         notes named "Xen": HEADER (magic, nr_vcpus, nr_pages,
                      page_size), XEN_VERSION, FORMAT_VERSION
    .xen_prstatus     one struct vcpu_guest_context per vCPU
    .xen_shared_info  the guest's shared_info page
    .xen_p2m          PV guests: {u64 pfn, u64 gmfn} per dumped page
    .xen_pfn          HVM guests: u64 pfn per dumped page
    .xen_pages        the pages, in the order of .xen_p2m / .xen_pfn

Entries whose pfn or gmfn is ~0 (invalid) are skipped and counted in a
warning.  "Physical" memory here is the guest's own pseudo-physical
(pfn) space; a PV guest's page tables hold machine frames, which
:meth:`XenDump.read_machine` serves through the dump's own p2m.
"""

from __future__ import annotations

import bisect
import io
import struct
from array import array
from functools import cached_property

from elftools.common.exceptions import ELFError, ELFParseError
from elftools.construct.core import ConstructError as ElftoolsConstructError
from elftools.elf.elffile import ELFFile

from ..dump import Dump, PageState, PhysRange, pfn_runs
from ..errors import DumpFormatError, OutsideDump
from ..formats.source import MAX_HEADER_READ, Source, SourceStream
from ..notes import CpuState, parse_note_blob
from .vcpu_context import VCPU_GUEST_CONTEXT_X86_64, VGCF_ONLINE, context_registers

__all__ = ["XenDump", "probe", "XC_CORE_MAGIC", "XC_CORE_MAGIC_HVM"]

XC_CORE_MAGIC = 0xF00FEBED
XC_CORE_MAGIC_HVM = 0xF00FEBEE
INVALID = (1 << 64) - 1
NOTE_HEADER, NOTE_XEN_VERSION, NOTE_FORMAT_VERSION = 0x2000001, 0x2000002, 0x2000003
MAX_SECTIONS = 4096


def probe(head: bytes) -> bool:
    """An ELF core without program headers (and with sections): a xendump."""
    if len(head) < 64 or not head.startswith(b"\x7fELF") or head[4] != 2:
        return False
    e_type = int.from_bytes(head[16:18], "little")
    e_phnum = int.from_bytes(head[56:58], "little")
    e_shnum = int.from_bytes(head[60:62], "little")
    return e_type == 4 and e_phnum == 0 and e_shnum > 0


class XenDump(Dump):
    format = "xendump"

    def __init__(self, source: Source) -> None:
        super().__init__(source.path)
        self.source = source
        self.xen_version: str | None = None
        self.magic = 0
        try:
            self._parse()
        except (ELFError, ELFParseError, ElftoolsConstructError, struct.error) as e:
            raise DumpFormatError(source.path, None, f"bad xendump ELF: {e}") from None

    @property
    def is_hvm(self) -> bool:
        return self.magic == XC_CORE_MAGIC_HVM

    @property
    def format_description(self) -> str:
        kind = "HVM" if self.is_hvm else "PV"
        version = f", Xen {self.xen_version}" if self.xen_version else ""
        return f"Xen xl dump-core ELF ({kind} guest{version})"

    def _section(self, elf: ELFFile, name: str) -> tuple[int, int, int] | None:
        sec = elf.get_section_by_name(name)
        if sec is None:
            return None
        off, size = sec["sh_offset"], sec["sh_size"]
        if off + size > self.source.size:
            self.warnings.append(f"section {name} runs past the end of the file (truncated?)")
            size = max(0, self.source.size - off)
        return off, size, sec["sh_entsize"]

    def _parse(self) -> None:
        src = self.source
        elf = ELFFile(io.BufferedReader(SourceStream(src)))
        if elf.num_sections() > MAX_SECTIONS:
            raise DumpFormatError(src.path, 60, f"{elf.num_sections()} sections claimed")
        note = self._section(elf, ".note.Xen")
        if note is not None and note[1] <= MAX_HEADER_READ:
            self.notes = parse_note_blob(src.read(note[0], note[1], ".note.Xen"), note[0])
        nr_vcpus = 0
        for n in self.notes:
            if n.name != "Xen":
                continue
            if n.type == NOTE_HEADER and len(n.desc) >= 32:
                self.magic, nr_vcpus, nr_pages, page_size = struct.unpack_from("<QQQQ", n.desc)
                if page_size in (4096,):
                    self.page_size = page_size
            elif n.type == NOTE_XEN_VERSION and len(n.desc) >= 32:
                major, minor = struct.unpack_from("<QQ", n.desc)
                extra = n.desc[16:32].split(b"\0", 1)[0].decode("ascii", "replace")
                self.xen_version = f"{major}.{minor}{extra}"
        if self.magic not in (XC_CORE_MAGIC, XC_CORE_MAGIC_HVM):
            raise DumpFormatError(src.path, note[0] if note else None,
                                  "no Xen dump-core header note: not an xl dump-core file")
        pages = self._section(elf, ".xen_pages")
        if pages is None:
            raise DumpFormatError(src.path, None, "xendump has no .xen_pages section")
        self._pages_off = pages[0]
        npages = pages[1] // self.page_size
        # pfn -> index of the page in .xen_pages (sorted pfns + parallel indexes)
        pfns: list[tuple[int, int]] = []
        m2p: dict[int, int] = {}
        invalid = 0
        if self.is_hvm:
            table = self._section(elf, ".xen_pfn")
            entries = (table[1] // 8) if table else 0
            raw = array("Q", src.read(table[0], 8 * min(entries, npages), ".xen_pfn")) if table else array("Q")
            for i, pfn in enumerate(raw):
                if pfn == INVALID:
                    invalid += 1
                else:
                    pfns.append((pfn, i))
        else:
            table = self._section(elf, ".xen_p2m")
            entries = (table[1] // 16) if table else 0
            raw = array("Q", src.read(table[0], 16 * min(entries, npages), ".xen_p2m")) if table else array("Q")
            for i in range(len(raw) // 2):
                pfn, gmfn = raw[2 * i], raw[2 * i + 1]
                if pfn == INVALID or gmfn == INVALID:
                    invalid += 1
                    continue
                pfns.append((pfn, i))
                m2p[gmfn] = pfn
        if invalid:
            self.warnings.append(f"{invalid} page-table entries of the dump are invalid (~0) and were skipped")
        pfns.sort()
        self._pfns = array("Q", (p for p, _ in pfns))
        self._index = array("Q", (i for _, i in pfns))
        self.m2p = m2p
        self.p2m = {pfn: mfn for mfn, pfn in m2p.items()}
        self.cpus = self._vcpus(elf, nr_vcpus)
        self.header = {
            "guest": "HVM" if self.is_hvm else "PV",
            "xen_version": self.xen_version,
            "vcpus": nr_vcpus,
            "pages": len(self._pfns),
            "invalid_entries": invalid,
        }

    def _vcpus(self, elf: ELFFile, nr: int) -> list[CpuState]:
        sec = self._section(elf, ".xen_prstatus")
        if sec is None or not nr:
            return []
        size = sec[2] or (sec[1] // nr)
        if size < VCPU_GUEST_CONTEXT_X86_64.sizeof():
            self.warnings.append(f"vCPU contexts of {size} bytes: not x86-64 PV contexts, registers skipped")
            return []
        out = []
        for i in range(min(nr, sec[1] // size, 4096)):
            raw = self.source.read(sec[0] + i * size, VCPU_GUEST_CONTEXT_X86_64.sizeof(), "vCPU context")
            regs, flags = context_registers(raw)
            state = CpuState(cpu=i, registers=regs, sources=["Xen vcpu_guest_context"])
            if not flags & VGCF_ONLINE:
                state.sources.append("offline")
            out.append(state)
        return out

    # -- memory -------------------------------------------------------------

    def _page_index(self, pfn: int) -> int | None:
        i = bisect.bisect_left(self._pfns, pfn)
        if i < len(self._pfns) and self._pfns[i] == pfn:
            return int(self._index[i])
        return None

    def ranges(self) -> list[PhysRange]:
        return list(self._ranges)

    @cached_property
    def _ranges(self) -> list[PhysRange]:
        return pfn_runs(self._pfns, self.page_size)

    def page_state(self, pfn: int) -> PageState:
        return PageState.PRESENT if self._page_index(pfn) is not None else PageState.ABSENT

    def _read_chunk(self, paddr: int, maxlen: int) -> bytes:
        pfn, off = divmod(paddr, self.page_size)
        i = self._page_index(pfn)
        if i is None:
            raise OutsideDump(paddr, "guest-physical")
        n = min(maxlen, self.page_size - off)
        return self.source.read(self._pages_off + i * self.page_size + off, n, "guest page")

    def read_machine(self, maddr: int, size: int) -> bytes:
        """Read the guest's memory by machine address (PV page tables)."""
        out = bytearray()
        while size > 0:
            mfn, off = divmod(maddr, self.page_size)
            pfn = self.m2p.get(mfn)
            if pfn is None:
                raise OutsideDump(maddr, "machine-physical", "no page of this guest has that machine frame")
            n = min(size, self.page_size - off)
            out += self.read_phys(pfn * self.page_size + off, n)
            maddr += n
            size -= n
        return bytes(out)

    def close(self) -> None:
        self.source.close()
