"""The HTML report: model from a real DuckDB file, every section and card, privacy, size and escaping."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from segkit import charts
from segkit.config import Settings
from segkit.errors import SegkitError
from segkit.clustering import run_clustering
from segkit.report import build_report_model, render_report, write_report
from segkit.report.privacy import suppress_counts
from segkit.report.view import Table
from segkit.store import migration
from segkit.warehouse import connect

SECTION_IDS = ("summary", "segments", "sizes", "profiles", "customers-map", "choosing-k", "rfm-grid", "crosstab",
               "data-quality", "migration", "methods")
# (share of customers, median days since last order, orders range, mean log spend) of planted customer groups.
GROUPS = (
    (0.08, 12, (8, 40), 8.3),
    (0.20, 35, (3, 9), 7.0),
    (0.15, 210, (2, 6), 6.6),
    (0.30, 25, (1, 1), 5.4),
    (0.27, 320, (1, 2), 5.2),
)


def make_report_db(path: Path, n_customers: int = 3_000, seed: int = 7, first_id: int = 12_346,
                   **settings: object) -> Path:
    """A DuckDB file with the dbt tables the report reads, segmented by the real `run_clustering`.

    settings: Settings fields for the clustering run (e.g. k=5 to skip the k scan on big files).
    """
    write_dbt_tables(path, n_customers, seed, first_id)
    fast = {"k_max": 7, "stability_resamples": 2, "silhouette_sample_size": 2_000}  # keeps the k scan to seconds
    run_clustering(settings_for(path, **{**fast, **settings}))
    return path


def write_dbt_tables(path: Path, n_customers: int, seed: int, first_id: int) -> None:
    """customer_rfm (from planted customer groups), customer_rfm_scores and data_quality_summary, as dbt builds them."""
    rng = np.random.default_rng(seed)
    sizes = [int(share * n_customers) for share, *_ in GROUPS]
    sizes[0] += n_customers - sum(sizes)
    frames = []
    for size, (_, recency, (f_low, f_high), spend) in zip(sizes, GROUPS):
        frames.append(pd.DataFrame({
            "recency_days": np.clip(rng.gamma(2.0, recency / 2.0, size), 1, 700).round().astype(int),
            "frequency": rng.integers(f_low, f_high + 1, size),
            "monetary_total": np.exp(rng.normal(spend, 0.6, size)).round(2) + 1,
        }))
    rfm = pd.concat(frames, ignore_index=True).sample(frac=1, random_state=seed).reset_index(drop=True)
    rfm["customer_id"] = [str(first_id + i) for i in range(len(rfm))]
    analysis_date = pd.Timestamp("2011-12-10")
    rfm["analysis_date"] = analysis_date
    rfm["last_order_date"] = analysis_date - pd.to_timedelta(rfm["recency_days"], unit="D")
    rfm["tenure_days"] = rfm["recency_days"] + rng.integers(0, 400, len(rfm)) * (rfm["frequency"] > 1)
    rfm["first_order_date"] = analysis_date - pd.to_timedelta(rfm["tenure_days"], unit="D")
    rfm["avg_order_value"] = (rfm["monetary_total"] / rfm["frequency"]).round(2)
    rfm["avg_days_between_orders"] = np.where(
        rfm["frequency"] > 1, (rfm["tenure_days"] - rfm["recency_days"]) / (rfm["frequency"] - 1).clip(lower=1), np.nan)
    rfm["returns_total"] = (rfm["monetary_total"] * rng.uniform(0, 0.05, len(rfm))).round(2)
    rfm["return_rate"] = rfm["returns_total"] / rfm["monetary_total"]
    rfm["distinct_products"] = (rfm["frequency"] * rng.integers(1, 12, len(rfm))).astype(int)
    rfm["top_category_share"] = rng.uniform(0.2, 1.0, len(rfm))

    with duckdb.connect(str(path)) as con:
        con.register("rfm_df", rfm)
        con.execute("""create or replace table customer_rfm as select customer_id, first_order_date::date as first_order_date,
            last_order_date::date as last_order_date, analysis_date::date as analysis_date, recency_days::integer as recency_days,
            tenure_days::integer as tenure_days, frequency::integer as frequency, monetary_total::decimal(18,2) as monetary_total,
            avg_order_value::decimal(18,2) as avg_order_value, avg_days_between_orders, returns_total::decimal(18,2) as returns_total,
            return_rate, distinct_products::integer as distinct_products, top_category_share from rfm_df""")
        con.execute("""create or replace table customer_rfm_scores as
            with scored as (
                select customer_id, ntile(5) over (order by recency_days desc) as r_score,
                       ntile(5) over (order by frequency) as f_score, ntile(5) over (order by monetary_total) as m_score
                from customer_rfm)
            select *, r_score::varchar || f_score::varchar || m_score::varchar as rfm_score,
                case when r_score >= 4 and f_score >= 4 then 'Champions'
                     when r_score >= 3 and f_score >= 3 then 'Loyal Customers'
                     when r_score >= 4 and f_score = 1 then 'New Customers'
                     when r_score >= 4 then 'Potential Loyalist'
                     when r_score = 3 then 'Need Attention'
                     when r_score <= 2 and f_score >= 4 then 'Can''t Lose Them'
                     when r_score = 2 then 'At Risk'
                     when f_score >= 2 then 'Hibernating'
                     else 'Lost' end as rfm_segment
            from scored""")
        read = int(len(rfm) * 9.7)
        quality = [("rows_read", 0, read, "Purchase lines in the source files."),
                   ("rows_kept", 1, int(read * 0.74), "Lines used for the customer features."),
                   ("missing_customer_id", 2, int(read * 0.2), "Lines without a customer id (guest checkouts)."),
                   ("cancelled", 3, int(read * 0.04), "Cancellation lines (invoice starting with C)."),
                   ("non_positive_price", 4, read - int(read * 0.74) - int(read * 0.2) - int(read * 0.04),
                    "Zero or negative prices (adjustments, samples).")]
        con.execute("""create or replace table data_quality_summary (reason varchar, check_order integer,
                       row_count bigint, share_of_rows_read double, description varchar)""")
        con.executemany("insert into data_quality_summary values (?, ?, ?, ?, ?)",
                        [(r, o, n, n / read, d) for r, o, n, d in quality])


def settings_for(db: Path, **changes) -> Settings:
    return Settings(db_path=db, project_dir=db.parent, **changes)


@pytest.fixture(scope="module")
def report_db(tmp_path_factory) -> Path:
    return make_report_db(tmp_path_factory.mktemp("report") / "segkit.duckdb")


@pytest.fixture(scope="module")
def report_html(report_db) -> str:
    return write_report(settings_for(report_db)).read_text(encoding="utf-8")


def customer_ids(db: Path) -> list[str]:
    with connect(db, read_only=True) as con:
        return [row[0] for row in con.execute("select customer_id from customer_rfm").fetchall()]


def latest_run(db: Path) -> tuple[str, int]:
    with connect(db, read_only=True) as con:
        return con.execute("select run_id, chosen_k from cluster_runs order by created_at desc limit 1").fetchone()


def test_model_is_built_from_the_database(report_db):
    run_id, k = latest_run(report_db)
    with connect(report_db, read_only=True) as con:
        model = build_report_model(con, None, settings_for(report_db))
    assert model.run.run_id == run_id
    assert len(model.segments) == k >= 3
    assert sum(c.customers for c in model.segments) == 3_000
    assert model.migration is None
    assert [r.k for r in model.k_rows if r.is_chosen] == [k]
    assert {q.reason for q in model.quality} >= {"rows_read", "rows_kept", "cancelled"}
    assert 0 < sum(len(points) for _, points in model.scatter) <= model.scatter_sample_size
    assert all(card.goal and card.actions for card in model.segments)


def test_every_section_and_every_segment_card_is_in_the_page(report_db, report_html):
    for section in SECTION_IDS:
        assert f'<section id="{section}"' in report_html, section
    with connect(report_db, read_only=True) as con:
        segments = con.execute("select segment_id, segment_name from segment_profiles").fetchall()
    for segment_id, name in segments:
        assert f'id="segment-{segment_id}"' in report_html
        assert name in report_html
    assert "Not available yet" in report_html


def test_a_k_off_the_shortlist_reads_not_resampled_in_the_page_and_the_summary(report_db, report_html):
    from segkit import store
    from segkit.terminal import summary_text

    with connect(report_db, read_only=True) as con:
        run = store.read_run(con)
    measured = {s.k: s.stability_ari for s in run.k_selection if np.isfinite(s.stability_ari)}
    assert run.chosen_k in measured and len(measured) < len(run.k_selection)
    table = re.search(r'<table class="data" id="k-table">.*?</table>', report_html, re.S).group(0)
    rows = {int(k): row for k, row in re.findall(r'<tr[^>]*><td class="num">(\d+)</td>(.*?)</tr>', table, re.S)}
    k_lines = summary_text(run, settings_for(report_db), None).split("stability\n", 1)[1].splitlines()
    summary = {int(line.split()[0].rstrip("*")): line for line in k_lines if re.match(r"^\s*\d+\*? ", line)}
    for score in run.k_selection:
        expected = f"{measured[score.k]:.3f}" if score.k in measured else "not resampled"
        assert f'<td class="num">{expected}</td>' in rows[score.k], rows[score.k]
        assert summary[score.k].endswith(expected), summary[score.k]


def test_the_page_is_self_contained(report_html):
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", report_html)
    assert "@import" not in report_html and "<link" not in report_html
    assert "@media print" in report_html and 'name="viewport"' in report_html


def test_no_customer_id_appears_in_the_page(report_db, report_html):
    # Ids are 5-digit numbers like 13085. Formatted figures always carry thousands separators (13,085) and
    # chart coordinates stay below 2,000, so a whole-token match on any id means a real leak.
    tokens = set(re.findall(r"[A-Za-z0-9]+", report_html))
    leaked = [i for i in customer_ids(report_db) if i in tokens]
    assert not leaked, f"customer ids in the report: {leaked[:5]}"


def test_the_page_says_how_to_export_the_customers_it_does_not_name(report_db, report_html):
    run_id, _ = latest_run(report_db)
    assert f"segkit export --run-id {run_id} --segment 1 --out segment_1.csv" in report_html


def test_no_customer_id_appears_even_as_a_substring_when_ids_are_distinctive(tmp_path):
    db = make_report_db(tmp_path / "segkit.duckdb", n_customers=800, first_id=0, k=4)
    with duckdb.connect(str(db)) as con:
        for table in ("customer_rfm", "customer_rfm_scores", "customer_segments", "segment_assignment_history"):
            con.execute(f"update {table} set customer_id = 'CUST-' || customer_id || '-X'")
    html = write_report(settings_for(db)).read_text(encoding="utf-8")
    assert "CUST-" not in html


def test_segments_below_the_minimum_size_are_suppressed(report_db):
    with connect(report_db, read_only=True) as con:
        sizes = con.execute("select segment_id, segment_name, customers, revenue from segment_profiles "
                            "order by customers").fetchall()
        threshold = sizes[0][2] + 1  # the smallest segment falls below it, the others stay visible
        model = build_report_model(con, None, settings_for(report_db, min_segment_size=threshold))
    html = render_report(model)
    small_id, small_name, customers, revenue = sizes[0]
    card = re.search(rf'<article class="card suppressed" id="segment-{small_id}".*?</article>', html, re.S)
    assert card and f"fewer than {threshold:,} customers" in card.group(0)
    assert f"{revenue:,.0f}" not in html and f"{customers:,} customers" not in html
    assert f"<title>{small_name}: " not in html  # no chart tooltip carries its figures
    assert small_id not in {segment_id for segment_id, _ in model.scatter}
    assert small_name not in model.crosstab.row_labels
    # One hidden segment would be the printed total minus the others, so the next smallest is hidden too.
    below = sum(1 for s in sizes if s[2] < threshold)
    assert sum(card.suppressed for card in model.segments) == (2 if below == 1 else below)
    assert next(card for card in model.segments if card.segment_id == sizes[1][0]).suppressed


def test_small_cells_of_the_rfm_grid_and_cross_tab_are_hidden(report_db):
    with connect(report_db, read_only=True) as con:
        model = build_report_model(con, None, settings_for(report_db, min_segment_size=50))
    for table in (model.rfm_grid, model.crosstab):
        assert all(n is None or n == 0 or n >= 50 for row in table.counts for n in row)


def test_page_stays_small_with_many_customers(tmp_path):
    db = make_report_db(tmp_path / "big.duckdb", n_customers=200_000, first_id=1_000_000, k=5,
                        fit_sample_size=20_000, stability_resamples=0)
    path = write_report(settings_for(db))
    assert path.stat().st_size < 1_000_000, f"{path.stat().st_size:,} bytes"


def test_segment_names_are_escaped(report_db):
    with connect(report_db, read_only=True) as con:
        model = build_report_model(con, None, settings_for(report_db, segment_names={1: "<script>alert(1)</script>"}))
    html = render_report(model)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert model.segments[0].name == "<script>alert(1)</script>"


def test_report_goes_to_reports_folder_or_report_path(report_db, tmp_path):
    default = write_report(settings_for(report_db))
    assert default == report_db.parent / "reports" / f"segments_{latest_run(report_db)[0]}.html"
    chosen = write_report(settings_for(report_db, report_path=tmp_path / "out" / "latest.html"))
    assert chosen == tmp_path / "out" / "latest.html" and chosen.is_file()


def test_unknown_run_and_missing_tables_are_explained(report_db, tmp_path):
    with pytest.raises(SegkitError, match="no run 'nope'"):
        write_report(settings_for(report_db), run_id="nope")
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    with pytest.raises(SegkitError, match="segkit cluster"):
        write_report(settings_for(empty))


@pytest.fixture(scope="module")
def two_runs_db(report_db, tmp_path_factory) -> tuple[Path, str, str]:
    """A copy of report_db with a second run (same k, another seed): (path, older run id, newer run id)."""
    db = tmp_path_factory.mktemp("two_runs") / "segkit.duckdb"
    shutil.copy(report_db, db)
    older, k = latest_run(db)
    run_clustering(settings_for(db, k=k, seed=11, stability_resamples=2, write_report=False))
    newer, _ = latest_run(db)
    assert newer != older
    return db, older, newer


def test_an_older_run_is_rendered_from_its_own_members(two_runs_db):
    db, older, newer = two_runs_db
    with connect(db, read_only=True) as con:
        model = build_report_model(con, older, settings_for(db, min_segment_size=1))  # nothing hidden
        sizes = dict(con.execute("select segment_id, customers from segment_profiles where run_id = ?",
                                 [older]).fetchall())
    assert model.run.run_id == older and model.migration is None  # the older run was the first one
    assert {c.segment_id: c.customers for c in model.segments} == sizes
    assert sum(n or 0 for row in model.crosstab.counts for n in row) == sum(sizes.values()) == 3_000
    path = write_report(settings_for(db), run_id=older)
    assert path.name == f"segments_{older}.html" and older in path.read_text(encoding="utf-8")


def test_currency_is_shown_with_revenue_figures(report_db):
    with connect(report_db, read_only=True) as con:
        symbol = build_report_model(con, None, settings_for(report_db, currency="£"))
        code = build_report_model(con, None, settings_for(report_db, currency="GBP"))
    top = max(symbol.segments, key=lambda c: c.revenue_share)
    assert symbol.currency == "£" and code.currency == "GBP"
    assert f"bring £{top.revenue:,.0f} (" in " ".join(symbol.summary)
    assert f"bring {top.revenue:,.0f} GBP (" in " ".join(code.summary)
    html = render_report(symbol)
    assert f"<dd>£{top.revenue:,.0f}</dd>" in html  # the segment card's revenue


def test_slipping_away_revenue_comes_from_the_naming_rules(report_db):
    with connect(report_db, read_only=True) as con:
        model = build_report_model(con, None, settings_for(report_db))
        renamed = build_report_model(con, None, settings_for(
            report_db, segment_names={c.segment_id: f"Group {c.segment_id}" for c in model.segments}))
    slipping = [c for c in model.segments if c.name.split(" (")[0] in ("Big spenders slipping away",
                                                                        "Lapsing repeat buyers", "Dormant", "Long gone")]
    assert slipping, [c.name for c in model.segments]
    line = next(line for line in model.summary if "drifting away" in line)
    assert f"{sum(c.customers for c in slipping):,} customers" in line
    assert not any("drifting away" in line for line in renamed.summary)  # user names never count


def lone_hidden_cells(table: Table, rows: bool = True, columns: bool = True) -> list[str]:
    """Rows and columns with exactly one hidden cell and a non-zero cell shown: the hidden one is the total
    minus the cells shown. (With only zeros shown, the total is below the minimum and hidden with its segment.)"""
    def lone(line):
        return sum(n is None for n in line) == 1 and any(n for n in line if n is not None)
    found = [f"row {label}" for label, row in zip(table.row_labels, table.counts) if rows and lone(row)]
    found += [f"column {label}" for label, col in zip(table.col_labels, zip(*table.counts)) if columns and lone(col)]
    return found


def test_complementary_suppression_leaves_no_lone_hidden_cell():
    # The reviewer's case: 956 shown next to a hidden 20, under a segment of 976 customers.
    assert suppress_counts([[956, 20], [3_000, 1_200]], 400) == ((None, None), (None, None))
    # The second cell is the smallest non-zero one left, and never a cell to keep (published elsewhere).
    assert suppress_counts([[500, 5, 450, 800], [600, 700, 900, 1_000]], 400, keep={(0, 2)}) == (
        (None, None, 450, 800), (None, None, 900, 1_000))
    # Zeros are never hidden, so hiding does not cascade through empty cells.
    assert suppress_counts([[500, 5, 0], [0, 0, 7_000]], 400) == ((None, None, 0), (0, 0, 7_000))
    assert suppress_counts([[0, 400], [401, 402]], 400) == ((0, 400), (401, 402))
    # Only lines whose totals are published elsewhere need a second hidden cell.
    assert suppress_counts([[956, 20], [3_000, 1_200]], 400, published=(True, False)) == (
        (None, None), (3_000, 1_200))
    assert suppress_counts([[956, 20], [3_000, 1_200]], 400, published=(False, False)) == (
        (956, None), (3_000, 1_200))


def test_no_hidden_cell_of_any_count_table_can_be_worked_out(two_runs_db):
    db, older, newer = two_runs_db
    with connect(db, read_only=True) as con:
        small = sorted(n for n in migration(con, older, newer)["customers"] if n > 0)
        for minimum in (small[0] + 1, 400):
            model = build_report_model(con, newer, settings_for(db, min_segment_size=minimum))
            assert model.migration is not None
            # Segment sizes are published, classic RFM segment and score totals are not.
            assert not lone_hidden_cells(model.crosstab, columns=False), (minimum, model.crosstab)
            assert not lone_hidden_cells(model.migration.table), (minimum, model.migration.table)
            for table in (model.rfm_grid, model.crosstab, model.migration.table):
                assert all(n is None or n == 0 or n >= minimum for row in table.counts for n in row)
            assert any(n is None for row in model.migration.table.counts for n in row)
    html = render_report(model)
    assert "hidden so that such a cell cannot be worked out" in html and f"<{minimum}" not in html


# Machado, Oliveira and Fernandes (2009), severity 1: linear-RGB matrices that simulate each colour blindness.
COLOUR_BLINDNESS = {
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]],
}


def cielab(hex_colour: str, simulate=np.eye(3)) -> np.ndarray:
    """CIELAB (D65) of an sRGB colour, as seen through a simulation matrix."""
    srgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255
    linear = np.clip(np.array(simulate) @ np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4), 0, 1)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    f = [v ** (1 / 3) if v > 216 / 24389 else (24389 / 27 * v + 16) / 116 for v in xyz / [0.95047, 1.0, 1.08883]]
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_ten_segment_colours_stay_apart_for_colour_blind_readers():
    colours = [charts.segment_colour(i) for i in range(1, 11)]
    assert len(set(colours)) == 10
    for name, matrix in {"normal vision": np.eye(3), **COLOUR_BLINDNESS}.items():
        closest = min(np.linalg.norm(cielab(a, matrix) - cielab(b, matrix))
                      for i, a in enumerate(colours) for b in colours[i + 1:])
        assert closest >= 15, f"two of the 10 segment colours are {closest:.1f} CIELAB units apart under {name}"
    assert all(cielab(c)[0] <= 85 for c in colours), "every colour shows on white paper"
