"""makedumpfile's flattened format (``makedumpfile -F``, and QEMU's kdump
output): a dump written as a stream of (offset, size, data) records so it
can go through a pipe.  ``makedumpfile -R`` would rebuild the real file;
vmcrash instead indexes the records and serves reads from them in place,
so the dump inside (a compressed kdump or an ELF) opens as usual.

Layout (all integers big-endian):

    0       char signature[16] = "makedumpfile"; int64 type = 1; int64 version = 1
    4096    records: int64 offset; int64 size; size bytes of data
            ... until a record whose offset is -1

Indexing reads only the 16-byte record headers: O(records), not O(bytes).
A later record wins where two overlap, as when the stream is replayed.
"""

from __future__ import annotations

import bisect
import struct

from ..errors import DumpFormatError
from .source import FileSource

__all__ = ["FlattenedSource", "probe"]

SIGNATURE = b"makedumpfile"
HEADER_SIZE = 4096
TYPE_FLAT_HEADER = 1
END_FLAG = -1
_REC = struct.Struct(">qq")


def probe(head: bytes) -> bool:
    return head[:16].rstrip(b"\0") == SIGNATURE


class FlattenedSource:
    """The rebuilt file a flattened dump stands for, as a read-only :class:`Source`.

    Bytes never written by any record read as zeros (as in the file ``-R``
    would rebuild, which is sparse there).
    """

    def __init__(self, base: FileSource) -> None:
        self.base = base
        self.path = base.path
        head = base.read(0, 32, "flattened header")
        ftype, version = struct.unpack(">qq", head[16:32])
        if ftype != TYPE_FLAT_HEADER:
            raise DumpFormatError(self.path, 16, f"flattened header type {ftype}, expected {TYPE_FLAT_HEADER}")
        self.version = version
        #: Sorted, non-overlapping (logical start, logical end, file offset of start).
        self._segments: list[tuple[int, int, int]] = []
        self._starts: list[int] = []
        self.records = 0
        self.complete = False
        self.size = 0
        self._index()

    def _index(self) -> None:
        base = self.base
        pos = HEADER_SIZE
        records: list[tuple[int, int, int]] = []
        while pos + _REC.size <= base.size:
            offset, size = _REC.unpack(base.read(pos, _REC.size, "flattened record header"))
            if offset == END_FLAG:
                self.complete = True
                break
            if offset < 0 or size < 0 or pos + _REC.size + size > base.size:
                if pos + _REC.size + size > base.size and offset >= 0 and size >= 0:
                    # The stream was cut: keep what the last record has.
                    avail = base.size - pos - _REC.size
                    if avail > 0:
                        records.append((offset, avail, pos + _REC.size))
                    break
                raise DumpFormatError(self.path, pos, f"bad flattened record (offset {offset}, size {size})")
            if size:
                records.append((offset, size, pos + _REC.size))
            pos += _REC.size + size
        self.records = len(records)
        self._segments = _resolve(records)
        self._starts = [s[0] for s in self._segments]
        self.size = self._segments[-1][1] if self._segments else 0

    def read(self, offset: int, size: int, what: str = "data") -> bytes:
        if offset < 0 or size < 0 or offset + size > self.size:
            raise DumpFormatError(
                self.path, offset,
                f"{what}: needs {size} bytes at flattened offset {offset:#x}, but the rebuilt dump ends at {self.size:#x}"
                + ("" if self.complete else " (the stream is cut off)"))
        out = bytearray()
        pos, end = offset, offset + size
        i = bisect.bisect_right(self._starts, pos) - 1
        while pos < end:
            if i >= 0 and i < len(self._segments) and self._segments[i][0] <= pos < self._segments[i][1]:
                start, seg_end, file_off = self._segments[i]
                n = min(end, seg_end) - pos
                out += self.base.read(file_off + (pos - start), n, what)
            else:
                nxt = self._starts[i + 1] if i + 1 < len(self._starts) else end
                n = min(end, nxt) - pos
                out += bytes(n)  # a hole no record wrote
            pos += n
            i += 1
        return bytes(out)

    def close(self) -> None:
        self.base.close()


def _resolve(records: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Turn records in write order into sorted, non-overlapping segments,
    later records winning.

    Walks the records newest first and keeps only the parts no newer record
    covered; the covered set is kept merged, so the walk is O(n log n) even
    for a stream crafted to overlap itself everywhere.
    """
    ordered = sorted(records, key=lambda r: r[0])
    if all(a[0] + a[1] <= b[0] for a, b in zip(ordered, ordered[1:])):
        return [(o, o + s, f) for o, s, f in ordered]  # the usual case: no overlap
    starts: list[int] = []
    ends: list[int] = []
    segments: list[tuple[int, int, int]] = []
    for offset, size, file_off in reversed(records):
        lo, hi = offset, offset + size
        j = bisect.bisect_left(ends, lo)     # first covered interval ending at/after lo
        k = bisect.bisect_right(starts, hi)  # intervals j..k-1 touch [lo, hi]
        pos = lo
        for i in range(j, k):
            if starts[i] > pos:
                segments.append((pos, min(starts[i], hi), file_off + (pos - lo)))
            pos = max(pos, ends[i])
        if pos < hi:
            segments.append((pos, hi, file_off + (pos - lo)))
        new_lo = min(lo, starts[j]) if j < k else lo
        new_hi = max(hi, ends[k - 1]) if j < k else hi
        starts[j:k] = [new_lo]
        ends[j:k] = [new_hi]
    segments = [seg for seg in segments if seg[0] < seg[1]]
    segments.sort()
    return segments
