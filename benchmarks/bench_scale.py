"""Open time and resident memory as the guest grows: synthetic sparse dumps of
1, 8 and 64 GiB guests (ELF and compressed kdump), each opened in a fresh
process.  Also `ranges()` (which reads the whole RAM bitmap of a kdump) and a
read of the last page.

    .venv/bin/python benchmarks/bench_scale.py [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(HERE, "tests"))

PROBE = r"""
import json, resource, sys, time
t = time.perf_counter()
from analyzer import open_dump
import_s = time.perf_counter() - t
t = time.perf_counter()
d = open_dump(sys.argv[1])
open_s = time.perf_counter() - t
rss_open = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
n = len(d.ranges())
ranges_s = time.perf_counter() - t
t = time.perf_counter()
d.read_page(d.pfn_count() - 1)
last_s = time.perf_counter() - t
print(json.dumps({"open_ms": open_s * 1e3, "ranges_ms": ranges_s * 1e3, "last_page_ms": last_s * 1e3,
                  "maxrss_mib_after_open": rss_open / 1024,
                  "maxrss_mib_end": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    from dumpwriter import write_sparse_elf, write_sparse_kdump

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=None, help="where to write the sparse files (needs sparse-file support)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        print(f"{'format':<6} {'guest':>6} {'open ms':>9} {'ranges ms':>10} {'last page ms':>13} {'RSS open MiB':>13} {'RSS end MiB':>12}")
        for name, writer in (("elf", write_sparse_elf), ("kdump", write_sparse_kdump)):
            for gib in (1, 8, 64):
                size = gib << 30
                path = os.path.join(d, f"{name}-{gib}")
                last = size // 4096 - 1
                writer(path, size, {0: b"a" * 4096, last: b"z" * 4096})
                out = subprocess.run([sys.executable, "-c", PROBE, path], cwd=HERE, capture_output=True,
                                     text=True, check=True).stdout
                r = json.loads(out)
                print(f"{name:<6} {gib:>4}Gi {r['open_ms']:9.2f} {r['ranges_ms']:10.1f} {r['last_page_ms']:13.2f} "
                      f"{r['maxrss_mib_after_open']:13.1f} {r['maxrss_mib_end']:12.1f}")
                os.unlink(path)


if __name__ == "__main__":
    main()
