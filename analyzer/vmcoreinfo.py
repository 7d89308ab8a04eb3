"""VMCOREINFO: the key=value text a Linux kernel leaves for dump tools.

The kernel prints each kind of value in its own base (kernel/crash_core.c):
``SYMBOL(x)`` and ``KERNELOFFSET`` in hex without ``0x``, ``NUMBER(x)``,
``SIZE(x)``, ``OFFSET(x)``, ``LENGTH(x)``, ``PAGESIZE`` and ``CRASHTIME`` in
decimal.  :class:`VmcoreInfo` keeps the raw text and parses on demand.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

__all__ = ["VmcoreInfo"]

#: Longest VMCOREINFO accepted; the kernel's buffer is one page.
MAX_VMCOREINFO = 1 << 20


class VmcoreInfo(Mapping[str, str]):
    """Parsed VMCOREINFO.  Behaves as a read-only ``dict`` of the raw strings."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._items: dict[str, str] = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key:
                self._items[key.strip()] = value.strip()

    @classmethod
    def from_bytes(cls, data: bytes) -> "VmcoreInfo":
        data = data[:MAX_VMCOREINFO].split(b"\0", 1)[0]
        return cls(data.decode("utf-8", "replace"))

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    # Typed accessors: None when the key is absent or malformed.

    def hex(self, key: str) -> int | None:
        try:
            return int(self._items[key], 16)
        except (KeyError, ValueError):
            return None

    def dec(self, key: str) -> int | None:
        try:
            return int(self._items[key], 10)
        except (KeyError, ValueError):
            return None

    def symbol(self, name: str) -> int | None:
        return self.hex(f"SYMBOL({name})")

    def number(self, name: str) -> int | None:
        return self.dec(f"NUMBER({name})")

    def size(self, name: str) -> int | None:
        return self.dec(f"SIZE({name})")

    def offset(self, name: str) -> int | None:
        return self.dec(f"OFFSET({name})")

    @property
    def osrelease(self) -> str | None:
        return self._items.get("OSRELEASE")

    @property
    def page_size(self) -> int | None:
        return self.dec("PAGESIZE")

    @property
    def kernel_offset(self) -> int | None:
        return self.hex("KERNELOFFSET")

    @property
    def phys_base(self) -> int | None:
        return self.number("phys_base")

    @property
    def crash_time(self) -> int | None:
        return self.dec("CRASHTIME")
