"""The VM state that ``savevm`` stores inside a qcow2 image.

An internal snapshot (docs/interop/qcow2.txt) has its own L1 table; its VM
state -- a migration stream -- lives in the snapshot's virtual address
space just past the disk, at the first L1 entry the disk does not use.
:class:`VmstateSource` reads that stream through the snapshot's L1/L2
tables (allocated, zero, unallocated and compressed clusters), read-only,
so the ordinary migration-stream reader opens it.
"""

from __future__ import annotations

import struct
import zlib
from collections import OrderedDict
from dataclasses import dataclass

from ..errors import DumpFormatError
from ..formats.source import FileSource

__all__ = ["Qcow2Image", "Qcow2Snapshot", "VmstateSource", "probe", "QCOW2_MAGIC"]

QCOW2_MAGIC = b"QFI\xfb"
L1_OFFSET_MASK = 0x00FF_FFFF_FFFF_FE00
L2_OFFSET_MASK = 0x00FF_FFFF_FFFF_FE00
QCOW_OFLAG_COMPRESSED = 1 << 62
QCOW_OFLAG_ZERO = 1
INCOMPAT_EXTL2 = 1 << 4
INCOMPAT_COMPRESSION = 1 << 3
MAX_SNAPSHOTS = 65536


def probe(head: bytes) -> bool:
    return head[:4] == QCOW2_MAGIC


@dataclass(frozen=True)
class Qcow2Snapshot:
    index: int
    id: str
    name: str
    l1_table_offset: int
    l1_size: int
    vm_state_size: int
    disk_size: int | None
    date_sec: int
    vm_clock_nsec: int


class Qcow2Image:
    def __init__(self, base: FileSource) -> None:
        self.base = base
        self.path = base.path
        h = base.read(0, 72, "qcow2 header")
        version = struct.unpack(">I", h[4:8])[0]
        if version >= 3:  # version 3 headers are at least 104 bytes
            h = base.read(0, 104, "qcow2 version 3 header")
        (magic, self.version, _bf_off, _bf_size, self.cluster_bits, self.size, crypt, _l1_size, _l1_off,
         _rt_off, _rt_clusters, nb_snapshots, snapshots_offset) = struct.unpack(">4sIQIIQIIQQIIQ", h[:72])
        if magic != QCOW2_MAGIC or self.version not in (2, 3):
            raise DumpFormatError(self.path, 0, f"not a qcow2 image I can read (version {self.version})")
        if not 9 <= self.cluster_bits <= 21:
            raise DumpFormatError(self.path, 20, f"cluster_bits {self.cluster_bits} out of range")
        if crypt:
            raise DumpFormatError(self.path, 32, "encrypted qcow2 images are not supported")
        self.incompatible = struct.unpack(">Q", h[72:80])[0] if self.version >= 3 else 0
        if self.incompatible & INCOMPAT_EXTL2:
            raise DumpFormatError(self.path, 72, "qcow2 extended L2 entries (subclusters) are not supported")
        self.compression = "zlib"
        if self.version >= 3 and self.incompatible & INCOMPAT_COMPRESSION:
            header_length = struct.unpack(">I", h[100:104])[0]
            if header_length > 104 and base.read(104, 1, "compression type")[0] == 1:
                self.compression = "zstd"
        self.cluster_size = 1 << self.cluster_bits
        self.l2_bits = self.cluster_bits - 3
        if nb_snapshots > MAX_SNAPSHOTS:
            raise DumpFormatError(self.path, 60, f"{nb_snapshots} snapshots claimed")
        self.snapshots = self._read_snapshots(nb_snapshots, snapshots_offset)

    def _read_snapshots(self, count: int, offset: int) -> list[Qcow2Snapshot]:
        out = []
        pos = offset
        for i in range(count):
            (l1_off, l1_size, id_len, name_len, date_sec, _date_nsec, vm_clock, vm_state_size,
             extra_size) = struct.unpack(">QIHHIIQII", self.base.read(pos, 40, "snapshot table"))
            extra = self.base.read(pos + 40, min(extra_size, 1024), "snapshot extra data")
            disk_size = None
            if len(extra) >= 8:
                vm_state_size = struct.unpack(">Q", extra[:8])[0] or vm_state_size
            if len(extra) >= 16:
                disk_size = struct.unpack(">Q", extra[8:16])[0]
            p = pos + 40 + extra_size
            sid = self.base.read(p, id_len, "snapshot id").decode("utf-8", "replace")
            name = self.base.read(p + id_len, name_len, "snapshot name").decode("utf-8", "replace")
            pos = (p + id_len + name_len + 7) & ~7
            out.append(Qcow2Snapshot(i, sid, name, l1_off, l1_size, vm_state_size, disk_size, date_sec, vm_clock))
        return out

    def find(self, which: str | None) -> Qcow2Snapshot:
        if not self.snapshots:
            raise DumpFormatError(self.path, 60, "this qcow2 image has no internal snapshots (no savevm state)")
        with_state = [s for s in self.snapshots if s.vm_state_size]
        if which is None:
            if not with_state:
                raise DumpFormatError(self.path, 60, "no snapshot in this image has VM state (disk-only snapshots)")
            return with_state[-1]
        for s in self.snapshots:
            if which in (s.id, s.name):
                return s
        names = ", ".join(f"{s.id}:{s.name}" for s in self.snapshots)
        raise DumpFormatError(self.path, None, f"no snapshot {which!r} (snapshots: {names})")


