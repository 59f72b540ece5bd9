"""The report in a real headless Chromium, offline: no console errors, every chart drawn, every card shown.

Driver: Playwright for Python (pip package `playwright`) driving Debian's /usr/bin/chromium (apt package
`chromium`). Never run `playwright install`: it downloads browsers. Screenshots go to
$SEGKIT_SCREENSHOT_DIR (default: the test's tmp folder); their paths are printed (see them with -s or -rP).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from pathlib import Path

import pytest

from segkit.clustering import run_clustering
from segkit.config import Settings
from segkit.demo_data import DEMO_CURRENCY
from segkit.report import write_report
from tests.conftest import ROOT
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


MANAGER_SECTIONS = ("summary", "segments", "sizes", "migration")


def open_every_details(page) -> None:
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")


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

    # The manager's part is open; the analyst's evidence waits in closed <details>, one click away.
    for section in MANAGER_SECTIONS:
        assert page.locator(f"section#{section}").is_visible(), section
    for section in set(SECTION_IDS) - set(MANAGER_SECTIONS):
        assert page.locator(f"details section#{section}").is_hidden(), section
    open_every_details(page)
    for section in SECTION_IDS:
        assert page.locator(f"section#{section}").is_visible(), section

    charts = page.eval_on_selector_all("svg.chart", """svgs => svgs.map(svg => {
        const box = svg.getBoundingClientRect();
        return {label: svg.getAttribute('aria-label'), width: box.width, height: box.height,
                marks: svg.querySelectorAll('path, rect, circle, line').length};
    })""")
    assert len(charts) >= 6
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


# A reader's review of the demo's report, at desktop and phone width: names, adjectives, paths and tables.

@pytest.fixture(scope="module")
def demo_report(demo_db, tmp_path_factory) -> tuple[Path, Path]:
    """The demo segmented twice, the second time a refit with another seed (a migration and a refit to show), and
    its report with the demo's currency."""
    db = tmp_path_factory.mktemp("reader") / "demo.duckdb"
    shutil.copy(demo_db, db)
    settings = Settings(db_path=db, project_dir=db.parent, write_report=False, stability_resamples=2)
    first = run_clustering(settings)
    run_clustering(dataclasses.replace(settings, k=first.chosen_k, seed=7))
    return db, write_report(dataclasses.replace(settings, currency=DEMO_CURRENCY))


def number_in(text: str) -> float:
    """The first number of a figure as the page writes it: "12 days", "£5,732", "4.5"."""
    return float(re.search(r"-?[\d,]*\.?\d+", text).group().replace(",", ""))


# What a description's phrase says of the segment's median (s) against all customers' (a), from the README's
# naming rules; the figures on the page are rounded, so "at least" allows the rounding of the shown numbers.
CLAIMS = {
    "no more often": ("Orders", lambda s, a: s <= a),
    "at least as often": ("Orders", lambda s, a: s >= a),
    "more often": ("Orders", lambda s, a: s > a),
    "ordered once": ("Orders", lambda s, a: s == 1),
    "no more recently": ("Days since last order", lambda s, a: s >= a),
    "more recently": ("Days since last order", lambda s, a: s < a),
    "at least 3 times as long ago": ("Days since last order", lambda s, a: s >= 3 * a - 1),
    "at least 1.5 times as long": ("Days since last order", lambda s, a: s >= 1.5 * a - 1),
    "longer without an order": ("Days since last order", lambda s, a: s > a),
    "at least 3 times the typical amount": ("Total spend", lambda s, a: s >= 3 * a * 0.995),
    "at least 1.5 times the typical amount": ("Total spend", lambda s, a: s >= 1.5 * a * 0.995),
    "spent more": ("Total spend", lambda s, a: s > a),
    "spent less": ("Total spend", lambda s, a: s < a),
}
# Left in a description once its checked phrases are taken out, these would claim something no figure shows.
ADJECTIVES = ("often", "recent", "frequent", "high", "low", "little", "long", "small", "big", "most", "rare")
WORDS = {"(more recent)": lambda s, a: s < a, "(longer ago)": lambda s, a: s > a, "(fewer)": lambda s, a: s < a,
         "(more)": lambda s, a: s > a, "(less)": lambda s, a: s < a,
         "about the same": lambda s, a: abs(s - a) <= 0.05 * a + 1}


