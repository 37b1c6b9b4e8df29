"""Assisted Pfirrmann grading on a synthetic study: agreement with the true grades and time.

Writes a synthetic study (``--participants``, default 12, x 3 sessions), runs the participant
level on it (T2 fit, segmentation, features and grades, as a user runs it), and prints the
agreement with the true grades (``t2quant.validation.validate``), the Dice of the automatic
masks with the true ones, and the time the features and grades of one session take (the
``features`` node's run time). Then cross-validated calibration. Synthetic data only.

    .venv/bin/python bench/bench_grading.py [--participants N] [--seed S] [--keep DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from t2quant.features.files import read_feature_tables
from t2quant.io import bids, read_tsv, write_tsv
from t2quant.pfirrmann.files import calibrate_to_files
from t2quant.pipeline.participant import ParticipantSettings, run_participant
from t2quant.synth.writer import StudySettings, write_synthetic_study
from t2quant.validation.groundtruth import write_true_grades
from t2quant.validation.validate import validate_to_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=12)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", type=Path, help="write here instead of a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(args.keep or Path(tmp), args.participants, args.seed)


def run(root: Path, n: int, seed: int) -> None:
    start = time.perf_counter()
    write_synthetic_study(root / "bids", StudySettings(n_participants=n, seed=seed), jobs=2)
    print(f"study: {n} participants x 3 sessions written in {time.perf_counter() - start:.0f} s")
    start = time.perf_counter()
    run_participant(ParticipantSettings(bids_dir=root / "bids", output_dir=root / "derivatives",
                                        work_dir=root / "work", nprocs=2))  # fmt: skip
    table = read_feature_tables(bids.find_feature_tables(root / "derivatives"))
    times = _node_seconds(root / "work", "features")
    print(
        f"participant level on {len(times)} sessions in {time.perf_counter() - start:.0f} s "
        f"(MultiProc, 2 processes); features + grades per session: median "
        f"{np.median(times):.2f} s, max {max(times):.2f} s"
    )
    truth_dir = root / "bids" / "derivatives" / "groundtruth"
    write_true_grades(root / "bids", root / "manual.tsv")
    write_tsv(table, root / "auto.tsv")
    r = validate_to_files(
        root / "manual.tsv", root / "auto.tsv", root / "validate", manual_masks=truth_dir,
        auto_masks=root / "derivatives", t2_maps=truth_dir,
        manual_pattern="*desc-discs_dseg.nii.gz",
    )  # fmt: skip
    print(
        f"against the true grades: n = {r['n_discs']} (not graded {r['n_not_graded']}), "
        f"kappa_quadratic {r['kappa_quadratic']:.3f}, kappa_linear {r['kappa_linear']:.3f}, "
        f"exact {r['exact_agreement']:.3f}, within one {r['within_one']:.3f}, "
        f"ccc_aggregated {r['ccc_aggregated']:.3f}, grade 1<->5 swaps {r['grade_1_5_swaps']}"
    )
    u = r["without_level_uncertain"]
    print(
        f"sessions whose naming the segmentation flagged level_uncertain: "
        f"{r['n_level_uncertain_discs']} discs; without them: n = {u['n_discs']}, "
        f"kappa_quadratic {u['kappa_quadratic']:.3f}, within one {u['within_one']:.3f}, "
        f"grade 1<->5 swaps {u['grade_1_5_swaps']}"
    )
    print(read_tsv(root / "validate" / "confusion.tsv").to_string(index=False))
    print(
        f"automatic vs true masks: median Dice {r['dice_median']:.3f}; true-T2 mean in the two "
        f"masks: ICC(2,1) {r['icc_2_1_t2']:.3f}, Bland-Altman bias "
        f"{r['bland_altman_t2_ms']['bias']:.2f} ms, SD {r['bland_altman_t2_ms']['sd']:.2f} ms"
    )
    true_masks(root, truth_dir)
    c = calibrate_to_files(root / "manual.tsv", [root / "derivatives"], root / "calibrate")
    for name in ("default_thresholds", "thresholds_cross_validated", "ordinal_cross_validated"):
        m = c[name]
        print(
            f"calibrate {name}: kappa_quadratic {m['kappa_quadratic']:.3f}, exact "
            f"{m['exact_agreement']:.3f}, within one {m['within_one']:.3f} (n = {m['n_discs']})"
        )


def _node_seconds(work: Path, node: str) -> list[float]:
    """Run times (s) of every node called ``node`` in the Nipype cache."""
    from nipype.utils.filemanip import loadpkl

    results = sorted(work.rglob(f"result_{node}.pklz"))
    return [float(loadpkl(p).runtime.duration) for p in results] or [float("nan")]


def true_masks(root: Path, truth_dir: Path) -> None:
    """The same grading on the true disc masks (the participant level's --discs-from):
    agreement of the grading alone."""
    run_participant(ParticipantSettings(
        bids_dir=root / "bids", output_dir=root / "true-masks", work_dir=root / "work-true",
        nprocs=2, discs_from=truth_dir,
    ))  # fmt: skip
    r = validate_to_files(root / "manual.tsv", _concat(root / "true-masks"), root / "val-true")
    print(
        f"on the true masks (grading alone): n = {r['n_discs']}, kappa_quadratic "
        f"{r['kappa_quadratic']:.3f}, exact {r['exact_agreement']:.3f}, within one "
        f"{r['within_one']:.3f}, grade 1<->5 swaps {r['grade_1_5_swaps']}"
    )


def _concat(folder: Path) -> Path:
    tables = [read_tsv(p) for p in sorted(folder.rglob("*_discfeatures.tsv"))]
    return write_tsv(pd.concat(tables, ignore_index=True), folder / "all.tsv")


if __name__ == "__main__":
    main()
