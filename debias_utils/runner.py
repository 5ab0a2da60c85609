"""Batch-run the course with papermill and write a report: the engine behind ``make course``.

``debias-llm run --preset quick|full [--only NAMES] [--output DIR]`` executes the notebooks in course
order into ``DIR/notebooks/`` (never back into ``notebooks/``), injects the preset's parameters and
``results_dir``, carries on past a failing notebook, and ends with ``DIR/report.md`` and
``DIR/report.html``: every notebook's status and time, the key numbers each one saved with
:func:`debias_utils.results.save_results`, and the figures it saved. Exit status 1 if any notebook failed.
"""
from __future__ import annotations

import datetime as dt
import json
import platform
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"

# Parameters per notebook stem. "quick" = the notebooks' own fast defaults (what CI checks);
# "full" = the larger runs behind the README's results table. A stem missing here runs with defaults.
PRESETS: dict[str, dict[str, dict]] = {
    "quick": {},
    "full": {
        "03_pretraining_loss": {"train_steps": 1000, "max_train_seconds": 600, "eval_every": 100, "eval_tokens": 400},
        "01_tokenizer": {"num_merges": 500},
        "04_generate": {"kv_new_tokens": 256, "max_new_tokens": 40, "n_samples": 5},
        "05_finetuning": {"train_steps": 100},
        "06_bias_metrics": {"terms_per_group": None, "n_samples": 25, "occupation_templates": "all",
                            "crows_pairs": "benchmark",
                            "axes": ["gender", "sex", "age", "race", "religion", "nationality", "disability",
                                     "sexual_orientation"]},   # every axis of debias_utils.groups.GROUP_TERMS
        "07_try": {"n_samples": 8, "max_new_tokens": 16, "compare_samples": 2, "curve_prompts": 60,
                   "curve_new_tokens": 6, "check_goal": True},
        "08_gate_attention": {"n_samples": 10, "compare_token_gates": True, "n_importance": 64, "n_neutral": 200},
        # The same sample sizes as the full runs of 07 and 08, so that each row equals the notebook it comes from.
        "09_compare_methods": {"occupation_samples": 8, "occupation_new_tokens": 16, "identity_samples": 10,
                               "decoding_on_identity_prompts": True, "n_importance": 64, "n_neutral": 200},
    },
}


@dataclass
class NotebookRun:
    """What happened to one notebook in a batch run."""

    name: str
    source: str
    output: str
    status: str = "pending"  # ok | failed
    seconds: float = 0.0
    parameters: dict = field(default_factory=dict)
    error: str = ""
    results: dict = field(default_factory=dict)


def course_notebooks(root: Path | None = None) -> list[Path]:
    """The course's notebooks in order: ``NN_*.ipynb`` and ``NN_*/*.ipynb``, solutions excluded."""
    root = NOTEBOOKS if root is None else root
    found = list(root.glob("[0-9][0-9]_*.ipynb")) + list(root.glob("[0-9][0-9]_*/*.ipynb"))
    found = [p for p in found if "solutions" not in p.parts and ".ipynb_checkpoints" not in p.parts]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def notebook_name(path: Path) -> str:
    """A notebook's short name: its chapter prefix and stem, e.g. ``07_decoding/try`` → ``07_try``."""
    if path.parent.name[:2].isdigit() and not path.stem[:2].isdigit():
        return f"{path.parent.name[:2]}_{path.stem}"
    return path.stem


def select(notebooks: list[Path], only: list[str] | None) -> list[Path]:
    """Keep the notebooks whose name starts with one of ``only`` (e.g. ``["00", "06_bias"]``)."""
    if not only:
        return notebooks
    chosen = [p for p in notebooks if any(notebook_name(p).startswith(o) or p.stem == o for o in only)]
    unknown = [o for o in only if not any(notebook_name(p).startswith(o) or p.stem == o for p in notebooks)]
    if unknown:
        names = ", ".join(notebook_name(p) for p in notebooks)
        raise ValueError(f"--only {', '.join(unknown)} matches no notebook; available: {names}")
    return chosen


def _parameters_for(path: Path, preset: str, results_dir: Path) -> dict:
    import papermill

    declared = set(papermill.inspect_notebook(str(path)))
    wanted = dict(PRESETS[preset].get(notebook_name(path), {}))
    unknown = sorted(set(wanted) - declared)
    if unknown:
        raise ValueError(f"preset {preset!r} sets {unknown} but {path.name}'s parameters cell declares "
                         f"only {sorted(declared)}")
    if "results_dir" in declared:
        wanted["results_dir"] = str(results_dir)
    return wanted


def _execute(run: NotebookRun, path: Path, parameters: dict, output: Path) -> None:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(path), str(output), parameters=parameters, kernel_name="python3",
            cwd=str(path.parent), progress_bar=False, log_output=False,
        )
        run.status = "ok"
    except PapermillExecutionError as error:
        run.status = "failed"
        run.error = f"cell {error.exec_count}: {error.ename}: {error.evalue}"
    except Exception as error:  # a kernel crash or a missing kernel: still report and carry on
        run.status = "failed"
        run.error = f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=2)}"
    run.seconds = time.perf_counter() - start


