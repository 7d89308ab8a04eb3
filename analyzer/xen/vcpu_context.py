"""Xen's ``struct vcpu_guest_context`` for x86-64 (xen/include/public/arch-x86/xen.h),
as ``xl dump-core`` stores one per vCPU in ``.xen_prstatus``.

Layout: fpu_ctxt[512], flags, user_regs (struct cpu_user_regs, 200 bytes:
r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi, error_code u32,
entry_vector u32, rip, cs u16 [+pad, saved_upcall_mask], rflags, rsp,
ss es ds fs gs as u16 each padded to 8), trap_ctxt[256] (16 bytes each),
ldt_base, ldt_ents, gdt_frames[16], gdt_ents, kernel_ss, kernel_sp,
ctrlreg[8], debugreg[8], event/failsafe/syscall callback eips, vm_assist,
fs_base, gs_base_kernel, gs_base_user: 5168 bytes.  For a PV guest
``ctrlreg[3]`` holds the top page table as a machine address
(``xen_pfn_to_cr3(mfn) = mfn << 12``).
"""

from __future__ import annotations

from construct import Array, Bytes, Int8ul, Int16ul, Int32ul, Int64ul, Padding, Struct

__all__ = ["VCPU_GUEST_CONTEXT_X86_64", "CPU_USER_REGS_X86_64", "context_registers", "VGCF_ONLINE"]

VGCF_IN_KERNEL = 1 << 2
VGCF_ONLINE = 1 << 5

_GPRS = ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8",
         "rax", "rcx", "rdx", "rsi", "rdi")

CPU_USER_REGS_X86_64 = Struct(
    *[name / Int64ul for name in _GPRS],
    "error_code" / Int32ul,
    "entry_vector" / Int32ul,
    "rip" / Int64ul,
    "cs" / Int16ul, Padding(2), "saved_upcall_mask" / Int8ul, Padding(3),
    "rflags" / Int64ul,
    "rsp" / Int64ul,
    *[seg / Struct("sel" / Int16ul, Padding(6)) for seg in ("ss", "es", "ds", "fs", "gs")],
)

VCPU_GUEST_CONTEXT_X86_64 = Struct(
    "fpu_ctxt" / Bytes(512),
    "flags" / Int64ul,
    "user_regs" / CPU_USER_REGS_X86_64,
    "trap_ctxt" / Bytes(256 * 16),
    "ldt_base" / Int64ul, "ldt_ents" / Int64ul,
    "gdt_frames" / Array(16, Int64ul), "gdt_ents" / Int64ul,
    "kernel_ss" / Int64ul, "kernel_sp" / Int64ul,
    "ctrlreg" / Array(8, Int64ul),
    "debugreg" / Array(8, Int64ul),
    "event_callback_eip" / Int64ul, "failsafe_callback_eip" / Int64ul, "syscall_callback_eip" / Int64ul,
    "vm_assist" / Int64ul,
    "fs_base" / Int64ul, "gs_base_kernel" / Int64ul, "gs_base_user" / Int64ul,
)


def context_registers(raw: bytes) -> tuple[dict[str, int], int]:
    """(registers, flags) from one vcpu_guest_context.  ``cr3`` is a machine
    address for PV guests."""
    ctx = VCPU_GUEST_CONTEXT_X86_64.parse(raw)
    u = ctx.user_regs
    regs = {name: u[name] for name in _GPRS}
    regs.update(rip=u.rip, rsp=u.rsp, rflags=u.rflags, cs=u.cs,
                ss=u.ss.sel, es=u.es.sel, ds=u.ds.sel, fs=u.fs.sel, gs=u.gs.sel,
                fs_base=ctx.fs_base, gs_base=ctx.gs_base_kernel, kernel_gs_base=ctx.gs_base_user)
    for i in (0, 2, 3, 4):
        regs[f"cr{i}"] = ctx.ctrlreg[i]
    return regs, int(ctx.flags)
