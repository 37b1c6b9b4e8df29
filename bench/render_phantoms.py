"""Render mid-sagittal pictures of the geometric phantom for docs/.

Shows the simulated T2-weighted FSE image and the 4th MESE echo at each uniform grade
(1..5), a mixed spine, a sixth lumbar vertebra and a field of view without T11/T12.

Run:  .venv/bin/python bench/render_phantoms.py --out docs/phantom_grades.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from t2quant.levels import LEVELS
from t2quant.synth import CLINICAL, make_spine_phantom, simulate_mese, simulate_t2w

CASES = [
    ("all grade 1", {"grades": dict.fromkeys(LEVELS, 1)}),
    ("all grade 2", {"grades": dict.fromkeys(LEVELS, 2)}),
    ("all grade 3", {"grades": dict.fromkeys(LEVELS, 3)}),
    ("all grade 4", {"grades": dict.fromkeys(LEVELS, 4)}),
    ("all grade 5", {"grades": dict.fromkeys(LEVELS, 5)}),
    ("mixed 1-2-2-2-3-4-5", {"grades": dict(zip(LEVELS, (1, 2, 2, 2, 3, 4, 5), strict=True))}),
    ("sixth lumbar (L6)", {"extra_lumbar": True}),
    ("no T11/T12 in view", {"missing_t11_t12": True}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/phantom_grades.png"))
    parser.add_argument("--seed", type=int, default=2)
    args = parser.parse_args()
    fig, axes = plt.subplots(2, len(CASES), figsize=(2.6 * len(CASES), 8.2))
    for col, (title, kwargs) in enumerate(CASES):
        ph = make_spine_phantom(seed=args.seed, protocol=CLINICAL, **kwargs)
        mid = ph.t2_ms.shape[2] // 2
        t2w = simulate_t2w(ph, CLINICAL, seed=col)[:, :, mid]
        echo = simulate_mese(ph, CLINICAL, seed=col).echoes[:, :, mid, 3]
        for row, (img, label) in enumerate(((t2w, "T2w FSE"), (echo, "MESE echo 4 (40 ms)"))):
            ax = axes[row, col]
            ax.imshow(
                img.T, cmap="gray", vmin=0, vmax=np.percentile(img, 99.7), interpolation="nearest"
            )
            ax.set_title(f"{title}\n{label}" if row == 0 else label, fontsize=9)
            ax.axis("off")
    fig.suptitle(
        "t2quant synthetic lumbar phantom, mid-sagittal (anterior left, superior up); "
        "0.8 mm in plane, 4 mm slices",
        fontsize=11,
    )
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
