"""``python -m t2quant.training``: the whole retraining pipeline in one command.

Bank (60 phantom anatomies, seeds 1000..1059) -> stage 1 (2000 iterations, seed 0) ->
stage 2 (1000 iterations, seed 1, from stage 1) -> ONNX export (checked against PyTorch)
into ``--out`` (default: the package's ``t2quant/data/discseg.onnx``). About 1.7 h on one
core. ``--smoke`` runs every step tiny (1 anatomy, 2 iterations) to check the code path.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from t2quant.training.bank import FIRST_SEED, N_ENTRIES, build_bank
from t2quant.training.export import compare, export
from t2quant.training.train import STAGE1_RUN, STAGE2_RUN, train

PACKAGE_WEIGHTS = Path(__file__).resolve().parents[1] / "data" / "discseg.onnx"


def main(argv: list[str] | None = None) -> int:
    """Run bank, stage 1, stage 2 and export; print the export check as JSON."""
    ap = argparse.ArgumentParser(prog="python -m t2quant.training", description=__doc__)
    ap.add_argument("--work", type=Path, default=Path("build/segmenter"), help="bank and runs")
    ap.add_argument("--out", type=Path, default=PACKAGE_WEIGHTS, help="the ONNX file written")
    ap.add_argument("--smoke", action="store_true", help="tiny run of every step")
    args = ap.parse_args(argv)
    n = 1 if args.smoke else N_ENTRIES
    stage1, stage2 = STAGE1_RUN, STAGE2_RUN
    if args.smoke:
        tiny = {"iters": 2, "batch": 2, "log_every": 1, "bank_limit": 1}
        stage1, stage2 = replace(stage1, **tiny), replace(stage2, **tiny)
    bank = args.work / "bank"
    build_bank(bank, n, FIRST_SEED)
    w1 = train(stage1, bank, args.work / "stage1")
    w2 = train(stage2, bank, args.work / "stage2", init=w1)
    export(w2, args.out)
    print(json.dumps(compare(w2, args.out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
