"""Assisted Pfirrmann grades on real patients: the SPIDER mid-sagittal slices against their
radiologists' grades, with the automatic masks, cross-validated by patient.

Data (not in the repository; van der Graaf et al., Sci Data 11:264, 2024, CC BY 4.0):
``../shared/data/real/spider-midsagittal-t2`` (87 slices) and
``../shared/data/reference/spider-gradings/radiological_gradings.csv``.

The packaged disc-appearance network was trained on these patients, so its score on them is
in sample. The held-out figures therefore retrain it inside the folds (nested
cross-validation, needs the ``train`` extra): for each of 5 folds by patient, the network
is trained on the other folds' patients (and the synthetic phantoms' discs, as in
training), and the ordinal grader is fitted on those patients with their appearance scores
from an inner 5-fold cross-validation (as the packaged grader is fitted on out-of-fold
scores); the held-out patients are then graded by both. Steps,
all written under ``--work`` (default ``build/spider``, not tracked):

1. segment every slice (``t2quant segment``; cached);
2. measure and grade every disc with the packaged models (``t2quant features``), timing
   features + grade per slice;
3. nested cross-validation -> ``nested/cv_grades.tsv`` -> ``t2quant validate`` on it
   (kappa, CIs, per level, per scanner): the held-out figures;
4. with ``--oof FILE`` (``oof_appearance.tsv`` of ``python -m t2quant.training.grader``):
   the feature tables with those out-of-fold scores (``features_oof/``) and ``t2quant
   calibrate`` on them (``calibrate/``): the packaged ordinal model and its data card
   figures; and on the tables without the score (``calibrate_criteria/``): the criteria-only
   fallback. With ``--package`` the three fitted files replace the packaged ones
   (``pfirrmann_ordinal.json``, ``pfirrmann_ordinal_criteria.json``,
   ``pfirrmann_thresholds.json``; each keeps its ``about`` text).

    OMP_NUM_THREADS=2 <python with the train extra> bench/bench_spider_grading.py \
        [--work build/spider] [--oof build/grader/oof_appearance.tsv [--package]]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from t2quant.io import write_tsv
from t2quant.pfirrmann.calibrate import fit_ordinal, participant_folds
from t2quant.pfirrmann.files import calibrate_to_files, cv_grades_table, grade_to_files, graded_rows
from t2quant.pfirrmann.ordinal import predict_grades
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


def nested_cv(work: Path, pids: list[str], folds: int) -> Path:
    """Out-of-fold grades of the nested protocol (module docstring) -> ``cv_grades.tsv``."""
    from t2quant.training import grader as gr  # the train extra

    sessions = [
        (SPIDER / p / f"{p}_T2w.nii.gz", work / "seg" / p / f"{p}_dseg.nii.gz") for p in pids
    ]
    discs = {(d.participant_id, d.level): d for d in gr.graded_discs(sessions, GRADES)}
    phantoms = gr.phantom_discs(gr.N_PHANTOMS)  # as in training: they join every fold
    rows, data, _ = graded_rows(GRADES, [work / "features"])
    keys = zip(data["participant_id"], data["level"], strict=True)
    data = data[[key in discs for key in keys]].reset_index(drop=True)
    truth = data["pfirrmann"].to_numpy(dtype=float)
    fold = participant_folds(data["participant_id"], folds, 0)
    suggested = pd.Series(np.nan, index=rows.index)
    for k in np.unique(fold):
        start = time.perf_counter()
        train = data[fold != k].copy()
        train_discs = [discs[(p, lv)] for p, lv in zip(train["participant_id"], train["level"],
                                                       strict=True)]  # fmt: skip
        train["appearance_score"] = gr.cross_validated_scores(train_discs, extra=phantoms)
        model = fit_ordinal(train, truth[fold != k])
        net = gr.train_network(train_discs + phantoms, seed=0)
        test = rows[rows["participant_id"].isin(set(data.loc[fold == k, "participant_id"]))].copy()
        keys = list(zip(test["participant_id"], test["level"], strict=True))
        have = [key in discs for key in keys]
        patches = np.stack([discs[key].patches[0] for key, h in zip(keys, have, strict=True) if h])
        test["appearance_score"] = np.nan
        test.loc[have, "appearance_score"] = gr.scores(net, patches)
        grades = predict_grades(test, model)
        suggested.loc[test.index] = np.where(have, grades, np.nan)
        print(
            f"  fold {k}: {len(train_discs)} training discs, {int(np.sum(have))} held out, "
            f"{time.perf_counter() - start:.0f} s"
        )
    model = f"ordinal + appearance network, nested cross-validation ({folds} folds by participant)"
    return write_tsv(cv_grades_table(rows, suggested, model), work / "nested" / "cv_grades.tsv")


def with_oof(work: Path, oof: Path | None) -> Path:
    """Copies of the feature tables whose ``appearance_score`` is the out-of-fold one
    (``features_oof/``), or, without ``oof``, without the score (``features_criteria/``)."""
    score_of = {}
    if oof is not None:
        scores = pd.read_csv(oof, sep="\t", dtype={"session": str}).fillna({"session": ""})
        score_of = {(r.participant_id, r.level): r.appearance_score for r in scores.itertuples()}
    out = work / ("features_oof" if oof is not None else "features_criteria")
    for path in sorted((work / "features").glob("*_discfeatures.tsv")):
        table = pd.read_csv(path, sep="\t")
        if oof is None:
            table = table.drop(columns=["appearance_score"])
        else:
            keys = zip(table["participant_id"], table["level"], strict=True)
            table["appearance_score"] = [score_of.get(key, np.nan) for key in keys]
        write_tsv(table, out / path.name)
    return out


PACKAGED = Path(__file__).resolve().parents[1] / "src" / "t2quant" / "data"


def package(work: Path) -> None:
    """Replace the packaged grader files by the ones just fitted, keeping each ``about``."""
    fitted = {
        "pfirrmann_ordinal.json": work / "calibrate" / "pfirrmann_ordinal.json",
        "pfirrmann_ordinal_criteria.json": work / "calibrate_criteria" / "pfirrmann_ordinal.json",
        "pfirrmann_thresholds.json": work / "calibrate" / "pfirrmann_thresholds.json",
    }
    for name, source in fitted.items():
        new = json.loads(source.read_text())
        new["about"] = json.loads((PACKAGED / name).read_text())["about"]
        (PACKAGED / name).write_text(json.dumps(new, indent=2) + "\n")
        print(f"packaged {name} ({new['fitted_on']['n_discs']} discs)")


def recalibrate(work: Path, oof: Path, folds: int) -> None:
    """``t2quant calibrate`` on the out-of-fold scores (``calibrate/``) and on the criteria
    alone (``calibrate_criteria/``), printing their figures."""
    runs = (("out-of-fold scores", with_oof(work, oof), "calibrate"),
            ("criteria only", with_oof(work, None), "calibrate_criteria"))  # fmt: skip
    for what, tables, out in runs:
        cal = calibrate_to_files(GRADES, [tables], work / out, folds=folds)
        for name in ("default_thresholds", "thresholds_cross_validated", "ordinal_cross_validated"):
            r = cal[name]
            print(f"calibrate on {what}, {name}: kappa_q {r['kappa_quadratic']:.3f} "
                  f"exact {r['exact_agreement']:.3f} within one {r['within_one']:.3f} "
                  f"(n {r['n_discs']})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("build/spider"))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--skip-features", action="store_true")
    parser.add_argument("--oof", type=Path, help="oof_appearance.tsv: refit the ordinal model")
    parser.add_argument("--package", action="store_true",
                        help="with --oof: the fitted models replace the packaged ones")  # fmt: skip
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
    if args.oof:
        recalibrate(args.work, args.oof, args.folds)
        if args.package:
            package(args.work)
    try:
        import torch  # noqa: F401
    except ImportError:
        print("held-out figures skipped: the nested cross-validation needs the train extra")
        return
    start = time.perf_counter()
    cv = nested_cv(args.work, pids, args.folds)
    print(f"nested cross-validation: {time.perf_counter() - start:.0f} s")
    result = validate_to_files(GRADES, cv, args.work / "validate",
                               participants=SPIDER / "participants.tsv",
                               bootstrap=args.bootstrap)  # fmt: skip
    print("\n".join(agreement_lines(result)))


if __name__ == "__main__":
    main()
