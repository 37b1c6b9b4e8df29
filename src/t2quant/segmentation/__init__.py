"""Whole-disc segmentation and level naming (T11/T12..L5/S1), imports of other tools' masks,
and the files that go with them. Importing this package has no side effects."""

from t2quant.segmentation.core import DiscSegmentation, LevelRecord, segment_discs
from t2quant.segmentation.imports import SCHEMES, import_labels
from t2quant.segmentation.outputs import write_segmentation

__all__ = [
    "SCHEMES",
    "DiscSegmentation",
    "LevelRecord",
    "import_labels",
    "segment_discs",
    "write_segmentation",
]
