"""The Xen hypervisor in a whole-machine dump, found without xen-syms.

From a Xen kdump's own notes (xen/include/public/elfnote.h, xen/common/kexec.c):

* "Xen" XEN_ELFNOTE_CRASH_INFO: version numbers, machine addresses of the
  version strings, ``xen_phys_start`` (where Xen relocated itself), dom0's
  p2m frame list;
* "Xen" XEN_ELFNOTE_CRASH_REGS, one per pCPU: CR0, CR2, CR3, CR4;
* "VMCOREINFO_XEN": ``domain_list``, ``frame_table``, ``max_page``,
  ``pgd_l4`` and the offsets to walk domains and page owners.

Xen's virtual addresses (xen/arch/x86/include/asm/config.h, 4.x): the image
at XEN_VIRT_START maps linearly from ``xen_phys_start``; the direct map at
DIRECTMAP_VIRT_START maps all RAM linearly; everything else (the frame
table, the M2P) through Xen's own page tables (``pgd_l4``, or any pCPU's
CR3).  A domain's pages are those whose ``page_info`` names it as owner; the
M2P gives each one's guest frame number.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from typing import TYPE_CHECKING

from ..dump import Dump
from ..errors import MemoryFault
from ..paging import X86_64_4LEVEL, PageTableWalker, TableReader
from ..spaces import Space
from ..translate import LinearMap, VirtualMemory
from ..vmcoreinfo import VmcoreInfo

if TYPE_CHECKING:
    import drgn

    from .symbols import XenSymbols

__all__ = ["xen_program", "xen_vcpus", "XenHypervisor", "XenDomainInfo", "find_xen", "find_xen_with_syms", "find_xen_in_memory", "XEN_VIRT_START", "DIRECTMAP_VIRT_START"]

CRASH_INFO, CRASH_REGS = 0x1000001, 0x1000002
XEN_VIRT_START = 0xFFFF82D040000000
DIRECTMAP_VIRT_START = 0xFFFF830000000000
RO_MPT_VIRT_START = 0xFFFF800000000000
DOMID_FIRST_SPECIAL = 0x7FF0  # DOMID_SELF and up: dom_xen, dom_io, ...
MAX_DOMAINS = 1 << 15
MAX_PAGES = 1 << 28  # 1 TiB of 4 KiB frames
#: How much of Xen's image is searched for its symbol table.
IMAGE_SCAN = 16 << 20


@dataclass
class XenDomainInfo:
    id: int
    address: int  # struct domain *
    mfns: "array[int]" = field(default_factory=lambda: array("Q"))


class XenHypervisor:
    """Xen as seen in a machine dump: version, address translation, domains."""

    def __init__(self, dump: Dump, vmcoreinfo: VmcoreInfo, xen_phys_start: int,
                 pcpu_cr3: list[int], version: str | None) -> None:
        self.dump = dump
        self.vmcoreinfo = vmcoreinfo
        self.xen_phys_start = xen_phys_start
        self.pcpu_cr3 = pcpu_cr3
        self.version = version
        image = LinearMap("xen image", XEN_VIRT_START, XEN_VIRT_START + (1 << 30), xen_phys_start - XEN_VIRT_START)
        self.directmap = LinearMap("direct map", DIRECTMAP_VIRT_START, DIRECTMAP_VIRT_START + (249 << 39),
                                   -DIRECTMAP_VIRT_START)
        pgd = vmcoreinfo.symbol("pgd_l4")
        root = image.translate(pgd) if pgd is not None else (pcpu_cr3[0] if pcpu_cr3 else None)
        if root is None:
            raise ValueError("neither pgd_l4 nor a pCPU's CR3 is known")
        walker = PageTableWalker(X86_64_4LEVEL, root, TableReader(dump.read_phys),
                                 input_space=Space.KVADDR, table_space=Space.MADDR)
        self.memory = VirtualMemory(walker, dump.read_phys, fallbacks=[image, self.directmap])

    @cached_property
    def symbols(self) -> "XenSymbols | None":
        """The symbol table Xen keeps for its own backtraces, found in its
        image (no xen-syms needed)."""
        from .symbols import find_xen_symbols

        return find_xen_symbols(self.read, XEN_VIRT_START, XEN_VIRT_START + IMAGE_SCAN)

    def read(self, vaddr: int, size: int) -> bytes:
        # Linear maps first: they need no page table, so they work even when
        # the tables are not in the dump.
        for m in (self.directmap,):
            maddr = m.translate(vaddr)
            if maddr is not None and m.translate(vaddr + size - 1) is not None:
                return self.dump.read_phys(maddr, size)
        return self.memory.read(vaddr, size)

    def read_image(self, vaddr: int, size: int) -> bytes:
        """Read Xen's own image (text and data) by its virtual address."""
        return self.dump.read_phys(vaddr - XEN_VIRT_START + self.xen_phys_start, size)

    def u64(self, vaddr: int) -> int:
        return int.from_bytes(self.read(vaddr, 8), "little")

    @cached_property
    def domains(self) -> list[XenDomainInfo]:
        """The domain list (``domain_list`` -> ``next_in_list``), bounded and cycle-guarded."""
        vmci = self.vmcoreinfo
        head = vmci.symbol("domain_list")
        id_off, next_off = vmci.offset("domain.domain_id"), vmci.offset("domain.next_in_list")
        if head is None or id_off is None or next_off is None:
            return []
        out: list[XenDomainInfo] = []
        seen: set[int] = set()
        d = self.u64(head)
        while d and d not in seen and len(out) < MAX_DOMAINS:
            seen.add(d)
            domid = int.from_bytes(self.read(d + id_off, 2), "little")
            out.append(XenDomainInfo(domid, d))
            d = self.u64(d + next_off)
        self._assign_pages(out)
        return out

    def _assign_pages(self, domains: list[XenDomainInfo]) -> None:
        """Give each domain its machine frames: the frame table names each page's owner."""
        vmci = self.vmcoreinfo
        ft_ptr, max_page_sym = vmci.symbol("frame_table"), vmci.symbol("max_page")
        size, owner_off = vmci.size("page_info"), vmci.offset("page_info._domain")
        if None in (ft_ptr, max_page_sym, size, owner_off):
            return
        assert ft_ptr is not None and max_page_sym is not None and size is not None and owner_off is not None
        frame_table = self.u64(ft_ptr)
        max_page = min(self.u64(max_page_sym), MAX_PAGES)
        by_pdx = {(d.address - DIRECTMAP_VIRT_START) >> 12: d for d in domains}
        step = 4096 // size * 256  # entries per read (1 MiB at 32 bytes an entry)
        for first in range(0, max_page, step):
            n = min(step, max_page - first)
            try:
                raw = self.read(frame_table + first * size, n * size)
            except MemoryFault:
                continue
            for i in range(n):
                pdx = struct.unpack_from("<I", raw, i * size + owner_off)[0]
                if pdx:
                    d = by_pdx.get(pdx)
                    if d is not None:
                        d.mfns.append(first + i)

    def m2p(self, mfns: "array[int]") -> dict[int, int]:
        """pfn -> mfn for the given machine frames, from Xen's M2P table
        (read a page of it at a time: 512 frames)."""
        out: dict[int, int] = {}
        chunk: tuple[int, array[int]] | None = None
        for mfn in mfns:
            base = mfn & ~511
            if chunk is None or chunk[0] != base:
                try:
                    chunk = (base, array("Q", self.read(RO_MPT_VIRT_START + 8 * base, 4096)))
                except MemoryFault:
                    chunk = (base, array("Q"))
            entries = chunk[1]
            if mfn - base < len(entries):
                pfn = entries[mfn - base]
                if pfn < MAX_PAGES:
                    out[pfn] = mfn
        return out


