"""Where a Linux x86-64 kernel's page tables are.

From VMCOREINFO when the kernel left it (``SYMBOL(init_top_pgt)`` is the
virtual address of the kernel's top-level table in the kernel-text mapping,
so its physical address is that minus ``__START_KERNEL_map`` plus
``NUMBER(phys_base)``; ``NUMBER(pgtable_l5_enabled)`` gives the depth),
otherwise from any CPU's saved CR3 (QEMU's notes carry it), with CR4.LA57
for the depth.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..notes import CpuState
from ..translate import LinearMap
from ..paging import ADDR_MASK, X86_64_4LEVEL, X86_64_5LEVEL, PageTableFormat
from ..vmcoreinfo import VmcoreInfo

__all__ = ["KernelPaging", "find_kernel_paging", "START_KERNEL_MAP"]

#: Base of the kernel-text mapping on x86-64 (arch/x86/include/asm/page_64_types.h).
START_KERNEL_MAP = 0xFFFF_FFFF_8000_0000
CR4_LA57 = 1 << 12


@dataclass(frozen=True)
class KernelPaging:
    root: int               # physical address of the top-level table
    fmt: PageTableFormat
    how: str                # where the root came from, for the user
    #: The kernel-text mapping, when VMCOREINFO gives phys_base: a fallback
    #: for reading kernel data when the page tables themselves are lost.
    text_map: LinearMap | None = None


def find_kernel_paging(vmcoreinfo: VmcoreInfo | None, cpus: list[CpuState]) -> KernelPaging | None:
    if vmcoreinfo is not None:
        top = vmcoreinfo.symbol("init_top_pgt")
        if top is not None and top >= START_KERNEL_MAP:
            phys_base = vmcoreinfo.phys_base or 0
            l5 = vmcoreinfo.number("pgtable_l5_enabled")
            image = vmcoreinfo.number("KERNEL_IMAGE_SIZE") or (1 << 30)
            return KernelPaging(
                root=(top - START_KERNEL_MAP + phys_base) & ADDR_MASK,
                fmt=X86_64_5LEVEL if l5 else X86_64_4LEVEL,
                how="VMCOREINFO: SYMBOL(init_top_pgt), NUMBER(phys_base)",
                text_map=LinearMap("kernel text", START_KERNEL_MAP, START_KERNEL_MAP + image,
                                   phys_base - START_KERNEL_MAP),
            )
    for cpu in cpus:
        cr3 = cpu.registers.get("cr3")
        if cr3:
            la57 = bool(cpu.registers.get("cr4", 0) & CR4_LA57)
            return KernelPaging(
                root=cr3 & ADDR_MASK,
                fmt=X86_64_5LEVEL if la57 else X86_64_4LEVEL,
                how=f"CR3 of CPU {cpu.cpu}",
            )
    return None
