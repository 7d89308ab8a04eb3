"""``p2m``: a guest's physical-to-machine map, for one address or in runs."""

from __future__ import annotations

from typing import Any

from analyzer.plugin import CannotRun, Need, Option, Plugin, parse_int
from analyzer.results import Column, KeyValues, Kind, Result, Table
from analyzer.session import Session


def _has_p2m(s: Session) -> str | None:
    d = s.domain
    if d.pfn_to_mfn is not None or d.id in s.machine.kvm_memory:
        return None
    return (f"domain {d.id} has no p2m: it is the dump's own memory (a Xen PV guest or a KVM VM has one; "
            "pick one with --domain N, see `vmcrash run domains`)")


class P2m(Plugin):
    name = "p2m"
    help = "a guest's physical-to-machine map: one guest-physical address step by step, or all of it in runs"
    description = """\
Where a guest's own physical addresses are in the host's memory.

For a Xen PV guest: guest frame (pfn) -> machine frame (mfn), from the
xendump's .xen_p2m or, in a hypervisor dump, from Xen's frame table and M2P.
For a KVM VM: guest-physical -> the memslot holding it -> QEMU's user
address -> host-physical, through QEMU's page tables (every level shown).

Without ADDR, the whole map in runs of consecutive frames (--limit rows).

examples:
  vmcrash run p2m xen-domU.xendump 0x1000
  vmcrash run p2m xen-host.vmcore --domain 1 --limit 20
  vmcrash run p2m kvm-host.vmcore --domain 1 0x100000
"""
    options = (
        Option("address", "a guest-physical address", type=parse_int, positional=True, metavar="ADDR"),
        Option("limit", "at most this many runs without ADDR (default 100)", type=int, default=100, metavar="N"),
    )
    needs = (Need("a guest with a p2m", _has_p2m),)

    def run(self, session: Session, **options: Any) -> Result:
        d = session.domain
        mem = session.machine.kvm_memory.get(d.id)
        address: int | None = options.get("address")
        if address is None:
            return self._runs(session, options["limit"])
        result = Result(self.name)
        kv = KeyValues(title=f"domain {d.id}")
        kv.add("guest-physical", address, Kind.ADDRESS)
        if mem is not None:
            s = mem.slot(address >> 12)
            if s is None:
                raise CannotRun(f"{address:#x} is in no memslot of VM {d.id} (see `vmcrash run memslots`)")
            hva = s.userspace_addr + (address - s.gpa_start)
            kv.add("memslot", s.id, Kind.INT)
            kv.add("QEMU address", hva, Kind.ADDRESS)
            walk = mem.process.walker.walk(hva)
            page = mem.process.page(hva)
            kv.add("state", page.state.value)
            kv.add("host-physical", page.paddr, Kind.ADDRESS)
            if page.detail:
                kv.add("detail", page.detail)
            result.add(kv)
            steps = Table([Column("level"), Column("table", Kind.ADDRESS), Column("index", Kind.INT),
                           Column("entry", Kind.REGISTER), Column("flags")], title="QEMU's page-table walk")
            for st in walk.steps:
                steps.add(st.level_name, st.table.addr, st.index, st.entry, " ".join(st.flags))
            result.add(steps)
            return result
        assert d.pfn_to_mfn is not None
        mfn = d.pfn_to_mfn(address >> 12)
        kv.add("pfn", address >> 12, Kind.ADDRESS)
        kv.add("mfn", mfn, Kind.ADDRESS)
        kv.add("machine", None if mfn is None else (mfn << 12) | (address & 0xFFF), Kind.ADDRESS)
        result.add(kv)
        if mfn is None:
            result.warn(f"pfn {address >> 12:#x} has no machine frame in this dump")
        return result

    def _runs(self, session: Session, limit: int) -> Result:
        d = session.domain
        result = Result(self.name)
        mem = session.machine.kvm_memory.get(d.id)
        t = Table([Column("gpa", Kind.ADDRESS), Column("pages", Kind.INT), Column("to", Kind.ADDRESS),
                   Column("space")], title=f"domain {d.id}")
        rows = 0
        if mem is not None:
            for s in mem.slots:
                if rows >= limit:
                    break
                for a, b, st in mem.process.runs(s.userspace_addr, s.userspace_addr + (s.npages << 12)):
                    if rows >= limit:
                        break
                    page = mem.process.page(a)
                    t.add(s.gpa_start + (a - s.userspace_addr), (b - a) >> 12,
                          page.paddr if st.value == "present" else a,
                          "host-physical" if st.value == "present" else f"QEMU address ({st.value})")
                    rows += 1
            result.add(t)
            result.note("a run is consecutive in QEMU's address space; its host frames need not be (give ADDR)")
            if rows >= limit:
                result.note(f"stopped at {limit} runs (--limit)")
            return result
        assert d.pfn_to_mfn is not None
        start = prev_pfn = prev_mfn = None
        for r in d.memory_ranges():
            for pfn in range(r.start >> 12, r.end >> 12):
                mfn = d.pfn_to_mfn(pfn)
                if mfn is None:
                    continue
                if start is not None and prev_pfn is not None and prev_mfn is not None \
                        and pfn == prev_pfn + 1 and mfn == prev_mfn + 1:
                    prev_pfn, prev_mfn = pfn, mfn
                    continue
                if start is not None and prev_pfn is not None:
                    t.add(start[0] << 12, prev_pfn - start[0] + 1, start[1] << 12, "machine")
                    rows += 1
                    if rows >= limit:
                        break
                start, prev_pfn, prev_mfn = (pfn, mfn), pfn, mfn
            if rows >= limit:
                break
        else:
            if start is not None and prev_pfn is not None:
                t.add(start[0] << 12, prev_pfn - start[0] + 1, start[1] << 12, "machine")
                rows += 1
        result.add(t)
        if rows >= limit:
            result.note(f"stopped at {limit} runs (--limit)")
        return result
