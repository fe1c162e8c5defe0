"""Functions that job tests run with ``JobContext.call`` in a child process (importable there)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable

from app.jobs.runner import JobError

Progress = Callable[[float, str], None]


def sleep_with_a_solver(seconds: float, *, progress: Progress) -> str:
    """Start a long-running program (as a solver binary would be), report both pids, then sleep."""
    solver = subprocess.Popen(["sleep", str(seconds)])
    progress(0.1, f"working pid={os.getpid()} solver={solver.pid}")
    time.sleep(seconds)
    return "slept"


def report_then_return(values: list[int], *, progress: Progress) -> dict:
    for i, v in enumerate(values):
        progress((i + 1) / len(values), f"step {v}")
    return {"sum": sum(values), "pid": os.getpid()}


def raise_unexpected(*, progress: Progress) -> None:
    raise RuntimeError("secret internals at /srv/solver.py line 7")


def raise_job_error(*, progress: Progress) -> None:
    raise JobError("These requirements cannot be planned: no GPU has 4000 GB.")


def die(*, progress: Progress) -> None:
    progress(0.5, "about to die")
    os._exit(9)  # as the kernel's out-of-memory killer would end it


def report_priority(*, progress: Progress) -> dict:
    """The child's own nice value, and that of a program it starts (as a solver binary)."""
    solver = subprocess.run(["sh", "-c", "cat /proc/$$/stat"], capture_output=True, text=True, check=True)
    fields = solver.stdout[solver.stdout.rindex(")") + 2:].split()
    return {"child": os.nice(0), "solver": int(fields[16])}  # field 19 of /proc/PID/stat: nice
