#!/usr/bin/env python3
"""Derive a snappy-compressed kdump from a real makedumpfile kdump.

No Debian package's makedumpfile writes snappy, so the snappy sample is
derived: this copies the input's header, sub-header, VMCOREINFO, notes and
both bitmaps byte for byte, and re-encodes every dumped page with raw
snappy (what makedumpfile's -p writes), rewriting only the page descriptors
and the page data.  Written independently of vmcrash's reader (plain
struct, zlib, cramjam), so the two do not share mistakes.

    reencode_snappy.py IN.kdump-zlib OUT.kdump-snappy
"""

import struct
import sys
import zlib

import cramjam

ZLIB, LZO, SNAPPY, ZSTD = 0x1, 0x2, 0x4, 0x20


def main(src: str, dst: str) -> None:
    data = open(src, "rb").read()
    assert data[:8] == b"KDUMP   ", "not a makedumpfile kdump"
    status, block_size, sub_hdr_size, bitmap_blocks = struct.unpack_from("<IiiI", data, 424)
    assert status & ZLIB and not status & (LZO | SNAPPY | ZSTD), "expects a zlib kdump"
    # kdump_sub_header v5+: offset_eraseinfo/size_eraseinfo at +56/+64.
    size_eraseinfo = struct.unpack_from("<Q", data, block_size + 64)[0]
    assert size_eraseinfo == 0, "erase info is not handled"
    bitmap_off = (1 + sub_hdr_size) * block_size
    half = bitmap_blocks * block_size // 2
    dumped = int.from_bytes(data[bitmap_off + half: bitmap_off + 2 * half], "little").bit_count()
    desc_off = bitmap_off + bitmap_blocks * block_size
    data_off = desc_off + 24 * dumped
    out_descs = bytearray()
    out_pages = bytearray()
    for i in range(dumped):
        offset, size, flags, page_flags = struct.unpack_from("<qIIQ", data, desc_off + 24 * i)
        raw = data[offset:offset + size]
        page = zlib.decompress(raw) if flags & ZLIB else raw
        assert len(page) == block_size, f"page {i} is {len(page)} bytes"
        comp = bytes(cramjam.snappy.compress_raw(page))
        if len(comp) < block_size:
            new_flags, payload = SNAPPY, comp
        else:
            new_flags, payload = 0, page
        out_descs += struct.pack("<qIIQ", data_off + len(out_pages), len(payload), new_flags, page_flags)
        out_pages += payload
    header = bytearray(data[:desc_off])
    struct.pack_into("<I", header, 424, (status & ~ZLIB) | SNAPPY)
    with open(dst, "wb") as f:
        f.write(header + out_descs + out_pages)
    print(f"{dst}: {dumped} pages re-encoded with snappy")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
