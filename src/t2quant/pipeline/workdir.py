"""A guarded work folder: one run at a time, and a cache that is trusted only when it is whole.

:func:`hold_work_dir` takes an advisory lock (``fcntl.flock``) on ``WORK/.t2quant.lock``. The
kernel releases it when the holder exits, however it exits, so a killed run never blocks the
next one; a second run on the same folder is refused at once with the holder's pid, host and
start time.

:func:`prune_damaged_cache` then walks the Nipype cache and removes every node folder whose
result cannot be trusted: a result file that is empty or unreadable, a result without outputs,
an output file that is gone, or a half-finished run (``_0x..._unfinished.json``). Nipype would
otherwise report such a node as cached and fail, or hang, on it; removed, it is simply rerun.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from t2quant.errors import WorkDirInUse

__all__ = ["LOCK_NAME", "hold_work_dir", "prune_damaged_cache"]

LOCK_NAME = ".t2quant.lock"


@contextmanager
def hold_work_dir(work_dir: Path) -> Iterator[Path]:
    """Hold the work folder for the duration of the block.

    Raises
    ------
    WorkDirInUse
        When another live process holds it.
    """
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorkDirInUse(
                f"{work_dir}: the work folder is in use by another t2quant run "
                f"({_holder(path)}); wait for it to finish, or give this run its own --work-dir"
            ) from None
        os.ftruncate(fd, 0)
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.ctime()}
        os.write(fd, json.dumps(record).encode())
        yield work_dir
    finally:
        os.close(fd)  # closing releases the lock


def _holder(path: Path) -> str:
    try:
        record = json.loads(path.read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        return "holder unknown"
    return f"pid {record.get('pid')} on {record.get('host')}, started {record.get('started')}"


def prune_damaged_cache(work_dir: Path) -> list[Path]:
    """Remove the node folders under ``work_dir`` whose cached result cannot be trusted;
    return them. A folder without a result file is left alone (Nipype reruns it anyway)."""
    removed = []
    for result in sorted(Path(work_dir).rglob("result_*.pklz")):
        node_dir = result.parent
        if _result_is_whole(result) and not list(node_dir.glob("_0x*_unfinished.json")):
            continue
        shutil.rmtree(node_dir, ignore_errors=True)
        removed.append(node_dir)
    return removed


def _result_is_whole(path: Path) -> bool:
    from nipype.utils.filemanip import loadpkl

    try:
        if path.stat().st_size == 0:
            return False
        result = loadpkl(path)
    except Exception:  # any unreadable pickle: truncated, garbage, wrong version
        return False
    outputs = getattr(result, "outputs", None)
    if outputs is None:
        return False
    return all(Path(p).exists() for p in _output_files(outputs))


def _output_files(outputs) -> Iterator[str]:
    """The values of an output spec's ``File`` traits (and lists of them) that are set."""
    from nipype.interfaces.base import File, isdefined

    for name in outputs.copyable_trait_names():
        value, trait = getattr(outputs, name), outputs.trait(name)
        if not isdefined(value) or value is None:
            continue
        inner = [t.trait_type for t in getattr(trait, "inner_traits", ())]
        if isinstance(trait.trait_type, File):
            yield str(value)
        elif inner and isinstance(inner[0], File):
            yield from (str(v) for v in value)
