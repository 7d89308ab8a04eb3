"""A KVM host's kdump (sample-dumps/kvm-host): the VM, its vCPUs, memslots and
QEMU process found in the host kernel, and the guest's own kernel read from
QEMU's memory -- against what the host recorded before its panic, what crash
and drgn read from the same file, and what the guest printed about itself."""

from __future__ import annotations

import json
import os
import re

import pytest

import analyzer
import samples
from analyzer.cli import EXIT_OK, main

SAMPLE = "kvm-host"
pytestmark = pytest.mark.skipif(SAMPLE not in samples.sample_names(), reason="kvm-host sample missing")

MODES = {"OUTSIDE_GUEST_MODE": "outside guest mode", "IN_GUEST_MODE": "in guest mode"}


@pytest.fixture(scope="module")
def path() -> str:
    return samples.path(SAMPLE, "vmcore.elf.xz")


@pytest.fixture(scope="module")
def session(path):
    with analyzer.open(path) as s:
        yield s


def test_the_vm_and_its_qemu_process(session):
    facts = samples.facts(SAMPLE)
    m = session.machine
    assert [d.id for d in m.domains] == [0, 1]
    assert (m.domain(0).type, m.domain(1).type) == ("host", "kvm")
    [vm] = m.kvm_vms
    want = facts["kvm"]["vms"][0]
    assert vm.address == int(want["kvm"], 16) and vm.mm == int(want["mm"], 16)
    assert vm.pid == facts["qemu_process"]["pid"] == want["userspace_pid"]
    assert vm.comm == "qemu-system-x86"
    assert " ".join(vm.cmdline) == facts["qemu_process"]["cmdline"]
    assert vm.name == "inner" and vm.vendor == "kvm_amd"
    hv = m.hypervisor
    assert hv["name"] == "kvm" and hv["version"] == facts["release"]
    assert hv["panic"] == {"cpu": facts["panic"]["cpu"], "message": facts["panic"]["panic_string"]}


def test_vcpus_equal_drgns_walk_and_the_hosts_threads(session):
    facts = samples.facts(SAMPLE)
    [vm] = session.machine.kvm_vms
    want = {v["vcpu_id"]: v for v in facts["kvm"]["vms"][0]["vcpus"]}
    assert sorted(v.id for v in vm.vcpus) == sorted(want)
    threads = facts["qemu_process"]["vcpu_threads"]
    for v in vm.vcpus:
        w = want[v.id]
        assert v.address == int(w["kvm_vcpu"], 16) and v.index == w["vcpu_idx"]
        assert v.host_pid == w["tid"] == threads[f"CPU {v.id}/KVM"]
        assert v.mode == MODES[w["mode_name"]] and v.host_cpu == w["cpu"]
        assert v.registers["rsp"] == int(w["guest_rsp"], 16) and v.registers["cr3"] == int(w["guest_cr3"], 16)
        if w["mode_name"] == "IN_GUEST_MODE":
            # the NMI caught it in the guest: KVM's copy is the VMCB's
            assert v.registers["rip"] == int(w["guest_rip"], 16) and v.registers["cs"] & 3 == w["guest_cpl"]
        else:
            # halted: KVM emulated the guest's HLT and moved its RIP past it
            # (kvm_vcpu.arch.regs, what KVM_GET_REGS returns); the VMCB still
            # holds the RIP of the exit, which the facts read
            assert v.registers["rip"] == int(w["guest_rip"], 16) + 1
    dom = session.machine.domain(1)
    assert [(v.id, v.running, v.host_pid) for v in dom.vcpus] == \
        [(i, want[i]["mode_name"] == "IN_GUEST_MODE", want[i]["tid"]) for i in sorted(want)]


def test_memslots_and_their_pages(session, path, capsys):
    facts = samples.facts(SAMPLE)
    [vm] = session.machine.kvm_vms
    want = {(s["as_id"], s["id"], int(s["base_gfn"], 16), s["npages"], int(s["userspace_addr"], 16), s["flags"])
            for s in facts["kvm"]["vms"][0]["memslots"]}
    assert {(s.as_id, s.id, s.base_gfn, s.npages, s.userspace_addr, s.flags) for s in vm.memslots} == want
    assert main(["run", "memslots", path, "--json"]) == EXIT_OK
    rows = json.loads(capsys.readouterr().out)["sections"][0]["rows"]
    check = facts["kvm"]["vms"][0]["ram_slot_check"]
    [ram] = [r for r in rows if r["slot"] == check["slot_id"] and r["as"] == 0]
    assert ram["present"] == check["readable_pages"] and ram["untouched"] == check["not_mapped_in_qemu"]
    assert ram["swapped"] == 0 and ram["unreadable"] == 0


