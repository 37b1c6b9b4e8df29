"""Validating readers of JSON files (sidecars, thresholds, dataset descriptions).

Every failure raises :class:`~t2quant.errors.InputError` naming the file (and the key) and the
fix: a missing or unreadable file, text that is not JSON, a document too large or nested too
deeply to be a sidecar, a top level that is not an object, a value of the wrong type.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from t2quant.errors import InputError, MissingInputError

__all__ = ["MAX_DEPTH", "MAX_JSON_BYTES", "json_number", "read_json", "read_json_object"]

MAX_JSON_BYTES = 16 * 1024 * 1024
"""Largest JSON file read (sidecars and settings are kilobytes)."""
MAX_DEPTH = 64
"""Deepest nesting accepted; BIDS sidecars are two or three levels deep."""


def read_json(path: str | os.PathLike, *, what: str = "JSON file") -> Any:
    """The parsed content of a JSON file."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{path}: no such {what}")
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise InputError(
            f"{path}: {size / 1e6:.0f} MB is too large for a {what} "
            f"(limit {MAX_JSON_BYTES / 1e6:.0f} MB); is it the right file?"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the {what} as UTF-8 text ({exc})") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: the {what} is not valid JSON ({exc}); fix or re-export it"
        ) from None
    except RecursionError:
        raise InputError(f"{path}: the {what} is nested too deeply to be read") from None
    depth = _depth(value)
    if depth > MAX_DEPTH:
        raise InputError(f"{path}: the {what} is nested {depth} levels deep (limit {MAX_DEPTH})")
    return value


def read_json_object(path: str | os.PathLike, *, what: str = "JSON file") -> dict[str, Any]:
    """A JSON file whose top level must be an object (``{...}``)."""
    value = read_json(path, what=what)
    if not isinstance(value, dict):
        kind = type(value).__name__
        raise InputError(f"{path}: the {what} must hold a JSON object {{...}}, not a {kind}")
    return value


def json_number(
    value: Any, *, path: str | os.PathLike, key: str, unit: str = "", positive: bool = False
) -> float:
    """``value`` as a finite float, or an :class:`InputError` naming ``path`` and ``key``.

    Booleans, strings (even ``"0.036"``), null, lists and objects are refused: a sidecar value
    is never coerced.
    """
    unit_text = f" in {unit}" if unit else ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{path}: {key} must be a number{unit_text}, got {json.dumps(value)[:60]}")
    number = float(value)
    if not math.isfinite(number) or (positive and number <= 0):
        need = "a positive finite number" if positive else "a finite number"
        raise InputError(f"{path}: {key} must be {need}{unit_text}, got {value!r}")
    return number


def _depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value, iteratively (no recursion limit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            return level
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return deepest
