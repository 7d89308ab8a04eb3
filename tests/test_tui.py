"""The terminal UI, driven with Textual's pilot on a real sample dump."""

from __future__ import annotations

import asyncio
import os

import pytest

import analyzer
import samples
from analyzer.tui.app import ResultScreen, VmcrashApp

SAMPLE = ("linux-6.1-sysrq", "vmcore.kdump-zlib")


def _dump() -> str:
    """The sample at a fixed path, so what the screen shows is the same on every machine."""
    src = samples.path(*SAMPLE)
    fixed_dir = "/tmp/vmcrash-tui"  # not $TMPDIR: the path is on screen, so in the snapshots
    os.makedirs(fixed_dir, exist_ok=True)
    fixed = os.path.join(fixed_dir, SAMPLE[1])
    if os.path.islink(fixed) or os.path.exists(fixed):
        os.unlink(fixed)
    os.symlink(src, fixed)
    return fixed


async def _loaded(app: VmcrashApp, pilot) -> None:
    for _ in range(600):
        if app.analysis is not None:
            break
        await asyncio.sleep(0.05)
    await pilot.pause()
    assert app.analysis is not None, "analysis did not finish"


@pytest.fixture
def app() -> VmcrashApp:
    return VmcrashApp(analyzer.open(_dump()))


