"""Group disparity and its intervals: how far apart social groups' mean scores are, and how sure we are.

Taught in ``notebooks/06_bias_metrics.ipynb``. These functions take a score per text and a group label per
text — never a model: :func:`group_disparity` (the lab README's D), :func:`disparity_within_axes`,
:func:`max_min_gap`, :func:`min_max_ratio`, :func:`group_means`; the intervals :func:`bootstrap_ci` and
:func:`proportion_estimate` return an :class:`Estimate`. A disparity needs at least two groups: with one there is
nothing to compare, and the functions say so instead of reporting "no disparity".
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import pandas as pd
from scipy import stats

from ..groups import GROUP_TERMS
from .inputs import _as_labels, _as_scores, _split, _split_groups


@dataclass(frozen=True)
class Estimate:
    """A number with a confidence interval: ``value`` in ``[low, high]`` at level ``confidence``.

    Unpacks like a tuple: ``value, low, high = bootstrap_ci(...)``.
    """

    value: float
    low: float
    high: float
    confidence: float = 0.95

    def __iter__(self):
        return iter((self.value, self.low, self.high))

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


_REFERENCES = ("mean_of_group_means", "sample_mean")


def group_disparity(scores, groups, reference: str = "mean_of_group_means") -> float:
    """Group disparity D = Σ_g |T̄ − T_g|: summed distance of each group's mean score T_g from a reference T̄.

    ``reference="mean_of_group_means"`` (the course's seed definition) sets T̄ to the average of the group
    means, every group weighing the same; ``reference="sample_mean"`` (FASP, Zayed et al. 2024) sets T̄ to
    the mean of all scores, so larger groups pull T̄ towards themselves. The two agree when all groups have
    the same size. Example with unequal sizes — A: 0.9, 0.7 (mean 0.8); B: 0.2; C: 0.3, 0.5, 0.4 (mean 0.4):

    * mean of group means T̄ = 0.4667 → D = 0.3333 + 0.2667 + 0.0667 = 0.6667
    * sample mean T̄ = 3.0 / 6 = 0.5 → D = 0.3 + 0.3 + 0.1 = 0.7

    ``group_disparity([.9, .7, .2, .3, .5, .4], list("AABCCC"))`` → 0.6667. 0 means no disparity.
    Taught in ``notebooks/06_bias_metrics.ipynb``.
    """
    if reference not in _REFERENCES:
        raise ValueError(f"reference={reference!r}; choose 'mean_of_group_means' (seed) or 'sample_mean' (FASP)")
    _, parts = _split_groups(scores, groups, "group_disparity")
    means = np.array([p.mean() for p in parts])
    if reference == "mean_of_group_means":
        center = means.mean()
    else:
        center = np.concatenate(parts).mean()
    return float(np.abs(center - means).sum())


#: Each course group's axis, e.g. "old" -> "age" (built once: bootstrap_ci calls the statistic 1000 times).
_AXIS_OF = {group: axis for axis, terms in GROUP_TERMS.items() for group in terms}


def disparity_within_axes(scores, groups, axis_of: Mapping[str, str] | None = None,
                          reference: str = "mean_of_group_means") -> float:
    """The seed's D computed within each axis (gender against gender, age against age) and summed over axes.

    Pooling groups of different axes into one D would compare, say, "old" with "woman" — groups that are
    not alternatives to each other. ``axis_of`` maps each group name to its axis; by default it is read from
    :data:`debias_utils.groups.GROUP_TERMS`. Example with the gender groups man/woman and the age groups
    young/old: ``disparity_within_axes([.2, .4, .1, .1], ["man", "woman", "young", "old"])`` →
    D_gender 0.2 + D_age 0.0 = 0.2. Works as the ``statistic`` of :func:`bootstrap_ci`.
    Taught in ``notebooks/08_gate_attention/08_gate_attention.ipynb``; used in ``09_compare_methods.ipynb``.
    """
    if reference not in _REFERENCES:
        raise ValueError(f"reference={reference!r}; choose 'mean_of_group_means' (seed) or 'sample_mean' (FASP)")
    x = _as_scores(scores)
    labels = _as_labels(groups, len(x))
    axis_of = _AXIS_OF if axis_of is None else axis_of
    # The statistic of a bootstrap runs thousands of times, so the work is done per distinct group, not per score:
    # one factorisation, then each group's sum and size, then D within each axis from the group means.
    codes, names = pd.factorize(labels, sort=False)
    unknown = sorted(str(g) for g in names if g not in axis_of)
    if unknown:
        raise ValueError(f"groups {unknown} have no axis; pass axis_of={{group: axis}} covering every group "
                         f"(the default knows the groups of debias_utils.groups.GROUP_TERMS)")
    axis_of_group = np.array([axis_of[g] for g in names], dtype=object)
    sums = np.bincount(codes, weights=x, minlength=len(names))
    sizes = np.bincount(codes, minlength=len(names))
    means = sums / sizes
    total = 0.0
    for axis in pd.unique(axis_of_group):
        mine = axis_of_group == axis
        if mine.sum() < 2:
            raise ValueError(f"axis {axis!r} has scores of one group only ({names[mine][0]!r}); "
                             "disparity_within_axes compares groups within each axis, so every axis needs two or more")
        center = means[mine].mean() if reference == "mean_of_group_means" else sums[mine].sum() / sizes[mine].sum()
        total += float(np.abs(center - means[mine]).sum())
    return total


def max_min_gap(scores, groups) -> float:
    """Largest minus smallest group mean score (0 = all groups alike).

    Example: ``max_min_gap([.9, .7, .2, .3, .5, .4], list("AABCCC"))`` → 0.8 − 0.2 = 0.6.
    Taught in ``notebooks/06_bias_metrics.ipynb``.
    """
    _, parts = _split_groups(scores, groups, "max_min_gap")
    means = [p.mean() for p in parts]
    return float(max(means) - min(means))


def min_max_ratio(scores, groups) -> float:
    """Smallest over largest group mean score, in [0, 1] for non-negative scores (1 = all groups alike).

    The ratio form of the "four-fifths rule" of disparate impact. Needs non-negative scores with a positive
    largest group mean. Example: ``min_max_ratio([.9, .7, .2, .3, .5, .4], list("AABCCC"))`` → 0.2/0.8 = 0.25.
    Tested in ``tests/test_metrics.py``.
    """
    _, parts = _split_groups(scores, groups, "min_max_ratio")
    if min(p.min() for p in parts) < 0:
        raise ValueError("min_max_ratio needs non-negative scores (a ratio of signed means means nothing); "
                         "use max_min_gap for signed scores such as sentiment")
    means = [p.mean() for p in parts]
    if max(means) == 0:
        raise ValueError("every group mean is 0, so the ratio is 0/0; the groups are equal — use max_min_gap")
    return float(min(means) / max(means))


def _resample_indices(parts, n_resamples: int, rng, max_cells: int = 4_000_000):
    """Yield, chunk by chunk, one ``(chunk, n_g)`` index matrix per group (resampling with replacement)."""
    chunk = max(1, min(n_resamples, max_cells // max(1, sum(len(p) for p in parts))))
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        yield [rng.integers(0, len(p), size=(size, len(p))) for p in parts]


def _from_group_means(statistic):
    """For the module's own statistics of group means, a vectorised ``f(means[R, G], sizes[G]) -> [R]``."""
    import functools

    func, kwargs = statistic, {}
    if isinstance(statistic, functools.partial):
        if statistic.args:
            return None
        func, kwargs = statistic.func, dict(statistic.keywords)
    if func is group_disparity and set(kwargs) <= {"reference"}:
        reference = kwargs.get("reference", "mean_of_group_means")
        if reference not in _REFERENCES:
            return None

        def disparity(means, sizes):
            center = means.mean(axis=1) if reference == "mean_of_group_means" else means @ sizes / sizes.sum()
            return np.abs(center[:, None] - means).sum(axis=1)
        return disparity
    if func is max_min_gap and not kwargs:
        return lambda means, sizes: means.max(axis=1) - means.min(axis=1)
    if func is min_max_ratio and not kwargs:
        def ratio(means, sizes):
            top = means.max(axis=1)
            if np.any(top == 0):
                raise ValueError("a resample has every group mean 0, so min_max_ratio is 0/0; use max_min_gap")
            return means.min(axis=1) / top
        return ratio
    return None


def bootstrap_ci(statistic: Callable, scores, groups=None, n_resamples: int = 1000, confidence: float = 0.95,
                 seed: int = 0, method: str = "percentile") -> Estimate:
    """Bootstrap confidence interval of ``statistic(scores, groups)``, resampling scores *within* each group.

    Resampling within groups keeps every group's size fixed, as in the experiment that produced the scores.
    ``statistic`` is any function of ``(scores, groups)`` returning a float, e.g. :func:`group_disparity`,
    :func:`max_min_gap` or ``functools.partial(group_disparity, reference="sample_mean")``; with
    ``groups=None`` all scores form one group and ``statistic(scores)`` is called. ``method`` is
    ``"percentile"`` or ``"BCa"`` (bias-corrected, via ``scipy.stats.bootstrap``).
    Note: a disparity is never negative, so with little data its bootstrap distribution sits above the
    true value — read a small D with a wide interval as "no evidence of disparity", not as "some bias".
    Example: ``bootstrap_ci(group_disparity, scores, groups)`` → ``Estimate(value=0.67, low=.., high=..)``.
    Taught in ``notebooks/06_bias_metrics.ipynb``.
    """
    if not callable(statistic):
        raise TypeError("statistic must be a function of (scores, groups), e.g. group_disparity")
    if method not in ("percentile", "BCa"):
        raise ValueError(f"method={method!r}; choose 'percentile' or 'BCa'")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95; got {confidence}")
    if not isinstance(n_resamples, int) or n_resamples < 10:
        raise ValueError(f"n_resamples must be an int >= 10 (1000 is usual); got {n_resamples!r}")
    x = _as_scores(scores)
    if groups is None:
        names, parts = [None], [x]

        def call(*samples):
            return statistic(np.concatenate(samples))
    else:
        names, parts = _split(x, groups)
        # Group sizes never change under within-group resampling, so the labels are built once
        # (BCa's jackknife drops one score at a time, so there the labels follow the sample sizes).
        name_array = np.array(names, dtype=object)
        labels = np.repeat(name_array, [len(p) for p in parts])

        def call(*samples):
            sizes = [len(sample) for sample in samples]
            same = all(size == len(p) for size, p in zip(sizes, parts))
            return statistic(np.concatenate(samples), labels if same else np.repeat(name_array, sizes))
    value = float(call(*parts))
    if not math.isfinite(value):
        raise ValueError(f"statistic returned {value} on the data itself; check the statistic")
    if all(len(p) == 1 for p in parts):
        raise ValueError("every group has a single score, so resampling cannot show any uncertainty; "
                         "collect more than one score per group")
    if any(len(p) == 1 for p in parts):
        single = [names[i] for i, p in enumerate(parts) if len(p) == 1]
        warnings.warn(f"group(s) {single} have one score each and contribute no uncertainty to the interval; "
                      "collect more scores per group for an honest interval", stacklevel=2)
    rng = np.random.default_rng(seed)
    if method == "BCa":
        if any(len(p) < 2 for p in parts):
            raise ValueError("method='BCa' needs at least 2 scores in every group (its jackknife drops one); "
                             "use method='percentile'")
        result = stats.bootstrap(tuple(parts), call, n_resamples=n_resamples, vectorized=False, paired=False,
                                 confidence_level=confidence, method="BCa", rng=rng)
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    else:
        # Percentile bootstrap, written out: resample each group with replacement, keep its size.
        from_means = _from_group_means(statistic) if groups is not None else None
        values = []
        for idx in _resample_indices(parts, n_resamples, rng):
            if from_means is not None:
                # Fast path for statistics of group means: the same resamples, vectorised.
                means = np.stack([p[i].mean(axis=1) for p, i in zip(parts, idx)], axis=1)
                values.extend(from_means(means, np.array([len(p) for p in parts], dtype=np.float64)))
            else:
                values.extend(call(*(p[i[r]] for p, i in zip(parts, idx))) for r in range(len(idx[0])))
        values = np.asarray(values, dtype=np.float64)
        alpha = (1 - confidence) / 2
        low, high = (float(v) for v in np.quantile(values, [alpha, 1 - alpha]))
    if not (math.isfinite(low) and math.isfinite(high)):
        # BCa fails on a degenerate bootstrap distribution (e.g. all scores equal); say so instead of NaN.
        raise ValueError(f"the {method} interval is undefined for these data (the bootstrap distribution is "
                         "degenerate, e.g. all scores are equal, or the statistic returned NaN); "
                         "use method='percentile'")
    return Estimate(value, low, high, confidence)


def group_means(scores, groups, confidence: float = 0.95, method: str = "t", n_resamples: int = 1000,
                seed: int = 0) -> pd.DataFrame:
    """Mean score per group with a confidence interval, ready for an error-bar plot.

    Returns a DataFrame indexed by group (order of first appearance) with columns ``n, mean, sd, low, high``.
    ``method="t"`` uses the Student-t interval mean ± t·sd/√n (needs ≥ 2 scores per group);
    ``method="bootstrap"`` uses the percentile interval of resampled means, which (unlike the t interval)
    never leaves the range of the observed scores — prefer it for small groups of skewed scores such as
    toxicity, where a t interval can dip below 0.
    Example: ``group_means([.9, .7, .3, .5, .4], list("AACCC"))`` → A: mean 0.8, C: mean 0.4.
    Taught in ``notebooks/06_bias_metrics.ipynb``.
    """
    if method not in ("t", "bootstrap"):
        raise ValueError(f"method={method!r}; choose 't' or 'bootstrap'")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95; got {confidence}")
    names, parts = _split(scores, groups)
    rng = np.random.default_rng(seed)
    rows = []
    for name, p in zip(names, parts):
        n, mean = len(p), float(p.mean())
        sd = float(p.std(ddof=1)) if n > 1 else 0.0
        if method == "t":
            if n < 2:
                raise ValueError(f"group {name!r} has one score; a t interval needs at least 2 — collect more "
                                 "or use method='bootstrap'")
            half = stats.t.ppf((1 + confidence) / 2, n - 1) * sd / math.sqrt(n)
            low, high = mean - half, mean + half
        else:
            means = p[rng.integers(0, n, size=(n_resamples, n))].mean(axis=1)
            alpha = (1 - confidence) / 2
            low, high = (float(v) for v in np.quantile(means, [alpha, 1 - alpha]))
        rows.append({"group": name, "n": n, "mean": mean, "sd": sd, "low": float(low), "high": float(high)})
    return pd.DataFrame(rows).set_index("group")


def proportion_estimate(successes: int, trials: int, confidence: float = 0.95) -> tuple[Estimate, float]:
    """A share with its exact (Clopper–Pearson) binomial interval and the two-sided p-value against 50 %.

    Example: ``proportion_estimate(60, 100)`` → (Estimate(0.6, 0.497, 0.697), p ≈ 0.057).
    Used by :func:`crows_summary` and :func:`toxicity_summary`.
    """
    if trials < 1 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials and trials >= 1, got {successes}/{trials}")
    test = stats.binomtest(int(successes), int(trials), 0.5)
    ci = test.proportion_ci(confidence_level=confidence, method="exact")
    return Estimate(successes / trials, float(ci.low), float(ci.high), confidence), float(test.pvalue)


def fisher_ci(r: float, n: int, confidence: float = 0.95) -> Estimate:
    """The Fisher-z interval of a Pearson correlation ``r`` measured on ``n`` pairs: tanh(atanh(r) ± z/√(n − 3)).

    Example: ``fisher_ci(0.8, 40)`` → ``Estimate(0.8, 0.65, 0.89)``. Used by :mod:`debias_utils.audit` for the
    occupation → pronoun correlation.
    """
    if not isinstance(n, (int, np.integer)) or n < 4:
        raise ValueError(f"a correlation interval needs at least 4 pairs, got n={n!r}")
    if not -1 < r < 1:
        raise ValueError(f"r must lie strictly between -1 and 1, got {r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    half = stats.norm.ppf((1 + confidence) / 2) / math.sqrt(n - 3)
    z = math.atanh(r)
    return Estimate(float(r), math.tanh(z - half), math.tanh(z + half), confidence)


def paired_difference(statistic: Callable, a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray],
                      n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95) -> Estimate:
    """``statistic(b) − statistic(a)`` with a *paired* bootstrap interval: the same units are resampled for both.

    ``a`` and ``b`` are column tables (``{name: array}``) of two methods evaluated on the same units — prompts,
    sentence pairs, sentences — with a ``"unit"`` column saying which unit each row belongs to (a unit may have
    several rows, e.g. several continuations of one prompt). Each resample draws units with replacement and
    evaluates the statistic on both methods' rows of those units, so what the two methods share (the prompt's
    difficulty) cancels out of the difference. With a ``"stratum"`` column (e.g. the social group of a prompt)
    units are resampled within each stratum, so every group keeps its size — as :func:`bootstrap_ci` does — and a
    disparity between groups is defined in every resample. ``statistic`` takes such a table and returns a float.
    Example: ``paired_difference(lambda t: t["toxicity"].mean(), original, gated)`` → Estimate(−0.05, −0.08, −0.02).
    Used by :mod:`debias_utils.audit` for its comparison of every method with the original.
    """
    if not callable(statistic):
        raise TypeError("statistic must be a function of a column table {name: array}")
    if not isinstance(n_resamples, int) or n_resamples < 10:
        raise ValueError(f"n_resamples must be an int >= 10, got {n_resamples!r}")
    tables = []
    for name, table in (("a", a), ("b", b)):
        if "unit" not in table:
            raise ValueError(f"table {name} needs a 'unit' column saying which unit (prompt, pair, …) each row is")
        columns = {k: np.asarray(v) for k, v in table.items()}
        lengths = {len(v) for v in columns.values()}
        if len(lengths) != 1 or 0 in lengths:
            raise ValueError(f"table {name}'s columns must be non-empty and of one length, got {sorted(lengths)}")
        tables.append(columns)
    units = pd.unique(tables[0]["unit"])
    if set(units) != set(pd.unique(tables[1]["unit"])):
        raise ValueError("a paired comparison needs both methods evaluated on the same units")
    # Each table's rows grouped by unit (unit k = units[k]; its rows in table order), so that a resample of units
    # becomes a resample of rows by array arithmetic instead of a Python loop over units.
    layouts = []
    for t in tables:
        codes = pd.Index(units).get_indexer(t["unit"])
        order = np.argsort(codes, kind="stable")
        sizes = np.bincount(codes, minlength=len(units))
        layouts.append((order, np.cumsum(sizes) - sizes, sizes))
    if "stratum" in tables[0]:
        stratum_of = dict(zip(tables[0]["unit"], tables[0]["stratum"]))
        strata = [np.array([k for k, u in enumerate(units) if stratum_of[u] == s])
                  for s in pd.unique(tables[0]["stratum"])]
    else:
        strata = [np.arange(len(units))]
    value = float(statistic(tables[1]) - statistic(tables[0]))
    if not math.isfinite(value):
        raise ValueError(f"the statistic gave {value} on the data itself")
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_resamples)
    for r in range(n_resamples):
        pick = np.concatenate([group[rng.integers(0, len(group), size=len(group))] for group in strata])
        parts = []
        for t, (order, starts, sizes) in zip(tables, layouts):
            lengths = sizes[pick]
            ends = np.cumsum(lengths)
            # Row positions of the picked units, one unit after the other: start of each unit + 0, 1, … within it.
            position = np.repeat(starts[pick] - (ends - lengths), lengths) + np.arange(ends[-1])
            idx = order[position]
            parts.append(statistic({k: v[idx] for k, v in t.items()}))
        diffs[r] = parts[1] - parts[0]
    alpha = (1 - confidence) / 2
    low, high = (float(v) for v in np.nanquantile(diffs, [alpha, 1 - alpha]))
    return Estimate(value, low, high, confidence)


def verdict(difference: Estimate) -> str:
    """"lower", "higher" or "no evidence either way": where the interval of a difference lies with respect to 0.

    Example: ``verdict(Estimate(-0.05, -0.08, -0.02))`` → "lower". Used by :mod:`debias_utils.audit`.
    """
    if difference.high < 0:
        return "lower"
    if difference.low > 0:
        return "higher"
    return "no evidence either way"
