"""Xen's own symbol table, found in a dump's memory without xen-syms.

Xen keeps a compressed symbol table in its image for its backtraces, as
Linux does with kallsyms.  The generator (xen/tools/symbols.c, 4.17) writes
it into ``.rodata`` as one assembler file, in this order, each label aligned
by ``ALGN`` (``.align 4`` when SYMBOLS_ORIGIN is defined, as on x86 where
xen/arch/x86/include/asm/config.h sets it to XEN_VIRT_START; ``.align 8`` and
64-bit ``symbols_addresses`` otherwise):

* ``symbols_offsets``: u32 per symbol, address - SYMBOLS_ORIGIN, sorted by
  address (``--sort``);
* ``symbols_num_syms``: u32, the number of symbols N;
* ``symbols_names``: per symbol a length byte, then that many token indexes;
  the expanded text is the nm type letter followed by the name, local
  symbols as ``path/file.c#name``;
* ``symbols_markers``: u32 per 256 symbols, the offset in ``symbols_names``
  of symbols 0, 256, 512, ...;
* ``symbols_token_table``: 256 NUL-terminated tokens;
* ``symbols_token_index``: 256 u16 offsets of the tokens in the table;
* with CONFIG_FAST_SYMBOL_LOOKUP (``--sort-by-name``) ``symbols_sorted_offsets``:
  N pairs of u32 (offset in ``symbols_names``, index in ``symbols_offsets``)
  sorted by name.

xen/common/symbols.c reads them: ``symbols_expand_symbol`` drops the first
character (the type), ``symbols_lookup`` binary-searches the addresses and
steps back to the first alias.

The scan: find 256 NUL-terminated printable tokens followed by a u16 index
that describes exactly them; walk back over the markers (strictly
increasing, the first one 0); find the u32 symbol count in front of the
names such that the names, walked length byte by length byte, hit every
marker and end where the markers begin; the offsets in front of the count
must be sorted.  Every name must decode to printable text with a type
letter.  With CONFIG_FAST_SYMBOL_LOOKUP the name-sorted pairs after the
index are checked too (``tables`` says whether they were found).

Candidates for the token table come first from quick probes (``a\0b\0c\0d\0``
and the like, as the single-character tokens sit at their own codes), then
from a regex scan for long runs of NUL-terminated printable strings; the
image is read a MiB at a time as the scan goes, so a find stops the reading.
Everything is bounded: the range read (``MAX_IMAGE``), the symbols
(``MAX_SYMBOLS``), the candidates (``MAX_CANDIDATES``) and the total work
(``MAX_WORK``); unreadable pages only make candidates that touch them fail.
"""

from __future__ import annotations

import itertools
import re
import struct
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence

from ..errors import MemoryFault, VmcrashError
from .hypervisor import XEN_VIRT_START

__all__ = ["MAX_IMAGE", "MAX_SYMBOLS", "XenSymbols", "find_xen_symbols"]

MAX_SYMBOLS = 1 << 20
MAX_IMAGE = 64 << 20          # bytes of image scanned at most
MAX_NAME = 1024               # longest expanded name accepted
LAST_TEXT_SPAN = 1 << 20      # how far past a last symbol that is a function symbolize goes
MAX_CANDIDATES = 4096         # token-table ends tried at most
MAX_FULL_CHECKS = 16          # symbol counts fully checked per marker table
MAX_WORK = 1 << 22            # markers, names and pairs examined in all, then give up
PAGE = 4096
CHUNK = 1 << 20
OVERLAP = 64 << 10            # more than a token table (256 tokens of < 128 bytes)
NM_TYPES = frozenset("AaBbCDdGgIiNnpRrSsTtUuVvWw?")
# 256 NUL-terminated printable tokens: a run of at least 48 of them, nonempty.
_TOKEN_RUN = re.compile(rb"[\x21-\x7e]{1,127}+\x00(?:[\x21-\x7e]{1,127}+\x00){47,}")
_TOKENS = re.compile(rb"(?:[\x21-\x7e]{1,127}+\x00)*")
# Single-character tokens real tables have (each character the names use is
# its own token, at its own code): a quick first guess before the full scan.
_PROBES = (b"a\x00b\x00c\x00d\x00", b"A\x00B\x00C\x00D\x00", b"0\x001\x002\x003\x00")


