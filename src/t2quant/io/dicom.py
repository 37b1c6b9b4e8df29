"""Read a multi-echo spin-echo (MESE) DICOM series into a 4D array with echo times.

:func:`load_dicom_echoes` takes a folder that holds one classic (one file per slice per
echo) MR series and returns :class:`DicomEchoes`: the echoes stacked into shape
(X, Y, Z, n_echoes), the echo times in ms and a NIfTI-style RAS+ voxel-to-world affine.

Two backends do the conversion:

``dcm2niix``
    The ``dcm2niix`` program (the PyPI package of that name ships it) converts the files
    into a temporary folder; each echo becomes a NIfTI (``_e1``, ``_e2``, ...) with a JSON
    sidecar whose ``EchoTime`` is in seconds.
``pydicom``
    A pure-Python reader: slices are sorted by position along the slice normal, the
    affine comes from ``ImageOrientationPatient``, ``ImagePositionPatient`` and
    ``PixelSpacing``, and ``RescaleSlope``/``RescaleIntercept`` are applied.

``backend="auto"`` (the default) uses dcm2niix and falls back to pydicom, with a
:class:`UserWarning`, when the program is missing or its output cannot be used.  Either way
the headers are read with pydicom first, so that a folder with several series, a single
echo, a missing ``EchoTime`` and the like fail with a message that names the file or
folder.

Voxel order is the same for both backends: axis 0 runs along a DICOM image row (increasing
column index, ``ImageOrientationPatient[:3]``), axis 1 down the image columns (increasing
row index), and axis 2 through the slices in order of increasing position along the normal
``row cosine x column cosine``.  For a usual sagittal lumbar series (orientation
``0\\1\\0\\0\\0\\-1``) that is posterior, inferior, right (PIR), the orientation t2quant
uses elsewhere.  dcm2niix itself flips the row axis; its output is reordered to match.
The affine therefore always has a positive determinant.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from t2quant.errors import InputError, MissingInputError

__all__ = ["DicomEchoes", "find_dcm2niix", "load_dicom_echoes"]

Backend = Literal["auto", "dcm2niix", "pydicom"]

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_TE_DECIMALS = 6  # echo times equal to 1e-6 ms are the same echo time
_ORIENTATION_TOL = 1e-4  # direction cosines
_POSITION_TOL_MM = 0.01
_SPACING_REL_TOL = 0.01  # slice gaps may vary by 1 % before the stack counts as irregular
_DCM2NIIX_TIMEOUT_S = 600


@dataclass(frozen=True, eq=False)
class DicomEchoes:
    """A multi-echo series read from DICOM.

    Attributes
    ----------
    data
        float32 array of shape (X, Y, Z, n_echoes): rescaled image values (stored value
        times ``RescaleSlope`` plus ``RescaleIntercept``), echoes in order of ``te_ms``.
    te_ms
        float64 array of shape (n_echoes,): echo times in milliseconds, strictly increasing.
    affine
        float64 array of shape (4, 4): voxel-to-world affine, RAS+ millimetres (the NIfTI
        and nibabel convention); ``affine @ [i, j, k, 1]`` is the centre of voxel (i, j, k).
    series_description
        ``SeriesDescription`` (or ``ProtocolName`` when that is missing; may be empty).
    files
        The DICOM files used, echo by echo and, within an echo, slice by slice.
    """

    data: np.ndarray
    te_ms: np.ndarray
    affine: np.ndarray
    series_description: str
    files: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(X, Y, Z, n_echoes)."""
        return tuple(int(n) for n in self.data.shape)  # type: ignore[return-value]

    def to_nifti(self) -> nib.Nifti1Image:
        """The echoes as one 4D NIfTI image (float32, the affine as qform and sform)."""
        img = nib.Nifti1Image(self.data, self.affine)
        img.set_qform(self.affine, code=1)
        img.set_sform(self.affine, code=1)
        img.header.set_xyzt_units("mm", "sec")
        return img


@dataclass(frozen=True)
class _Header:
    """What the loader needs from one DICOM file (read without its pixels)."""

    path: Path
    series_uid: str
    series_number: str
    series_description: str
    te_ms: float | None
    echo_number: int | None
    rows: int
    columns: int
    n_frames: int
    orientation: np.ndarray | None  # (6,) LPS direction cosines
    position: np.ndarray | None  # (3,) LPS mm
    pixel_spacing: np.ndarray | None  # (2,) row spacing, column spacing (mm)
    slice_spacing: float | None  # SpacingBetweenSlices, else SliceThickness (mm)


