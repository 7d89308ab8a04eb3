"""The ``vmcrash`` command line.

Exit codes (documented in ``vmcrash --help`` and the README):

    0  success
    1  internal error (a bug in vmcrash)
    2  usage error (bad arguments)
    3  the dump cannot be read (not a dump, or damaged beyond use)
    4  partial result: the dump opened, but parts of it are damaged or missing
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import __version__
from .errors import DumpFormatError, MemoryFault, VmcrashError
from .formats import open_dump
from .info import describe, format_text
from .plugin import CannotRun, Option, Plugin, PluginError, discover

if TYPE_CHECKING:
    from .session import Session
from .progress import progress_bar
from .render import render

__all__ = ["main", "EXIT_OK", "EXIT_INTERNAL", "EXIT_USAGE", "EXIT_UNREADABLE", "EXIT_PARTIAL"]

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_UNREADABLE = 3
EXIT_PARTIAL = 4

EXIT_CODES_HELP = """\
exit codes:
  0  success
  1  internal error (a bug in vmcrash: please report it)
  2  usage error
  3  the dump cannot be read (not a dump, or damaged beyond use)
  4  partial result: the dump opened, but parts are damaged or missing
"""

INFO_HELP = """\
Show what a dump is before any analysis: its format and header, the
machine's CPUs and physical memory ranges, the notes it carries, the
kernel's VMCOREINFO (release, KASLR offset, phys_base, crash time) and each
CPU's saved registers.  Reads only headers and notes: instant on any size.

examples:
  vmcrash info vmcore
  vmcrash info vmcore --json | jq .vmcoreinfo.OSRELEASE
"""


def _print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def cmd_info(args: argparse.Namespace) -> int:
    with progress_bar("indexing") as update, open_dump(args.dump, snapshot=args.snapshot, progress=update) as dump:
        info = describe(dump)
    if args.json:
        _print_json(info)
    else:
        sys.stdout.write(format_text(info))
    return EXIT_PARTIAL if info["warnings"] else EXIT_OK


PLUGINS_HELP = """\
List every plugin with its one-line help.  With DUMP, say which plugins can
run on that dump and, for the others, why not.

examples:
  vmcrash plugins
  vmcrash plugins vmcore
"""

RUN_HELP = """\
Run one plugin on a dump.  The dump comes right after the plugin's name;
the plugin's own arguments and the options below follow in any order.
`vmcrash run NAME --help` shows a plugin's arguments.

examples:
  vmcrash run vtop vmcore 0xffffffff81000000
  vmcrash run rd vmcore 0x1000 64 --physical --json
  vmcrash run ps vmcore --domain 1 --markdown
