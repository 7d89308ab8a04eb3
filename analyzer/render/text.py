"""Aligned text for a terminal; ANSI colour only when asked (a tty)."""

from __future__ import annotations

from ..results import KeyValues, Kind, Result, Table, Text, Tree, TreeNode
from .values import show

__all__ = ["result_to_text", "table_lines"]

_BOLD, _DIM, _YELLOW, _RESET = "\x1b[1m", "\x1b[2m", "\x1b[33m", "\x1b[0m"
_RIGHT = {Kind.INT, Kind.ADDRESS, Kind.SIZE, Kind.REGISTER, Kind.FLOAT}


def table_lines(table: Table, *, color: bool = False) -> list[str]:
    cells = [[show(v, c.kind) for v, c in zip(row, table.columns)] for row in table.rows]
    widths = [len(c.header) for c in table.columns]
    for row in cells:
        widths = [max(w, len(v)) for w, v in zip(widths, row)]

    def line(values: list[str]) -> str:
        parts = []
        for i, (v, c, w) in enumerate(zip(values, table.columns, widths)):
            last = i == len(values) - 1
            if c.kind in _RIGHT:
                parts.append(v.rjust(w))
            else:
                parts.append(v if last else v.ljust(w))
        return "  ".join(parts).rstrip()

    header = line([c.header for c in table.columns])
    out = [f"{_BOLD}{header}{_RESET}" if color else header]
    out.extend(line(r) for r in cells)
    return out


def _tree_lines(node: TreeNode, prefix: str, last: bool, top: bool) -> list[str]:
    lines = [node.label if top else f"{prefix}{'└─ ' if last else '├─ '}{node.label}"]
    child_prefix = "" if top else prefix + ("   " if last else "│  ")
    for i, child in enumerate(node.children):
        lines += _tree_lines(child, child_prefix, i == len(node.children) - 1, False)
    return lines


def result_to_text(result: Result, *, color: bool = False) -> str:
    out: list[str] = []
    for section in result.sections:
        if out:
            out.append("")
        if section.title:
            out.append(f"{_BOLD}{section.title}{_RESET}" if color else section.title)
        if isinstance(section, Table):
            out += table_lines(section, color=color)
        elif isinstance(section, KeyValues):
            width = max((len(k) for k, _, _ in section.items), default=0)
            out += [f"{k.ljust(width)}  {show(v, kind)}" for k, v, kind in section.items]
        elif isinstance(section, Tree):
            for root in section.roots:
                out += _tree_lines(root, "", True, True)
        elif isinstance(section, Text):
            out += section.text.rstrip("\n").split("\n")
    if result.mode:
        out.append(f"{_DIM}({result.mode}){_RESET}" if color else f"({result.mode})")
    for w in result.warnings:
        out.append(f"{_YELLOW}warning: {w}{_RESET}" if color else f"warning: {w}")
    return "\n".join(out) + "\n"
