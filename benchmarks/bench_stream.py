"""Indexing speed of QEMU migration streams: a synthetic stream of a guest
with GIB GiB of RAM (half the pages sent with data, half as zero records),
opened twice in fresh processes: the first open indexes (MB/s), the second
uses the cached index.

    .venv/bin/python benchmarks/bench_stream.py [--gib 2] [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROBE = r"""
import json, sys, time
t = time.perf_counter()
from analyzer import open_dump
d = open_dump(sys.argv[1])
opened = time.perf_counter() - t
d.read_page(12345)
print(json.dumps({"open_s": opened}))
"""


def write_stream(path: str, gib: int) -> None:
    pages = (gib << 30) // 4096
    data = bytes(range(256)) * 16
    with open(path, "wb") as f:
        f.write(b"QEVM" + struct.pack(">I", 3))
        f.write(b"\x07" + struct.pack(">I", 13) + b"pc-i440fx-7.2")
        f.write(b"\x01" + struct.pack(">I", 2) + b"\x03ram" + struct.pack(">II", 0, 4))
        f.write(struct.pack(">Q", (gib << 30) | 0x04) + b"\x06pc.ram" + struct.pack(">Q", gib << 30))
        f.write(struct.pack(">Q", 0x10))
        f.write(b"\x02" + struct.pack(">I", 2))
        f.write(struct.pack(">Q", 0x08) + b"\x06pc.ram" + data)  # first page names the block
        for i in range(1, pages):
            if i % 2:
                f.write(struct.pack(">Q", (i << 12) | 0x08 | 0x20) + data)
            else:
                f.write(struct.pack(">Q", (i << 12) | 0x02 | 0x20) + b"\x00")
        f.write(struct.pack(">Q", 0x10))
        f.write(b"\x00")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gib", type=int, default=2)
    ap.add_argument("--dir")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        path = os.path.join(d, "guest.stream")
        write_stream(path, args.gib)
        size = os.path.getsize(path)
        env = dict(os.environ, VMCRASH_CACHE=os.path.join(d, "cache"))
        runs = []
        for _ in range(2):
            out = subprocess.run([sys.executable, "-c", PROBE, path], cwd=HERE, env=env, capture_output=True,
                                 text=True, check=True).stdout
            runs.append(json.loads(out)["open_s"])
        print(f"stream of a {args.gib} GiB guest: {size / 1e6:.0f} MB")
        print(f"first open (indexing): {runs[0]:.2f} s = {size / 1e6 / runs[0]:.0f} MB/s")
        print(f"second open (cached index): {runs[1] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
