"""Segment, measure and grade every session of a BIDS study (the sessions' T2w images).

This is the plain-Python path of the demo and the benchmarks; the Nipype workflows wrap the
same per-session steps.
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import pandas as pd

__all__ = ["grade_session", "grade_study", "write_true_grades"]


def grade_session(anat: Path, derivatives: Path) -> tuple[pd.DataFrame, float]:
    """Segment the session's T2w (or its echoes), then measure and grade its discs; a fitted
    ``_T2ms`` map in the session's derivatives folder is used when present. Returns the
    feature table and the seconds the features and grades took (NaN when a finished
    session's table was read back instead: a rerun resumes)."""
    from t2quant.features.files import features_to_files
    from t2quant.io import read_tsv
    from t2quant.segmentation.files import segment_to_files

    sub, ses = anat.parent.parent.name, anat.parent.name
    outdir = derivatives / sub / ses / "anat"
    done = sorted(outdir.glob("*_discfeatures.tsv"))
    if done:
        table = read_tsv(done[0])
        table["session"] = table["session"].astype(str)
        return table, float("nan")
    t2w = sorted(anat.glob("*_T2w.nii*"))
    inputs = t2w[:1] if t2w else [anat.parent]
    _, paths = segment_to_files(inputs, outdir)
    t2maps = sorted(outdir.glob("*_T2ms.nii*"))
    start = time.perf_counter()
    table, _ = features_to_files(inputs, paths["dseg"], outdir, t2map=t2maps[0] if t2maps else None)
    return table, time.perf_counter() - start


def grade_study(bids: Path, derivatives: Path, *, jobs: int = 1) -> tuple[pd.DataFrame, list]:
    """Every session's feature table, concatenated, and the per-session feature times."""
    sessions = sorted(Path(bids).glob("sub-*/ses-*/anat"))
    work = partial(grade_session, derivatives=Path(derivatives))
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(work, sessions))
    else:
        results = [work(s) for s in sessions]
    return pd.concat([r[0] for r in results], ignore_index=True), [r[1] for r in results]


def write_true_grades(bids: Path, path: Path) -> Path:
    """The true Pfirrmann grades of a synthetic study (``derivatives/groundtruth/discs.tsv``)
    as a manual-grades TSV (``participant_id, session, level, pfirrmann``)."""
    from t2quant.io import read_tsv, write_tsv

    truth = read_tsv(Path(bids) / "derivatives" / "groundtruth" / "discs.tsv")
    truth = truth.rename(columns={"pfirrmann_true": "pfirrmann"})
    return write_tsv(truth[["participant_id", "session", "level", "pfirrmann"]], path)
