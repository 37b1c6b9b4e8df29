"""Input and output: atomic writes, multi-echo readers (BIDS, NIfTI, DICOM), BIDS names and
provenance.

Everything that touches a file path or a file format lives here or in a stage's ``files``
module; the numeric cores never import this package.
"""

from t2quant.io.atomic import (
    atomic_path,
    check_writable,
    read_tsv,
    save_nifti,
    write_json,
    write_tsv,
)

__all__ = [
    "atomic_path",
    "check_writable",
    "read_tsv",
    "save_nifti",
    "write_json",
    "write_tsv",
]
