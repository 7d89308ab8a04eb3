"""Truncated and corrupted copies of the real samples: a clear error or a
partial result, never a traceback or a hang."""

from __future__ import annotations

import os
import random
import shutil

import pytest

import analyzer
import samples
from analyzer import PageState, VmcrashError
from analyzer.cli import EXIT_OK, EXIT_PARTIAL, EXIT_UNREADABLE, main

DUMPS = samples.all_dumps()
FINE_OFFSETS = [0, 1, 7, 8, 15, 16, 63, 64, 100, 463, 464, 1000, 4095, 4096, 4097, 4200, 8191, 8192, 12288, 16384, 65536]


def _cut_offsets(size: int) -> list[int]:
    grid = {o for o in FINE_OFFSETS if o < size}
    grid |= {size * i // 40 for i in range(1, 40)}
    grid |= {size - 1, size - 4096}
    return sorted((o for o in grid if 0 <= o < size), reverse=True)


def _exercise(path: str) -> None:
    """Open and read what can be read; only vmcrash's own errors may escape."""
    try:
        with analyzer.open_dump(path) as d:
            ranges = d.ranges()
            for r in ranges[:64]:
                step = max(1, (r.end - r.start) // 4096 // 64)
                for pfn in range(r.start // 4096, r.end // 4096, step):
                    if d.page_state(pfn) is PageState.PRESENT:
                        try:
                            d.read_page(pfn)
                        except VmcrashError:
                            pass
    except VmcrashError:
        pass


@pytest.mark.parametrize("sample,name", DUMPS)
def test_every_truncation_is_an_error_or_a_partial_result(sample, name, tmp_path, capsys):
    src = samples.path(sample, name)
    cut = str(tmp_path / "cut")
    shutil.copyfile(src, cut)
    size = os.path.getsize(src)
    for offset in _cut_offsets(size):
        os.truncate(cut, offset)
        rc = main(["info", cut])
        err = capsys.readouterr().err
        assert rc in (EXIT_OK, EXIT_PARTIAL, EXIT_UNREADABLE), (offset, err)
        assert "internal error" not in err and "Traceback" not in err, (offset, err)
        if rc == EXIT_UNREADABLE:
            assert cut in err  # the message names the file
        _exercise(cut)


@pytest.mark.parametrize("sample,name", DUMPS)
def test_triage_of_a_dump_cut_in_half_still_reports(sample, name, tmp_path, capsys):
    src = samples.path(sample, name)
    cut = str(tmp_path / "half")
    with open(src, "rb") as f, open(cut, "wb") as out:
        out.write(f.read(os.path.getsize(src) // 2))
    rc = main(["triage", cut, "--json"])
    captured = capsys.readouterr()
    assert "internal error" not in captured.err, captured.err
    assert rc in (EXIT_OK, EXIT_PARTIAL, EXIT_UNREADABLE)


@pytest.mark.parametrize("sample,name", DUMPS)
def test_flipped_bytes_never_crash(sample, name, tmp_path, capsys):
    src = samples.path(sample, name)
    size = os.path.getsize(src)
    rng = random.Random(f"{sample}/{name}")
    bad = str(tmp_path / "bad")
    shutil.copyfile(src, bad)
    with open(src, "rb") as f:
        head = f.read(min(size, 1 << 16))
    for round_ in range(12):
        with open(bad, "r+b") as f:
            f.seek(0)
            f.write(head)  # restore the header, then damage it anew
            for _ in range(8):
                where = rng.randrange(min(size, 1 << 16)) if rng.random() < 0.8 else rng.randrange(size)
                f.seek(where)
                f.write(bytes([rng.randrange(256)]))
        rc = main(["info", bad])
        err = capsys.readouterr().err
        assert "internal error" not in err, (round_, err)
        assert rc in (EXIT_OK, EXIT_PARTIAL, EXIT_UNREADABLE)
        _exercise(bad)
