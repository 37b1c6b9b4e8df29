"""Fine-tune the synthetic-trained U-Net on real volumes with manual disc masks.

Synthetic-only training names the real discs but draws their lateral ends differently from
the raters (see the model card). This step continues from the stage-2 weights with every
batch half generated (the stage-2 generator, so nothing learned there is forgotten) and half
real sagittal slices of volumes with manual whole-disc masks (the Menezes-Reis volumes in
``../shared``). A real slice's target is the manual mask for the disc class; the other
classes, which no rater drew, are the stage-2 network's own labels ("pseudo-labels"), except
that its disc pixels within :data:`OVERREACH_MM` of a manual disc take its best non-disc
class (the rater said: not disc). Discs far from every manual disc (T12/L1 and above, not
labelled) keep the network's disc label.

Real slices get the generator's geometry (:func:`~t2quant.training.generator.sample_geometry`:
patch centred on the spine, scale, rotation, elastic warp), a random gamma and the run-time
normalisation (:mod:`t2quant.training.real`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from t2quant.segmentation.network import MULTIPLE, Cls, normalise
from t2quant.training.generator import STAGE2, Bank, sample
from t2quant.training.model import WIDTHS, UNet
from t2quant.training.real import RealVolume, pseudo_target, real_sample, to_network_grid
from t2quant.training.train import Run, fit, optimiser, tensors

__all__ = ["FINETUNE_RUN", "finetune", "load_real"]

REAL_SHARE = 0.5  # share of each batch taken from the real slices
FINETUNE_RUN = Run(iters=400, lr=3e-4, seed=2, stage2=True)


def _probabilities(model: UNet, image: np.ndarray) -> np.ndarray:
    """Class probabilities ``(C, SI, AP, LR)`` of every sagittal slice (run-time contract)."""
    h, w, n = image.shape
    pad = [(0, -h % MULTIPLE), (0, -w % MULTIPLE)]
    out = np.empty((len(Cls), h, w, n), np.float32)
    model.eval()
    with torch.no_grad():
        for k in range(n):
            x = normalise(np.pad(np.maximum(image[:, :, k], 0.0), pad))[None, None]
            out[..., k] = model(torch.from_numpy(x)).softmax(1)[0, :, :h, :w].numpy()
    model.train()
    return out


def load_real(folders: list[Path], model: UNet, orientation: str = "IPR") -> list[RealVolume]:
    """The real volumes (``T2w.nii.gz`` + ``discs_manual.nii.gz`` per folder) with targets."""
    out = []
    for folder in folders:
        image, spacing = to_network_grid(folder / "T2w.nii.gz", orientation, 1)
        manual, _ = to_network_grid(folder / "discs_manual.nii.gz", orientation, 0)
        manual = np.rint(manual).astype(np.int16)
        target = pseudo_target(_probabilities(model, image), manual, spacing)
        weights = np.where((manual > 0).any((0, 1)), 3.0, 1.0)
        out.append(RealVolume(folder.name, image, manual, target, weights / weights.sum()))
    return out


def _batch(bank: Bank, volumes: list[RealVolume], rng, size: int):
    n_real = round(REAL_SHARE * size)
    pairs = [real_sample(volumes, rng) for _ in range(n_real)]
    return tensors(pairs + [sample(bank, rng, STAGE2) for _ in range(size - n_real)])


def finetune(run: Run, bank_dir: Path, folders: list[Path], out: Path, init: Path) -> Path:
    """Continue ``init`` on half generated, half real batches; returns the weights."""
    torch.set_num_threads(1)
    torch.manual_seed(run.seed)
    out.mkdir(parents=True, exist_ok=True)
    model = UNet(WIDTHS)
    model.load_state_dict(torch.load(init))
    volumes = load_real(folders, model)
    bank = Bank.load(bank_dir, run.bank_limit)
    opt, sched = optimiser(run, model, pct_start=0.1)
    rng = np.random.default_rng(run.seed)
    print(f"fine-tuning on {[v.name for v in volumes]}", flush=True)
    return fit(run, model, opt, sched, lambda: _batch(bank, volumes, rng, run.batch), out,
               what="fine-tuning")  # fmt: skip
