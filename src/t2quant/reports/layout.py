"""The HTML frame the reports share: page, style, tables."""

from __future__ import annotations

import html

import pandas as pd

__all__ = ["html_table", "page"]

STYLE = """body{font-family:sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;font-size:12px;margin:0.5em 0}td,th{border:1px solid #bbb;
padding:3px 6px;text-align:left}th{background:#eee}img{max-width:100%}.warn{color:#a00}
h2{border-bottom:2px solid #ccc;margin-top:2em}"""


def html_table(frame: pd.DataFrame) -> str:
    """A compact HTML table (3 significant digits, empty cells for missing values)."""
    return frame.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.3g}", border=0)


def page(title: str, body: str) -> str:
    """A whole self-contained HTML page."""
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f"{body}</body></html>")  # fmt: skip
