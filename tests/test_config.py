"""Settings precedence: flag, then SEGKIT_* environment variable, then segkit.toml, then default."""

from __future__ import annotations

import pytest

from segkit.config import load_settings
from segkit.errors import SegkitError


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "profiles.yml").write_text(
        "segkit:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: \"{{ env_var('SEGKIT_DB', 'segkit.duckdb') }}\"\n")
    (tmp_path / "dbt_project").mkdir()
    for name in ("SEGKIT_DB", "SEGKIT_K_MAX", "SEGKIT_ALGORITHM", "SEGKIT_FEATURES", "SEGKIT_SEGMENT_NAMES",
                 "SEGKIT_WINSOR_QUANTILES"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_defaults_when_nothing_is_set(project):
    settings = load_settings(project_dir=project)
    assert settings.k_max == 10
    assert settings.algorithm == "kmeans"
    assert settings.db_path == project / "segkit.duckdb"


def test_file_then_environment_then_flag(project, monkeypatch):
    (project / "segkit.toml").write_text("[segkit]\nk_max = 7\nalgorithm = 'gmm'\n")
    assert load_settings(project_dir=project).k_max == 7
    monkeypatch.setenv("SEGKIT_K_MAX", "6")
    assert load_settings(project_dir=project).k_max == 6
    assert load_settings(project_dir=project, k_max=5).k_max == 5
    assert load_settings(project_dir=project).algorithm == "gmm"


def test_features_from_the_environment_are_a_list(project, monkeypatch):
    monkeypatch.setenv("SEGKIT_FEATURES", "recency_days, monetary_total")
    assert load_settings(project_dir=project).features == ("recency_days", "monetary_total")


def test_unknown_setting_in_the_file_is_named(project):
    (project / "segkit.toml").write_text("[segkit]\nk_maximum = 7\n")
    with pytest.raises(SegkitError, match="unknown settings: k_maximum"):
        load_settings(project_dir=project)


def test_invalid_values_are_explained(project):
    with pytest.raises(SegkitError, match="Unknown algorithm"):
        load_settings(project_dir=project, algorithm="dbscan")
    with pytest.raises(SegkitError, match="k range"):
        load_settings(project_dir=project, k_min=5, k_max=3)


def test_segment_names_and_quantiles_from_the_environment(project, monkeypatch):
    monkeypatch.setenv("SEGKIT_SEGMENT_NAMES", '1 = "VIP", 3 = "Weekend regulars"')
    monkeypatch.setenv("SEGKIT_WINSOR_QUANTILES", "0.01,0.99")
    settings = load_settings(project_dir=project)
    assert settings.segment_names == {1: "VIP", 3: "Weekend regulars"}
    assert settings.winsor_quantiles == (0.01, 0.99)


@pytest.mark.parametrize("name, value", [
    ("SEGKIT_WINSOR_QUANTILES", "abc"), ("SEGKIT_WINSOR_QUANTILES", "0.9,0.1"), ("SEGKIT_SEGMENT_NAMES", "{1: X}"),
    ("SEGKIT_K_MAX", "ten"), ("SEGKIT_WRITE_REPORT", "maybe"), ("SEGKIT_FIT_SAMPLE_SIZE", "0"),
    ("SEGKIT_SILHOUETTE_SAMPLE_SIZE", "1"), ("SEGKIT_MIN_SEGMENT_SIZE", "-5"), ("SEGKIT_STABILITY_RESAMPLES", "-1"),
])
def test_unreadable_or_out_of_range_environment_settings_are_explained(project, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(SegkitError, match="cannot be read|invalid|too small"):
        load_settings(project_dir=project)
