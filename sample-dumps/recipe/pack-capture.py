#!/usr/bin/env python3
"""Pack the dump files of one sample (several formats of the same capture)
into one capture.tar.xz with a 192 MiB LZMA dictionary, so pages shared by
the formats are stored once (kdump-zlib and flat-zlib hold the very same
zlib blocks; an ELF's pages compress once).  facts.json then names each file
without its .xz and says which archive holds it; tests unpack from there.

    pack-capture.py SAMPLE_DIR FILE [FILE ...]
"""

import json
import lzma
import os
import shutil
import subprocess
import sys
import tempfile


def main(sample: str, names: list[str]) -> None:
    with open(os.path.join(sample, "facts.json")) as f:
        facts = json.load(f)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(sample))) as tmp:
        members = []
        for name in names:
            plain = name[:-3] if name.endswith(".xz") else name
            src = os.path.join(sample, name)
            if name.endswith(".xz"):
                with lzma.open(src) as inp, open(os.path.join(tmp, plain), "wb") as out:
                    shutil.copyfileobj(inp, out, 1 << 20)
            else:
                shutil.copyfile(src, os.path.join(tmp, plain))
            members.append(plain)
            entry = facts["files"].pop(name)
            entry["archive"] = "capture.tar.xz"
            entry["stored_as"] = f"capture.tar.xz member {plain} (was {name})"
            facts["files"][plain] = entry
        tar = subprocess.Popen(["tar", "cf", "-", "--owner=0", "--group=0", "--mtime=@0", "-C", tmp, *members],
                               stdout=subprocess.PIPE)
        with open(os.path.join(sample, "capture.tar.xz"), "wb") as out:
            subprocess.run(["xz", "-T1", "--lzma2=preset=9e,dict=192MiB"], stdin=tar.stdout, stdout=out,
                           check=True)
        tar.wait()
    for name in names:
        os.unlink(os.path.join(sample, name))
    with open(os.path.join(sample, "facts.json"), "w") as f:
        json.dump(facts, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
