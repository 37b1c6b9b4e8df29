"""The built-in demonstration: every stage that exists, run on the synthetic study.

Stages: write the study; fit T2 maps and compare disc T2 inside the true masks with the
truth; segment every session's T2w image, measure and grade its discs, and compare the
suggested grades with the true ones (``t2quant validate``); build the disc table and run
the moderator stage (``t2quant table``, ``t2quant stats``) and set the overall estimates
beside the true effects.
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from t2quant.io import read_tsv, write_tsv
from t2quant.levels import INDEX_LEVEL
from t2quant.synth.writer import StudySettings, write_synthetic_study

DEMO_METHOD = "epg"


def run_demo(out: str | Path, settings: StudySettings, *, jobs: int = 1) -> Path:
    """Write the synthetic study to ``out/bids``, fit T2 maps of every session into
    ``out/derivatives/t2quant`` and compare disc T2 with the ground truth."""
    out = Path(out)
    start = time.perf_counter()
    discs = write_synthetic_study(out / "bids", settings, jobs=jobs)
    print(
        f"[demo] synthetic study: {discs.participant_id.nunique()} participants, "
        f"{len(discs)} disc rows in {time.perf_counter() - start:.1f} s -> {out / 'bids'}"
    )
    summary = summarise_truth(discs)
    write_tsv(summary, out / "groundtruth_summary.tsv")
    print("[demo] true whole-disc T2 (ms) by session and Pfirrmann grade:")
    print(summary.to_string(index=False))
    check = fit_sessions(out / "bids", out / "derivatives" / "t2quant", jobs=jobs)
    write_tsv(check, out / "t2_check.tsv")
    err = (check.t2_fit_ms - check.t2_true_ms).abs()
    print(
        f"[demo] {DEMO_METHOD} T2 inside the true disc masks: median |fit - true| = "
        f"{err.median():.2f} ms over {err.notna().sum()} discs "
        f"(95th percentile {err.quantile(0.95):.2f} ms) -> {out / 't2_check.tsv'}"
    )
    grade_demo(out, jobs=jobs)
    group_demo(out, jobs=jobs)
    return out


def group_demo(out: Path, *, jobs: int = 1) -> pd.DataFrame:
    """The disc table and the moderator stage; overall estimates next to the truth."""
    from t2quant.disctable import disc_table_to_files
    from t2quant.stats.files import stats_to_files
    from t2quant.synth.table import true_subgroup_effects

    start = time.perf_counter()
    derivatives = out / "derivatives" / "t2quant"
    group = derivatives / "group"
    table, _ = disc_table_to_files(out / "bids", derivatives, group)
    results, paths = stats_to_files(group / "discs.tsv", group, jobs=jobs)
    truth = read_tsv(out / "bids" / "derivatives" / "groundtruth" / "participants_truth.tsv")
    true = true_subgroup_effects(table.dropna(subset=["t2_mean_ms"]), truth)
    overall = results.moderators[results.moderators["moderator"] == "overall"]
    print(f"[demo] disc table and moderator stage in {time.perf_counter() - start:.1f} s "
          f"-> {paths['summary']}")  # fmt: skip
    for row in overall.itertuples():
        print(
            f"[demo] week {row.timepoint_weeks}: net difference {row.estimate_ms:.2f} ms "
            f"[{row.ci_low_ms:.2f}, {row.ci_high_ms:.2f}], true {true[row.timepoint_weeks]:.2f} ms"
        )
    return results.moderators


def grade_demo(out: Path, *, jobs: int = 1) -> dict:
    """Segment, measure and grade every session; agreement with the true grades."""
    from t2quant.grading import grade_study, write_true_grades
    from t2quant.validate import validate_to_files

    start = time.perf_counter()
    derivatives = out / "derivatives" / "t2quant"
    table, _ = grade_study(out / "bids", derivatives, jobs=jobs)
    write_tsv(table, out / "discfeatures.tsv")
    write_true_grades(out / "bids", out / "true_grades.tsv")
    result = validate_to_files(out / "true_grades.tsv", out / "discfeatures.tsv", out / "agreement")
    n_sessions = table.groupby(["participant_id", "session"]).ngroups
    print(
        f"[demo] segmented, measured and graded {n_sessions}"
        f" sessions in {time.perf_counter() - start:.1f} s; suggested vs true Pfirrmann: "
        f"kappa_quadratic {result['kappa_quadratic']:.3f}, within one {result['within_one']:.3f}"
        f" over {result['n_discs']} discs -> {out / 'agreement' / 'agreement.json'}"
    )
    return result


def summarise_truth(discs: pd.DataFrame) -> pd.DataFrame:
    """Mean and SD of true whole-disc T2 (ms) and disc count by session and grade."""
    grouped = discs.dropna(subset=["t2_true_ms"]).groupby(["session", "pfirrmann_true"])
    table = (
        grouped["t2_true_ms"]
        .agg(n_discs="size", t2_true_mean_ms="mean", t2_true_sd_ms="std")
        .reset_index()
    )
    return table.round(2)


def fit_sessions(bids: Path, derivatives: Path, *, jobs: int = 1) -> pd.DataFrame:
    """Fit every session (resuming finished ones); one row per true disc with both T2s."""
    sessions = sorted(p.parent for p in bids.glob("sub-*/ses-*/anat"))
    start = time.perf_counter()
    work = partial(
        _fit_session, derivatives=derivatives, truth=bids / "derivatives" / "groundtruth"
    )
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        rows = [r for table in pool.map(work, sessions) for r in table]
    print(f"[demo] fitted {len(sessions)} sessions in {time.perf_counter() - start:.1f} s")
    truth = read_tsv(bids / "derivatives" / "groundtruth" / "discs.tsv")
    fitted = pd.DataFrame(rows, columns=["participant_id", "session", "level", "t2_fit_ms"])
    keep = ["participant_id", "session", "level", "pfirrmann_true", "t2_true_ms"]
    return truth[keep].merge(fitted, on=["participant_id", "session", "level"], how="left")


def _fit_session(session: Path, *, derivatives: Path, truth: Path) -> list[tuple]:
    """Fit one session (unless its T2 map exists) and average T2 in each true disc."""
    from t2quant.echoes import load_bids_session
    from t2quant.t2maps import fit_to_files, map_paths

    sub, ses = session.parent.name, session.name
    outdir = derivatives / sub / ses / "anat"
    me = load_bids_session(session)
    t2_path = map_paths(outdir, me.stem, DEMO_METHOD)["t2_ms"]
    if not t2_path.is_file():
        fit_to_files(me, outdir, method=DEMO_METHOD)
    t2 = nib.load(t2_path).get_fdata(dtype=np.float32)
    labels = np.asarray(
        nib.load(truth / sub / ses / "anat" / f"{me.stem}_desc-discs_dseg.nii.gz").dataobj
    )
    rows = []
    for index, level in INDEX_LEVEL.items():
        inside = labels == index
        if inside.any():
            rows.append((sub, ses.removeprefix("ses-"), level, float(np.nanmean(t2[inside]))))
    return rows
