"""The report figures: sagittal views of the T2 map with the named discs, the B1 and R² maps,
each disc's echo decay beside its fitted model. Arrays in the canonical (PIR) frame in, an
embeddable, zoomable ``<img>`` (base64 PNG) out.

The sagittal views and the maps are drawn with numpy and encoded by Pillow, one pixel per voxel
(about 10 ms each, against 0.1-0.3 s for a matplotlib figure), so a report can show every slice
that holds a disc and still build as fast as before."""

from __future__ import annotations

import base64
import html
import io

import numpy as np

from t2quant.levels import INDEX_LEVEL, LEVEL_COLORS
from t2quant.plotting import pyplot

__all__ = ["decay_figure", "embed_png", "maps_figure", "png", "sagittal_view", "view_slices",
           "zoomable"]  # fmt: skip

T2_WINDOW_MS = 200.0  # the gray scale of the sagittal views: 0..200 ms


def png(fig, *, tight: bool = True) -> str:
    """A matplotlib figure as an embedded, zoomable ``<img>``; closes the figure."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight" if tight else None)
    pyplot().close(fig)
    return zoomable(embed_png(buffer.getvalue(), "figure"))


def _sagittal(data: np.ndarray, z: int) -> np.ndarray:
    """A PIR volume's sagittal slice as rows superior->inferior, columns anterior->posterior."""
    return data[:, :, z].T


def view_slices(labels: np.ndarray, z: int) -> tuple[list[int], list[int]]:
    """The sagittal slices to show large (``z`` and its neighbours) and the other slices that
    hold a disc label, in order."""
    main = [s for s in (z - 1, z, z + 1) if 0 <= s < labels.shape[2]]
    labelled = np.flatnonzero((labels > 0).any(axis=(0, 1)))
    return main, [int(s) for s in labelled if s not in main]


def _colours(n: int) -> np.ndarray:
    """RGB (0..255) of label indices 0..n-1, each its level's colour."""
    from matplotlib.colors import to_rgb

    levels = [INDEX_LEVEL.get(i, str(i)) for i in range(n)]
    return np.array([to_rgb(LEVEL_COLORS.get(lvl, "#ffffff")) for lvl in levels]) * 255


