"""extract (ELF vmcore out of any dump), shell, third-party plugins, JSON schemas."""

from __future__ import annotations

import json
import os

import jsonschema
import pytest

import analyzer
import analyzer.extract
from analyzer import PageState
from analyzer.cli import EXIT_OK, EXIT_USAGE, main
from analyzer.plugin import discover
from dumpwriter import KdumpSpec, note, prstatus, write_kdump

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = 4096


def schema(name: str) -> dict:
    with open(os.path.join(ROOT, "docs", name)) as f:
        return json.load(f)


@pytest.fixture
def kdump(tmp_path) -> str:
    pages = {pfn: bytes([pfn & 0xFF]) * PAGE for pfn in (1, 2, 3, 7, 9, 10, 20)}
    path = str(tmp_path / "k")
    notes = note("CORE", 1, prstatus(5, {"rip": 0xFFFFFFFF81000010, "rsp": 0xFFFFC90000003F00}))
    write_kdump(path, KdumpSpec(pages=pages, ram_pfns={0, 4, 5, 6, 8}, notes=notes,
                                vmcoreinfo="OSRELEASE=6.1.0-x\nPAGESIZE=4096\n"))
    return path


@pytest.mark.parametrize("extended", [False, True])
def test_extract_keeps_every_present_page_and_the_notes(kdump, tmp_path, monkeypatch, capsys, extended):
    if extended:  # force ELF extended numbering (PN_XNUM) on a small dump
        monkeypatch.setattr(analyzer.extract, "EXTENDED_AT", 2)
    out = str(tmp_path / "out.elf")
    assert main(["extract", kdump, "-o", out]) == EXIT_OK
    assert "7 pages in 4 segments" in capsys.readouterr().out
    with analyzer.open_dump(kdump) as src, analyzer.open_dump(out) as dst:
        assert dst.format == "elf"
        for pfn in range(0, 21):
            if src.page_state(pfn) is PageState.PRESENT:
                assert dst.read_page(pfn) == src.read_page(pfn)
            else:
                assert dst.page_state(pfn) is not PageState.PRESENT
        assert dst.cpus[0].pid == 5 and dst.cpus[0].registers["rip"] == 0xFFFFFFFF81000010
        assert dst.vmcoreinfo is not None and dst.vmcoreinfo.osrelease == "6.1.0-x"
        assert dst.header["program_headers"] == 5


def test_extract_never_overwrites_without_force(kdump, tmp_path, capsys):
    out = tmp_path / "exists.elf"
    out.write_bytes(b"precious")
    assert main(["extract", kdump, "-o", str(out)]) == EXIT_USAGE
    assert out.read_bytes() == b"precious"
    assert "--force" in capsys.readouterr().err
    assert main(["extract", kdump, "-o", str(out), "--force"]) == EXIT_OK
    assert out.read_bytes()[:4] == b"\x7fELF"


def test_shell_runs_code_with_the_dump_bound(kdump, capsys):
    assert main(["shell", kdump, "-c", "print(dump.format, len(domain.vcpus), run('pages').plugin)"]) == EXIT_OK
    assert capsys.readouterr().out.split() == ["kdump", "1", "pages"]


def test_third_party_plugin_is_discovered_and_runs(kdump, capsys):
    plugins = discover()
    assert "pages" in plugins and plugins["pages"].__module__ == "vmcrash_testplugin"
    assert main(["run", "pages", kdump, "--json"]) == EXIT_OK
    obj = json.loads(capsys.readouterr().out)
    jsonschema.validate(obj, schema("result-schema.json"))
    rows = obj["sections"][0]["rows"]
    assert [(r["present"], r["excluded"]) for r in rows] == [(6, 5), (1, 0)]


def test_every_builtin_result_validates_against_the_schema(tmp_path):
    from test_engine import KTEXT, build_kernel_like_dump

    path = str(tmp_path / "vmcore")
    build_kernel_like_dump(path)
    with analyzer.open(path) as s:
        for name, kwargs in (("vtop", {"address": KTEXT}), ("rd", {"address": 0x2000000, "physical": True}),
                             ("pages", {})):
            from analyzer.render import result_to_obj

            jsonschema.validate(result_to_obj(s.run(name, **kwargs)), schema("result-schema.json"))


def test_extracted_loads_look_like_a_kdump_to_crash(kdump, tmp_path):
    """crash takes an ELF core whose first PT_LOAD has p_align 0 for a kdump
    (as /proc/vmcore and QEMU write it) and then applies the KASLR offset;
    with p_align 4096 it reads it as a netdump and fails on every KASLR
    kernel (found with crash 9.0.2 on an extracted migration stream)."""
    from elftools.elf.elffile import ELFFile

    out = str(tmp_path / "x.elf")
    assert main(["extract", kdump, "-o", out]) == EXIT_OK
    with open(out, "rb") as f:
        loads = [s for s in ELFFile(f).iter_segments() if s["p_type"] == "PT_LOAD"]
    assert loads and all(s["p_align"] == 0 for s in loads)
