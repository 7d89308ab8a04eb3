"""makedumpfile's compressed kdump ("KDUMP   "), as makedumpfile and QEMU's
``dump-guest-memory -z/-l/-s`` write it.

Layout (makedumpfile's diskdump_mod.h), in blocks of ``block_size`` bytes:

    block 0                 struct disk_dump_header
    block 1 ...             struct kdump_sub_header (sub_hdr_size blocks),
                            then the VMCOREINFO text, the ELF notes and the
                            erase info it points to
    then bitmap_blocks      1st bitmap (pages that are RAM), 2nd bitmap (pages
                            that are dumped), each half of the area
    then                    one struct page_desc per dumped page, in pfn order
    then                    the page data

A page is dumped when its bit is set in the 2nd bitmap; its descriptor is
the one whose index is the number of dumped pages below it.  RAM pages that
are not dumped were excluded by the dump level.
"""

from __future__ import annotations

from collections import OrderedDict

from construct import Bytes, Int32sl, Int32ul, Int64sl, Int64ul, Padding, Struct
from construct.core import ConstructError

from ..dump import Dump, PageState, PhysRange
from ..errors import DumpFormatError, OutsideDump, PageExcluded, PageUnreadable
from ..notes import cpu_states_from_notes, parse_note_blob
from ..vmcoreinfo import MAX_VMCOREINFO, VmcoreInfo
from .bitmap import PageBitmap
from .codecs import CODEC_NAMES, CodecError, decompress_page
from .source import MAX_HEADER_READ, Source

__all__ = ["KdumpDump", "probe", "DISK_DUMP_HEADER", "KDUMP_SUB_HEADER", "PAGE_DESC"]

KDUMP_SIGNATURE = b"KDUMP   "
DISKDUMP_SIGNATURE = b"DISKDUMP"

DUMP_DH_COMPRESSED_INCOMPLETE = 0x8
DUMP_DH_EXCLUDED_VMEMMAP = 0x10

_utsname = Struct(*[name / Bytes(65) for name in
                    ("sysname", "nodename", "release", "version", "machine", "domainname")])

#: struct disk_dump_header on a 64-bit dumping machine (464 bytes).
DISK_DUMP_HEADER = Struct(
    "signature" / Bytes(8),
    "header_version" / Int32sl,
    "utsname" / _utsname,
    Padding(6),  # struct timeval is 8-byte aligned
    "timestamp_sec" / Int64sl,
    "timestamp_usec" / Int64sl,
    "status" / Int32ul,
    "block_size" / Int32sl,
    "sub_hdr_size" / Int32sl,
    "bitmap_blocks" / Int32ul,
    "max_mapnr" / Int32ul,
    "total_ram_blocks" / Int32ul,
    "device_blocks" / Int32ul,
    "written_blocks" / Int32ul,
    "current_cpu" / Int32ul,
    "nr_cpus" / Int32sl,
)

#: struct kdump_sub_header; fields after ``split`` exist from the header
#: version noted beside them.
KDUMP_SUB_HEADER = Struct(
    "phys_base" / Int64ul,
    "dump_level" / Int32sl,
    "split" / Int32sl,
    "start_pfn" / Int64ul,          # v2
    "end_pfn" / Int64ul,            # v2
    "offset_vmcoreinfo" / Int64sl,  # v3
    "size_vmcoreinfo" / Int64ul,    # v3
    "offset_note" / Int64sl,        # v4
    "size_note" / Int64ul,          # v4
    "offset_eraseinfo" / Int64sl,   # v5
    "size_eraseinfo" / Int64ul,     # v5
    "start_pfn_64" / Int64ul,       # v6
    "end_pfn_64" / Int64ul,         # v6
    "max_mapnr_64" / Int64ul,       # v6
)

#: struct page_desc (24 bytes).
PAGE_DESC = Struct(
    "offset" / Int64sl,
    "size" / Int32ul,
    "flags" / Int32ul,
    "page_flags" / Int64ul,
)
_DESC_SIZE = PAGE_DESC.sizeof()

#: Decompressed pages kept in memory (bounded: 2048 pages of 4 KiB = 8 MiB).
PAGE_CACHE_PAGES = 2048


def probe(head: bytes) -> bool:
    return head[:8] in (KDUMP_SIGNATURE, DISKDUMP_SIGNATURE)


def _cstr(b: bytes) -> str:
    return b.split(b"\0", 1)[0].decode("utf-8", "replace")


