"""Disc features: the measurements a Pfirrmann grader looks at, and disc T2.

:func:`disc_features` is the numeric core (arrays in, table out);
:mod:`t2quant.features.files` loads images, reorients them and writes the table.
"""

from t2quant.features.core import FEATURE_COLUMNS, disc_features

__all__ = ["FEATURE_COLUMNS", "disc_features"]
