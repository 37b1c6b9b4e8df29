"""The BIDS-Apps ``group`` level: the disc table, the moderator stage and (with manual grades
or a synthetic study's ground truth) the grade agreement, into ``OUT/group``, and the group
report ``OUT/group.html``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["GroupSettings", "run_group"]


@dataclass(frozen=True)
class GroupSettings:
    """Everything the group level is told (the command line's options)."""

    bids_dir: Path
    output_dir: Path
    config: Path | None = None
    manual_grades: Path | None = None


def run_group(settings: GroupSettings) -> dict[str, Path]:
    """Run the group level; returns the paths written, by key."""
    from t2quant.group.stats.files import stats_to_files
    from t2quant.group.table import disc_table_to_files
    from t2quant.pfirrmann.manual import read_manual_grades
    from t2quant.reports.group import write_group_report
    from t2quant.validation.groundtruth import write_groundtruth_check

    out = Path(settings.output_dir)
    group = out / "group"
    manual = read_manual_grades(settings.manual_grades)[0] if settings.manual_grades else None
    table, paths = disc_table_to_files(settings.bids_dir, out, group, manual=manual)
    _, stats_paths = stats_to_files(paths["tsv"], group, config=settings.config)
    paths |= stats_paths
    agreement = _agreement(settings, group)
    if agreement:
        paths["agreement"] = agreement
    check = write_groundtruth_check(settings.bids_dir, out, group, config=settings.config)
    if check:
        paths["groundtruth_check"] = check
    paths["report"] = write_group_report(out)
    print(f"[t2quant] group level: {len(table)} disc rows -> {group}; report {paths['report']}")
    return paths


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