def run_course(preset: str = "quick", only: list[str] | None = None, output: str | Path | None = None,
               notebooks: list[Path] | None = None, echo=print, record: str | Path | None = None,
               command: str | None = None) -> tuple[list[NotebookRun], Path]:
    """Execute the selected notebooks in order and write the report. Returns (runs, output folder).

    ``record`` (``debias-llm run --record results``): also write each clean notebook's key numbers, with the
    command, date, machine, versions and git commit, to ``record/<notebook>.json`` (:func:`record_results`).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    if notebooks is not None:
        notebooks = [Path(p) for p in notebooks]
        if not notebooks:
            raise ValueError("notebooks=[] is empty; pass the notebook paths to run, or None for the whole course")
        missing = [str(p) for p in notebooks if not p.is_file()]
        if missing:
            raise ValueError(f"no notebook at {missing[0]}; pass paths of existing .ipynb files")
    paths = select(notebooks if notebooks is not None else course_notebooks(), only)
    if not paths:
        raise ValueError(f"no notebooks found in {NOTEBOOKS}")
    out = Path(output) if output else REPO / "runs" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = out.resolve()
    if out.exists() and not out.is_dir():
        raise ValueError(f"--output {out} is a file; pass a folder (it is created if missing)")
    if out == NOTEBOOKS.resolve() or NOTEBOOKS.resolve() in out.parents:
        raise ValueError("the output folder must not be inside notebooks/; papermill output never goes there")
    results_dir = out / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    runs: list[NotebookRun] = []
    for index, path in enumerate(paths, 1):
        name = notebook_name(path)
        root = NOTEBOOKS.resolve()
        target = out / "notebooks" / (path.resolve().relative_to(root) if root in path.resolve().parents else path.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        run = NotebookRun(name=name, source=str(path), output=str(target))
        try:
            run.parameters = _parameters_for(path, preset, results_dir)
        except Exception as error:
            run.status, run.error = "failed", str(error)
            runs.append(run)
            echo(f"[{index}/{len(paths)}] {name}: failed before running — {error}")
            continue
        echo(f"[{index}/{len(paths)}] {name} ...")
        _execute(run, path, run.parameters, target)
        result_file = results_dir / f"{name}.json"
        if result_file.is_file():
            run.results = json.loads(result_file.read_text())
        if record is not None and run.status == "ok" and run.results:
            from .results import record_results

            record_results(name, run.results, record, preset, run.seconds, command)
        echo(f"[{index}/{len(paths)}] {name}: {run.status} in {run.seconds:.0f} s" + (f" — {run.error}" if run.error else ""))
        runs.append(run)
    write_report(runs, out, preset)
    return runs, out


def _is_records(value) -> bool:
    """A list of dicts (one per row, e.g. a DataFrame saved with ``to_dict("records")``)."""
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _flatten(numbers: dict, prefix: str = "") -> list[tuple[str, object]]:
    rows = []
    for key, value in numbers.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows.extend(_flatten(value, name + "."))
        else:
            rows.append((name, value))
    return rows


def _records_table(records: list[dict]) -> list[str]:
    """A list of row dicts as its own Markdown table (columns in order of first appearance)."""
    columns = list(dict.fromkeys(k for row in records for k in row))
    lines = ["| " + " | ".join(_fmt(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |" for row in records]
    return lines


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value[:8]) + (", …" if len(value) > 8 else "") + "]"
    # A value goes into one Markdown table cell: no line breaks, no bare pipes.
    return str(value).replace("\n", " ⏎ ").replace("|", "\\|")


def write_report(runs: list[NotebookRun], out: Path, preset: str) -> Path:
    """Write ``report.md``, ``report.html`` and ``summary.json`` into ``out``; returns the Markdown path."""
    import mistune

    failed = [r for r in runs if r.status != "ok"]
    total = sum(r.seconds for r in runs)
    lines = [
        f"# debias-llm course run — preset `{preset}`",
        "",
        f"{dt.datetime.now().strftime('%Y-%m-%d %H:%M')} · {platform.node()} · {platform.processor() or platform.machine()}"
        f" · Python {platform.python_version()} · total {total / 60:.1f} min",
        "",
        f"**{len(runs) - len(failed)} of {len(runs)} notebooks ran cleanly.**"
        + (" Failed: " + ", ".join(f"`{r.name}`" for r in failed) if failed else ""),
        "",
        "| notebook | status | time (s) | executed copy |",
        "|---|---|---:|---|",
    ]
    for r in runs:
        rel = Path(r.output).relative_to(out).as_posix()
        lines.append(f"| {r.name} | {'✅ ok' if r.status == 'ok' else '❌ failed'} | {r.seconds:.0f} | [{rel}]({rel}) |")
    if failed:
        lines += ["", "## Failures", ""]
        for r in failed:
            lines += [f"### {r.name}", "", "```", r.error.strip(), "```", ""]
    figures = out / "results" / "figures"
    for r in runs:
        if not r.results and r.status == "ok":
            continue
        lines += ["", f"## {r.name}", ""]
        if r.results:
            flat = _flatten(r.results)
            lines += ["| number | value |", "|---|---|"]
            lines += [f"| {k} | {_fmt(v)} |" for k, v in flat if not _is_records(v)]
            for k, v in flat:   # tables saved as lists of rows get a table of their own
                if _is_records(v):
                    lines += ["", f"**{k}**", ""] + _records_table(v)
        # Figures are named after their chapter ("02_tokens_per_word.png"), not always the full notebook name.
        chapter = r.name.split("_")[0] + "_"
        for fig in sorted(figures.glob(f"{chapter}*.png")) if figures.is_dir() else []:
            rel = fig.relative_to(out).as_posix()
            lines += ["", f"![{fig.stem}]({rel})"]
    markdown = "\n".join(lines) + "\n"
    md_path = out / "report.md"
    md_path.write_text(markdown)
    html = ("<!doctype html><html><head><meta charset='utf-8'><title>debias-llm report</title>"
            "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 8px}img{max-width:100%}</style></head><body>"
            + mistune.html(markdown) + "</body></html>")
    (out / "report.html").write_text(html)
    (out / "summary.json").write_text(json.dumps(
        {"preset": preset, "total_seconds": total, "runs": [asdict(r) for r in runs]}, indent=1))
    return md_path
