"""Train the disc-appearance network (:mod:`t2quant.features.appearance`) on radiologists'
grades: ``python -m t2quant.training.grader``.

Data: the shared SPIDER mid-sagittal slices, segmented by the packaged segmenter (the
automatic masks the grader meets at run time; ``--segmentations``, made when missing), and
their radiologists' Pfirrmann grades. Each graded, measured disc gives its patch
(:func:`~t2quant.features.patch.disc_patch`, relative to the session's vertebral-body signal)
and :data:`N_AUGMENTED` more with the sampling grid rotated, zoomed and shifted. The discs of
:data:`N_PHANTOMS` synthetic phantoms (seeds from :data:`PHANTOM_SEED`, far from the demo's
and the tests'; the demo protocol's T2-weighted image; true masks and grades) join every
training set, so the network also reads the project's own phantom; they are never scored.

Training (seeded, CPU): :data:`EPOCHS` epochs of batches of :data:`BATCH` discs, each disc
one of its patches at random with a random gain, offset and noise on the log signal;
AdamW with a one-cycle learning rate; loss: binary cross-entropy of the four ordinal
outputs ("grade > k", CORAL). Outputs in ``--work``:

- ``oof_appearance.tsv``: every disc's ``appearance_score`` from the network of the fold
  that did not see its participant (5 folds by participant, the folds of ``t2quant
  calibrate``): what the packaged ordinal grader is fitted on, so that it weighs the score
  as it behaves on unseen patients;
- ``grader_log.json``: settings, disc counts, seconds per step and the ONNX check (the
  out-of-fold agreement is measured by ``bench/bench_spider_grading.py``);
- the network trained on every disc, exported to ONNX as ``--out`` (default: the package's
  ``t2quant/data/disc_appearance.onnx``) and checked against PyTorch.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from t2quant.features.core import disc_features, mid_slice, session_reference
from t2quant.features.files import canonical_arrays
from t2quant.features.geometry import disc_axes
from t2quant.features.patch import PATCH_H, PATCH_W, disc_patch
from t2quant.io import bids
from t2quant.levels import LEVEL_INDEX
from t2quant.pfirrmann.calibrate import participant_folds
from t2quant.pfirrmann.manual import read_manual_grades

__all__ = [
    "GradedDisc",
    "cross_validated_scores",
    "export",
    "graded_discs",
    "network",
    "scores",
    "train_network",
]

N_AUGMENTED = 16  # augmented patches per disc, besides the plain one
ANGLE_SD_RAD, LOG_ZOOM_SD, SHIFT_SD = 0.08, 0.08, 0.04  # shift: fraction of the disc length
GAIN_SD, OFFSET_SD, NOISE_SD = 0.15, 0.2, 0.05  # on the log signal channel
EPOCHS, BATCH, LR_MAX, WEIGHT_DECAY = 30, 32, 3e-3, 1e-3
FOLDS, FOLD_SEED = 5, 0
PHANTOM_SEED = 20000  # training phantoms: seeds far from the demo's and the tests'
N_PHANTOMS = 40
PACKAGE_WEIGHTS = Path(__file__).resolve().parents[1] / "data" / "disc_appearance.onnx"


@dataclass
class GradedDisc:
    """One graded disc: its keys, the radiologists' grade and its patches
    ``(1 + N_AUGMENTED, 2, PATCH_H, PATCH_W)`` (the plain one first)."""

    participant_id: str
    session: str
    level: str
    grade: int
    patches: np.ndarray


def _patches(t2w, labels, voxel_mm, level: str, reference: float, rng) -> np.ndarray:
    mask = labels == LEVEL_INDEX[level]
    z = mid_slice(mask)
    plane, pixel = mask[:, :, z], voxel_mm[:2]
    axes = disc_axes(plane, pixel)
    length = float(np.ptp(axes.project(np.argwhere(plane) * pixel)[0]))
    out = [disc_patch(t2w[:, :, z], plane, axes, pixel, reference)]
    for _ in range(N_AUGMENTED):
        out.append(disc_patch(
            t2w[:, :, z], plane, axes, pixel, reference,
            angle_rad=rng.normal(0, ANGLE_SD_RAD), scale=float(np.exp(rng.normal(0, LOG_ZOOM_SD))),
            shift_mm=tuple(rng.normal(0, SHIFT_SD * length, 2)),
        ))  # fmt: skip
    return np.stack(out)


def graded_discs(
    sessions: list[tuple[Path, Path]], grades: Path, seed: int = 0
) -> list[GradedDisc]:
    """The graded, measured discs of ``sessions`` (``(T2w image, disc labels)`` pairs, BIDS
    names), with their patches (augmentation seeded by ``seed``)."""
    manual, _ = read_manual_grades(grades)
    grade_of = {
        (r.participant_id, r.session, r.level): int(r.pfirrmann) for r in manual.itertuples()
    }
    rng = np.random.default_rng(seed)
    out = []
    for image, labels in sessions:
        arrays = canonical_arrays([image], labels)
        frame = arrays.frame
        table = disc_features(arrays.labels, frame.data, frame.voxel_mm, appearance=False)
        ref = session_reference(table)
        pid, ses = bids.participant_session(arrays.source.stem)
        for row in table.itertuples():
            grade = grade_of.get((pid, ses, row.level))
            if grade is None or row.qc_status != "ok" or not np.isfinite(ref):
                continue
            patches = _patches(frame.data, arrays.labels, frame.voxel_mm, row.level, ref, rng)
            out.append(GradedDisc(pid, ses, row.level, grade, patches))
    return out


def phantom_discs(n: int, first_seed: int = PHANTOM_SEED) -> list[GradedDisc]:
    """The discs of ``n`` synthetic phantoms (seeds ``first_seed`` ..; the demo protocol's
    simulated T2-weighted image, the true disc masks, grades drawn from the SPIDER grade
    model), with their true grades and patches, as :func:`graded_discs` makes them."""
    from t2quant.segmentation.frame import to_canonical
    from t2quant.synth import DEMO, make_spine_phantom, simulate_t2w
    from t2quant.synth.grades import sample_grades

    out = []
    for seed in range(first_seed, first_seed + n):
        rng = np.random.default_rng([seed, 18])
        ph = make_spine_phantom(seed=seed, grades=sample_grades(rng), protocol=DEMO)
        frame = to_canonical(simulate_t2w(ph, DEMO, seed=seed), ph.affine)
        labels = np.rint(to_canonical(ph.discs.astype(np.float32), ph.affine).data).astype(int)
        table = disc_features(labels, frame.data, frame.voxel_mm, appearance=False)
        ref = session_reference(table)
        for row in table.itertuples():
            if row.qc_status == "ok" and np.isfinite(ref):
                patches = _patches(frame.data, labels, frame.voxel_mm, row.level, ref, rng)
                out.append(GradedDisc(f"phantom-{seed}", "", row.level, ph.grades[row.level],
                                      patches))  # fmt: skip
    return out


def network() -> nn.Module:
    """Three blocks of two 3 x 3 convolutions (16, 32, 64 channels; batch norm, ReLU, 2 x 2
    max pooling), global average pooling, dropout 0.3, four ordinal logits."""

    def block(a: int, b: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(),
            nn.Conv2d(b, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip

    return nn.Sequential(block(2, 16), block(16, 32), block(32, 64), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Dropout(0.3), nn.Linear(64, 4))  # fmt: skip


def _ordinal_loss(logits: torch.Tensor, grades: np.ndarray) -> torch.Tensor:
    above = torch.as_tensor(grades)[:, None] > torch.arange(1, 5)[None, :]
    return nn.functional.binary_cross_entropy_with_logits(logits, above.float())


def _batch(discs: list[GradedDisc], idx: np.ndarray, rng) -> torch.Tensor:
    pick = rng.integers(0, discs[0].patches.shape[0], idx.size)
    x = np.stack([discs[i].patches[j] for i, j in zip(idx, pick, strict=True)]).copy()
    x[:, 0] *= np.exp(rng.normal(0, GAIN_SD, (idx.size, 1, 1)))
    x[:, 0] += rng.normal(0, OFFSET_SD, (idx.size, 1, 1))
    x[:, 0] += rng.normal(0, NOISE_SD, x[:, 0].shape)
    return torch.from_numpy(x.astype(np.float32))


def train_network(discs: list[GradedDisc], seed: int, epochs: int = EPOCHS) -> nn.Module:
    """The network trained on ``discs`` (seeded: weights, batches and augmentation)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 7])
    model = network()
    grades = np.array([d.grade for d in discs])
    steps = epochs * -(-len(discs) // BATCH)
    opt = torch.optim.AdamW(model.parameters(), LR_MAX / 3, weight_decay=WEIGHT_DECAY)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, LR_MAX, total_steps=steps)
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(discs))
        for start in range(0, len(order), BATCH):
            idx = order[start : start + BATCH]
            loss = _ordinal_loss(model(_batch(discs, idx, rng)), grades[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def scores(model: nn.Module, patches: np.ndarray) -> np.ndarray:
    """``appearance_score`` (1 + sum of P(grade > k)) of plain patches ``(n, 2, H, W)``."""
    with torch.no_grad():
        p = torch.sigmoid(model(torch.from_numpy(np.ascontiguousarray(patches, np.float32))))
    return 1.0 + p.numpy().astype(np.float64).sum(axis=1)


def cross_validated_scores(discs: list[GradedDisc], *, extra: list[GradedDisc] = (),
                           folds: int = FOLDS, seed: int = 0,
                           epochs: int = EPOCHS) -> np.ndarray:  # fmt: skip
    """Every disc's score from the network of the fold without its participant (the
    participant folds of ``t2quant calibrate``, seed :data:`FOLD_SEED`); ``extra`` discs
    (the phantoms) join every fold's training and are never scored."""
    fold = participant_folds([d.participant_id for d in discs], folds, FOLD_SEED)
    out = np.full(len(discs), np.nan)
    for k in np.unique(fold):
        train = [d for d, f in zip(discs, fold, strict=True) if f != k] + list(extra)
        test = np.flatnonzero(fold == k)
        model = train_network(train, seed + 1 + int(k), epochs)
        out[test] = scores(model, np.stack([discs[i].patches[0] for i in test]))
    return out


def export(model: nn.Module, out: Path) -> dict:
    """Write the network as ONNX (input ``patch`` ``(n, 2, PATCH_H, PATCH_W)``, output
    ``logits`` ``(n, 4)``; opset 17) and compare onnxruntime with PyTorch on seeded input."""
    import onnxruntime as ort

    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, torch.zeros(1, 2, PATCH_H, PATCH_W), str(out), input_names=["patch"],
                      output_names=["logits"], opset_version=17, dynamo=False,
                      dynamic_axes={"patch": {0: "n"}, "logits": {0: "n"}})  # fmt: skip
    x = np.random.default_rng(0).normal(0, 0.5, (8, 2, PATCH_H, PATCH_W)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(
        None, {"patch": x}
    )[0]
    return {"max_abs_logit_diff": float(np.abs(ref - got).max()), "bytes": out.stat().st_size}


def spider_sessions(spider: Path, segmentations: Path) -> list[tuple[Path, Path]]:
    """``(image, labels)`` of every SPIDER slice, segmenting the ones not yet segmented."""
    from t2quant.segmentation.files import segment_to_files

    out = []
    for pid in pd.read_csv(spider / "participants.tsv", sep="\t")["participant_id"]:
        image = spider / pid / f"{pid}_T2w.nii.gz"
        labels = segmentations / pid / f"{pid}_dseg.nii.gz"
        if not labels.exists():
            segment_to_files([image], labels.parent, threads=1)
        out.append((image, labels))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m t2quant.training.grader",
                                 description=__doc__.splitlines()[0])  # fmt: skip
    ap.add_argument(
        "--spider", type=Path, default=Path("../shared/data/real/spider-midsagittal-t2")
    )
    ap.add_argument("--grades", type=Path, default=Path(
        "../shared/data/reference/spider-gradings/radiological_gradings.csv"))  # fmt: skip
    ap.add_argument("--segmentations", type=Path, default=Path("build/spider/seg"),
                    help="automatic masks <DIR>/<participant>/<participant>_dseg.nii.gz (made "
                    "with the packaged segmenter when missing)")  # fmt: skip
    ap.add_argument("--work", type=Path, default=Path("build/grader"))
    ap.add_argument("--out", type=Path, default=PACKAGE_WEIGHTS, help="the ONNX file written")
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--phantoms", type=int, default=N_PHANTOMS,
                    help="synthetic phantoms whose discs join every training set")  # fmt: skip
    args = ap.parse_args(argv)
    for path in (args.spider / "participants.tsv", args.grades):
        if not path.is_file():
            ap.error(f"{path} not found; pass --spider and --grades (the shared SPIDER data)")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2") or 2))
    start = time.perf_counter()
    discs = graded_discs(spider_sessions(args.spider, args.segmentations), args.grades)
    phantoms = phantom_discs(args.phantoms)
    prepared = time.perf_counter()
    oof = cross_validated_scores(discs, extra=phantoms, epochs=args.epochs)
    crossed = time.perf_counter()
    model = train_network(discs + phantoms, seed=0, epochs=args.epochs)
    check = export(model, args.out)
    args.work.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(
        {
            "participant_id": [d.participant_id for d in discs],
            "session": [d.session for d in discs],
            "level": [d.level for d in discs],
            "appearance_score": np.round(oof, 6),
        }
    )
    table.to_csv(args.work / "oof_appearance.tsv", sep="\t", index=False)
    log = {"n_discs": len(discs), "n_participants": len({d.participant_id for d in discs}),
           "n_phantom_discs": len(phantoms), "phantom_seeds": [PHANTOM_SEED,
                                                               PHANTOM_SEED + args.phantoms - 1],
           "epochs": args.epochs, "folds": FOLDS, "fold_seed": FOLD_SEED,
           "seconds": {"patches": prepared - start, "cross_validation": crossed - prepared,
                       "final": time.perf_counter() - crossed},
           "export": check, "threads": torch.get_num_threads()}  # fmt: skip
    (args.work / "grader_log.json").write_text(json.dumps(log, indent=2) + "\n")
    print(json.dumps(log))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
