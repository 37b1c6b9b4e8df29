"""How the grader's features vary by Pfirrmann grade: real SPIDER slices against phantoms.

Real: the feature tables ``bench/bench_spider_grading.py`` writes (``--work``, default
``build/spider``: automatic masks of the 87 shared SPIDER slices) joined to the radiologists'
grades (van der Graaf et al. 2024, CC BY 4.0). Phantom: ``--phantoms`` synthetic spines
(clinical protocol, SPIDER-model grades; seeds 0..N-1), the simulated T2-weighted FSE
exported like the SPIDER slices (the middle sagittal slice, min..max linearly to 0..255,
rounded), measured like the real slices with the packaged segmenter's automatic masks
(``--masks true``: the phantom's true masks; a disc is kept when its automatic name is its
true level). For each feature and grade: the median and interquartile range of both, and
whether the phantom median lies inside the real IQR.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_phantom_appearance.py [--phantoms 30]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from t2quant.features import disc_features
from t2quant.features.files import read_feature_tables
from t2quant.io import bids
from t2quant.pfirrmann.manual import read_manual_grades
from t2quant.segmentation import segment_discs
from t2quant.segmentation.frame import to_canonical
from t2quant.synth import CLINICAL, make_spine_phantom, simulate_t2w
from t2quant.synth.grades import sample_grades

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
GRADES = SHARED / "reference" / "spider-gradings" / "radiological_gradings.csv"
FEATURES = ("nucleus_csf_ratio", "nucleus_vertebra_ratio", "nucleus_annulus_contrast",
            "disc_height_index", "band_depth", "nucleus_signal_cv", "appearance_score")  # fmt: skip


def real_features(work: Path) -> pd.DataFrame:
    grades, _ = read_manual_grades(GRADES)
    table = read_feature_tables(bids.find_feature_tables(work / "features"))
    both = table.merge(grades, on=["participant_id", "session", "level"])
    return both[both["qc_status"].eq("ok")].assign(source="SPIDER")


def export_8bit(plane: np.ndarray) -> np.ndarray:
    """A slice as the SPIDER export made it: min..max linearly to 0..255, rounded."""
    lo, hi = float(plane.min()), float(plane.max())
    return np.round((plane - lo) / (hi - lo) * 255.0)


def phantom_features(n: int, masks: str = "auto") -> pd.DataFrame:
    rows = []
    for seed in range(n):
        rng = np.random.default_rng([seed, 18])
        ph = make_spine_phantom(seed=seed, grades=sample_grades(rng), protocol=CLINICAL)
        mid = ph.discs.shape[2] // 2
        image = export_8bit(simulate_t2w(ph, CLINICAL, seed=seed)[:, :, mid : mid + 1])
        truth = ph.discs[:, :, mid : mid + 1]
        labels = truth
        if masks == "auto":
            auto = segment_discs(image, ph.affine, threads=1).labels
            named_right = [
                k for k in np.unique(auto[auto > 0]) if (truth[auto == k] == k).mean() > 0.5
            ]
            labels = np.where(np.isin(auto, named_right), auto, 0)
        if not labels.any():
            continue
        frame = to_canonical(image, ph.affine)
        lab = to_canonical(labels.astype(np.float32) + 0.0, ph.affine).data
        table = disc_features(np.rint(lab).astype(int), frame.data, frame.voxel_mm)
        table["pfirrmann"] = table["level"].map(ph.grades)
        table["participant_id"] = f"phantom-{seed}"
        rows.append(table[table["qc_status"].eq("ok")])
    return pd.concat(rows, ignore_index=True).assign(source="phantom")


def summary(real: pd.DataFrame, phantom: pd.DataFrame) -> pd.DataFrame:
    out = []
    for feature in FEATURES:
        for grade in range(1, 6):
            r = pd.to_numeric(real.loc[real["pfirrmann"] == grade, feature], errors="coerce")
            p = pd.to_numeric(phantom.loc[phantom["pfirrmann"] == grade, feature],
                              errors="coerce")  # fmt: skip
            rq = r.quantile([0.25, 0.5, 0.75]).to_numpy()
            pq = p.quantile([0.25, 0.5, 0.75]).to_numpy()
            out.append({"feature": feature, "grade": grade, "n_real": int(r.notna().sum()),
                        "real_q1": rq[0], "real_median": rq[1], "real_q3": rq[2],
                        "n_phantom": int(p.notna().sum()), "phantom_q1": pq[0],
                        "phantom_median": pq[1], "phantom_q3": pq[2],
                        "inside_real_iqr": bool(rq[0] <= pq[1] <= rq[2])})  # fmt: skip
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("build/spider"))
    parser.add_argument("--phantoms", type=int, default=30)
    parser.add_argument("--masks", choices=("auto", "true"), default="auto")
    parser.add_argument("--out", type=Path, help="write the summary TSV here")
    args = parser.parse_args()
    if not GRADES.exists():
        print("../shared/data not found; nothing to compare")
        return
    table = summary(real_features(args.work), phantom_features(args.phantoms, args.masks))
    pd.set_option("display.width", 200)
    print(table.round(3).to_string(index=False))
    inside = table["inside_real_iqr"]
    print(f"phantom medians inside the real IQR: {int(inside.sum())}/{len(table)}")
    if args.out:
        table.to_csv(args.out, sep="\t", index=False, float_format="%.4g")


if __name__ == "__main__":
    main()
