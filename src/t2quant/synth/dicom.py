"""Write a synthetic multi-echo spin-echo (MESE) series as classic DICOM MR images.

One file per slice per echo, the way most scanners export a 2D MESE (T2-mapping) series,
so that :func:`t2quant.io.dicom.load_dicom_echoes` and ``dcm2niix`` can be tested on files
whose geometry and echo times are known exactly.

Geometry: the array axes map onto DICOM as follows.  Array axis 0 runs along a DICOM row
(increasing column index, direction cosine ``ImageOrientationPatient[:3]``), array axis 1
runs down the columns (increasing row index, ``ImageOrientationPatient[3:]``), and array
axis 2 is the slice index.  The affine is NIfTI-style RAS+ (x toward the subject's right,
y anterior, z superior); DICOM patient coordinates are LPS+, so x and y change sign.

Readers (this package's and ``dcm2niix``) order slices by position along the slice normal
``row cosine x column cosine``.  A volume written with an affine whose determinant is
negative (slice axis against that normal) therefore reads back with its slice axis
reversed: the same voxels in the same places in the world, indexed the other way.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from t2quant.errors import InputError

__all__ = ["MR_IMAGE_STORAGE", "ras_to_lps", "write_mese_dicom"]

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
"""SOP Class UID of (classic) MR Image Storage."""

_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])
_UINT16_MAX = 65535
_SYNTH_DATE = "20260101"  # fixed so that the same inputs give the same files
_SYNTH_TIME = "120000"


def ras_to_lps(xyz: np.ndarray) -> np.ndarray:
    """Convert points or directions from RAS+ (NIfTI) to LPS+ (DICOM) coordinates.

    Parameters
    ----------
    xyz
        Array of shape (..., 3) in mm (points) or unitless (directions).

    Returns
    -------
    Array of the same shape with x and y negated (the conversion is its own inverse).
    """
    return np.asarray(xyz, dtype=float) @ _RAS_TO_LPS


def _ds(value: float) -> str:
    """A decimal string (DICOM VR DS, at most 16 characters) with 10 significant digits."""
    value = float(value)
    if abs(value) < 1e-10:
        value = 0.0
    text = f"{value:.10g}"
    if len(text) > 16:  # cannot happen for .10g, kept as a guard against future edits
        text = f"{value:.6g}"
    return text


def _geometry(
    affine: np.ndarray, n_slices: int
) -> tuple[list[str], list[str], list[list[str]], float, np.ndarray]:
    """DICOM geometry of a RAS+ affine.

    Returns
    -------
    ImageOrientationPatient (6 DS), PixelSpacing (row spacing, column spacing as DS),
    ImagePositionPatient of every slice (n_slices x 3 DS), slice spacing along the normal
    (mm) and the unit slice normal (LPS, shape (3,)).
    """
    affine = np.asarray(affine, dtype=float)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise InputError(f"affine must be a finite 4x4 array, got shape {affine.shape}")
    lin = affine[:3, :3]
    if abs(np.linalg.det(lin)) < 1e-9:
        raise InputError("affine is singular: its three voxel axes must span 3D space")
    sizes = np.linalg.norm(lin, axis=0)
    row_cos = ras_to_lps(lin[:, 0] / sizes[0])  # direction of increasing column index
    col_cos = ras_to_lps(lin[:, 1] / sizes[1])  # direction of increasing row index
    if abs(float(row_cos @ col_cos)) > 1e-6:
        raise InputError(
            "affine voxel axes 0 and 1 are not perpendicular; DICOM images need an "
            "orthogonal in-plane grid (ImageOrientationPatient)"
        )
    normal = np.cross(row_cos, col_cos)
    slice_step = ras_to_lps(lin[:, 2])
    spacing = abs(float(slice_step @ normal))
    origin = ras_to_lps(affine[:3, 3])
    positions = origin + np.arange(n_slices)[:, None] * slice_step[None, :]
    iop = [_ds(v) for v in (*row_cos, *col_cos)]
    pixel_spacing = [_ds(sizes[1]), _ds(sizes[0])]
    ipp = [[_ds(v) for v in p] for p in positions]
    return iop, pixel_spacing, ipp, spacing, normal


def _stored_values(echoes: np.ndarray, rescale: tuple[float, float] | None) -> np.ndarray:
    """Stored uint16 values such that ``stored * slope + intercept`` approximates ``echoes``."""
    slope, intercept = (1.0, 0.0) if rescale is None else (float(rescale[0]), float(rescale[1]))
    if not np.isfinite(slope) or slope == 0 or not np.isfinite(intercept):
        raise InputError(f"rescale must be a finite (slope, intercept) with slope != 0: {rescale}")
    stored = np.rint((echoes - intercept) / slope)
    lo, hi = float(stored.min()), float(stored.max())
    if lo < 0 or hi > _UINT16_MAX:
        raise InputError(
            f"echo values map to stored values {lo:g}..{hi:g}, outside uint16 0..{_UINT16_MAX}; "
            "pass rescale=(slope, intercept) so that (value - intercept) / slope fits"
        )
    return stored.astype(np.uint16)


def write_mese_dicom(
    echoes: np.ndarray,
    te_ms: Sequence[float],
    affine: np.ndarray,
    folder: str | os.PathLike,
    *,
    series_description: str = "MESE",
    patient_id: str = "SYNTH",
    series_number: int = 1,
    rescale: tuple[float, float] | None = None,
    repetition_time_ms: float = 2000.0,
    study_instance_uid: str | None = None,
) -> list[Path]:
    """Write a multi-echo spin-echo series as classic MR DICOM, one file per slice per echo.

    Parameters
    ----------
    echoes
        Magnitude images, shape (X, Y, Z, n_echoes): X along a DICOM row (the image
        ``Columns``), Y down a column (the image ``Rows``), Z slices.
    te_ms
        Echo time of each echo in milliseconds, length n_echoes (written as ``EchoTime``).
        Not checked for order or repeats, so that broken series can be written for tests.
    affine
        (4, 4) voxel-to-world affine, RAS+ mm (the NIfTI convention).  Axes 0 and 1 must be
        perpendicular; the slice axis may be oblique to the image plane.
    folder
        Output folder, created if missing.  Files are named
        ``MR_S{series:03d}_E{echo:02d}_Z{slice:03d}.dcm``; existing files of that name are
        overwritten.
    series_description, patient_id, series_number
        Written as ``SeriesDescription`` (and ``ProtocolName``), ``PatientID`` (and
        ``PatientName``) and ``SeriesNumber``.
    rescale
        ``(slope, intercept)``: store ``round((value - intercept) / slope)`` as uint16 and
        write ``RescaleSlope``/``RescaleIntercept``.  ``None`` stores ``round(value)`` and
        writes no rescale tags.  Stored values must fit in 0..65535.
    repetition_time_ms
        ``RepetitionTime`` in milliseconds.
    study_instance_uid
        Put the series into this study; by default a UID derived from ``patient_id``.

    Returns
    -------
    The written file paths, echo by echo and slice by slice within each echo.

    Raises
    ------
    ValueError
        If the shapes disagree, the affine cannot be written as DICOM geometry, an echo
        time is not a positive finite number, or the values do not fit in uint16.

    Notes
    -----
    UIDs are derived from the inputs, so the same inputs give byte-identical files.
    """
    data = np.asarray(echoes, dtype=float)
    if data.ndim != 4 or min(data.shape) < 1:
        raise InputError(f"echoes must have shape (X, Y, Z, n_echoes), got {data.shape}")
    te = np.asarray(te_ms, dtype=float).reshape(-1)
    if te.shape != (data.shape[3],):
        raise InputError(f"te_ms has {te.size} values but echoes has {data.shape[3]} echoes")
    if not np.all(np.isfinite(te)) or np.any(te <= 0):
        raise InputError(f"te_ms must be positive finite milliseconds, got {te.tolist()}")
    if not np.all(np.isfinite(data)):
        raise InputError("echoes contains NaN or infinite values")
    nz, ne = data.shape[2], data.shape[3]
    affine = np.asarray(affine, dtype=float)
    iop, pixel_spacing, ipp, spacing, normal = _geometry(affine, nz)
    stored = _stored_values(data, rescale)

    digest = hashlib.sha256()
    for part in (stored, te, affine):
        digest.update(np.ascontiguousarray(part).tobytes())
    digest.update(f"{patient_id}|{series_description}|{series_number}|{rescale}".encode())
    entropy = digest.hexdigest()
    study_uid = study_instance_uid or generate_uid(entropy_srcs=["study", patient_id])
    series_uid = generate_uid(entropy_srcs=["series", entropy])
    frame_uid = generate_uid(entropy_srcs=["frame", entropy])

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for e in range(ne):
        for k in range(nz):
            instance = e * nz + k + 1
            sop_uid = generate_uid(entropy_srcs=["image", entropy, str(instance)])
            ds = _slice_dataset(
                pixels=stored[:, :, k, e].T,  # (Rows, Columns) = (Y, X)
                sop_uid=sop_uid,
                study_uid=study_uid,
                series_uid=series_uid,
                frame_uid=frame_uid,
                patient_id=patient_id,
                series_description=series_description,
                series_number=series_number,
                instance=instance,
                echo_number=e + 1,
                n_echoes=ne,
                te_ms=float(te[e]),
                tr_ms=float(repetition_time_ms),
                iop=iop,
                ipp=ipp[k],
                slice_location=float(np.asarray(ipp[k], dtype=float) @ normal),
                pixel_spacing=pixel_spacing,
                spacing=spacing,
                rescale=rescale,
            )
            path = out / f"MR_S{series_number:03d}_E{e + 1:02d}_Z{k + 1:03d}.dcm"
            pydicom.dcmwrite(path, ds, enforce_file_format=True)
            written.append(path)
    return written


def _slice_dataset(
    *,
    pixels: np.ndarray,
    sop_uid: str,
    study_uid: str,
    series_uid: str,
    frame_uid: str,
    patient_id: str,
    series_description: str,
    series_number: int,
    instance: int,
    echo_number: int,
    n_echoes: int,
    te_ms: float,
    tr_ms: float,
    iop: list[str],
    ipp: list[str],
    slice_location: float,
    pixel_spacing: list[str],
    spacing: float,
    rescale: tuple[float, float] | None,
) -> Dataset:
    """One classic MR Image Storage dataset (a single slice of a single echo)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    ds.SOPClassUID = MR_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = _SYNTH_DATE
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = _SYNTH_TIME
    ds.Modality = "MR"
    ds.Manufacturer = "t2quant synthetic"
    ds.InstitutionName = "t2quant"
    ds.StudyDescription = "t2quant synthetic MESE"
    ds.SeriesDescription = series_description
    ds.ProtocolName = series_description
    ds.PatientName = patient_id
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.ScanningSequence = "SE"
    ds.SequenceVariant = "NONE"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.SequenceName = "mese"
    ds.SliceThickness = _ds(spacing)
    ds.SpacingBetweenSlices = _ds(spacing)
    ds.RepetitionTime = _ds(tr_ms)
    ds.EchoTime = _ds(te_ms)
    ds.EchoNumbers = echo_number
    ds.EchoTrainLength = n_echoes
    ds.NumberOfAverages = "1"
    ds.MagneticFieldStrength = "3"
    ds.FlipAngle = "90"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = int(series_number)
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = int(instance)
    ds.ImagePositionPatient = ipp
    ds.ImageOrientationPatient = iop
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = _ds(slice_location)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = (int(n) for n in pixels.shape)
    ds.PixelSpacing = pixel_spacing
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    if rescale is not None:
        ds.RescaleIntercept = _ds(rescale[1])
        ds.RescaleSlope = _ds(rescale[0])
        ds.RescaleType = "US"
    ds.PixelData = np.ascontiguousarray(pixels, dtype="<u2").tobytes()
    return ds
