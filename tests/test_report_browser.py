"""The report in a real headless Chromium, offline: no console errors, every chart drawn, every card shown.

Driver: Playwright for Python (pip package `playwright`) driving Debian's /usr/bin/chromium (apt package
`chromium`). Never run `playwright install`: it downloads browsers. Screenshots go to
$SEGKIT_SCREENSHOT_DIR (default: the test's tmp folder); their paths are printed (see them with -s or -rP).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from segkit.report import write_report
from tests.test_report import SECTION_IDS, latest_run, make_report_db, settings_for

from playwright import sync_api as playwright_api

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("SEGKIT_CHROMIUM", "/usr/bin/chromium"))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def report_path(tmp_path_factory) -> Path:
    db = make_report_db(tmp_path_factory.mktemp("browser") / "segkit.duckdb", n_customers=4_000)
    return write_report(settings_for(db))


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        yield browser
        browser.close()


def screenshot_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SEGKIT_SCREENSHOT_DIR", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize("width, height, label", [(1280, 900, "desktop"), (390, 844, "phone")])
def test_report_renders_offline_without_errors(browser, report_path, tmp_path, width, height, label):
    _, k = latest_run(report_path.parent.parent / "segkit.duckdb")
    context = browser.new_context(viewport={"width": width, "height": height}, offline=True)
    page = context.new_page()
    problems, requests = [], []
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(report_path.as_uri(), wait_until="load")

    assert not problems, problems
    assert [url for url in requests if not url.startswith("file:")] == []

    for section in SECTION_IDS:
        assert page.locator(f"section#{section}").is_visible(), section

    charts = page.eval_on_selector_all("svg.chart", """svgs => svgs.map(svg => {
        const box = svg.getBoundingClientRect();
        return {label: svg.getAttribute('aria-label'), width: box.width, height: box.height,
                marks: svg.querySelectorAll('path, rect, circle, line').length};
    })""")
    assert len(charts) >= 9
    for chart in charts:
        assert chart["width"] > 100 and chart["height"] > 50 and chart["marks"] > 2, chart

    cards = page.locator("article.card")
    assert cards.count() == k
    for index in range(cards.count()):
        assert cards.nth(index).is_visible()

    # Nothing may stick out sideways on a phone except inside the scrollable chart and table boxes.
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"page is {overflow}px wider than the {label} screen"

    shot = screenshot_dir(tmp_path) / f"report-{label}.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\n{label} screenshot: {shot}")
    context.close()


def test_report_prints_to_pdf(browser, report_path, tmp_path):
    page = browser.new_page()
    page.goto(report_path.as_uri())
    page.emulate_media(media="print")
    assert page.locator("nav").is_hidden()
    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    page.close()