async def test_crash_then_disassembly_in_two_keys(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await _loaded(app, pilot)
        await pilot.press("c")
        assert app.selected["kind"] == "frame"
        assert app.selected["frame"]["symbol"] == "sysrq_handle_crash"
        await pilot.press("d")
        text = str(app.query_one("#details-text").render())
        assert "=>" in text and "<panic>" in text
        marked = [ln for ln in text.splitlines() if ln.startswith("=>")]
        assert marked and "call" in marked[0]  # a caller frame marks its call


async def test_memory_at_a_register_and_follow_a_pointer(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await _loaded(app, pilot)
        await pilot.press("c", "g")
        rsp = app.selected["vcpu"]["registers"]["rsp"]
        assert app.mem_address == rsp
        view = str(app.query_one("#mem-view").render())
        assert f"{rsp:#018x}" in view and "??" not in view.splitlines()[1]
        walk = str(app.query_one("#walk").render())
        assert "PT" in walk or "PD" in walk
        vm = app.session.domain.kernel_memory
        assert vm is not None
        slot = next(rsp + 8 * i for i in range(32) if vm.read_u64(rsp + 8 * i) >= 1 << 63)
        app.query_one("#mem-input").focus()
        app.query_one("#mem-input").value = hex(slot)
        await pilot.press("enter")
        assert app.mem_address == slot
        await pilot.press("f")  # follow the kernel pointer stored there
        assert app.mem_address == vm.read_u64(slot)


async def test_a_task_in_the_tree_shows_its_stack(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await _loaded(app, pilot)
        from textual.widgets import Tree

        tree = app.query_one("#machine-tree", Tree)
        app.action_show_tab("machine")
        node = next(n for n in _walk(tree.root) if (n.data or {}).get("kind") == "task"
                    and n.data["task"]["comm"] == "vmcrash-sleeper")
        node.parent.expand()
        await pilot.pause()
        tree.move_cursor(node)
        for _ in range(100):
            await pilot.pause(0.05)
            if "stack (" in str(app.query_one("#details-text").render()):
                break
        text = str(app.query_one("#details-text").render())
        assert "schedule" in text and "nanosleep" in text


def _walk(node):
    yield node
    for c in node.children:
        yield from _walk(c)


async def test_plugin_from_the_palette_shows_a_table(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await _loaded(app, pilot)
        app.run_plugin("ps")
        for _ in range(200):
            await pilot.pause(0.05)
            if isinstance(app.screen, ResultScreen):
                break
        assert isinstance(app.screen, ResultScreen)
        await pilot.pause()
        from textual.widgets import DataTable

        table = app.screen.query_one(DataTable)
        assert table.row_count == len(app.analysis.triage["domains"][0]["tasks"])  # type: ignore[union-attr]
        await pilot.press("escape")


async def test_log_and_task_filters(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await _loaded(app, pilot)
        await pilot.press("t")
        app.query_one("#task-filter").focus()
        await pilot.press(*"vmcrash")
        from textual.widgets import DataTable, Log

        assert app.query_one("#task-table", DataTable).row_count == 3
        await pilot.press("escape")
        app.action_show_tab("log")
        await pilot.pause()
        app.query_one("#log-filter").focus()
        await pilot.press(*"sysrq")
        await pilot.pause()
        lines = app.query_one("#log-view", Log).lines
        assert lines and all("sysrq" in ln for ln in lines)


async def test_errors_show_in_place_not_as_a_crash(tmp_path):
    from dumpwriter import Load, write_elf

    path = str(tmp_path / "bare")
    write_elf(path, [Load(0, bytes(4096))])  # no kernel at all
    app = VmcrashApp(analyzer.open(path))
    async with app.run_test(size=(80, 24)) as pilot:
        await _loaded(app, pilot)
        await pilot.press("c", "d", "g", "f")  # none of them can do anything here
        assert app.is_running


def test_overview_snapshot(snap_compare):
    app = VmcrashApp(analyzer.open(_dump()))

    async def ready(pilot) -> None:
        await _loaded(app, pilot)

    assert snap_compare(app, terminal_size=(100, 30), run_before=ready)


def test_crashing_frame_snapshot(snap_compare):
    app = VmcrashApp(analyzer.open(_dump()))

    async def ready(pilot) -> None:
        await _loaded(app, pilot)
        await pilot.press("c", "d")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 36), run_before=ready)


@pytest.mark.skipif("kvm-host" not in samples.sample_names(), reason="kvm-host sample missing")
async def test_a_kvm_hosts_vm_is_a_domain_in_the_machine_tree():
    app = VmcrashApp(analyzer.open(samples.path("kvm-host", "vmcore.elf.xz")))
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(app, pilot)
        tree = app.query_one("#machine-tree")
        labels = [str(n.label) for n in tree.root.children]
        assert labels == ["hypervisor: kvm 6.1.192-vmcrash", "domain 0 (host): Linux 6.1.192-vmcrash",
                          "domain 1 (inner, kvm): Linux 6.1.192-vmcrash"]
        vm = tree.root.children[2]
        vcpus = [str(n.label) for n in vm.children if "vCPU" in str(n.label)]
        assert len(vcpus) == 2


@pytest.mark.skipif("xen-hypervisor-kdump" not in samples.sample_names(), reason="Xen sample missing")
async def test_xen_hypervisor_and_its_pcpu_stacks_in_the_machine_tree():
    """No xen-syms: the hypervisor node lists both pCPUs with their scanned
    stacks; the panicking one (CPU 0) shows the `C` key's path."""
    app = VmcrashApp(analyzer.open(samples.path("xen-hypervisor-kdump", "vmcore.elf.xz")))
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(app, pilot)
        tree = app.query_one("#machine-tree")
        hv = tree.root.children[0]
        assert str(hv.label).startswith("hypervisor: xen 4.17")
        pcpus = hv.children
        assert len(pcpus) == 2 and "panic" in str(pcpus[0].label)
        assert any("do_crashdump_trigger" in str(n.label) for n in pcpus[0].children)
        assert "hypervisor xen 4.17" in str(app.query_one("#overview-text").render())


@pytest.mark.skipif("xen-host-qemu" not in samples.sample_names(), reason="Xen host sample missing")
async def test_xen_host_without_known_domains_still_opens():
    app = VmcrashApp(analyzer.open(samples.path("xen-host-qemu", "host.elf.xz")))
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(app, pilot)
        tree = app.query_one("#machine-tree")
        assert [str(n.label).split(":")[0] for n in tree.root.children] == ["hypervisor"]
        assert len(tree.root.children[0].children) == 2
