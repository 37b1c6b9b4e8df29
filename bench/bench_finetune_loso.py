"""Leave-one-volume-out check of the segmenter's fine-tuning on the Menezes-Reis volumes.

For each of the three volumes in ``../shared/data/real/menezes-reis-ivd-*``: fine-tune the
stage-2 weights on the other two with the shipped settings
(:data:`t2quant.training.finetune.FINETUNE_RUN`), export to ONNX, and print the held-out
volume's Dice per disc with the segmentation bench's own code. Needs the ``train`` extra and
the stage-2 weights of ``make train-segmenter`` (``build/segmenter/stage2/model.pt``);
about 8 minutes per fold on one core::

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_finetune_loso.py [--work build/segmenter]
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_segmentation as bench
import t2quant.segmentation.network as network


def use_weights(path: Path) -> None:
    """Make ``segment_discs`` run the ONNX file at ``path`` instead of the packaged one."""
    import onnxruntime as ort

    @functools.lru_cache(maxsize=4)
    def session(threads: int):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    network.session = session


def main() -> None:
    from t2quant.training.export import export
    from t2quant.training.finetune import FINETUNE_RUN, finetune

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("build/segmenter"))
    args = ap.parse_args()
    init = args.work / "stage2" / "model.pt"
    folders = sorted(bench.REAL)
    if not init.is_file() or not folders:
        sys.exit(f"needs {init} (make train-segmenter) and ../shared/data/real/menezes-reis-ivd-*")
    scores: list[float] = []
    for held in folders:
        train_on = [f for f in folders if f != held]
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            weights = finetune(FINETUNE_RUN, args.work / "bank", train_on, out, init=init)
            use_weights(export(weights, out / "discseg.onnx"))
            bench.REAL[:] = [held]
            scores += bench.real()
    d = np.array(scores)
    print(
        f"\nheld out in turn: Dice mean {d.mean():.3f}, min {d.min():.3f}, "
        f"discs >= 0.85: {(d >= 0.85).sum()}/{d.size}"
    )


if __name__ == "__main__":
    main()
