"""Translation speed: vmcrash's walker and TLB vs drgn on the same dump.

    .venv/bin/python benchmarks/bench_translate.py DUMP [--vmlinux F] [--crash CMD]

Addresses: every 4 KiB page of the kernel image and a stretch of the
direct map (found from the dump's own tables), so both tools translate the
same set.  Cold = a fresh TLB (vmcrash) / fresh Program (drgn).
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import drgn  # noqa: E402
from common import best_of, ratio_line, run_crash  # noqa: E402

import analyzer  # noqa: E402
from analyzer.translate import VirtualMemory  # noqa: E402


def kernel_addresses(session: analyzer.Session, limit: int) -> list[int]:
    vmci = session.domain.vmcoreinfo
    assert vmci is not None
    stext = vmci.symbol("_stext")
    assert stext is not None
    vm = session.domain.kernel_memory
    assert vm is not None
    out = []
    addr = stext
    while len(out) < limit:
        try:
            paddr = vm.translate(addr)
            if session.dump.page_state(paddr // 4096) is analyzer.PageState.PRESENT:
                out.append(addr)
        except analyzer.MemoryFault:
            if len(out) > 16:
                break
        addr += 4096
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dump")
    ap.add_argument("--vmlinux")
    ap.add_argument("--pages", type=int, default=4096)
    ap.add_argument("--crash", help="command running crash >= 8.0.6, for a vtop comparison")
    args = ap.parse_args()

    s = analyzer.open(args.dump)
    addrs = kernel_addresses(s, args.pages)
    print(f"{len(addrs)} kernel-image pages of {args.dump}")
    dom = s.domain

    def ours_cold() -> int:
        vm = VirtualMemory(dom.page_tables(), dom.read_phys)  # type: ignore[arg-type]
        return sum(vm.translate(a) & 1 for a in addrs)

    vm_warm = VirtualMemory(dom.page_tables(), dom.read_phys)  # type: ignore[arg-type]
    for a in addrs:
        vm_warm.translate(a)

    def ours_warm() -> int:
        return sum(vm_warm.translate(a) & 1 for a in addrs)

    def ours_read() -> int:
        vm = VirtualMemory(dom.page_tables(), dom.read_phys)  # type: ignore[arg-type]
        return sum(len(vm.read(a, 4096)) for a in addrs)

    prog = drgn.Program()
    prog.set_core_dump(args.dump)

    def drgn_cold() -> int:
        p = drgn.Program()
        p.set_core_dump(args.dump)
        return sum(p.read_u8(a) & 1 for a in addrs)

    def drgn_warm() -> int:
        return sum(prog.read_u8(a) & 1 for a in addrs)

    def drgn_read() -> int:
        p = drgn.Program()
        p.set_core_dump(args.dump)
        return sum(len(p.read(a, 4096)) for a in addrs)

    n = len(addrs)
    t_oc, _ = best_of(3, ours_cold)
    t_ow, _ = best_of(3, ours_warm)
    t_or, got = best_of(3, ours_read)
    t_dc, _ = best_of(3, drgn_cold)
    t_dw, _ = best_of(3, drgn_warm)
    t_dr, _ = best_of(3, drgn_read)
    print(ratio_line("translations/s, cold (vs drgn read_u8)", n / t_oc, n / t_dc, "per s", True))
    print(ratio_line("translations/s, warm (vs drgn read_u8)", n / t_ow, n / t_dw, "per s", True))
    mb = got / 1e6
    print(ratio_line("bulk virtual read (vs drgn read)", mb / t_or, mb / t_dr, "MB/s", True))
    if args.crash and args.vmlinux:
        k = min(200, n)
        secs, out = run_crash(args.crash, args.vmlinux, args.dump, [f"vtop {a:#x}" for a in addrs[:k]])
        secs0, _ = run_crash(args.crash, args.vmlinux, args.dump, [])
        per = max(secs - secs0, 1e-6) / k
        print(ratio_line("vtop per second (vs crash vtop, start excluded)", n / t_oc, 1 / per, "per s", True))


if __name__ == "__main__":
    main()
