"""Finding a Linux kernel in memory with no notes to say where it is.

The kernel keeps its VMCOREINFO as a ready-made ELF note (kernel/crash_core.c
``vmcoreinfo_note``: namesz 11, the descriptor size, type 0, "VMCOREINFO"
padded to 12 bytes, then the text starting with ``OSRELEASE=``).  A scan of
the guest's memory for that note finds the kernel's release, KASLR offset,
page-table root and everything else VMCOREINFO describes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from ..dump import PhysRange
from ..errors import MemoryFault
from ..vmcoreinfo import VmcoreInfo

__all__ = ["scan_for_vmcoreinfo", "GUEST_SCAN"]

PATTERN = b"VMCOREINFO\x00\x00OSRELEASE="
CHUNK = 1 << 20
MAX_DESC = 1 << 16
#: How much of a guest inside a hypervisor's dump is searched (the note can
#: be anywhere in RAM: the page allocator places it).  A guest with no Linux
#: kernel costs the whole scan (~130 MB/s through a VM's memslots).
GUEST_SCAN = 64 << 30


def scan_for_vmcoreinfo(ranges: list[PhysRange], read: Callable[[int, int], bytes],
                        limit_bytes: int = 64 << 30) -> tuple[VmcoreInfo, int] | None:
    """(VMCOREINFO, physical address of its note) from the first valid note found."""
    scanned = 0
    for r in ranges:
        addr = r.start
        while addr < r.end and scanned < limit_bytes:
            n = min(CHUNK + len(PATTERN), r.end - addr)
            try:
                data = read(addr, n)
            except MemoryFault:
                addr += CHUNK
                scanned += CHUNK  # unreadable memory counts too: the bound is on work, not on luck
                continue
            pos = data.find(PATTERN)
            while pos >= 0:
                found = _check(read, addr + pos - 12)
                if found is not None:
                    return found, addr + pos - 12
                pos = data.find(PATTERN, pos + 1)
            addr += CHUNK
            scanned += CHUNK
    return None


def _check(read: Callable[[int, int], bytes], note: int) -> VmcoreInfo | None:
    try:
        namesz, descsz, ntype = struct.unpack("<III", read(note, 12))
        if namesz != 11 or ntype != 0 or not 0 < descsz <= MAX_DESC:
            return None
        vmci = VmcoreInfo.from_bytes(read(note + 24, descsz))
    except MemoryFault:
        return None
    return vmci if vmci.osrelease else None
