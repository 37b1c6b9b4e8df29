"""Disc segmentation and level naming: accuracy against known truth, speed and memory.

Run: ``.venv/bin/python bench/bench_segmentation.py [--seeds 50] [--quick]``

1. Synthetic phantoms (``make_spine_phantom``, demo protocol, T2w FSE): ``--seeds`` random
   anatomies with SPIDER-model grades; every 5th seed also gets one collapsed (grade 5) disc.
   Per phantom: are all seven levels named right (the true level under most of each segmented
   disc), and the Dice of each disc against its true mask.
2. Fields of view without T11/T12, and a sixth lumbar vertebra: flagged, or silently wrong?
3. The real T2w volume (Menezes-Reis et al. 2016, subject 11; manual masks L1/L2..L5/S1):
   names and Dice per disc, and the real-anatomy MESE phantom built from it (segmented on the
   mean of its 60-120 ms echoes, the canal found on the fluid image of its echoes).
4. Time per volume and peak memory (tracemalloc: NumPy allocations) on the real volume and
   on a clinical-protocol phantom (280 x 360 x 13).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from pathlib import Path

import nibabel as nib
import numpy as np

from t2quant.levels import INDEX_LEVEL, LEVEL_INDEX, LEVELS
from t2quant.segmentation import segment_discs
from t2quant.segmentation.files import mese_fluid_image, mese_t2w_image
from t2quant.synth import CLINICAL, DEMO, make_spine_phantom, simulate_mese, simulate_t2w
from t2quant.synth.grades import sample_grades

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "menezes-reis-ivd-11"
MANUAL = {1: "L5/S1", 2: "L4/L5", 3: "L3/L4", 4: "L2/L3", 5: "L1/L2"}


def dice(a, b) -> float:
    return 2.0 * float((a & b).sum()) / max(1.0, float(a.sum() + b.sum()))


def majority(values: np.ndarray) -> int:
    values = values[values > 0]
    return int(np.bincount(values).argmax()) if values.size else 0


def check(seg, truth: np.ndarray) -> tuple[bool, list[float], list[str]]:
    """All seven named right?, Dice per level, and the levels named wrong."""
    dices, wrong = [], []
    for lvl in LEVELS:
        found = seg.labels == LEVEL_INDEX[lvl]
        if found.any() and INDEX_LEVEL.get(majority(truth[found])) != lvl:
            wrong.append(lvl)
        dices.append(dice(found, truth == LEVEL_INDEX[lvl]))
    named = all((seg.labels == LEVEL_INDEX[lvl]).any() for lvl in LEVELS) and not wrong
    return named, dices, wrong


def phantoms(n: int) -> None:
    print(f"\n1. {n} phantoms (demo protocol, SPIDER-model grades; every 5th with a grade-5 disc)")
    all_named, dices, worst, uncertain = 0, [], [], 0
    for seed in range(n):
        rng = np.random.default_rng([seed, 77])
        grades = sample_grades(rng)
        if seed % 5 == 0:
            grades[LEVELS[int(rng.integers(2, 7))]] = 5
        ph = make_spine_phantom(seed=seed, grades=grades, protocol=DEMO)
        seg = segment_discs(simulate_t2w(ph, DEMO, seed=seed), ph.affine)
        named, d, wrong = check(seg, ph.discs)
        all_named += named
        uncertain += "level_uncertain" in seg.flags
        dices.append(d)
        if not named or min(d) < 0.8:
            worst.append((seed, grades, wrong, [round(x, 2) for x in d], seg.flags))
    dices = np.array(dices)
    print(f"   all seven levels named right: {all_named} of {n}; "
          f"flagged level_uncertain: {uncertain} of {n}")  # fmt: skip
    print(f"   Dice per disc: median {np.median(dices):.3f}, 5th percentile "
          f"{np.percentile(dices, 5):.3f}, min {dices.min():.3f}; discs >= 0.90: "
          f"{(dices >= 0.90).mean():.1%}")  # fmt: skip
    by_grade = {}
    for seed in range(n):
        rng = np.random.default_rng([seed, 77])
        grades = sample_grades(rng)
        if seed % 5 == 0:
            grades[LEVELS[int(rng.integers(2, 7))]] = 5
        for k, lvl in enumerate(LEVELS):
            by_grade.setdefault(grades[lvl], []).append(dices[seed, k])
    print("   median Dice by grade: " + ", ".join(
        f"{g}: {np.median(v):.3f} (n={len(v)})" for g, v in sorted(by_grade.items())))  # fmt: skip
    for row in worst[:8]:
        print(f"   seed {row[0]}: wrong {row[2]} Dice {row[3]} flags {row[4]}")


def special(n: int) -> None:
    print(f"\n2. Special fields of view, {n} seeds each")
    for label, kw in (("no T11/T12", {"missing_t11_t12": True}), ("L6", {"extra_lumbar": True})):
        flagged = silent_wrong = named_right = 0
        for seed in range(n):
            ph = make_spine_phantom(seed=seed, protocol=DEMO, **kw)
            seg = segment_discs(simulate_t2w(ph, DEMO, seed=seed), ph.affine)
            _, _, wrong = check(seg, ph.discs)
            flag = bool({"missing_level", "level_uncertain", "transitional_anatomy", "no_sacrum"}
                        & set(seg.flags))  # fmt: skip
            flagged += flag
            silent_wrong += bool(wrong) and not flag
            named_right += not wrong
        print(f"   {label:<11} flagged {flagged}/{n}; every named disc right {named_right}/{n}; "
              f"wrong names without a flag {silent_wrong}/{n}")  # fmt: skip


def real() -> None:
    if not REAL.exists():
        print("\n3. real volume: ../shared/data/real not found; skipped")
        return
    img = nib.load(REAL / "T2w.nii.gz")
    data = np.asanyarray(img.dataobj)
    manual = np.asanyarray(nib.load(REAL / "discs_manual.nii.gz").dataobj).astype(int)
    seg = segment_discs(data, img.affine, orientation="IPR")
    print("\n3. Real T2w volume (orientation IPR), Dice against the manual masks")
    for k, lvl in MANUAL.items():
        found = seg.labels == LEVEL_INDEX[lvl]
        named = majority(manual[found]) == k
        print(f"   {lvl}: named right {named}, Dice {dice(found, manual == k):.3f}")
    print(f"   flags {seg.flags}; warnings {list(seg.warnings)}")
    from t2quant.synth.real_anatomy import make_real_anatomy_phantom

    ph = make_real_anatomy_phantom(data, manual)
    acq = simulate_mese(ph, CLINICAL, seed=1)
    seg = segment_discs(
        mese_t2w_image(acq.echoes, acq.te_ms), ph.affine,
        fluid=mese_fluid_image(acq.echoes, acq.te_ms),
    )  # fmt: skip
    print("   real-anatomy MESE phantom (from its echoes): " + ", ".join(
        f"{lvl} {dice(seg.labels == LEVEL_INDEX[lvl], ph.discs == LEVEL_INDEX[lvl]):.3f}"
        for lvl in MANUAL.values()) + f"; flags {seg.flags}")  # fmt: skip


def speed() -> None:
    print("\n4. Time and peak memory per volume (segment_discs, one call)")
    cases = []
    if REAL.exists():
        img = nib.load(REAL / "T2w.nii.gz")
        cases.append(("real 221x221x67", np.asanyarray(img.dataobj), img.affine, "IPR"))
    ph = make_spine_phantom(seed=1, protocol=CLINICAL)
    cases.append(("clinical 280x360x13", simulate_t2w(ph, CLINICAL, seed=1), ph.affine, None))
    for label, data, affine, orient in cases:
        start = time.perf_counter()
        segment_discs(data, affine, orientation=orient)
        elapsed = time.perf_counter() - start
        tracemalloc.start()
        segment_discs(data, affine, orientation=orient)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"   {label}: {elapsed:.2f} s, peak {peak / 2**20:.0f} MiB "
              f"({peak / data.astype(np.float32).nbytes:.1f}x the float32 image)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="10 seeds, 3 special")
    args = parser.parse_args()
    phantoms(10 if args.quick else args.seeds)
    special(3 if args.quick else 10)
    real()
    speed()


if __name__ == "__main__":
    main()