@dataclass(frozen=True)
class _Image:
    """A header that passed the checks: every field the geometry needs is present."""

    path: Path
    te_ms: float
    echo_number: int | None
    rows: int
    columns: int
    orientation: np.ndarray  # (6,) LPS direction cosines: along a row, then down a column
    position: np.ndarray  # (3,) LPS mm, centre of the first transmitted pixel
    pixel_spacing: np.ndarray  # (2,) row spacing, column spacing (mm)
    slice_spacing: float | None

    @property
    def normal(self) -> np.ndarray:
        """Unit slice normal (LPS): row cosine x column cosine."""
        return np.cross(self.orientation[:3], self.orientation[3:])


@dataclass(frozen=True)
class _Series:
    """A validated series: files per echo in slice order, echo times and native affine."""

    folder: Path
    echoes: tuple[tuple[_Image, ...], ...]
    te_ms: np.ndarray
    affine: np.ndarray
    description: str

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(str(h.path) for echo in self.echoes for h in echo)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        first = self.echoes[0][0]
        return (first.columns, first.rows, len(self.echoes[0]), len(self.echoes))


def load_dicom_echoes(folder: str | os.PathLike, *, backend: Backend = "auto") -> DicomEchoes:
    """Load a multi-echo spin-echo DICOM series from a folder that holds just that series.

    Parameters
    ----------
    folder
        Folder with the DICOM files of one series (subfolders are searched too; files that
        are not DICOM images, such as ``DICOMDIR`` or notes, are ignored).
    backend
        ``"auto"`` (dcm2niix, falling back to pydicom with a warning), ``"dcm2niix"`` (no
        fallback) or ``"pydicom"``.

    Returns
    -------
    DicomEchoes
        ``data`` float32 (X, Y, Z, n_echoes); ``te_ms`` float64 (n_echoes,) in ms, strictly
        increasing; ``affine`` float64 (4, 4) RAS+ mm; ``series_description``; ``files``.
        Axis 0 runs along an image row, axis 1 down the image columns, axis 2 through the
        slices along ``row cosine x column cosine`` (see the module docstring).

    Raises
    ------
    FileNotFoundError
        If ``folder`` does not exist or holds no DICOM image, or if ``backend="dcm2niix"``
        and the program cannot be found.
    ValueError
        If the folder holds more than one series, a single echo, a file without
        ``EchoTime``, echoes with different numbers of slices or matrix sizes, repeated echo
        times or duplicated slices, mixed orientations, irregular slice gaps or multi-frame
        files.
    RuntimeError
        If ``backend="dcm2niix"`` and dcm2niix fails or writes output that does not match
        the headers (``"auto"`` falls back to pydicom instead).
    """
    if backend not in ("auto", "dcm2niix", "pydicom"):
        raise InputError(f"backend must be 'auto', 'dcm2niix' or 'pydicom', got {backend!r}")
    series = _read_series(Path(folder))
    if backend == "pydicom":
        return _load_pydicom(series)
    try:
        return _load_dcm2niix(series)
    except (FileNotFoundError, _Dcm2niixError) as exc:
        if backend == "dcm2niix":
            raise
        warnings.warn(
            f"{exc}; reading {series.folder} with the pydicom reader instead",
            UserWarning,
            stacklevel=2,
        )
        return _load_pydicom(series)


# --------------------------------------------------------------------------- headers


