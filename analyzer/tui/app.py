"""``vmcrash open DUMP``: explore a dump in the terminal.

Tabs: Overview (what died, in one screen), Machine (machine -> domains ->
vCPUs -> frames, with registers, the frame and its disassembly beside),
Memory (hex and ASCII at any address, the vtop walk, follow a pointer),
Log (search and filter), Tasks (sortable, filterable).  The command palette
(ctrl+p) runs any plugin and shows its result.  Analysis runs in worker
threads; the screen never freezes, and errors show in place.

Keys: c jumps to the crash (the panicking vCPU's first frame past the panic
machinery), d shows that frame's disassembly, g goes to an address in
Memory, f follows the pointer there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.command import Hit, Hits, Provider
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import (DataTable, Footer, Header, Input, Log, Static, TabbedContent, TabPane, Tree)
from textual.widgets.tree import TreeNode

from ..errors import MemoryFault, VmcrashError
from ..session import Session

__all__ = ["VmcrashApp", "Analysis", "run_app"]


@dataclass
class Analysis:
    """What the app shows, computed once in a worker."""

    info: dict[str, Any]
    triage: dict[str, Any]
    log: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: A hypervisor's physical CPUs (Xen): id, registers, stack, how found.
    pcpus: list[dict[str, Any]] = field(default_factory=list)


def analyse(session: Session) -> Analysis:
    from ..info import describe
    from ..triage import triage

    info = describe(session.dump)
    t = triage(session)
    a = Analysis(info, t)
    m = session.machine
    if m.xen is not None:
        from ..triage import frame_json
        from ..xen.stacks import best_pcpu_stack

        for i, cr3 in enumerate(m.xen.pcpu_cr3 or [c.registers.get("cr3", 0) for c in session.dump.cpus]):
            frames, method = best_pcpu_stack(m, i)
            regs = session.dump.cpus[i].registers if i < len(session.dump.cpus) else {}
            a.pcpus.append({"id": i, "cr3": cr3, "registers": dict(regs), "stack": [frame_json(f) for f in frames],
                            "stack_method": method})
    if not m.domains:  # e.g. Xen found, but its domains need xen-syms
        a.errors += m.notes
        return a
    dom = session.domain
    if dom.is_linux:
        try:
            a.log = session.linux().log_lines()
        except (VmcrashError, LookupError, ValueError) as e:
            a.errors.append(f"log: {e}")
    return a


def _frame_label(i: int, f: dict[str, Any]) -> str:
    if not f["symbol"]:
        where = f"{f['pc']:#x}"
    elif f.get("inline"):
        where = f"{f['symbol']} (inlined)"
    else:
        where = f["symbol"] + (f"+{f['offset']:#x}" if f["offset"] else "")
    mod = f" [{f['module']}]" if f.get("module") and f["module"] != "kernel" else ""
    return f"#{i:<2} {where}{mod}"


class ResultScreen(ModalScreen[None]):
    """A plugin's result, as tables and text."""

    BINDINGS = [Binding("escape,q", "dismiss", "Close")]

    def __init__(self, title: str, result: Any) -> None:
        super().__init__()
        self.title_text = title
        self.result = result

    def compose(self) -> ComposeResult:
        from ..render.values import show
        from ..results import KeyValues, Table, Text, Tree as RTree

        with VerticalScroll(id="result"):
            yield Static(f"[b]{self.title_text}[/b]", classes="title")
            for s in self.result.sections:
                if s.title:
                    yield Static(f"[b]{s.title}[/b]")
                if isinstance(s, Table):
                    t: DataTable[str] = DataTable(zebra_stripes=True)
                    t.add_columns(*[c.header for c in s.columns])
                    for row in s.rows[:5000]:
                        t.add_row(*[show(v, c.kind) for v, c in zip(row, s.columns)])
                    yield t
                elif isinstance(s, KeyValues):
                    yield Static("\n".join(f"{k}: {show(v, kind)}" for k, v, kind in s.items))
                elif isinstance(s, Text):
                    yield Static(s.text, markup=False)
                elif isinstance(s, RTree):
                    yield Static("\n".join(r.label for r in s.roots), markup=False)
            for w in self.result.warnings:
                yield Static(f"[yellow]warning:[/] {w}")
            if self.result.mode:
                yield Static(f"[dim]({self.result.mode})[/]")
        yield Footer()


