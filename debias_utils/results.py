"""Key numbers and figures from a notebook run, saved where the batch runner can collect them — and, for the
``full`` runs behind the README, recorded in the repository's ``results/`` folder with where they came from.

Every notebook ends with ``save_results("06_bias_metrics", {...}, results_dir)``. In Jupyter
``results_dir`` is ``None`` and nothing is written; ``debias-llm run`` injects a folder with papermill, and
the run's report (``debias_utils.runner``) gathers every ``<notebook>.json`` and figure from it.
``debias-llm run --preset full --record results`` also writes ``results/<notebook>.json`` =
``{"notebook", "preset", "command", "date", "machine", "versions", "git_commit", "seconds", "numbers"}``
(:func:`record_results`); the README's results tables are rendered from those files (:mod:`debias_utils.report`).
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import subprocess
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

    Example: ``save_results("03_pretraining_loss", {"perplexity_english": 12.3}, results_dir)``.
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


def provenance(command: str | None = None) -> dict:
    """Where a result comes from: the command, the date, the machine, package versions and the git commit.

    ``git_commit`` ends in ``+changes`` when the working tree differs from the commit (the numbers then come from
    code that is not in any commit). Example: ``provenance("debias-llm run --preset full")["machine"]``.
    Used by :func:`record_results` (``debias-llm run --record``).
    """
    import torch
    import transformers

    from . import __version__

    root = Path(__file__).resolve().parents[1]

    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    commit = git("rev-parse", "HEAD") or "unknown (not a git checkout)"
    if git("status", "--porcelain", "--untracked-files=no"):
        commit += "+changes"
    return {
        "command": command,
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()} {platform.release()}",
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "debias_utils": __version__},
        "torch_threads": torch.get_num_threads(),
        "git_commit": commit,
    }


def record_results(notebook: str, numbers: dict, folder: str | Path, preset: str, seconds: float,
                   command: str | None = None) -> Path:
    """Write ``folder/<notebook>.json``: the notebook's key numbers wrapped with :func:`provenance`.

    What ``debias-llm run --record results`` calls for each notebook that ran cleanly; the README's results tables
    are rendered from these files. Example: ``record_results("08_gate_attention", numbers, "results", "full", 900)``.
    """
    if not isinstance(numbers, dict) or not numbers:
        raise ValueError(f"{notebook} saved no numbers to record")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--record {folder} is a file; pass a folder (results/ in the repository)")
    folder.mkdir(parents=True, exist_ok=True)
    payload = {"notebook": notebook, "preset": preset, "seconds": round(float(seconds), 1),
               **provenance(command), "numbers": _plain(numbers, notebook)}
    path = folder / f"{notebook}.json"
    path.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    return path


def read_recorded(path: str | Path) -> dict:
    """A file written by :func:`record_results`, checked: a clear error for a missing, damaged or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no recorded results at {path}; make them with: debias-llm run --preset full "
                                f"--only {path.stem[:2]} --record {path.parent}")
    try:
        payload = json.loads(path.read_text())
    except ValueError as error:
        raise ValueError(f"{path} is not valid JSON ({error})") from None
    needed = {"notebook", "preset", "command", "date", "machine", "versions", "git_commit", "numbers"}
    if not isinstance(payload, dict) or not needed <= set(payload):
        raise ValueError(f"{path} is not a recorded result (needs {sorted(needed)}); write it with debias-llm run --record")
    return payload
