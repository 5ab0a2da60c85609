"""Checks shared by the metrics: one score per text, one label per score, scores split by group.

Every metric rejects empty input, NaN and mismatched lengths with a ``ValueError`` that says what to pass.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def _as_scores(scores, what: str = "scores", unit_interval: bool = False) -> np.ndarray:
    if isinstance(scores, (str, bytes)):
        raise TypeError(f"{what} must be a sequence of numbers, not a string")
    try:
        arr = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be numbers (a list or numpy array of floats)") from None
    if arr.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional (one number per text), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{what} is empty; pass at least one score")
    if not np.all(np.isfinite(arr)):
        i = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValueError(f"{what}[{i}] is {arr[i]}; remove or fix non-finite scores before computing a metric")
    if unit_interval and (arr.min() < 0 or arr.max() > 1):
        raise ValueError(f"{what} must lie in [0, 1] (a scorer's output), got range [{arr.min()}, {arr.max()}]")
    return arr


def _as_labels(labels, n: int, what: str = "groups") -> np.ndarray:
    if isinstance(labels, (str, bytes)):
        raise TypeError(f"{what} must be one label per score, not a single string")
    arr = labels if isinstance(labels, np.ndarray) else np.asarray(list(labels), dtype=object)
    if arr.ndim != 1 or len(arr) != n:
        raise ValueError(f"got {n} scores but {len(arr)} {what}; pass one {what[:-1]} label per score")
    missing = pd.isna(arr)
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise ValueError(f"{what}[{i}] is missing (None/NaN); every score needs a {what[:-1]} label")
    return arr


def _split(scores, groups) -> tuple[list, list[np.ndarray]]:
    """Scores split by group, groups in order of first appearance."""
    x = _as_scores(scores)
    codes, names = pd.factorize(_as_labels(groups, len(x)), sort=False)
    order = np.argsort(codes, kind="stable")
    bounds = np.cumsum(np.bincount(codes, minlength=len(names)))[:-1]
    return list(names), np.split(x[order], bounds)


def _split_groups(scores, groups, what: str) -> tuple[list, list[np.ndarray]]:
    """Like :func:`_split`, but a comparison between groups needs at least two of them."""
    names, parts = _split(scores, groups)
    if len(names) < 2:
        raise ValueError(f"{what} compares groups, but every score belongs to the one group {names[0]!r}; "
                         "pass scores of at least two groups (a single group has no disparity to measure)")
    return names, parts