def _read_series(folder: Path) -> _Series:
    """Read every header under ``folder`` and check it is one usable multi-echo series."""
    if not folder.exists():
        raise MissingInputError(
            f"DICOM folder {folder} does not exist: check the path (it should be the folder "
            "that holds the files of one multi-echo series)"
        )
    if not folder.is_dir():
        raise InputError(
            f"{folder} is a file, not a folder: pass the folder that holds the DICOM files of "
            "one multi-echo series"
        )
    headers = [h for p in _candidate_files(folder) if (h := _read_header(p)) is not None]
    if not headers:
        raise MissingInputError(
            f"no DICOM image files found in {folder} (or its subfolders): point at the folder "
            "that holds the exported DICOM files of the multi-echo series"
        )
    _check_single_series(folder, headers)
    multi = [h for h in headers if h.n_frames > 1]
    if multi:
        raise InputError(
            f"{multi[0].path} is a multi-frame (enhanced) DICOM file with {multi[0].n_frames} "
            "frames; load_dicom_echoes reads classic one-image-per-file series: export the "
            "series as classic DICOM from the scanner or PACS, or convert it with dcm2niix"
        )
    images = []
    for h in headers:
        if h.te_ms is None:
            raise InputError(
                f"{h.path} has no EchoTime (0018,0081) in its header; every image of a "
                "multi-echo series needs its echo time: re-export the series with full headers "
                "(not anonymised or stripped) or remove the file from the folder"
            )
        for name, value in (
            ("ImageOrientationPatient (0020,0037)", h.orientation),
            ("ImagePositionPatient (0020,0032)", h.position),
            ("PixelSpacing (0028,0030)", h.pixel_spacing),
        ):
            if value is None:
                raise InputError(
                    f"{h.path} has no valid {name}; without it the image cannot be placed in "
                    "the scanner's space: re-export the series with full headers"
                )
        assert h.orientation is not None and h.position is not None
        assert h.pixel_spacing is not None
        images.append(
            _Image(
                path=h.path,
                te_ms=h.te_ms,
                echo_number=h.echo_number,
                rows=h.rows,
                columns=h.columns,
                orientation=h.orientation,
                position=h.position,
                pixel_spacing=h.pixel_spacing,
                slice_spacing=h.slice_spacing,
            )
        )
    echoes, te = _group_echoes(folder, images)
    if len(echoes) < 2:
        raise InputError(
            f"{folder} holds a single echo (TE {te[0]:g} ms, {len(echoes[0])} images) of series "
            f"{_describe(headers[0])}; T2 mapping needs a multi-echo spin-echo series with two "
            "or more echo times: point at the multi-echo (T2 map / MESE) series folder"
        )
    _check_same_grid(folder, echoes, te)
    affine = _native_affine(folder, echoes[0])
    first = headers[0]
    return _Series(
        folder=folder,
        echoes=tuple(tuple(e) for e in echoes),
        te_ms=np.asarray(te, dtype=np.float64),
        affine=affine,
        description=first.series_description,
    )


def _candidate_files(folder: Path) -> list[Path]:
    """Regular files under ``folder``, hidden files and folders excluded, in sorted order."""
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files.extend(Path(root) / n for n in sorted(names) if not n.startswith("."))
    return [p for p in files if p.is_file()]


