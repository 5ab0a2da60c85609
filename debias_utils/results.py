"""Key numbers and figures from a notebook run, saved where the batch runner can collect them.

Every notebook ends with ``save_results("05_bias_metrics", {...}, results_dir)``. In Jupyter
``results_dir`` is ``None`` and nothing is written; ``debias-llm run`` injects a folder with papermill, and
the run's report (``debias_utils.runner``) gathers every ``<notebook>.json`` and figure from it.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np


def _plain(value, key: str):
    """Turn numpy scalars/arrays into JSON values; refuse NaN/inf so that no number is silently lost."""
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v, f"{key}[{i}]") for i, v in enumerate(np.asarray(value).tolist())] \
            if isinstance(value, np.ndarray) else [_plain(v, f"{key}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"result {key!r} is {value}; fix the computation instead of saving a non-number")
        return value
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if value is None or isinstance(value, (str, int, bool)):
        return value
    raise TypeError(f"result {key!r} has type {type(value).__name__}; save numbers, strings, lists or dicts")


def save_results(notebook: str, numbers: dict, results_dir: str | Path | None) -> Path | None:
    """Write ``numbers`` (a flat or nested dict) to ``<results_dir>/<notebook>.json``; no-op if no folder.

    Example: ``save_results("01_pretraining_loss", {"perplexity_english": 12.3}, results_dir)``.
    Used at the end of every notebook; read back by ``debias-llm run``'s report.
    """
    if results_dir is None:
        return None
    if not isinstance(numbers, dict) or not numbers:
        raise ValueError("numbers must be a non-empty dict of name -> value")
    folder = Path(results_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{notebook}.json"
    path.write_text(json.dumps(_plain(numbers, notebook), indent=1, sort_keys=True))
    return path


def save_figure(fig, name: str, results_dir: str | Path | None) -> Path | None:
    """Save a matplotlib figure as ``<results_dir>/figures/<name>.png`` for the report; no-op if no folder."""
    if results_dir is None:
        return None
    folder = Path(results_dir) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path
