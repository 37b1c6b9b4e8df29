"""Write a :class:`~t2quant.relaxometry.T2Fit` as NIfTI maps with BIDS sidecars."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from t2quant import __version__
from t2quant.errors import InputError
from t2quant.grids import require_same_grid
from t2quant.io import bids, save_nifti, write_json
from t2quant.io.echoes import MultiEcho
from t2quant.relaxometry import FAILURE_DESCRIPTIONS, Failure, T2Fit

__all__ = ["ESTIMATION", "map_paths", "write_t2_maps"]

#: ``EstimationAlgorithm`` and ``EstimationReference`` per method.
ESTIMATION: dict[str, tuple[str, str]] = {
    "loglinear": (
        "weighted log-linear least squares (weights S^2, samples under the noise floor dropped)",
        "t2quant documentation: t2quant.relaxometry.loglinear",
    ),
    "monoexp": (
        "nonlinear least squares S0*exp(-TE/T2) by variable projection",
        "Golub GH, Pereyra V. SIAM J Numer Anal 1973;10:413-432",
    ),
    "monoexp_offset": (
        "nonlinear least squares S0*exp(-TE/T2)+C by variable projection",
        "Golub GH, Pereyra V. SIAM J Numer Anal 1973;10:413-432",
    ),
    "rician": (
        "noise-floor corrected mono-exponential: S^2 - 2 sigma^2 fitted by S0^2*exp(-2TE/T2)",
        "Miller AJ, Joseph PM. Magn Reson Imaging 1993;11:1051-1056",
    ),
    "epg": (
        "extended phase graph fit of T2, amplitude and refocusing B1 (stimulated echoes)",
        "Lebel RM, Wilman AH. Magn Reson Med 2010;64:1005-1014",
    ),
}

# output key -> (units, description); the file names come from t2quant.io.bids
_MAPS = {
    "t2_s": ("s", "T2 in seconds (BIDS)"),
    "t2_ms": ("ms", "T2 in milliseconds"),
    "s0": ("arbitrary", "signal extrapolated to TE = 0"),
    "b1": ("1", "refocusing angle as a fraction of 180 degrees"),
    "offset": ("arbitrary", "constant offset of the fit"),
    "r2": ("1", "coefficient of determination of the fit"),
    "rmse": ("arbitrary", "root-mean-square residual"),
    "t2_se_ms": ("ms", "standard error of T2 from the fit Jacobian"),
    "failure": ("code", "failure code per voxel (0 = fitted)"),
}


def map_paths(outdir: str | os.PathLike, stem: str, method: str) -> dict[str, Path]:
    """Where :func:`write_t2_maps` puts each map."""
    return {key: Path(outdir) / bids.map_name(stem, method, key) for key in _MAPS}


def write_t2_maps(
    fit: T2Fit,
    me: MultiEcho,
    outdir: str | os.PathLike,
    *,
    parameters: dict,
) -> dict[str, Path]:
    """Write every map of ``fit`` on the source grid (affine unchanged) with sidecars.

    ``parameters`` (method settings) is recorded in each sidecar.
    """
    paths = map_paths(outdir, me.stem, fit.method)
    arrays = {
        "t2_s": fit.t2_ms / np.float32(1000.0),
        "t2_ms": fit.t2_ms,
        "s0": fit.s0,
        "b1": fit.b1,
        "offset": fit.offset,
        "r2": fit.r2,
        "rmse": fit.rmse,
        "t2_se_ms": fit.t2_se_ms,
        "failure": fit.failure,
    }
    algorithm, reference = ESTIMATION[fit.method]
    common = {
        "EstimationAlgorithm": algorithm,
        "EstimationReference": reference,
        "Sources": list(me.sources),
        "EchoTime": [round(t / 1000.0, 9) for t in me.te_ms],
        "FitParameters": parameters,
        "FailureCounts": fit.failure_counts(),
        "SoftwareVersion": f"t2quant {__version__}",
    }
    for key, path in paths.items():
        units, description = _MAPS[key]
        dtype = np.uint8 if key == "failure" else np.float32
        save_nifti(arrays[key], me.affine, path, dtype=dtype)
        side = {"Units": units, "Description": description, **common}
        if key == "failure":
            side["Levels"] = {str(int(c)): FAILURE_DESCRIPTIONS[c] for c in Failure}
        write_json(side, bids.sidecar(path))
    return paths


def _load_map(path: str | os.PathLike, me: MultiEcho, what: str) -> np.ndarray:
    from t2quant.io.echoes import read_nifti

    data, affine = read_nifti(path)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(f"{path}: the {what} must be 3D; got shape {data.shape}")
    require_same_grid(str(path), data.shape, affine, me.data.shape, me.affine, what)
    return data


def fit_to_files(
    me: MultiEcho,
    outdir: str | os.PathLike,
    *,
    method: str = "epg",
    mask: str | os.PathLike | None = None,
    use_mask: bool = True,
    b1_map: str | os.PathLike | None = None,
    noise_sigma: float | str | None = None,
    n_threads: int | None = None,
    **fit_options,
) -> tuple[T2Fit, dict[str, Path]]:
    """Fit ``me`` and write the maps; the default mask is Otsu on the log first echo."""
    from t2quant.relaxometry import fit_t2, signal_mask

    if mask is not None:
        fit_mask = _load_map(mask, me, "mask") > 0
        if not fit_mask.any():
            raise InputError(f"{mask}: the mask selects no voxel (all zero); nothing to fit")
    elif use_mask:
        fit_mask = signal_mask(me.data[..., 0])
    else:
        fit_mask = None
    b1 = None if b1_map is None else _load_map(b1_map, me, "B1 map")
    fit = fit_t2(
        me.data, me.te_ms, method=method, mask=fit_mask, b1=b1, noise_sigma=noise_sigma,
        n_threads=n_threads, **fit_options,
    )  # fmt: skip
    parameters = {
        "method": method,
        "mask": str(mask) if mask else ("otsu_log_first_echo" if use_mask else "none"),
        "b1_map": str(b1_map) if b1_map else None,
        "noise_sigma": noise_sigma,
        **fit_options,
    }
    return fit, write_t2_maps(fit, me, outdir, parameters=parameters)