def _overlay(t2: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The T2 slice (0-200 ms in gray) with each disc tinted and outlined in its colour."""
    gray = np.nan_to_num(np.clip(t2, 0, T2_WINDOW_MS), nan=0.0) / T2_WINDOW_MS * 255
    rgb = np.repeat(gray[..., None], 3, axis=2)
    inside = labels > 0
    if not inside.any():
        return rgb.astype(np.uint8)
    p = np.pad(labels, 1, mode="edge")
    mid = p[1:-1, 1:-1]
    edge = (mid != p[:-2, 1:-1]) | (mid != p[2:, 1:-1]) | (mid != p[1:-1, :-2])
    edge |= mid != p[1:-1, 2:]
    colour = _colours(int(labels.max()) + 1)[labels[inside]]
    rgb[inside] = np.where(edge[inside][:, None], colour, 0.75 * rgb[inside] + 0.25 * colour)
    return rgb.astype(np.uint8)


def sagittal_view(
    t2: np.ndarray, labels: np.ndarray, z: int, voxel_mm: np.ndarray, caption: str
) -> str:
    """A zoomable sagittal slice ``z`` of a PIR T2 map (ms) with its discs tinted, outlined
    and named. One PNG pixel per voxel, shown with crisp voxels and square millimetres; the
    names are HTML over the image, so they stay sharp when enlarged."""
    lab = _sagittal(labels, z)
    names = "".join(_name(lab, int(index)) for index in np.unique(lab[lab > 0]))
    png_bytes = _encode(_overlay(_sagittal(t2, z), lab))
    image = embed_png(png_bytes, f"sagittal T2 map, {caption}", aspect=_aspect(lab.shape, voxel_mm))
    return (f'<figure class="slice">{zoomable(image, names)}'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")  # fmt: skip


def _name(labels: np.ndarray, index: int) -> str:
    """The level name of disc ``index``, placed just behind it (in % of the view)."""
    level = INDEX_LEVEL.get(index, str(index))
    rows, cols = np.nonzero(labels == index)
    left = min(100 * (cols.max() + 2) / labels.shape[1], 88)
    top = 100 * rows.mean() / labels.shape[0]
    colour = LEVEL_COLORS.get(level, "#fff")
    return (f'<span class="disc-name" style="left:{left:.1f}%;top:{top:.1f}%;color:{colour}">'
            f"{html.escape(level)}</span>")  # fmt: skip


def _encode(rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB image (uint8)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def _aspect(shape: tuple[int, ...], voxel_mm: np.ndarray) -> float:
    """Width / height in mm of a sagittal slice (rows: voxel_mm[1], columns: voxel_mm[0])."""
    return shape[1] * voxel_mm[0] / (shape[0] * voxel_mm[1])


def _map_view(data: np.ndarray, z: int, voxel_mm: np.ndarray, title: str, limits) -> str:
    """A sagittal slice of a parameter map in viridis (missing values white), zoomable, with
    an HTML colour bar."""
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    lo, hi = limits
    values = _sagittal(data, z)
    scaled = np.clip((np.nan_to_num(values, nan=lo) - lo) / (hi - lo), 0, 1)
    rgb = cmap(scaled)[..., :3] * 255
    rgb[~np.isfinite(values)] = 255
    image = embed_png(_encode(rgb.astype(np.uint8)), title, aspect=_aspect(values.shape, voxel_mm))
    stops = ",".join(f"rgb({r * 255:.0f},{g * 255:.0f},{b * 255:.0f})"
                     for r, g, b, _ in cmap(np.linspace(0, 1, 6)))  # fmt: skip
    bar = (f'{lo:g}<span class="colorbar" style="background:linear-gradient(to right,{stops})">'
           f"</span>{hi:g}")  # fmt: skip
    return (f'<figure class="slice">{zoomable(image)}<figcaption>{html.escape(title)} '
            f"{bar}</figcaption></figure>")  # fmt: skip


def maps_figure(b1: np.ndarray | None, r2: np.ndarray | None, z: int, voxel_mm: np.ndarray) -> str:
    """The B1 and R² maps of sagittal slice ``z`` side by side (those that exist)."""
    panels = [(m, t, lim) for m, t, lim in ((b1, "B1 (fraction of nominal)", (0.5, 1.2)),
              (r2, "R² of the fit", (0.8, 1.0))) if m is not None]  # fmt: skip
    if not panels:
        return "<p>No B1 or R² map.</p>"
    views = "".join(_map_view(m, z, voxel_mm, t, lim) for m, t, lim in panels)
    return f'<div class="views">{views}</div>'


def decay_figure(echoes: np.ndarray, te_ms: np.ndarray, maps: dict, labels: np.ndarray) -> str:
    """Every disc's mean measured signal by echo (dots) beside the mean of its voxels' fitted
    models (line), one colour per level, on a log scale normalised to the disc's first echo,
    so that the slopes compare the discs' T2 at a glance.

    A disc mixes nucleus and annulus, so the mean of its voxels' decays is not one exponential
    at the median T2; averaging each voxel's fitted curve compares like with like. One axes
    for all discs (not a panel each) keeps the figure at about 0.1 s.
    """
    indices = [int(i) for i in np.unique(labels[labels > 0])]
    if not indices:
        return "<p>No disc to show.</p>"
    finite = np.isfinite(maps["t2"]) & np.isfinite(maps["s0"])
    if maps.get("b1") is not None:
        finite &= np.isfinite(maps["b1"])
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.0))
    for index in indices:
        inside = labels == index
        measured = echoes[inside].mean(axis=0)
        scale = measured[0] if measured[0] > 0 else 1.0
        color = LEVEL_COLORS.get(INDEX_LEVEL.get(index, ""), "k")
        name = INDEX_LEVEL.get(index, str(index))
        fitted = inside & finite
        dots_label = None  # the line carries the disc's legend entry when there is one
        if fitted.any():
            curve, label = _model_curve(maps, fitted, te_ms)
            ax.plot(te_ms, curve / scale, "-", color=color, lw=1, label=f"{name}: {label}")
        else:
            dots_label = f"{name}: no fitted voxel"
        ax.plot(te_ms, measured / scale, "o", ms=3, color=color, label=dots_label)
    ax.set_yscale("log")
    ax.yaxis.set_minor_formatter(plt.NullFormatter())
    ticks = [t for t in (1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01) if t >= ax.get_ylim()[0]]
    ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xlabel("TE (ms)", fontsize=7)
    ax.set_ylabel("signal / first echo", fontsize=7)
    ax.tick_params(labelsize=6)
    ax.set_title("dots: measured disc mean; lines: mean of the voxels' fits", fontsize=7)
    ax.legend(fontsize=5, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.subplots_adjust(left=0.08, right=0.58, bottom=0.15, top=0.9)
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


def embed_png(data: bytes, alt: str, *, aspect: float | None = None) -> str:
    """An ``<img>`` holding PNG bytes, shown at ``aspect`` (width / height; default the
    PNG's); ``--ar`` lets an enlarged copy keep that shape."""
    if aspect is None:
        width, height = (int.from_bytes(data[i : i + 4], "big") for i in (16, 20))  # IHDR
        aspect = width / max(height, 1)
    encoded = base64.b64encode(data).decode("ascii")
    return (f'<img alt="{html.escape(alt)}" style="--ar:{aspect:.4f};aspect-ratio:{aspect:.4f}" '
            f'src="data:image/png;base64,{encoded}">')  # fmt: skip


def zoomable(image: str, overlay: str = "") -> str:
    """An image (and HTML placed over it) that the page's script enlarges on a click."""
    return (f'<div class="zoom" tabindex="0" title="click to enlarge">'
            f'<div class="frame">{image}{overlay}</div></div>')  # fmt: skip
