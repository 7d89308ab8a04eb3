"""Byte sources under the format readers: a file mapped read-only, or a view
rebuilt from another source (makedumpfile's flattened format).

Every read is bounds-checked against the real size of the source, so no
header field can make a reader allocate or read more than the file holds.
A short read raises :class:`~analyzer.errors.DumpFormatError` naming the file
and the offset.
"""

from __future__ import annotations

import io
import mmap
import os
from typing import Protocol

from ..errors import DumpFormatError

__all__ = ["Source", "FileSource", "SourceStream", "MAX_HEADER_READ"]

#: The most a header-like structure (notes, tables, XML) may take in memory at
#: once; larger claims are treated as corruption.
MAX_HEADER_READ = 256 << 20


class Source(Protocol):
    """Random-access bytes with a name for error messages."""

    path: str
    size: int

    def read(self, offset: int, size: int, what: str = "data") -> bytes:
        """Return exactly ``size`` bytes at ``offset`` or raise DumpFormatError."""
        ...

    def close(self) -> None: ...


class FileSource:
    """A dump file mapped read-only.  Opening costs O(1) in the file's size."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        try:
            self._file = open(self.path, "rb")
        except OSError as e:
            raise DumpFormatError(self.path, None, f"cannot open: {e.strerror}") from None
        self.size = os.fstat(self._file.fileno()).st_size
        self._map: mmap.mmap | None = None
        if self.size:
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)

    def read(self, offset: int, size: int, what: str = "data") -> bytes:
        if offset < 0 or size < 0 or offset + size > self.size:
            raise DumpFormatError(
                self.path, offset,
                f"{what}: needs {size} bytes but the file ends at {self.size:#x} (truncated?)",
            )
        if not size:
            return b""
        assert self._map is not None
        return self._map[offset:offset + size]

    def view(self, offset: int, size: int, what: str = "data") -> memoryview:
        """Zero-copy view of a range (checked like :meth:`read`)."""
        if offset < 0 or size < 0 or offset + size > self.size:
            raise DumpFormatError(
                self.path, offset,
                f"{what}: needs {size} bytes but the file ends at {self.size:#x} (truncated?)",
            )
        if self._map is None:
            return memoryview(b"")
        return memoryview(self._map)[offset:offset + size]

    def close(self) -> None:
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:
                # A memoryview handed out by view() is still alive; the map
                # goes when the last view does.
                pass
            self._map = None
        self._file.close()


class SourceStream(io.RawIOBase):
    """A read-only file-like object over a :class:`Source`, for libraries that
    want a stream (pyelftools).  Reads past the end return short data, as a
    file does; the caller's own checks turn that into errors."""

    def __init__(self, source: Source) -> None:
        super().__init__()
        self._source = source
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        elif whence == io.SEEK_END:
            self._pos = self._source.size + offset
        if self._pos < 0:
            self._pos = 0
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: "bytearray | memoryview") -> int:  # type: ignore[override]
        n = max(0, min(len(buffer), self._source.size - self._pos))
        if n:
            data = self._source.read(self._pos, n)
            buffer[:n] = data
            self._pos += n
        return n
