"""Load multi-echo spin-echo data from BIDS, 4D NIfTI, per-echo NIfTIs or DICOM.

Every loader returns a :class:`MultiEcho` with echoes on the last axis and echo times in
milliseconds, and every error names the file and the fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from t2quant.errors import InputError, MissingInputError
from t2quant.io import bids
from t2quant.io.images import read_image
from t2quant.io.jsonfile import json_number, read_json_object
from t2quant.units import check_te_ms

__all__ = [
    "MultiEcho",
    "find_bids_echoes",
    "load_4d",
    "load_bids_echoes",
    "load_bids_session",
    "load_echo_files",
    "load_input",
    "read_nifti",
]


@dataclass(frozen=True)
class MultiEcho:
    """Multi-echo magnitude data.

    Attributes
    ----------
    data : (X, Y, Z, n_echoes) float32
        Echo images.
    te_ms : (n_echoes,) float64
        Echo times in ms, strictly increasing.
    affine : (4, 4) float64
        Voxel-to-world affine of the source, unchanged.
    sources : tuple of str
        Files the data came from (for ``Sources`` in sidecars).
    stem : str
        Output file stem, e.g. ``sub-01_ses-baseline`` for BIDS input.
    """

    data: NDArray[np.float32]
    te_ms: NDArray[np.float64]
    affine: NDArray[np.float64]
    sources: tuple[str, ...]
    stem: str


def read_nifti(path: str | os.PathLike) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """Data as float32 (scaling applied, so integer files cannot overflow) and the affine.

    Refuses unreadable files, complex data, empty axes, broken affines and values beyond
    float32 (:func:`t2quant.io.images.read_image`). NaN, infinite and negative voxels are kept:
    the fit marks them ``nonfinite_input`` / ``negative_input``.
    """
    image = read_image(path, what="image", ndims=(1, 2, 3, 4, 5), magnitude=False)
    return image.data, image.affine


def _checked_te(te_ms, n_echoes: int, where: str) -> NDArray[np.float64]:
    try:
        return check_te_ms(te_ms, n_echoes=n_echoes)
    except ValueError as exc:
        raise InputError(f"{where}: {exc}") from None


def load_4d(path: str | os.PathLike, te_ms=None) -> MultiEcho:
    """A 4D NIfTI with echoes on the fourth axis, and its echo times in ms."""
    data, affine = read_nifti(path)
    if data.ndim == 3 or (data.ndim == 4 and data.shape[3] == 1):
        raise InputError(
            f"{path}: a single echo (3D image, shape {data.shape}); T2 needs at least two "
            "echoes: pass a 4D image with echoes on the fourth axis, or one file per echo"
        )
    if data.ndim != 4:
        raise InputError(
            f"{path}: image is {data.ndim}D with shape {data.shape}; a 4D image with echoes "
            "on the fourth axis is needed (or pass one file per echo)"
        )
    if te_ms is None:
        raise InputError(f"{path}: a 4D file needs --te (echo times in ms, one per echo)")
    te = _checked_te(te_ms, data.shape[3], str(path))
    return MultiEcho(data, te, affine, (str(path),), _stem(Path(path)))


def _sidecar_te_ms(path: Path) -> float:
    side = bids.sidecar(path)
    if not side.is_file():
        raise InputError(
            f"{path}: no JSON sidecar {side.name} with EchoTime; add it or pass --te in ms"
        )
    meta = read_json_object(side, what="sidecar")
    if "EchoTime" not in meta:
        raise InputError(f"{side}: no EchoTime field; add it (in seconds, BIDS) or pass --te in ms")
    te_s = json_number(meta["EchoTime"], path=side, key="EchoTime", unit="seconds", positive=True)
    if te_s >= 1.0:
        raise InputError(
            f"{side}: EchoTime {te_s:g} looks like milliseconds; BIDS sidecars store seconds "
            f"(write {te_s / 1000:g})"
        )
    return 1000.0 * te_s


def _check_te_against_sidecars(paths: list[Path], te_ms) -> None:
    """``--te`` given with sidecars that state other echo times is an error, not a choice."""
    if not all(bids.sidecar(p).is_file() for p in paths):
        return
    try:
        stated = [_sidecar_te_ms(p) for p in paths]
    except InputError:
        return  # unusable sidecars: --te is what there is
    given = np.asarray(te_ms, dtype=float)
    if given.shape == (len(stated),) and np.allclose(given, stated, rtol=0.01):
        return
    raise InputError(
        f"{paths[0].parent}: --te {list(given)} ms disagrees with the sidecars' EchoTime "
        f"({[round(t, 3) for t in stated]} ms); drop --te to use the sidecars, or fix them"
    )


def load_echo_files(paths, te_ms=None, *, stem: str | None = None) -> MultiEcho:
    """One 3D NIfTI per echo; echo times from ``te_ms`` or the JSON sidecars (seconds)."""
    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise InputError(
            f"{paths[0] if paths else 'input'}: a single echo file; T2 needs at least two "
            "echoes (pass every echo, or one 4D file with --te)"
        )
    images = []
    for p in paths:
        data, affine = read_nifti(p)
        if data.ndim == 4 and data.shape[3] == 1:
            data = data[..., 0]
        if data.ndim != 3:
            raise InputError(f"{p}: per-echo files must be 3D; got shape {data.shape}")
        images.append((p, data, affine))
    p0, d0, a0 = images[0]
    for p, d, a in images[1:]:
        if d.shape != d0.shape:
            raise InputError(f"{p}: shape {d.shape} differs from {p0.name} {d0.shape}")
        if not np.allclose(a, a0, atol=1e-4):
            raise InputError(f"{p}: affine differs from {p0.name}; echoes must share one grid")
    if te_ms is None:
        te_ms = [_sidecar_te_ms(p) for p in paths]
    else:
        _check_te_against_sidecars(paths, te_ms)
    te = _checked_te(te_ms, len(paths), ", ".join(p.name for p in paths))
    data = np.stack([d for _, d, _ in images], axis=-1)
    return MultiEcho(data, te, a0, tuple(str(p) for p in paths), stem or _stem(paths[0]))


def find_bids_echoes(folder: str | os.PathLike) -> dict[str, list[Path]]:
    """``*_echo-<n>_MESE.nii[.gz]`` files under ``folder`` grouped by their stem, echo-sorted."""
    return bids.find_echo_groups(folder)


def load_bids_echoes(paths, *, stem: str | None = None) -> MultiEcho:
    """The echo files of one BIDS MESE series (``echo-1..n``), echo times from their sidecars.

    Raises
    ------
    InputError
        When the echo entities are not 1..n (an echo is missing or doubled).
    """
    paths = sorted((Path(p) for p in paths), key=lambda p: bids.echo_number(p) or 0)
    numbers = [bids.echo_number(p) for p in paths]
    if numbers != list(range(1, len(paths) + 1)):
        where = paths[0].parent if paths else "input"
        raise InputError(
            f"{where}: echo entities {numbers} are not 1..{len(paths)}; an echo is missing"
        )
    return load_echo_files(paths, stem=stem or bids.stem_of(paths[0].name))


def load_bids_session(folder: str | os.PathLike) -> MultiEcho:
    """The MESE echoes of one BIDS session folder (``sub-X[/ses-Y]``), times from sidecars."""
    groups = find_bids_echoes(folder)
    if not groups:
        raise InputError(f"{folder}: no *_echo-<n>_MESE.nii[.gz] files found")
    if len(groups) > 1:
        raise InputError(
            f"{folder}: several MESE series ({', '.join(sorted(groups))}); point at one "
            "session folder or pass the echo files of one series"
        )
    stem, paths = next(iter(groups.items()))
    return load_bids_echoes(paths, stem=stem)


def load_input(inputs, te_ms=None) -> MultiEcho:
    """Dispatch on the inputs: a folder (BIDS session or DICOM series), one 4D file, or
    several per-echo files."""
    paths = [Path(p) for p in inputs]
    for p in paths:
        if not p.exists():
            raise MissingInputError(f"{p}: no such file or folder")
    if len(paths) == 1 and paths[0].is_dir():
        folder = paths[0]
        if find_bids_echoes(folder):
            if te_ms is not None:
                raise InputError(f"{folder}: BIDS echo times come from the sidecars; drop --te")
            return load_bids_session(folder)
        from t2quant.io.dicom import load_dicom_echoes

        dcm = load_dicom_echoes(folder)
        return MultiEcho(dcm.data, dcm.te_ms, dcm.affine, dcm.files, folder.name)
    if len(paths) == 1:
        return load_4d(paths[0], te_ms)
    return load_echo_files(paths, te_ms)


def _stem(path: Path) -> str:
    return bids.stem_of(path.name)
