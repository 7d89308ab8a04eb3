"""Triage speed: `vmcrash triage` vs crash (sys; bt -a; log) vs drgn doing the
same work (open, symbols, the log, every task, each CPU's stack), on the same
dump in the same run.  With and without debug info for vmcrash.

    .venv/bin/python benchmarks/bench_triage.py DUMP --vmlinux F [--crash CMD]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import print_ratios, run_crash, timed_run  # noqa: E402

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VMCRASH = [sys.executable, "-m", "analyzer.cli"]

DRGN_SCRIPT = """
import sys, drgn
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.sched import task_state_to_char, cpu_curr
from drgn.helpers.linux.cpumask import for_each_online_cpu
from drgn.helpers.linux.printk import get_dmesg
prog = drgn.Program()
prog.set_core_dump(sys.argv[1])
prog.load_debug_info([sys.argv[2]])
get_dmesg(prog)
tasks = [(t.pid.value_(), t.comm.string_(), task_state_to_char(t)) for t in for_each_task(prog)]
for cpu in for_each_online_cpu(prog):
    [f.name for f in prog.stack_trace(cpu_curr(prog, cpu))]
print(len(tasks))
"""


def timed(argv: list[str]) -> float:
    return timed_run(argv, HERE, check=False)  # triage exits 4 on a partial result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dump")
    ap.add_argument("--vmlinux", required=True)
    ap.add_argument("--crash", help="command running crash >= 8.0.6")
    args = ap.parse_args()
    rows = [
        ("vmcrash triage --vmlinux", timed(VMCRASH + ["triage", args.dump, "--vmlinux", args.vmlinux, "--json"])),
        ("vmcrash triage (no debug info)", timed(VMCRASH + ["triage", args.dump, "--json"])),
        ("drgn: log, tasks, CPU stacks", timed([sys.executable, "-c", DRGN_SCRIPT, args.dump, args.vmlinux])),
    ]
    if args.crash:
        best = min(run_crash(args.crash, args.vmlinux, args.dump, ["sys", "bt -a", "log"])[0] for _ in range(3))
        rows.append(("crash: sys; bt -a; log", best))
    print_ratios(rows, "vmcrash --vmlinux")


if __name__ == "__main__":
    main()
