"""libvirt's save files (``virsh save``, managed save): a header, the
domain XML, then QEMU's migration stream, possibly compressed as a whole.

Header (libvirt src/qemu/qemu_saveimage.h), integers in the saving host's
byte order (a version that reads byte-swapped means the other order):

    char magic[16] = "LibvirtQemudSave" ("LibvirtQemudPart" while unfinished)
    u32 version (2), data_len, was_running, compressed, cookieOffset, unused[14]
    data_len bytes: the domain XML, NUL-terminated, then padding / cookie
    the migration stream

``compressed``: 0 raw, 1 gzip, 2 bzip2, 3 xz, 4 lzop, 5 zstd.  A compressed
stream is not random-access: it is inflated once into vmcrash's cache
(with a progress bar) and opened from there.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from ..errors import DumpFormatError
from ..formats.source import FileSource, Source

__all__ = ["LibvirtHeader", "probe", "parse_header", "stream_source", "HEADER_SIZE", "CACHE_DIR"]

MAGIC_DONE = b"LibvirtQemudSave"
MAGIC_PARTIAL = b"LibvirtQemudPart"
HEADER = struct.Struct("<16sIIIII56x")
HEADER_SIZE = HEADER.size  # 92
COMPRESSION = {0: "raw", 1: "gzip", 2: "bzip2", 3: "xz", 4: "lzop", 5: "zstd"}
MAX_XML = 16 << 20
CACHE_DIR = os.environ.get("VMCRASH_CACHE", os.path.expanduser("~/.cache/vmcrash"))


def probe(head: bytes) -> bool:
    return head[:16] in (MAGIC_DONE, MAGIC_PARTIAL)


@dataclass(frozen=True)
class LibvirtHeader:
    version: int
    data_len: int
    was_running: bool
    compression: str
    xml: str
    stream_offset: int
    partial: bool


def parse_header(src: Source) -> LibvirtHeader:
    magic, version, data_len, was_running, compressed, _cookie = HEADER.unpack(
        src.read(0, HEADER_SIZE, "libvirt save header"))
    if version > 0xFFFF:  # saved on a host of the other byte order
        version, data_len, was_running, compressed = (int.from_bytes(v.to_bytes(4, "little"), "big")
                                                      for v in (version, data_len, was_running, compressed))
    if data_len > MAX_XML or HEADER_SIZE + data_len > src.size:
        raise DumpFormatError(src.path, 20, f"libvirt header claims {data_len} bytes of XML")
    if compressed not in COMPRESSION:
        raise DumpFormatError(src.path, 28, f"unknown libvirt compression {compressed}")
    xml = src.read(HEADER_SIZE, data_len, "domain XML").split(b"\0", 1)[0].decode("utf-8", "replace")
    return LibvirtHeader(version, data_len, bool(was_running), COMPRESSION[compressed], xml,
                         HEADER_SIZE + data_len, magic == MAGIC_PARTIAL)


def _opener(kind: str, f: IO[bytes]) -> Any:
    """A readable, closable decompressing file over ``f``."""
    if kind == "gzip":
        return gzip.GzipFile(fileobj=f)
    if kind == "bzip2":
        return bz2.BZ2File(f)
    if kind == "xz":
        return lzma.LZMAFile(f)
    if kind == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(f)
    raise ValueError(kind)


def stream_source(base: FileSource, header: LibvirtHeader,
                  progress: Callable[[int, int], None] | None = None) -> tuple[Source, int]:
    """The migration stream: in place when raw, else inflated once into the cache."""
    if header.compression == "raw":
        return base, header.stream_offset
    if header.compression == "lzop":
        raise DumpFormatError(base.path, 28, "lzop-compressed save files are not supported: "
                              "decompress with `tail -c +N file | lzop -d` first")
    st = os.stat(base.path)
    key = hashlib.sha256(f"{os.path.abspath(base.path)}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:24]
    out = os.path.join(CACHE_DIR, "libvirt-streams", key + ".stream")
    if not os.path.exists(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        tmp = out + f".{os.getpid()}.partial"
        with open(base.path, "rb") as raw, open(tmp, "wb") as dst:
            raw.seek(header.stream_offset)
            total = st.st_size - header.stream_offset
            try:
                with _opener(header.compression, raw) as inflated:
                    while True:
                        chunk = inflated.read(1 << 20)
                        if not chunk:
                            break
                        dst.write(chunk)
                        if progress is not None:
                            progress(raw.tell() - header.stream_offset, total)
            except (OSError, EOFError, lzma.LZMAError, ValueError) as e:
                os.unlink(tmp)
                raise DumpFormatError(base.path, header.stream_offset,
                                      f"the {header.compression} stream does not inflate: {e}") from None
        os.replace(tmp, out)
    base.close()
    return FileSource(out), 0
