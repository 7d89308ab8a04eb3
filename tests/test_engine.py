"""The plugin engine, renderers and CLI on a synthetic dump with real-shaped
page tables (the sample dumps test the same plugins against crash)."""

from __future__ import annotations

import json
import struct

import pytest

import analyzer
from analyzer.cli import EXIT_OK, EXIT_PARTIAL, EXIT_UNREADABLE, EXIT_USAGE, main
from analyzer.plugin import CannotRun, PluginError, discover
from analyzer.render import render
from analyzer.session import Session
from dumpwriter import Load, note, prstatus, vmcoreinfo_note, write_elf

START_KERNEL_MAP = 0xFFFFFFFF80000000
PHYS_BASE = 0x1000000
KTEXT = 0xFFFFFFFF81000000  # maps to PHYS_BASE + 0x1000000 = 0x2000000
P, RW, PS = 1, 2, 0x80


def build_kernel_like_dump(path: str) -> None:
    """64 MiB of 'RAM' (the last 16 MiB excluded) with a 4-level table mapping
    the kernel text (a 2 MiB page) and one 4 KiB page of a 'vmalloc' area."""
    ram = bytearray(48 << 20)
    pgd, pud, pmd, pte_pud, pte_pmd, pte = (0x2100000 + i * 0x1000 for i in range(6))

    def put(addr: int, value: int) -> None:
        ram[addr:addr + 8] = struct.pack("<Q", value)

    def ix(va: int, level: int) -> int:
        return (va >> (12 + 9 * (level - 1))) & 0x1FF

    text_phys = KTEXT - START_KERNEL_MAP + PHYS_BASE  # 0x2000000
    put(pgd + 8 * ix(KTEXT, 4), pud | P | RW)
    put(pud + 8 * ix(KTEXT, 3), pmd | P | RW)
    put(pmd + 8 * ix(KTEXT, 2), text_phys | P | RW | PS)
    vmalloc = 0xFFFFC90000001000
    put(pgd + 8 * ix(vmalloc, 4), pte_pud | P | RW)
    put(pte_pud + 8 * ix(vmalloc, 3), pte_pmd | P | RW)
    put(pte_pmd + 8 * ix(vmalloc, 2), pte | P | RW)
    put(pte + 8 * ix(vmalloc, 1), 0x200000 | P | RW)
    ram[text_phys:text_phys + 16] = b"kernel text here"
    ram[0x200000:0x200010] = b"vmalloc'd page!!"
    init_top_pgt = pgd - PHYS_BASE + START_KERNEL_MAP  # virtual, in the text mapping
    vmci = (f"OSRELEASE=6.1.0-synthetic\nPAGESIZE=4096\nSYMBOL(init_top_pgt)={init_top_pgt:x}\n"
            f"SYMBOL(swapper_pg_dir)={init_top_pgt:x}\n"
            f"NUMBER(phys_base)={PHYS_BASE}\nNUMBER(pgtable_l5_enabled)=0\nKERNELOFFSET=0\n")
    notes = note("CORE", 1, prstatus(1, {"rip": KTEXT})) + vmcoreinfo_note(vmci)
    # RAM from 0; pages from 0x3000000 are excluded (memsz > filesz).
    write_elf(path, [Load(0, bytes(ram), memsz=64 << 20)], notes)


@pytest.fixture(scope="module")
def kdump(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("engine") / "vmcore")
    build_kernel_like_dump(path)
    return path


def test_builtin_plugins_are_discovered():
    table = discover()
    assert {"rd", "vtop"} <= set(table)
    for cls in table.values():
        assert cls.help and cls.name


def test_vtop_walks_the_kernel_tables(kdump):
    with analyzer.open(kdump) as s:
        assert isinstance(s, Session)
        r = s.run("vtop", address=KTEXT + 0x1234)
    kv = dict((k, v) for k, v, _ in r.sections[0].items)  # type: ignore[union-attr]
    assert kv["guest-physical"] == 0x2001234
    assert kv["page size"] == 2 << 20
    assert "init_top_pgt" in kv["root from"]
    assert [row[0] for row in r.sections[1].rows] == ["PML4", "PDPT", "PD"]  # type: ignore[union-attr]
    assert not r.partial


def test_vtop_of_an_unmapped_address_is_partial(kdump):
    with analyzer.open(kdump) as s:
        r = s.run("vtop", address=0xFFFF888000000000)
    assert r.partial and "not present" in r.warnings[0]


def test_rd_virtual_physical_and_excluded(kdump):
    with analyzer.open(kdump) as s:
        r = s.run("rd", address=0xFFFFC90000001000, length=16)
        assert r.sections[1].rows[0][2] == "vmalloc'd page!!"  # type: ignore[union-attr]
        r = s.run("rd", address=0x2000000, length=16, physical=True)
        assert r.sections[1].rows[0][2] == "kernel text here"  # type: ignore[union-attr]
        r = s.run("rd", address=0x2FFFFF8, length=16, physical=True)
        assert r.partial and "excluded" in r.warnings[0]
        assert r.sections[1].rows[0][1].endswith("?? ?? ?? ?? ?? ?? ?? ??")  # type: ignore[union-attr]
        with pytest.raises(PluginError):
            s.run("rd", address=0, length=0, physical=True)
        with pytest.raises(PluginError):
            s.run("nosuch")


def test_plugins_that_cannot_run_say_why(tmp_path):
    path = str(tmp_path / "bare")
    write_elf(path, [Load(0, bytes(4096))])  # no VMCOREINFO, no CR3
    with analyzer.open(path) as s:
        with pytest.raises(CannotRun) as e:
            s.run("vtop", address=KTEXT)
        assert "init_top_pgt" in str(e.value)
        assert s.run("vtop", address=KTEXT, cr3=0).partial  # --cr3 lifts the need


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_every_result_renders(kdump, fmt):
    with analyzer.open(kdump) as s:
        for name, kwargs in (("vtop", {"address": KTEXT}), ("rd", {"address": 0x2000000, "physical": True})):
            out = render(s.run(name, **kwargs), fmt)
            assert out.strip()
            if fmt == "json":
                obj = json.loads(out)
                assert obj["schema"] == "vmcrash.result/1" and obj["plugin"] == name


def test_cli_run_exit_codes_and_json(kdump, capsys, tmp_path):
    assert main(["run", "vtop", kdump, hex(KTEXT), "--json"]) == EXIT_OK
    obj = json.loads(capsys.readouterr().out)
    assert obj["sections"][0]["items"][1]["value"] == 0x2000000
    assert main(["run", "vtop", kdump, "0xffff888000000000"]) == EXIT_PARTIAL
    capsys.readouterr()
    assert main(["run", "nosuch", kdump]) == EXIT_USAGE
    junk = tmp_path / "junk"
    junk.write_bytes(b"x" * 100)
    assert main(["run", "vtop", str(junk), "0"]) == EXIT_UNREADABLE
    err = capsys.readouterr().err
    assert str(junk) in err and "Traceback" not in err


def test_cli_plugins_with_dump_says_why_not(tmp_path, capsys):
    path = str(tmp_path / "bare")
    write_elf(path, [Load(0, bytes(4096))])
    assert main(["plugins", path]) == EXIT_OK
    out = capsys.readouterr().out
    assert "no  vtop" in out and "init_top_pgt" in out
