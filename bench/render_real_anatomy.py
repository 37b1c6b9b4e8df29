"""Render the real-anatomy phantom: original T2w, tissue map, true T2 and simulated MESE echoes.

Reads the Menezes-Reis et al. (QIMS 2016, doi:10.21037/qims.2016.08.01) lumbar T2w volume and
its manual disc masks from ../shared/data (never copied into the repository), builds
:func:`t2quant.synth.real_anatomy.make_real_anatomy_phantom`, simulates a 12-echo MESE with a
smooth B1 field, and saves one mid-sagittal figure (superior up, anterior left)::

    python bench/render_real_anatomy.py --out docs/real_anatomy_phantom.png
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from t2quant.levels import INDEX_LEVEL
from t2quant.synth import Protocol, simulate_mese
from t2quant.synth.real_anatomy import make_real_anatomy_phantom
from t2quant.synth.tissues import TISSUES, Tissue

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "menezes-reis-ivd-11"
CITATION = (
    "Data: Menezes-Reis et al., Quant Imaging Med Surg 2016;6(4):402-412, "
    "doi:10.21037/qims.2016.08.01 (subject 11)"
)


def sagittal(vol: np.ndarray, x: int) -> np.ndarray:
    """Sagittal plane ``x`` of an IPR array, shown superior up and anterior left."""
    return vol[:, :, x]  # rows: axis 0 (superior -> inferior), columns: axis 1 (A -> P)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder with the two NIfTIs")
    parser.add_argument("--out", type=Path, default=Path("docs/real_anatomy_phantom.png"))
    parser.add_argument(
        "--slice",
        type=int,
        default=None,
        help="sagittal slice (axis 2); default: centre of the disc masks",
    )
    parser.add_argument("--snr", type=float, default=150.0)
    parser.add_argument("--dpi", type=int, default=110)
    args = parser.parse_args(argv)

    t2w = np.asarray(nib.load(args.data / "T2w.nii.gz").dataobj)
    labels = np.asarray(nib.load(args.data / "discs_manual.nii.gz").dataobj)
    t0 = time.perf_counter()
    phantom = make_real_anatomy_phantom(t2w, labels, voxel_mm=(1.0, 1.0, 1.0), axcodes="IPR")
    t_build = time.perf_counter() - t0
    x = args.slice if args.slice is not None else round(np.argwhere(labels > 0)[:, 2].mean())
    # Simulate only a slab around the shown plane (the simulation is per voxel); the slab's
    # affine starts at its first slice so the B1 field is sampled where the slab lies.
    lo, hi = max(0, x - 3), min(t2w.shape[2], x + 4)
    affine = phantom.affine.copy()
    affine[:3, 3] = phantom.affine[:3, :3] @ np.array([0.0, 0.0, lo]) + phantom.affine[:3, 3]
    maps = ("tissue", "discs", "t2_ms", "t1_ms", "pd")
    slab = replace(phantom, affine=affine, **{k: getattr(phantom, k)[:, :, lo:hi] for k in maps})
    protocol = Protocol(n_echoes=12, esp_ms=10.0)
    t0 = time.perf_counter()
    mese = simulate_mese(slab, protocol, snr=args.snr, seed=1, psf_fwhm_vox=(1.0, 1.0, 1.0))
    t_sim = time.perf_counter() - t0
    b1 = mese.b1[:, :, x - lo]
    echo = mese.echoes[:, :, x - lo, :]

    codes = sorted(TISSUES)
    cmap = ListedColormap([TISSUES[c].color for c in codes])
    fig, axes = plt.subplots(1, 5, figsize=(20, 5.0), constrained_layout=True)
    img = sagittal(t2w.astype(float), x)
    axes[0].imshow(img, cmap="gray", vmin=0, vmax=np.percentile(img, 99.5))
    axes[0].set_title("real T2w (FSE, 1.5 T)")
    tissue = sagittal(phantom.tissue, x)
    axes[1].imshow(tissue, cmap=cmap, vmin=-0.5, vmax=len(codes) - 0.5, interpolation="nearest")
    discs = sagittal(phantom.discs, x)
    axes[1].contour(discs > 0, [0.5], colors="k", linewidths=0.6)
    for idx in np.unique(discs[discs > 0]):
        r, c = np.argwhere(discs == idx).mean(axis=0)
        axes[1].text(
            c - 28,
            r,
            INDEX_LEVEL[int(idx)],
            fontsize=7,
            ha="right",
            va="center",
            color="w",
            bbox={"fc": "k", "alpha": 0.5, "pad": 1, "lw": 0},
        )
    shown = [Tissue(int(c)) for c in np.unique(tissue)]
    axes[1].legend(
        handles=[Patch(color=TISSUES[c].color, label=c.name.lower()) for c in shown],
        loc="lower left",
        fontsize=6,
        framealpha=0.8,
        ncol=2,
    )
    axes[1].set_title("derived tissue map (+ manual disc labels)")
    t2 = sagittal(phantom.t2_ms, x)
    im = axes[2].imshow(t2, cmap="magma", vmin=0, vmax=250)
    fig.colorbar(im, ax=axes[2], fraction=0.046, pad=0.02, label="T2 (ms), CSF ~1500 clipped")
    axes[2].set_title("true T2 map")
    for ax, k in ((axes[3], 0), (axes[4], 7)):
        ax.imshow(echo[..., k], cmap="gray", vmin=0, vmax=np.percentile(echo[..., k], 99.5))
        ax.set_title(f"simulated MESE echo {k + 1}, TE {mese.te_ms[k]:.0f} ms")
    axes[4].text(
        3,
        215,
        f"B1 {b1.min():.2f}-{b1.max():.2f} (smooth field), SNR {args.snr:g}, PSF 1 voxel",
        color="w",
        fontsize=7,
    )
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("anterior  <->  posterior", fontsize=7)
    axes[0].set_ylabel("inferior  <->  superior", fontsize=7)
    levels = ", ".join(
        f"{lvl} {t:.0f} ms (grade {phantom.grades[lvl]})"
        for lvl, t in phantom.true_disc_t2_ms().items()
    )
    fig.suptitle(
        f"Real-anatomy phantom, sagittal slice {x}: true whole-disc T2 {levels}\n{CITATION}",
        fontsize=9,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=args.dpi)
    print(f"phantom {t_build:.2f} s, MESE slab {t_sim:.2f} s, wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