"""


def _add_context_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("context and symbols")
    g.add_argument("--domain", type=int, metavar="N", help="the domain to look at in a multi-domain dump")
    g.add_argument("--vcpu", type=int, metavar="N", help="the vCPU to look at")
    g.add_argument("--vmlinux", metavar="FILE", help="the guest kernel's vmlinux with debug info")
    g.add_argument("--debuginfo", metavar="DIR", action="append", default=[],
                   help="a directory of debug files (vmlinux, modules); repeatable")
    g.add_argument("--xen-syms", metavar="FILE", help="Xen's xen-syms with debug info")
    g.add_argument("--snapshot", metavar="NAME|ID", help="qcow2 images: the savevm snapshot (default: newest)")
    o = p.add_argument_group("output")
    fmt = o.add_mutually_exclusive_group()
    fmt.add_argument("--json", dest="output", action="store_const", const="json", help="JSON (docs/result-schema.json)")
    fmt.add_argument("--markdown", dest="output", action="store_const", const="markdown", help="Markdown for a ticket")
    o.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="colour in text output (default: auto, only on a terminal)")


def plugin_parser(cls: type[Plugin]) -> argparse.ArgumentParser:
    """The command-line parser of one plugin: its options plus the context ones."""
    p = argparse.ArgumentParser(
        prog=f"vmcrash run {cls.name} DUMP", description=cls.description or cls.help,
        epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    for opt in cls.options:
        _add_option(p, opt)
    _add_context_options(p)
    return p


def _add_option(p: argparse.ArgumentParser, opt: Option) -> None:
    if opt.positional:
        p.add_argument(opt.name, type=opt.type, metavar=opt.metavar or opt.name.upper(), help=opt.help,
                       nargs=None if opt.required else "?", default=opt.default, choices=opt.choices)
    elif opt.type is bool:
        p.add_argument(f"--{opt.name.replace('_', '-')}", dest=opt.name, action="store_true", help=opt.help)
    else:
        p.add_argument(f"--{opt.name.replace('_', '-')}", dest=opt.name, type=opt.type, default=opt.default,
                       metavar=opt.metavar, help=opt.help, required=opt.required, choices=opt.choices)


def _use_color(choice: str) -> bool:
    if choice == "always":
        return True
    if choice == "never":
        return False
    return sys.stdout.isatty()


def cmd_plugins(args: argparse.Namespace) -> int:
    errors: list[str] = []
    table = discover(errors)
    width = max(len(n) for n in table)
    if args.dump is None:
        for name, cls in table.items():
            print(f"{name.ljust(width)}  {cls.help}")
    else:
        from .session import Session
        with Session(args.dump) as session:
            for name, cls in table.items():
                try:
                    reason = cls.why_not(session)
                except VmcrashError as e:
                    reason = str(e)
                mark = "yes" if reason is None else "no "
                print(f"{mark} {name.ljust(width)}  {cls.help if reason is None else reason}")
    for msg in errors:
        print(f"vmcrash: {msg}", file=sys.stderr)
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from .session import Session

    table = discover()
    cls = table.get(args.plugin)
    if cls is None:
        print(f"vmcrash: no plugin named {args.plugin!r}; `vmcrash plugins` lists them", file=sys.stderr)
        return EXIT_USAGE
    popts = plugin_parser(cls).parse_args(args.args)
    values = {o.name: getattr(popts, o.name) for o in cls.options}
    with progress_bar("indexing") as update, \
            Session(args.dump, vmlinux=popts.vmlinux, debuginfo=popts.debuginfo, xen_syms=popts.xen_syms,
                    domain=popts.domain, vcpu=popts.vcpu, snapshot=popts.snapshot, progress=update) as session:
        try:
            result = session.run(cls.name, **values)
        except CannotRun as e:
            print(f"vmcrash: {e}", file=sys.stderr)
            return EXIT_UNREADABLE
        except PluginError as e:
            print(f"vmcrash: {cls.name}: {e}", file=sys.stderr)
            return EXIT_USAGE
    sys.stdout.write(render(result, popts.output or "text", color=_use_color(popts.color)))
    return EXIT_PARTIAL if result.partial else EXIT_OK


TRIAGE_HELP = """\
What a support ticket needs from a dump, in one go: the panic (message, CPU,
task, crashing stack), every vCPU's registers and stack, the task list, the
end of the kernel log, and a crash signature that is the same for the same
crash on any machine (KASLR and addresses do not change it).  Works without
debug info too (symbols from kallsyms, types from the kernel's BTF, stacks
from the ORC tables in the dump's memory); the output says which mode it used.

examples:
  vmcrash triage vmcore --vmlinux vmlinux
  vmcrash triage vmcore --json | jq .signature
  vmcrash triage vmcore --markdown > ticket-comment.md
  vmcrash triage --batch /srv/dumps --jobs 4 > triage.jsonl
"""


def cmd_batch(args: argparse.Namespace) -> int:
    from .batch import find_dumps, group_by_signature, run_batch
    from .progress import progress_bar

    if not os.path.isdir(args.dump):
        print(f"vmcrash: --batch needs a folder; {args.dump} is not one", file=sys.stderr)
        return EXIT_USAGE
    paths = find_dumps(args.dump)
    lines = []
    with progress_bar(f"triage of {len(paths)} files") as update:
        for line in run_batch(paths, jobs=args.jobs, scheduler=args.scheduler, vmlinux=args.vmlinux,
                              debuginfo=args.debuginfo, progress=update):
            lines.append(line)
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()
    groups = group_by_signature(lines)
    sys.stdout.write(json.dumps(groups) + "\n")
    for g in groups["groups"]:
        print(f"{g['count']:5d}  {g['signature']}  {g['panic'] or '(no panic)'}", file=sys.stderr)
    if groups["unreadable"]:
        print(f"{len(groups['unreadable']):5d}  unreadable", file=sys.stderr)
    return EXIT_PARTIAL if groups["unreadable"] else EXIT_OK


def cmd_triage(args: argparse.Namespace) -> int:
    from .session import Session
    from .triage import to_markdown, triage

    if args.batch:
        return cmd_batch(args)
    with progress_bar("indexing") as update, \
            Session(args.dump, vmlinux=args.vmlinux, debuginfo=args.debuginfo, snapshot=args.snapshot,
                    xen_syms=args.xen_syms, progress=update) as session:
        t = triage(session)
    if args.output == "json":
        _print_json(t)
    elif args.output == "markdown":
        sys.stdout.write(to_markdown(t))
    else:
        sys.stdout.write(to_markdown(t))
    partial = t["errors"] or any(d["errors"] for d in t["domains"])
    return EXIT_PARTIAL if partial else EXIT_OK


EXTRACT_HELP = """\
Write a dump's memory (or one domain's, with --domain) as an ELF vmcore that
crash and drgn open: one PT_LOAD per run of present pages, NT_PRSTATUS per
vCPU, and the guest's VMCOREINFO.  Works for every format vmcrash reads,
and for every guest of a hypervisor's dump: a Xen domain (a PV guest's page
tables are rewritten into its own frames, and an identity p2m tells crash
so), a KVM VM of a Linux host (its memory through its memslots and QEMU's
page tables; pages the guest never touched are left out).
Never overwrites an existing file unless --force is given.

