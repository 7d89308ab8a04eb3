"""``vmcrash triage``: what goes into a support ticket, as one JSON object.

Schema (docs/triage.md has the full text; keys are never removed):

    {"schema": "vmcrash.triage/1", "file": str, "format": str, "arch": str, "cpus": int,
     "vmcoreinfo": {str: str},
     "hypervisor": null | {"name": str, "version": str, "panic": null | {...}},
     "domains": [{"id": int, "name": str|null, "type": "guest"|"pv"|"hvm"|"pvh"|"host"|"kvm",
                  "mode": str, "kernel": null | {"release": str},
                  "panic": null | {"cpu": int, "message": str, "pid": int, "comm": str, "stack": [FRAME],
                                   "stack_method": "unwind"|"orc"|"scan"},
                  "vcpus": [{"id": int, "running": bool, "pcpu": int|null, "host_pid": int|null, "mode": str|null,
                             "registers": {"rip": int, "rsp": int, "cr3": int},
                             "stack": [FRAME], "stack_method": "unwind"|"orc"|"scan"}],
                  "tasks": [{"pid": int, "ppid": int, "comm": str, "state": str, "cpu": int|null}],
                  "log": [str], "errors": [str]}],
     "signature": str, "errors": [str]}
    FRAME = {"pc": int, "symbol": str|null, "offset": int|null, "module": str|null, "source": str|null,
             "inline": bool, "symbol_name": str|null}

A KVM host's dump: domain 0 is the host ("host"), each VM a domain 1..N
("kvm"); ``hypervisor`` is ``{"name": "kvm", "version": <host release>,
"panic": {"cpu", "message"} | null, "vendor", "vms"}``; a vCPU's ``running``
means it was in guest mode, ``pcpu`` the host CPU, ``host_pid`` its thread.

``signature`` hashes the panic message (with hex numbers masked) and the
names of the top frames past the panic machinery: KASLR and addresses never
change it, so tickets about the same crash group together.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

from .linux.kernel import READ_ERRORS, Frame, LinuxGuest
from .model import Domain

if TYPE_CHECKING:
    from .session import Session

__all__ = ["triage", "signature", "frame_json", "PANIC_MACHINERY", "SCHEMA_ID"]

SCHEMA_ID = "vmcrash.triage/1"

#: Frames that are how every crash ends, not where it happened.
PANIC_MACHINERY = frozenset({
    "crash_setup_regs", "__crash_kexec", "crash_kexec", "panic", "vpanic", "nmi_panic",
    "machine_crash_shutdown", "native_machine_crash_shutdown", "crash_save_cpu",
    "oops_end", "die", "__die", "die_body", "do_trap", "do_error_trap", "handle_invalid_op",
    "exc_invalid_op", "asm_exc_invalid_op", "handle_bug", "page_fault_oops", "no_context",
    "kernelmode_fixup_or_oops", "__bad_area_nosemaphore", "bad_area_nosemaphore",
    "do_user_addr_fault", "handle_page_fault", "exc_page_fault", "asm_exc_page_fault",
    "do_kern_addr_fault", "dump_stack", "dump_stack_lvl", "show_stack",
})
TOP_FRAMES = 5
#: How much of the log goes into a triage (the tail is what matters).
LOG_LINES = 200


def frame_json(f: Frame) -> dict[str, Any]:
    """A stack frame as triage's JSON FRAME (the TUI shows the same)."""
    return {"pc": f.pc, "symbol": f.symbol, "offset": f.offset, "module": f.module, "source": f.source,
            "inline": f.inline, "symbol_name": f.symbol_name}


_COMPILER_SUFFIX = re.compile(r"\.(cold|isra|constprop|part|lto_priv|llvm)(\.\d+)*$")


def signature_frames(frames: list[Frame]) -> list[str]:
    """The function names a signature is made of: real symbols (inlined calls
    folded into their caller, compiler suffixes like .cold dropped), without
    the panic machinery, consecutive repeats once -- so an unwound stack and
    a scanned one of the same crash give the same names."""
    names: list[str] = []
    for f in frames:
        if f.inline or not (f.symbol_name or f.symbol):
            continue
        name = _COMPILER_SUFFIX.sub("", f.symbol_name or f.symbol or "")
        if name in PANIC_MACHINERY or (names and names[-1] == name):
            continue
        names.append(name)
    return names[:TOP_FRAMES]


