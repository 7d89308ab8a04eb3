"""``vmcrash triage --batch DIR``: triage every dump in a folder in parallel,
one JSON line per dump, then the dumps grouped by crash signature.

Workers are local processes by default.  ``--scheduler ADDRESS`` sends the
work to a Dask distributed cluster instead (``pip install 'vmcrash[cluster]'``);
``--scheduler local`` starts a Dask cluster on this machine.  A dump that
cannot be read is reported in its own line and never stops the batch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

__all__ = ["find_dumps", "triage_one", "run_batch", "group_by_signature"]

MAX_FILES = 100_000


def find_dumps(folder: str) -> list[str]:
    """Every regular file under ``folder`` (sorted), hidden ones excepted."""
    out: list[str] = []
    for dirpath, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            p = os.path.join(dirpath, f)
            if not f.startswith(".") and os.path.isfile(p) and not os.path.islink(p):
                out.append(p)
                if len(out) >= MAX_FILES:
                    return out
    return out


def triage_one(path: str, vmlinux: str | None = None, debuginfo: Sequence[str] = ()) -> dict[str, Any]:
    """One line of the batch: a summary of the triage, or the error."""
    from .errors import VmcrashError
    from .session import Session
    from .triage import triage

    line: dict[str, Any] = {"type": "dump", "file": path}
    try:
        with Session(path, vmlinux=vmlinux, debuginfo=debuginfo) as s:
            t = triage(s)
    except VmcrashError as e:
        line["error"] = str(e)
        return line
    except Exception as e:  # noqa: BLE001 - a bug on one dump must not stop the batch
        line["error"] = f"internal error: {type(e).__name__}: {e}"
        return line
    panic = next((d["panic"] for d in t["domains"] if d["panic"]), None)
    kernel = next((d["kernel"] for d in t["domains"] if d["kernel"]), None)
    line.update({
        "format": t["format_description"],
        "release": kernel["release"] if kernel else None,
        "signature": t["signature"],
        "panic": None if panic is None else {k: panic[k] for k in ("message", "cpu", "pid", "comm")},
        "top_frames": [] if panic is None else [f["symbol"] for f in panic["stack"][:8]],
        "errors": t["errors"] + [e for d in t["domains"] for e in d["errors"]],
    })
    return line


def _dask_map(paths: list[str], scheduler: str, vmlinux: str | None,
              debuginfo: Sequence[str]) -> Iterator[dict[str, Any]]:
    try:
        from dask.distributed import Client, LocalCluster, as_completed as dask_completed
    except ImportError:
        raise RuntimeError("--scheduler needs Dask distributed: pip install 'vmcrash[cluster]'") from None
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) if scheduler == "local" else None
    client = Client(cluster if cluster is not None else scheduler)
    try:
        futures = [client.submit(triage_one, p, vmlinux, list(debuginfo), pure=False) for p in paths]
        for fut in dask_completed(futures):
            yield fut.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_batch(paths: list[str], *, jobs: int = 0, scheduler: str | None = None, vmlinux: str | None = None,
              debuginfo: Sequence[str] = (),
              progress: Callable[[int, int], None] | None = None) -> Iterator[dict[str, Any]]:
    """Yield one line per dump as each finishes."""
    done = 0
    if scheduler:
        results: Iterator[dict[str, Any]] = _dask_map(paths, scheduler, vmlinux, debuginfo)
        for line in results:
            done += 1
            if progress:
                progress(done, len(paths))
            yield line
        return
    workers = jobs or max(1, (os.cpu_count() or 1))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(triage_one, p, vmlinux, list(debuginfo)): p for p in paths}
        for fut in as_completed(futures):
            done += 1
            if progress:
                progress(done, len(paths))
            try:
                yield fut.result()
            except Exception as e:  # noqa: BLE001 - a worker that died
                yield {"type": "dump", "file": futures[fut], "error": f"worker failed: {e}"}


def group_by_signature(lines: list[dict[str, Any]]) -> dict[str, Any]:
    groups: dict[str, dict[str, Any]] = {}
    broken = []
    for line in lines:
        if "error" in line:
            broken.append(line["file"])
            continue
        g = groups.setdefault(line["signature"], {"signature": line["signature"], "count": 0, "files": [],
                                                  "panic": (line["panic"] or {}).get("message"),
                                                  "top_frames": line["top_frames"]})
        g["count"] += 1
        g["files"].append(line["file"])
    ordered = sorted(groups.values(), key=lambda g: (-g["count"], g["signature"]))
    return {"type": "groups", "groups": ordered, "unreadable": sorted(broken)}
