"""``vmcrash extract``: write any domain's memory as an ELF vmcore that crash
and drgn open.

One PT_LOAD per run of present pages (pages the source excluded stay out,
as ``makedumpfile -E`` leaves them out), NT_PRSTATUS per vCPU, and the
guest's VMCOREINFO note.  More than 65534 segments use the ELF extended
numbering (``e_phnum = PN_XNUM``, the count in section header 0).  Pages
stream through; memory use does not grow with the dump.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator

from .dump import PageState
from .model import Domain
from .notes import X86_64_PRSTATUS_REGS

__all__ = ["write_elf_vmcore", "present_runs", "elf_note", "prstatus_desc", "qemu_cpu_state_desc"]

PN_XNUM = 0xFFFF
#: From this many program headers on, use extended numbering (tests lower it).
EXTENDED_AT = PN_XNUM
EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
PHDR = struct.Struct("<IIQQQQQQ")
SHDR = struct.Struct("<IIQQQQIIQQ")
PT_LOAD, PT_NOTE = 1, 4
#: xen/include/public/elfnote.h: the note a Xen kdump (and crash) carries:
#: crash_xen_info_t, whose last word is the guest's p2m frame-list-list MFN.
XEN_ELFNOTE_CRASH_INFO = 0x1000001
PER_PAGE = 512  # u64 entries in a 4 KiB page


class IdentityP2m:
    """A p2m saying each of the guest's frames is its own machine frame.

    crash opens a kernel that ran as a Xen PV guest (``xen_start_info`` set)
    in its Xen mode: every page-table entry is a machine frame, translated
    through a p2m, which for an ELF vmcore crash takes from a Xen
    CRASH_INFO note (crash's xen_dom0.c: the note's last word is the MFN of
    the frame-list-list page; then frame lists, then p2m pages, as Linux's
    own ``pfn_to_mfn_frame_list_list``).  An extracted guest's tables hold
    its own frames (canonicalised), so the p2m to give is the identity: its
    pages go in one extra PT_LOAD above the guest's memory, which is left as
    it was.  Covers guests up to 512 GiB (one frame-list-list page).
    """

    def __init__(self, end_pfn: int) -> None:
        self.npfn = end_pfn
        self.n_p2m = -(-end_pfn // PER_PAGE)
        self.n_fl = -(-self.n_p2m // PER_PAGE)
        self.base = -(-end_pfn // PER_PAGE) * PER_PAGE
        self.pages = self.n_p2m + self.n_fl + 1
        self.fits = self.n_fl <= PER_PAGE

    @property
    def list_list(self) -> int:
        return self.base + self.n_p2m + self.n_fl

    def crash_info_desc(self, xen_version: tuple[int, int]) -> bytes:
        # crash_xen_info_t: major, minor, extra/compile strings (0: none),
        # xen_phys_start, then dom0's pfn_to_mfn_frame_list_list
        return struct.pack("<10Q", xen_version[0], xen_version[1], 0, 0, 0, 0, 0, 0, 0, self.list_list)

    def page(self, pfn: int) -> bytes:
        k = pfn - self.base
        if k < self.n_p2m:  # p2m page k: entry i maps pfn k*512+i to itself
            return struct.pack(f"<{PER_PAGE}Q", *range(k * PER_PAGE, (k + 1) * PER_PAGE))
        k -= self.n_p2m
        if k < self.n_fl:  # frame list k: the p2m pages it covers
            first = k * PER_PAGE
            entries = [self.base + i for i in range(first, min(first + PER_PAGE, self.n_p2m))]
        else:  # the frame-list-list: every frame list
            entries = [self.base + self.n_p2m + j for j in range(self.n_fl)]
        return struct.pack(f"<{len(entries)}Q", *entries).ljust(4096, b"\0")


def _pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def elf_note(name: bytes, ntype: int, desc: bytes) -> bytes:
    """One ELF note, name and descriptor padded to 4 bytes."""
    name += b"\0"
    return struct.pack("<III", len(name), len(desc), ntype) + _pad4(name) + _pad4(desc)


def prstatus_desc(pid: int, regs: dict[str, int]) -> bytes:
    """An x86-64 ``struct elf_prstatus`` (336 bytes) holding ``regs``."""
    head = struct.pack("<iiiH2xQQiiii", 0, 0, 0, 0, 0, 0, pid, 0, 0, 0) + bytes(64)
    body = b"".join(struct.pack("<Q", regs.get(r, 0) & ((1 << 64) - 1)) for r in X86_64_PRSTATUS_REGS)
    return head + body + struct.pack("<i4x", 0)


_QEMU_GPRS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
              "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags")


def qemu_cpu_state_desc(regs: dict[str, int]) -> bytes:
    """QEMU's x86 ``QEMUCPUState`` (version 1, with kernel_gs_base): the note
    QEMU's dump-guest-memory writes, which carries what NT_PRSTATUS lacks
    (control registers, segment bases).  crash uses it to find the kernel's
    page tables and KASLR offset in an ELF with no virtual addresses."""
    m = (1 << 64) - 1
    out = struct.pack("<II", 1, 440)
    out += b"".join(struct.pack("<Q", regs.get(r, 0) & m) for r in _QEMU_GPRS)
    for seg in ("cs", "ds", "es", "fs", "gs", "ss", "ldt", "tr", "gdt", "idt"):
        base = regs.get(f"{seg}_base", 0) & m
        out += struct.pack("<IIIIQ", regs.get(seg, 0) & 0xFFFF, 0xFFFFFFFF, 0, 0, base)
    out += b"".join(struct.pack("<Q", regs.get(f"cr{i}", 0) & m) for i in range(5))
    out += struct.pack("<Q", regs.get("kernel_gs_base", 0) & m)
    return out


def present_runs(domain: Domain, page_state: Callable[[int], PageState], page_size: int) -> Iterator[tuple[int, int]]:
    """(first pfn, end pfn) of each run of present pages."""
    for r in domain.memory_ranges():
        start: int | None = None
        for pfn in range(r.start // page_size, -(-r.end // page_size)):
            if page_state(pfn) is PageState.PRESENT:
                if start is None:
                    start = pfn
            elif start is not None:
                yield start, pfn
                start = None
        if start is not None:
            yield start, -(-r.end // page_size)


def write_elf_vmcore(domain: Domain, page_state: Callable[[int], PageState], out_path: str, *,
                     page_size: int = 4096, force: bool = False, xen_version: tuple[int, int] = (0, 0),
                     progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
    """Write ``domain`` to ``out_path``; returns counts for the user.  Refuses
    to overwrite an existing file unless ``force``.  A Xen PV guest's page
    tables are canonicalised (machine frames turned into its own frames), and
    the file says its "machine" frames are its own (:class:`IdentityP2m`)."""
    rewrite: Callable[[int, bytes], bytes] | None = None
    if domain.is_pv:
        from .xen.canonical import canonicalizer

        rewrite = canonicalizer(domain)
    runs = list(present_runs(domain, page_state, page_size))
    notes = b""
    for i, v in enumerate(domain.vcpus):
        # pr_pid: the task running there when known, else the vCPU's index + 1
        # as QEMU writes it (drgn takes 0 for "no registers saved")
        notes += elf_note(b"CORE", 1, prstatus_desc(v.pid or i + 1, v.registers))
    if any("cr3" in v.registers for v in domain.vcpus):
        for v in domain.vcpus:
            regs = dict(v.registers)
            if domain.mfn_to_pfn is not None and "cr3" in regs:
                # a PV guest's CR3 is a machine address; the vmcore speaks its own frames
                pfn = domain.mfn_to_pfn(regs["cr3"] >> 12)
                regs["cr3"] = (pfn << 12) | (regs["cr3"] & 0xFFF) if pfn is not None else 0
            notes += elf_note(b"QEMU", 0, qemu_cpu_state_desc(regs))
    if domain.vmcoreinfo is not None:
        notes += elf_note(b"VMCOREINFO", 0, domain.vmcoreinfo.text.encode())
    p2m: IdentityP2m | None = None
    if domain.is_pv and runs:
        p2m = IdentityP2m(max(end for _s, end in runs))
        if p2m.fits:
            notes += elf_note(b"Xen", XEN_ELFNOTE_CRASH_INFO, p2m.crash_info_desc(xen_version))
            runs.append((p2m.base, p2m.base + p2m.pages))
        else:
            p2m = None
    nseg = len(runs) + 1
    extended = nseg >= EXTENDED_AT
    phoff = EHDR.size
    shoff = phoff + nseg * PHDR.size if extended else 0
    data_off = phoff + nseg * PHDR.size + (SHDR.size if extended else 0)
    data_off = -(-data_off // 8) * 8
    ehdr = EHDR.pack(b"\x7fELF\x02\x01\x01" + bytes(9), 4, 62, 1, 0, phoff, shoff, 0, EHDR.size,
                     PHDR.size, PN_XNUM if extended else nseg, SHDR.size if extended else 0,
                     1 if extended else 0, 0)
    phdrs = [PHDR.pack(PT_NOTE, 0, data_off, 0, 0, len(notes), len(notes), 4)]
    offset = -(-(data_off + len(notes)) // page_size) * page_size
    for start, end in runs:
        size = (end - start) * page_size
        # p_align 0, as /proc/vmcore and QEMU write it: crash reads an ELF core
        # whose first PT_LOAD has p_align 0 as a kdump (and applies KASLR)
        phdrs.append(PHDR.pack(PT_LOAD, 7, offset, 0, start * page_size, size, size, 0))
        offset += size
    mode = "wb" if force else "xb"
    total = sum(e - s for s, e in runs)
    done = 0
    tmp = out_path + ".partial"
    with open(tmp if force else out_path, mode) as f:
        f.write(ehdr)
        f.write(b"".join(phdrs))
        if extended:
            f.write(SHDR.pack(0, 0, 0, 0, 0, 0, 0, nseg, 0, 0))
        f.seek(data_off)
        f.write(notes)
        f.seek(-(-(data_off + len(notes)) // page_size) * page_size)
        for start, end in runs:
            for pfn in range(start, end):
                if p2m is not None and pfn >= p2m.base:
                    f.write(p2m.page(pfn))
                    continue
                page = domain.read_phys(pfn * page_size, page_size)
                f.write(rewrite(pfn, page) if rewrite is not None else page)
                done += 1
                if progress is not None and done % 1024 == 0:
                    progress(done, total)
    if force:
        os.replace(tmp, out_path)
    if progress is not None:
        progress(total, total)
    return {"segments": len(runs), "pages": total - (p2m.pages if p2m else 0), "vcpus": len(domain.vcpus)}
