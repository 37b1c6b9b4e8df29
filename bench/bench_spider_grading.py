"""Assisted Pfirrmann grades on real patients: the SPIDER mid-sagittal slices against their
radiologists' grades, with the automatic masks, cross-validated by patient.

Data (not in the repository; van der Graaf et al., Sci Data 11:264, 2024, CC BY 4.0):
``../shared/data/real/spider-midsagittal-t2`` (87 slices) and
``../shared/data/reference/spider-gradings/radiological_gradings.csv``.

Steps, each the command a user runs (``t2quant segment``, ``features``, ``calibrate``,
``validate``), all written under ``--work`` (default ``build/spider``, not tracked):

1. segment every slice (cached: a slice already segmented is not segmented again);
2. measure and grade every disc, timing features + grade per slice;
3. ``calibrate`` on every patient, folds by patient: cross-validated thresholds and ordinal
   model; the out-of-fold grades of the chosen model go to ``cv_grades.tsv``;
4. ``validate`` those out-of-fold grades against the radiologists (kappa, CIs, per level, per
   scanner).

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_spider_grading.py [--work build/spider]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from t2quant.pfirrmann.files import calibrate_to_files, grade_to_files
from t2quant.segmentation.files import segment_to_files
from t2quant.validation.validate import agreement_lines, validate_to_files

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SPIDER = SHARED / "real" / "spider-midsagittal-t2"
GRADES = SHARED / "reference" / "spider-gradings" / "radiological_gradings.csv"


def segment_all(work: Path) -> list[str]:
    table = pd.read_csv(SPIDER / "participants.tsv", sep="\t")
    out = []
    for pid in table["participant_id"]:
        image = SPIDER / pid / f"{pid}_T2w.nii.gz"
        folder = work / "seg" / pid
        if not (folder / f"{pid}_dseg.nii.gz").exists():
            segment_to_files([image], folder, threads=1)
        out.append(pid)
    return out


def features_all(work: Path, pids: list[str]) -> tuple[list[float], list[float]]:
    """Measure and grade every slice (reading the image and labels, writing the table, as
    ``t2quant features`` does); wall-clock and CPU seconds per slice."""
    wall, cpu = [], []
    for pid in pids:
        image = SPIDER / pid / f"{pid}_T2w.nii.gz"
        start, start_cpu = time.perf_counter(), time.process_time()
        grade_to_files([image], work / "seg" / pid / f"{pid}_dseg.nii.gz", work / "features")
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("build/spider"))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--skip-features", action="store_true")
    args = parser.parse_args()
    if not SPIDER.exists():
        print("../shared/data/real/spider-midsagittal-t2 not found; nothing to do")
        return
    start = time.perf_counter()
    pids = segment_all(args.work)
    print(f"segmented {len(pids)} slices ({time.perf_counter() - start:.0f} s incl. cached)")
    if not args.skip_features:
        wall, cpu = features_all(args.work, pids)
        print(f"features + grade per slice: CPU median {np.median(cpu):.3f} s, max "
              f"{max(cpu):.3f} s; wall-clock median {np.median(wall):.3f} s, max "
              f"{max(wall):.3f} s (one thread; the machine's 2 cores are shared)")  # fmt: skip
    cal = calibrate_to_files(GRADES, [args.work / "features"], args.work / "calibrate",
                             folds=args.folds)  # fmt: skip
    for name in ("default_thresholds", "thresholds_cross_validated", "ordinal_cross_validated"):
        r = cal[name]
        print(f"{name}: kappa_q {r['kappa_quadratic']:.3f} exact {r['exact_agreement']:.3f} "
              f"within one {r['within_one']:.3f} (n {r['n_discs']})")  # fmt: skip
    cv = args.work / "calibrate" / "cv_grades.tsv"
    if cv.exists():
        result = validate_to_files(GRADES, cv, args.work / "validate",
                                   participants=SPIDER / "participants.tsv",
                                   bootstrap=args.bootstrap)  # fmt: skip
        print("\n".join(agreement_lines(result)))


if __name__ == "__main__":
    main()
