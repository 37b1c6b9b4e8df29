"""Assisted Pfirrmann grading: a suggested grade with its evidence, calibration to a lab's
own manual grades, and reading manual grades."""

from t2quant.pfirrmann.files import load_grader, load_thresholds
from t2quant.pfirrmann.manual import read_manual_grades
from t2quant.pfirrmann.ordinal import OrdinalModel, default_model, grade_ordinal
from t2quant.pfirrmann.suggest import Thresholds, grade_disc, suggest_pfirrmann

__all__ = [
    "OrdinalModel",
    "Thresholds",
    "default_model",
    "grade_disc",
    "grade_ordinal",
    "load_grader",
    "load_thresholds",
    "read_manual_grades",
    "suggest_pfirrmann",
]
