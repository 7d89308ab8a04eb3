"""Page decompression for makedumpfile's compressed kdump.

Every decoder is bounded: a page never decompresses to more than the page
size, whatever the compressed stream claims, so a hostile page cannot make
vmcrash allocate more than one page.
"""

from __future__ import annotations

import io
import zlib

__all__ = ["decompress_page", "CodecError", "CODEC_NAMES"]

#: page_desc.flags bits (makedumpfile's diskdump_mod.h).
DUMP_DH_COMPRESSED_ZLIB = 0x1
DUMP_DH_COMPRESSED_LZO = 0x2
DUMP_DH_COMPRESSED_SNAPPY = 0x4
DUMP_DH_COMPRESSED_ZSTD = 0x20

CODEC_NAMES = {
    DUMP_DH_COMPRESSED_ZLIB: "zlib",
    DUMP_DH_COMPRESSED_LZO: "lzo",
    DUMP_DH_COMPRESSED_SNAPPY: "snappy",
    DUMP_DH_COMPRESSED_ZSTD: "zstd",
}


class CodecError(Exception):
    """A page that does not decompress to exactly one page."""


def _zlib(data: bytes, size: int) -> bytes:
    d = zlib.decompressobj()
    return d.decompress(data, size + 1)


def _lzo(data: bytes, size: int) -> bytes:
    import lzo  # python-lzo; imported on first use so other codecs work without it

    try:
        return bytes(lzo.decompress(data, False, size))
    except lzo.error as e:
        raise CodecError(f"lzo: {e}") from None


def _snappy_length(data: bytes) -> int:
    """The uncompressed length a raw snappy block declares (a varint)."""
    n = shift = 0
    for i, b in enumerate(data[:5]):
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n
        shift += 7
    raise CodecError("snappy: bad length header")


def _snappy(data: bytes, size: int) -> bytes:
    import cramjam

    declared = _snappy_length(data)
    if declared != size:
        raise CodecError(f"snappy: block declares {declared} bytes, a page is {size}")
    try:
        return bytes(cramjam.snappy.decompress_raw(data))
    except cramjam.DecompressionError as e:
        raise CodecError(f"snappy: {e}") from None


def _zstd(data: bytes, size: int) -> bytes:
    import zstandard

    try:
        with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)) as reader:
            return bytes(reader.read(size + 1))
    except zstandard.ZstdError as e:
        raise CodecError(f"zstd: {e}") from None


_DECODERS = {
    DUMP_DH_COMPRESSED_ZLIB: _zlib,
    DUMP_DH_COMPRESSED_LZO: _lzo,
    DUMP_DH_COMPRESSED_SNAPPY: _snappy,
    DUMP_DH_COMPRESSED_ZSTD: _zstd,
}


def decompress_page(flags: int, data: bytes, page_size: int) -> bytes:
    """Decompress one page stored with ``flags``; raise CodecError unless the
    result is exactly ``page_size`` bytes."""
    codec = flags & (DUMP_DH_COMPRESSED_ZLIB | DUMP_DH_COMPRESSED_LZO
                     | DUMP_DH_COMPRESSED_SNAPPY | DUMP_DH_COMPRESSED_ZSTD)
    decoder = _DECODERS.get(codec)
    if decoder is None:
        raise CodecError(f"unknown compression flags {flags:#x}")
    try:
        page = decoder(data, page_size)
    except zlib.error as e:
        raise CodecError(f"zlib: {e}") from None
    if len(page) != page_size:
        raise CodecError(f"{CODEC_NAMES[codec]}: page decompressed to {len(page)} bytes, expected {page_size}")
    return page
