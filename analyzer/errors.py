"""The errors vmcrash raises: each says what went wrong and where.

Two families:

* :class:`DumpFormatError` -- the dump file itself is unreadable at some
  offset (truncated, corrupt, not a dump at all).  It names the file and the
  offset, so a user can look at the bytes.
* :class:`MemoryFault` -- a read of the dumped machine's memory cannot be
  served (the page was filtered out, lies outside the dump, or its data is
  damaged).  It names the address and the address space.  Analysis goes on
  with other pages.
"""

from __future__ import annotations

__all__ = [
    "VmcrashError",
    "DumpFormatError",
    "UnknownFormat",
    "MemoryFault",
    "OutsideDump",
    "PageExcluded",
    "PageUnreadable",
]


class VmcrashError(Exception):
    """Base class of every error vmcrash raises on purpose."""


class DumpFormatError(VmcrashError):
    """The dump file is not what its headers claim, at a known offset."""

    def __init__(self, path: str, offset: int | None, message: str) -> None:
        self.path = path
        self.offset = offset
        self.message = message
        where = f"{path}" if offset is None else f"{path} at offset {offset:#x}"
        super().__init__(f"{where}: {message}")


class UnknownFormat(DumpFormatError):
    """No format reader recognises the file."""


class MemoryFault(VmcrashError):
    """A read of dumped memory that cannot be served.

    ``address`` is where the read failed (not where it started) and ``space``
    names the address space ("physical", "machine", "kernel-virtual", ...).
    """

    reason = "cannot be read"

    def __init__(self, address: int, space: str = "physical", detail: str = "") -> None:
        self.address = address
        self.space = space
        self.detail = detail
        text = f"{space} address {address:#x} {self.reason}"
        if detail:
            text += f" ({detail})"
        super().__init__(text)


class OutsideDump(MemoryFault):
    """The address is in no memory range the dump describes."""

    reason = "is outside the dumped memory"


class PageExcluded(MemoryFault):
    """The page existed but the dump tool left it out (filtered or zero)."""

    reason = "is in a page the dump excluded"


class PageUnreadable(MemoryFault):
    """The page should be in the file, but its data is missing or damaged."""

    reason = "is in a page whose data is damaged or missing from the file"