def find_xen(dump: Dump) -> XenHypervisor | None:
    """Xen, if ``dump`` is a Xen hypervisor kdump (its notes say so)."""
    vmci = None
    info = None
    cr3s: list[int] = []
    for n in dump.notes:
        if n.name == "VMCOREINFO_XEN":
            vmci = VmcoreInfo.from_bytes(n.desc)
        elif n.name == "Xen" and n.type == CRASH_INFO and len(n.desc) >= 80:
            info = struct.unpack_from("<10Q", n.desc)
        elif n.name == "Xen" and n.type == CRASH_REGS and len(n.desc) >= 32:
            cr3s.append(struct.unpack_from("<4Q", n.desc)[2])
    if vmci is None or info is None:
        return None
    major, minor, extra_ma = info[0], info[1], info[2]
    version = f"{major}.{minor}"
    try:
        extra = dump.read_phys(extra_ma, 64).split(b"\0", 1)[0].decode("ascii", "replace")
        version += extra
    except MemoryFault:
        pass
    try:
        return XenHypervisor(dump, vmci, info[8], cr3s, version)
    except ValueError:
        return None


def _function_constant(read: Callable[[int, int], bytes], address: int) -> int | str | None:
    """What a tiny Xen function like xen_major_version() or
    xen_extra_version() returns: an immediate, or a string it points at."""
    import capstone

    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    md.detail = True
    try:
        code = read(address, 32)
    except MemoryFault:
        return None
    for insn in md.disasm(code, address):
        if insn.mnemonic == "mov" and len(insn.operands) == 2 and insn.operands[1].type == capstone.x86.X86_OP_IMM:
            return int(insn.operands[1].imm)
        if insn.mnemonic == "lea" and insn.operands[1].type == capstone.x86.X86_OP_MEM:
            target = insn.address + insn.size + insn.operands[1].mem.disp
            try:
                return read(target, 64).split(b"\0", 1)[0].decode("ascii", "replace")
            except MemoryFault:
                return None
        if insn.mnemonic == "ret":
            break
    return None