examples:
  vmcrash extract dump.kdump -o guest.elf
  vmcrash extract xen-host.core --domain 1 --xen-syms xen-syms -o dom1.elf && crash vmlinux dom1.elf
  vmcrash extract kvm-host.vmcore --domain 1 -o vm1.elf && drgn -c vm1.elf -s vmlinux
"""

SHELL_HELP = """\
A Python prompt with the dump opened: `session` (vmcrash's analyzer.Session),
`dump` (its memory), `machine`, `domain`, `run("ps")` for any plugin, and for a
Linux guest `prog`, a drgn Program, with drgn's Linux helpers imported -- so
drgn helpers work even on dumps drgn cannot open itself.

examples:
  vmcrash shell vmcore --vmlinux vmlinux
  vmcrash shell vmcore -c 'print(len(list(for_each_task(prog))))'
"""


def cmd_extract(args: argparse.Namespace) -> int:
    from .extract import write_elf_vmcore
    from .progress import progress_bar
    from .session import Session

    if os.path.exists(args.output) and not args.force:
        print(f"vmcrash: {args.output} exists; give --force to overwrite it", file=sys.stderr)
        return EXIT_USAGE
    with Session(args.dump, domain=args.domain, xen_syms=args.xen_syms) as session:
        dom = session.domain
        if dom.page_state is not None:  # the dump's own, or what a KVM guest's memslots say
            state = dom.page_state
        else:  # one guest of a hypervisor dump: its pages are the ones its p2m maps
            from .dump import PageState

            def state(pfn: int) -> PageState:
                return PageState.PRESENT if dom.pfn_to_mfn and dom.pfn_to_mfn(pfn) is not None else \
                    PageState.ABSENT
        with progress_bar(f"writing {args.output}") as update:
            counts = write_elf_vmcore(dom, state, args.output, page_size=session.dump.page_size,
                                      force=args.force, progress=update, xen_version=_xen_version(session))
    print(f"wrote {args.output}: {counts['pages']} pages in {counts['segments']} segments, "
          f"{counts['vcpus']} vCPUs")
    return EXIT_OK


def _xen_version(session: "Session") -> tuple[int, int]:
    hv = session.machine.hypervisor
    version = str(hv.get("version") or "") if hv and hv.get("name") == "xen" else ""
    parts = version.split(".")
    try:
        return int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)
    except (IndexError, ValueError):
        return 0, 0


def cmd_shell(args: argparse.Namespace) -> int:
    import code

    from .session import Session

    session = Session(args.dump, vmlinux=args.vmlinux, debuginfo=args.debuginfo, domain=args.domain,
                      xen_syms=args.xen_syms)
    ns: dict[str, Any] = {"session": session, "dump": session.dump, "machine": session.machine,
                          "domain": session.domain, "run": session.run}
    banner = f"vmcrash {__version__}: {session.path} ({session.dump.format_description})"
    if session.domain.is_linux:
        try:
            linux = session.linux()
            ns["prog"] = linux.prog
            ns["linux"] = linux
            import drgn.helpers.linux as helpers

            ns.update({k: getattr(helpers, k) for k in helpers.__all__})
            banner += f"\nprog: drgn Program ({linux.mode})"
        except Exception as e:  # noqa: BLE001 - the shell still opens without drgn
            banner += f"\nno drgn Program: {e}"
    try:
        if args.command:
            exec(compile(args.command, "<vmcrash shell -c>", "exec"), ns)  # noqa: S102 - the user's own code
        else:
            code.interact(banner=banner + "\nnames: session dump machine domain run prog linux", local=ns)
    finally:
        session.close()
    return EXIT_OK


OPEN_HELP = """\
Explore a dump in the terminal: an overview of what died, the machine as a
tree (domains, vCPUs, stack frames) with registers and disassembly beside it,
memory in hex with the page-table walk, the kernel log, the task list, and
every plugin from the command palette (ctrl+p).

keys: o m x l t switch tabs, c jumps to the crashing frame, d disassembles
it, g shows memory at an address (or the selected vCPU's stack), f follows
the pointer there, q quits.

examples:
  vmcrash open vmcore --vmlinux vmlinux
  vmcrash open guest.save
"""


def cmd_open(args: argparse.Namespace) -> int:
    from .session import Session
    from .tui.app import run_app

    with Session(args.dump, vmlinux=args.vmlinux, debuginfo=args.debuginfo, snapshot=args.snapshot,
                 domain=args.domain, xen_syms=args.xen_syms) as session:
        run_app(session)
    return EXIT_OK


def _add_symbol_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vmlinux", metavar="FILE", help="the kernel's vmlinux with debug info")
    p.add_argument("--debuginfo", metavar="DIR", action="append", default=[], help="a directory of debug files")
    p.add_argument("--xen-syms", metavar="FILE", help="Xen's xen-syms with debug info (vCPUs, Xen in QEMU dumps)")


def _add_snapshot_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--snapshot", metavar="NAME|ID", help="qcow2 images: the savevm snapshot (default: newest)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vmcrash",
        description="Crash-dump analysis for Linux, Xen and KVM/QEMU dumps.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vmcrash {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("info", help="what a dump is: format, CPUs, memory, notes, VMCOREINFO, registers",
                       description=INFO_HELP, epilog=EXIT_CODES_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dump", metavar="DUMP", help="the dump file (any supported format; detected by content)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    _add_snapshot_option(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("triage", help="the panic, stacks, tasks and log of a dump, for a ticket",
                       description=TRIAGE_HELP, epilog=EXIT_CODES_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dump", metavar="DUMP", help="the dump file (a folder with --batch)")
    _add_symbol_options(p)
    _add_snapshot_option(p)
    b = p.add_argument_group("batch")
    b.add_argument("--batch", action="store_true",
                   help="DUMP is a folder: triage every file in it, one JSON line each, then the groups")
    b.add_argument("--jobs", type=int, default=0, metavar="N", help="parallel workers (default: one per CPU)")
    b.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a Dask cluster (tcp://host:8786, or 'local'); needs vmcrash[cluster]")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", dest="output", action="store_const", const="json", help="JSON (schema vmcrash.triage/1)")
    fmt.add_argument("--markdown", dest="output", action="store_const", const="markdown", help="Markdown (the default)")
    p.set_defaults(func=cmd_triage)

    p = sub.add_parser("open", help="explore a dump in the terminal UI",
                       description=OPEN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dump", metavar="DUMP", help="the dump file")
    _add_symbol_options(p)
    _add_snapshot_option(p)
    p.add_argument("--domain", type=int, metavar="N", help="the domain to start in")
    p.set_defaults(func=cmd_open)

    p = sub.add_parser("extract", help="write a dump's (or a domain's) memory as an ELF vmcore",
                       description=EXTRACT_HELP, epilog=EXIT_CODES_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dump", metavar="DUMP", help="the dump file")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the ELF vmcore to write")
    p.add_argument("--domain", type=int, metavar="N", help="the domain to extract (multi-domain dumps)")
    p.add_argument("--xen-syms", metavar="FILE",
                   help="Xen's xen-syms: gives a Xen guest's vCPU registers (its stacks in crash and drgn)")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("shell", help="a Python prompt with the dump (and a drgn Program) bound",
                       description=SHELL_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dump", metavar="DUMP", help="the dump file")
    _add_symbol_options(p)
    p.add_argument("--domain", type=int, metavar="N", help="the domain to bind")
    p.add_argument("-c", dest="command", metavar="CODE", help="run CODE instead of a prompt")
    p.set_defaults(func=cmd_shell)

    p = sub.add_parser("plugins", help="list plugins, or which can run on a dump and why not",
                       description=PLUGINS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dump", metavar="DUMP", nargs="?", help="check each plugin against this dump")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("run", help="run one plugin: vmcrash run NAME DUMP [ARGS] [--json|--markdown]",
                       description=RUN_HELP, epilog=EXIT_CODES_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("plugin", metavar="NAME", help="the plugin (see `vmcrash plugins`)")
    p.add_argument("dump", metavar="DUMP", help="the dump file")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="the plugin's arguments and options")
    p.set_defaults(func=cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) >= 3 and argv[0] == "run" and argv[2] in ("-h", "--help"):
        cls = discover().get(argv[1])
        if cls is not None:  # `vmcrash run NAME --help`: the plugin's own help
            plugin_parser(cls).print_help()
            return EXIT_OK
    parser = build_parser()
    if len(argv) >= 3 and argv[0] == "run" and not argv[1].startswith("-") and not argv[2].startswith("-"):
        # `run NAME DUMP ...`: everything after the dump belongs to the
        # plugin's own parser (argparse's REMAINDER would drop leading --opts).
        args = parser.parse_args(argv[:3])
        args.args = argv[3:]
    else:
        args = parser.parse_args(argv)
    try:
        rc: int = args.func(args)
        return rc
    except DumpFormatError as e:
        print(f"vmcrash: {e}", file=sys.stderr)
        return EXIT_UNREADABLE
    except MemoryFault as e:
        print(f"vmcrash: {e}", file=sys.stderr)
        return EXIT_PARTIAL
    except PluginError as e:  # a bad --domain, --vcpu or plugin argument
        print(f"vmcrash: {e}", file=sys.stderr)
        return EXIT_USAGE
    except VmcrashError as e:
        print(f"vmcrash: {e}", file=sys.stderr)
        return EXIT_UNREADABLE
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error.
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - never a traceback for the user
        if os.environ.get("VMCRASH_DEBUG"):
            raise
        print(f"vmcrash: internal error: {type(e).__name__}: {e}\n"
              "vmcrash: this is a bug in vmcrash; run again with VMCRASH_DEBUG=1 for the traceback",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
