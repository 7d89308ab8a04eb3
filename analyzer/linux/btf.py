"""Kernel types with no debug file: the BTF the kernel carries in its own
memory (between the kallsyms symbols ``__start_BTF`` and ``__stop_BTF``),
given to drgn as a type finder.

BTF (include/uapi/linux/btf.h) is a header, a table of types numbered from
1, and a string table.  Types become drgn types lazily (members resolve on
first use), so loading costs one pass over the type table.

BTF describes per-CPU variables (the ``.data..percpu`` DATASEC) but not
ordinary globals; for those, :data:`GLOBALS` names the C type of the
handful the plugins need, and their addresses (and, for arrays, their
lengths) come from kallsyms.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import drgn

from ..errors import VmcrashError

__all__ = ["Btf", "BtfError", "load_btf_from_memory", "GLOBALS", "MAX_BTF"]

BTF_MAGIC = 0xEB9F
MAX_BTF = 64 << 20  # a distribution kernel's BTF is a few MiB

# Kinds
INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FUNC_PROTO, \
    VAR, DATASEC, FLOAT, DECL_TAG, TYPE_TAG, ENUM64 = range(1, 20)

#: Globals the plugins read, by the C type the kernel declares them with
#: (kernel/fork.c, init/version.c, kernel/panic.c, ...).  ``[]`` arrays take
#: their length from the kallsyms symbol's size.
GLOBALS: dict[str, str] = {
    "init_task": "struct task_struct",
    "init_uts_ns": "struct uts_namespace",
    "init_pid_ns": "struct pid_namespace",
    "jiffies_64": "u64",
    "jiffies": "unsigned long",
    "tainted_mask": "unsigned long",
    "panic_cpu": "atomic_t",
    "_totalram_pages": "atomic_long_t",
    "modules": "struct list_head",
    "__cpu_online_mask": "struct cpumask",
    "__cpu_possible_mask": "struct cpumask",
    "__cpu_present_mask": "struct cpumask",
    "__per_cpu_offset": "unsigned long[]",
    "nr_cpu_ids": "unsigned int",
    "prb": "struct printk_ringbuffer *",
    "crashing_cpu": "int",
    "mod_tree": "struct mod_tree_root",
    "task_state_array": "const char *const[]",
}


#: Arrays of "X (name)" strings whose kallsyms size includes alignment
#: padding; their length is the run of entries that read as such names.
STATE_NAME_TABLES = frozenset({"task_state_array"})


def _leading_state_names(prog: drgn.Program, address: int, limit: int) -> int:
    import re

    pattern = re.compile(rb"^[A-Za-z] \([a-z ]+\)$")
    for i in range(limit):
        try:
            ptr = int.from_bytes(prog.read(address + 8 * i, 8), "little")
            text = prog.read(ptr, 32).split(b"\0", 1)[0]
        except drgn.FaultError:
            return max(i, 1)
        if not pattern.match(text):
            return max(i, 1)
    return limit


class BtfError(VmcrashError):
    """The BTF blob is missing or malformed."""


class Btf:
    """A parsed BTF blob, turning its types into drgn types on demand."""

    def __init__(self, prog: drgn.Program, blob: bytes) -> None:
        if len(blob) < 24:
            raise BtfError("BTF blob too short")
        magic, version, _flags, hdr_len = struct.unpack_from("<HBBI", blob, 0)
        if magic != BTF_MAGIC or version != 1:
            raise BtfError(f"not BTF (magic {magic:#x}, version {version})")
        type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", blob, 8)
        base = hdr_len
        if base + type_off + type_len > len(blob) or base + str_off + str_len > len(blob):
            raise BtfError("BTF sections run past the blob")
        self.prog = prog
        self.strings = blob[base + str_off: base + str_off + str_len]
        self.types: list[tuple[int, int, int, int, int]] = [(0, 0, 0, 0, 0)]  # id 0 is void
        self._data = blob[base + type_off: base + type_off + type_len]
        self._by_name: dict[tuple[int, str], list[int]] = {}
        self._cache: dict[int, drgn.Type] = {}
        self.percpu_vars: dict[str, int] = {}  # name -> type id
        self._pending_percpu: list[int] = []
        self._enumerators: dict[str, int] | None = None
        self._parse()

    def name(self, off: int) -> str:
        end = self.strings.find(b"\0", off)
        return self.strings[off:end if end >= 0 else len(self.strings)].decode("utf-8", "replace")

    def _parse(self) -> None:
        data = self._data
        pos = 0
        while pos + 12 <= len(data):
            name_off, info, size_or_type = struct.unpack_from("<III", data, pos)
            kind = (info >> 24) & 0x1F
            vlen = info & 0xFFFF
            extra = {INT: 4, ARRAY: 12, STRUCT: 12 * vlen, UNION: 12 * vlen, ENUM: 8 * vlen,
                     FUNC_PROTO: 8 * vlen, VAR: 4, DATASEC: 12 * vlen, DECL_TAG: 4, ENUM64: 12 * vlen}.get(kind, 0)
            if kind == 0 or kind > ENUM64 or pos + 12 + extra > len(data):
                raise BtfError(f"bad BTF type {len(self.types)} (kind {kind}) at offset {pos}")
            tid = len(self.types)
            self.types.append((kind, info, size_or_type, pos + 12, name_off))
            if name_off:
                self._by_name.setdefault((kind, self.name(name_off)), []).append(tid)
            if kind == DATASEC and self.name(name_off) == ".data..percpu":
                for i in range(vlen):
                    var_id, _off, _size = struct.unpack_from("<III", data, pos + 12 + 12 * i)
                    self._pending_percpu.append(var_id)
            pos += 12 + extra
        for var_id in self._pending_percpu:
            if 0 < var_id < len(self.types) and self.types[var_id][0] == VAR:
                self.percpu_vars[self.name(self.types[var_id][4])] = self.types[var_id][2]

    # -- lookup -------------------------------------------------------------

    def find(self, kinds: drgn.TypeKindSet, name: str) -> drgn.Type | None:
        want = []
        for k in kinds:
            if k == drgn.TypeKind.STRUCT:
                want += [STRUCT]
            elif k == drgn.TypeKind.UNION:
                want += [UNION]
            elif k == drgn.TypeKind.ENUM:
                want += [ENUM, ENUM64]
            elif k == drgn.TypeKind.TYPEDEF:
                want += [TYPEDEF]
            elif k in (drgn.TypeKind.INT, drgn.TypeKind.BOOL):
                want += [INT]
            elif k == drgn.TypeKind.FLOAT:
                want += [FLOAT]
        for kind in want:
            ids = self._by_name.get((kind, name))
            if ids:
                # Prefer a complete definition over a forward one.
                return self.type(ids[0])
        return None

    def type(self, tid: int) -> drgn.Type:
        cached = self._cache.get(tid)
        if cached is None:
            cached = self._cache[tid] = self._build(tid)
        return cached

    def _lazy(self, tid: int) -> Callable[[], drgn.Type]:
        return lambda: self.type(tid)

    def _build(self, tid: int) -> drgn.Type:
        prog = self.prog
        if tid == 0:
            return prog.void_type()
        if not 0 < tid < len(self.types):
            raise BtfError(f"BTF type id {tid} out of range")
        kind, info, sot, extra, name_off = self.types[tid]
        name = self.name(name_off) if name_off else None
        vlen = info & 0xFFFF
        kflag = bool(info >> 31)
        data = self._data
        if kind == INT:
            enc = struct.unpack_from("<I", data, extra)[0]
            if (enc >> 24) & 4:
                return prog.bool_type(name or "_Bool", sot)
            return prog.int_type(name or "int", sot, bool((enc >> 24) & 1))
        if kind == FLOAT:
            return prog.float_type(name or "double", sot)
        if kind == PTR:
            return prog.pointer_type(self._lazy_or_type(sot))
        if kind == ARRAY:
            elem, _index, nelems = struct.unpack_from("<III", data, extra)
            return prog.array_type(self.type(elem), nelems)
        if kind in (STRUCT, UNION):
            members = []
            for i in range(vlen):
                m_name, m_type, m_off = struct.unpack_from("<III", data, extra + 12 * i)
                bit_size = m_off >> 24 if kflag else 0
                bit_off = m_off & 0xFFFFFF if kflag else m_off
                if bit_size:
                    members.append(drgn.TypeMember(self._bitfield(m_type, bit_size),
                                                   self.name(m_name) or None, bit_off))
                else:
                    members.append(drgn.TypeMember(self._lazy(m_type), self.name(m_name) or None, bit_off))
            make = prog.struct_type if kind == STRUCT else prog.union_type
            return make(name, sot, members)
        if kind in (ENUM, ENUM64):
            enumerators = []
            for i in range(vlen):
                if kind == ENUM:
                    e_name, val = struct.unpack_from("<Ii", data, extra + 8 * i)
                    if kflag:  # the enum is unsigned: the value is a u32
                        val &= 0xFFFFFFFF
                else:
                    e_name, lo, hi = struct.unpack_from("<III", data, extra + 12 * i)
                    val = lo | hi << 32
                    if not kflag and val >> 63:
                        val -= 1 << 64
                enumerators.append(drgn.TypeEnumerator(self.name(e_name), val))
            signed = any(e.value < 0 for e in enumerators)
            compat = prog.int_type(("" if signed else "unsigned ") + ("long" if sot == 8 else "int"), sot, signed)
            return prog.enum_type(name, compat, enumerators)
        if kind == FWD:
            return (prog.union_type if kflag else prog.struct_type)(name, None, None)
        if kind == TYPEDEF:
            return prog.typedef_type(name or "", self._lazy_or_type(sot))
        if kind in (VOLATILE, CONST, RESTRICT):
            q = {VOLATILE: drgn.Qualifiers.VOLATILE, CONST: drgn.Qualifiers.CONST,
                 RESTRICT: drgn.Qualifiers.RESTRICT}[kind]
            inner = self.type(sot)
            return inner.qualified(inner.qualifiers | q)
        if kind in (TYPE_TAG, DECL_TAG, VAR, FUNC):
            return self.type(sot)
        if kind == FUNC_PROTO:
            params = []
            variadic = False
            for i in range(vlen):
                p_name, p_type = struct.unpack_from("<II", data, extra + 8 * i)
                if p_type == 0 and i == vlen - 1:
                    variadic = True
                    continue
                params.append(drgn.TypeParameter(self._lazy(p_type), self.name(p_name) or None))
            return prog.function_type(self.type(sot), params, variadic)
        return prog.void_type()

    def _lazy_or_type(self, tid: int) -> drgn.Type:
        # Pointers and typedefs need their target now in drgn; a cycle
        # (struct -> pointer -> struct) is broken by the struct's lazy members.
        return self.type(tid)

    def _bitfield(self, tid: int, bits: int) -> Callable[[], drgn.Object]:
        return lambda: drgn.Object(self.prog, self.type(tid), bit_field_size=bits)

    # -- drgn finders -------------------------------------------------------

    def type_finder(self, prog: drgn.Program, kinds: drgn.TypeKindSet, name: str,
                    filename: str | None) -> drgn.Type | None:
        try:
            return self.find(kinds, name)
        except (BtfError, struct.error):
            return None

    def _enumerator_index(self) -> dict[str, int]:
        if self._enumerators is None:
            index: dict[str, int] = {}
            for tid, (kind, info, _sot, extra, _name) in enumerate(self.types):
                if kind in (ENUM, ENUM64):
                    step = 8 if kind == ENUM else 12
                    for i in range(info & 0xFFFF):
                        e_name = struct.unpack_from("<I", self._data, extra + step * i)[0]
                        index.setdefault(self.name(e_name), tid)
            self._enumerators = index
        return self._enumerators

    def object_finder(self, prog: drgn.Program, name: str, flags: drgn.FindObjectFlags,
                      filename: str | None) -> drgn.Object | None:
        if flags & drgn.FindObjectFlags.CONSTANT:
            tid = self._enumerator_index().get(name)
            if tid is not None:
                enum = self.type(tid)
                for e in enum.enumerators or ():
                    if e.name == name:
                        return drgn.Object(prog, enum, value=e.value)
        if not flags & drgn.FindObjectFlags.VARIABLE:
            return None
        try:
            sym = prog.symbol(name)
        except LookupError:
            return None
        address = sym.address
        if name in self.percpu_vars:
            return drgn.Object(prog, self.type(self.percpu_vars[name]), address=address)
        ctype = GLOBALS.get(name)
        if ctype is None:
            return None
        try:
            if ctype.endswith("[]"):
                elem = prog.type(ctype[:-2])
                n = sym.size // elem.size if sym.size and elem.size else 1
                n = max(1, min(n, 1 << 16))
                if name in STATE_NAME_TABLES:
                    n = _leading_state_names(prog, address, n)
                return drgn.Object(prog, prog.array_type(elem, n), address=address)
            return drgn.Object(prog, prog.type(ctype), address=address)
        except (LookupError, drgn.FaultError, ValueError):
            return None


def load_btf_from_memory(prog: drgn.Program) -> Btf:
    """Find BTF through kallsyms and parse it (raises BtfError if absent)."""
    try:
        start = prog.symbol("__start_BTF").address
        stop = prog.symbol("__stop_BTF").address
    except LookupError:
        raise BtfError("kallsyms has no __start_BTF/__stop_BTF: this kernel was built without BTF") from None
    if not 0 < stop - start <= MAX_BTF:
        raise BtfError(f"BTF size {stop - start} is implausible")
    try:
        blob = prog.read(start, stop - start)
    except drgn.FaultError as e:
        raise BtfError(f"BTF is not readable in this dump: {e}") from None
    return Btf(prog, blob)
