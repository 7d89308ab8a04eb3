"""Linux-level facts from the real samples, with and without debug info,
against what crash and drgn reported (sample-dumps/*/facts.json)."""

from __future__ import annotations

import re

import pytest

import analyzer
import samples
from analyzer.triage import PANIC_MACHINERY, triage

LINUX_SAMPLES = [s for s in samples.sample_names() if samples.primary_dump(s) and "release" in samples.facts(s)]
PANIC_SAMPLES = [s for s in LINUX_SAMPLES if (samples.facts(s).get("panic") or {}).get("cpu") is not None]
_TS = re.compile(r"^\[\s*\d+\.\d+\] ")


def _norm(name: str) -> str:
    return re.sub(r"\.(cold|isra|constprop|part)(\.\d+)*$", "", name)


def _past_machinery(names: list[str]) -> list[str]:
    out: list[str] = []
    for n in names:
        n = _norm(n)
        if n in PANIC_MACHINERY or n in ("machine_kexec", "__crash_kexec", "crash_kexec"):
            continue
        if out and out[-1] == n:
            continue
        out.append(n)
    return out


@pytest.fixture(scope="module")
def vmlinux() -> str:
    path = samples.vmlinux()
    assert path, "sample-dumps/kernel/vmlinux.xz is missing"
    return path


def _open(sample: str, with_debug: bool, vmlinux: str | None) -> analyzer.Session:
    name = samples.primary_dump(sample)
    assert name
    return analyzer.open(samples.path(sample, name), vmlinux=vmlinux if with_debug else None,
                         debuginfo=[d for d in [samples.module_dir()] if d and with_debug])


@pytest.mark.parametrize("with_debug", [True, False], ids=["vmlinux", "no-debuginfo"])
@pytest.mark.parametrize("sample", LINUX_SAMPLES)
def test_task_list_equals_drgns(sample, with_debug, vmlinux):
    facts = samples.facts(sample)
    with _open(sample, with_debug, vmlinux) as s:
        linux = s.linux()
        assert linux.kp.types == ("DWARF" if with_debug else "BTF (from the dump)")
        ours = sorted((t.pid, t.ppid, t.comm, t.state, t.cpu) for t in linux.tasks())
    # crash's ps also lists each CPU's idle task (pid 0); drgn's for_each_task does not
    theirs = sorted((t["pid"], t["ppid"], t["comm"], t["state"], t["cpu"]) for t in facts["tasks"] if t["pid"])
    assert ours == theirs


@pytest.mark.parametrize("with_debug", [True, False], ids=["vmlinux", "no-debuginfo"])
@pytest.mark.parametrize("sample", LINUX_SAMPLES)
def test_log_equals_the_facts(sample, with_debug, vmlinux):
    facts = samples.facts(sample)
    with _open(sample, with_debug, vmlinux) as s:
        lines = [_TS.sub("", ln) for ln in s.linux().log_lines()]
    tail = facts["log_tail"]
    assert lines[-len(tail):] == tail


@pytest.mark.parametrize("with_debug", [True, False], ids=["vmlinux", "no-debuginfo"])
@pytest.mark.parametrize("sample", PANIC_SAMPLES)
def test_panic_and_crashed_stack_match_crash(sample, with_debug, vmlinux):
    facts = samples.facts(sample)
    want = facts["panic"]
    with _open(sample, with_debug, vmlinux) as s:
        t = triage(s)
    panic = t["domains"][0]["panic"]
    assert panic is not None
    # crash's PANIC string, e.g. "Kernel panic - not syncing: sysrq triggered crash"
    assert panic["message"] == want.get("panic_string", want["message"])
    assert panic["cpu"] == want["cpu"]
    assert (panic["pid"], panic["comm"]) == (want["pid"], want["comm"])
    crash_names = _past_machinery(facts["backtraces"][str(want["cpu"])])[:4]
    assert panic["stack_method"] in (("unwind", "orc") if with_debug else ("orc",))
    ours = _past_machinery([f["symbol_name"] or f["symbol"] for f in panic["stack"]
                            if not f["inline"] and (f["symbol_name"] or f["symbol"])])
    if "rip" in want:
        # An oops: crash prints the faulting function as "[exception RIP: ...]"
        # and not among its frames; we list it first.
        assert ours[0] == want["rip"].split("+")[0]
    it = iter(ours)
    assert all(name in it for name in crash_names), (crash_names, ours)  # crash's frames, in order


@pytest.mark.parametrize("sample", PANIC_SAMPLES)
def test_signature_is_the_same_with_and_without_debug_info(sample, vmlinux):
    sigs = set()
    for with_debug in (True, False):
        with _open(sample, with_debug, vmlinux) as s:
            sigs.add(triage(s)["signature"])
    assert len(sigs) == 1


@pytest.mark.parametrize("sample", LINUX_SAMPLES)
def test_orc_from_memory_unwinds_like_drgn_with_vmlinux(sample, vmlinux):
    """Every CPU's stack: our ORC unwinder (no debug file) against drgn's
    unwinder with the vmlinux, frame by frame (aliases aside)."""
    with _open(sample, False, None) as plain, _open(sample, True, vmlinux) as debug:
        for v in plain.domain.vcpus:
            ours = [f.pc for f in plain.linux().orc_stack(v.registers)]
            theirs = []
            for f in debug.linux().stack_of_cpu(v.id):
                if f.inline:
                    continue
                if f.symbol is None and f.pc >= 1 << 63:
                    break  # drgn lost the CFI before here: this frame and the rest are guesses
                theirs.append(f.pc)
                if f.pc < 1 << 63:
                    break  # user space: neither unwinder goes on meaningfully
            n = min(len(ours), len(theirs))
            # the same frames as far as both go (drgn stops at code it has no
            # CFI for, such as a module's init text; ORC goes on)
            assert ours[:n] == theirs[:n] and len(ours) >= min(len(theirs), 2), v.id


@pytest.mark.parametrize("sample", LINUX_SAMPLES)
def test_vtop_agrees_with_crash(sample):
    facts = samples.facts(sample)
    entries = facts.get("vtop", [])
    assert entries, "facts.json has no vtop entries"
    with _open(sample, False, None) as s:
        for e in entries:
            r = s.run("vtop", address=int(e["vaddr"], 16))
            kv = {k: v for k, v, _ in r.sections[0].items}  # type: ignore[union-attr]
            assert kv.get("guest-physical") == int(e["paddr"], 16), e
            if "page_size" in e:
                assert kv.get("page size") == e["page_size"], e


@pytest.mark.parametrize("sample", LINUX_SAMPLES)
def test_physical_reads_through_the_walker_equal_reads_through_the_format(sample):
    with _open(sample, False, None) as s:
        vm = s.domain.kernel_memory
        assert vm is not None
        stext = s.domain.vmcoreinfo.symbol("_stext")  # type: ignore[union-attr]
        for off in range(0, 64 << 12, 1 << 12):
            paddr = vm.translate(stext + off)
            assert vm.read(stext + off, 64) == s.dump.read_phys(paddr, 64)
