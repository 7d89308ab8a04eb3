"""Renderers: a :class:`~analyzer.results.Result` as text, JSON or Markdown."""

from __future__ import annotations

from ..results import Result
from .jsonout import result_to_json, result_to_obj
from .markdown import result_to_markdown
from .text import result_to_text

__all__ = ["result_to_text", "result_to_json", "result_to_obj", "result_to_markdown", "render", "FORMATS"]

FORMATS = ("text", "json", "markdown")


def render(result: Result, fmt: str = "text", *, color: bool = False) -> str:
    """``result`` in one of :data:`FORMATS`."""
    if fmt == "json":
        return result_to_json(result)
    if fmt == "markdown":
        return result_to_markdown(result)
    return result_to_text(result, color=color)
