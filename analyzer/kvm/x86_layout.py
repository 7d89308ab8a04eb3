"""How QEMU's x86 PC machines place the main RAM block in guest-physical
memory (hw/i386/pc_piix.c and pc_q35.c, QEMU 2.x to 9.x):

* i440fx ("pc"): RAM below 4 GiB up to 3.5 GiB; a guest with 3.5 GiB or more
  gets 3 GiB below (the "gigabyte alignment") and the rest from 4 GiB.
* q35: a guest with 2.75 GiB or more gets 2 GiB below, the rest from 4 GiB;
  otherwise all of it below.

The legacy VGA window (0xa0000-0xc0000) is not RAM to the guest; everything
else of the low block is.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GpaMapping", "pc_ram_layout", "FOUR_GIB", "VGA_HOLE"]

FOUR_GIB = 1 << 32
VGA_HOLE = (0xA0000, 0xC0000)


@dataclass(frozen=True)
class GpaMapping:
    """Guest-physical ``[gpa, gpa + size)`` is bytes ``[offset, offset + size)`` of the block."""

    gpa: int
    offset: int
    size: int


def below_4g(machine_type: str | None, ram_size: int) -> int:
    q35 = bool(machine_type) and "q35" in (machine_type or "")
    if q35:
        lowmem = 0x80000000 if ram_size >= 0xB0000000 else 0xB0000000
    else:
        lowmem = 0xE0000000
        if ram_size >= lowmem:
            lowmem = 0xC0000000  # gigabyte alignment (every pc-i440fx since 1.7)
    return ram_size if ram_size < lowmem else lowmem


def pc_ram_layout(machine_type: str | None, ram_size: int) -> list[GpaMapping]:
    low = below_4g(machine_type, ram_size)
    out = []
    if low > VGA_HOLE[0]:
        out.append(GpaMapping(0, 0, VGA_HOLE[0]))
        if low > VGA_HOLE[1]:
            out.append(GpaMapping(VGA_HOLE[1], VGA_HOLE[1], low - VGA_HOLE[1]))
    else:
        out.append(GpaMapping(0, 0, low))
    if ram_size > low:
        out.append(GpaMapping(FOUR_GIB, low, ram_size - low))
    return out
