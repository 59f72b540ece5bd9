"""The feature pipeline, its stored parameters, and the same transform in SQL."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from segkit.feature_pipeline import build_pipeline, transform_parameters
from segkit.features import unscale
from segkit.sql import scaled_sql

FEATURES = ["recency_days", "frequency", "monetary_total", "return_rate"]


@pytest.fixture
def customers() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 2_000
    frame = pd.DataFrame({
        "recency_days": rng.integers(1, 700, n),
        "frequency": rng.geometric(0.3, n),
        "monetary_total": np.round(rng.lognormal(5, 1.5, n), 2),
        "return_rate": rng.beta(1, 20, n),
    })
    frame.loc[0, "monetary_total"] = 5_000_000.0  # one extreme customer
    return frame


def fitted(customers, quantiles=(0.01, 0.99)):
    pipeline = build_pipeline(FEATURES, quantiles)
    X = pipeline.fit_transform(customers[FEATURES].to_numpy(dtype=float))
    return pipeline, X, transform_parameters(pipeline, FEATURES)


def test_sql_transform_equals_python_pipeline(customers):
    _, X, parameters = fitted(customers)
    with duckdb.connect() as con:
        con.register("frame", customers)
        con.execute("""create table customer_rfm as select cast(recency_days as integer) as recency_days,
            cast(frequency as integer) as frequency, cast(monetary_total as decimal(18,2)) as monetary_total,
            return_rate from frame""")
        expressions = ", ".join(scaled_sql(row) for _, row in parameters.iterrows())
        from_sql = con.execute(f"select {expressions} from customer_rfm").fetchnumpy()
    np.testing.assert_allclose(np.column_stack(list(from_sql.values())), X, rtol=0, atol=1e-9)


def test_log_is_applied_to_heavy_tailed_features_only(customers):
    _, _, parameters = fitted(customers)
    assert parameters.set_index("feature")["log_transform"].to_dict() == {
        "recency_days": True, "frequency": True, "monetary_total": True, "return_rate": False,
    }


def test_outliers_are_clipped_at_the_winsor_quantiles(customers):
    _, X, parameters = fitted(customers)
    monetary = parameters.set_index("feature").loc["monetary_total"]
    logged = np.log1p(customers["monetary_total"])
    assert monetary.clip_lower == pytest.approx(np.quantile(logged, 0.01))
    assert monetary.clip_upper == pytest.approx(np.quantile(logged, 0.99))
    top_scaled = (monetary.clip_upper - monetary.center) / monetary.scale
    assert X[0, 2] == pytest.approx(top_scaled)  # the extreme customer sits at the clip, not far beyond it
    assert X[:, 2].max() == pytest.approx(top_scaled)


def test_scaled_features_have_zero_mean_and_unit_variance(customers):
    _, X, _ = fitted(customers)
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(X.std(axis=0), 1, atol=1e-9)


def test_unscale_inverts_the_transform_inside_the_clip_bounds(customers):
    _, X, parameters = fitted(customers, quantiles=(0.0, 1.0))
    np.testing.assert_allclose(unscale(parameters, X), customers[FEATURES].to_numpy(dtype=float), rtol=1e-9)
