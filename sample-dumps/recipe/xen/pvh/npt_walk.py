#!/usr/bin/env python3
"""Check a guest-physical address of a PVH/HVM domain in a Xen kdump (ELF /proc/vmcore)
by walking the domain's p2m (AMD NPT = x86-64 4-level page table format) by hand.

Usage: npt_walk.py VMCORE P2M_ROOT_MFN GPA [LEN]
       npt_walk.py --gva GUEST_CR3 VMCORE P2M_ROOT_MFN GVA [LEN]
  --gva: first walk the guest's own 4-level page tables (rooted at guest-physical GUEST_CR3,
  each table found through the p2m) from guest-virtual GVA to a gpa, then as above.
  P2M_ROOT_MFN: the domain's p2m root (crash: p d->arch.p2m->phys_table, which equals the
  vCPUs' vmcb->_h_cr3 >> 12).  Prints each level's entry, the machine address of GPA, and
  LEN bytes there (default 256) as text.  Entries: bit 0 present, bit 7 PS (2M/1G),
  bits 12-51 frame; Xen keeps the p2m type in bits 52-58 (p2m-pt.c), ignored here.
"""
import struct
import sys

def loads(f):
    f.seek(0)
    eh = f.read(64)
    assert eh[:4] == b"\x7fELF"
    phoff, = struct.unpack_from("<Q", eh, 32)
    phentsize, phnum = struct.unpack_from("<HH", eh, 54)
    out = []
    for i in range(phnum):
        f.seek(phoff + i * phentsize)
        p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align = \
            struct.unpack("<IIQQQQQQ", f.read(56))
        if p_type == 1:
            out.append((p_paddr, p_filesz, p_offset))
    return out

def read_ma(f, segs, ma, n):
    for pa, sz, off in segs:
        if pa <= ma and ma + n <= pa + sz:
            f.seek(off + ma - pa)
            return f.read(n)
    raise ValueError("machine address %#x not in the dump" % ma)

def walk(f, segs, root_mfn, gpa, verbose=True):
    table = root_mfn << 12
    FRAME = 0x000ffffffffff000
    for level, shift in ((4, 39), (3, 30), (2, 21), (1, 12)):
        idx = (gpa >> shift) & 0x1ff
        e, = struct.unpack("<Q", read_ma(f, segs, table + idx * 8, 8))
        if verbose:
            print("L%d table %#x [%3d] = %#018x" % (level, table, idx, e))
        if not e & 1:
            raise ValueError("not present at level %d" % level)
        if level in (3, 2) and e & 0x80:
            return (e & FRAME & ~((1 << shift) - 1)) | (gpa & ((1 << shift) - 1))
        table = e & FRAME
    return table | (gpa & 0xfff)

def guest_walk(f, segs, root_mfn, cr3, gva):
    """guest-virtual -> guest-physical through the guest's page tables (tables read via the p2m)."""
    table = cr3 & 0x000ffffffffff000
    FRAME = 0x000ffffffffff000
    for level, shift in ((4, 39), (3, 30), (2, 21), (1, 12)):
        idx = (gva >> shift) & 0x1ff
        ma = walk(f, segs, root_mfn, table + idx * 8, verbose=False)
        e, = struct.unpack("<Q", read_ma(f, segs, ma, 8))
        print("guest L%d table gpa %#x (ma %#x) [%3d] = %#018x" % (level, table, ma & ~0xfff, idx, e))
        if not e & 1:
            raise ValueError("guest entry not present at level %d" % level)
        if level in (3, 2) and e & 0x80:
            return (e & FRAME & ~((1 << shift) - 1)) | (gva & ((1 << shift) - 1))
        table = e & FRAME
    return table | (gva & 0xfff)

def main():
    args = sys.argv[1:]
    cr3 = None
    if args[0] == "--gva":
        cr3 = int(args[1], 0)
        args = args[2:]
    core, root, gpa = args[0], int(args[1], 0), int(args[2], 0)
    n = int(args[3], 0) if len(args) > 3 else 256
    with open(core, "rb") as f:
        segs = loads(f)
        if cr3 is not None:
            gva = gpa
            gpa = guest_walk(f, segs, root, cr3, gva)
            print("gva %#x -> gpa %#x" % (gva, gpa))
        ma = walk(f, segs, root, gpa)
        print("gpa %#x -> machine address %#x (mfn %#x)" % (gpa, ma, ma >> 12))
        data = read_ma(f, segs, ma, n)
        print(data.decode("ascii", "replace"))

if __name__ == "__main__":
    main()
