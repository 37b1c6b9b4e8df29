"""Disc segmentation and level naming: accuracy against known truth, speed and memory.

Run: ``.venv/bin/python bench/bench_segmentation.py [--seeds 50] [--quick]
[--montage docs/segmentation_spider_qc.png]``

1. The three real T2w volumes in ``../shared`` (Menezes-Reis et al. 2016; manual masks
   L1/L2..L5/S1; orientation IPR): names and Dice per disc.
2. The 87 SPIDER mid-sagittal slices (van der Graaf et al. 2024, CC BY 4.0; no masks): discs
   named against ``n_discs``, strictly and allowing for named discs cut by the edge of the
   field of view (SPIDER's count of those is not consistent), whether the lowest named disc
   sits directly above the sacrum (between a vertebral body and the sacrum class), and
   whether a miss is flagged. ``--montage`` writes a QC picture of every slice.
3. The real-anatomy phantom (:mod:`t2quant.synth.real_anatomy`): a T2w FSE and the mean of
   the 60-120 ms echoes of a clinical MESE, against its true disc labels: per level, the
   Dice of the disc given that name, and of the segmented disc lying on it (any name).
4. ``--seeds`` synthetic phantoms (demo protocol, SPIDER-model grades; every 5th with a
   grade-5 disc): every level named right?, Dice per disc.
5. Special anatomy (no T11/T12 in view, a sixth lumbar vertebra): flagged, or silently wrong?
6. Time per image (in this process, the network loaded) and peak memory of a fresh process
   that loads the image and segments it (VmHWM: Python, NumPy, SciPy, onnxruntime).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from t2quant.levels import INDEX_LEVEL, LEVEL_COLORS, LEVEL_INDEX, LEVELS
from t2quant.segmentation import segment_discs
from t2quant.segmentation.files import mese_t2w_image
from t2quant.synth import CLINICAL, DEMO, make_spine_phantom, simulate_mese, simulate_t2w
from t2quant.synth.grades import sample_grades
from t2quant.validation.naming import ALERT, count_check

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
REAL = sorted(SHARED.glob("menezes-reis-ivd-*"))
SPIDER = SHARED / "spider-midsagittal-t2"
MANUAL = {1: "L5/S1", 2: "L4/L5", 3: "L3/L4", 4: "L2/L3", 5: "L1/L2"}


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / max(1.0, float(a.sum() + b.sum()))


def majority(values: np.ndarray) -> int:
    values = values[values > 0].astype(int)
    return int(np.bincount(values).argmax()) if values.size else 0


def check(labels: np.ndarray, truth: np.ndarray) -> tuple[bool, list[float], list[str]]:
    """All seven named right?, Dice per level, and the levels named wrong."""
    dices, wrong = [], []
    for lvl in LEVELS:
        found = labels == LEVEL_INDEX[lvl]
        if found.any() and INDEX_LEVEL.get(majority(truth[found])) != lvl:
            wrong.append(lvl)
        dices.append(dice(found, truth == LEVEL_INDEX[lvl]))
    named = all((labels == LEVEL_INDEX[lvl]).any() for lvl in LEVELS) and not wrong
    return named, dices, wrong


def real() -> list[float]:
    print("\n1. Real T2w volumes (Menezes-Reis; orientation IPR), Dice against the manual masks")
    if not REAL:
        print("   ../shared/data/real not found; skipped")
        return []
    scores = []
    for folder in REAL:
        img = nib.load(folder / "T2w.nii.gz")
        manual = np.asanyarray(nib.load(folder / "discs_manual.nii.gz").dataobj).astype(int)
        start = time.perf_counter()
        seg = segment_discs(np.asanyarray(img.dataobj), img.affine, orientation="IPR")
        parts = []
        for k, lvl in MANUAL.items():
            found = seg.labels == LEVEL_INDEX[lvl]
            scores.append(dice(found, manual == k))
            ok = "ok" if majority(manual[found]) == k else "WRONG"
            parts.append(f"{lvl} {ok} {scores[-1]:.3f}")
        print(f"   {folder.name}: " + "; ".join(parts) + f" | named {seg.naming.names} "
              f"flags {list(seg.flags)} {time.perf_counter() - start:.2f} s")  # fmt: skip
    d = np.array(scores)
    print(f"   Dice mean {d.mean():.3f}, min {d.min():.3f}, discs >= 0.85: "
          f"{(d >= 0.85).sum()}/{d.size} (targets: mean >= 0.90, every disc >= 0.85)")  # fmt: skip
    return scores


def spider_case(row, seg) -> dict:
    """Naming of one SPIDER slice against its ``n_discs`` (see ``count_check``)."""
    return asdict(count_check(seg.naming, row.n_discs))


def spider(montage: Path | None) -> None:
    if not SPIDER.exists():
        print("\n2. SPIDER: ../shared/data/real not found; skipped")
        return
    table = pd.read_csv(SPIDER / "participants.tsv", sep="\t")
    print(f"\n2. SPIDER mid-sagittal slices ({len(table)} patients)")
    cases, shown = [], []
    for row in table.itertuples():
        img = nib.load(SPIDER / row.participant_id / f"{row.participant_id}_T2w.nii.gz")
        data = np.asanyarray(img.dataobj).astype(np.float32)
        start = time.perf_counter()
        seg = segment_discs(data, img.affine)
        case = spider_case(row, seg) | {"seconds": time.perf_counter() - start}
        cases.append(case)
        shown.append((row, data, img.affine, seg, case))
        print(f"   {row.participant_id}: n_discs {row.n_discs} named {case['named']} (cut by "
              f"the edge {case['edge']}) {'ok' if case['good'] else 'MISS'} L5/S1 on sacrum "
              f"{case['anchored']} flags {list(seg.flags)} {case['seconds']:.2f} s")  # fmt: skip
    _spider_summary(pd.DataFrame(cases), shown)
    if montage is not None:
        spider_montage(shown, montage)
        print(f"   QC montage: {montage}")


def _spider_summary(cases: pd.DataFrame, shown: list) -> None:
    n = len(cases)
    ok, strict = int(cases["good"].sum()), int(cases["strict"].sum())
    flagged = int((~cases["good"] & cases["alert"]).sum())
    silent = int((~cases["good"] & ~cases["alert"]).sum())
    conus = sum("transitional_anatomy" in s[3].flags for s in shown)
    print(f"   L5/S1 directly above the sacrum: {int(cases['anchored'].sum())}/{n}; "
          f"flagged transitional_anatomy: {conus}/{n}")  # fmt: skip
    print(f"   named == n_discs, consecutive, L5/S1 on the sacrum: {strict}/{n}")
    print(f"   the same, n_discs counting or not the named discs cut by the edge: {ok}/{n} "
          f"({ok / n:.1%}; target 95%); misses flagged: {flagged}; wrong without a flag: "
          f"{silent}; time per slice {cases['seconds'].min():.2f}-"
          f"{cases['seconds'].max():.2f} s")  # fmt: skip
    hit = int(cases["target"].sum())
    print(f"   the issue's target, L5/S1 up to the top of the view or to T11/T12 (whichever is "
          f"lower) all named, none invented: {hit}/{n} ({hit / n:.1%}; target 95%); wrong "
          f"without a flag: {int((~cases['target'] & ~cases['alert']).sum())}")  # fmt: skip


def spider_montage(shown: list, out: Path, columns: int = 10) -> Path:
    """One panel per SPIDER slice (anterior left, superior up): the named disc masks in the
    level colours, the level names, and per panel n_discs / named, ok or MISS, the flags."""
    from matplotlib.colors import ListedColormap

    from t2quant.plotting import pyplot

    plt = pyplot()
    rows = -(-len(shown) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.0 * columns, 2.5 * rows))
    colours = ListedColormap(["#00000000"] + [LEVEL_COLORS[lvl] for lvl in LEVELS])
    short = {"level_uncertain": "U", "transitional_anatomy": "T", "missing_level": "M",
             "no_sacrum": "S", "partial_disc": "P", "no_canal": "C"}  # fmt: skip
    for ax, (row, data, affine, seg, case) in zip(axes.flat, shown, strict=False):
        spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
        img, lab = data[0].T[::-1], seg.labels[0].T[::-1]  # rows superior -> inferior
        aspect = spacing[2] / spacing[1]
        ax.imshow(img, cmap="gray", vmin=0, vmax=np.percentile(img, 99.5), aspect=aspect)
        ax.imshow(np.ma.masked_equal(lab, 0), cmap=colours, vmin=0, vmax=7, alpha=0.6,
                  aspect=aspect, interpolation="nearest")  # fmt: skip
        for k in np.unique(lab[lab > 0]):
            r, c = np.argwhere(lab == k).mean(axis=0)
            ax.text(c - 0.18 * lab.shape[1], r, LEVELS[k - 1], color="w", fontsize=5)
        flags = "".join(short.get(f, "?") for f in seg.flags)
        ax.set_title(f"{row.participant_id} {row.n_discs}/{case['named']} "
                     f"{'ok' if case['good'] else 'MISS'} {flags}", fontsize=6,
                     color="k" if case["good"] else "r")  # fmt: skip
    for ax in axes.flat:
        ax.axis("off")
    legend = "U level_uncertain, T transitional, M missing_level, S no_sacrum, P partial_disc"
    fig.suptitle(f"SPIDER slices: n_discs/named; flags {legend}, C no_canal", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    fig.savefig(out, dpi=55)
    plt.close(fig)
    return out


def real_anatomy() -> None:
    print("\n3. Real-anatomy phantom (from Menezes-Reis subject 11), Dice against its truth")
    if not REAL:
        print("   ../shared/data/real not found; skipped")
        return
    from t2quant.synth.real_anatomy import make_real_anatomy_phantom

    img = nib.load(REAL[0] / "T2w.nii.gz")
    manual = np.asanyarray(nib.load(REAL[0] / "discs_manual.nii.gz").dataobj).astype(int)
    ph = make_real_anatomy_phantom(np.asanyarray(img.dataobj), manual)
    acq = simulate_mese(ph, CLINICAL, seed=1)
    images = {"T2w FSE": simulate_t2w(ph, CLINICAL, seed=1),
              "MESE 60-120 ms mean": mese_t2w_image(acq.echoes, acq.te_ms)}  # fmt: skip
    for label, image in images.items():
        seg = segment_discs(image, ph.affine)
        parts = []
        for lvl in MANUAL.values():
            found = seg.labels == LEVEL_INDEX[lvl]
            name = INDEX_LEVEL.get(majority(ph.discs[found]), "-")
            truth = ph.discs == LEVEL_INDEX[lvl]
            best = seg.labels == majority(seg.labels[truth])  # the mask on it, any name
            verdict = "ok" if name == lvl else f"on {name}"
            parts.append(f"{lvl} {verdict} {dice(found, truth):.3f} (mask on it "
                         f"{dice(best, truth):.3f})")  # fmt: skip
        print(f"   {label}: " + "; ".join(parts) + f" | flags {list(seg.flags)}")


def _phantom(seed: int, **kw):
    rng = np.random.default_rng([seed, 77])
    grades = sample_grades(rng)
    if seed % 5 == 0:
        grades[LEVELS[int(rng.integers(2, 7))]] = 5
    ph = make_spine_phantom(seed=seed, grades=None if kw else grades, protocol=DEMO, **kw)
    return ph, simulate_t2w(ph, DEMO, seed=seed)


def phantoms(n: int) -> None:
    print(f"\n4. {n} phantoms (demo protocol, SPIDER-model grades; every 5th with a grade-5 "
          "disc; seeds 0..n-1, the training bank used 1000+)")  # fmt: skip
    all_named, dices, alarms = 0, [], 0
    for seed in range(n):
        ph, t2w = _phantom(seed)
        seg = segment_discs(t2w, ph.affine)
        named, d, wrong = check(seg.labels, ph.discs)
        all_named += named
        alarms += bool({"level_uncertain", "transitional_anatomy"} & set(seg.flags))
        dices.append(d)
        print(f"   seed {seed}: named right {named} wrong {wrong} Dice "
              f"{[round(x, 3) for x in d]} flags {list(seg.flags)}")  # fmt: skip
    d = np.array(dices)
    print(f"   every level named right: {all_named}/{n}; false level_uncertain/"
          f"transitional_anatomy: {alarms}/{n}; Dice >= 0.90: {(d >= 0.9).mean():.1%} of "
          f"{d.size} discs; median {np.median(d):.3f}, min {d.min():.3f}")  # fmt: skip


def special(n: int) -> None:
    print(f"\n5. Special anatomy, {n} seeds each (flagged = any of {sorted(ALERT)})")
    for label, kw in (("no T11/T12", {"missing_t11_t12": True}), ("L6", {"extra_lumbar": True})):
        flagged = silent = right = 0
        for seed in range(n):
            ph, t2w = _phantom(seed, **kw)
            seg = segment_discs(t2w, ph.affine)
            _, _, wrong = check(seg.labels, ph.discs)
            flag = bool(ALERT & set(seg.flags))
            flagged += flag
            silent += bool(wrong) and not flag
            right += not wrong
        print(f"   {label:<11} flagged {flagged}/{n}; every named disc right {right}/{n}; "
              f"wrong names without a flag {silent}/{n}")  # fmt: skip


PEAK_SNIPPET = """
import sys, numpy as np, nibabel as nib
from t2quant.segmentation import segment_discs
img = nib.load(sys.argv[1])
segment_discs(np.asanyarray(img.dataobj).astype(np.float32), img.affine,
              orientation=sys.argv[2] or None)
