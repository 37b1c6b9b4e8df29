"""The HTML reports in a real headless Chromium: every image decoded and every table, and the
review loop end to end (rate in the participant report, export, apply at the group level).

Skipped, with the reason, only where Chromium is not installed (CI installs Debian's
``chromium``, see ``.ci/system-packages``) or the ``playwright`` package (the ``dev`` extra)
that drives it for the review loop is missing. Playwright drives the system Chromium; it never
downloads a browser.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pandas as pd
import pytest

from t2quant.io import read_tsv

PROBE = (
    "<script>window.addEventListener('load', () => {"
    "const ok = [...document.images].filter(i => i.complete && i.naturalWidth > 0).length;"
    "document.body.setAttribute('data-images-ok', ok);"
    "document.body.setAttribute('data-images', document.images.length);"
    "document.body.setAttribute('data-tables', document.querySelectorAll('table').length);"
    "});</script>"
)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
NAME_PROMPT = "Your name or initials, saved with every rating:"
KEYS = ["participant_id", "session", "level"]


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


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Two participants (one per arm), baseline and wk06, through the participant level."""
    from t2quant.cli import main
    from t2quant.synth.writer import StudySettings, write_synthetic_study

    root = tmp_path_factory.mktemp("review")
    write_synthetic_study(root / "bids", StudySettings(n_participants=2, seed=3))
    args = [str(root / "bids"), str(root / "out"), "participant", "--session-label",
            "baseline", "wk06", "--work-dir", str(root / "work"), "--plugin", "Linear",
            "--t2-method", "loglinear"]  # fmt: skip
    assert main(args) == 0
    return root


@pytest.fixture(scope="module")
def browser():
    executable = shutil.which(chromium())
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package (the dev extra) drives Chromium"
    )
    with sync_api.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.mark.slow
def test_participant_report_renders_in_chromium(study, tmp_path):
    report = study / "out" / "sub-01.html"
    images = report.read_text().count("<img")
    assert images >= 2 * (3 + 2)  # per session: 3 sagittal views (or more), decays, R² map
    seen = rendered(report, tmp_path)
    assert seen == {"images-ok": images, "images": images, "tables": 1 + 2}


def _open(context, path, dialogs: list[str]):
    """A page of ``path`` that answers the rater's name prompt; errors are collected."""
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))

    def answer(dialog):
        dialogs.append(dialog.message)
        dialog.accept("Ana" if dialog.message == NAME_PROMPT else "")

    page.on("dialog", answer)
    page.goto(path.as_uri())
    return page


def _page_works(page) -> None:
    """The disc tables fit the window, the criteria show on demand, figures enlarge."""
    width = page.evaluate("document.documentElement.clientWidth")
    rights = page.evaluate("[...document.querySelectorAll('table')]"
                           ".map(t => t.getBoundingClientRect().right)")  # fmt: skip
    assert len(rights) == 3 and max(rights) <= width
    criteria = page.locator("#ses-baseline tr.criteria").first
    assert not criteria.is_visible()
    page.click("#ses-baseline label[for^=crit]")
    assert criteria.is_visible()
    figure = page.locator("#ses-baseline .views .zoom").nth(1)
    figure.click()
    assert "zoomed" in figure.get_attribute("class")
    page.keyboard.press("Escape")
    assert "zoomed" not in figure.get_attribute("class")


def _disc(page, session: str, level: str):
    return page.locator(f'tr.disc[data-session="{session}"][data-level="{level}"]')


