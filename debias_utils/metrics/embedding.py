"""Embedding-based tests: WEAT (Caliskan et al. 2017) on word vectors and SEAT (May et al. 2019) on sentences.

Taught in ``notebooks/06_bias_metrics.ipynb``: :func:`weat_from_vectors` (the statistic on given vectors),
:func:`word_embeddings`, :func:`sentence_embeddings` and :func:`weat` (the model's own representations).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..checks import check_positive_int, check_texts


@dataclass(frozen=True)
class WeatResult:
    """WEAT effect size (Cohen's-d-like, in [−2, 2]) and its one-sided permutation p-value."""

    effect_size: float
    p_value: float
    n_permutations: int


def _matrix(vectors, what: str) -> np.ndarray:
    arr = np.asarray(vectors, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"{what} must be a non-empty 2-D array (one vector per word), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} contains NaN or inf")
    norms = np.linalg.norm(arr, axis=1)
    if np.any(norms == 0):
        raise ValueError(f"{what} contains a zero vector; its cosine similarity is undefined")
    return arr / norms[:, None]


def weat_from_vectors(x, y, a, b, n_permutations: int = 10000, seed: int = 0) -> WeatResult:
    """WEAT (Caliskan et al. 2017) on given vectors: target sets x, y; attribute sets a, b (rows = words).

    s(w) = mean cos(w, a) − mean cos(w, b); effect size = (mean_x s − mean_y s) / std_{x∪y} s (ddof=1);
    p-value = share of random equal-size re-partitions of x ∪ y whose Σ_x s − Σ_y s is at least the
    observed one, counted as (1 + #≥) / (1 + n_permutations). Positive: x is closer to a, y to b.
    Example: ``weat_from_vectors([[1, 0], [1, 1]], [[0, 1]], [[1, 0]], [[0, 1]]).effect_size`` → 1.5
    (s = 1, 0 for x and −1 for y; (0.5 − (−1)) / std(1, 0, −1) = 1.5; p ≈ 1/3, one of three splits).
    Taught in ``notebooks/06_bias_metrics.ipynb``.
    """
    x, y, a, b = (_matrix(v, n) for v, n in zip((x, y, a, b), "xyab"))
    dims = {m.shape[1] for m in (x, y, a, b)}
    if len(dims) != 1:
        raise ValueError(f"all vectors must have the same dimension, got {sorted(dims)}")
    if len(x) + len(y) < 3:
        raise ValueError("need at least 3 target words in x and y together for a standard deviation")
    if not isinstance(n_permutations, int) or n_permutations < 1:
        raise ValueError(f"n_permutations must be a positive int, got {n_permutations!r}")
    targets = np.vstack([x, y])
    s = (targets @ a.T).mean(axis=1) - (targets @ b.T).mean(axis=1)
    sx, sy = s[:len(x)], s[len(x):]
    sd = s.std(ddof=1)
    if sd == 0:
        raise ValueError("every target word has the same association s(w), so the effect size is 0/0")
    effect = (sx.mean() - sy.mean()) / sd
    observed = sx.sum() - sy.sum()
    rng = np.random.default_rng(seed)
    perms = rng.permuted(np.tile(s, (n_permutations, 1)), axis=1)
    permuted = perms[:, :len(x)].sum(axis=1) - perms[:, len(x):].sum(axis=1)
    # A tiny tolerance so that a permutation equal to the observed split counts as "at least as extreme".
    count = int((permuted >= observed - 1e-12).sum())
    return WeatResult(float(effect), (1 + count) / (1 + n_permutations), n_permutations)


def word_embeddings(model, tokenizer, words: Sequence[str], leading_space: bool = True) -> np.ndarray:
    """Input-embedding vector of each word: the mean of its sub-token embeddings.

    ``leading_space=True`` embeds " word" — the form a word takes inside a sentence for BPE tokenizers
    like SmolLM2's (" nurse" is one token, "nurse" at the start of a text may split differently).
    Example: ``word_embeddings(m, tok, ["he", "she"]).shape`` → (2, 576).
    Taught in ``notebooks/06_bias_metrics.ipynb``.
    """
    import torch

    words = check_texts(words, "words")
    table = model.get_input_embeddings().weight
    out = []
    with torch.no_grad():
        for w in words:
            ids = tokenizer((" " + w) if leading_space else w, add_special_tokens=False)["input_ids"]
            if not ids:
                raise ValueError(f"word {w!r} has no tokens")
            out.append(table[ids].float().mean(dim=0).cpu().numpy())
    return np.stack(out).astype(np.float64)


def sentence_embeddings(model, tokenizer, sentences: Sequence[str], batch_size: int = 32) -> np.ndarray:
    """Mean last-layer hidden state over each sentence's tokens (SEAT-style sentence vectors).

    The sentence is read after the document-start token (as in :mod:`debias_utils.lm`), which is left out
    of the mean. Example: ``sentence_embeddings(m, tok, ["This is John."]).shape`` → (1, 576).
    Used by :func:`weat` with ``level="sentence"`` (SEAT).
    """
    import torch

    from ..lm import document_start_id, pad_batch, pad_id_of

    sentences = check_texts(sentences, "sentences")
    batch_size = check_positive_int(batch_size, "batch_size")
    start = document_start_id(tokenizer)
    encoded = [[start] + tokenizer(s, add_special_tokens=False)["input_ids"] for s in sentences]
    device = next(model.parameters()).device
    out = [None] * len(sentences)
    with torch.no_grad():
        for begin in range(0, len(encoded), batch_size):
            chunk = encoded[begin:begin + batch_size]
            # Right padding keeps positions 0..n-1 for the real tokens; the mask hides the pads.
            ids, mask = pad_batch(chunk, pad_id_of(tokenizer), side="right")
            hidden = model(input_ids=ids.to(device), attention_mask=mask.to(device),
                           output_hidden_states=True).hidden_states[-1].float()
            for r, e in enumerate(chunk):
                out[begin + r] = hidden[r, 1:len(e)].mean(dim=0).cpu().numpy()
    return np.stack(out).astype(np.float64)


#: Semantically bleached templates in the spirit of SEAT (May et al. 2019).
SEAT_TEMPLATES: list[str] = ["This is {word}.", "That is {word}.", "Here is {word}.", "There is {word}."]


def weat(model, tokenizer, X, Y, A, B, n_permutations: int = 10000, seed: int = 0, level: str = "word",
         templates: Sequence[str] | None = None, leading_space: bool = True) -> WeatResult:
    """WEAT on the model's own representations of four word lists (e.g. ``groups.WEAT_TESTS[...]``).

    ``level="word"``: input embeddings (mean over sub-tokens, see :func:`word_embeddings`);
    ``level="sentence"``: SEAT style — each word is placed in every template (default
    :data:`SEAT_TEMPLATES`, "This is {word}.") and each sentence's mean last hidden state is one member of
    its set. Example: ``weat(m, tok, *WEAT_TESTS["weat6_names_career_family"])``.
    Taught in ``notebooks/06_bias_metrics.ipynb``.
    """
    sets = [check_texts(s, name) for s, name in zip((X, Y, A, B), "XYAB")]
    if level == "word":
        vectors = [word_embeddings(model, tokenizer, s, leading_space) for s in sets]
    elif level == "sentence":
        templates = list(SEAT_TEMPLATES if templates is None else templates)
        if not templates or any("{word}" not in t for t in templates):
            raise ValueError("templates must be a non-empty list of strings with a '{word}' slot")
        vectors = [sentence_embeddings(model, tokenizer, [t.format(word=w) for w in s for t in templates])
                   for s in sets]
    else:
        raise ValueError(f"level={level!r}; choose 'word' (input embeddings) or 'sentence' (SEAT)")
    return weat_from_vectors(*vectors, n_permutations=n_permutations, seed=seed)


def weat_effect_size_ci(x, y, a, b, n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95):
    """WEAT's effect size with a bootstrap interval over the target words (x and y resampled separately).

    The attribute sets stay fixed: the interval says how much the effect depends on which target words were
    chosen. Returns a :class:`~debias_utils.metrics.Estimate`. Example:
    ``weat_effect_size_ci(*(word_embeddings(m, tok, s) for s in WEAT_TESTS["weat6_names_career_family"]))``.
    Used by :mod:`debias_utils.audit`.
    """
    from .disparity import Estimate

    x, y, a, b = (_matrix(v, n) for v, n in zip((x, y, a, b), "xyab"))
    if len(x) < 2 or len(y) < 2:
        raise ValueError("a bootstrap over target words needs at least 2 words in x and in y")

    def association(w):
        return (w @ a.T).mean(axis=1) - (w @ b.T).mean(axis=1)

    sx, sy = association(x), association(y)

    def effect(px, py):
        pooled = np.concatenate([px, py])
        sd = pooled.std(ddof=1)
        return (px.mean() - py.mean()) / sd if sd > 0 else np.nan

    value = effect(sx, sy)
    if not np.isfinite(value):
        raise ValueError("every target word has the same association s(w), so the effect size is 0/0")
    rng = np.random.default_rng(seed)
    draws = np.array([effect(sx[rng.integers(0, len(sx), len(sx))], sy[rng.integers(0, len(sy), len(sy))])
                      for _ in range(n_resamples)])
    alpha = (1 - confidence) / 2
    low, high = (float(v) for v in np.nanquantile(draws, [alpha, 1 - alpha]))
    return Estimate(float(value), low, high, confidence)
