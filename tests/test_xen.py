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


@pytest.mark.skipif(HVDUMP not in samples.sample_names(), reason="hypervisor kdump sample missing")
class TestHypervisorKdump:
    @pytest.fixture(scope="class")
    def session(self):
        with analyzer.open(samples.path(HVDUMP, "vmcore.elf.xz")) as s:
            yield s

    def test_xen_found_from_its_notes(self, session):
        facts = samples.facts(HVDUMP)
        hv = session.machine.hypervisor
        assert hv is not None and hv["name"] == "xen"
        assert hv["version"] == facts["xen_version"]
        assert hv["xen_phys_start"] == int(facts["hypervisor"]["xen_phys_start"], 16)
        assert hv["pcpus"] == facts["hypervisor"]["pcpus"]

    def test_domains_and_their_memory_equal_xl(self, session):
        facts = samples.facts(HVDUMP)
        ours = {d.id: d for d in session.machine.domains}
        assert sorted(ours) == sorted(d["id"] for d in facts["domains"])
        for d in facts["domains"]:
            mem_kb = sum(r.size for r in ours[d["id"]].memory_ranges()) // 1024
            # xl counts the domain's allocation; the frame table also owns a
            # couple of special pages (shared info, console ring)
            assert abs(mem_kb - d["max_memkb"]) <= 64, (d["id"], mem_kb, d["max_memkb"])

    @pytest.mark.parametrize("domid", [0, 1])
    def test_each_guest_kernel_is_analysed_inside_the_hypervisor_dump(self, session, domid):
        facts = next(d for d in samples.facts(HVDUMP)["domains"] if d["id"] == domid)
        linux = session.linux(session.machine.domain(domid))
        assert linux.release == facts.get("kernel_release", "6.1.192-vmcrash")
        ours = {t.pid: t.comm for t in linux.tasks()}
        theirs = facts.get("tasks_in_guest") or facts.get("tasks") or []
        named = [t for t in theirs if t["comm"].startswith(("vmcrash-", "xl", "xenstored", "xenconsoled", "init"))]
        assert named, "facts have no user tasks to compare"
        for t in named:
            assert ours.get(t["pid"], "").startswith(t["comm"][:15]), t
        assert linux.log_lines()

    def test_domains_plugin_and_ps_by_domain(self, session, capsys):
        assert main(["run", "domains", session.path, "--json"]) == EXIT_OK
        import json

        obj = json.loads(capsys.readouterr().out)
        rows = obj["sections"][1]["rows"]
        assert [r["id"] for r in rows] == [0, 1] and all(r["kernel"] for r in rows)
        assert main(["run", "ps", session.path, "--domain", "1", "--state", "R"]) in (EXIT_OK,)
        assert "vmcrash-spinner" in capsys.readouterr().out


HOST = "xen-host-qemu"


@pytest.mark.skipif(HOST not in samples.sample_names(), reason="host QEMU sample missing")
def test_xen_found_in_a_qemu_host_dump_with_xen_syms():
    """No Xen notes at all: a CPU's CR3 locates Xen, xen-syms gives the
    symbols and offsets, capstone reads the version out of Xen's code."""
    facts = samples.facts(HOST)
    xen_syms = samples.path("xen-kernel", "xen-syms.xz")
    with analyzer.open(samples.path(HOST, "host.elf.xz"), xen_syms=xen_syms) as s:
        hv = s.machine.hypervisor
        assert hv is not None and hv["version"] == facts["xen_version"]
        assert hv["xen_phys_start"] == int(facts["hypervisor"]["xen_phys_start"], 16)
        assert sorted(d.id for d in s.machine.domains) == sorted(d["id"] for d in facts["domains"])
        spinner = [t for t in s.linux(s.machine.domain(1)).tasks() if t.comm == "vmcrash-spinner"]
        assert spinner and spinner[0].state == "R"
        # each pCPU's current vCPU, as crash's `pcpus` read it
        current = {p["pcpu"]: (p["domain"], p["vcpu"]) for p in facts["hypervisor"]["pcpu_current_in_dump"]}
        from analyzer.xen.stacks import pcpu_current

        assert {i: pcpu_current(s.machine.xen_prog, i) for i in current} == current


@pytest.mark.skipif(HOST not in samples.sample_names(), reason="host QEMU sample missing")
def test_xen_found_in_a_qemu_host_dump_without_xen_syms(capsys):
    """No notes, no xen-syms: a CPU's CR3 reaches Xen's image, whose own
    symbol table gives _stext (so xen_phys_start), the version functions and
    the console ring; domains need offsets only xen-syms has, and say so."""
    facts = samples.facts(HOST)
    path = samples.path(HOST, "host.elf.xz")
    with analyzer.open(path) as s:
        hv = s.machine.hypervisor
        assert hv is not None and hv["version"] == facts["xen_version"]
        assert hv["xen_phys_start"] == int(facts["hypervisor"]["xen_phys_start"], 16)
        assert s.machine.domains == [] and "--xen-syms" in s.machine.notes[0]
    with open(os.path.join(samples.SAMPLES, HOST, "facts", "xl-dmesg.host.txt")) as f:
        live = [ln.rstrip("\n") for ln in f if ln.startswith("(XEN)")]
    assert main(["run", "xenlog", path]) == EXIT_OK
    assert capsys.readouterr().out.splitlines()[:20] == live[:20]
    assert main(["run", "bt", path, "--xen"]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.count("stack SCAN") == 2 and "lstar_enter" in out
    assert main(["run", "ps", path]) == 2
    assert "no domain is known" in capsys.readouterr().err


@pytest.mark.skipif(HVDUMP not in samples.sample_names(), reason="hypervisor kdump sample missing")
def test_xen_console_panic_and_stacks_without_xen_syms(capsys):
    """A Xen kdump without xen-syms: the console ring and the panic through
    the symbol table in Xen's image, each pCPU's stack scanned and named."""
    facts = samples.facts(HVDUMP)
    path = samples.path(HVDUMP, "vmcore.elf.xz")
    with analyzer.open(path) as s:
        want = facts["hypervisor"]["panic"]
        assert s.machine.hypervisor["panic"] == {"cpu": want["cpu"], "message": want["message"]}
        from analyzer.triage import triage

        panic = triage(s)["hypervisor"]["panic"]
        assert panic["stack_method"] == "scan"
        names = [f["symbol"] for f in panic["stack"]]
        chain = ["kexec_crash_save_cpu", "kexec_crash", "do_crashdump_trigger", "handle_keypress", "do_sysctl"]
        assert [n for n in names if n in chain] == chain
    assert main(["run", "pcpus", path, "--json"]) == EXIT_OK
    import json

    rows = json.loads(capsys.readouterr().out)["sections"][0]["rows"]
    assert rows[0]["function"].startswith("handle_keypress") and rows[1]["function"].startswith("do_nmi+")


def test_an_unknown_domain_is_a_usage_error(capsys):
    path = samples.path("linux-6.1-sysrq", "vmcore.kdump-zlib")
    assert main(["run", "ps", path, "--domain", "7"]) == 2
    assert "no domain 7" in capsys.readouterr().err


@pytest.mark.skipif(HVDUMP not in samples.sample_names(), reason="hypervisor kdump sample missing")
def test_vcpus_from_xen_syms_match_xl_vcpu_list():
    """With xen-syms: every domain's vCPUs, running or not as `xl vcpu-list`
    said, and the running ones' registers from the top of their pCPU's stack."""
    facts = samples.facts(HVDUMP)
    with analyzer.open(samples.path(HVDUMP, "vmcore.elf.xz"),
                       xen_syms=samples.path("xen-kernel", "xen-syms.xz")) as s:
        for fd in facts["domains"]:
            dom = s.machine.domain(fd["id"])
            ours = {v.id: v for v in dom.vcpus}
            assert sorted(ours) == sorted(v["id"] for v in fd["vcpus"])
            for v in fd["vcpus"]:
                assert ours[v["id"]].running == v["state"].startswith("r"), (fd["id"], v)
        # dom0 was running `xl debug-keys C`: a hypercall from the privcmd driver
        running0 = next(v for v in s.machine.domain(0).vcpus if v.running)
        frames, _ = s.linux(s.machine.domain(0)).best_stack_of_cpu(running0.id)
        assert "privcmd_ioctl" in [f.symbol for f in frames]
        # the domU's running vCPU was in the spinner, in user space
        running1 = next(v for v in s.machine.domain(1).vcpus if v.running)
        assert running1.registers["rip"] < 1 << 47


@pytest.mark.skipif(HVDUMP not in samples.sample_names(), reason="hypervisor kdump sample missing")
def test_xen_console_and_panic_with_xen_syms(capsys):
    facts = samples.facts(HVDUMP)
    path = samples.path(HVDUMP, "vmcore.elf.xz")
    xen_syms = samples.path("xen-kernel", "xen-syms.xz")
    with analyzer.open(path, xen_syms=xen_syms) as s:
        want = facts["hypervisor"]["panic"]
        assert s.machine.hypervisor["panic"] == {"cpu": want["cpu"], "message": want["message"]}
    assert main(["run", "xenlog", path, "--xen-syms", xen_syms]) == EXIT_OK
    out = capsys.readouterr().out
    assert "Xen version 4.17" in out and want["message"] in out
    with open(os.path.join(samples.SAMPLES, HVDUMP, "facts", "xl-dmesg.kdump.txt")) as f:
        live = [ln.rstrip("\n") for ln in f if ln.startswith("(XEN)")]
    assert live[:20] == out.splitlines()[:20]  # the ring's start, as `xl dmesg` printed it live


@pytest.mark.skipif(HVDUMP not in samples.sample_names(), reason="hypervisor kdump sample missing")
def test_xen_stacks_of_every_pcpu(capsys):
    """Xen's own stacks from the crash notes and xen-syms (crash 8.0.6 prints
    "(no stack)" for both pCPUs of this dump): pCPU 0 ran the `C` debug key
    from dom0's hypercall into kexec; pCPU 1 was shot down by the crash NMI.
    Each pCPU's current vCPU equals crash's `pcpus`."""
    facts = samples.facts(HVDUMP)
    path = samples.path(HVDUMP, "vmcore.elf.xz")
    xen_syms = samples.path("xen-kernel", "xen-syms.xz")
    assert main(["run", "bt", path, "--xen", "--xen-syms", xen_syms, "--json"]) == EXIT_OK
    import json

    sections = json.loads(capsys.readouterr().out)["sections"]
    names = [[r["symbol"].split("+")[0] for r in s["rows"] if r["symbol"]] for s in sections]
    chain0 = ["kexec_crash_save_cpu", "kexec_crash", "do_crashdump_trigger", "handle_keypress", "do_sysctl",
              "pv_hypercall", "lstar_enter"]
    assert [n for n in names[0] if n in chain0] == chain0
    assert [n for n in names[1] if n in ("do_nmi_crash", "do_nmi")] == ["do_nmi_crash", "do_nmi"]
    current = {p["pcpu"]: (p["domain"], p["vcpu"]) for p in facts["hypervisor"]["pcpu_current_in_dump"]}
    for pcpu, (dom, vcpu) in current.items():
        assert sections[pcpu]["title"] == f"pCPU {pcpu}: d{dom}v{vcpu}"
    assert main(["run", "pcpus", path, "--xen-syms", xen_syms, "--json"]) == EXIT_OK
    rows = json.loads(capsys.readouterr().out)["sections"][0]["rows"]
    assert {r["pcpu"]: (r["domain"], r["vcpu"]) for r in rows} == current
    assert rows[0]["function"].startswith("handle_keypress") and rows[1]["function"].startswith("do_nmi+")
    # on a plain Linux dump: a clear refusal, not a traceback
    assert main(["run", "bt", samples.path("linux-6.1-sysrq", "vmcore.kdump-zlib"), "--xen"]) != EXIT_OK
    assert "no Xen hypervisor" in capsys.readouterr().err
    with analyzer.open(path, xen_syms=xen_syms) as s:
        from analyzer.triage import triage

        panic = triage(s)["hypervisor"]["panic"]
        assert panic["cpu"] == 0 and panic["stack_method"] == "unwind"
        assert "do_crashdump_trigger" in [f["symbol"] for f in panic["stack"]]


@pytest.mark.skipif(XENDUMP not in samples.sample_names(), reason="xendump sample missing")
def test_p2m_of_the_xendump_equals_its_p2m_section(capsys):
    """`p2m` against the .xen_p2m section read here with pyelftools."""
    import json

    from elftools.elf.elffile import ELFFile

    path = samples.path(XENDUMP, "xendump.elf.xz")
    with open(path, "rb") as f:
        elf = ELFFile(f)
        raw = elf.get_section_by_name(".xen_p2m").data()
    pairs = [(int.from_bytes(raw[i:i + 8], "little"), int.from_bytes(raw[i + 8:i + 16], "little"))
             for i in range(0, len(raw), 16)]
    valid = [(p, m) for p, m in pairs if m != (1 << 64) - 1 and p != (1 << 64) - 1]
    for pfn, mfn in [valid[0], valid[len(valid) // 2], valid[-1]]:
        assert main(["run", "p2m", path, hex((pfn << 12) | 0x123), "--json"]) == EXIT_OK
        kv = json.loads(capsys.readouterr().out)["sections"][0]["items"]
        got = {i["key"]: i["value"] for i in kv}
        assert got["mfn"] == mfn and got["machine"] == (mfn << 12) | 0x123
    assert main(["run", "p2m", path, "--limit", "3", "--json"]) == EXIT_OK
    rows = json.loads(capsys.readouterr().out)["sections"][0]["rows"]
    assert len(rows) == 3 and rows[0]["gpa"] == valid[0][0] << 12 and rows[0]["to"] == valid[0][1] << 12


@pytest.mark.skipif(HVDUMP not in samples.sample_names(), reason="hypervisor kdump sample missing")
def test_extracted_pv_guest_opens_in_crash_and_drgn(tmp_path, capsys):
    """A PV guest out of the hypervisor dump: crash 9.0.2 opened it (its `ps`,
    saved in facts/, is compared here) -- crash takes a kernel that ran as a
    PV guest in its Xen mode, so the file carries an identity p2m in a Xen
    CRASH_INFO note -- and drgn unwinds its vCPUs (pr_pid set)."""
    import drgn
    from drgn.helpers.linux.pid import for_each_task
    from drgn.helpers.linux.sched import cpu_curr
    from elftools.elf.elffile import ELFFile

    out = str(tmp_path / "dom1.elf")
    assert main(["extract", samples.path(HVDUMP, "vmcore.elf.xz"), "--domain", "1", "--xen-syms",
                 samples.path("xen-kernel", "xen-syms.xz"), "-o", out]) == EXIT_OK
    assert "2 vCPUs" in capsys.readouterr().out
    with open(out, "rb") as f:
        elf = ELFFile(f)
        loads = [s.header for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
        notes = [n for s in elf.iter_segments() if s["p_type"] == "PT_NOTE" for n in s.iter_notes()]
        xen = [n for n in notes if n["n_name"] == "Xen"]
        assert len(xen) == 1 and xen[0]["n_type"] == 0x1000001
        ll = int.from_bytes(xen[0]["n_descdata"][72:80], "little")
        # the frame-list-list names frame lists, which name p2m pages mapping pfn -> pfn
        seg = next(h for h in loads if h.p_paddr <= ll << 12 < h.p_paddr + h.p_filesz)
        f.seek(seg.p_offset + (ll << 12) - seg.p_paddr)
        fl = int.from_bytes(f.read(8), "little")
        f.seek(seg.p_offset + (fl << 12) - seg.p_paddr)
        p2m = int.from_bytes(f.read(8), "little")
        f.seek(seg.p_offset + (p2m << 12) - seg.p_paddr + 8 * 5)
        assert int.from_bytes(f.read(8), "little") == 5
        assert [int.from_bytes(n["n_descdata"][32:36], "little")  # pr_pid
                for n in notes if n["n_type"] == "NT_PRSTATUS"] == [1, 2]
    prog = drgn.Program()
    prog.set_core_dump(out)
    prog.load_debug_info([samples.vmlinux()])
    tasks = sorted(int(t.pid) for t in for_each_task(prog))
    assert "xen_safe_halt" in [fr.name for fr in prog.stack_trace(cpu_curr(prog, 0))]
    with open(os.path.join(samples.SAMPLES, HVDUMP, "facts", "crash-9.0.2.extracted-dom1.txt")) as f:
        text = f.read()
    crash = sorted(int(m.group(1)) for m in re.finditer(
        r"^[> ]\s+(\d+)\s+\d+\s+\d+\s+[0-9a-f]+\s+\S+\s+\S+\s+\d+\s+\d+\s+(.*)$", text, re.M) if int(m.group(1)))
    assert crash and tasks == crash
    assert "xen_safe_halt" in text  # crash's bt of CPU 0, through the identity p2m


@pytest.mark.skipif(HVDUMP not in samples.sample_names(), reason="hypervisor kdump sample missing")
def test_domain_names_from_xenstore_and_handles_equal_xl():
    """Names from xenstored's records in dom0's memory (no xen-syms needed),
    handles from struct domain (xen-syms): both as `xl list -l` said."""
    with open(os.path.join(samples.SAMPLES, HVDUMP, "facts", "xl-list-l.kdump.json")) as f:
        xl = {d["domid"]: d["config"]["c_info"] for d in __import__("json").load(f)}
    with analyzer.open(samples.path(HVDUMP, "vmcore.elf.xz")) as s:
        assert {d.id: d.name for d in s.machine.domains} == {i: c["name"] for i, c in xl.items()}
    with analyzer.open(samples.path(HVDUMP, "vmcore.elf.xz"), xen_syms=samples.path("xen-kernel", "xen-syms.xz")) as s:
        for d in s.machine.domains:
            assert d.details["handle"] == (xl[d.id].get("uuid") or "00000000-0000-0000-0000-000000000000")
            assert d.details["state"] == "running" and d.details["shutdown"] is None


def test_xenstore_records_bounded_and_validated():
    """Hand-made TDB records: a live one is read, a freed one (other magic),
    a lying length and an unprintable name are not."""
    import struct

    from analyzer.dump import PhysRange
    from analyzer.xen.xenstore import xenstore_names

    def record(key: bytes, value: bytes, gen: int, magic: bytes = b"\x99\x19\x01\x26", lie: int = 0) -> bytes:
        perms = struct.pack("<II", 0, 0) + struct.pack("<II", 1, 1)
        data = struct.pack("<QIII", gen, 2, len(value), 0) + perms + value + b"\0" * 4
        return struct.pack("<IIIII", 0, 0, len(key), len(data) + lie, 0) + magic + key + data

    mem = (b"\0" * 100 + record(b"/local/domain/3/name", b"old", 1) + record(b"/local/domain/3/name", b"new", 2)
           + record(b"/local/domain/4/name", b"freed", 9, magic=b"\x66\xe6\xfe\xd9")
           + record(b"/local/domain/5/name", b"liar", 9, lie=7) + record(b"/local/domain/6/name", b"\x01\x02", 9))
    mem += b"\0" * (-len(mem) % 4096)
    names = xenstore_names([PhysRange(0, len(mem))], lambda a, n: mem[a:a + n])
    assert names == {3: "new"}
    # a record across the edge of the 1 MiB windows the scan reads
    for at in (1 << 20) - 30, (1 << 20) + 8:
        big = bytearray(2 << 20)
        rec = record(b"/local/domain/7/name", b"edge", 1)
        big[at:at + len(rec)] = rec
        assert xenstore_names([PhysRange(0, len(big))], lambda a, n: bytes(big[a:a + n])) == {7: "edge"}


PVH = "xen-pvh-kdump"


@pytest.mark.skipif(PVH not in samples.sample_names(), reason="PVH sample missing")
class TestPvhGuest:
    """A PVH guest in a Xen kdump: its memory through the domain's p2m table
    (NPT format: TCG is AMD), against what the guest said of itself and what
    crash 8.0.6 printed of Xen's structures."""

    @pytest.fixture(scope="class")
    def session(self):
        with analyzer.open(samples.path(PVH, "vmcore.elf.xz"), xen_syms=samples.path("xen-kernel", "xen-syms.xz")) as s:
            yield s

    def _tasks_equal_the_guests_own(self, linux, want) -> None:
        ours = {t.pid: t for t in linux.tasks()}
        for t in want:
            assert t["pid"] in ours and ours[t["pid"]].comm.startswith(t["comm"].split("-")[0][:15]), t
        assert {ours[p].comm for p in ours if p not in {t["pid"] for t in want}} <= {"sleep"}

    def test_domains_vcpus_and_pcpus(self, session):
        facts = samples.facts(PVH)
        m = session.machine
        assert [(d.id, d.name, d.type) for d in m.domains] == [(d["id"], d["name"], d["type"]) for d in facts["domains"]]
        xen = facts["domains"][1]["xen_state_in_dump"]
        vcpus = {v.id: v for v in m.domain(1).vcpus}
        for v in xen["vcpus"]:
            ours = vcpus[v["vcpu_id"]]
            assert ours.running == (v["is_running"] == "true") and ours.pcpu == v["processor"]
            assert ours.registers["cr3"] == int(v["guest_cr"][3], 16)
            assert ours.registers["rip"] == int(v["user_regs"]["rip"], 16)
            assert ours.registers["rsp"] == int(v["user_regs"]["rsp"], 16)
        from analyzer.xen.stacks import pcpu_current

        assert {p["pcpu"]: (p["domain"], p["vcpu"]) for p in facts["hypervisor"]["pcpu_current_in_dump"]} == \
            {i: pcpu_current(m.xen_prog, i) for i in range(2)}

    def test_guest_kernel_through_the_p2m_table(self, session, capsys):
        facts = samples.facts(PVH)
        d = facts["domains"][1]
        dom = session.machine.domain(1)
        linux = session.linux(dom)
        assert linux.release == d["kernel_release"]
        self._tasks_equal_the_guests_own(linux, d["tasks"])
        note = d["vmcoreinfo_note"]
        gpa = int(note["paddr"], 16)
        assert dom.read_phys(gpa + 12, 12) == b"VMCOREINFO\0\0"
        assert main(["run", "p2m", session.path, "--domain", "1", hex(gpa), "--xen-syms",
                     samples.path("xen-kernel", "xen-syms.xz"), "--json"]) == EXIT_OK
        items = {i["key"]: i["value"] for i in __import__("json").loads(capsys.readouterr().out)["sections"][0]["items"]}
        assert items["machine"] == int(note["machine_address"], 16)

    def test_guest_virtual_addresses_equal_the_hand_walks(self, session):
        dom = session.machine.domain(1)
        for check in samples.facts(PVH)["domains"][1]["gva_checks"]:
            walker = dom.page_tables(int(check["guest_cr3"], 16))
            gpa, _ = walker.translate(int(check["gva"], 16))
            assert gpa == int(check["gpa"], 16)
            assert dom.pfn_to_mfn(gpa >> 12) << 12 | (gpa & 0xFFF) == int(check["machine_address"], 16)
            if "bytes_at_gva" in check:
                want = bytes.fromhex(check["bytes_at_gva"])
                assert dom.read_phys(gpa, len(want)) == want

    def test_without_xen_syms_the_m2p_gives_the_same_guest(self, session):
        """Without xen-syms: the frame table and M2P give the guest's frames,
        its kernel's tables say it is an HVM container (PVH and HVM look the
        same from there), and every frame maps where the p2m table says."""
        facts = samples.facts(PVH)
        table = session.machine.domain(1)
        with analyzer.open(samples.path(PVH, "vmcore.elf.xz")) as s:
            dom = s.machine.domain(1)
            assert dom.type == "hvm" and not dom.is_pv and dom.name == "vmcrash-pvh"
            self._tasks_equal_the_guests_own(s.linux(dom), facts["domains"][1]["tasks"])
            pfns = [p for r in dom.memory_ranges() for p in range(r.start >> 12, r.end >> 12)]
            assert len(pfns) > 30000
            assert all(dom.pfn_to_mfn(p) == table.pfn_to_mfn(p) for p in pfns[::97])

    def test_triage_reports_the_pvh_guest(self, session):
        import json as _json

        import jsonschema

        from analyzer.triage import triage

        t = triage(session)
        with open(os.path.join(samples.ROOT, "docs", "triage-schema.json")) as f:
            jsonschema.validate(t, _json.load(f))
        dom = t["domains"][1]
        assert dom["type"] == "pvh" and dom["kernel"]["release"] == samples.facts(PVH)["domains"][1]["kernel_release"]
        assert [v["running"] for v in dom["vcpus"]] == [False, True]
        assert "native_safe_halt" in [f["symbol"] for f in dom["vcpus"][0]["stack"]]
        assert t["hypervisor"]["panic"]["cpu"] == samples.facts(PVH)["hypervisor"]["panic"]["cpu"]
