"""Label codes of the bank's sagittal label slices, and their network classes.

The codes 0..14 are the phantom's tissues (:class:`t2quant.synth.tissues.Tissue`); sacral
bone and the nerve roots below the conus are split off so that the network can learn the
sacrum and the end of the cord; :attr:`Label.CLUTTER` marks the generator's distractors.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from t2quant.segmentation.network import Cls
from t2quant.synth.tissues import Tissue

__all__ = ["LABEL_TO_CLASS", "N_LABELS", "Label", "label_to_class"]


class Label(IntEnum):
    """Label codes of a bank slice: the phantom's tissue codes, then the bank's own."""

    AIR = Tissue.BACKGROUND
    CSF = Tissue.CSF
    CORD = Tissue.CORD
    NUCLEUS = Tissue.NUCLEUS
    ANNULUS = Tissue.ANNULUS
    MARROW = Tissue.MARROW
    ENDPLATE = Tissue.ENDPLATE
    POSTERIOR = Tissue.POSTERIOR_ELEMENTS
    MUSCLE = Tissue.MUSCLE
    FAT = Tissue.FAT
    SOFT = Tissue.SOFT_TISSUE
    VESSEL = Tissue.VESSEL
    LIGAMENT = Tissue.LIGAMENT
    SACRAL_REMNANT = Tissue.SACRAL_REMNANT_DISC
    CORTEX = Tissue.CORTEX
    SACRAL_MARROW = 15
    SACRAL_CORTEX = 16
    ROOTS = 17
    CLUTTER = 18  # random distractor blobs added by the generator (bowel, vessels, ...)


N_LABELS = len(Label)

LABEL_TO_CLASS = np.zeros(256, np.uint8)
LABEL_TO_CLASS[[Label.NUCLEUS, Label.ANNULUS]] = Cls.DISC
LABEL_TO_CLASS[[Label.MARROW, Label.ENDPLATE, Label.CORTEX]] = Cls.BODY
LABEL_TO_CLASS[[Label.SACRAL_MARROW, Label.SACRAL_CORTEX, Label.SACRAL_REMNANT]] = Cls.SACRUM
LABEL_TO_CLASS[[Label.CSF, Label.ROOTS]] = Cls.CANAL
LABEL_TO_CLASS[Label.CORD] = Cls.CORD


def label_to_class(labels: NDArray) -> NDArray[np.uint8]:
    """Network target classes of a label map (any shape)."""
    return LABEL_TO_CLASS[labels]
