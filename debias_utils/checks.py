"""Input checks shared by every module: one way to say "this is not a list of texts" or "batch_size must be ≥ 1".

A function handed bad input should stop with a message that says what to pass instead, never return a
plausible number. These helpers are that message, written once; every module uses them
and nothing here imports the rest of the package.
"""
from __future__ import annotations

import math
import numbers


def check_texts(texts, what: str = "texts", allow_blank: bool = True, allow_empty: bool = False) -> list[str]:
    """``texts`` as a list of strings, or a clear error: one string, a non-string element, an empty list.

    ``allow_blank=False`` also refuses empty / whitespace-only strings (e.g. neutral sentences that a loss
    averages over), instead of silently dropping them. ``allow_empty=True`` accepts an empty list, for
    functions that map text by text (a scorer returns an empty array); anything that averages over the texts
    keeps the default and refuses it.
    Example: ``check_texts(["a", "b"])`` → ``['a', 'b']``; ``check_texts("a")`` raises ``TypeError``.
    Used by every function that takes texts (lm, metrics, toxicity, gates, evaluate).
    """
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"{what} must be a list of strings, not one string; wrap it in a list: [{texts[:30]!r}]")
    try:
        texts = list(texts)
    except TypeError:
        raise TypeError(f"{what} must be a list of strings; got {type(texts).__name__}") from None
    if not texts and not allow_empty:
        raise ValueError(f"{what} is empty; pass at least one text")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{what}[{i}] is {type(text).__name__} ({text!r}); every element must be a str "
                            "(drop missing values or replace them with '' first)")
        if not allow_blank and not text.strip():
            raise ValueError(f"{what}[{i}] is blank ({text!r}); remove empty texts before passing them")
    return texts


def check_positive_int(value, what: str) -> int:
    """``value`` as an int ≥ 1 (a batch size, a number of samples or steps), or a clear error.

    Example: ``check_positive_int(16, "batch_size")`` → 16; ``check_positive_int(0, "batch_size")`` raises.
    Used for every batch size, sample count and step count in the package.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what} must be a whole number >= 1, got {value!r}")
    if value < 1:
        raise ValueError(f"{what} must be >= 1, got {value}")
    return int(value)


def check_number(value, what: str, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite float inside the given bounds (``low_open`` / ``high_open`` exclude the ends).

    Accepts any real number type (``numpy.float32`` included); refuses NaN, inf, strings and booleans.
    Example: ``check_number(0.9, "top_p", 0, 1, low_open=True)`` → 0.9.
    Used for the sampling settings and the decoding rules' knobs.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        span = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
        raise ValueError(f"{what} must be in {span}, got {value}")
    return value
