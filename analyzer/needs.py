"""The needs plugins declare, and how each is checked against a session."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .plugin import Need

if TYPE_CHECKING:
    from .session import Session

__all__ = ["LINUX", "KERNEL_PAGE_TABLES", "KERNEL_TYPES"]

LINUX = Need(
    "a Linux guest",
    lambda s: None if s.domain.is_linux else
    "no Linux kernel found (the dump has no VMCOREINFO with OSRELEASE)",
)

KERNEL_PAGE_TABLES = Need(
    "the kernel's page tables",
    lambda s: None if s.domain.kernel_paging is not None else
    "neither VMCOREINFO's SYMBOL(init_top_pgt) nor a saved CR3 is in the dump (give --cr3)",
)


def _types(s: "Session") -> str | None:
    if not s.domain.is_linux:
        return "no Linux kernel found"
    kp = s.linux().kp
    return None if kp.has_types else (
        "no kernel type information (give --vmlinux FILE or --debuginfo DIR)")


KERNEL_TYPES = Need("kernel types (debug info)", _types)