class XenSymbols:
    """Xen's symbols: ``lookup`` by name, ``symbolize`` an address.

    Names are as Xen prints them: globals bare, locals as
    ``path/file.c#name``.  ``lookup`` also takes a local's bare name when
    that is unambiguous (all symbols of that bare name at one address)."""

    def __init__(self, addresses: Sequence[int], names: Sequence[str], types: Sequence[str] = "",
                 end: int | None = None, tables: dict[str, int] | None = None) -> None:
        if len(addresses) != len(names):
            raise ValueError("addresses and names differ in length")
        order = sorted(range(len(addresses)), key=lambda i: addresses[i])  # stable: keeps Xen's alias order
        self._addrs = [addresses[i] for i in order]
        self._names = [names[i] for i in order]
        self._types = [types[i] if i < len(types) else "?" for i in order]
        if end is None:
            # With --all-symbols the last symbol is an end marker (_end,
            # __2M_rwdata_end); a table of text only ends in a function,
            # whose size the table does not give.
            end = 0 if not self._addrs else self._addrs[-1] + (LAST_TEXT_SPAN if self._types[-1] in "tT" else 1)
        self.end = end
        self.tables = dict(tables or {})  # where the tables were found: symbols_names -> address, ...
        self._by_name: dict[str, int] = {}
        self._by_bare: dict[str, set[int]] = {}
        for a, n in zip(self._addrs, self._names):
            self._by_name.setdefault(n, a)
            self._by_bare.setdefault(bare_name(n), set()).add(a)

    def __len__(self) -> int:
        return len(self._addrs)

    def __iter__(self) -> Iterator[tuple[int, str, str]]:
        """(address, nm type letter, name), by address."""
        return iter(zip(self._addrs, self._types, self._names))

    def lookup(self, name: str) -> int | None:
        """The address of the symbol ``name`` (Xen's full name, or a bare
        name that means one address), else None."""
        a = self._by_name.get(name)
        if a is not None:
            return a
        addrs = self._by_bare.get(bare_name(name))
        if addrs is not None and len(addrs) == 1:
            return next(iter(addrs))
        return None

    def lookup_all(self, name: str) -> list[int]:
        """Every address a symbol of this bare name has (sorted)."""
        return sorted(self._by_bare.get(bare_name(name), ()))

    def symbolize(self, addr: int) -> tuple[str, int] | None:
        """(name, offset) of the symbol at or below ``addr``, the first alias
        as Xen would print it; None below the first symbol or at/after ``end``
        (by default just past the last symbol, an end marker such as ``_end``,
        or LAST_TEXT_SPAN past it when that is a function)."""
        if not self._addrs or addr >= self.end:
            return None
        i = bisect_right(self._addrs, addr) - 1
        if i < 0:
            return None
        while i and self._addrs[i - 1] == self._addrs[i]:
            i -= 1
        return self._names[i], addr - self._addrs[i]

    def is_text(self, addr: int) -> bool:
        """Whether ``addr`` is inside a function (nm type t or T)."""
        if not self._addrs or addr >= self.end:
            return False
        i = bisect_right(self._addrs, addr) - 1
        return i >= 0 and self._types[i] in "tT"

    def aliases(self, addr: int) -> list[str]:
        """All names at exactly ``addr``."""
        i = bisect_right(self._addrs, addr)
        out = []
        while i and self._addrs[i - 1] == addr:
            i -= 1
            out.append(self._names[i])
        return out[::-1]


def bare_name(name: str) -> str:
    """``drivers/char/console.c#conring`` -> ``conring``."""
    return name.rpartition("#")[2]


class _Bad(Exception):
    """A candidate does not hold up (internal)."""


class _GiveUp(Exception):
    """The scan has done all the work it may (internal)."""


