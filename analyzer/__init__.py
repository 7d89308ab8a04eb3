"""vmcrash: crash-dump and fault analysis for hypervisors and their guests.

    >>> import analyzer
    >>> with analyzer.open("vmcore") as s:
    ...     s.dump.read_phys(0x1000, 16)
    ...     s.run("vtop", address=0xffffffff81000000)

Layers, in the order data flows: ``analyzer.formats`` (files to a
:class:`~analyzer.dump.Dump`), translation, the model of machines, domains
and vCPUs, then ``plugins`` and renderers.
"""

from __future__ import annotations

from collections.abc import Sequence

from .dump import Dump, PageState, PhysRange
from .errors import (DumpFormatError, MemoryFault, OutsideDump, PageExcluded,
                     PageUnreadable, UnknownFormat, VmcrashError)
from .formats import open_dump
from .session import Session

__all__ = [
    "open", "open_dump", "Session", "Dump", "PageState", "PhysRange",
    "VmcrashError", "DumpFormatError", "UnknownFormat",
    "MemoryFault", "OutsideDump", "PageExcluded", "PageUnreadable",
]

__version__ = "0.1.0"


def open(path: str, *, vmlinux: str | None = None, debuginfo: Sequence[str] = (),  # noqa: A001
         xen_syms: str | None = None, domain: int | None = None, vcpu: int | None = None,
         snapshot: str | None = None) -> Session:
    """Open a dump of any supported format for analysis: a :class:`Session`
    with the dump (``.dump``), its model (``.machine``) and ``.run(plugin)``."""
    return Session(path, vmlinux=vmlinux, debuginfo=debuginfo, xen_syms=xen_syms, domain=domain, vcpu=vcpu,
                   snapshot=snapshot)
