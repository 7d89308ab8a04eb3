"""The needs plugins declare, and how each is checked against a session."""

from __future__ import annotations

from .plugin import Need

__all__ = ["LINUX", "KERNEL_PAGE_TABLES"]

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
