"""Atomic file output: every file appears whole or not at all.

Writers go to a temporary file in the destination folder and ``os.replace`` it into place,
so an interrupted run never leaves a truncated NIfTI, JSON or TSV behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=suffix or "".join(path.suffixes), dir=path.parent
    )
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def check_writable(
    folder: str | os.PathLike, *, need_bytes: int = 0, what: str = "output folder"
) -> Path:
    """Make sure ``folder`` exists (creating it), can be written and has ``need_bytes`` free,
    before a long run rather than after it.

    Raises
    ------
    InputError
        Naming the folder and what is wrong (not a folder, not writable, too little space).
    """
    from t2quant.errors import InputError

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{folder}: cannot create the {what} ({exc.strerror or exc})") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".t2quant-write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(
            f"{folder}: the {what} is not writable ({exc.strerror or exc}); choose another "
            "folder or fix its permissions"
        ) from None
    free = shutil.disk_usage(folder).free
    if free < need_bytes:
        raise InputError(
            f"{folder}: the {what} needs about {need_bytes / 1e6:.0f} MB but its disk has "
            f"{free / 1e6:.0f} MB free; free some space or choose another folder"
        )
    return folder


def save_nifti(
    data: np.ndarray, affine: np.ndarray, path: str | os.PathLike, *, dtype: type | None = None
) -> Path:
    """Write ``data`` with ``affine`` (qform and sform, scanner code) atomically."""
    arr = np.asarray(data if dtype is None else data.astype(dtype))
    img = nib.Nifti1Image(arr, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    with atomic_path(path) as tmp:
        nib.save(img, tmp)
    return Path(path)


def write_json(obj: dict, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")
    return Path(path)


def write_tsv(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a tab-separated table atomically; missing values are written as ``n/a`` (BIDS)."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False, na_rep="n/a", float_format="%.10g")
    return Path(path)


def read_tsv(path: str | os.PathLike) -> pd.DataFrame:
    """Read a BIDS-style TSV (``n/a`` as missing)."""
    return pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
