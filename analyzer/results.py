"""What plugins return: typed, structured results that every renderer
(text, JSON, Markdown, the TUI) understands.  Plugins never print.

A :class:`Result` is a list of sections:

* :class:`Table` -- rows under typed :class:`Column` s
* :class:`KeyValues` -- labelled facts (``sys``)
* :class:`Tree` -- nested labelled nodes (domains, vCPUs, frames)
* :class:`Text` -- a preformatted block (a log, a hex dump)

Column kinds tell renderers how to show a value: an ``address`` is hex in
text and an integer in JSON; a ``symbol`` may be null.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Union

__all__ = ["Kind", "Column", "Table", "KeyValues", "Tree", "TreeNode", "Text", "Section", "Result"]


class Kind(str, enum.Enum):
    INT = "int"
    STR = "str"
    ADDRESS = "address"    #: an address or other value best read in hex
    SIZE = "size"          #: a byte count
    REGISTER = "register"  #: a register value (hex, fixed width)
    SYMBOL = "symbol"      #: "name+0x10" or null
    BOOL = "bool"
    FLOAT = "float"


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind = Kind.STR
    title: str | None = None  # header text; defaults to the name in upper case

    @property
    def header(self) -> str:
        return self.title if self.title is not None else self.name.upper()


@dataclass
class Table:
    columns: list[Column]
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    title: str | None = None

    def add(self, *values: Any) -> None:
        if len(values) != len(self.columns):
            raise ValueError(f"row has {len(values)} values for {len(self.columns)} columns")
        self.rows.append(tuple(values))

    def as_dicts(self) -> list[dict[str, Any]]:
        names = [c.name for c in self.columns]
        return [dict(zip(names, row)) for row in self.rows]


@dataclass
class KeyValues:
    items: list[tuple[str, Any, Kind]] = field(default_factory=list)
    title: str | None = None

    def add(self, key: str, value: Any, kind: Kind = Kind.STR) -> None:
        self.items.append((key, value, kind))


@dataclass
class TreeNode:
    label: str
    children: list["TreeNode"] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def add(self, label: str, **data: Any) -> "TreeNode":
        node = TreeNode(label, data=data)
        self.children.append(node)
        return node


@dataclass
class Tree:
    roots: list[TreeNode] = field(default_factory=list)
    title: str | None = None


@dataclass
class Text:
    text: str
    title: str | None = None


Section = Union[Table, KeyValues, Tree, Text]


@dataclass
class Result:
    """One plugin run's output."""

    plugin: str
    sections: list[Section] = field(default_factory=list)
    #: How the result was obtained, e.g. "debug info: vmlinux" or "no debug info (kallsyms, ORC)".
    mode: str | None = None
    warnings: list[str] = field(default_factory=list)
    #: True when some of what was asked could not be read.
    partial: bool = False
    dump: str | None = None

    def add(self, section: Section) -> Section:
        self.sections.append(section)
        return section

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self.partial = True

    def note(self, message: str) -> None:
        """Say something the reader should know that does not make the
        result partial (a --limit reached, an option that would add more)."""
        self.warnings.append(message)
