"""The ``vmcrash`` command line.

Exit codes (documented in ``vmcrash --help`` and the README):

    0  success
    2  usage error (bad arguments)
    3  the dump cannot be read (not a dump, or damaged beyond use)
    4  partial result: the dump opened, but parts of it are damaged or missing
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__
from .errors import DumpFormatError, VmcrashError
from .formats import open_dump
from .info import describe, format_text

__all__ = ["main", "EXIT_OK", "EXIT_USAGE", "EXIT_UNREADABLE", "EXIT_PARTIAL"]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_UNREADABLE = 3
EXIT_PARTIAL = 4

EXIT_CODES_HELP = """\
exit codes:
  0  success
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
    with open_dump(args.dump) as dump:
        info = describe(dump)
    if args.json:
        _print_json(info)
    else:
        sys.stdout.write(format_text(info))
    return EXIT_PARTIAL if info["warnings"] else EXIT_OK


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
    p.set_defaults(func=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc: int = args.func(args)
        return rc
    except DumpFormatError as e:
        print(f"vmcrash: {e}", file=sys.stderr)
        return EXIT_UNREADABLE
    except VmcrashError as e:
        print(f"vmcrash: {e}", file=sys.stderr)
        return EXIT_UNREADABLE
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error.
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
