"""Validating readers of tab-separated tables (participants.tsv, sessions.tsv, grades, feature
tables, the disc table).

A :class:`Column` states what a column must hold; :func:`read_table` reads the file as text,
checks the header and every value against the schema, and returns typed columns. Every
failure raises :class:`~t2quant.errors.InputError` naming the file, the column and the first
offending rows: an empty file, a missing or doubled column, a value of the wrong type or out of
range, duplicated keys. Nothing is coerced silently: ``"six"`` in an integer column is an error,
not a missing value. ``n/a`` (BIDS) and empty cells are missing values; Windows line endings
and a byte-order mark are accepted.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from t2quant.errors import InputError, MissingInputError

__all__ = ["Column", "read_table", "row_numbers"]

MISSING = ("", "n/a", "N/A", "NA", "nan", "NaN")
MAX_TABLE_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class Column:
    """What one column must hold.

    ``kind``: ``"str"``, ``"int"``, ``"float"``, ``"bool"`` (``true``/``false``/``1``/``0``) or
    ``"time"`` (ISO 8601, e.g. ``2024-05-01T14:03:00Z``; read as UTC, no zone = UTC).
    ``required``: the column must be in the header. ``missing_ok``: empty or ``n/a`` cells are
    allowed (read as missing). ``choices``: the allowed values (after typing). ``low`` and
    ``high``: the closed range of a number. ``finite``: infinities are refused.
    """

    name: str
    kind: str = "str"
    required: bool = True
    missing_ok: bool = False
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    finite: bool = True


def read_table(
    path: str | os.PathLike,
    columns: tuple[Column, ...] | list[Column] = (),
    *,
    what: str = "table",
    unique: tuple[str, ...] = (),
    sep: str | None = None,
) -> pd.DataFrame:
    """Read ``path`` (tab-separated; comma-separated for ``.csv``) and check it.

    Columns not in ``columns`` are kept as text. ``unique``: columns whose combination must
    not repeat (a duplicated participant, a disc listed twice).
    """
    path = Path(path)
    raw = _read_text_table(path, what, sep)
    for spec in columns:
        if spec.name not in raw.columns:
            if spec.required:
                raise InputError(
                    f"{path}: the {what} has no {spec.name!r} column (columns: "
                    f"{', '.join(map(str, raw.columns)) or 'none'}); add it"
                )
            continue
        raw[spec.name] = _typed(raw[spec.name], spec, path, what)
    if unique:
        _check_unique(raw, unique, path, what)
    return raw


def _read_text_table(path: Path, what: str, sep: str | None) -> pd.DataFrame:
    if not path.is_file():
        raise MissingInputError(f"{path}: no such {what}")
    if path.stat().st_size > MAX_TABLE_BYTES:
        raise InputError(f"{path}: too large for a {what}; is it the right file?")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the {what} as UTF-8 text ({exc})") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise InputError(f"{path}: the {what} is empty; it needs a header row and data rows")
    separator = sep or ("," if path.suffix.lower() == ".csv" else "\t")
    header = [h.strip() for h in text.split("\n", 1)[0].split(separator)]
    doubled = sorted({h for h in header if header.count(h) > 1})
    if doubled:
        raise InputError(f"{path}: the {what} has the column(s) {doubled} twice; keep one")
    if any(not h for h in header):
        raise InputError(f"{path}: the {what} has a column without a name; name every column")
    lines = [line for line in text.split("\n")[1:] if line.strip()]
    ragged = [i + 1 for i, line in enumerate(lines) if line.count(separator) != len(header) - 1]
    if ragged:
        first = lines[ragged[0] - 1].count(separator) + 1
        raise InputError(
            f"{path}: row {ragged[0]} of the {what} has {first} fields, the header "
            f"{len(header)}; every row needs one value per column ({len(ragged)} such rows)"
        )
    try:
        frame = pd.read_csv(io.StringIO(text), sep=separator, dtype=str, keep_default_na=False,
                            na_filter=False, quoting=3)  # fmt: skip
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise InputError(f"{path}: cannot parse the {what} ({exc})") from None
    frame.columns = header
    return frame.apply(lambda s: s.str.strip())


def _typed(values: pd.Series, spec: Column, path: Path, what: str) -> pd.Series:
    missing = values.isin(MISSING)
    if missing.any() and not spec.missing_ok:
        rows = row_numbers(missing)
        raise InputError(f"{path}: column {spec.name!r} of the {what} is empty in rows {rows}")
    parsed, bad = _parse(values.where(~missing, None), spec.kind)
    bad &= ~missing
    if bad.any():
        example = values[bad].iloc[0]
        raise InputError(
            f"{path}: column {spec.name!r} of the {what} must hold {_kind_words(spec.kind)}; "
            f"rows {row_numbers(bad)} hold {example!r}"
        )
    _check_values(parsed, ~missing, spec, path, what)
    return parsed


def _parse(values: pd.Series, kind: str) -> tuple[pd.Series, pd.Series]:
    """Typed values and a mask of cells that are not of ``kind``."""
    if kind == "str":
        return values, pd.Series(False, index=values.index)
    if kind == "time":
        times = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
        return times, times.isna() & values.notna()
    if kind == "bool":
        lowered = values.str.lower()
        mapping = {"true": True, "false": False, "1": True, "0": False}
        out = lowered.map(mapping)
        return out.astype("boolean"), out.isna() & values.notna()
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() & values.notna()
    if kind == "int":
        whole = numbers.dropna()
        fractional = whole[(whole != np.floor(whole)) | ~np.isfinite(whole)].index
        bad.loc[fractional] = True
        return numbers.where(~bad).astype("Int64"), bad
    return numbers.astype(float), bad


def _check_values(values: pd.Series, present: pd.Series, spec: Column, path: Path, what):
    where = f"{path}: column {spec.name!r} of the {what}"
    if spec.kind == "float" and spec.finite:
        infinite = present & values.astype(float).map(lambda v: not math.isfinite(v))
        if infinite.any():
            raise InputError(f"{where} must be finite; rows {row_numbers(infinite)} are infinite")
    if spec.low is not None or spec.high is not None:
        number = values.astype(float)
        low = -math.inf if spec.low is None else spec.low
        high = math.inf if spec.high is None else spec.high
        out = present & ~number.between(low, high)
        if out.any():
            raise InputError(
                f"{where} must be within [{low:g}, {high:g}]; rows {row_numbers(out)} hold "
                f"{values[out].iloc[0]}"
            )
    if spec.choices is not None:
        out = present & ~values.isin(spec.choices)
        if out.any():
            allowed = ", ".join(map(str, spec.choices))
            raise InputError(
                f"{where} must be one of {allowed}; rows {row_numbers(out)} hold "
                f"{values[out].iloc[0]}"
            )


def _check_unique(frame: pd.DataFrame, keys: tuple[str, ...], path: Path, what: str) -> None:
    present = [k for k in keys if k in frame.columns]
    doubled = frame.duplicated(present, keep=False)
    if doubled.any():
        first = frame.loc[doubled, present].drop_duplicates().head(3)
        shown = "; ".join(", ".join(f"{k}={v}" for k, v in row.items()) for _, row in
                          first.iterrows())  # fmt: skip
        n = int(frame.duplicated(present).sum())
        raise InputError(
            f"{path}: {n} duplicated row(s) in the {what} by ({', '.join(present)}), e.g. "
            f"{shown}; keep one row each"
        )


def row_numbers(mask: pd.Series) -> str:
    """Data-row numbers (1 = the first row under the header) of the first few hits."""
    rows = [int(i) + 1 for i in np.flatnonzero(mask.to_numpy())[:5]]
    more = " ..." if int(mask.sum()) > 5 else ""
    return ", ".join(map(str, rows)) + more


def _kind_words(kind: str) -> str:
    return {"int": "whole numbers", "float": "numbers", "bool": "true or false",
            "time": "ISO 8601 times such as 2024-05-01T14:03:00Z", "str": "text"}[kind]  # fmt: skip