print(int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) // 1024)
"""


def speed() -> None:
    print("\n6. Time and peak memory per image (time: 3 runs here; memory: a fresh process)")
    cases = [("volume", REAL[0] / "T2w.nii.gz", "IPR")] if REAL else []
    if SPIDER.exists():
        cases += [("slice", p, "") for p in sorted(SPIDER.glob("sub-01*/*_T2w.nii.gz"))[:2]]
    for kind, path, orientation in cases:
        img = nib.load(path)
        data = np.asanyarray(img.dataobj).astype(np.float32)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            segment_discs(data, img.affine, orientation=orientation or None)
            times.append(time.perf_counter() - start)
        out = subprocess.run([sys.executable, "-c", PEAK_SNIPPET, str(path), orientation],
                             capture_output=True, text=True, check=True)  # fmt: skip
        print(f"   {kind} {data.shape}: {min(times):.2f}-{max(times):.2f} s; peak RSS "
              f"{out.stdout.strip()} MB (targets: 5 s a volume, 1 s a slice, 2 GB)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="10 seeds, 3 special")
    parser.add_argument("--montage", type=Path, help="write the SPIDER QC montage (PNG) here")
    args = parser.parse_args()
    start = time.time()
    real()
    spider(args.montage)
    real_anatomy()
    phantoms(10 if args.quick else args.seeds)
    special(3 if args.quick else 10)
    speed()
    print(f"\nbench took {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
