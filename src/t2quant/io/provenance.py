"""Portable provenance in derivative sidecars: BIDS URIs instead of scratch paths.

Sidecars written inside a Nipype work directory name their sources by absolute paths there.
Copied into the derivatives as they are, they would point at scratch space and differ from one
work directory (or plugin) to the next. :func:`to_bids_uris` rewrites them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

__all__ = ["resolve_bids_uri", "to_bids_uris"]


def to_bids_uris(value: Any, *, renamed: dict[str, str], datasets: dict[str, Path]) -> Any:
    """Rewrite every absolute path string inside ``value`` (dicts and lists are walked).

    - a path in ``renamed`` (scratch file -> its path inside this derivative dataset) becomes
      ``bids::<that path>``;
    - a path under one of ``datasets`` (name -> root; ``""`` is this dataset) becomes
      ``bids:<name>:<relative path>``;
    - any other absolute path (an intermediate file that is not kept) becomes its file name.

    Other values are returned unchanged.
    """
    if isinstance(value, dict):
        return {k: to_bids_uris(v, renamed=renamed, datasets=datasets) for k, v in value.items()}
    if isinstance(value, list):
        return [to_bids_uris(v, renamed=renamed, datasets=datasets) for v in value]
    if not isinstance(value, str) or not value.startswith("/"):
        return value
    if value in renamed:
        return f"bids::{renamed[value]}"
    path = Path(value)
    for name, root in datasets.items():
        if path.is_relative_to(root):
            return f"bids:{name}:{path.relative_to(root).as_posix()}"
    return path.name


def resolve_bids_uri(uri: str, dataset: Path) -> Path | None:
    """The file a sidecar source names, seen from the derivative dataset at ``dataset``.

    ``bids::rel`` is inside ``dataset``; ``bids:name:rel`` is inside the dataset that
    ``dataset_description.json``'s ``DatasetLinks`` maps ``name`` to (a ``file://`` URI or a path);
    a plain path is returned as it is. ``None`` when a named dataset is not linked.
    """
    if not uri.startswith("bids:"):
        return Path(uri)
    name, _, rel = uri.removeprefix("bids:").partition(":")
    if not name:
        return Path(dataset) / rel
    description = Path(dataset) / "dataset_description.json"
    links = (
        json.loads(description.read_text()).get("DatasetLinks", {}) if description.is_file() else {}
    )
    if name not in links:
        return None
    root = links[name]
    root = Path(unquote(urlparse(root).path)) if root.startswith("file:") else Path(root)
    return root / rel
