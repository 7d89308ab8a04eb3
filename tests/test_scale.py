"""Opening is O(1) in the dump's size: what open reads does not grow with
the guest (counted, not timed).  Timings live in benchmarks/bench_scale.py."""

from __future__ import annotations

import pytest

import analyzer.formats.source as source
from analyzer import PageState, open_dump
from dumpwriter import write_sparse_elf, write_sparse_kdump

GiB = 1 << 30


class CountingSource(source.FileSource):
    bytes_read = 0

    def read(self, offset: int, size: int, what: str = "data") -> bytes:
        CountingSource.bytes_read += size
        return super().read(offset, size, what)


@pytest.mark.parametrize("writer", [write_sparse_elf, write_sparse_kdump], ids=["elf", "kdump"])
def test_open_reads_the_same_few_bytes_at_1_and_64_gib(tmp_path, monkeypatch, writer):
    monkeypatch.setattr("analyzer.formats.FileSource", CountingSource)
    page = {5: b"x" * 4096, (64 * GiB) // 4096 - 1: b"y" * 4096}
    read_at_open = {}
    for size in (GiB, 64 * GiB):
        path = str(tmp_path / f"{writer.__name__}-{size}")
        pages = {pfn: data for pfn, data in page.items() if pfn < size // 4096}
        writer(path, size, pages)
        CountingSource.bytes_read = 0
        with open_dump(path) as d:
            read_at_open[size] = CountingSource.bytes_read
            assert d.read_page(5) == b"x" * 4096
            if size == 64 * GiB:
                assert d.read_page(size // 4096 - 1) == b"y" * 4096
                assert d.page_state(size // 4096 // 2) in (PageState.PRESENT, PageState.EXCLUDED)
    assert read_at_open[64 * GiB] == read_at_open[GiB]
    assert read_at_open[GiB] < 64 * 1024
