"""Xen: the domU xendump (xl dump-core) and the hypervisor crash dump, against
what xl reported live and what crash 8.0.6 reads from the same files."""

from __future__ import annotations

import os
import re

import pytest

import analyzer
import samples
from analyzer.cli import EXIT_OK, main

XENDUMP = "xen-domU-xendump"
HVDUMP = "xen-hypervisor-kdump"


def _crash_ps(sample: str, name: str) -> list[tuple[int, int, int, int, str]]:
    """(pid, ppid, cpu, task, comm) from crash's saved `ps`, idle tasks left out."""
    rows = []
    with open(os.path.join(samples.SAMPLES, sample, "facts", name)) as f:
        for line in f:
            m = re.match(r"^[> ]\s*(\d+)\s+(\d+)\s+(\d+)\s+([0-9a-f]+)\s+\S+\s+\S+\s+\d+\s+\d+\s+(.*)$", line)
            if m and int(m.group(1)):
                rows.append((int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4), 16),
                             m.group(5).strip().strip("[]")))
    return sorted(rows)


@pytest.mark.skipif(XENDUMP not in samples.sample_names(), reason="xendump sample missing")
class TestXendump:
    @pytest.fixture(scope="class")
    def session(self):
        with analyzer.open(samples.path(XENDUMP, "xendump.elf.xz")) as s:
            yield s

    def test_header_and_vcpus(self, session):
        facts = samples.facts(XENDUMP)
        domu = next(d for d in facts["domains"] if d["id"] == 1)
        d = session.dump
        assert d.format == "xendump" and not d.is_hvm
        assert d.xen_version == facts["xen_version"]
        assert len(d.cpus) == len(domu["vcpus"])
        assert sum(r.size for r in d.ranges()) == domu["max_memkb"] * 1024
        assert not d.warnings

    def test_guest_kernel_found_without_notes_or_debug_info(self, session):
        dom = session.domain
        assert dom.type == "pv" and dom.is_pv
        assert dom.vmcoreinfo is not None  # found by scanning the guest's memory
        assert dom.vmcoreinfo.osrelease == next(d for d in samples.facts(XENDUMP)["domains"] if d["id"] == 1)[
            "kernel_release"]

    def test_task_list_equals_crashs(self, session):
        linux = session.linux()
        assert linux.kp.types.startswith("BTF")
        ours = sorted((t.pid, t.ppid, t.cpu, t.address, t.comm) for t in linux.tasks())
        assert ours == _crash_ps(XENDUMP, "crash806-xendump.ps.txt")

    def test_pv_vtop_goes_through_the_p2m(self, session):
        r = session.run("vtop", address="init_task")
        kv = {k: v for k, v, _ in r.sections[0].items}  # type: ignore[union-attr]
        assert kv["machine-physical"] != kv["guest-physical"]
        assert session.dump.p2m[kv["guest-physical"] >> 12] == kv["machine-physical"] >> 12

    def test_triage_and_extract_open_in_drgn(self, session, tmp_path, capsys):
        import drgn
        from drgn.helpers.linux.pid import for_each_task

        from analyzer.triage import triage

        t = triage(session)
        dom = t["domains"][0]
        assert dom["type"] == "pv" and dom["kernel"]["release"] and dom["log"]
        assert {v["stack_method"] for v in dom["vcpus"]} <= {"orc", "scan"}
        out = str(tmp_path / "domU.elf")
        assert main(["extract", session.path, "-o", out]) == EXIT_OK
        # drgn cannot open the xendump itself; the extracted ELF it can.
        prog = drgn.Program()
        prog.set_core_dump(out)
        prog.load_debug_info([samples.vmlinux()])
        assert sorted(int(x.pid) for x in for_each_task(prog)) == [p for p, *_ in _crash_ps(
            XENDUMP, "crash806-xendump.ps.txt")]
