"""Fuzzing every format parser and the walkers with hypothesis, seeded with
the heads of the real samples and with small synthetic dumps.

A short run is part of the suite; a long one on demand:

    VMCRASH_FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/test_fuzz.py -x

Only vmcrash's own errors (``VmcrashError``) may come out: anything else is
a bug, and hypothesis prints the smallest input that shows it.
"""

from __future__ import annotations

import os
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import samples
from analyzer.paging import X86_64_4LEVEL, X86_64_5LEVEL, PageTableWalker
from test_hostile import _exercise
from dumpwriter import KdumpSpec, Load, flatten, note, prstatus, vmcoreinfo_note, write_elf, write_kdump

EXAMPLES = int(os.environ.get("VMCRASH_FUZZ_EXAMPLES", "40"))
SEED_BYTES = 256 << 10
_TMP = tempfile.mkdtemp(prefix="vmcrash-fuzz-")


def _synthetic_seeds() -> dict[str, bytes]:
    out = {}
    pages = {p: bytes([p]) * 4096 for p in (0, 1, 5)}
    notes = note("CORE", 1, prstatus(1, {"rip": 1})) + vmcoreinfo_note("OSRELEASE=6.1\nPAGESIZE=4096\n")
    for name, writer in (("kdump", lambda p: write_kdump(p, KdumpSpec(pages=pages, ram_pfns={2}, notes=notes))),
                         ("elf", lambda p: write_elf(p, [Load(0, b"\1" * 8192, memsz=16384)], notes))):
        path = os.path.join(_TMP, name)
        writer(path)
        with open(path, "rb") as f:
            out[name] = f.read()
        flatten(path, path + ".flat", chunk=3000)
        with open(path + ".flat", "rb") as f:
            out[name + ".flat"] = f.read()
    return out


def _sample_seeds() -> dict[str, bytes]:
    out = {}
    for sample, name in samples.all_dumps():
        with open(samples.path(sample, name), "rb") as f:
            out[f"{sample}/{name}"] = f.read(SEED_BYTES)
    return out


SEEDS = {**_synthetic_seeds(), **_sample_seeds()}


mutation = st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(seed=st.sampled_from(sorted(SEEDS)), flips=st.lists(mutation, max_size=12),
       cut=st.one_of(st.none(), st.integers(min_value=0)),
       splice=st.one_of(st.none(), st.tuples(st.integers(min_value=0), st.binary(max_size=64))))
def test_mutated_dumps_only_raise_vmcrash_errors(seed, flips, cut, splice):
    data = bytearray(SEEDS[seed])
    for pos, value in flips:
        # most flips land in the first 8 KiB, where the headers are
        data[pos % min(len(data), 8192 if pos % 3 else len(data))] = value
    if splice is not None:
        at, blob = splice
        at %= len(data) + 1
        data[at:at + len(blob)] = blob
    if cut is not None:
        del data[cut % (len(data) + 1):]
    path = os.path.join(_TMP, "case")
    with open(path, "wb") as f:
        f.write(data)
    _exercise(path)


@settings(max_examples=EXAMPLES * 5, deadline=None, derandomize=True)
@given(table=st.dictionaries(st.integers(min_value=0, max_value=511 * 8 + 0x3000),
                             st.integers(min_value=0, max_value=(1 << 64) - 1), max_size=64),
       vaddr=st.integers(min_value=0, max_value=(1 << 64) - 1), five=st.booleans())
def test_walker_on_random_tables_always_ends(table, vaddr, five):
    """Whatever the tables hold (loops included), a walk ends within its
    levels, never raises, and a result is page-aligned-consistent."""
    def read(addr: int) -> int:
        return table.get(addr & 0x3FFF, 0)

    w = PageTableWalker(X86_64_5LEVEL if five else X86_64_4LEVEL, 0x1000, read).walk(vaddr)
    assert len(w.steps) <= (5 if five else 4)
    assert (w.result is None) != (w.fault is None)
    if w.result is not None:
        assert w.result.addr & (w.page_size - 1) == vaddr & (w.page_size - 1)


def _random_memory(table: dict[int, int]):
    """Physical memory where every page holds the same random entries (so
    tables point at tables, loops included) -- as bytes for a reader."""
    page = b"".join(table.get(i, 0).to_bytes(8, "little") for i in range(512))

    def read(addr: int, size: int) -> bytes:
        out = b""
        while size > 0:
            off = addr & 0xFFF
            n = min(size, 4096 - off)
            out += page[off:off + n]
            addr += n
            size -= n
        return out
    return read


@settings(max_examples=EXAMPLES * 3, deadline=None, derandomize=True)
@given(table=st.dictionaries(st.integers(min_value=0, max_value=511), st.integers(min_value=0, max_value=(1 << 64) - 1),
                             max_size=32),
       start=st.integers(min_value=0, max_value=(1 << 47) - 1), length=st.integers(min_value=0, max_value=1 << 34))
def test_process_memory_and_p2m_tables_on_random_tables_always_end(table, start, length):
    """A process's address space and an HVM guest's p2m over random tables:
    every page lookup ends with a state, runs cover the range in order, and
    reads either return bytes or raise a MemoryFault."""
    from analyzer.errors import MemoryFault
    from analyzer.linux.process_memory import ProcessMemory
    from analyzer.paging import NPT_4LEVEL
    from analyzer.xen.hvm import HvmInfo, P2mTableMemory

    read = _random_memory(table)
    pm = ProcessMemory(X86_64_4LEVEL, 0x1000, read)
    end = min(start + length, 1 << 47)
    runs = list(pm.runs(start, end, limit=2000))
    assert all(a < b for a, b, _s in runs) and all(runs[i][1] == runs[i + 1][0] for i in range(len(runs) - 1))
    assert not runs or runs[0][0] == start
    try:
        assert len(pm.read(start, 64)) == 64
    except MemoryFault:
        pass

    class Dump:
        read_phys = staticmethod(read)

        @staticmethod
        def page_state(pfn):  # noqa: ANN001, ANN205 - a stand-in
            from analyzer.dump import PageState
            return PageState.PRESENT

    mem = P2mTableMemory(Dump(), HvmInfo("hvm", NPT_4LEVEL, 1, (end >> 12) & ((1 << 28) - 1)))  # type: ignore[arg-type]
    gfns = list(mem.runs())
    assert all(a < b for a, b in gfns)
    try:
        mem.read_phys(start & ((1 << 40) - 1), 16)
    except MemoryFault:
        pass


@settings(max_examples=EXAMPLES * 3, deadline=None, derandomize=True)
@given(blob=st.binary(max_size=2048), domid=st.integers(min_value=0, max_value=99999))
def test_xenstore_scan_on_random_bytes_never_fails(blob, domid):
    from analyzer.dump import PhysRange
    from analyzer.xen.xenstore import xenstore_names

    mem = blob + b"\x99\x19\x01\x26/local/domain/%d/name" % domid + blob
    names = xenstore_names([PhysRange(0, len(mem))], lambda a, n: mem[a:a + n])
    assert all(isinstance(k, int) and v.isprintable() for k, v in names.items())
