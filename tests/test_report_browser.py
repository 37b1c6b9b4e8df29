"""The HTML reports open in a real headless Chromium with every image decoded and every table.

Skipped, with the reason, only where Chromium is not installed (CI installs Debian's
``chromium``, see ``.ci/system-packages``).
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

PROBE = (
    "<script>window.addEventListener('load', () => {"
    "const ok = [...document.images].filter(i => i.complete && i.naturalWidth > 0).length;"
    "document.body.setAttribute('data-images-ok', ok);"
    "document.body.setAttribute('data-images', document.images.length);"
    "document.body.setAttribute('data-tables', document.querySelectorAll('table').length);"
    "});</script>"
)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return name
    pytest.skip("Chromium is not installed (CI installs Debian's chromium)")


def rendered(html_path, tmp_path) -> dict[str, int]:
    """Open a copy of the report with a probe script; what the browser counted."""
    page = tmp_path / "probe.html"
    page.write_text(html_path.read_text().replace("</body>", PROBE + "</body>"))
    dom = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    body = re.search(r"<body([^>]*)>", dom).group(1)
    return {k: int(v) for k, v in re.findall(r'data-([a-z-]+)="(\d+)"', body)}


@pytest.mark.slow
def test_participant_report_renders_in_chromium(tmp_path):
    from t2quant.cli import main
    from t2quant.synth.writer import StudySettings, write_synthetic_study

    write_synthetic_study(tmp_path / "bids", StudySettings(n_participants=2, seed=3))
    args = [str(tmp_path / "bids"), str(tmp_path / "out"), "participant", "--participant-label",
            "01", "--session-label", "baseline", "--plugin", "Linear"]  # fmt: skip
    assert main(args) == 0
    seen = rendered(tmp_path / "out" / "sub-01.html", tmp_path)
    assert seen == {"images-ok": 3, "images": 3, "tables": 1}