@pytest.mark.parametrize("width, height, label", [(1280, 900, "desktop"), (390, 844, "phone")])
def test_a_reader_finds_no_contradiction_no_path_and_a_table_behind_every_chart(browser, demo_report, tmp_path,
                                                                               width, height, label):
    db, report = demo_report
    context = browser.new_context(viewport={"width": width, "height": height}, offline=True)
    page = context.new_page()
    page.goto(report.as_uri(), wait_until="load")
    shots = screenshot_dir(tmp_path)
    page.screenshot(path=str(shots / f"reader-{label}.png"), full_page=True)
    open_every_details(page)

    # No name is used for two groups: segment names are unique, and none is a classic RFM group's.
    names = page.eval_on_selector_all("article.card h3", "hs => hs.map(h => h.firstChild.nextSibling.textContent.trim())")
    classic = page.eval_on_selector_all("th.rfm-group", "ths => ths.map(th => th.textContent.replace('RFM: ', ''))")
    assert len(names) == len(set(names)) >= 4 and classic
    words = lambda texts: {w.strip(",()").lower() for t in texts for w in t.split()}  # noqa: E731
    assert not words(names) & words(classic), (names, classic)

    # Every card's adjectives agree with the figures beside them.
    cards = page.eval_on_selector_all("article.card:not(.suppressed)", """cards => cards.map(card => ({
        name: card.querySelector('h3').textContent,
        description: card.querySelector('.description').textContent,
        rows: [...card.querySelectorAll('table.compare tbody tr:not(.words)')].map(tr => ({
            label: tr.querySelector('th').textContent,
            values: [...tr.querySelectorAll('td')].map(td => td.textContent),
            words: tr.nextElementSibling.textContent}))}))""")
    checked = 0
    for card in cards:
        figures = {row["label"]: tuple(number_in(v) for v in row["values"]) for row in card["rows"]}
        for row in card["rows"]:
            word = next(w for w in WORDS if w in row["words"])
            assert WORDS[word](*figures[row["label"]]), (card["name"], row)
        text = card["description"].lower()
        for phrase, (label_, holds) in CLAIMS.items():  # longest phrases first: "no more often" before "more often"
            if phrase in text:
                text = text.replace(phrase, "")
                assert holds(*figures[label_]), (card["name"], phrase, figures[label_])
                checked += 1
        unbacked = [word for word in ADJECTIVES if re.search(rf"\b{word}", text)]
        assert not unbacked, f"{card['name']}: {unbacked} in its description is backed by no figure beside it"
    assert checked >= len(cards), "every card's description makes at least one claim that was checked"

    # No absolute path: not the database's, not the project's, not any other.
    html = page.content()
    for folder in (str(db), str(db.parent), str(ROOT), str(Path.home())):
        assert folder not in html
    assert not re.search(r"(?<![\w.])/(?:tmp|work|home|root|Users|var|private|mnt)/", html)
    assert DEMO_CURRENCY in page.inner_text("#sizes-table"), "money carries the demo's currency"

    # Every chart has its numbers in a table a screen reader can read.
    tables = page.eval_on_selector_all("svg.chart", """svgs => svgs.map(svg => {
        const id = svg.closest('figure') && svg.closest('figure').dataset.table;
        const table = id && document.getElementById(id);
        return {label: svg.getAttribute('aria-label'), id, tag: table && table.tagName,
                rows: table ? table.querySelectorAll('tbody tr').length : 0,
                visible: !!table && table.getBoundingClientRect().height > 0};
    })""")
    assert len(tables) >= 6
    for chart in tables:
        assert chart["tag"] == "TABLE" and chart["rows"] >= 1 and chart["visible"], chart
    # The heat maps are tables: their text keeps a readable size on a phone.
    sizes = page.eval_on_selector_all("table.heat td", "tds => tds.map(td => parseFloat(getComputedStyle(td).fontSize))")
    assert sizes and min(sizes) >= 12, min(sizes)
    assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 1

    shot = shots / f"reader-{label}-open.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\n{label} screenshots: {shots / f'reader-{label}.png'} (as opened), {shot} (every section open)")
    context.close()
