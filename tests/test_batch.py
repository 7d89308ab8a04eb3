"""Batch triage: one line per file, broken files reported, groups at the end;
on local processes and on a local Dask cluster."""

from __future__ import annotations

import json
import shutil

import pytest

from analyzer.cli import EXIT_PARTIAL, main
from test_engine import build_kernel_like_dump


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("batch")
    build_kernel_like_dump(str(d / "a.vmcore"))
    shutil.copyfile(d / "a.vmcore", d / "b.vmcore")
    (d / "junk.bin").write_bytes(b"not a dump at all" * 100)
    with open(d / "a.vmcore", "rb") as f, open(d / "cut.vmcore", "wb") as out:
        out.write(f.read(100))  # cut inside the program headers
    return d


@pytest.mark.parametrize("scheduler", [None, "local"])
def test_batch_reports_every_file_and_groups(folder, capsys, scheduler):
    argv = ["triage", "--batch", str(folder), "--jobs", "2"]
    if scheduler:
        pytest.importorskip("distributed")
        argv += ["--scheduler", scheduler]
    assert main(argv) == EXIT_PARTIAL  # two files are unreadable
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    dumps = {line["file"].rsplit("/", 1)[1]: line for line in lines if line["type"] == "dump"}
    assert set(dumps) == {"a.vmcore", "b.vmcore", "junk.bin", "cut.vmcore"}
    assert "error" in dumps["junk.bin"] and "junk.bin" in dumps["junk.bin"]["error"]
    assert "error" in dumps["cut.vmcore"]
    assert dumps["a.vmcore"]["signature"] == dumps["b.vmcore"]["signature"]
    groups = lines[-1]
    assert groups["type"] == "groups"
    assert groups["groups"][0]["count"] == 2
    assert len(groups["unreadable"]) == 2