class VmstateSource:
    """A snapshot's VM state as a read-only byte source."""

    def __init__(self, image: Qcow2Image, snap: Qcow2Snapshot) -> None:
        self.image = image
        self.snap = snap
        self.path = image.path
        self.size = snap.vm_state_size
        if not 0 < snap.l1_size <= 1 << 26:
            raise DumpFormatError(self.path, snap.l1_table_offset, f"snapshot L1 size {snap.l1_size} out of range")
        self.l1 = struct.unpack(f">{snap.l1_size}Q", image.base.read(snap.l1_table_offset, 8 * snap.l1_size,
                                                                      "snapshot L1 table"))
        disk = snap.disk_size if snap.disk_size is not None else image.size
        span = 1 << (image.cluster_bits + image.l2_bits)  # bytes one L1 entry covers
        self.vm_state_offset = -(-disk // span) * span
        self._l2: OrderedDict[int, tuple[int, ...]] = OrderedDict()
        self._clusters: OrderedDict[int, bytes] = OrderedDict()

    def _l2_table(self, offset: int) -> tuple[int, ...]:
        t = self._l2.get(offset)
        if t is None:
            n = self.image.cluster_size // 8
            t = struct.unpack(f">{n}Q", self.image.base.read(offset, self.image.cluster_size, "L2 table"))
            self._l2[offset] = t
            if len(self._l2) > 64:
                self._l2.popitem(last=False)
        return t

    def _cluster(self, vaddr: int) -> bytes | int:
        """The cluster at virtual ``vaddr``: its bytes (compressed ones are
        inflated) or a host offset to read directly."""
        img = self.image
        l1_index = vaddr >> (img.cluster_bits + img.l2_bits)
        if l1_index >= len(self.l1) or not self.l1[l1_index] & L1_OFFSET_MASK:
            return bytes(img.cluster_size)
        l2 = self._l2_table(self.l1[l1_index] & L1_OFFSET_MASK)
        entry = l2[(vaddr >> img.cluster_bits) & ((1 << img.l2_bits) - 1)]
        if entry & QCOW_OFLAG_COMPRESSED:
            return self._compressed(entry)
        if entry & QCOW_OFLAG_ZERO or not entry & L2_OFFSET_MASK:
            return bytes(img.cluster_size)
        return int(entry & L2_OFFSET_MASK)

    def _compressed(self, entry: int) -> bytes:
        img = self.image
        x = 62 - (img.cluster_bits - 8)
        offset = entry & ((1 << x) - 1)
        cached = self._clusters.get(offset)
        if cached is not None:
            return cached
        sectors = ((entry >> x) & ((1 << (img.cluster_bits - 8)) - 1)) + 1
        size = min(sectors * 512 - (offset & 511), img.base.size - offset)
        raw = img.base.read(offset, size, "compressed cluster")
        try:
            if img.compression == "zstd":
                import zstandard
                data = zstandard.ZstdDecompressor().decompress(raw, max_output_size=img.cluster_size)
            else:
                data = zlib.decompressobj(-12).decompress(raw, img.cluster_size)
        except (zlib.error, Exception) as e:  # noqa: BLE001 - zstandard.ZstdError too
            raise DumpFormatError(self.path, offset, f"compressed cluster does not inflate: {e}") from None
        data = data.ljust(img.cluster_size, b"\0")
        self._clusters[offset] = data
        if len(self._clusters) > 64:
            self._clusters.popitem(last=False)
        return data

    def read(self, offset: int, size: int, what: str = "data") -> bytes:
        if offset < 0 or size < 0 or offset + size > self.size:
            raise DumpFormatError(self.path, None, f"{what}: {size} bytes at vmstate offset {offset:#x} "
                                  f"are past the snapshot's VM state ({self.size:#x} bytes)")
        out = bytearray()
        csize = self.image.cluster_size
        pos, end = offset, offset + size
        while pos < end:
            v = self.vm_state_offset + pos
            within = v & (csize - 1)
            n = min(end - pos, csize - within)
            c = self._cluster(v)
            if isinstance(c, int):
                out += self.image.base.read(c + within, n, what)
            else:
                out += c[within:within + n]
            pos += n
        return bytes(out)

    def close(self) -> None:
        self.image.base.close()
