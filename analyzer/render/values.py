"""How one typed value reads to a person (text and Markdown share this)."""

from __future__ import annotations

from typing import Any

from ..results import Kind

__all__ = ["show"]


def show(value: Any, kind: Kind) -> str:
    if value is None:
        return "-"
    if kind is Kind.ADDRESS and isinstance(value, int):
        return f"{value:#x}"
    if kind is Kind.REGISTER and isinstance(value, int):
        return f"{value:016x}"
    if kind is Kind.SIZE and isinstance(value, int):
        return _size(value)
    if kind is Kind.BOOL:
        return "yes" if value else "no"
    return str(value)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    v = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        v /= 1024
        if v < 1024 or unit == "TiB":
            break
    return f"{v:.1f} {unit}"
