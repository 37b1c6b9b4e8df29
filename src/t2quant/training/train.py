"""Train the U-Net on generated images only: seeded, every batch freshly generated.

Each iteration draws a batch from :func:`t2quant.training.generator.sample` (no image is ever
reused) and minimises cross-entropy plus soft Dice over the foreground classes with AdamW
(weight decay 1e-4) and a one-cycle learning rate, on one thread. Every ``log_every``
iterations it prints the running loss, the Dice of classes 1..5 on fixed generated
validation batches and the elapsed time, and saves ``model.pt``; ``model_it<N>.pt`` every 500.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from t2quant.segmentation.network import N_CLASSES
from t2quant.training.generator import STAGE1, STAGE2, Bank, sample
from t2quant.training.model import WIDTHS, UNet

__all__ = ["STAGE1_RUN", "STAGE2_RUN", "Run", "fit", "optimiser", "tensors", "train"]


@dataclass(frozen=True)
class Run:
    """One training run's settings (the shipped model: :data:`STAGE1_RUN`, then
    :data:`STAGE2_RUN` from its weights)."""

    iters: int
    lr: float
    seed: int
    stage2: bool = False
    batch: int = 8
    bank_limit: int | None = 60
    log_every: int = 100
    checkpoint_every: int = 500


STAGE1_RUN = Run(iters=2000, lr=3e-3, seed=0)
STAGE2_RUN = Run(iters=1000, lr=1e-3, seed=1, stage2=True)


def batch(bank: Bank, rng: np.random.Generator, size: int, stage2: bool):
    """A batch of generated (image, target) pairs as tensors ``(N, 1, H, W)``, ``(N, H, W)``."""
    return tensors([sample(bank, rng, STAGE2 if stage2 else STAGE1) for _ in range(size)])


def tensors(pairs: list) -> tuple[torch.Tensor, torch.Tensor]:
    """(image, target) pairs as a batch: float32 ``(N, 1, H, W)`` and int64 ``(N, H, W)``."""
    x = torch.from_numpy(np.stack([p[0] for p in pairs])[:, None].astype(np.float32))
    y = torch.from_numpy(np.stack([p[1] for p in pairs]).astype(np.int64))
    return x, y


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - mean soft Dice over the foreground classes present in the batch."""
    prob = logits.softmax(1)
    onehot = nn.functional.one_hot(target, N_CLASSES).permute(0, 3, 1, 2).float()
    inter = (prob * onehot).sum((0, 2, 3))[1:]
    denom = (prob + onehot).sum((0, 2, 3))[1:]
    present = onehot.sum((0, 2, 3))[1:] > 0
    dice = (2 * inter + 1.0) / (denom + 1.0)
    return 1.0 - dice[present].mean() if present.any() else logits.sum() * 0.0


def hard_dice(model: nn.Module, val: list) -> list[float]:
    """Dice of classes 1..N-1 over the validation batches (eval mode)."""
    model.eval()
    inter, total = np.zeros(N_CLASSES), np.zeros(N_CLASSES)
    with torch.no_grad():
        for x, y in val:
            pred = model(x).argmax(1)
            for c in range(1, N_CLASSES):
                inter[c] += ((pred == c) & (y == c)).sum().item()
                total[c] += (pred == c).sum().item() + (y == c).sum().item()
    model.train()
    return [round(float(2 * inter[c] / max(total[c], 1)), 3) for c in range(1, N_CLASSES)]


def _setup(run: Run, bank_dir: Path, out: Path, init: Path | None):
    """Seeds, bank, validation batches, model, optimiser and schedule of one run."""
    torch.set_num_threads(1)
    torch.manual_seed(run.seed)
    out.mkdir(parents=True, exist_ok=True)
    bank = Bank.load(bank_dir, run.bank_limit)
    val = [batch(bank, np.random.default_rng([run.seed, 99, i]), 8, run.stage2) for i in range(4)]
    model = UNet(WIDTHS)
    if init is not None:
        model.load_state_dict(torch.load(init))
    opt, sched = optimiser(run, model)
    config = asdict(run) | {"bank": str(bank_dir), "init": str(init), "bank_entries": len(bank)}
    (out / "config.json").write_text(json.dumps(config, indent=1))
    return bank, val, model, opt, sched


def optimiser(run: Run, model: nn.Module, pct_start: float = 0.05):
    """AdamW (weight decay 1e-4) and its one-cycle schedule peaking at ``run.lr``."""
    opt = torch.optim.AdamW(model.parameters(), lr=run.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, run.lr, total_steps=run.iters, pct_start=pct_start
    )
    return opt, sched


def fit(run: Run, model: nn.Module, opt, sched, next_batch, out: Path, *, what: str = "training",
        describe=lambda: "") -> Path:  # fmt: skip
    """The loop of every run: ``run.iters`` steps of cross-entropy + soft Dice on
    ``next_batch()``; every ``log_every`` steps a line (mean loss, ``describe()``, time) and
    ``model.pt``, every ``checkpoint_every`` steps ``model_it<N>.pt``. Returns the weights."""
    t0, running = time.time(), []
    for it in range(1, run.iters + 1):
        x, y = next_batch()
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y) + dice_loss(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        running.append(loss.item())
        if it % run.log_every == 0 or it == run.iters:
            print(f"it {it} loss {np.mean(running):.4f} {describe()}{time.time() - t0:.0f} s",
                  flush=True)  # fmt: skip
            running = []
            torch.save(model.state_dict(), out / "model.pt")
        if it % run.checkpoint_every == 0:
            torch.save(model.state_dict(), out / f"model_it{it}.pt")
    print(f"{what} done in {time.time() - t0:.0f} s", flush=True)
    return out / "model.pt"


def train(run: Run, bank_dir: Path, out: Path, init: Path | None = None) -> Path:
    """Train one run into ``out`` (``config.json``, ``model.pt``, checkpoints); returns the
    final weights."""
    bank, val, model, opt, sched = _setup(run, bank_dir, out, init)
    rng = np.random.default_rng(run.seed)
    return fit(run, model, opt, sched, lambda: batch(bank, rng, run.batch, run.stage2), out,
               describe=lambda: f"val dice {hard_dice(model, val)} bank {len(bank)} ")  # fmt: skip