def _read_header(path: Path) -> _Header | None:
    """The header of an image DICOM file, or ``None`` if ``path`` is not one."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        try:  # DICOM without the 128-byte preamble, as some old exports write
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        except Exception:
            return None
    except Exception:
        return None
    try:
        if "Rows" not in ds or "Columns" not in ds or "SOPClassUID" not in ds:
            return None  # DICOMDIR, reports, presentation states, or not DICOM at all
        return _Header(
            path=path,
            series_uid=str(ds.get("SeriesInstanceUID", "")),
            series_number=str(ds.get("SeriesNumber", "")),
            series_description=str(ds.get("SeriesDescription", "") or ds.get("ProtocolName", "")),
            te_ms=_float_or_none(ds.get("EchoTime")),
            echo_number=_int_or_none(ds.get("EchoNumbers")),
            rows=int(ds.Rows),
            columns=int(ds.Columns),
            n_frames=_int_or_none(ds.get("NumberOfFrames")) or 1,
            orientation=_vector_or_none(ds.get("ImageOrientationPatient"), 6),
            position=_vector_or_none(ds.get("ImagePositionPatient"), 3),
            pixel_spacing=_vector_or_none(ds.get("PixelSpacing"), 2),
            slice_spacing=_float_or_none(ds.get("SpacingBetweenSlices"))
            or _float_or_none(ds.get("SliceThickness")),
        )
    except Exception:
        return None  # a file so broken that its basic tags do not parse is not an image


def _float_or_none(value: object) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        if len(value) == 0:
            return None
        value = value[0]
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) else None


def _int_or_none(value: object) -> int | None:
    out = _float_or_none(value)
    return None if out is None else round(out)


def _vector_or_none(value: object, n: int) -> np.ndarray | None:
    if value is None or value == "":
        return None
    try:
        out = np.asarray([float(v) for v in value], dtype=np.float64)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    if out.shape != (n,) or not np.all(np.isfinite(out)):
        return None
    return out


def _describe(h: _Header) -> str:
    desc = h.series_description or "(no SeriesDescription)"
    number = f"SeriesNumber {h.series_number}, " if h.series_number else ""
    return f"{desc!r} ({number}SeriesInstanceUID {h.series_uid or '(missing)'})"


def _check_single_series(folder: Path, headers: list[_Header]) -> None:
    by_uid: dict[str, list[_Header]] = {}
    for h in headers:
        by_uid.setdefault(h.series_uid, []).append(h)
    if len(by_uid) == 1:
        return
    lines = [
        f"  - {_describe(hs[0])}: {len(hs)} files, e.g. {hs[0].path.name}" for hs in by_uid.values()
    ]
    raise InputError(
        f"{folder} holds {len(by_uid)} DICOM series:\n"
        + "\n".join(lines)
        + "\nload_dicom_echoes reads one series: point it at a folder that holds only the "
        "multi-echo series (move each series into a folder of its own, e.g. by "
        "SeriesInstanceUID)"
    )


def _group_echoes(folder: Path, images: list[_Image]) -> tuple[list[list[_Image]], list[float]]:
    """Files grouped by echo time (ascending), each echo sorted along the slice normal."""
    by_te: dict[float, list[_Image]] = {}
    for h in images:
        by_te.setdefault(round(h.te_ms, _TE_DECIMALS), []).append(h)
    te = sorted(by_te)
    normal = images[0].normal
    echoes = []
    for t in te:
        group = by_te[t]
        numbers = sorted({h.echo_number for h in group if h.echo_number is not None})
        if len(numbers) > 1:
            examples = ", ".join(
                next(h.path.name for h in group if h.echo_number == n) for n in numbers
            )
            raise InputError(
                f"{folder}: echoes {numbers} (EchoNumbers) all have EchoTime {t:g} ms "
                f"(e.g. files {examples}); a T2 fit needs a distinct echo time for every "
                "echo: check that the folder holds one multi-echo series and that its "
                "headers are intact"
            )
        group.sort(key=lambda h: float(h.position @ normal))
        depth = np.array([float(h.position @ normal) for h in group])
        dup = np.flatnonzero(np.diff(depth) < _POSITION_TOL_MM)
        if dup.size:
            a, b = group[dup[0]], group[dup[0] + 1]
            raise InputError(
                f"{folder}: {a.path.name} and {b.path.name} are both TE {t:g} ms images at "
                f"the same slice position ({depth[dup[0]]:.2f} mm along the slice normal): "
                "repeated echo time or duplicated files; remove the duplicates or point at a "
                "folder with one copy of the series"
            )
        echoes.append(group)
    return echoes, te


def _check_same_grid(folder: Path, echoes: list[list[_Image]], te: list[float]) -> None:
    """All echoes: same slice count, matrix, spacing, orientation and slice positions."""
    ref, ref_te = echoes[0], te[0]
    first = ref[0]
    for echo, t in zip(echoes, te, strict=True):
        if len(echo) != len(ref):
            raise InputError(
                f"{folder}: echo TE {t:g} ms has {len(echo)} slices but TE {ref_te:g} ms has "
                f"{len(ref)}; every echo must cover the same slices: check for missing or "
                "extra files (an incomplete export or transfer)"
            )
        for h in echo:
            if (h.rows, h.columns) != (first.rows, first.columns):
                raise InputError(
                    f"{folder}: {h.path.name} (TE {t:g} ms) is a {h.rows}x{h.columns} "
                    f"(rows x columns) image but {first.path.name} (TE {ref_te:g} ms) is "
                    f"{first.rows}x{first.columns}; every echo must have the same matrix size: "
                    "the folder mixes acquisitions, point at one series"
                )
            if np.max(np.abs(h.orientation - first.orientation)) > _ORIENTATION_TOL:
                raise InputError(
                    f"{folder}: {h.path.name} has ImageOrientationPatient "
                    f"{np.round(h.orientation, 4).tolist()} but {first.path.name} has "
                    f"{np.round(first.orientation, 4).tolist()}; every image must share one "
                    "orientation (a localizer or a reformat is mixed in?)"
                )
            if np.max(np.abs(h.pixel_spacing - first.pixel_spacing)) > 1e-4:
                raise InputError(
                    f"{folder}: {h.path.name} has PixelSpacing {h.pixel_spacing.tolist()} but "
                    f"{first.path.name} has {first.pixel_spacing.tolist()}; every image must "
                    "share one pixel spacing"
                )
        for a, b in zip(echo, ref, strict=True):
            if np.max(np.abs(a.position - b.position)) > _POSITION_TOL_MM:
                raise InputError(
                    f"{folder}: slice {a.path.name} (TE {t:g} ms) is at "
                    f"{np.round(a.position, 3).tolist()} mm but the matching slice "
                    f"{b.path.name} (TE {ref_te:g} ms) is at {np.round(b.position, 3).tolist()} "
                    "mm; every echo must cover the same slice positions"
                )


def _native_affine(folder: Path, slices: list[_Image]) -> np.ndarray:
    """RAS+ affine of one echo's slices (sorted along the normal), from their headers."""
    first = slices[0]
    row_cos, col_cos = first.orientation[:3], first.orientation[3:]
    row_spacing, col_spacing = first.pixel_spacing
    positions = np.array([h.position for h in slices])
    n = len(slices)
    if n > 1:
        step = (positions[-1] - positions[0]) / (n - 1)
        expected = positions[0] + np.arange(n)[:, None] * step
        gaps = np.linalg.norm(np.diff(positions, axis=0), axis=1)
        off = np.linalg.norm(positions - expected, axis=1)
        tol = max(_POSITION_TOL_MM, _SPACING_REL_TOL * float(np.linalg.norm(step)))
        if np.max(off) > tol:
            raise InputError(
                f"{folder}: slices are not evenly spaced along a line (gaps "
                f"{np.round(gaps, 3).tolist()} mm); a single affine cannot describe this "
                "stack: check for missing slices or a series made of several stacks"
            )
    else:
        step = first.normal * (first.slice_spacing or 1.0)
    lps = np.eye(4)
    lps[:3, 0] = row_cos * col_spacing
    lps[:3, 1] = col_cos * row_spacing
    lps[:3, 2] = step
    lps[:3, 3] = positions[0]
    return _LPS_TO_RAS @ lps


