"""JSON with a stable schema (docs/result-schema.json).

    {"schema": "vmcrash.result/1", "plugin": str, "dump": str|null,
     "mode": str|null, "partial": bool, "warnings": [str],
     "sections": [SECTION]}

    SECTION is one of
      {"type": "table", "title": str|null,
       "columns": [{"name": str, "kind": KIND, "title": str}],
       "rows": [{name: value, ...}]}
      {"type": "keyvalues", "title": str|null, "items": [{"key": str, "value": any, "kind": KIND}]}
      {"type": "tree", "title": str|null, "roots": [NODE]}
         NODE = {"label": str, "data": {...}, "children": [NODE]}
      {"type": "text", "title": str|null, "text": str}

Addresses, registers and sizes are JSON integers; text renderers show them in hex.
"""

from __future__ import annotations

import json
from typing import Any

from ..results import KeyValues, Result, Table, Text, Tree, TreeNode

__all__ = ["result_to_obj", "result_to_json", "SCHEMA_ID"]

SCHEMA_ID = "vmcrash.result/1"


def _node(node: TreeNode) -> dict[str, Any]:
    return {"label": node.label, "data": node.data, "children": [_node(c) for c in node.children]}


def result_to_obj(result: Result) -> dict[str, Any]:
    sections: list[dict[str, Any]] = []
    for s in result.sections:
        if isinstance(s, Table):
            sections.append({
                "type": "table", "title": s.title,
                "columns": [{"name": c.name, "kind": c.kind.value, "title": c.header} for c in s.columns],
                "rows": s.as_dicts(),
            })
        elif isinstance(s, KeyValues):
            sections.append({"type": "keyvalues", "title": s.title,
                             "items": [{"key": k, "value": v, "kind": kind.value} for k, v, kind in s.items]})
        elif isinstance(s, Tree):
            sections.append({"type": "tree", "title": s.title, "roots": [_node(r) for r in s.roots]})
        elif isinstance(s, Text):
            sections.append({"type": "text", "title": s.title, "text": s.text})
    return {
        "schema": SCHEMA_ID,
        "plugin": result.plugin,
        "dump": result.dump,
        "mode": result.mode,
        "partial": result.partial,
        "warnings": list(result.warnings),
        "sections": sections,
    }


def result_to_json(result: Result) -> str:
    return json.dumps(result_to_obj(result), indent=2) + "\n"
