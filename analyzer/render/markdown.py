"""Markdown that reads well pasted into a ticket: tables as pipe tables,
text blocks fenced, trees as nested lists."""

from __future__ import annotations

from ..results import KeyValues, Result, Table, Text, Tree, TreeNode
from .values import show

__all__ = ["result_to_markdown"]


def _cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def _tree(node: TreeNode, depth: int) -> list[str]:
    lines = [f"{'  ' * depth}- {_cell(node.label)}"]
    for c in node.children:
        lines += _tree(c, depth + 1)
    return lines


def result_to_markdown(result: Result) -> str:
    out: list[str] = [f"### `{result.plugin}`" + (f" — {_cell(result.dump)}" if result.dump else "")]
    for s in result.sections:
        out.append("")
        if s.title:
            out += [f"**{_cell(s.title)}**", ""]
        if isinstance(s, Table):
            out.append("| " + " | ".join(_cell(c.header) for c in s.columns) + " |")
            out.append("|" + "|".join("---:" if c.kind.value in ("int", "address", "size", "register") else "---"
                                      for c in s.columns) + "|")
            for row in s.rows:
                cells = [f"`{_cell(show(v, c.kind))}`" if c.kind.value in ("address", "register", "symbol") and v is not None
                         else _cell(show(v, c.kind)) for v, c in zip(row, s.columns)]
                out.append("| " + " | ".join(cells) + " |")
        elif isinstance(s, KeyValues):
            for k, v, kind in s.items:
                out.append(f"- **{_cell(k)}**: {_cell(show(v, kind))}")
        elif isinstance(s, Tree):
            for r in s.roots:
                out += _tree(r, 0)
        elif isinstance(s, Text):
            fence = "````" if "```" in s.text else "```"
            out += [fence, s.text.rstrip("\n"), fence]
    if result.mode:
        out += ["", f"_{result.mode}_"]
    for w in result.warnings:
        out += ["", f"> **warning:** {_cell(w)}"]
    return "\n".join(out) + "\n"
