"""vmcrash: crash-dump and fault analysis for hypervisors and their guests.

    >>> import analyzer
    >>> with analyzer.open("vmcore") as dump:
    ...     dump.read_phys(0x1000, 16)

Layers, in the order data flows: ``analyzer.formats`` (files to a
:class:`~analyzer.dump.Dump`), translation, the model of machines, domains
and vCPUs, then ``plugins`` and renderers.
"""

from __future__ import annotations

from .dump import Dump, PageState, PhysRange
from .errors import (DumpFormatError, MemoryFault, OutsideDump, PageExcluded,
                     PageUnreadable, UnknownFormat, VmcrashError)
from .formats import open_dump

__all__ = [
    "open", "open_dump", "Dump", "PageState", "PhysRange",
    "VmcrashError", "DumpFormatError", "UnknownFormat",
    "MemoryFault", "OutsideDump", "PageExcluded", "PageUnreadable",
]

__version__ = "0.1.0"


def open(path: str) -> Dump:  # noqa: A001 - the API's verb, as in the brief
    """Open a dump file of any supported format (see :func:`analyzer.formats.open_dump`)."""
    return open_dump(path)