def test_guest_memory_equals_crashs_user_vtop(session, capsys, path):
    """gpa -> QEMU address -> host-physical, against crash's `vtop -u` in the
    QEMU process, and the bytes there (the guest's linux_banner)."""
    facts = samples.facts(SAMPLE)
    with open(os.path.join(samples.SAMPLES, SAMPLE, "facts", "crash.guest-ram.txt")) as f:
        text = f.read()
    pairs = re.findall(r"vtop -u (0x[0-9a-f]+)\nVIRTUAL\s+PHYSICAL\s*\n([0-9a-f]+)\s+([0-9a-f]+)", text)
    assert pairs
    hits = {h["hva"]: h for h in facts["kvm"]["vms"][0]["ram_slot_check"]["linux_banner_hits"]}
    mem = session.machine.kvm_memory[1]
    for hva, _v, phys in pairs:
        hit = hits[hva]
        gpa = int(hit["gpa"], 16)
        assert mem.process.page(int(hva, 16)).paddr == int(phys, 16)
        assert mem.read_phys(gpa, 40).decode() == hit["text"][:40]
        assert main(["run", "p2m", path, "--domain", "1", hex(gpa), "--json"]) == EXIT_OK
        items = {i["key"]: i["value"] for i in json.loads(capsys.readouterr().out)["sections"][0]["items"]}
        assert items["QEMU address"] == int(hva, 16) and items["host-physical"] == int(phys, 16)


def test_the_guest_kernel_inside_the_host_dump(session):
    """The guest's release and task list, with no debug file, equal what the
    guest's own uname and ps printed 8 s before the host panicked (that ps
    had exited; the init loop's `sleep` is the only newcomer)."""
    facts = samples.facts(SAMPLE)
    inner = facts["inner_guest"]
    dom = session.machine.domain(1)
    assert dom.vmcoreinfo is not None and dom.vmcoreinfo.osrelease == inner["release"]
    linux = session.linux(dom)
    assert linux.release == inner["release"]
    ours = {t.pid: t for t in linux.tasks()}
    for t in inner["tasks"]:
        if t["comm"] == "ps":
            continue
        assert t["pid"] in ours, t
        # ps shows a worker's current workqueue after '-' and cuts names at 15
        assert ours[t["pid"]].comm.startswith(t["comm"].split("-")[0][:15]), (t, ours[t["pid"]])
    extra = {ours[p].comm for p in ours if p not in {t["pid"] for t in inner["tasks"]}}
    assert extra <= {"sleep"}
    spinner = ours[inner["processes"]["vmcrash-spinner"]]
    assert spinner.state == "R" and spinner.cpu == inner["spinner_cpu"]
    log = "\n".join(linux.log_lines())
    for line in inner["log_lines"]:
        assert line in log


def test_triage_lists_the_host_panic_and_the_vm(path, capsys):
    import jsonschema

    facts = samples.facts(SAMPLE)
    assert main(["triage", path, "--json"]) == EXIT_OK
    t = json.loads(capsys.readouterr().out)
    with open(os.path.join(samples.ROOT, "docs", "triage-schema.json")) as f:
        jsonschema.validate(t, json.load(f))
    assert t["hypervisor"]["name"] == "kvm"
    host, vm = t["domains"]
    assert host["panic"]["message"] == facts["panic"]["panic_string"] and host["panic"]["pid"] == facts["panic"]["pid"]
    assert vm["type"] == "kvm" and vm["kernel"]["release"] == facts["inner_guest"]["release"]
    assert {f"CPU {v['id']}/KVM": v["host_pid"] for v in vm["vcpus"]} == facts["qemu_process"]["vcpu_threads"]
    assert any(task["comm"] == "vmcrash-spinner" for task in vm["tasks"])


def test_extracted_vm_opens_in_drgn_with_crashs_task_list(path, tmp_path, capsys):
    """`extract --domain 1`: drgn opens it (checked here) and crash 9.0.2
    did (its output, saved in facts/, is compared here)."""
    import drgn
    from drgn.helpers.linux.pid import for_each_task

    out = str(tmp_path / "vm1.elf")
    assert main(["extract", path, "--domain", "1", "-o", out]) == EXIT_OK
    capsys.readouterr()
    prog = drgn.Program()
    prog.set_core_dump(out)
    prog.load_debug_info([samples.path("kernel", "vmlinux.xz")])
    drgn_tasks = sorted((int(t.pid), t.comm.string_().decode()) for t in for_each_task(prog))
    with open(os.path.join(samples.SAMPLES, SAMPLE, "facts", "crash-9.0.2.extracted-vm1.txt")) as f:
        crash_tasks = sorted((int(m.group(1)), m.group(2).strip("[]"))
                             for m in re.finditer(r"^[> ]\s+(\d+)\s+\d+\s+\d+\s+[0-9a-f]+\s+\S+\s+\S+\s+\d+\s+\d+\s+(.*)$",
                                                  f.read(), re.M) if int(m.group(1)))
    assert crash_tasks and drgn_tasks == crash_tasks