# --------------------------------------------------------------------------- pydicom


def _load_pydicom(series: _Series) -> DicomEchoes:
    """Read the pixels with pydicom into the native voxel order."""
    data = np.empty(series.shape, dtype=np.float32)
    for e, echo in enumerate(series.echoes):
        for k, h in enumerate(echo):
            try:
                ds = pydicom.dcmread(h.path)
                pixels = ds.pixel_array
            except Exception as exc:
                raise InputError(
                    f"cannot decode the pixel data of {h.path}: {exc}; compressed DICOM may "
                    "need dcm2niix (backend='dcm2niix') or pydicom's optional decoders"
                ) from exc
            if pixels.shape != (h.rows, h.columns):
                raise InputError(
                    f"{h.path}: pixel data has shape {pixels.shape}, expected "
                    f"({h.rows}, {h.columns}) (a colour or multi-frame image?)"
                )
            slope = _float_or_none(ds.get("RescaleSlope"))
            intercept = _float_or_none(ds.get("RescaleIntercept"))
            values = pixels.astype(np.float64) * (1.0 if slope is None else slope)
            values += 0.0 if intercept is None else intercept
            data[:, :, k, e] = values.T
    return DicomEchoes(
        data=data,
        te_ms=series.te_ms.copy(),
        affine=series.affine.copy(),
        series_description=series.description,
        files=series.files,
    )


# --------------------------------------------------------------------------- dcm2niix


class _Dcm2niixError(RuntimeError):
    """dcm2niix ran but its output could not be used."""


def find_dcm2niix() -> str | None:
    """Path of the dcm2niix program: the PyPI package's copy, else one on ``PATH``.

    Returns
    -------
    The executable's path, or ``None`` if there is none.
    """
    try:
        import dcm2niix  # the PyPI package; importing it only defines a path
    except ImportError:
        pass
    else:
        path = Path(getattr(dcm2niix, "bin", ""))
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return shutil.which("dcm2niix")


