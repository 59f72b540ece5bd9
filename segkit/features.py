"""The feature transform: log for heavy tails, winsorising, standardising; applied in numpy.

The transform is three steps, each applied per feature, fitted on the sample as a scikit-learn Pipeline
(segkit.feature_pipeline):

1. ``log``: ``ln(1 + x)`` for the features in ``LOG_FEATURES`` (counts, days and money, all >= 0 and
   right-skewed); rates and shares are left as they are.
2. ``winsorize``: clip to the ``winsor_quantiles`` of the fit sample (in post-log units), so a handful of
   extreme customers cannot pull a centroid or the scale on their own. With the default (0.001, 0.999)
   about 0.2% of customers are clipped; they are still assigned a segment.
3. ``scale``: StandardScaler (subtract the mean, divide by the standard deviation; 1 for a constant).

`transform_parameters` turns the fitted pipeline into rows of table ``feature_transform``, the contract this
module reads: `apply_transform` applies it in numpy, and segkit.sql in SQL, so that every customer is transformed
inside the engine:
``(least(greatest(CASE WHEN log_transform THEN ln(1 + x) ELSE x END, clip_lower), clip_upper) - center) / scale``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

LOG_FEATURES = frozenset({
    "recency_days", "tenure_days", "frequency", "monetary_total", "avg_order_value",
    "avg_days_between_orders", "returns_total", "distinct_products",
})


def log_mask(features: Sequence[str]) -> np.ndarray:
    return np.array([feature in LOG_FEATURES for feature in features], dtype=bool)


def apply_transform(parameters: pd.DataFrame, values: np.ndarray) -> np.ndarray:
    """Original units -> scaled units with a stored transform (rows of feature_transform, in feature order)."""
    X = np.array(values, dtype=float, ndmin=2)
    logged = parameters["log_transform"].to_numpy(dtype=bool)
    X[:, logged] = np.log1p(X[:, logged])
    X = np.clip(X, parameters["clip_lower"].to_numpy(dtype=float), parameters["clip_upper"].to_numpy(dtype=float))
    return (X - parameters["center"].to_numpy(dtype=float)) / parameters["scale"].to_numpy(dtype=float)


def unscale(parameters: pd.DataFrame, scaled: np.ndarray) -> np.ndarray:
    """Map points in scaled space back to original units (the inverse of scale and log; clipping is not undone)."""
    values = np.asarray(scaled, dtype=float) * parameters["scale"].to_numpy() + parameters["center"].to_numpy()
    logged = parameters["log_transform"].to_numpy()
    values[..., logged] = np.expm1(values[..., logged])
    return values