class PluginCommands(Provider):
    """ctrl+p: every plugin that can run on this dump."""

    async def search(self, query: str) -> Hits:
        app = self.app
        assert isinstance(app, VmcrashApp)
        matcher = self.matcher(query)
        for name, cls in app.session.plugins.items():
            text = f"run {name}: {cls.help}"
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), lambda n=name: app.run_plugin(n), help=cls.help)


class VmcrashApp(App[None]):
    TITLE = "vmcrash"
    CSS = """
    #machine-tree { width: 45%; min-width: 30; }
    #details { width: 1fr; padding: 0 1; }
    #overview { padding: 1 2; }
    .title { margin-bottom: 1; }
    #mem-view { height: auto; }
    #walk { height: auto; margin-top: 1; }
    Input { margin: 0 0 1 0; }
    """
    COMMANDS = App.COMMANDS | {PluginCommands}
    BINDINGS = [
        Binding("o", "show_tab('overview')", "Overview"),
        Binding("m", "show_tab('machine')", "Machine"),
        Binding("x", "show_tab('memory')", "Memory"),
        Binding("l", "show_tab('log')", "Log"),
        Binding("t", "show_tab('tasks')", "Tasks"),
        Binding("c", "goto_crash", "Crash"),
        Binding("d", "disassemble", "Disasm"),
        Binding("g", "goto_address", "Go to"),
        Binding("f", "follow", "Follow ptr"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.analysis: Analysis | None = None
        self.mem_address: int | None = None
        self.crash_node: TreeNode[dict[str, Any]] | None = None
        self.selected: dict[str, Any] = {}

    # -- layout -------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="overview"):
            with TabPane("Overview", id="overview"):
                yield VerticalScroll(Static("Opening the dump…", id="overview-text"))
            with TabPane("Machine", id="machine"):
                with Horizontal():
                    tree: Tree[dict[str, Any]] = Tree("machine", id="machine-tree")
                    yield tree
                    with VerticalScroll(id="details"):
                        yield Static("Select a vCPU or a frame.", id="details-text", markup=False)
            with TabPane("Memory", id="memory"):
                with Vertical():
                    yield Input(placeholder="address or symbol (e.g. 0xffffffff81000000, init_task+0x10); "
                                "--physical prefix p:", id="mem-input")
                    yield Static("", id="mem-view", markup=False)
                    yield Static("", id="walk", markup=False)
            with TabPane("Log", id="log"):
                with Vertical():
                    yield Input(placeholder="filter (regular expression)", id="log-filter")
                    yield Log(id="log-view", highlight=True)
            with TabPane("Tasks", id="tasks"):
                with Vertical():
                    yield Input(placeholder="filter: text in comm, or state letter (e.g. D)", id="task-filter")
                    yield DataTable(id="task-table", zebra_stripes=True, cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.session.path
        self.query_one("#task-table", DataTable).add_columns("DOM", "PID", "PPID", "CPU", "ST", "COMM")
        self.load()

    # -- analysis in a worker ---------------------------------------------

    @work(thread=True, exclusive=True, group="load")
    def load(self) -> None:
        try:
            a = analyse(self.session)
        except Exception as e:  # noqa: BLE001 - shown in place, never a crash of the app
            self.call_from_thread(self._show_error, f"analysis failed: {e}")
            return
        self.call_from_thread(self._loaded, a)

    def _show_error(self, text: str) -> None:
        self.query_one("#overview-text", Static).update(f"[red]{text}[/]")
        self.notify(text, severity="error")

    def _loaded(self, a: Analysis) -> None:
        self.analysis = a
        self._fill_overview(a)
        self._fill_tree(a)
        self._fill_log(a, "")
        self._fill_tasks(a, "")
        for e in a.errors + a.triage.get("errors", []):
            self.notify(e, severity="warning")

    def _fill_overview(self, a: Analysis) -> None:
        info, t = a.info, a.triage
        lines = [f"[b]{info['file']}[/b]",
                 f"format   {info['format_description']}",
                 f"machine  {info['arch']}, {info['cpus']} CPUs, "
                 f"{info['memory']['total_bytes'] / (1 << 20):.1f} MiB in {len(info['memory']['ranges'])} ranges"]
        hv = t.get("hypervisor")
        if hv:
            hp = hv.get("panic")
            lines.append(f"hypervisor {hv['name']} {hv['version']}" +
                         (f"  [b red]panic[/] on CPU {hp['cpu']}: {hp['message']}" if hp else ""))
            for i, f in enumerate((hp or {}).get("stack", [])[:8]):
                lines.append(f"         {_frame_label(i, f)}")
        for d in t["domains"]:
            kernel = (d["kernel"] or {}).get("release") or "unknown kernel"
            lines.append(f"domain   {d['id']} ({d['type']}): Linux {kernel}, {len(d['vcpus'])} vCPUs, "
                         f"{len(d['tasks'])} tasks")
            p = d["panic"]
            if p:
                lines.append(f"[b red]panic[/]    {p['message'] or '(no message)'}  "
                             f"— CPU {p['cpu']}, {p['comm']} (pid {p['pid']})")
                for i, f in enumerate(p["stack"][:8]):
                    lines.append(f"         {_frame_label(i, f)}")
            else:
                lines.append("panic    none (a live or hung system?)")
            if d.get("mode"):
                lines.append(f"[dim]mode     {d['mode']}[/]")
        lines.append(f"signature {t['signature']}")
        lines.append("")
        lines.append("[dim]c: go to the crashing frame   d: its disassembly   ctrl+p: run a plugin[/]")
        self.query_one("#overview-text", Static).update("\n".join(lines))

    def _fill_tree(self, a: Analysis) -> None:
        tree = self.query_one("#machine-tree", Tree)
        tree.clear()
        tree.root.set_label(f"machine: {a.info['format_description']}")
        tree.root.data = {"kind": "machine"}
        hv = a.triage.get("hypervisor")
        if hv:
            hn = tree.root.add(f"hypervisor: {hv['name']} {hv['version']}", data={"kind": "hypervisor", "hv": hv},
                               expand=bool(a.pcpus))
            panic_cpu = (hv.get("panic") or {}).get("cpu")
            for p in a.pcpus:
                mark = "  ← panic" if p["id"] == panic_cpu else ""
                pn = hn.add(f"pCPU {p['id']}  rip={p['registers'].get('rip', 0):#x}{mark}",
                            data={"kind": "pcpu", "pcpu": p}, expand=p["id"] == panic_cpu)
                for i, f in enumerate(p["stack"]):
                    pn.add_leaf(_frame_label(i, f), data={"kind": "xen-frame", "frame": f})
        for d in a.triage["domains"]:
            kernel = (d["kernel"] or {}).get("release") or "?"
            what = ", ".join(dict.fromkeys(x for x in (d["name"], d["type"]) if x and x != "guest"))
            dn = tree.root.add(f"domain {d['id']}" + (f" ({what})" if what else "") + f": Linux {kernel}",
                               data={"kind": "domain", "domain": d}, expand=True)
            panic_cpu = (d["panic"] or {}).get("cpu")
            for v in d["vcpus"]:
                mark = "  ← panic" if v["id"] == panic_cpu else ""
                rip = v["registers"].get("rip")
                vn = dn.add(f"vCPU {v['id']}  rip={rip:#x}{mark}" if rip is not None else f"vCPU {v['id']}{mark}",
                            data={"kind": "vcpu", "vcpu": v, "domain": d}, expand=v["id"] == panic_cpu)
                for i, f in enumerate(v["stack"]):
                    fn = vn.add_leaf(_frame_label(i, f), data={"kind": "frame", "frame": f, "index": i,
                                                               "vcpu": v, "domain": d})
                    if v["id"] == panic_cpu and self.crash_node is None and f["symbol"]:
                        from ..triage import PANIC_MACHINERY
                        name = f.get("symbol_name") or f["symbol"]
                        if name not in PANIC_MACHINERY and name not in ("machine_kexec",) and not f.get("inline"):
                            self.crash_node = fn
            if d["tasks"]:
                tn = dn.add(f"tasks ({len(d['tasks'])})", data={"kind": "tasks", "domain": d})
                for t in d["tasks"]:
                    tn.add_leaf(f"{t['pid']:>6} {t['state']} {t['comm']}",
                                data={"kind": "task", "task": t, "domain": d})
        tree.root.expand()

    def _fill_log(self, a: Analysis, pattern: str) -> None:
        import re

        view = self.query_one("#log-view", Log)
        view.clear()
        try:
            rx = re.compile(pattern) if pattern else None
        except re.error as e:
            view.write_line(f"bad pattern: {e}")
            return
        lines = [ln for ln in a.log if rx is None or rx.search(ln)]
        view.write_lines(lines if lines else ["(no log lines)" if not a.log else "(no line matches)"])

    def _fill_tasks(self, a: Analysis, text: str) -> None:
        table = self.query_one("#task-table", DataTable)
        table.clear()
        for d in a.triage["domains"]:
            for i, t in enumerate(d["tasks"]):
                if text and not (text == t["state"] or text.lower() in t["comm"].lower()):
                    continue
                # pids repeat across domains (a host and its VMs), and a damaged
                # task list may repeat one: the key is the row's place
                table.add_row(str(d["id"]), str(t["pid"]), str(t.get("ppid", "")), str(t["cpu"]), t["state"],
                              t["comm"], key=f"{d['id']}:{i}")

    # -- events -------------------------------------------------------------

    @on(Input.Changed, "#log-filter")
    def _log_filter(self, event: Input.Changed) -> None:
        if self.analysis:
            self._fill_log(self.analysis, event.value)

    @on(Input.Changed, "#task-filter")
    def _task_filter(self, event: Input.Changed) -> None:
        if self.analysis:
            self._fill_tasks(self.analysis, event.value.strip())

    @on(DataTable.HeaderSelected, "#task-table")
    def _sort_tasks(self, event: DataTable.HeaderSelected) -> None:
        numeric = event.label.plain in ("DOM", "PID", "PPID", "CPU")
        event.data_table.sort(event.column_key, key=(lambda v: int(v) if v.lstrip("-").isdigit() else -1)
                              if numeric else None)

    @on(Tree.NodeHighlighted, "#machine-tree")
    def _node(self, event: Tree.NodeHighlighted[dict[str, Any]]) -> None:
        data = event.node.data or {}
        self.selected = data
        self.query_one("#details-text", Static).update(self._details(data))
        if data.get("kind") == "task":
            self._task_stack(data)

    @work(thread=True, exclusive=True, group="task-stack")
    def _task_stack(self, data: dict[str, Any]) -> None:
        """A task's stack, unwound in a worker (it reads the dump)."""
        t = data["task"]
        try:
            linux = self.session.linux(self.session.machine.domain(data["domain"]["id"]))
            frames, method = linux.best_stack_of_task(linux.find_task(t["pid"]))
            text = "\n".join([f"PID {t['pid']} ({t['comm']})  state {t['state']}  CPU {t['cpu']}",
                              f"stack ({method}):"] + [f"  #{f.index:<2} {f.where}" for f in frames])
        except Exception as e:  # noqa: BLE001 - shown in place
            text = f"PID {t['pid']}: cannot unwind: {e}"
        self.call_from_thread(self._show_task_stack, data, text)

    def _show_task_stack(self, data: dict[str, Any], text: str) -> None:
        if self.selected is data:
            self.query_one("#details-text", Static).update(text)

    def _details(self, data: dict[str, Any]) -> str:
        kind = data.get("kind")
        if kind == "vcpu":
            v = data["vcpu"]
            lines = [f"vCPU {v['id']}  running={v['running']}  stack: {v['stack_method']}"]
            regs = self._registers(data["domain"]["id"], v["id"])
            for i in range(0, len(regs), 2):
                lines.append("   ".join(f"{k:>7} {val:016x}" for k, val in regs[i:i + 2]))
            return "\n".join(lines)
        if kind == "frame":
            f = data["frame"]
            return "\n".join([
                _frame_label(0, f)[4:],
                f"pc      {f['pc']:#x}",
                f"module  {f.get('module') or '-'}",
                f"source  {f.get('source') or '-'}",
                "",
                "d: disassembly around this pc   g/x: memory",
            ])
        if kind == "pcpu":
            p = data["pcpu"]
            lines = [f"pCPU {p['id']}  cr3 {p['cr3']:#x}  stack: {p['stack_method']}"]
            regs = [(k, p["registers"][k]) for k in ("rip", "rsp", "rbp", "rax", "rbx", "rcx", "rdx", "rsi", "rdi",
                                                     "rflags") if k in p["registers"]]
            for i in range(0, len(regs), 2):
                lines.append("   ".join(f"{k:>7} {val:016x}" for k, val in regs[i:i + 2]))
            return "\n".join(lines)
        if kind == "xen-frame":
            f = data["frame"]
            return "\n".join([_frame_label(0, f)[4:], f"pc      {f['pc']:#x}", f"source  {f.get('source') or '-'}"])
        if kind == "hypervisor":
            hv = data["hv"]
            return "\n".join(f"{k:<15} {v}" for k, v in hv.items() if k != "panic")
        if kind == "task":
            t = data["task"]
            return f"PID {t['pid']} ({t['comm']})  state {t['state']}  CPU {t['cpu']}\nunwinding…"
        if kind == "domain":
            d = data["domain"]
            return f"domain {d['id']} ({d['type']})\n{d.get('mode') or ''}\n{len(d['tasks'])} tasks"
        return ""

    def _registers(self, domain_id: int, vcpu_id: int) -> list[tuple[str, int]]:
        dom = self.session.machine.domain(domain_id)
        for v in dom.vcpus:
            if v.id == vcpu_id:
                order = ("rip", "rsp", "rbp", "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10",
                         "r11", "r12", "r13", "r14", "r15", "rflags", "cr0", "cr2", "cr3", "cr4", "gs_base",
                         "kernel_gs_base")
                return [(k, v.registers[k]) for k in order if k in v.registers]
        return []

    # -- actions ------------------------------------------------------------

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        focus = {"machine": "#machine-tree", "memory": "#mem-input", "log": "#log-filter",
                 "tasks": "#task-table"}.get(tab)
        if focus:
            self.query_one(focus).focus()

    def action_goto_crash(self) -> None:
        if self.crash_node is None:
            self.notify("no panic in this dump" if self.analysis else "still analysing…")
            return
        self.action_show_tab("machine")
        tree = self.query_one("#machine-tree", Tree)
        self.crash_node.parent.expand() if self.crash_node.parent else None
        tree.select_node(self.crash_node)
        tree.move_cursor(self.crash_node)
        self.selected = self.crash_node.data or {}
        self.query_one("#details-text", Static).update(self._details(self.selected))

    def action_disassemble(self) -> None:
        data = self.selected
        if data.get("kind") != "frame":
            self.notify("select a stack frame first (c jumps to the crash)")
            return
        self.action_show_tab("machine")
        self.query_one("#details-text", Static).update(
            self._details(data) + "\n\n" + self._disasm(data["frame"], data.get("index", 0) == 0))

    def _disasm(self, f: dict[str, Any], exact: bool) -> str:
        """Code around a frame's pc.  For the innermost frame pc is where the CPU
        was; for the others it is a return address, so the call before it is
        the instruction marked."""
        from ..disasm import around

        vm = self.session.machine.domain(self.selected["domain"]["id"]).kernel_memory
        if vm is None:
            return "no kernel page tables: cannot read code"
        start = f["pc"] - f["offset"] if f.get("offset") is not None and not f.get("inline") else None
        end = None
        try:
            sym = self.session.linux().prog.symbol(f["pc"] if exact else f["pc"] - 1)
            start, end = sym.address, (sym.address + sym.size if sym.size else None)
        except (LookupError, ValueError, OverflowError, VmcrashError):
            pass
        try:
            insns = [i for i in around(vm.read, f["pc"], start) if end is None or i.address < end]
        except (MemoryFault, ValueError) as e:
            return f"cannot read code at {f['pc']:#x}: {e}"
        lines = []
        here = f["pc"] if exact else f["pc"] - 1
        for insn in insns:
            mark = "=>" if insn.address <= here < insn.address + insn.size else "  "
            target = ""
            if insn.target is not None:
                try:
                    sym = self.session.linux().prog.symbol(insn.target)
                    off = insn.target - sym.address
                    target = f"   <{sym.name}{'+' + hex(off) if off else ''}>"
                except (LookupError, ValueError, OverflowError, VmcrashError):
                    pass
            lines.append(f"{mark} {insn.address:#x}  {insn.text}{target}")
        return "\n".join(lines)

    def action_goto_address(self) -> None:
        self.query_one(TabbedContent).active = "memory"
        data = self.selected
        rsp = data["vcpu"]["registers"].get("rsp") if data.get("kind") in ("vcpu", "frame") else None
        if rsp is None:
            self.query_one("#mem-input", Input).focus()
            return
        # Show the selected vCPU's stack; keep focus off the input so f
        # (follow) and the other keys reach the app.
        self.query_one("#mem-input", Input).value = hex(rsp)
        self.show_memory(rsp)
        self.set_focus(None)

    @on(Input.Submitted, "#mem-input")
    def _mem_submitted(self, event: Input.Submitted) -> None:
        from ..plugin import PluginError, resolve_address

        text = event.value.strip()
        physical = text.startswith("p:")
        try:
            addr = resolve_address(self.session, text[2:] if physical else text)
        except (PluginError, VmcrashError) as e:
            self.query_one("#mem-view", Static).update(str(e))
            return
        self.show_memory(addr, physical=physical)
        self.set_focus(None)

    def show_memory(self, address: int, *, physical: bool = False) -> None:
        dom = self.session.domain
        self.mem_address = address
        read = dom.read_phys if physical else (dom.kernel_memory.read if dom.kernel_memory else None)
        view = self.query_one("#mem-view", Static)
        walk_view = self.query_one("#walk", Static)
        if read is None:
            view.update("no kernel page tables: use p:ADDRESS for physical memory")
            return
        lines = [f"{'physical' if physical else 'kernel-virtual'} {address:#x}"]
        for off in range(0, 256, 16):
            try:
                chunk = read(address + off, 16)
                hx = " ".join(f"{b:02x}" for b in chunk)
                asc = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
            except MemoryFault as e:
                hx, asc = "?? " * 16, f"({e.reason})"
            lines.append(f"{address + off:#018x}  {hx}  {asc}")
        view.update("\n".join(lines))
        walk_lines = []
        if not physical and dom.page_tables() is not None:
            w = dom.page_tables().walk(address)  # type: ignore[union-attr]
            for s in w.steps:
                walk_lines.append(f"{s.level_name:<5} table {s.table.addr:#x} [{s.index:3}] = {s.entry:#018x}  "
                                  f"{' '.join(s.flags)}")
            walk_lines.append(f"=> {w.result}  ({w.page_size} byte page)" if w.result else f"=> {w.fault}")
        walk_view.update("\n".join(walk_lines))

    def action_follow(self) -> None:
        if self.mem_address is None:
            self.notify("show an address in Memory first (g)")
            return
        vm = self.session.domain.kernel_memory
        if vm is None:
            return
        try:
            target = vm.read_u64(self.mem_address)
        except MemoryFault as e:
            self.notify(str(e), severity="error")
            return
        self.query_one("#mem-input", Input).value = hex(target)
        self.show_memory(target)

    def run_plugin(self, name: str) -> None:
        self._run_plugin_worker(name)

    @work(thread=True, group="plugin")
    def _run_plugin_worker(self, name: str) -> None:
        cls = self.session.plugins[name]
        options: dict[str, Any] = {}
        needs_address = any(o.name == "address" and o.required for o in cls.options)
        if needs_address:
            if self.mem_address is None:
                self.call_from_thread(self.notify, f"{name} needs an address: show one in Memory first (g)")
                return
            options["address"] = self.mem_address
        try:
            result = self.session.run(name, **options)
        except Exception as e:  # noqa: BLE001 - a failed plugin is a message, not a crash
            self.call_from_thread(self.notify, f"{name}: {e}", severity="error")
            return
        self.call_from_thread(self.push_screen, ResultScreen(f"vmcrash run {name}", result))


def run_app(session: Session) -> None:
    VmcrashApp(session).run()
