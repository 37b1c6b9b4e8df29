"""The HTML frame the reports share: page, style (``assets/report.css``), tables."""

from __future__ import annotations

import html
from functools import cache
from importlib import resources

import pandas as pd

__all__ = ["asset", "html_table", "page"]


@cache
def asset(name: str) -> str:
    """A file of ``t2quant/reports/assets`` (the stylesheet, the review script)."""
    return resources.files("t2quant.reports").joinpath("assets", name).read_text("utf-8")


def html_table(frame: pd.DataFrame) -> str:
    """A compact HTML table (3 significant digits, empty cells for missing values)."""
    return frame.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.3g}", border=0)


def page(title: str, body: str, *, nav: str = "", script: str = "") -> str:
    """A whole self-contained HTML page: the style inline, ``nav`` above the title, ``script``
    at the end of the body."""
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{asset('report.css')}</style></head><body>{nav}"
            f"<h1>{html.escape(title)}</h1>{body}{script}</body></html>")  # fmt: skip
