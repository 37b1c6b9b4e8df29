"""The layout's import rules, checked by walking every module's AST.

Stages point down the pipeline; numeric cores import no I/O, Nipype or plotting; ``synth``
may import ``relaxometry`` but never the reverse; nothing imports ``cli``; no module but
``t2quant.io.bids`` spells a BIDS derivative pattern.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "t2quant"

BASE = {"t2quant", "levels", "errors", "units", "grids", "plotting"}
ALLOWED: dict[str, set[str]] = {
    "base": set(),
    "data": set(),
    "io": set(),
    "relaxometry": {"io"},
    "segmentation": {"io"},
    "features": {"io", "segmentation"},
    # the agreement statistics are a pure core that calibration shares with validation
    "pfirrmann": {"io", "features", "validation.agreement"},
    "group": {"io", "features", "pfirrmann"},
    "synth": {"io", "relaxometry"},
    # retraining the disc segmenter: phantom label maps (synth) through the run-time
    # network contract (segmentation); the disc-appearance network: disc patches and
    # features (features), manual grades and participant folds (pfirrmann), agreement
    # figures; nothing imports training
    "training": {
        "io",
        "relaxometry",
        "synth",
        "segmentation",
        "features",
        "pfirrmann",
        "validation.agreement",
    },
    # validation also checks the segmenter's names against raters' disc counts
    "validation": {"io", "segmentation", "features", "pfirrmann", "group", "synth"},
    "reports": {
        "io",
        "relaxometry",
        "segmentation",
        "features",
        "pfirrmann",
        "group",
        "validation",
    },
    "pipeline": {
        "io",
        "relaxometry",
        "segmentation",
        "features",
        "pfirrmann",
        "group",
        "validation",
        "reports",
        "synth",
    },
    "cli": {
        "io",
        "relaxometry",
        "segmentation",
        "features",
        "pfirrmann",
        "group",
        "validation",
        "reports",
        "synth",
        "pipeline",
    },
}
# The modules of a numeric stage that read and write files; every other module of these
# stages is a core and imports no I/O, Nipype or plotting.
FILE_LAYER = {
    "relaxometry.files",
    "segmentation.files",
    "segmentation.outputs",
    "segmentation.sessionimage",
    "features.files",
    "pfirrmann.files",
    "pfirrmann.manual",
    "group.table",
    "group.ratings",
    "group.stats.files",
    "group.stats.plots",
}
CORE_STAGES = ("relaxometry", "segmentation", "features", "pfirrmann", "group")
FORBIDDEN_IN_CORES = ("t2quant.io", "t2quant.plotting", "nipype", "matplotlib")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        out[".".join(parts) or "t2quant"] = path
    return out


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _package(module: str) -> str:
    head = module.split(".")[0]
    return "base" if head in BASE else head


MODULES = _modules()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_the_pipeline(module):
    package = _package(module)
    allowed = ALLOWED[package] | {package}
    wrong = []
    for name in _imports(MODULES[module]):
        if not name.startswith("t2quant."):
            continue
        target = name.removeprefix("t2quant.").split(".")[0]
        if target in BASE or target == "__version__":
            continue
        if target not in ALLOWED:  # a name imported from a package, e.g. t2quant.__version__
            continue
        sub = ".".join(name.removeprefix("t2quant.").split(".")[:2])
        if _package(target) not in allowed and sub not in allowed:
            wrong.append(name)
    assert not wrong, f"t2quant.{module} ({package}) may not import {sorted(wrong)}"


@pytest.mark.parametrize(
    "module", sorted(m for m in MODULES if m.split(".")[0] in CORE_STAGES and m not in FILE_LAYER)
)
def test_numeric_cores_import_no_io_nipype_or_plotting(module):
    bad = [n for n in _imports(MODULES[module]) if n.startswith(FORBIDDEN_IN_CORES)]
    assert not bad, f"t2quant.{module} is a core; it imports {sorted(bad)}"


def test_nothing_imports_the_training_code():
    users = [m for m, p in MODULES.items() if not m.startswith("training")
             and any(n.startswith("t2quant.training") for n in _imports(p))]  # fmt: skip
    assert not users


@pytest.mark.parametrize(
    "module", sorted(m for m in MODULES if m.startswith(("segmentation", "features")))
)
def test_the_networks_run_without_a_training_framework(module):
    """Run time needs onnxruntime only: no torch, onnx or synth in the segmentation and
    features stages (the segmenter and the disc-appearance network)."""
    bad = [n for n in _imports(MODULES[module])
           if n.split(".")[0] in ("torch", "onnx") or n.startswith("t2quant.synth")]  # fmt: skip
    assert not bad, f"t2quant.{module} imports {sorted(bad)}"


def test_nothing_imports_the_command_line():
    users = [m for m, p in MODULES.items() if not m.startswith("cli")
             and any(n.startswith("t2quant.cli") for n in _imports(p))]  # fmt: skip
    assert not users


def test_only_io_bids_spells_derivative_patterns():
    pattern = re.compile(r"""["'][^"']*\*_(T2ms|T2map|dseg|discfeatures|discs|MESE|T2w)\b""")
    spelled = []
    for module, path in MODULES.items():
        if module in ("io.bids",) or module.startswith("cli"):
            continue  # the command line's help texts describe the patterns to the user
        for lineno, line in enumerate(path.read_text().splitlines(), start=1):
            code = line.split("#", 1)[0]
            if pattern.search(code) and '"""' not in code and "``" not in code:
                spelled.append(f"{module}:{lineno}: {line.strip()}")
    assert not spelled, "\n".join(spelled)
