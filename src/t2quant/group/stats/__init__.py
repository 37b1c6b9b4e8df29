"""The moderator stage: disc-level mixed models with crossed participant and level effects.

:func:`run_moderators` is the core (a disc table in, result tables out);
:func:`t2quant.group.stats.files.stats_to_files` reads, runs and writes the outputs.
"""

from t2quant.group.stats.config import DEFAULT, ModelSettings, Moderator, StatsConfig, load_config
from t2quant.group.stats.moderators import ModeratorResults, run_moderators

__all__ = [
    "DEFAULT",
    "ModelSettings",
    "Moderator",
    "ModeratorResults",
    "StatsConfig",
    "load_config",
    "run_moderators",
]