def _xen_syms_program(xen_syms: str) -> "tuple[drgn.Program, int] | None":
    """A drgn Program with xen-syms' symbols and types, loaded as an extra
    module at its link address (so drgn applies no bias), and that address."""
    import drgn
    from elftools.elf.elffile import ELFFile

    with open(xen_syms, "rb") as f:
        loads = [seg for seg in ELFFile(f).iter_segments() if seg["p_type"] == "PT_LOAD" and seg["p_memsz"]]
        if not loads:
            return None
        low = min(seg["p_vaddr"] for seg in loads)
        high = max(seg["p_vaddr"] + seg["p_memsz"] for seg in loads)
    prog = drgn.Program(drgn.Platform(drgn.Architecture.X86_64,
                                      drgn.PlatformFlags.IS_64_BIT | drgn.PlatformFlags.IS_LITTLE_ENDIAN))
    module = prog.extra_module("xen-syms", create=True)
    module.address_range = (low, high)
    module.try_file(xen_syms, force=True)
    return prog, low


def find_xen_with_syms(dump: Dump, xen_syms: str) -> XenHypervisor | None:
    """Xen in a machine dump that has no Xen notes (a QEMU dump of the whole
    host), with xen-syms for its symbols and types: a CPU's CR3 (every page
    table holds Xen's mappings) locates the image, DWARF gives the offsets
    VMCOREINFO_XEN would have."""
    import drgn

    from ..paging import X86_64_4LEVEL as L4

    loaded = _xen_syms_program(xen_syms)
    if loaded is None:
        return None
    prog, low = loaded
    try:
        dom, page = prog.type("struct domain"), prog.type("struct page_info")
        sym = {n: prog.symbol(n).address for n in ("domain_list", "max_page", "_frame_table.0", "idle_pg_table",
                                                     "xen_major_version", "xen_minor_version", "xen_extra_version")}
        offsets = (drgn.offsetof(dom, "domain_id"), drgn.offsetof(dom, "next_in_list"),
                   drgn.offsetof(page, "v.inuse._domain"))
    except (LookupError, ValueError):
        return None
    cr3s = [c.registers["cr3"] for c in dump.cpus if c.registers.get("cr3")]
    xen_phys_start = None
    for cr3 in cr3s:
        w = PageTableWalker(L4, cr3, TableReader(dump.read_phys), table_space=Space.MADDR).walk(low)
        if w.result is not None:
            xen_phys_start = w.result.addr - (low - XEN_VIRT_START)
            break
    if xen_phys_start is None:
        return None
    text = "\n".join([
        "PAGESIZE=4096",
        f"SYMBOL(domain_list)={sym['domain_list']:x}", f"SYMBOL(max_page)={sym['max_page']:x}",
        f"SYMBOL(frame_table)={sym['_frame_table.0']:x}", f"SYMBOL(pgd_l4)={sym['idle_pg_table']:x}",
        f"SIZE(page_info)={page.size}", f"SIZE(domain)={dom.size}",
        f"OFFSET(domain.domain_id)={offsets[0]}", f"OFFSET(domain.next_in_list)={offsets[1]}",
        f"OFFSET(page_info._domain)={offsets[2]}",
    ])
    hv = XenHypervisor(dump, VmcoreInfo(text), xen_phys_start, cr3s, None)
    major, minor, extra = (_function_constant(hv.read_image, sym[n]) for n in
                           ("xen_major_version", "xen_minor_version", "xen_extra_version"))
    if isinstance(major, int) and isinstance(minor, int):
        hv.version = f"{major}.{minor}{extra if isinstance(extra, str) else ''}"
    return hv


