"""The disc-appearance network: a disc's look on the T2-weighted image read as a Pfirrmann grade.

A small CNN (three convolution blocks, 72,644 weights) maps a disc patch
(:func:`t2quant.features.patch.disc_patch`) to four ordinal logits, one per cut between
grades (CORAL: ``P(grade > k) = sigmoid(logit_k)``, k = 1..4). It was trained on the
radiologists' grades of the shared SPIDER mid-sagittal slices (``docs/appearance_model_card.md``;
:mod:`t2quant.training.grader` retrains it). Its output is one feature, ``appearance_score``
= ``1 + sum_k P(grade > k)``: the expected grade, 1 (healthy) .. 5. The ordinal grader uses it
next to the measured Pfirrmann criteria and says how much it weighed.

Runs with onnxruntime on CPU; the weights ship in the package (``t2quant/data/
disc_appearance.onnx``); nothing is downloaded and no training framework is imported.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from t2quant.segmentation.network import packaged_session

__all__ = ["WEIGHTS", "appearance_scores"]

WEIGHTS = "disc_appearance.onnx"


def _session():
    """The packaged network in a one-thread CPU onnxruntime session (cached)."""
    return packaged_session(WEIGHTS, 1)


def appearance_scores(patches: NDArray) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Expected grade and the four ``P(grade > k)`` of every patch.

    Parameters
    ----------
    patches : (n, 2, PATCH_H, PATCH_W) array
        Disc patches from :func:`~t2quant.features.patch.disc_patch`.

    Returns
    -------
    score : (n,) float64
        ``1 + sum_k P(grade > k)``, in 1..5 (grade units).
    exceed : (n, 4) float64
        ``P(grade > k)`` for k = 1..4.
    """
    x = np.ascontiguousarray(patches, dtype=np.float32)
    if x.shape[0] == 0:
        return np.zeros(0), np.zeros((0, 4))
    logits = _session().run(None, {"patch": x})[0].astype(np.float64)
    exceed = 1.0 / (1.0 + np.exp(-logits))
    return 1.0 + exceed.sum(axis=1), exceed