class KdumpDump(Dump):
    format = "kdump"

    def __init__(self, source: Source, container: str = "") -> None:
        super().__init__(source.path)
        self.source = source
        #: "" or "flattened" when the kdump was rebuilt from makedumpfile -F.
        self.container = container
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._ranges: list[PhysRange] | None = None
        try:
            self._parse()
        except ConstructError as e:
            raise DumpFormatError(source.path, 0, f"bad kdump header: {e}") from None

    def _parse(self) -> None:
        src = self.source
        hdr = DISK_DUMP_HEADER.parse(src.read(0, DISK_DUMP_HEADER.sizeof(), "kdump header"))
        if hdr.signature == DISKDUMP_SIGNATURE:
            raise DumpFormatError(src.path, 0, "old diskdump (netdump) format is not supported; only makedumpfile's KDUMP")
        self.header_version = hdr.header_version
        self.machine = _cstr(hdr.utsname.machine)
        if self.machine not in ("x86_64", ""):
            raise DumpFormatError(src.path, 0x12 + 4 * 65, f"dump of a {self.machine!r} machine: only x86_64 is supported")
        bs = hdr.block_size
        if bs <= 0 or bs & (bs - 1) or bs > 1 << 16:
            raise DumpFormatError(src.path, 428, f"block size {bs} is not a power of two up to 64 KiB")
        if hdr.sub_hdr_size < 0 or hdr.sub_hdr_size > src.size // bs:
            raise DumpFormatError(src.path, 432, f"sub-header size of {hdr.sub_hdr_size} blocks does not fit the file")
        self.page_size = bs
        self.block_size = bs
        self.status = hdr.status
        self.nr_cpus = hdr.nr_cpus
        self.current_cpu = hdr.current_cpu
        self.timestamp = hdr.timestamp_sec
        self.release = _cstr(hdr.utsname.release)
        self.nodename = _cstr(hdr.utsname.nodename)

        sub = None
        if hdr.header_version >= 1 and hdr.sub_hdr_size > 0:
            sub_size = min(KDUMP_SUB_HEADER.sizeof(), hdr.sub_hdr_size * bs)
            raw = src.read(bs, sub_size, "kdump sub-header").ljust(KDUMP_SUB_HEADER.sizeof(), b"\0")
            sub = KDUMP_SUB_HEADER.parse(raw)
        self.phys_base = sub.phys_base if sub else None
        self.dump_level = sub.dump_level if sub else None
        max_mapnr = hdr.max_mapnr
        if sub is not None and hdr.header_version >= 6 and sub.max_mapnr_64:
            max_mapnr = sub.max_mapnr_64

        bitmap_off = (1 + hdr.sub_hdr_size) * bs
        bitmap_len = hdr.bitmap_blocks * bs
        if bitmap_off + bitmap_len > src.size:
            raise DumpFormatError(src.path, bitmap_off,
                                  f"bitmaps ({bitmap_len} bytes) run past the end of the file ({src.size:#x})")
        half = bitmap_len // 2
        if max_mapnr > half * 8:
            self.warnings.append(f"header claims {max_mapnr} pages but the bitmaps hold {half * 8}; using the bitmaps")
            max_mapnr = half * 8
        self.max_mapnr = max_mapnr
        self._bitmap1 = PageBitmap(lambda o, n: src.read(bitmap_off + o, n, "1st bitmap"), max_mapnr)
        self._bitmap2 = PageBitmap(lambda o, n: src.read(bitmap_off + half + o, n, "2nd bitmap"), max_mapnr)
        self._desc_off = bitmap_off + bitmap_len

        if sub is not None:
            self._read_extras(hdr.header_version, sub)
        self.cpus = cpu_states_from_notes(self.notes)
        if hdr.status & DUMP_DH_COMPRESSED_INCOMPLETE:
            self.warnings.append("makedumpfile marked this dump incomplete (it ran out of space): trailing pages are missing")
        self.header = {
            "header_version": hdr.header_version,
            "block_size": bs,
            "compression": self.codecs_in_header(),
            "dump_level": self.dump_level,
            "max_mapnr": max_mapnr,
            "nr_cpus": hdr.nr_cpus,
            "current_cpu": hdr.current_cpu,
            "timestamp": hdr.timestamp_sec,
            "utsname.release": self.release,
            "utsname.nodename": self.nodename,
        }
        if self.container:
            self.header["container"] = self.container

    def _read_extras(self, version: int, sub: object) -> None:
        src = self.source
        if version >= 3 and getattr(sub, "size_vmcoreinfo") and getattr(sub, "offset_vmcoreinfo") > 0:
            size = min(getattr(sub, "size_vmcoreinfo"), MAX_VMCOREINFO)
            try:
                self.vmcoreinfo = VmcoreInfo.from_bytes(src.read(getattr(sub, "offset_vmcoreinfo"), size, "VMCOREINFO"))
            except DumpFormatError as e:
                self.warnings.append(str(e))
        if version >= 4 and getattr(sub, "size_note") and getattr(sub, "offset_note") > 0:
            size = getattr(sub, "size_note")
            off = getattr(sub, "offset_note")
            if size > MAX_HEADER_READ:
                self.warnings.append(f"notes claim {size} bytes; ignored")
            else:
                try:
                    self.notes = parse_note_blob(src.read(off, size, "ELF notes"), off)
                except DumpFormatError as e:
                    self.warnings.append(str(e))
        if self.vmcoreinfo is None:
            for n in self.notes:
                if n.name == "VMCOREINFO":
                    self.vmcoreinfo = VmcoreInfo.from_bytes(n.desc)

    def codecs_in_header(self) -> str:
        names = [name for bit, name in CODEC_NAMES.items() if self.status & bit]
        return ",".join(names) if names else "none"

    # -- the Dump interface ---------------------------------------------------

    @property
    def format_description(self) -> str:
        flat = ", flattened" if self.container == "flattened" else ""
        return f"makedumpfile compressed kdump v{self.header_version} ({self.codecs_in_header()}{flat})"

    def ranges(self) -> list[PhysRange]:
        if self._ranges is None:
            ps = self.page_size
            self._ranges = [PhysRange(a * ps, b * ps) for a, b in self._bitmap1.runs()]
        return self._ranges

    def page_state(self, pfn: int) -> PageState:
        if self._bitmap2.test(pfn):
            return PageState.PRESENT
        if self._bitmap1.test(pfn):
            return PageState.EXCLUDED
        return PageState.ABSENT

    def dumped_pages(self) -> int:
        """Pages whose data is in the file."""
        return self._bitmap2.count()

    def _page(self, pfn: int, addr: int) -> bytes:
        """Page frame ``pfn``; faults name ``addr``, the address being read."""
        cached = self._cache.get(pfn)
        if cached is not None:
            self._cache.move_to_end(pfn)
            return cached
        if not self._bitmap2.test(pfn):
            if self._bitmap1.test(pfn):
                raise PageExcluded(addr)
            raise OutsideDump(addr)
        index = self._bitmap2.rank(pfn)
        desc_at = self._desc_off + index * _DESC_SIZE
        try:
            desc = PAGE_DESC.parse(self.source.read(desc_at, _DESC_SIZE, "page descriptor"))
        except DumpFormatError as e:
            raise PageUnreadable(addr, detail=f"its descriptor is missing: {e}") from None
        ps = self.page_size
        if desc.offset <= 0 or desc.size == 0 or desc.size > ps:
            raise PageUnreadable(addr, detail=(
                f"{self.path}: page descriptor at offset {desc_at:#x} is invalid "
                f"(data offset {desc.offset:#x}, size {desc.size})"))
        try:
            data = self.source.read(desc.offset, desc.size, "page data")
        except DumpFormatError as e:
            raise PageUnreadable(addr, detail=str(e)) from None
        if desc.flags & 0x27:  # any codec bit
            try:
                page = decompress_page(desc.flags, data, ps)
            except CodecError as e:
                raise PageUnreadable(addr, detail=f"{self.path} at offset {desc.offset:#x}: {e}") from None
        elif desc.size == ps:
            page = data
        else:
            raise PageUnreadable(addr, detail=(
                f"{self.path}: uncompressed page at offset {desc.offset:#x} is {desc.size} bytes, not {ps}"))
        self._cache[pfn] = page
        if len(self._cache) > PAGE_CACHE_PAGES:
            self._cache.popitem(last=False)
        return page

    def _read_chunk(self, paddr: int, maxlen: int) -> bytes:
        ps = self.page_size
        pfn, off = divmod(paddr, ps)
        page = self._page(pfn, paddr)
        return page[off:off + min(maxlen, ps - off)]

    def close(self) -> None:
        self._cache.clear()
        self.source.close()
