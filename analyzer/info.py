"""``vmcrash info``: what a dump is, before any analysis.

:func:`describe` gathers the facts a dump's container gives directly (no
page-table walks, no symbols) into a JSON-ready dict; :func:`format_text`
lays it out for a terminal.  The keys ``format``, ``arch``, ``cpus`` and
``vmcoreinfo`` are the ones ``vmcrash triage`` uses too.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from .dump import Dump

__all__ = ["describe", "format_text", "KEY_VMCOREINFO"]

#: VMCOREINFO entries worth a line of their own in the text output.
KEY_VMCOREINFO = ("OSRELEASE", "BUILD-ID", "PAGESIZE", "KERNELOFFSET", "NUMBER(phys_base)",
                  "SYMBOL(init_uts_ns)", "NUMBER(pgtable_l5_enabled)", "CRASHTIME")

#: Register order for the text output.
_REG_ORDER = ("rip", "rsp", "rbp", "rax", "rbx", "rcx", "rdx", "rsi", "rdi",
              "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rflags",
              "cs", "ss", "fs_base", "gs_base", "kernel_gs_base", "cr0", "cr2", "cr3", "cr4")


def describe(dump: Dump) -> dict[str, Any]:
    ranges = dump.ranges()
    vmci = dump.vmcoreinfo
    kernel: dict[str, Any] | None = None
    if vmci is not None:
        crash_time = vmci.crash_time
        kernel = {
            "release": vmci.osrelease,
            "page_size": vmci.page_size,
            "kernel_offset": vmci.kernel_offset,
            "phys_base": vmci.phys_base,
            "crash_time": crash_time,
            "crash_time_utc": (_dt.datetime.fromtimestamp(crash_time, _dt.timezone.utc).isoformat()
                               if crash_time is not None and 0 <= crash_time < 1 << 40 else None),
        }
    notes: dict[str, int] = {}
    for n in dump.notes:
        key = f"{n.name}/{n.type}"
        notes[key] = notes.get(key, 0) + 1
    return {
        "file": dump.path,
        "format": dump.format,
        "format_description": dump.format_description,
        "arch": dump.arch,
        "cpus": len(dump.cpus) or int(getattr(dump, "nr_cpus", 0) or 0),
        "page_size": dump.page_size,
        "memory": {
            "ranges": [{"start": r.start, "end": r.end, "size": r.size} for r in ranges],
            "total_bytes": sum(r.size for r in ranges),
        },
        "header": dump.header,
        "notes": notes,
        "kernel": kernel,
        "vmcoreinfo": dict(vmci) if vmci is not None else {},
        "registers": [
            {"cpu": c.cpu, "pid": c.pid, "sources": c.sources, "registers": c.registers}
            for c in dump.cpus
        ],
        "warnings": list(dump.warnings),
    }


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def format_text(info: dict[str, Any], *, all_registers: bool = True) -> str:
    lines: list[str] = []
    add = lines.append
    add(f"file        {info['file']}")
    add(f"format      {info['format_description']}")
    add(f"arch        {info['arch']}")
    add(f"cpus        {info['cpus']}")
    mem = info["memory"]
    add(f"memory      {_size(mem['total_bytes'])} in {len(mem['ranges'])} ranges")
    for r in mem["ranges"]:
        add(f"            {r['start']:#014x}-{r['end']:#014x}  {_size(r['size'])}")
    if info["header"]:
        add("header")
        for k, v in info["header"].items():
            add(f"            {k:<18} {v}")
    if info["notes"]:
        add("notes       " + ", ".join(f"{k} x{v}" for k, v in info["notes"].items()))
    vmci = info["vmcoreinfo"]
    if vmci:
        add(f"vmcoreinfo  {len(vmci)} entries")
        for k in KEY_VMCOREINFO:
            if k in vmci:
                add(f"            {k:<26} {vmci[k]}")
        k = info.get("kernel") or {}
        if k.get("crash_time_utc"):
            add(f"            {'(crash time)':<26} {k['crash_time_utc']}")
    else:
        add("vmcoreinfo  none")
    for cpu in info["registers"]:
        regs = cpu["registers"]
        head = f"cpu {cpu['cpu']}"
        if cpu["pid"] is not None:
            head += f"  pid {cpu['pid']}"
        head += f"  ({', '.join(cpu['sources'])})"
        add(head)
        names = [r for r in _REG_ORDER if r in regs]
        if not all_registers:
            names = [r for r in names if r in ("rip", "rsp", "cr3")]
        for i in range(0, len(names), 3):
            add("    " + "  ".join(f"{n:>14}: {regs[n]:016x}" for n in names[i:i + 3]))
    for w in info["warnings"]:
        add(f"warning     {w}")
    return "\n".join(lines) + "\n"