def xen_program(hv: XenHypervisor, xen_syms: str) -> "drgn.Program | None":
    """A drgn Program over Xen's own address space with xen-syms' symbols
    and types (xen-syms loaded as an extra module at its link address)."""
    import drgn

    loaded = _xen_syms_program(xen_syms)
    if loaded is None:
        return None
    prog = loaded[0]

    def read(address: int, count: int, offset: int, physical: bool) -> bytes:
        try:
            return hv.read(address, count)
        except MemoryFault as e:
            raise drgn.FaultError(str(e), e.address) from None

    prog.add_memory_segment(RO_MPT_VIRT_START, (1 << 64) - RO_MPT_VIRT_START, read, physical=False)
    try:
        prog.type("struct vcpu")
    except LookupError:
        return None
    return prog


_USER_REGS = ("rip", "rsp", "rbp", "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11",
              "r12", "r13", "r14", "r15", "rflags", "cs", "ss")


def xen_vcpus(prog: "drgn.Program", domain_address: int, hvm: bool = False) -> list[dict[str, object]]:
    """Each vCPU of the domain at ``domain_address``: id, pCPU, whether it was
    running, and its registers -- for a running vCPU the guest registers Xen
    saved at the top of that pCPU's stack (struct cpu_info), else the ones
    saved in the vCPU at its last switch."""
    import drgn

    d = drgn.Object(prog, "struct domain *", value=domain_address)
    stack_size = 4096 << 3  # xen/arch/x86/include/asm/config.h STACK_SIZE (PAGE_SIZE << STACK_ORDER)
    cpu_info_size = prog.type("struct cpu_info").size
    out: list[dict[str, object]] = []
    for i in range(min(int(d.max_vcpus), 4096)):
        v = d.vcpu[i]
        if not v:
            continue
        running = bool(v.is_running)
        pcpu = int(v.processor)
        regs_obj = v.arch.user_regs
        if running:
            try:
                base = int(prog["stack_base"][pcpu])
                info = drgn.Object(prog, "struct cpu_info", address=base + stack_size - cpu_info_size)
                if int(info.current_vcpu) == int(v):
                    regs_obj = info.guest_cpu_user_regs
            except (LookupError, drgn.FaultError):
                pass
        regs: dict[str, int] = {}
        for name in _USER_REGS:
            try:
                regs[name] = int(getattr(regs_obj, name))
            except (AttributeError, LookupError, drgn.FaultError):
                pass
        try:
            # an HVM vCPU's own CR3; arch.cr3 is Xen's monitor table for it
            regs["cr3"] = int(v.arch.hvm.guest_cr[3]) if hvm else int(v.arch.cr3)
            if hvm:
                regs["cr4"] = int(v.arch.hvm.guest_cr[4])
        except (AttributeError, LookupError):
            pass
        out.append({"id": int(v.vcpu_id), "pcpu": pcpu, "running": running, "registers": regs})
    return out


def find_xen_in_memory(dump: Dump) -> XenHypervisor | None:
    """Xen in a machine dump with no Xen notes and no xen-syms (a QEMU dump
    of the whole host): every page table maps Xen's image at XEN_VIRT_START,
    so a CPU's CR3 reaches it; Xen's own symbol table names ``_stext``
    (which gives ``xen_phys_start``) and the version functions.  Domains need
    the struct offsets only xen-syms (or VMCOREINFO_XEN) gives."""
    from ..paging import X86_64_4LEVEL as L4
    from .symbols import find_xen_symbols

    cr3s = [c.registers["cr3"] for c in dump.cpus if c.registers.get("cr3")]
    for cr3 in cr3s[:8]:
        walker = PageTableWalker(L4, cr3, TableReader(dump.read_phys), table_space=Space.MADDR)
        vm = VirtualMemory(walker, dump.read_phys)
        try:
            vm.translate(XEN_VIRT_START + (2 << 20))
        except MemoryFault:
            continue
        syms = find_xen_symbols(vm.read, XEN_VIRT_START, XEN_VIRT_START + IMAGE_SCAN)
        stext = syms.lookup("_stext") if syms is not None else None
        if syms is None or stext is None:
            continue
        w = walker.walk(stext)
        if w.result is None:
            continue
        xen_phys_start = w.result.addr - (stext - XEN_VIRT_START)
        try:
            hv = XenHypervisor(dump, VmcoreInfo("PAGESIZE=4096"), xen_phys_start, cr3s, None)
        except ValueError:
            continue
        hv.__dict__["symbols"] = syms  # found already (cached_property's slot)
        version = [_function_constant(hv.read_image, a) if a is not None else None for a in
                   (syms.lookup(n) for n in ("xen_major_version", "xen_minor_version", "xen_extra_version"))]
        if isinstance(version[0], int) and isinstance(version[1], int):
            hv.version = f"{version[0]}.{version[1]}{version[2] if isinstance(version[2], str) else ''}"
        return hv
    return None


