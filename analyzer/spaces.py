"""Address spaces: every address vmcrash handles says which space it is in.

* ``KVADDR``  -- a (guest) kernel-virtual address
* ``KPHYSADDR`` -- guest-physical (pseudo-physical for a Xen PV guest; plain
  physical for a bare-metal kernel)
* ``MADDR``   -- machine-physical: the host's RAM as a hypervisor sees it
* ``FILEOFF`` -- an offset in the dump file
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Space", "Address"]


class Space(enum.Enum):
    KVADDR = "kernel-virtual"
    KPHYSADDR = "guest-physical"
    MADDR = "machine-physical"
    FILEOFF = "file-offset"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, order=True)
class Address:
    """An address with its space.  Prints as ``0x1000 (guest-physical)``."""

    space: Space
    addr: int

    def __str__(self) -> str:
        return f"{self.addr:#x} ({self.space})"

    def __add__(self, delta: int) -> "Address":
        return Address(self.space, self.addr + delta)