def _patched_copy(path: str, tmp_path, patches: list[tuple[int, bytes]]) -> str:
    """A copy of the ELF vmcore with bytes replaced at physical addresses."""
    import shutil

    from elftools.elf.elffile import ELFFile

    out = str(tmp_path / "patched.elf")
    shutil.copyfile(path, out)
    with open(out, "r+b") as f:
        loads = [s.header for s in ELFFile(f).iter_segments() if s["p_type"] == "PT_LOAD"]
        for paddr, data in patches:
            seg = next(h for h in loads if h.p_paddr <= paddr < h.p_paddr + h.p_filesz)
            f.seek(seg.p_offset + paddr - seg.p_paddr)
            f.write(data)
    return out


def test_corrupt_vm_list_and_memslot_tree_end_with_a_note(session, path, tmp_path):
    """A vm_list entry pointing at itself and a memslot tree node whose left
    child is itself: the walks stop, say where, and the rest still works."""
    import drgn

    linux = session.linux(session.machine.domain(0))
    prog = linux.prog
    [vm] = session.machine.kvm_vms
    kvm = drgn.Object(prog, "struct kvm", address=vm.address)
    host = session.machine.domain(0).kernel_memory
    assert host is not None
    link = int(kvm.vm_list.address_of_().value_())
    slots = kvm.memslots[0]
    root = int(slots.gfn_tree.rb_node.value_())
    smm_root = int(kvm.memslots[1].gfn_tree.rb_node.value_())
    slot1 = smm_root - drgn.offsetof(prog.type("struct kvm_memory_slot"), f"gfn_node[{int(kvm.memslots[1].node_idx)}]")
    npages = slot1 + drgn.offsetof(prog.type("struct kvm_memory_slot"), "npages")
    patches = [(host.translate(link), link.to_bytes(8, "little")),               # vm_list.next = itself
               (host.translate(root + 8), root.to_bytes(8, "little")),          # rb_right = itself
               (host.translate(npages), (1 << 62).to_bytes(8, "little"))]       # an SMM slot of 2^62 pages
    broken = _patched_copy(path, tmp_path, patches)
    with analyzer.open(broken) as s:
        vms = s.machine.kvm_vms
        assert len(vms) == 1 and any("cycle" in n for n in s.machine.notes)
        assert any("memslot tree broken" in n for n in vms[0].notes)
        assert any("implausible" in n for n in vms[0].notes)
        assert all(m.npages < 1 << 40 for m in vms[0].memslots)
        assert len([m for m in vms[0].memslots if m.as_id == 0]) < 6
        assert s.linux(s.machine.domain(0)).release == samples.facts(SAMPLE)["release"]


def test_where_each_vcpu_thread_was_in_the_host_equals_crashs_bt(path, capsys):
    """crash's `bt` of the two vCPU threads: 67 caught by the crash NMI in
    svm_vcpu_run+506 (in the guest), 66 asleep in kvm_vcpu_block."""
    with open(os.path.join(samples.SAMPLES, SAMPLE, "facts", "crash.qemu.txt")) as f:
        text = f.read()
    blocks = {int(b.split()[0]): b for b in text.split("PID: ")[1:]}
    assert "kvm_vcpu_block" in blocks[66] and "exception RIP: svm_vcpu_run+506" in blocks[67]
    assert main(["run", "kvm", path, "--json"]) == EXIT_OK
    rows = json.loads(capsys.readouterr().out)["sections"][1]["rows"]
    where = {r["thread"]: r["host_where"] for r in rows}
    assert where[67] == "svm_vcpu_run+0x1fa" and where[66].startswith("kvm_vcpu_block+")


def test_vtop_in_the_vm_goes_on_to_qemu_and_the_host(path, capsys):
    """The guest's linux_banner: guest page tables -> gpa (the fact the
    helper found by hand), then QEMU's address and host-physical, as crash's
    `vtop -u` in the QEMU process gives them."""
    facts = samples.facts(SAMPLE)
    hits = {int(h["gpa"], 16): int(h["hva"], 16) for h in facts["kvm"]["vms"][0]["ram_slot_check"]["linux_banner_hits"]}
    with open(os.path.join(samples.SAMPLES, SAMPLE, "facts", "crash.guest-ram.txt")) as f:
        crash = {int(v, 16): int(p, 16) for v, _v2, p in re.findall(
            r"vtop -u (0x[0-9a-f]+)\nVIRTUAL\s+PHYSICAL\s*\n([0-9a-f]+)\s+([0-9a-f]+)", f.read())}
    assert main(["run", "vtop", path, "--domain", "1", "linux_banner", "--json"]) == EXIT_OK
    kv = {i["key"]: i["value"] for i in json.loads(capsys.readouterr().out)["sections"][0]["items"]}
    gpa = kv["guest-physical"]
    assert gpa == 0x1aa3e40 and kv["QEMU address"] == hits[gpa] and kv["host-physical"] == crash[hits[gpa]]
