"""KVM/QEMU snapshots: one stopped guest saved by QEMU as a migration stream,
a savevm snapshot in qcow2 and an ELF dump (sample-dumps/kvm-qemu-snapshot),
plus libvirt save files built around the real stream from libvirt's layout."""

from __future__ import annotations

import gzip
import json
import lzma
import os
import struct

import drgn
import pytest
from drgn.helpers.linux.pid import for_each_task

import analyzer
import samples
from analyzer import PageState, open_dump
from analyzer.cli import EXIT_OK, main
from analyzer.kvm import index_cache, migration

SAMPLE = "kvm-qemu-snapshot"
pytestmark = pytest.mark.skipif(SAMPLE not in samples.sample_names(), reason="KVM sample missing")
FORMS = ["migration.stream", "disk.qcow2", "qemu.elf"]


def _facts() -> dict:
    return samples.facts(SAMPLE)


@pytest.fixture(scope="module")
def paths() -> dict[str, str]:
    return {f: samples.path(SAMPLE, f) for f in FORMS}


def test_three_forms_hold_byte_identical_guest_memory(paths):
    dumps = {f: open_dump(p) for f, p in paths.items()}
    try:
        ref = dumps["migration.stream"]
        assert [(r.start, r.end) for r in ref.ranges()] == [(0, 0xA0000), (0xC0000, 96 << 20)]
        compared = 0
        for r in ref.ranges():
            for pfn in range(r.start // 4096, r.end // 4096):
                pages = {f: d.read_page(pfn) for f, d in dumps.items() if d.page_state(pfn) is PageState.PRESENT}
                assert len(pages) == 3, pfn
                assert len(set(pages.values())) == 1, f"pfn {pfn:#x} differs"
                compared += 1
        assert compared == (96 << 20) // 4096 - 32  # all RAM but the VGA window
    finally:
        for d in dumps.values():
            d.close()


@pytest.mark.parametrize("form", ["migration.stream", "disk.qcow2"])
def test_vcpu_registers_equal_qemus_monitor(paths, form):
    want = _facts()["registers"]
    with open_dump(paths[form]) as d:
        assert len(d.cpus) == len(want)
        for cpu in d.cpus:
            for reg, value in want[str(cpu.cpu)].items():
                assert cpu.registers[reg] == int(value, 16), (cpu.cpu, reg)
        assert d.vmcoreinfo is not None and d.vmcoreinfo.osrelease == _facts()["release"]


@pytest.mark.parametrize("form", ["migration.stream", "disk.qcow2"])
def test_triage_without_debug_info_equals_drgn_on_the_elf(paths, form):
    with analyzer.open(paths[form]) as s:
        linux = s.linux()
        tasks = sorted((t.pid, t.ppid, t.comm, t.state, t.cpu) for t in linux.tasks())
        frames, method = linux.best_stack_of_cpu(0)
    assert tasks == sorted((t["pid"], t["ppid"], t["comm"], t["state"], t["cpu"]) for t in _facts()["tasks"])
    assert method == "orc"
    want = _facts()["backtraces"]["0"]
    got = [f.symbol for f in frames]
    assert got[:-1] == want[:-1]  # the last frame is one address under two names (kallsyms alias)


def test_vtop_on_the_stream_equals_drgn_follow_phys(paths):
    with analyzer.open(paths["migration.stream"]) as s:
        vm = s.domain.kernel_memory
        assert vm is not None
        for e in _facts()["vtop"]:
            assert vm.translate(int(e["vaddr"], 16)) == int(e["paddr"], 16), e


def test_extracted_stream_opens_in_drgn_with_the_same_tasks(paths, tmp_path, capsys):
    out = str(tmp_path / "guest.elf")
    assert main(["extract", paths["migration.stream"], "-o", out]) == EXIT_OK
    prog = drgn.Program()
    prog.set_core_dump(out)  # drgn's own ELF reader, not ours
    prog.load_debug_info([samples.vmlinux()])
    pids = sorted(t.pid.value_() for t in for_each_task(prog))
    assert pids == sorted(t["pid"] for t in _facts()["tasks"])


def test_snapshot_is_chosen_by_name_or_id_and_listed(paths, capsys):
    assert main(["info", paths["disk.qcow2"], "--snapshot", "1", "--json"]) == EXIT_OK
    info = json.loads(capsys.readouterr().out)
    assert info["header"]["snapshots"] == "1:vmcrash-snap"
    assert "vmcrash-snap" in info["format_description"]
    assert main(["info", paths["disk.qcow2"], "--snapshot", "nosuch"]) == 3
    assert "vmcrash-snap" in capsys.readouterr().err


def _libvirt(stream: bytes, compressed: int, xml: bytes = b"<domain type='kvm'><name>g</name></domain>") -> bytes:
    """A save file laid out as libvirt's qemu_saveimage.h says (this machine has no libvirt)."""
    data = xml + b"\0" * (4096 - 92 - len(xml))  # libvirt pads the XML so the stream is aligned
    header = struct.pack("<16sIIIII56x", b"LibvirtQemudSave", 2, len(data), 1, compressed, 0)
    return header + data + stream


@pytest.mark.parametrize("compressed,pack", [(0, lambda b: b), (1, gzip.compress), (3, lzma.compress)],
                         ids=["raw", "gzip", "xz"])
def test_libvirt_save_file_opens_like_the_stream(paths, tmp_path, monkeypatch, compressed, pack):
    monkeypatch.setattr("analyzer.kvm.libvirt.CACHE_DIR", str(tmp_path / "cache"))
    with open(paths["migration.stream"], "rb") as f:
        stream = f.read()
    save = tmp_path / "guest.save"
    save.write_bytes(_libvirt(pack(stream), compressed))
    with open_dump(str(save)) as d, open_dump(paths["migration.stream"]) as ref:
        assert d.format == "qemu-migration" and "libvirt save" in d.format_description
        assert d.header["was_running"] is True
        for pfn in range(0, (96 << 20) // 4096, 97):
            if ref.page_state(pfn) is PageState.PRESENT:
                assert d.read_page(pfn) == ref.read_page(pfn)
        assert [c.registers for c in d.cpus] == [c.registers for c in ref.cpus]


def test_second_open_uses_the_index_cache(paths, tmp_path, monkeypatch):
    monkeypatch.setattr(index_cache, "CACHE_DIR", str(tmp_path / "idx"))
    calls = []
    real = migration.parse_stream
    monkeypatch.setattr("analyzer.kvm.snapshot.parse_stream", lambda *a, **k: calls.append(1) or real(*a, **k))
    with open_dump(paths["migration.stream"]) as first:
        pages = first.read_phys(0x100000, 1 << 16)
    with open_dump(paths["migration.stream"]) as second:
        assert second.read_phys(0x100000, 1 << 16) == pages
        assert [c.registers for c in second.cpus] == [c.registers for c in first.cpus]
    assert len(calls) == 1
    assert len(os.listdir(tmp_path / "idx")) == 1


def test_unsupported_ram_encodings_are_named(tmp_path):
    # A stream whose RAM section holds an XBZRLE page: named in the error.
    stream = (b"QEVM" + struct.pack(">I", 3) + b"\x01" + struct.pack(">I", 1) + b"\x03ram"
              + struct.pack(">II", 0, 4) + struct.pack(">Q", (4096 * 2) | 0x04) + b"\x06pc.ram"
              + struct.pack(">Q", 4096 * 2) + struct.pack(">Q", 0x10)
              + b"\x02" + struct.pack(">I", 1) + struct.pack(">Q", 0x40) + b"\x06pc.ram")
    p = tmp_path / "x.stream"
    p.write_bytes(stream)
    with open_dump(str(p)) as d:
        assert any("XBZRLE" in w for w in d.warnings)