#: xen/include/public/sched.h SHUTDOWN_* codes
SHUTDOWN_REASONS = {0: "poweroff", 1: "reboot", 2: "suspend", 3: "crash", 4: "watchdog", 5: "soft_reset"}


def xen_domain_details(prog: "drgn.Program", domain_address: int) -> dict[str, object]:
    """What xl shows about a domain, from its struct domain: the handle (xl's
    UUID), a state word, the shutdown reason, and its page counts."""
    import uuid

    import drgn

    d = drgn.Object(prog, "struct domain *", value=domain_address)
    out: dict[str, object] = {}
    try:
        out["handle"] = str(uuid.UUID(bytes=bytes(int(b) for b in d.handle)))
        running = any(bool(d.vcpu[i].is_running) for i in range(min(int(d.max_vcpus), 4096)) if d.vcpu[i])
        if d.is_dying.value_():
            state = "dying"
        elif bool(d.is_shut_down):
            state = "shutdown"
        elif int(d.controller_pause_count):
            state = "paused"
        else:
            state = "running" if running else "blocked"
        out["state"] = state
        out["shutdown"] = SHUTDOWN_REASONS.get(int(d.shutdown_code)) if bool(d.is_shut_down) else None
        out["tot_pages"] = int(d.tot_pages)
        out["max_pages"] = int(d.max_pages)
    except (LookupError, ValueError, AttributeError, drgn.FaultError, MemoryFault):
        pass
    return out


def console_ring(hv: XenHypervisor, prog: "drgn.Program | None" = None) -> list[str]:
    """Xen's console ring (xen/drivers/char/console.c: ``char *conring`` of
    ``uint32_t conring_size`` bytes, ``uint32_t conringp`` the producer
    index), oldest first: located by xen-syms when given, else by the symbol
    table in Xen's own image."""
    names = ("conring", "conring_size", "conringp")
    try:
        if prog is not None:
            where = [prog[n].address_ for n in names]
        else:
            syms = hv.symbols
            where = [syms.lookup(n) if syms is not None else None for n in names]
        if any(w is None for w in where):
            return []
        ring_at, size_at, prod_at = (int(w) for w in where)
        ring = int.from_bytes(hv.read(ring_at, 8), "little")
        size = int.from_bytes(hv.read(size_at, 4), "little")
        prod = int.from_bytes(hv.read(prod_at, 4), "little")
    except (LookupError, ValueError, MemoryFault):
        return []
    if not 0 < size <= 1 << 24 or size & (size - 1):
        return []
    try:
        data = hv.read(ring, size)
    except MemoryFault:
        return []
    start = max(0, prod - size)
    text = bytes(data[i & (size - 1)] for i in range(start, prod))
    return text.decode("utf-8", "replace").splitlines()


def hypervisor_panic(lines: list[str]) -> dict[str, object] | None:
    """Why Xen died, from its console: a panic, a crash key, or a fatal trap."""
    import re

    message = cpu = None
    for line in lines:
        text = re.sub(r"^\(XEN\) (\[[^]]*\] )?", "", line).strip()
        m = re.search(r"Panic on CPU (\d+)", text)
        if m:
            cpu, message = int(m.group(1)), None
            continue
        if cpu is not None and message is None and text and not text.startswith("*"):
            message = text
        if "pressed -> triggering crashdump" in text or text.startswith("FATAL"):
            message = text
        m = re.search(r"Executing kexec image on cpu(\d+)", text)
        if m and cpu is None:
            cpu = int(m.group(1))
    if message is None and cpu is None:
        return None
    return {"cpu": cpu, "message": message}