class _Image:
    """The image range, read a chunk at a time as the scan gets there,
    page-tolerant: unreadable pages are remembered and any use of them
    rejects the candidate."""

    def __init__(self, read: Callable[[int, int], bytes], start: int, end: int) -> None:
        self.start = start
        self.end = end
        self.read = read
        self.missing: set[int] = set()
        self.loaded: set[int] = set()
        self.buf = bytearray(end - start)
        self.work = 0

    def spend(self, units: int) -> None:
        self.work += units
        if self.work > MAX_WORK:
            raise _GiveUp

    def load(self, a: int, b: int) -> None:
        """Make sure ``[a, b)`` (clamped to the image) has been read."""
        a, b = max(a, self.start), min(b, self.end)
        for ci in range((a - self.start) // CHUNK, (b - self.start + CHUNK - 1) // CHUNK):
            if ci not in self.loaded:
                self.loaded.add(ci)
                lo = self.start + ci * CHUNK
                self._fill(self.read, self.buf, lo, min(self.end, lo + CHUNK))

    def _fill(self, read: Callable[[int, int], bytes], buf: bytearray, a: int, b: int) -> None:
        while a < b:
            try:
                self._store(read, buf, a, b)
                return
            except MemoryFault as e:
                fault = e.address if a <= e.address < b else a
            except (VmcrashError, _Bad):  # no address to go by: a page at a time
                self._pages(read, buf, a, b)
                return
            page = max(a, fault & ~(PAGE - 1))
            if page > a:  # what comes before the fault: in one read, else a page at a time
                try:
                    self._store(read, buf, a, page)
                except (VmcrashError, _Bad):
                    self._pages(read, buf, a, page)
            self.missing.add(page // PAGE)
            a = (page & ~(PAGE - 1)) + PAGE

    def _pages(self, read: Callable[[int, int], bytes], buf: bytearray, a: int, b: int) -> None:
        while a < b:
            nxt = min(b, (a & ~(PAGE - 1)) + PAGE)
            try:
                self._store(read, buf, a, nxt)
            except (VmcrashError, _Bad):
                self.missing.add(a // PAGE)
            a = nxt

    def _store(self, read: Callable[[int, int], bytes], buf: bytearray, a: int, b: int) -> None:
        data = read(a, b - a)
        if len(data) != b - a:
            raise _Bad
        buf[a - self.start:b - self.start] = data

    def get(self, addr: int, size: int) -> bytes:
        if size < 0 or addr < self.start or addr + size > self.end:
            raise _Bad
        self.load(addr, addr + size)
        if self.missing and size:
            for p in range(addr // PAGE, (addr + size - 1) // PAGE + 1):
                if p in self.missing:
                    raise _Bad
        off = addr - self.start
        return bytes(memoryview(self.buf)[off:off + size])

    def u32(self, addr: int) -> int:
        return int.from_bytes(self.get(addr, 4), "little")


def find_xen_symbols(read: Callable[[int, int], bytes], image_start: int, image_end: int,
                     origin: int = XEN_VIRT_START) -> XenSymbols | None:
    """Xen's symbol table, found in ``[image_start, image_end)`` of Xen's
    virtual memory (``read(vaddr, size)``, raising MemoryFault where
    unreadable); ``origin`` is SYMBOLS_ORIGIN (XEN_VIRT_START on x86).
    None when no consistent table is found."""
    image_start = max(0, image_start)
    image_end = min(image_end, image_start + MAX_IMAGE, 1 << 64)
    if image_end - image_start < 1024:
        return None
    img = _Image(read, image_start, image_end)
    tried: set[int] = set()
    for end_of_tokens in _token_table_ends(img):
        if end_of_tokens in tried:
            continue
        if len(tried) >= MAX_CANDIDATES:
            break
        tried.add(end_of_tokens)
        try:
            return _from_token_table_end(img, end_of_tokens, origin)
        except (_Bad, struct.error, IndexError, ValueError, UnicodeDecodeError):
            continue
        except _GiveUp:
            return None
    return None


def _token_table_ends(img: _Image) -> Iterator[int]:
    """Where a token table may end (just past its last NUL): quick probes
    first, then every long run of NUL-terminated printable strings; a chunk
    at a time (with overlap), so that a find stops the reading early."""
    buf = img.buf
    size = img.end - img.start
    windows = [(max(0, lo - OVERLAP), min(size, lo + CHUNK)) for lo in range(0, size, CHUNK)]
    for lo, hi in windows:
        img.load(img.start + lo, img.start + hi + OVERLAP)
        for probe in _PROBES:
            pos = buf.find(probe, lo, hi)
            n = 0
            while pos >= 0 and n < 16:
                yield img.start + _run_end(buf, pos)
                pos = buf.find(probe, pos + 1, hi)
                n += 1
    for lo, hi in windows:
        if all(p in img.missing for p in range((img.start + lo) // PAGE, (img.start + hi - 1) // PAGE + 1)):
            continue
        for m in _TOKEN_RUN.finditer(buf, lo, hi):
            yield img.start + m.end()


def _run_end(buf: bytes | bytearray, pos: int) -> int:
    """Past the last of the NUL-terminated printable tokens from ``pos`` on."""
    m = _TOKENS.match(buf, pos, min(len(buf), pos + 256 * 128))
    return m.end() if m else pos


def _from_token_table_end(img: _Image, end: int, origin: int) -> XenSymbols:
    # The index follows the table after 0-3 (or 0-7) bytes of alignment padding.
    for index_at in range((end + 3) & ~3, end + 12, 4):
        try:
            tokens, table_at, _index = _tokens(img, index_at)
        except _Bad:
            continue
        for markers_end in (table_at, table_at - 4):
            try:
                return _from_markers_end(img, markers_end, tokens, table_at, index_at, origin)
            except _Bad:
                continue
    raise _Bad


def _tokens(img: _Image, index_at: int) -> tuple[list[str], int, tuple[int, ...]]:
    """The 256 tokens whose u16 index is at ``index_at``, and where they start."""
    index = struct.unpack("<256H", img.get(index_at, 512))
    if index[0] != 0 or any(not 1 <= b - a <= 128 for a, b in itertools.pairwise(index)):
        raise _Bad
    # The last token ends with a NUL, then 0-3 (0-7 with .align 8) bytes of padding.
    for pad in range(8):
        last_nul = index_at - pad - 1
        if last_nul < img.start or img.get(last_nul, 1) != b"\0":
            continue
        raw_tail = img.get(max(img.start, last_nul - 128), last_nul - max(img.start, last_nul - 128))
        last_start = last_nul - (len(raw_tail) - raw_tail.rfind(b"\0") - 1) if b"\0" in raw_tail else None
        if last_start is None:
            continue
        table_at = last_start - index[255]
        if table_at % 4 or table_at < img.start:
            continue
        raw = img.get(table_at, last_nul + 1 - table_at)
        bounds = list(index) + [len(raw)]
        tokens = []
        for a, b in itertools.pairwise(bounds):
            tok = raw[a:b - 1]
            if raw[b - 1] != 0 or (tok and not all(0x21 <= c <= 0x7E for c in tok)):
                break
            tokens.append(tok.decode("ascii"))
        else:
            if len(set(tokens)) < 64:  # distinct substrings, not filler
                continue
            return tokens, table_at, index
    raise _Bad


def _from_markers_end(img: _Image, markers_end: int, tokens: list[str], table_at: int, index_at: int,
                      origin: int) -> XenSymbols:
    # Markers: strictly increasing u32s, the first 0; at least 2 bytes a symbol.
    markers: list[int] = []
    at = markers_end
    while True:
        at -= 4
        img.spend(1)
        v = img.u32(at)
        # 256 symbols between markers, each 2 to 256 bytes.
        if markers and not 256 * 2 <= markers[-1] - v <= 256 * 256:
            raise _Bad
        markers.append(v)
        if v == 0:
            break
        if len(markers) > MAX_SYMBOLS // 256:
            raise _Bad
    markers.reverse()
    markers_at = at
    m = len(markers)
    last = markers[-1]
    # The names begin 4-aligned; the count in front of them (u32, or u32 +
    # 4 bytes of padding with 64-bit addresses) says how many follow.
    low = max(img.start + 4, markers_at - last - 256 * 256 - 8)
    s = (markers_at - last - 2) & ~3
    checks = 0
    while s >= low and checks < MAX_FULL_CHECKS:
        img.spend(1)
        for width in (4, 8):
            count_at = s - 4 if width == 4 else s - 8
            try:
                if width == 8 and (s % 8 or markers_at % 8 or img.u32(s - 4) != 0):  # .align 8
                    continue
                n = img.u32(count_at)
                if not 0 < n <= MAX_SYMBOLS or (n + 255) >> 8 != m:
                    continue
                checks += 1
                return _from_names(img, s, n, count_at, width, markers, markers_at, tokens, table_at,
                                   index_at, origin)
            except _Bad:
                continue
        s -= 4
    raise _Bad


def _from_names(img: _Image, names_at: int, n: int, count_at: int, width: int, markers: list[int],
                markers_at: int, tokens: list[str], table_at: int, index_at: int, origin: int) -> XenSymbols:
    # Quick: the symbols after the last marker end where the markers begin.
    raw_end = markers_at
    pos = markers[-1]
    size = markers_at - names_at
    if pos >= size:
        raise _Bad
    raw = img.get(names_at, size)
    for _ in range(n - 256 * (len(markers) - 1)):
        if pos >= size or raw[pos] == 0:
            raise _Bad
        pos += raw[pos] + 1
    if not 0 <= raw_end - (names_at + pos) <= 3 + (width == 8) * 4:
        raise _Bad
    # Full: every marker hit, every name decodes to a type letter and printable text.
    img.spend(n)
    names: list[str] = []
    types: list[str] = []
    stream: list[int] = []
    pos = 0
    for i in range(n):
        if i & 0xFF == 0 and markers[i >> 8] != pos:
            raise _Bad
        length = raw[pos]
        if not length or pos + 1 + length > size:
            raise _Bad
        text = "".join(tokens[c] for c in raw[pos + 1:pos + 1 + length])
        if len(text) < 2 or len(text) > MAX_NAME or text[0] not in NM_TYPES:
            raise _Bad
        stream.append(pos)
        types.append(text[0])
        names.append(text[1:])
        pos += length + 1
    # Addresses in front of the count, sorted.
    if width == 4:
        offsets_at = count_at - 4 * n
        addrs = [origin + o for o in struct.unpack(f"<{n}I", img.get(offsets_at, 4 * n))]
    else:
        offsets_at = count_at - 8 * n
        addrs = list(struct.unpack(f"<{n}Q", img.get(offsets_at, 8 * n)))
    if any(b < a for a, b in itertools.pairwise(addrs)) or addrs[-1] >= 1 << 64:
        raise _Bad
    tables = {"symbols_offsets" if width == 4 else "symbols_addresses": offsets_at,
              "symbols_num_syms": count_at, "symbols_names": names_at, "symbols_markers": markers_at,
              "symbols_token_table": table_at, "symbols_token_index": index_at}
    sorted_at = _sorted_offsets(img, index_at + 512, n, stream, names)
    if sorted_at is not None:
        tables["symbols_sorted_offsets"] = sorted_at
    return XenSymbols(addrs, names, "".join(types), tables=tables)


def _sorted_offsets(img: _Image, at: int, n: int, stream: list[int], names: list[str]) -> int | None:
    """Where CONFIG_FAST_SYMBOL_LOOKUP's name-sorted (stream, index) pairs
    are, if they follow the token index and agree with the names."""
    for start in (at, (at + 7) & ~7):
        img.spend(n)
        try:
            pairs = struct.unpack(f"<{2 * n}I", img.get(start, 8 * n))
        except _Bad:
            continue
        prev = None
        for k in range(n):
            off, idx = pairs[2 * k], pairs[2 * k + 1]
            if idx >= n or stream[idx] != off:
                break
            # Sorted by name (strcmp on the bytes); ties broken by type.
            if prev is not None and names[idx].encode() < names[prev].encode():
                break
            prev = idx
        else:
            return start
    return None
