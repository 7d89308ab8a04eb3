"""Every real sample dump opens, and what vmcrash reads from it equals what
crash and drgn reported (sample-dumps/*/facts.json)."""

from __future__ import annotations

import json
from itertools import combinations

import pytest

import analyzer
import samples
from analyzer import PageState
from analyzer.cli import EXIT_OK, main

DUMPS = samples.all_dumps()
SAMPLES = samples.sample_names()
#: Samples of one Linux machine or guest, with the facts schema of sample-dumps/README.md
#: (the Xen samples describe a host and its domains: tests/test_xen.py).
LINUX_DUMPS = [(s, f) for s, f in DUMPS if "release" in samples.facts(s)]


def test_there_are_real_samples():
    assert SAMPLES, "sample-dumps/ has no sample with a facts.json"
    assert len(DUMPS) >= 4


@pytest.mark.parametrize("sample,name", DUMPS)
def test_every_sample_opens_cleanly(sample, name):
    with analyzer.open_dump(samples.path(sample, name)) as d:
        assert d.arch == "x86_64" and d.ranges() and d.cpus
        assert not d.warnings, d.warnings


@pytest.mark.parametrize("sample,name", LINUX_DUMPS)
def test_dump_opens_with_the_facts(sample, name):
    facts = samples.facts(sample)
    with analyzer.open_dump(samples.path(sample, name)) as d:
        assert d.arch == facts.get("arch", "x86_64")
        assert len(d.cpus) == facts["cpus"]
        assert d.vmcoreinfo is not None
        assert d.vmcoreinfo.osrelease == facts["release"]
        for key, value in facts.get("vmcoreinfo", {}).items():
            assert d.vmcoreinfo.get(key) == str(value), key
        assert not d.warnings
        present = sum(1 for r in d.ranges() for pfn in range(r.start // d.page_size, r.end // d.page_size, 64)
                      if d.page_state(pfn) is PageState.PRESENT)
        assert present > 0


@pytest.mark.parametrize("sample,name", LINUX_DUMPS)
def test_info_json_has_the_triage_keys(sample, name, capsys):
    facts = samples.facts(sample)
    assert main(["info", samples.path(sample, name), "--json"]) == EXIT_OK
    info = json.loads(capsys.readouterr().out)
    assert info["format"] in ("elf", "kdump", "qemu-migration")
    assert info["arch"] == "x86_64"
    assert info["cpus"] == facts["cpus"]
    assert info["vmcoreinfo"]["OSRELEASE"] == facts["release"]


def _pairs() -> list[tuple[str, str, str]]:
    out = []
    for s in SAMPLES:
        files = [f for f in samples.dump_files(s) if f in dict((n, 1) for _, n in DUMPS if _ == s)]
        out += [(s, a, b) for a, b in combinations(files, 2)]
    return out


@pytest.mark.parametrize("sample,a,b", _pairs())
def test_formats_of_one_capture_hold_the_same_pages(sample, a, b):
    """Every page present in two formats of the same capture has the same bytes.
    (Which pages are present may differ: makedumpfile -E keeps short runs of
    filtered pages that the compressed formats drop.)"""
    with analyzer.open_dump(samples.path(sample, a)) as da, analyzer.open_dump(samples.path(sample, b)) as db:
        if da.format == db.format == "kdump" or {da.format, db.format} == {"elf", "kdump"}:
            # makedumpfile's formats of one /proc/vmcore describe the same RAM
            assert [(r.start, r.end) for r in da.ranges()] == [(r.start, r.end) for r in db.ranges()]
        both = 0
        for r in da.ranges():
            for pfn in range(r.start // 4096, r.end // 4096):
                if da.page_state(pfn) is PageState.PRESENT and db.page_state(pfn) is PageState.PRESENT:
                    assert da.read_page(pfn) == db.read_page(pfn), f"pfn {pfn:#x}"
                    both += 1
        assert both > 1000
