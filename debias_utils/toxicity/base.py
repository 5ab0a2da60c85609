"""What every toxicity scorer shares: ``score(texts)`` / ``labels(texts)``, input checks, batches, progress bar.

A *scorer* turns a list of texts into one toxicity value in [0, 1] per text (``.score``) and, where the model
predicts several kinds of toxicity, into a table with one column per label (``.labels``). Subclasses implement
``_predict(batch)``. Taught in ``notebooks/06_bias_metrics.ipynb``.
"""
from __future__ import annotations

import warnings
from typing import Any, Iterable

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..checks import check_texts

PROGRESS_THRESHOLD = 64  # longer lists get a progress bar


def _as_text_list(texts: Any) -> tuple[list[str], pd.Index]:
    """The texts as a list plus the index the label table should carry (a Series keeps its own)."""
    if isinstance(texts, pd.DataFrame):
        raise TypeError("texts must be one column of texts (a list or a pandas Series), not a whole DataFrame")
    index = texts.index if isinstance(texts, pd.Series) else None
    # A scorer maps text by text, so an empty list gives an empty array rather than an error.
    items = check_texts(texts.tolist() if index is not None else texts, allow_empty=True)
    return items, index if index is not None else pd.RangeIndex(len(items))


class ToxicityScorer:
    """Common interface: ``score(texts)`` and ``labels(texts)``; subclasses implement ``_predict``.

    Subclasses set ``name`` (what ``load_scorer`` calls them), ``label_names`` (column order of
    ``_predict``'s output) and ``score_label`` (the label that ``score`` returns).
    """

    name: str = ""
    label_names: tuple[str, ...] = ()
    score_label: str = ""
    batch_size: int = 64

    def _predict(self, batch: list[str]) -> np.ndarray:  # pragma: no cover - abstract
        """Probabilities, shape ``(len(batch), len(label_names))``."""
        raise NotImplementedError

    def _predict_all(self, texts: list[str], progress: bool | None = None) -> np.ndarray:
        rows = np.empty((len(texts), len(self.label_names)), dtype=np.float64)
        # progress=None: a bar only for long lists; True / False force it on / off.
        show = len(texts) > PROGRESS_THRESHOLD if progress is None else progress
        with tqdm(total=len(texts), desc=f"toxicity ({self.name})", unit="text", disable=not show) as bar:
            for start in range(0, len(texts), self.batch_size):
                batch = texts[start:start + self.batch_size]
                rows[start:start + len(batch)] = self._predict(batch)
                bar.update(len(batch))
        # A NaN would silently drop out of group means later, so stop here instead.
        if not np.isfinite(rows).all():
            bad = sorted(set(np.nonzero(~np.isfinite(rows))[0].tolist()))[:5]
            raise FloatingPointError(f"{self.name} produced non-finite scores for texts at positions {bad}.")
        return rows

    def _flags(self, texts: list[str]) -> pd.DataFrame | None:
        """Per-text warnings as boolean columns (e.g. "not read in full"); None when the scorer has none."""
        return None

    def _warn(self, flags: pd.DataFrame | None, n: int) -> None:
        """One warning per kind of flag, with its count, so that nothing is scored wrongly in silence."""
        if flags is None:
            return
        for column in flags.columns:
            count = int(flags[column].sum())
            if count:
                warnings.warn(f"{self.name}: {count} of {n} texts {self.FLAG_MEANINGS[column]} "
                              f"(see the {column!r} column of .labels(texts))", stacklevel=3)

    FLAG_MEANINGS: dict[str, str] = {}

    def labels(self, texts: Iterable[str], progress: bool | None = None) -> pd.DataFrame:
        """All labels the model predicts: one row per text, one column per label, index aligned with input.

        A scorer that cannot read some texts fully adds boolean flag columns after the labels (the BiLSTM:
        ``no_known_words``, ``truncated``) and warns with their counts.
        Example: ``load_scorer("jigsaw-bilstm").labels(["you idiot"])["insult"]  # -> 0.93 in row 0``.
        Taught in notebooks/06_bias_metrics.ipynb.
        """
        items, index = _as_text_list(texts)
        table = pd.DataFrame(self._predict_all(items, progress), index=index, columns=list(self.label_names))
        flags = self._flags(items)
        self._warn(flags, len(items))
        return table if flags is None else pd.concat([table, flags.set_axis(index)], axis=1)

    def score(self, texts: Iterable[str], progress: bool | None = None) -> np.ndarray:
        """Toxicity in [0, 1], one float per text (the model's main "toxic" label).

        Warns, with a count, about texts the scorer could not read fully (see :meth:`labels`).
        Example: ``load_scorer("profanity").score(["have a nice day", "what the hell"])  # -> array([0.06, 0.99])``.
        Taught in notebooks/06_bias_metrics.ipynb.
        """
        items, _ = _as_text_list(texts)
        self._warn(self._flags(items), len(items))
        return self._predict_all(items, progress)[:, self.label_names.index(self.score_label)]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} labels={list(self.label_names)}>"