def signature(message: str | None, frames: list[Frame]) -> str:
    names = signature_frames(frames)
    msg = re.sub(r"\b(0x)?[0-9a-f]{6,}\b", "X", (message or "").strip().lower())
    msg = re.sub(r"\b(cpu|pid):? *\d+", r"\1 N", msg)
    text = msg + "|" + "|".join(names)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _domain(session: "Session", domain: Domain, errors: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": domain.id, "name": domain.name, "type": domain.type, "mode": None,
                           "kernel": None, "panic": None, "vcpus": [], "tasks": [], "log": [], "errors": []}
    derr: list[str] = out["errors"]
    linux: LinuxGuest | None = None
    if domain.is_linux:
        try:
            linux = session.linux(domain)
            out["mode"] = linux.mode
            out["kernel"] = {"release": linux.release}
        except READ_ERRORS as e:
            derr.append(f"drgn could not be set up: {e}")
    for v in domain.vcpus:
        vc: dict[str, Any] = {"id": v.id, "running": v.running, "pcpu": v.pcpu, "host_pid": v.host_pid,
                              "mode": v.mode,
                              "registers": {k: v.registers.get(k) for k in ("rip", "rsp", "cr3")},
                              "stack": [], "stack_method": "none"}
        if linux is not None:
            try:
                frames, method = linux.best_stack_of_cpu(v.id)
                vc["stack"], vc["stack_method"] = [frame_json(f) for f in frames], method
            except READ_ERRORS as e:
                derr.append(f"vCPU {v.id} stack: {e}")
        out["vcpus"].append(vc)
    if linux is None:
        return out
    try:
        out["log"] = linux.log_lines()[-LOG_LINES:]
    except READ_ERRORS as e:
        derr.append(f"log: {e}")
    if linux.kp.has_types:
        try:
            out["tasks"] = [{"pid": t.pid, "ppid": t.ppid, "comm": t.comm, "state": t.state, "cpu": t.cpu}
                            for t in linux.tasks()]
        except READ_ERRORS as e:
            derr.append(f"tasks: {e}")
    else:
        derr.append("tasks: no kernel types (give --vmlinux, or a kernel built with BTF)")
    p = linux.panic()
    if p.message is not None or p.cpu is not None:
        panic: dict[str, Any] = {"cpu": p.cpu, "message": p.message, "pid": p.pid, "comm": p.comm,
                                 "stack": [], "stack_method": "none"}
        if p.cpu is not None:
            try:
                frames, method = linux.best_stack_of_cpu(p.cpu)
                panic["stack"], panic["stack_method"] = [frame_json(f) for f in frames], method
            except READ_ERRORS as e:
                derr.append(f"panic stack: {e}")
        out["panic"] = panic
    return out


def _hypervisor(session: "Session") -> dict[str, Any] | None:
    """The machine's hypervisor; for Xen, the panicking pCPU's own stack goes
    with its panic (unwound with xen-syms, else scanned with Xen's symbols)."""
    hv = session.machine.hypervisor
    if hv is None:
        return None
    out = dict(hv)
    panic = out.get("panic")
    if isinstance(panic, dict) and session.machine.xen is not None and isinstance(panic.get("cpu"), int):
        from .xen.stacks import best_pcpu_stack

        frames, method = best_pcpu_stack(session.machine, panic["cpu"])
        out["panic"] = dict(panic, stack=[frame_json(f) for f in frames], stack_method=method)
    return out


def triage(session: "Session") -> dict[str, Any]:
    from .info import describe

    info = describe(session.dump)
    errors: list[str] = list(info["warnings"])
    domains = [_domain(session, d, errors) for d in session.machine.domains]
    errors += session.machine.notes
    sig_src = next((d["panic"] for d in domains if d["panic"]), None)
    if sig_src is not None:
        frames = [Frame(i, f["pc"], f["symbol"], f["offset"], f["module"], f["source"], f["inline"], f["symbol_name"])
                  for i, f in enumerate(sig_src["stack"])]
        sig = signature(sig_src["message"], frames)
    else:
        sig = signature("no panic", [])
    return {
        "schema": SCHEMA_ID,
        "file": session.path,
        "format": info["format"],
        "format_description": info["format_description"],
        "arch": info["arch"],
        "cpus": info["cpus"],
        "vmcoreinfo": info["vmcoreinfo"],
        "hypervisor": _hypervisor(session),
        "domains": domains,
        "signature": sig,
        "errors": errors,
    }


def to_markdown(t: dict[str, Any], log_tail: int = 20) -> str:
    """Short, for a ticket: the panic, the crashing stack, the last log lines, the machine."""
    lines: list[str] = [f"## vmcrash triage: `{t['file']}`", ""]
    lines.append(f"- **format**: {t['format_description']}; **arch**: {t['arch']}; **CPUs**: {t['cpus']}")
    lines.append(f"- **signature**: `{t['signature']}`")
    hv = t.get("hypervisor")
    if hv:
        p = hv.get("panic")
        lines.append(f"- **hypervisor**: {hv['name']} {hv['version']}" +
                     (f"; **panic** on CPU {p['cpu']}: {p['message']}" if p else "; no hypervisor panic"))
    for d in t["domains"]:
        kernel = (d["kernel"] or {}).get("release") or "unknown"
        lines += ["", f"### domain {d['id']}" + (f" ({d['name']})" if d["name"] else "") + f": Linux {kernel}"]
        p = d["panic"]
        if p:
            lines.append(f"- **panic**: {p['message'] or '(no message)'}")
            lines.append(f"- **CPU** {p['cpu']}, **task** {p['pid']} ({p['comm']})")
            if p["stack"]:
                lines += ["", f"Crashing stack ({p['stack_method']}):", "", "```"]
                for i, f in enumerate(p["stack"][:30]):
                    if not f["symbol"]:
                        where = hex(f["pc"])
                    elif f.get("inline"):
                        where = f"{f['symbol']} (inlined)"
                    else:
                        where = f["symbol"] + (f"+{f['offset']:#x}" if f["offset"] else "")
                    mod = f" [{f['module']}]" if f["module"] and f["module"] != "kernel" else ""
                    lines.append(f"#{i:<2} {where}{mod}")
                lines.append("```")
        else:
            lines.append("- no panic in this domain")
        if d["log"]:
            lines += ["", f"Last {min(log_tail, len(d['log']))} log lines:", "", "```"]
            lines += d["log"][-log_tail:]
            lines.append("```")
        if d["mode"]:
            lines += ["", f"_{d['mode']}_"]
        for e in d["errors"]:
            lines.append(f"> {e}")
    for e in t["errors"]:
        lines.append(f"> {e}")
    return "\n".join(lines) + "\n"
