"""Choosing the number of segments k: a metric scan, an elbow finder, a stability check and a decision rule.

For every k in k_min..k_max the scan clusters the (scaled) fit sample and scores the segmentation that
is actually delivered, i.e. each point assigned to its nearest centroid:

- inertia: the sum of squared distances to the nearest centroid; its elbow is found by `find_knee`.
- silhouette (higher is better), on a seeded sample of ``silhouette_sample_size`` points.
- Davies-Bouldin (lower is better) and Calinski-Harabasz (higher is better), on the whole fit sample.
- stability: the mean adjusted Rand index between the full fit and fits on ``stability_resamples`` seeded
  subsamples (80% of the fit sample, at most STABILITY_SAMPLE_CAP points, each with its own seed), all
  compared on the whole fit sample. 1 means every resample finds the same segments. Refitting is the costly
  part, so it is measured only on a shortlist of k (`shortlist`): the ks the decision rule below needs it for.
  The other ks have no stability (NaN, null in table k_selection): none of them could have been chosen.
- noise: for silhouette, Davies-Bouldin and Calinski-Harabasz, the standard deviation of the metric of the
  delivered segmentation over ``stability_resamples`` seeded bootstrap resamples (silhouette on resamples of
  its sample, the others of the fit sample). A difference smaller than that is not a preference.

Decision rule (`choose_k`):

1. Only stable ks compete: stability ARI >= STABLE_ARI. If no k is stable, all compete and a warning says so.
2. Four criteria each vote among them: the elbow (only when it is clear, see `find_knee`), the best
   silhouette, the lowest Davies-Bouldin and the highest Calinski-Harabasz. A metric whose best k beats
   another k by less than the noise of either is tied between them, and votes for every k of the tie.
3. The k with most votes wins; ties go to the higher silhouette, then the smaller k.
4. Unless every voting criterion agrees, the reason and the run warnings say the metrics disagree and
   what each one preferred; ties are reported as ties, and a missing or unclear elbow is reported rather
   than guessed.

The ks scanned are the user's range of actionable segment counts (Settings.k_min..k_max, see the README).

A forced k (Settings.k) skips the vote; its metrics are still computed and reported.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Mapping, Sequence

import numpy as np
from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, davies_bouldin_score
from sklearn.utils import check_random_state

from segkit.store import KScore

STABLE_ARI = 0.8
STABILITY_SUBSAMPLE = 0.8
STABILITY_SAMPLE_CAP = 10_000  # 5 resamples x 9 ks of k-means in about a second; ARI is still measured on all of X
SILHOUETTE_CHUNK_MB = 32  # sample distances are computed in chunks of this size
KNEE_MIN_DISTANCE = 0.1   # in normalised units: below this the inertia curve is close to a straight line
KNEE_MARGIN = 0.1         # the elbow must beat every other k's distance by 10% of its own to count as clear

# fit(X, ks, seed) -> {k: centroids of shape (k, n_features)}; see segkit.clustering.fit_centroids.
FitFunction = Callable[[np.ndarray, Sequence[int], int], dict[int, np.ndarray]]


@dataclass(frozen=True)
class KChoice:
    k: int
    reason: str
    warnings: tuple[str, ...]
    scores: tuple[KScore, ...]
    centroids: np.ndarray  # of the chosen k, fitted on the whole fit sample
    knee_k: int | None
    knee_is_clear: bool


def nearest_centroid(X: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest centroid per row (ties to the lowest index) and the squared distance to it."""
    squared = ((X[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    labels = squared.argmin(axis=1)
    return labels, squared[np.arange(len(X)), labels]


def find_knee(ks: Sequence[int], inertia: Sequence[float]) -> tuple[int | None, bool]:
    """The elbow of a decreasing inertia curve (Kneedle-style) and whether it is clear.

    Both axes are scaled to 0..1 and the elbow is the k farthest below the chord joining the first and
    last points. Below KNEE_MIN_DISTANCE there is no elbow (None). It is clear when it beats every other
    k by KNEE_MARGIN of itself; a smooth curve such as 1/k has two equally good candidates and is not clear.
    """
    ks, inertia = np.asarray(ks, dtype=float), np.asarray(inertia, dtype=float)
    spread = inertia.max() - inertia.min()
    if len(ks) < 3 or spread <= 0 or not np.isfinite(spread):
        return None, False
    x = (ks - ks[0]) / (ks[-1] - ks[0])
    y = (inertia - inertia.min()) / spread
    below_chord = y[0] + (y[-1] - y[0]) * x - y
    best = int(below_chord.argmax())
    if below_chord[best] < KNEE_MIN_DISTANCE:
        return None, False
    clear = np.delete(below_chord, best).max() <= (1 - KNEE_MARGIN) * below_chord[best]
    return int(ks[best]), bool(clear)


def scan_k(X: np.ndarray, ks: Sequence[int], fit: FitFunction, seed: int, silhouette_sample_size: int,
           stability_resamples: int) -> tuple[list[KScore], dict[int, np.ndarray]]:
    """Metrics for each k, and the centroids fitted on all of X for each k. Stability is measured only for the ks of
    `shortlist` (NaN for the others), the ks the decision rule needs it for."""
    centroids = fit(X, ks, seed)
    labels = {k: nearest_centroid(X, centroids[k])[0] for k in ks}
    resamples = stability_resamples if stability_resamples >= 2 else 0
    silhouettes, resampled = silhouette_scan(X, labels, seed, silhouette_sample_size, resamples)
    noise = metric_noise(X, labels, seed, resampled)
    scores = []
    for k in ks:
        _, squared = nearest_centroid(X, centroids[k])
        scores.append(KScore(k, float(squared.sum()), silhouettes[k], *_quality(X, labels[k]), float("nan"),
                             **noise[k]))
    stability: dict[int, float] = {}
    while stability_resamples >= 1 and (wanted := [k for k in shortlist(scores, stability) if k not in stability]):
        stability.update(_stability(X, wanted, fit, seed, labels, stability_resamples))
    return [replace(score, stability_ari=stability.get(score.k, float("nan"))) for score in scores], centroids


def shortlist(scores: Sequence[KScore], stability: Mapping[int, float]) -> list[int]:
    """The ks whose stability the decision rule (`choose_k`) needs, given the stabilities measured so far.

    A lone k; the clear elbow; and for each of silhouette, Davies-Bouldin and Calinski-Harabasz, its ks from the best
    down to the first stable one, with every k tied with that one (within the noise of either). Each criterion's
    vote is then what it would be with every k measured, so the chosen k is too; when no k is stable, every k is
    measured.
    """
    by_k = {score.k: score for score in scores}
    if len(by_k) == 1:
        return list(by_k)
    knee_k, knee_clear = find_knee(list(by_k), [score.inertia for score in scores])
    wanted = {knee_k} if knee_clear else set()
    for metric, best_first in (("silhouette", True), ("davies_bouldin", False), ("calinski_harabasz", True)):
        valid = [k for k in by_k if np.isfinite(getattr(by_k[k], metric))]
        for k in sorted(valid, key=lambda k: getattr(by_k[k], metric), reverse=best_first):
            wanted.add(k)
            if k not in stability:
                break  # measure it before looking further down
            if stability[k] >= STABLE_ARI:
                wanted.update(_tied(valid, by_k, metric, k))
                break
    return sorted(wanted)


def metric_noise(X: np.ndarray, labels: dict[int, np.ndarray], seed: int,
                 resampled_silhouettes: Sequence[dict[int, float]]) -> dict[int, dict[str, float]]:
    """Each k's silhouette, Davies-Bouldin and Calinski-Harabasz noise: the standard deviation of the metric of the
    same labels over seeded bootstrap resamples (NaN with fewer than 2). The silhouettes are silhouette_scan's; the
    others are measured here, on the same resamples' rows of X."""
    values: dict[int, list[tuple[float, ...]]] = {k: [] for k in labels}
    for resample, silhouettes in enumerate(resampled_silhouettes):
        rows, _ = _bootstrap(seed, resample, len(X), 0)
        for k, k_labels in labels.items():
            values[k].append((silhouettes[k], *_quality(X[rows], k_labels[rows])))
    names = ("silhouette_noise", "davies_bouldin_noise", "calinski_harabasz_noise")
    return {k: dict(zip(names, np.std(rows, axis=0, ddof=1) if len(rows) >= 2 else [float("nan")] * 3))
            for k, rows in values.items()}


def _bootstrap(seed: int, resample: int, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded bootstrap resample: n rows of X, and m positions in the silhouette sample of m points."""
    rng = np.random.default_rng([seed, 1_000 + resample])
    rows = rng.choice(n, size=n, replace=True)
    return rows, rng.choice(m, size=m, replace=True) if m else np.empty(0, dtype=int)


def sampled_silhouettes(X: np.ndarray, labels: dict[int, np.ndarray], seed: int, sample_size: int) -> dict[int, float]:
    """Mean silhouette of each labelling on one seeded sample: sklearn's silhouette_score(X, labels, sample_size=...,
    random_state=seed), with the sample's distances computed once for every k instead of once per k."""
    return silhouette_scan(X, labels, seed, sample_size)[0]


def silhouette_scan(X: np.ndarray, labels: dict[int, np.ndarray], seed: int, sample_size: int,
                    resamples: int = 0) -> tuple[dict[int, float], list[dict[int, float]]]:
    """sampled_silhouettes, and the same on `resamples` seeded bootstrap resamples of its sample, from one pass over
    the sample's distances: a resample's distance sums are the sample's, each point weighted by its draws."""
    rows = check_random_state(seed).permutation(len(X))[:sample_size] if len(X) > sample_size else np.arange(len(X))
    sample = X[rows]
    one_hot = {k: np.eye(k_labels.max() + 1)[k_labels[rows]] for k, k_labels in labels.items()}
    # Every k's cluster columns side by side, so each chunk of distances takes one matrix product, not one per k.
    columns = np.hstack(list(one_hot.values()))
    positions = [_bootstrap(seed, resample, len(X), len(sample))[1] for resample in range(resamples)]
    weighted = [np.bincount(drawn, minlength=len(sample))[:, None] * columns for drawn in positions]
    blocks = np.split(_distance_sums(sample, np.hstack([columns, *weighted])), resamples + 1, axis=1)
    resampled = [_silhouettes(block[drawn], {k: k_columns[drawn] for k, k_columns in one_hot.items()})
                 for block, drawn in zip(blocks[1:], positions)]
    return _silhouettes(blocks[0], one_hot), resampled


def _distance_sums(sample: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """The sample's pairwise distances (each point's own set to 0) times columns, a chunk of rows at a time."""
    sums = np.empty((len(sample), columns.shape[1]))
    squared_norms = (sample**2).sum(axis=1)
    chunk_rows = max(1, SILHOUETTE_CHUNK_MB * 2**20 // (8 * len(sample)))
    for start in range(0, len(sample), chunk_rows):
        chunk = slice(start, start + chunk_rows)
        squared = squared_norms[chunk, None] + squared_norms[None, :] - 2 * sample[chunk] @ sample.T
        distances = np.sqrt(np.maximum(squared, 0))
        distances[np.arange(len(distances)), np.arange(start, start + len(distances))] = 0
        sums[chunk] = distances @ columns
    return sums


def _silhouettes(distance_sums: np.ndarray, one_hot: dict[int, np.ndarray]) -> dict[int, float]:
    ends = np.cumsum([k_columns.shape[1] for k_columns in one_hot.values()])
    return {k: _silhouette_from_sums(distance_sums[:, end - k_columns.shape[1]:end], k_columns)
            for (k, k_columns), end in zip(one_hot.items(), ends)}


def _silhouette_from_sums(distance_sums: np.ndarray, one_hot: np.ndarray) -> float:
    """Mean silhouette from each point's summed distance to every cluster (as sklearn's silhouette_samples)."""
    sizes = one_hot.sum(axis=0)
    present = sizes > 0
    if not 2 <= present.sum() <= len(one_hot) - 1:
        return float("nan")
    own = one_hot.argmax(axis=1)
    own_size = sizes[own]
    rows = np.arange(len(own))
    intra = distance_sums[rows, own] / np.maximum(own_size - 1, 1)
    mean_to_other = np.where(present, distance_sums / np.where(present, sizes, 1), np.inf)
    mean_to_other[rows, own] = np.inf
    nearest_other = mean_to_other.min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        silhouette = (nearest_other - intra) / np.maximum(intra, nearest_other)
    silhouette = np.nan_to_num(np.where(own_size > 1, silhouette, 0))
    return float(silhouette.mean())


def _quality(X: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    if len(np.unique(labels)) < 2:
        return float("nan"), float("nan")
    return float(davies_bouldin_score(X, labels)), float(calinski_harabasz_score(X, labels))


def _stability(X: np.ndarray, ks: Sequence[int], fit: FitFunction, seed: int, labels: dict[int, np.ndarray],
               resamples: int) -> dict[int, float]:
    if resamples < 1:
        return {k: float("nan") for k in ks}
    size = min(int(len(X) * STABILITY_SUBSAMPLE), STABILITY_SAMPLE_CAP)
    scores: dict[int, list[float]] = {k: [] for k in ks}
    for resample in range(resamples):
        rows = np.sort(np.random.default_rng([seed, resample]).choice(len(X), size=size, replace=False))
        refit = fit(X[rows], ks, seed + 1 + resample)
        for k in ks:
            scores[k].append(adjusted_rand_score(labels[k], nearest_centroid(X, refit[k])[0]))
    return {k: float(np.mean(values)) for k, values in scores.items()}


def choose_k(scores: Sequence[KScore], centroids: dict[int, np.ndarray], forced_k: int | None = None) -> KChoice:
    """Apply the decision rule in the module docstring; mark the knee and the chosen k in the scores."""
    by_k = {score.k: score for score in scores}
    knee_k, knee_clear = find_knee(list(by_k), [score.inertia for score in scores])
    warnings: list[str] = []
    if forced_k is not None:
        chosen, reason = forced_k, f"k={forced_k} was forced by the k setting ({_describe(by_k[forced_k])})."
        warnings += _stability_warnings([by_k[forced_k]])
    else:
        chosen, reason, vote_warnings = _vote(by_k, knee_k, knee_clear)
        warnings += vote_warnings
    marked = tuple(
        KScore(**{**score.__dict__, "is_knee": score.k == knee_k and knee_clear, "is_chosen": score.k == chosen})
        for score in scores
    )
    return KChoice(chosen, reason, tuple(warnings), marked, centroids[chosen], knee_k, knee_clear)


def _vote(by_k: dict[int, KScore], knee_k: int | None, knee_clear: bool) -> tuple[int, str, list[str]]:
    warnings = []
    ks = list(by_k)
    stable = [k for k in ks if by_k[k].stability_ari >= STABLE_ARI]
    if not np.isnan([by_k[k].stability_ari for k in ks]).all() and not stable:
        warnings.append(f"No k in {ks[0]}..{ks[-1]} is stable (resample ARI below {STABLE_ARI} for all); "
                        "segments may change noticeably between runs or with new data.")
    candidates = stable or ks
    preferences = {
        "the silhouette": _best(candidates, by_k, "silhouette", max),
        "Davies-Bouldin": _best(candidates, by_k, "davies_bouldin", min),
        "Calinski-Harabasz": _best(candidates, by_k, "calinski_harabasz", max),
    }
    if len(ks) < 3:
        elbow_note = None
    elif knee_k is None:
        elbow_note = f"inertia shows no elbow over k {ks[0]}..{ks[-1]}"
    elif not knee_clear:
        elbow_note = f"inertia has no clear elbow over k {ks[0]}..{ks[-1]} (weak bend near k={knee_k})"
    elif knee_k not in candidates:
        elbow_note = f"the elbow at k={knee_k} is not stable between resamples, so it does not vote"
    else:
        elbow_note = None
        preferences = {"the elbow of inertia": (knee_k,), **preferences}
    if elbow_note:
        warnings.append(f"{elbow_note[0].upper()}{elbow_note[1:]}.")
    voters = {name: tied for name, tied in preferences.items() if tied}
    counts = {k: sum(1 for tied in voters.values() if k in tied) for k in candidates}
    chosen = max(candidates, key=lambda k: (counts[k], _or(by_k[k].silhouette, -np.inf), -k))
    agreeing = [name for name, tied in voters.items() if chosen in tied]
    others = [f"{name} prefers k={tied[0]}" for name, tied in voters.items() if chosen not in tied and len(tied) == 1]
    others += [f"{name} is tied between k={_join([str(k) for k in tied])}" for name, tied in voters.items()
               if chosen not in tied and len(tied) > 1]
    ties = [f"{name} is tied between k={_join([str(k) for k in tied])} (differences within its resampling noise)"
            for name, tied in voters.items() if chosen in tied and len(tied) > 1]
    if others:
        summary = (f"k={chosen} won {len(agreeing)} of {len(voters)} votes ({', '.join(agreeing) or 'none'}); "
                   f"{', '.join(others)}. The metrics disagree, so this k is a judgement call: compare the "
                   "k_selection table or force k with the k setting.")
        warnings.append(f"The k metrics disagree: {', '.join(others)}; k={chosen} was chosen by "
                        f"{len(agreeing)} of {len(voters)} votes.")
    else:
        summary = f"k={chosen}: {_join(agreeing)} all point to it."
    notes = [summary, *(f"{tie[0].upper()}{tie[1:]}." for tie in ties), f"Metrics at k={chosen}: {_describe(by_k[chosen])}."]
    if elbow_note:
        notes.append(f"Note: {elbow_note}.")
    return chosen, " ".join(notes), warnings


def _stability_warnings(scores: Sequence[KScore]) -> list[str]:
    return [f"k={score.k} is not stable between resamples (mean ARI {score.stability_ari:.2f} < {STABLE_ARI}); "
            "segments may change noticeably between runs." for score in scores if score.stability_ari < STABLE_ARI]


def _best(ks: Sequence[int], by_k: dict[int, KScore], metric: str, pick) -> tuple[int, ...]:
    """The metric's best k, and every other k it is tied with (a difference within the noise of either), ascending."""
    valid = [k for k in ks if np.isfinite(getattr(by_k[k], metric))]
    if not valid:
        return ()
    return _tied(valid, by_k, metric, pick(valid, key=lambda k: getattr(by_k[k], metric)))


def _tied(ks: Sequence[int], by_k: dict[int, KScore], metric: str, best: int) -> tuple[int, ...]:
    """best, and every other of ks whose metric is within the noise of either of best's, ascending."""
    value, noise = getattr(by_k[best], metric), _or(getattr(by_k[best], f"{metric}_noise"), 0.0)
    return tuple(k for k in ks if k == best or abs(getattr(by_k[k], metric) - value)
                 <= max(noise, _or(getattr(by_k[k], f"{metric}_noise"), 0.0)))


def _or(value: float, default: float) -> float:
    return value if np.isfinite(value) else default


def _describe(score: KScore) -> str:
    return (f"silhouette {score.silhouette:.3f}{_plus_minus(score.silhouette_noise, '.3f')}, "
            f"Davies-Bouldin {score.davies_bouldin:.3f}{_plus_minus(score.davies_bouldin_noise, '.3f')}, "
            f"Calinski-Harabasz {score.calinski_harabasz:,.0f}{_plus_minus(score.calinski_harabasz_noise, ',.0f')}, "
            f"resample ARI {score.stability_ari:.3f}")


def _plus_minus(noise: float, spec: str) -> str:
    return f" ± {noise:{spec}}" if np.isfinite(noise) else ""


def _join(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
