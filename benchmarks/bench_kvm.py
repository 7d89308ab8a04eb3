"""A KVM guest inside its host's dump: the guest's task list.

crash and drgn cannot read a guest out of a host dump; with them a user must
first get the guest's memory out (here: `vmcrash extract --domain N`, timed
separately) and then open that.  Compared in the same run, on the same dump:

* vmcrash: `run ps HOSTDUMP --domain N` (find the VM in the host kernel, map
  its memory through memslots and QEMU's page tables, find the guest's
  kernel, list its tasks) -- with no debug file, and with --vmlinux;
* drgn on the extracted guest vmcore, with the vmlinux (for_each_task);
* crash `ps` on the extracted guest vmcore (--crash CMD);
* guest-physical reads through the VM's memslots (MB/s) vs drgn's physical
  reads of the same pages from the extracted vmcore.

    .venv/bin/python benchmarks/bench_kvm.py HOSTDUMP --vmlinux F [--domain 1] [--crash CMD]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import best_of, print_ratios, ratio_line, run_crash, timed_run  # noqa: E402

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VMCRASH = [sys.executable, "-m", "analyzer.cli"]
DRGN_PS = """
import sys, drgn
from drgn.helpers.linux.pid import for_each_task
prog = drgn.Program()
prog.set_core_dump(sys.argv[1])
prog.load_debug_info([sys.argv[2]])
print(len([(t.pid.value_(), t.comm.string_()) for t in for_each_task(prog)]))
"""


def timed(argv: list[str]) -> float:
    return timed_run(argv, HERE)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dump")
    ap.add_argument("--vmlinux", required=True)
    ap.add_argument("--domain", type=int, default=1)
    ap.add_argument("--crash", help="command running crash >= 9.0 (sees the same paths)")
    args = ap.parse_args()
    dom = str(args.domain)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(args.dump))) as tmp:
        guest = os.path.join(tmp, "guest.elf")
        t = time.perf_counter()
        subprocess.run(VMCRASH + ["extract", args.dump, "--domain", dom, "-o", guest], cwd=HERE, check=True,
                       capture_output=True)
        extract = time.perf_counter() - t
        ours = timed(VMCRASH + ["run", "ps", args.dump, "--domain", dom])
        ours_dwarf = timed(VMCRASH + ["run", "ps", args.dump, "--domain", dom, "--vmlinux", args.vmlinux])
        drgn_ps = timed([sys.executable, "-c", DRGN_PS, guest, args.vmlinux])
        rows = [("vmcrash ps --domain (no debug info)", ours), ("vmcrash ps --domain --vmlinux", ours_dwarf),
                ("vmcrash extract --domain", extract), ("drgn ps on the extracted guest", drgn_ps),
                ("extract + drgn ps", extract + drgn_ps)]
        if args.crash:
            rows.append(("crash ps on the extracted guest",
                         min(run_crash(args.crash, args.vmlinux, guest, ["ps"])[0] for _ in range(3))))
        print_ratios(rows, "vmcrash ps (no debug info)")
        print(_reads(args.dump, args.domain, guest))


def _reads(host_dump: str, domain: int, guest: str) -> str:
    import drgn

    import analyzer

    with analyzer.open(host_dump) as s:
        dom = s.machine.domain(domain)
        mem = s.machine.kvm_memory[domain]
        pages = [pfn for r in dom.memory_ranges() for pfn in range(r.start >> 12, r.end >> 12)
                 if dom.page_state is not None and dom.page_state(pfn).value == "present"][:8192]
        mem._cache.clear()
        ours, _ = best_of(3, lambda: [mem.read_phys(p << 12, 4096) for p in pages] and mem._cache.clear())
    prog = drgn.Program()
    prog.set_core_dump(guest)
    theirs, _ = best_of(3, lambda: [prog.read(p << 12, 4096, True) for p in pages])
    mb = len(pages) * 4096 / 1e6
    return ratio_line(f"guest-physical page reads ({len(pages)} pages)", mb / ours, mb / theirs, "MB/s", True)


if __name__ == "__main__":
    main()
