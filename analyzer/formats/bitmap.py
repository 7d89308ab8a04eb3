"""Page bitmaps as makedumpfile writes them: bit ``pfn % 8`` of byte
``pfn // 8`` is set when page frame ``pfn`` is in the set.

Counting set bits below a pfn (the rank) turns a pfn into its index among
the dumped pages.  Counts are kept per chunk and built lazily, so opening a
64 GiB dump reads no bitmap at all, and the first lookup far into it reads
each chunk once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

__all__ = ["PageBitmap"]

_CHUNK = 4096  # bytes of bitmap per rank checkpoint (32768 pages)
_NONZERO_RUN = re.compile(rb"[^\x00]+")
_NOT_FULL = re.compile(rb"[^\xff]")


class PageBitmap:
    """A read-only bitmap of ``nbits`` page frames, read through ``read(offset, size)``
    relative to the bitmap's first byte."""

    #: Bytes of bitmap scanned at once by :meth:`runs`.
    RUNS_BLOCK = 1 << 20

    def __init__(self, read: Callable[[int, int], bytes], nbits: int) -> None:
        self._read = read
        self.nbits = nbits
        self.nbytes = (nbits + 7) // 8
        self._prefix: list[int] = [0]  # set bits before chunk i

    def test(self, pfn: int) -> bool:
        if not 0 <= pfn < self.nbits:
            return False
        return bool(self._read(pfn >> 3, 1)[0] >> (pfn & 7) & 1)

    def rank(self, pfn: int) -> int:
        """Number of set bits below ``pfn``."""
        pfn = max(0, min(pfn, self.nbits))
        chunk = (pfn >> 3) // _CHUNK
        while len(self._prefix) <= chunk:
            i = len(self._prefix) - 1
            start = i * _CHUNK
            data = self._read(start, min(_CHUNK, self.nbytes - start))
            self._prefix.append(self._prefix[-1] + int.from_bytes(data, "little").bit_count())
        start = chunk * _CHUNK
        whole = (pfn >> 3) - start
        data = self._read(start, whole + (1 if pfn & 7 else 0))
        count = int.from_bytes(data[:whole], "little").bit_count()
        if pfn & 7:
            count += (data[whole] & ((1 << (pfn & 7)) - 1)).bit_count()
        return self._prefix[chunk] + count

    def count(self) -> int:
        return self.rank(self.nbits)

    def runs(self) -> Iterator[tuple[int, int]]:
        """Yield ``(first_pfn, end_pfn)`` of every run of set bits, in order.
        Cost grows with the bitmap's size and the number of partial bytes."""
        run_start: int | None = None
        block = self.RUNS_BLOCK
        for base in range(0, self.nbytes, block):
            data = self._read(base, min(block, self.nbytes - base))
            pos = 0
            for m in _NONZERO_RUN.finditer(data):
                if run_start is not None and m.start() != pos:
                    yield run_start, min((base + pos) * 8, self.nbits)
                    run_start = None
                seg = data[m.start():m.end()]
                last = 0
                for irregular in _NOT_FULL.finditer(seg):
                    j = irregular.start()
                    if run_start is None and j > last:
                        run_start = (base + m.start() + last) * 8
                    byte = seg[j]
                    for bit in range(8):
                        pfn = (base + m.start() + j) * 8 + bit
                        if byte >> bit & 1:
                            if run_start is None:
                                run_start = pfn
                        elif run_start is not None:
                            yield run_start, pfn
                            run_start = None
                    last = j + 1
                if run_start is None and last < len(seg):
                    run_start = (base + m.start() + last) * 8
                pos = m.end()
            if run_start is not None and pos != len(data):
                yield run_start, min((base + pos) * 8, self.nbits)
                run_start = None
        if run_start is not None:
            yield run_start, self.nbits