@pytest.mark.slow
def test_review_loop_from_the_report_to_the_group_level(study, browser, tmp_path):
    from t2quant.cli import main

    out = study / "out"
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 800})
    dialogs: list[str] = []
    page = _open(context, out / "sub-01.html", dialogs)
    _page_works(page)
    excluded = _disc(page, "baseline", "L4/L5")
    excluded.locator("input.reason").fill("endplate inside the mask")
    excluded.locator('button[data-decision="exclude"]').click()
    corrected = _disc(page, "wk06", "L5/S1")
    suggested = int(corrected.locator("button.suggested").get_attribute("data-grade"))
    grade = 1 if suggested != 1 else 2
    corrected.locator(f'button[data-grade="{grade}"]').click()
    confirmed = _disc(page, "baseline", "T12/L1")
    kept = int(confirmed.locator("button.suggested").get_attribute("data-grade"))
    confirmed.locator("button.suggested").click()
    assert dialogs == [NAME_PROMPT]  # the name is asked once
    page.reload()  # the ratings stay in the browser
    assert page.inner_text("#rated-count") == "3 discs rated"
    assert page.inner_text("#rater-name") == "Ana"
    exclude = _disc(page, "baseline", "L4/L5").locator('button[data-decision="exclude"]')
    assert exclude.get_attribute("aria-pressed") == "true"
    with page.expect_download() as download:
        page.click("#export-ratings")
    assert download.value.suggested_filename == "sub-01_desc-ratings.tsv"
    (tmp_path / "ratings").mkdir()
    saved = tmp_path / "ratings" / download.value.suggested_filename
    download.value.save_as(saved)
    assert page.errors == [] and dialogs == [NAME_PROMPT]
    context.close()

    exported = pd.read_csv(saved, sep="\t", dtype=str, keep_default_na=False)
    assert exported.columns.tolist() == ["rater", "time", "participant_id", "session", "level",
                                         "decision", "grade", "reason"]  # fmt: skip
    assert exported.drop(columns="time").values.tolist() == [
        ["Ana", "sub-01", "baseline", "T12/L1", "accept", str(kept), "n/a"],
        ["Ana", "sub-01", "baseline", "L4/L5", "exclude", "n/a", "endplate inside the mask"],
        ["Ana", "sub-01", "wk06", "L5/S1", "accept", str(grade), "n/a"],
    ]  # fmt: skip
    times = pd.to_datetime(exported["time"], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")

    args = [str(study / "bids"), str(out), "group", "--nprocs", "1", "--ratings",
            str(tmp_path / "ratings")]  # fmt: skip
    assert main(args) == 0
    table = read_tsv(out / "group" / "discs.tsv").set_index(KEYS)
    assert table.loc[("sub-01", "baseline", "L4/L5"), ["qc_status", "qc_reason"]].tolist() == [
        "excluded", "excluded by rater: endplate inside the mask"]  # fmt: skip
    assert (table["qc_status"] == "excluded").sum() == 1
    assert table.loc[("sub-01", "wk06", "L5/S1"), ["pfirrmann_suggested", "pfirrmann_manual",
                                                   "pfirrmann"]].tolist() == [suggested, grade,
                                                                              grade]  # fmt: skip
    assert table.loc[("sub-01", "baseline", "T12/L1"), "pfirrmann_manual"] == kept
    assert table["pfirrmann_manual"].notna().sum() == 2

    report = browser.new_page()
    report.goto((out / "group.html").as_uri())
    audit = report.evaluate("""() => {
        const title = [...document.querySelectorAll('h2')]
            .find(h => h.textContent.startsWith('Ratings applied'));
        let table = title.nextElementSibling;
        while (table.tagName !== 'TABLE') table = table.nextElementSibling;
        return [...table.querySelectorAll('tbody tr')]
            .map(r => [...r.cells].map(c => c.textContent));
    }""")  # fmt: skip
    report.close()
    assert audit == [
        ["Ana", times[1], "sub-01 ses-baseline L4/L5", "excluded", "ok -> excluded",
         "endplate inside the mask", "sub-01_desc-ratings.tsv"],
        ["Ana", times[2], "sub-01 ses-wk06 L5/S1", "grade corrected", f"{suggested} -> {grade}",
         "n/a", "sub-01_desc-ratings.tsv"],
    ]  # fmt: skip
    applied = read_tsv(out / "group" / "ratings_applied.tsv")
    changes = applied[["level", "change"]].values.tolist()
    assert changes == [["L4/L5", "excluded"], ["L5/S1", "grade corrected"]]
