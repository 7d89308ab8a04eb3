"""A plugin from outside vmcrash: counts present/excluded pages per range."""

from __future__ import annotations

from typing import Any

from analyzer import PageState
from analyzer.plugin import Plugin
from analyzer.results import Column, Kind, Result, Table


class PageCount(Plugin):
    name = "pages"
    help = "pages present and excluded in each physical range (third-party test plugin)"

    def run(self, session: Any, **options: Any) -> Result:
        dump = session.dump
        t = Table([Column("start", Kind.ADDRESS), Column("end", Kind.ADDRESS),
                   Column("present", Kind.INT), Column("excluded", Kind.INT)])
        for r in dump.ranges():
            counts = {PageState.PRESENT: 0, PageState.EXCLUDED: 0, PageState.ABSENT: 0}
            for pfn in range(r.start // dump.page_size, r.end // dump.page_size):
                counts[dump.page_state(pfn)] += 1
            t.add(r.start, r.end, counts[PageState.PRESENT], counts[PageState.EXCLUDED])
        result = Result(self.name)
        result.add(t)
        return result
