"""The kernel log without debug info: the lockless printk ring buffer
(Linux 5.10+) read with the offsets VMCOREINFO publishes for it.

The layout is kernel/printk/printk_ringbuffer.h: a descriptor ring (``descs``
and parallel ``infos``, ``1 << count_bits`` of each) and a data ring of
text blocks.  A descriptor's ``state_var`` holds its id and a 2-bit state;
committed and finalized records are shown, the rest skipped.  Every walk is
bounded by the ring's size, so a damaged ring cannot make it loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import MemoryFault, VmcrashError
from ..vmcoreinfo import VmcoreInfo

__all__ = ["PrintkRecord", "read_printk_ringbuffer", "format_record", "NoPrintkInfo"]

DESC_FLAGS_SHIFT = 62
DESC_ID_MASK = (1 << DESC_FLAGS_SHIFT) - 1
DESC_COMMITTED, DESC_FINALIZED = 1, 2
MAX_COUNT_BITS = 24   # 16 Mi records: far above any real ring
MAX_DATA_BITS = 30    # 1 GiB of log text


class NoPrintkInfo(VmcrashError):
    """VMCOREINFO lacks what is needed to find the log."""


@dataclass(frozen=True)
class PrintkRecord:
    seq: int
    ts_nsec: int
    text: str
    caller_id: int


def format_record(r: PrintkRecord) -> str:
    """As dmesg prints it: ``[    1.234567] text``."""
    sec, nsec = divmod(r.ts_nsec, 1_000_000_000)
    return f"[{sec:5d}.{nsec // 1000:06d}] {r.text}"


def read_printk_ringbuffer(vmci: VmcoreInfo, read: Callable[[int, int], bytes]) -> list[PrintkRecord]:
    """Every readable record, oldest first.  ``read(vaddr, size)`` reads
    kernel-virtual memory."""
    def need(value: int | None, what: str) -> int:
        if value is None:
            raise NoPrintkInfo(f"VMCOREINFO has no {what}: cannot find the kernel log without debug info")
        return value

    def u(addr: int, size: int) -> int:
        return int.from_bytes(read(addr, size), "little")

    prb_ptr = need(vmci.symbol("prb"), "SYMBOL(prb)")
    off = vmci.offset
    desc_ring_off = need(off("printk_ringbuffer.desc_ring"), "OFFSET(printk_ringbuffer.desc_ring)")
    text_ring_off = need(off("printk_ringbuffer.text_data_ring"), "OFFSET(printk_ringbuffer.text_data_ring)")
    counter = off("atomic_long_t.counter") or 0
    prb = u(prb_ptr, 8)
    desc_ring = prb + desc_ring_off
    count_bits = u(desc_ring + need(off("prb_desc_ring.count_bits"), "OFFSET(prb_desc_ring.count_bits)"), 4)
    descs = u(desc_ring + need(off("prb_desc_ring.descs"), "OFFSET(prb_desc_ring.descs)"), 8)
    infos = u(desc_ring + need(off("prb_desc_ring.infos"), "OFFSET(prb_desc_ring.infos)"), 8)
    head_id = u(desc_ring + need(off("prb_desc_ring.head_id"), "OFFSET(prb_desc_ring.head_id)") + counter, 8)
    tail_id = u(desc_ring + need(off("prb_desc_ring.tail_id"), "OFFSET(prb_desc_ring.tail_id)") + counter, 8)
    text_ring = prb + text_ring_off
    size_bits = u(text_ring + need(off("prb_data_ring.size_bits"), "OFFSET(prb_data_ring.size_bits)"), 4)
    data = u(text_ring + need(off("prb_data_ring.data"), "OFFSET(prb_data_ring.data)"), 8)
    if not 0 < count_bits <= MAX_COUNT_BITS or not 0 < size_bits <= MAX_DATA_BITS:
        raise NoPrintkInfo(f"printk ring sizes are implausible (count_bits {count_bits}, size_bits {size_bits})")

    desc_size = need(vmci.size("prb_desc"), "SIZE(prb_desc)")
    sv_off = need(off("prb_desc.state_var"), "OFFSET(prb_desc.state_var)") + counter
    lpos_off = need(off("prb_desc.text_blk_lpos"), "OFFSET(prb_desc.text_blk_lpos)")
    begin_off = off("prb_data_blk_lpos.begin") or 0
    next_off = need(off("prb_data_blk_lpos.next"), "OFFSET(prb_data_blk_lpos.next)")
    info_size = need(vmci.size("printk_info"), "SIZE(printk_info)")
    seq_off = need(off("printk_info.seq"), "OFFSET(printk_info.seq)")
    ts_off = need(off("printk_info.ts_nsec"), "OFFSET(printk_info.ts_nsec)")
    len_off = need(off("printk_info.text_len"), "OFFSET(printk_info.text_len)")
    caller_off = off("printk_info.caller_id")

    count = 1 << count_bits
    data_size = 1 << size_bits
    records: list[PrintkRecord] = []
    id_ = tail_id & DESC_ID_MASK
    for _ in range(count):  # bounded: at most one lap of the ring
        index = id_ & (count - 1)
        try:
            desc = descs + index * desc_size
            sv = u(desc + sv_off, 8)
            state = sv >> DESC_FLAGS_SHIFT
            if (sv & DESC_ID_MASK) == id_ and state in (DESC_COMMITTED, DESC_FINALIZED):
                begin = u(desc + lpos_off + begin_off, 8)
                nxt = u(desc + lpos_off + next_off, 8)
                info = infos + index * info_size
                text_len = u(info + len_off, 2)
                text = _block_text(read, data, data_size, begin, nxt, text_len)
                if text is not None:
                    records.append(PrintkRecord(
                        seq=u(info + seq_off, 8), ts_nsec=u(info + ts_off, 8), text=text,
                        caller_id=u(info + caller_off, 4) if caller_off is not None else 0))
        except MemoryFault:
            pass  # an unreadable record: the others still tell the story
        if id_ == head_id & DESC_ID_MASK:
            break
        id_ = (id_ + 1) & DESC_ID_MASK
    return records


def _block_text(read: Callable[[int, int], bytes], data: int, data_size: int,
                begin: int, nxt: int, text_len: int) -> str | None:
    if begin & 1 or nxt & 1 or begin == nxt:
        return "" if begin == nxt == 0 else None  # data-less record (failed or empty line)
    shift = data_size.bit_length() - 1  # lpos >> shift counts the ring's wraps
    if begin >> shift == nxt >> shift:
        start, length = begin & (data_size - 1), nxt - begin
    else:  # the block wrapped: it starts at the beginning of the ring
        start, length = 0, nxt & (data_size - 1)
    if length < 8 or length > data_size:
        return None
    text_len = min(text_len, length - 8)
    raw = read(data + start + 8, text_len)  # the block starts with its descriptor id
    return raw.decode("utf-8", "replace")
