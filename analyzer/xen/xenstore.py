"""Domain names, from xenstored's database in dom0's memory.

Xen itself has no names: ``xl`` keeps them in xenstore at
``/local/domain/<id>/name``.  C xenstored (tools/xenstored, 4.x) stores each
node as a TDB record in memory:

    struct tdb_record (tools/xenstored/tdb.h):
        u32 next, rec_len, key_len, data_len, full_hash, magic (TDB_MAGIC 0x26011999)
    key:  the node's path, key_len bytes, no NUL
    data: struct xs_tdb_record_hdr (tools/xenstored/xenstore_lib.h):
              u64 generation; u32 num_perms, datalen, childlen; perms[]
          num_perms x struct xs_permissions (8 bytes), the value (datalen
          bytes), the children (childlen bytes)

Freed records change their magic, so a live record is one whose header and
lengths agree; of several copies the highest generation wins.  A scan of
dom0's memory (regular expressions over 1 MiB at a time) finds them.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable

from ..dump import PhysRange
from ..errors import MemoryFault

__all__ = ["xenstore_names"]

TDB_MAGIC = b"\x99\x19\x01\x26"
_NAME_KEY = re.compile(rb"\x99\x19\x01\x26(/local/domain/(\d{1,5})/name)")
CHUNK = 1 << 20
#: A window's overlap with its neighbours: more than a record's header, key and value.
OVERLAP = 512
MAX_SCAN = 64 << 30
MAX_NAME = 256
#: sizeof(struct xs_tdb_record_hdr): u64 + 3 x u32, padded to 8 -- what the
#: record's length counts; the perms[] array itself starts at offset 20
#: (a flexible array of 4-byte-aligned structs), so 4 bytes go unused at the end
HDR = 24
PERMS_AT = 20


def xenstore_names(ranges: list[PhysRange], read: Callable[[int, int], bytes]) -> dict[int, str]:
    """Domain id -> name, from the xenstore records found in ``read``'s memory."""
    best: dict[int, tuple[int, str]] = {}

    def search(data: bytes) -> None:
        for m in _NAME_KEY.finditer(data):
            found = _record(data, m)
            if found is not None:
                domid, generation, name = found
                if domid not in best or generation > best[domid][0]:
                    best[domid] = (generation, name)

    scanned = 0
    for r in ranges:
        addr = r.start
        while addr < r.end and scanned < MAX_SCAN:
            # each window reaches back over the record header before it and on
            # past its end, so a record across a window's edge is seen whole
            lo, hi = max(r.start, addr - OVERLAP), min(r.end, addr + CHUNK + OVERLAP)
            try:
                search(read(lo, hi - lo))
            except MemoryFault:  # a hole in the window: its readable pages one by one
                for page in range(addr, min(r.end, addr + CHUNK), 4096):
                    try:
                        search(read(page, min(4096, r.end - page)))
                    except MemoryFault:
                        continue
            addr += CHUNK
            scanned += CHUNK
    return {d: name for d, (_g, name) in best.items()}


def _record(data: bytes, m: re.Match[bytes]) -> tuple[int, int, str] | None:
    magic_at = m.start()
    if magic_at < 16:
        return None
    key = m.group(1)
    key_len, data_len = struct.unpack_from("<II", data, magic_at - 12)
    if key_len != len(key):
        return None
    at = m.end()
    if at + HDR > len(data):
        return None
    generation, num_perms, datalen, childlen = struct.unpack_from("<QIII", data, at)
    if not 0 < datalen <= MAX_NAME or num_perms > 64 or data_len != HDR + 8 * num_perms + datalen + childlen:
        return None
    start = at + PERMS_AT + 8 * num_perms
    raw = data[start:start + datalen]
    if len(raw) != datalen:
        return None
    try:
        name = raw.rstrip(b"\0").decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not name or not name.isprintable():
        return None
    return int(m.group(2)), generation, name
