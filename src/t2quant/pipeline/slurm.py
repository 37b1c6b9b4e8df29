"""Waiting for Nipype's SLURMGraph submissions.

SLURMGraph writes one ``sbatch`` per node, chained with ``--dependency=afterok``, runs the
submission script and returns at once. :func:`wait_for_graph` then polls ``squeue`` for the jobs
that script named until they have all left the queue, stops early (cancelling what is left)
when a job failed so that its dependants can never start, and checks that every session's
feature table was written.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["graph_job_names", "parse_queue", "wait_for_graph"]

NEVER_RUNS = ("DependencyNeverSatisfied",)


def graph_job_names(submit_script: Path) -> list[str]:
    """Job names (``-J``) in a SLURMGraph ``submit_jobs.sh``, in submission order."""
    text = Path(submit_script).read_text()
    return re.findall(r"^(\w+)=\$\(sbatch\b", text, flags=re.MULTILINE)


def parse_queue(text: str, names: Iterable[str]) -> dict[str, str]:
    """Our jobs still queued, name -> reason, from ``squeue -h -o '%j|%T|%r'`` output."""
    wanted = set(names)
    queued: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3 and parts[0] in wanted:
            queued[parts[0]] = f"{parts[1]} {parts[2]}".strip()
    return queued


def _squeue(user: str) -> str:
    result = subprocess.run(
        ["squeue", "-h", "-u", user, "-o", "%j|%T|%r"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"squeue failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def wait_for_graph(
    submit_script: Path,
    expected: list[Path],
    *,
    user: str,
    crash_dir: Path,
    on_finished: Callable[[Path], None] | None = None,
    poll_s: float = 2.0,
    timeout_s: float = 6 * 3600,
) -> None:
    """Block until every job named in ``submit_script`` has left the queue.

    ``expected``: the files the run must leave (each session's feature table); each one that
    appears or changes is passed to ``on_finished``. Raises ``RuntimeError`` naming the crash
    files when a job failed or an expected file is missing, ``TimeoutError`` after ``timeout_s``.
    """
    names = graph_job_names(submit_script)
    start = time.time()
    before = {path: _mtime(path) for path in expected}
    reported: set[Path] = set()
    deadline = time.monotonic() + timeout_s
    while True:
        queued = parse_queue(_squeue(user), names)
        _report_new(expected, before, reported, on_finished)
        stuck = [name for name, reason in queued.items() if any(r in reason for r in NEVER_RUNS)]
        if stuck:
            subprocess.run(["scancel", "-n", ",".join(stuck), "-u", user], check=False)
            raise RuntimeError(
                f"SLURMGraph: a job failed, so {len(stuck)} dependent job(s) can never run; "
                f"{_crash_hint(crash_dir, start)}"
            )
        if not queued:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"SLURMGraph: {len(queued)} job(s) still queued after {timeout_s} s")
        time.sleep(poll_s)
    _report_new(expected, before, reported, on_finished)
    missing = [str(path) for path in expected if not path.is_file()]
    if missing:
        raise RuntimeError(
            f"SLURMGraph: every job left the queue but {len(missing)} session(s) wrote no "
            f"features ({missing[0]} ...); {_crash_hint(crash_dir, start)}"
        )


def _mtime(path: Path) -> float | None:
    return path.stat().st_mtime if path.is_file() else None


def _report_new(expected, before, reported, on_finished) -> None:
    for path in expected:
        if path not in reported and path.is_file() and _mtime(path) != before[path]:
            reported.add(path)
            if on_finished:
                on_finished(path)


def _crash_hint(crash_dir: Path, since: float) -> str:
    crashes = sorted(p for p in Path(crash_dir).glob("crash-*") if p.stat().st_mtime >= since - 1)
    if crashes:
        return f"crash files: {', '.join(str(p) for p in crashes)}"
    return f"no crash file under {crash_dir}; see the job logs (*.sh.e) next to the submit script"
