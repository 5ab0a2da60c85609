"""``alt-profanity-check``: a linear SVM on word n-grams — fast, lexical, a useful counterexample to a real model.

Taught in ``notebooks/06_bias_metrics.ipynb``.
"""
from __future__ import annotations

import numpy as np

from .base import ToxicityScorer


class ProfanityScorer(ToxicityScorer):
    """``alt-profanity-check``: a linear SVM on word n-grams, one label. Fast and purely lexical.

    Example: ``load_scorer("profanity").score(["what the hell"])  # -> array([0.99])``.
    Taught in notebooks/06_bias_metrics.ipynb.
    """

    name = "profanity"
    label_names = ("profanity",)
    score_label = "profanity"

    def __init__(self, batch_size: int = 1024):
        from profanity_check import predict_prob

        self._predict_prob = predict_prob
        self.batch_size = batch_size

    def _predict(self, batch: list[str]) -> np.ndarray:
        return np.asarray(self._predict_prob(batch), dtype=np.float64).reshape(-1, 1)
