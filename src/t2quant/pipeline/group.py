"""The BIDS-Apps ``group`` level: the disc table, the moderator stage and (with manual grades
or a synthetic study's ground truth) the grade agreement, into ``OUT/group``, and the group
report ``OUT/group.html``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["GroupSettings", "build_table", "run_group"]


@dataclass(frozen=True)
class GroupSettings:
    """Everything the group level is told (the command line's options)."""

    bids_dir: Path
    output_dir: Path
    config: Path | None = None
    manual_grades: Path | None = None
    ratings: Path | None = None


GROUP_STEPS = 5  # table, moderators, agreement, ground-truth check, report and methods


def run_group(settings: GroupSettings, display=None) -> dict[str, Path]:
    """Run the group level; returns the paths written, by key. ``display``: a
    :class:`~t2quant.pipeline.progress.StageProgress` to show the steps on."""
    from t2quant.group.stats.files import stats_to_files
    from t2quant.io import check_writable
    from t2quant.reports.group import write_group_report
    from t2quant.validation.groundtruth import write_groundtruth_check

    out = Path(settings.output_dir)
    group = check_writable(out / "group", what="group output folder")
    step = _stepper(display)
    table, paths = build_table(
        settings.bids_dir, out, group, manual_grades=settings.manual_grades,
        ratings=settings.ratings,
    )  # fmt: skip
    step()
    _, stats_paths = stats_to_files(paths["tsv"], group, config=settings.config)
    paths |= stats_paths
    step()
    agreement = _agreement(settings, group)
    if agreement:
        paths["agreement"] = agreement
    step()
    check = write_groundtruth_check(settings.bids_dir, out, group, config=settings.config)
    if check:
        paths["groundtruth_check"] = check
    step()
    paths["report"] = write_group_report(out)
    paths |= _write_methods(out, settings)
    step()
    message = f"group level: {len(table)} disc rows -> {group}; report {paths['report']}"
    (display.line if display is not None else lambda t: print(f"[t2quant] {t}"))(message)
    return paths


def _stepper(display):
    """Advance the display's group stage by one step per call (nothing without a display)."""
    if display is None:
        return lambda: None
    display.add("group", "group level", GROUP_STEPS)
    return lambda: display.advance("group")


def _write_methods(out: Path, settings: GroupSettings) -> dict[str, Path]:
    """Add the group level's model to ``OUT/logs/CITATION.*``."""
    from dataclasses import asdict

    from t2quant.group.stats.config import load_config
    from t2quant.reports.citation import write_citation

    config = load_config(settings.config)
    model = asdict(config.model)
    group = {
        "outcome": model.get("outcome"),
        "reml": model.get("reml", True),
        "inference": model.get("inference", "wald"),
        "fdr": model.get("fdr", False),
        "moderators": [m.name for m in config.moderators],
    }
    written = write_citation(out / "logs", {"group": group})
    return {f"citation_{k}": v for k, v in written.items()}


def build_table(
    bids_dir: Path,
    derivatives: Path,
    outdir: Path,
    *,
    manual_grades: Path | None = None,
    ratings: Path | None = None,
    prefix: str = "[t2quant] ",
) -> tuple[pd.DataFrame, dict[str, Path]]:
    """The disc table (``discs.tsv``...) with the manual grades and the raters' ratings (every
    ``*_desc-ratings.tsv`` in ``ratings``) applied; prints what the ratings changed."""
    from t2quant.group.ratings import ratings_lines, read_ratings
    from t2quant.group.table import disc_table_to_files
    from t2quant.pfirrmann.manual import read_manual_grades

    manual = read_manual_grades(manual_grades)[0] if manual_grades else None
    rated = read_ratings(ratings) if ratings else None
    table, paths = disc_table_to_files(bids_dir, derivatives, outdir, manual=manual,
                                       ratings=rated)  # fmt: skip
    if rated is not None:
        print("\n".join(prefix + line for line in ratings_lines(rated, paths["ratings_tsv"])))
    return table, paths


def _agreement(settings: GroupSettings, group: Path) -> Path | None:
    from t2quant.validation.groundtruth import write_true_grades
    from t2quant.validation.validate import validate_to_files

    manual = settings.manual_grades
    truth = Path(settings.bids_dir) / "derivatives" / "groundtruth" / "discs.tsv"
    if manual is None and truth.is_file():
        manual = write_true_grades(settings.bids_dir, group / "true_grades.tsv")
    if manual is None:
        return None
    validate_to_files(Path(manual), group / "discs.tsv", group)
    return group / "agreement.json"
