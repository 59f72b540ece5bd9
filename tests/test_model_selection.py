"""The k scan, the elbow finder and the decision rule."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, silhouette_score

from segkit.clustering import fit_centroids
from segkit.config import Settings
from segkit.model_selection import (choose_k, find_knee, metric_noise, nearest_centroid, sampled_silhouettes,
                                     scan_k, shortlist, silhouette_scan)
from segkit.store import KScore


def blobs(k: int = 4, per_blob: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0], [8, 0], [0, 8], [8, 8], [4, 16]][:k], dtype=float)
    return np.vstack([centre + rng.normal(0, 0.5, (per_blob, 2)) for centre in centres])


def score(k, inertia, silhouette, davies_bouldin, calinski_harabasz, stability=1.0) -> KScore:
    return KScore(k, inertia, silhouette, davies_bouldin, calinski_harabasz, stability)


def dummy_centroids(ks):
    return {k: np.zeros((k, 2)) for k in ks}


@pytest.mark.parametrize("sample_size", [300, 10_000])
def test_sampled_silhouettes_equal_sklearns_on_the_same_sample(sample_size):
    X = blobs(k=5)
    labels = {k: nearest_centroid(X, X[:k] + np.arange(k)[:, None])[0] for k in (2, 3, 5)}
    labels[4] = np.where(labels[5] == 2, 0, labels[5])  # label 2 left empty, as nearest-centroid assignment can
    expected = {k: silhouette_score(X, k_labels, sample_size=sample_size if sample_size < len(X) else None,
                                    random_state=7) for k, k_labels in labels.items()}
    assert sampled_silhouettes(X, labels, 7, sample_size) == pytest.approx(expected, abs=1e-12)


def test_find_knee_finds_a_clear_elbow():
    assert find_knee([2, 3, 4, 5, 6, 7, 8], [1000, 600, 100, 90, 80, 72, 65]) == (4, True)


def test_find_knee_calls_a_smooth_one_over_k_curve_unclear():
    ks = list(range(2, 11))
    knee, clear = find_knee(ks, [1 / k for k in ks])
    assert knee in (4, 5) and not clear


def test_find_knee_finds_nothing_on_a_straight_line():
    assert find_knee([2, 3, 4, 5], [40, 30, 20, 10]) == (None, False)


def test_nearest_centroid_breaks_ties_by_lowest_index():
    labels, squared = nearest_centroid(np.array([[1.0, 0.0]]), np.array([[2.0, 0.0], [0.0, 0.0]]))
    assert labels.tolist() == [0] and squared.tolist() == [1.0]


@pytest.mark.parametrize("algorithm", ["kmeans", "gmm", "agglomerative"])
def test_scan_on_four_blobs_chooses_four_with_stable_fits(algorithm):
    X = blobs()
    scores, centroids = scan_k(X, range(2, 8), partial(fit_centroids, algorithm), seed=1,
                               silhouette_sample_size=500, stability_resamples=3)
    choice = choose_k(scores, centroids)
    assert choice.k == 4
    assert choice.warnings == ()
    chosen = next(s for s in choice.scores if s.is_chosen)
    assert chosen.k == 4 and chosen.is_knee and chosen.stability_ari > 0.99
    assert choice.centroids.shape == (4, 2)


def test_disagreeing_metrics_are_reported_in_reason_and_warnings():
    scores = [score(2, 100, 0.60, 0.9, 500), score(3, 70, 0.50, 0.7, 700), score(4, 50, 0.40, 0.8, 900),
              score(5, 35, 0.30, 1.0, 800)]
    choice = choose_k(scores, dummy_centroids(range(2, 6)))
    assert "disagree" in choice.reason
    assert any("disagree" in warning for warning in choice.warnings)
    assert "Calinski-Harabasz prefers k=4" in choice.reason


def test_unstable_ks_do_not_compete():
    scores = [score(2, 100, 0.6, 0.5, 900, stability=0.5), score(3, 60, 0.5, 0.6, 800, stability=0.95),
              score(4, 40, 0.4, 0.7, 700, stability=0.9)]
    assert choose_k(scores, dummy_centroids(range(2, 5))).k == 3


def test_no_stable_k_is_warned_about():
    scores = [score(k, 100 / k, 0.5, 0.5, 100, stability=0.3) for k in (2, 3, 4)]
    warnings = choose_k(scores, dummy_centroids([2, 3, 4])).warnings
    assert any("No k in 2..4 is stable" in warning for warning in warnings)


def test_forced_k_wins_and_says_so():
    scores = [score(6, 10, 0.2, 1.5, 100, stability=0.6)]
    choice = choose_k(scores, dummy_centroids([6]), forced_k=6)
    assert choice.k == 6 and "forced" in choice.reason
    assert any("k=6 is not stable" in warning for warning in choice.warnings)


def planted(groups: int, per_group: int = 150, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """`groups` tight blobs on the corners and face centres of a cube in 3 features, and their planted labels."""
    corners = np.array([[x, y, z] for x in (0, 10) for y in (0, 10) for z in (0, 10)], dtype=float)
    centres = np.vstack([corners, [[5, 5, 0], [5, 5, 10]]])[:groups]
    rng = np.random.default_rng(seed)
    X = np.vstack([centre + rng.normal(0, 0.6, (per_group, 3)) for centre in centres])
    return X, np.repeat(np.arange(groups), per_group)


@pytest.mark.parametrize("groups", range(Settings.k_min, Settings.k_max + 1))
def test_planted_structure_inside_the_default_range_is_recovered_exactly(groups):
    X, truth = planted(groups)
    ks = range(Settings.k_min, Settings.k_max + 1)
    scores, centroids = scan_k(X, ks, partial(fit_centroids, "kmeans"), seed=1, silhouette_sample_size=2_000,
                               stability_resamples=3)
    choice = choose_k(scores, centroids)
    assert choice.k == groups, choice.reason
    assert adjusted_rand_score(truth, nearest_centroid(X, choice.centroids)[0]) == 1.0


def test_metric_noise_is_measured_on_seeded_resamples_and_repeats_exactly():
    X, _ = planted(5)
    labels = {k: nearest_centroid(X, X[::len(X) // k][:k])[0] for k in (4, 5, 6)}

    def noise(seed, resamples):
        return metric_noise(X, labels, seed, silhouette_scan(X, labels, seed, 400, resamples)[1])

    first = noise(7, 4)
    assert first == noise(7, 4)
    assert first != noise(8, 4)
    for k in labels:
        assert all(0 < value < np.inf for value in first[k].values()), first[k]
    assert all(np.isnan(v) for v in noise(7, 1)[4].values())


@pytest.mark.parametrize("sample_size", [300, 10_000])
def test_resampled_silhouettes_are_sklearns_on_seeded_bootstrap_resamples_of_the_sample(sample_size):
    X = blobs(k=5)
    labels = {k: nearest_centroid(X, X[:k] + np.arange(k)[:, None])[0] for k in (2, 3, 5)}
    rows = np.random.RandomState(7).permutation(len(X))[:sample_size] if sample_size < len(X) else np.arange(len(X))
    main, resampled = silhouette_scan(X, labels, 7, sample_size, resamples=3)
    assert main == sampled_silhouettes(X, labels, 7, sample_size)
    for resample, silhouettes in enumerate(resampled):
        rng = np.random.default_rng([7, 1_000 + resample])  # the documented seeds: rows of X first, then the sample
        rng.choice(len(X), size=len(X), replace=True)
        drawn = rows[rng.choice(len(rows), size=len(rows), replace=True)]
        expected = {k: silhouette_score(X[drawn], k_labels[drawn]) for k, k_labels in labels.items()}
        assert silhouettes == pytest.approx(expected, abs=1e-9)


def noisy(k, silhouette, davies_bouldin, calinski_harabasz, noise=(0.003, 0.01, 60.0)) -> KScore:
    return KScore(k, 100.0 - 10 * k, silhouette, davies_bouldin, calinski_harabasz, 1.0, False, False, *noise)  # no elbow


def test_a_difference_below_the_metrics_own_noise_is_a_tie_not_a_preference():
    # The demo's full year: the silhouette at k=2 beat k=7 by 0.0001, far below its noise of about 0.003.
    scores = [noisy(2, 0.4956, 0.81, 4788), noisy(5, 0.4039, 0.86, 3902), noisy(7, 0.4955, 0.71, 5047)]
    choice = choose_k(scores, dummy_centroids([2, 5, 7]))
    assert choice.k == 7
    assert "prefers k=2" not in choice.reason and not any("disagree" in w for w in choice.warnings)
    assert "The silhouette is tied between k=2 and 7" in choice.reason
    # The same figures with no noise measured: the 0.0001 is a preference again.
    exact = [noisy(s.k, s.silhouette, s.davies_bouldin, s.calinski_harabasz, noise=(0, 0, 0)) for s in scores]
    assert "the silhouette prefers k=2" in choose_k(exact, dummy_centroids([2, 5, 7])).reason


def test_a_difference_beyond_the_noise_stays_a_preference():
    scores = [noisy(4, 0.40, 0.86, 3198), noisy(5, 0.38, 0.96, 3074), noisy(6, 0.37, 1.02, 2867)]
    choice = choose_k(scores, dummy_centroids([4, 5, 6]))
    assert choice.k == 4 and "tied" not in choice.reason


@pytest.mark.parametrize("groups", range(Settings.k_min, Settings.k_max + 1))
def test_the_shortlist_chooses_what_measuring_every_k_would(groups):
    X, _ = planted(groups, seed=groups)
    ks, fit = range(Settings.k_min, Settings.k_max + 1), partial(fit_centroids, "kmeans")
    scores, centroids = scan_k(X, ks, fit, seed=1, silhouette_sample_size=2_000, stability_resamples=3)
    # A k scanned alone is always measured, with the same seeds as in a scan of many.
    every = [replace(s, stability_ari=scan_k(X, [s.k], fit, 1, 2_000, 3)[0][0].stability_ari) for s in scores]
    shortlisted, full = choose_k(scores, centroids), choose_k(every, centroids)
    assert (shortlisted.k, shortlisted.reason, shortlisted.warnings) == (full.k, full.reason, full.warnings)
    measured = [s.k for s in scores if not np.isnan(s.stability_ari)]
    assert groups in measured and len(measured) < len(ks)
    assert [s.stability_ari for s in scores if s.k in measured] == [s.stability_ari for s in every if s.k in measured]


def test_the_shortlist_walks_past_unstable_ks_and_takes_every_k_when_none_is_stable():
    # Silhouette and Calinski-Harabasz rank 7 > 6 > 5 > 4 > 8, Davies-Bouldin 7 < 6 < 4 < 5 < 8; no clear elbow.
    scores = [noisy(4, 0.40, 0.80, 3000), noisy(5, 0.45, 0.85, 3500), noisy(6, 0.48, 0.75, 4000),
              noisy(7, 0.50, 0.70, 4500), noisy(8, 0.30, 0.90, 2000)]
    assert shortlist(scores, {}) == [7]
    assert shortlist(scores, {7: 0.5}) == [6, 7]
    assert shortlist(scores, {7: 0.5, 6: 0.95}) == [6, 7]
    assert shortlist(scores, {7: 0.5, 6: 0.5}) == [4, 5, 6, 7]
    assert shortlist(scores, {k: 0.5 for k in (4, 5, 6, 7)}) == [4, 5, 6, 7, 8]
    # A k within the noise of the best stable one is tied with it, so its stability is needed too.
    tied = [noisy(4, 0.40, 0.80, 3000), noisy(5, 0.499, 0.71, 4490), noisy(7, 0.50, 0.70, 4500)]
    assert shortlist(tied, {7: 0.9}) == [5, 7]
