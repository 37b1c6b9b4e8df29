"""``python -m t2quant.training``: the whole retraining pipeline in one command.

Bank (60 phantom anatomies, seeds 1000..1059) -> stage 1 (2000 iterations, seed 0) ->
stage 2 (1000 iterations, seed 1, from stage 1) -> fine-tuning on the ``--real`` volumes
with manual disc masks (the shipped model: the three Menezes-Reis volumes; see
:mod:`t2quant.training.finetune`) -> ONNX export (checked against PyTorch) into ``--out``
(default: the package's ``t2quant/data/discseg.onnx``). About 1.9 h on one core. Without
``--real`` the synthetic-only stage-2 model is exported. ``--smoke`` runs every step tiny
(1 anatomy, 2 iterations) to check the code path.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from t2quant.training.bank import FIRST_SEED, N_ENTRIES, build_bank
from t2quant.training.export import compare, export
from t2quant.training.finetune import FINETUNE_RUN, finetune
from t2quant.training.train import STAGE1_RUN, STAGE2_RUN, train

PACKAGE_WEIGHTS = Path(__file__).resolve().parents[1] / "data" / "discseg.onnx"


def main(argv: list[str] | None = None) -> int:
    """Run bank, stage 1, stage 2 and export; print the export check as JSON."""
    ap = argparse.ArgumentParser(prog="python -m t2quant.training", description=__doc__)
    ap.add_argument("--work", type=Path, default=Path("build/segmenter"), help="bank and runs")
    ap.add_argument("--out", type=Path, default=PACKAGE_WEIGHTS, help="the ONNX file written")
    ap.add_argument("--real", type=Path, nargs="*", default=[], metavar="DIR",
                    help="folders with T2w.nii.gz + discs_manual.nii.gz (orientation IPR) "
                    "to fine-tune on")  # fmt: skip
    ap.add_argument("--smoke", action="store_true", help="tiny run of every step")
    args = ap.parse_args(argv)
    missing = [d for d in args.real if not (d / "discs_manual.nii.gz").is_file()]
    if missing:
        ap.error(
            f"{missing[0]}: no discs_manual.nii.gz there; pass folders of real volumes "
            "with manual disc masks (e.g. ../shared/data/real/menezes-reis-ivd-11)"
        )
    n = 1 if args.smoke else N_ENTRIES
    stage1, stage2, stage3 = STAGE1_RUN, STAGE2_RUN, FINETUNE_RUN
    if args.smoke:
        tiny = {"iters": 2, "batch": 2, "log_every": 1, "bank_limit": 1}
        stage1, stage2, stage3 = (replace(r, **tiny) for r in (stage1, stage2, stage3))
    bank = args.work / "bank"
    build_bank(bank, n, FIRST_SEED)
    w1 = train(stage1, bank, args.work / "stage1")
    weights = train(stage2, bank, args.work / "stage2", init=w1)
    if args.real:
        weights = finetune(stage3, bank, args.real, args.work / "finetune", init=weights)
    export(weights, args.out)
    print(json.dumps(compare(weights, args.out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
