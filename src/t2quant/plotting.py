"""matplotlib set up once for file-only plots (imported when a plot is drawn, so importing
t2quant never loads matplotlib)."""

from __future__ import annotations

__all__ = ["pyplot"]


def pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt
