"""A Xen hypervisor dump: the domains, vCPUs and pCPUs, and every guest's
tasks -- vmcrash vs crash on the same dump in the same run.

* crash (8.0.6 or later) `crash xen-syms DUMP`: doms; vcpus; pcpus (Xen's
  side only: crash reads a guest's kernel only from a separate guest dump);
* vmcrash, one process: the same three plugins with --xen-syms, then also
  `ps` in every domain (which crash cannot do from this dump), with and
  without xen-syms.

    .venv/bin/python benchmarks/bench_xen.py DUMP --xen-syms F [--crash CMD]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import print_ratios, run_crash, timed_run  # noqa: E402

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

XEN_SIDE = """
import sys, analyzer
with analyzer.open(sys.argv[1], xen_syms=sys.argv[2]) as s:
    for name in ("domains", "vcpus", "pcpus"):
        s.run(name)
"""
WITH_GUESTS = """
import sys, analyzer
with analyzer.open(sys.argv[1], xen_syms=sys.argv[2] if len(sys.argv) > 2 else None) as s:
    for name in ("domains", "vcpus", "pcpus"):
        s.run(name)
    for d in s.machine.domains:
        s.linux(d).tasks()
"""


def timed(argv: list[str]) -> float:
    return timed_run(argv, HERE)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dump")
    ap.add_argument("--xen-syms", required=True)
    ap.add_argument("--crash", help="command running crash >= 8.0.6 (sees the same paths)")
    args = ap.parse_args()
    py = [sys.executable, "-c"]
    rows = [("vmcrash: domains; vcpus; pcpus", timed(py + [XEN_SIDE, args.dump, args.xen_syms])),
            ("vmcrash: + every guest's tasks", timed(py + [WITH_GUESTS, args.dump, args.xen_syms])),
            ("vmcrash, no xen-syms: + every guest's tasks", timed(py + [WITH_GUESTS, args.dump]))]
    if args.crash:
        rows.append(("crash: doms; vcpus; pcpus",
                     min(run_crash(args.crash, args.xen_syms, args.dump, ["doms", "vcpus", "pcpus"])[0]
                         for _ in range(3))))
    print_ratios(rows, "vmcrash (first row)")


if __name__ == "__main__":
    main()
