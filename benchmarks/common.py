"""Shared helpers for the benchmarks: timing and running crash."""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Callable
from typing import Any


def best_of(n: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """The fastest of ``n`` runs (seconds) and the last result."""
    best = float("inf")
    result = None
    for _ in range(n):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def timed_run(argv: list[str], cwd: str, runs: int = 3, check: bool = True) -> float:
    """The fastest of ``runs`` runs of a command (seconds); ``check``: a
    failing command is an error, not a fast time."""
    import subprocess

    return best_of(runs, lambda: subprocess.run(argv, cwd=cwd, capture_output=True, check=check, timeout=900))[0]


def print_ratios(rows: list[tuple[str, float]], base: str) -> None:
    """A table of (what, seconds), each also as a ratio to the first row's."""
    width = max(len(name) for name, _ in rows) + 2
    first = rows[0][1]
    print(f"{'':<{width}} {'seconds':>8}  {'vs ' + base:>30}")
    for name, secs in rows:
        print(f"{name:<{width}} {secs:8.2f}  {secs / first:29.2f}x")


def run_crash(crash_cmd: str, vmlinux: str, dump: str, commands: list[str], timeout: int = 600) -> tuple[float, str]:
    """Run crash non-interactively; (seconds, output)."""
    argv = shlex.split(crash_cmd) + ["-s", vmlinux, dump]
    script = "\n".join(commands + ["quit"]) + "\n"
    t = time.perf_counter()
    proc = subprocess.run(argv, input=script, capture_output=True, text=True, timeout=timeout)
    return time.perf_counter() - t, proc.stdout + proc.stderr


def ratio_line(what: str, ours: float, theirs: float, unit: str, higher_is_better: bool) -> str:
    r = (ours / theirs if higher_is_better else theirs / ours) if ours and theirs else float("nan")
    return f"{what:<44} vmcrash {ours:>12,.1f} {unit:<10} other {theirs:>12,.1f} {unit:<10} ratio {r:6.2f}x"
