"""The feature transform as a scikit-learn Pipeline, fitted on the sample; segkit.features has the contract.

Kept apart from segkit.features so that reading a stored run (the report, assignment, drift) never
imports scikit-learn.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from segkit.features import log_mask


class Winsorizer(TransformerMixin, BaseEstimator):
    """Clip each column to quantiles learnt in `fit` (``clip_lower_``, ``clip_upper_``)."""

    def __init__(self, quantiles: tuple[float, float] = (0.001, 0.999)):
        self.quantiles = quantiles

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=float)
        self.clip_lower_, self.clip_upper_ = np.quantile(X, self.quantiles, axis=0)
        return self

    def transform(self, X):
        return np.clip(np.asarray(X, dtype=float), self.clip_lower_, self.clip_upper_)


def _log1p_columns(X, mask):
    X = np.array(X, dtype=float)
    X[:, mask] = np.log1p(X[:, mask])
    return X


def build_pipeline(features: Sequence[str], winsor_quantiles: tuple[float, float]) -> Pipeline:
    """An unfitted log -> winsorize -> scale pipeline for these features (in this order)."""
    return Pipeline([
        ("log", FunctionTransformer(_log1p_columns, kw_args={"mask": log_mask(features)})),
        ("winsorize", Winsorizer(tuple(winsor_quantiles))),
        ("scale", StandardScaler()),
    ])


def transform_parameters(pipeline: Pipeline, features: Sequence[str]) -> pd.DataFrame:
    """The fitted parameters, one row per feature, in the columns of table feature_transform (without run_id)."""
    winsorize, scale = pipeline.named_steps["winsorize"], pipeline.named_steps["scale"]
    return pd.DataFrame({
        "feature": list(features),
        "feature_order": np.arange(1, len(features) + 1),
        "log_transform": log_mask(features),
        "clip_lower": winsorize.clip_lower_.astype(float),
        "clip_upper": winsorize.clip_upper_.astype(float),
        "center": scale.mean_.astype(float),
        "scale": scale.scale_.astype(float),
    })