def _load_dcm2niix(series: _Series) -> DicomEchoes:
    """Convert with dcm2niix, check its output against the headers, reorder to native."""
    exe = find_dcm2niix()
    if exe is None:
        raise MissingInputError(
            "dcm2niix not found (install the 'dcm2niix' package from PyPI, or put the program "
            "on PATH)"
        )
    with tempfile.TemporaryDirectory(prefix="t2quant-dcm2niix-") as tmp:
        src, out = Path(tmp) / "in", Path(tmp) / "out"
        src.mkdir()
        out.mkdir()
        for i, name in enumerate(series.files):  # exactly the files that were checked
            link = src / f"{i:06d}.dcm"
            try:
                link.symlink_to(Path(name).resolve())
            except OSError:
                shutil.copyfile(name, link)
        cmd = [exe, "-b", "y", "-ba", "y", "-z", "n", "-m", "n", "-f", "%s_%e", "-o", str(out)]
        try:
            run = subprocess.run(
                [*cmd, str(src)],
                capture_output=True,
                text=True,
                timeout=_DCM2NIIX_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise _Dcm2niixError(f"dcm2niix ({exe}) could not run: {exc}") from exc
        if run.returncode != 0:
            tail = " | ".join((run.stdout + run.stderr).strip().splitlines()[-3:])
            raise _Dcm2niixError(f"dcm2niix exited with code {run.returncode}: {tail}")
        images = _read_dcm2niix_output(out, series)
    ordered = [images[t] for t in sorted(images)]
    data = np.stack([np.asarray(img.dataobj, dtype=np.float32) for img in ordered], axis=-1)
    return DicomEchoes(
        data=np.ascontiguousarray(data),
        te_ms=series.te_ms.copy(),
        affine=np.asarray(ordered[0].affine, dtype=np.float64),
        series_description=series.description,
        files=series.files,
    )


def _read_dcm2niix_output(out: Path, series: _Series) -> dict[float, nib.Nifti1Image]:
    """dcm2niix's NIfTIs keyed by echo time (ms), each reordered to the native voxel order."""
    niftis = sorted(out.glob("*.nii"))
    if len(niftis) != len(series.echoes):
        raise _Dcm2niixError(
            f"dcm2niix wrote {len(niftis)} NIfTI files for {len(series.echoes)} echoes "
            f"({', '.join(p.name for p in niftis) or 'none'})"
        )
    images: dict[float, nib.Nifti1Image] = {}
    for path in niftis:
        sidecar = path.with_suffix(".json")
        try:
            meta = json.loads(sidecar.read_text())
            te_ms = round(float(meta["EchoTime"]) * 1000.0, 3)  # the sidecar has seconds
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise _Dcm2niixError(f"no usable EchoTime in dcm2niix sidecar {sidecar.name}") from exc
        img = nib.load(path)
        if img.ndim == 4 and img.shape[3] == 1:
            img = img.slicer[..., 0]
        if img.ndim != 3:
            raise _Dcm2niixError(f"dcm2niix wrote {path.name} with shape {img.shape}, not 3D")
        img = _to_native(img, series.affine, path.name)
        if img.shape != series.shape[:3]:
            raise _Dcm2niixError(
                f"dcm2niix wrote {path.name} with shape {img.shape} (in DICOM voxel order), "
                f"expected {series.shape[:3]}"
            )
        images[te_ms] = img
    expected = np.round(series.te_ms, 3)
    found = np.array(sorted(images))
    if found.shape != expected.shape or not np.allclose(found, expected, atol=1e-3):
        raise _Dcm2niixError(
            f"dcm2niix echo times {found.tolist()} ms do not match the headers' "
            f"{expected.tolist()} ms"
        )
    return images


def _to_native(img: nib.Nifti1Image, native: np.ndarray, name: str) -> nib.Nifti1Image:
    """Flip/permute ``img``'s axes so that its grid matches the ``native`` affine."""
    # voxel -> voxel map between the two grids; a signed permutation if they are the same grid
    mapping = np.linalg.solve(img.affine[:3, :3], native[:3, :3])
    signs = np.rint(mapping)
    perm = np.abs(signs)
    is_perm = np.all(perm.sum(axis=0) == 1) and np.all(perm.sum(axis=1) == 1)
    if np.max(np.abs(mapping - signs)) > 1e-3 or not is_perm:
        raise _Dcm2niixError(f"dcm2niix's grid in {name} is not a flip/permutation of the DICOM's")
    ornt = np.zeros((3, 2))
    for i in range(3):
        j = int(np.flatnonzero(signs[i])[0])  # dcm2niix axis i becomes native axis j
        ornt[i] = (j, signs[i, j])
    out = img.as_reoriented(ornt)
    if not np.allclose(out.affine, native, atol=_POSITION_TOL_MM * 5):
        raise _Dcm2niixError(
            f"dcm2niix's affine in {name} does not match the DICOM geometry:\n"
            f"{np.round(out.affine, 3)}\nvs\n{np.round(native, 3)}"
        )
    return out
