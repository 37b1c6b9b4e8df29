"""The report figures: a sagittal T2 map with the named discs, the B1 and R² maps, each
disc's echo decay beside its fitted model. Arrays in the canonical (PIR) frame in, an
embeddable ``<img>`` (base64 PNG) out."""

from __future__ import annotations

import base64
import io

import numpy as np

from t2quant.levels import INDEX_LEVEL, LEVEL_COLORS
from t2quant.plotting import pyplot

__all__ = ["decay_figure", "embed_png", "maps_figure", "png", "t2_figure"]


def png(fig, *, tight: bool = True) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight" if tight else None)
    pyplot().close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def _sagittal(data: np.ndarray, z: int) -> np.ndarray:
    """A PIR volume's sagittal slice as rows superior->inferior, columns anterior->posterior."""
    return data[:, :, z].T


def t2_figure(t2: np.ndarray, labels: np.ndarray, z: int) -> str:
    plt = pyplot()
    from matplotlib.colors import to_rgba

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(np.clip(_sagittal(t2, z), 0, 200), cmap="gray", vmin=0, vmax=200)
    lab = _sagittal(labels, z)
    overlay = np.zeros((*lab.shape, 4))
    for index in np.unique(lab[lab > 0]):
        level = INDEX_LEVEL.get(int(index), str(index))
        overlay[lab == index] = to_rgba(LEVEL_COLORS.get(level, "#ffffff"), 0.55)
        rows, cols = np.nonzero(lab == index)
        ax.text(cols.max() + 3, rows.mean(), level, color=LEVEL_COLORS.get(level, "w"),
                fontsize=8, va="center")  # fmt: skip
    ax.imshow(overlay)
    ax.set_title(f"T2 (ms, 0-200), sagittal slice {z}", fontsize=9)
    ax.axis("off")
    return png(fig)


def maps_figure(b1: np.ndarray | None, r2: np.ndarray | None, z: int) -> str:
    plt = pyplot()
    panels = [(m, t, lim) for m, t, lim in ((b1, "B1 (fraction of nominal)", (0.5, 1.2)),
              (r2, "R² of the fit", (0.8, 1.0))) if m is not None]  # fmt: skip
    if not panels:
        return "<p>No B1 or R² map.</p>"
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4.5), squeeze=False)
    for ax, (data, title, (lo, hi)) in zip(axes[0], panels, strict=True):
        shown = ax.imshow(_sagittal(data, z), cmap="viridis", vmin=lo, vmax=hi)
        fig.colorbar(shown, ax=ax, fraction=0.04)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    return png(fig)


def decay_figure(echoes: np.ndarray, te_ms: np.ndarray, maps: dict, labels: np.ndarray) -> str:
    """Mean measured signal of each disc by echo, and the mean of the fitted voxel models.

    A disc mixes nucleus and annulus, so the mean of its voxels' decays is not one exponential
    at the median T2; averaging each voxel's fitted curve compares like with like.
    """
    plt = pyplot()
    indices = [int(i) for i in np.unique(labels[labels > 0])]
    if not indices:
        return "<p>No disc to show.</p>"
    fig, axes = plt.subplots(1, len(indices), figsize=(2.2 * len(indices), 2.3), squeeze=False)
    for ax, index in zip(axes[0], indices, strict=True):
        inside = labels == index
        ax.plot(te_ms, echoes[inside].mean(axis=0), "o", ms=3, color="k", label="measured")
        fitted = inside & np.isfinite(maps["t2"]) & np.isfinite(maps["s0"])
        if maps.get("b1") is not None:
            fitted &= np.isfinite(maps["b1"])
        if fitted.any():
            curve, label = _model_curve(maps, fitted, te_ms)
            ax.plot(te_ms, curve, "-", color="C3", label=label)
        ax.set_title(INDEX_LEVEL.get(index, str(index)), fontsize=8)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=5, loc="upper right")  # "best" costs a search per panel
        ax.set_xlabel("TE (ms)", fontsize=6)
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.2, top=0.88, wspace=0.3)
    return png(fig, tight=False)


def _model_curve(maps: dict, where: np.ndarray, te_ms: np.ndarray) -> tuple[np.ndarray, str]:
    """Mean over ``where`` of each voxel's fitted signal at ``te_ms``, and a legend label."""
    t2, s0 = maps["t2"][where], maps["s0"][where]
    if maps.get("b1") is None:
        curve = (s0[:, None] * np.exp(-te_ms[None, :] / t2[:, None])).mean(axis=0)
        return curve, f"fit, median T2 {np.median(t2):.0f} ms"
    from t2quant.relaxometry.epgfit import epg_echoes
    from t2quant.relaxometry.fit import DEFAULT_T1_MS

    b1 = maps["b1"][where]
    esp = float(te_ms[1] - te_ms[0]) if len(te_ms) > 1 else float(te_ms[0])
    signal = epg_echoes(t2, b1, DEFAULT_T1_MS, esp, len(te_ms))
    curve = (s0[:, None] * signal).mean(axis=0)
    return curve, f"EPG fit, median T2 {np.median(t2):.0f} ms, B1 {np.median(b1):.2f}"


def embed_png(data: bytes, alt: str) -> str:
    """An ``<img>`` holding PNG bytes."""
    import html

    encoded = base64.b64encode(data).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'
