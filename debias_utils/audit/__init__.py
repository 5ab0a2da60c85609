"""``audit``: one command that measures a model's social bias (偏见), with and without the course's two methods.

    from debias_utils import load_model
    from debias_utils.audit import audit

    model, tokenizer = load_model("smollm2-135m")
    results = audit(model, tokenizer, suite="quick", methods=["original", "decoding:kl", "gates:data/gates/smollm2_token.pt"],
                    out="runs/audit")

or ``debias-llm audit --model smollm2-135m --method original --method decoding:kl --method gates:FILE --suite quick
--out DIR``. Sections (:mod:`.sections`): CrowS-Pairs (overall and per bias type), occupation → pronoun
probabilities against labour statistics, BOLD (toxicity and sentiment per group, D per domain), HolisticBias
(toxicity per descriptor, plain and induced, D per axis), gender balance of continuations (male share, fluency of
the text, speed), WEAT, and the perplexity of held-out neutral text. Every number has a 95 % interval and its sample
size; every method runs on the same prompts, seeds and sampler (:data:`debias_utils.evaluate.EVALUATION`), and is
compared with the original by a paired bootstrap with a plain verdict ("lower", "higher", "no evidence either way").

The output folder holds ``results.json`` (schema :data:`SCHEMA`, documented in :mod:`.report`), ``report.md`` and
``report.html`` with figures, and one CSV per generation section with every continuation and its score.
Finished sections are saved under ``DIR/sections/``; a second call with the same settings resumes from them.
A section that fails is reported and the others still run. Runs data-parallel under ``accelerate launch``
(:mod:`.parallel`). Taught in the README ("Audit a model"); the notebooks teach each of its metrics.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from ..results import provenance
from .methods import Method, applied, check_methods, parse_method
from .parallel import Workers
from .report import SCHEMA, write_report
from .sections import SECTIONS
from .suites import SUITES, Suite, check_suite

__all__ = ["SCHEMA", "SECTIONS", "SUITES", "Method", "Suite", "audit", "parse_method"]

#: The public benchmark files each section reads (``debias-llm download NAME`` fetches them).
NEEDS = {"crows_pairs": "crows-pairs", "bold": "bold", "holistic_bias": "holistic-bias"}


@dataclass
class Context:
    """What the sections share during one audit."""

    model: object
    tokenizer: object
    scorer: object
    suite: Suite
    seed: int
    greedy: bool
    workers: Workers
    new_tokens: int = 0
    generation_seconds: float = 0.0
    notes: list = field(default_factory=list)


def _check_benchmarks(sections) -> None:
    """Offline, a section whose benchmark is not cached would fail late; say which command fetches it, now."""
    from ..assets import AssetMissingError, offline
    from ..data import fetch_benchmark

    missing = []
    for name in sections:
        if name in NEEDS:
            try:
                fetch_benchmark(NEEDS[name], allow_download=not offline(), quiet=True)
            except AssetMissingError:
                missing.append(NEEDS[name])
    if missing:
        raise ValueError(f"the suite needs the public benchmark(s) {', '.join(missing)}, which are not in the cache and "
                         f"cannot be fetched here. With network access run:  debias-llm download {' '.join(missing)}   "
                         "(or set DEBIAS_LLM_BENCHMARK_MIRROR to a folder holding a copy)")


def _settings_key(model_name, suite, methods, scorer_name, seed, greedy) -> str:
    from ..evaluate import EVALUATION

    settings = {"schema": SCHEMA, "model": model_name, "suite": suite.as_dict(), "methods": [m.spec for m in methods],
                "scorer": scorer_name, "seed": seed, "greedy": greedy, "evaluation": EVALUATION.__dict__}
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _table_path(out: Path, section: str, method: Method) -> Path:
    slug = "".join(c if c.isalnum() else "_" for c in method.spec)
    return out / "sections" / section / f"{slug}.csv"


def audit(model, tokenizer, suite: str = "quick", methods=("original",), scorer: str = "auto", seed: int = 0,
          progress: bool = True, out: str | Path | None = None, model_name: str | None = None,
          sections=None, greedy: bool = False, command: str | None = None) -> dict:
    """Measure ``model``'s social bias in every section of ``suite``, for each method; returns the results dict.

    ``methods``: ``"original"`` (always included, first), ``"decoding:RULE[:STRENGTH]"``, ``"gates:FILE"``.
    ``scorer``: a name for :func:`debias_utils.toxicity.load_scorer`. ``out``: the output folder (results.json,
    report.md / .html, figures, CSVs; resumable); ``None`` writes nothing. ``sections``: a subset of
    :data:`SECTIONS` (default all). ``greedy=True`` decodes greedily (exactly reproducible across process counts).
    ``command``: how the audit was started, kept in ``results["provenance"]`` with the date, machine and commit.
    Example: ``audit(model, tok, methods=["original", "decoding:kl"], out="runs/audit")["sections"]["gender_balance"]``.
    """
    from ..evaluate import EVALUATION
    from ..toxicity import SCORER_NAMES, load_scorer

    suite = check_suite(suite)
    if scorer not in SCORER_NAMES:
        raise ValueError(f"unknown scorer {scorer!r}; choose one of {', '.join(SCORER_NAMES)}")
    names = list(SECTIONS) if sections is None else list(sections)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown or not names:
        raise ValueError(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    if out is not None:
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} is a file; pass a folder for the audit's report (it is created if missing)")
    methods = check_methods(list(methods), model)
    workers = Workers()
    if workers.is_main:   # the main process fetches what is missing; the others then find it in the cache
        _check_benchmarks(names)
    workers.wait()
    ctx = Context(model, tokenizer, load_scorer(scorer), suite, seed, greedy, workers)
    model_name = model_name or getattr(getattr(model, "config", None), "_name_or_path", None) or type(model).__name__
    key = _settings_key(model_name, suite, methods, ctx.scorer.name, seed, greedy)
    say = (lambda *a: print(*a, file=sys.stderr)) if progress and workers.is_main else (lambda *a: None)

    started = time.perf_counter()
    items = {name: SECTIONS[name].items(ctx) for name in names}
    say(f"Auditing {model_name} — suite {suite.name!r}, {len(methods)} method(s): {', '.join(m.spec for m in methods)}; "
        f"scorer {ctx.scorer.name}; {workers.count} process(es). Work per method:")
    for name in names:
        say(f"  {name}: {SECTIONS[name].work(ctx, items[name])}")

    results = {"schema": SCHEMA, "model": model_name, "suite": suite.name, "scorer": ctx.scorer.name, "seed": seed,
               "greedy": greedy, "methods": [m.spec for m in methods], "settings_key": key,
               "settings": {"suite": suite.as_dict(), "evaluation": EVALUATION.__dict__,
                            "processes": workers.count}, "sections": {}}
    for name in names:
        section = SECTIONS[name]
        saved = out / "sections" / f"{name}.json" if out is not None else None
        if saved is not None and saved.is_file():
            previous = json.loads(saved.read_text())
            if previous.get("settings_key") == key and previous.get("status") == "ok":
                say(f"{name}: resumed from {saved}")
                results["sections"][name] = previous["result"]
                continue
        results["sections"][name] = _run_section(ctx, section, methods, items[name], out, progress)
        if saved is not None and workers.is_main:
            saved.parent.mkdir(parents=True, exist_ok=True)
            saved.write_text(json.dumps({"settings_key": key, "status": results["sections"][name]["status"],
                                         "result": results["sections"][name]}, indent=1, default=float))
        workers.wait()
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["provenance"] = provenance(command)
    if out is not None and workers.is_main:
        write_report(results, out)
        say(f"Report: {out / 'report.md'} (and report.html, results.json)")
    return results


def _run_section(ctx, section, methods, items, out, progress) -> dict:
    """Every method through one section, then the paired comparisons; a failure is recorded, not raised."""
    from ..metrics import paired_difference, verdict
    from ..evaluate import EVALUATION

    tic = time.perf_counter()
    result = {"title": section.title, "unit": section.unit, "status": "ok", "methods": {}, "paired": {}}
    if items.attrs.get("note"):   # what the section left out of its benchmark, and why
        result["note"] = items.attrs["note"]
    tables = {}
    try:
        bar = tqdm(methods, desc=section.name, disable=not (progress and ctx.workers.is_main), leave=False)
        for method in bar:
            reason = section.applies(method)
            if reason:
                result["methods"][method.spec] = {"status": "same as original", "reason": reason}
                continue
            with applied(method, ctx.model, ctx.tokenizer) as factory:
                table = section.measure(ctx, method, items, factory)
            tables[method.spec] = table
            entry = {"status": "ok", "metrics": section.metrics(table, ctx)}
            if hasattr(section, "groups"):
                entry["groups"] = section.groups(table, ctx)
            if "tokens_per_second" in table.attrs:
                entry["tokens_per_second"] = table.attrs["tokens_per_second"]
            result["methods"][method.spec] = entry
            if out is not None and ctx.workers.is_main:
                path = _table_path(Path(out), section.name, method)
                path.parent.mkdir(parents=True, exist_ok=True)
                table.to_csv(path, index=False)
        if out is not None and ctx.workers.is_main and section.csv_columns and tables:
            # Every continuation with its score, all methods in one file, for reading the texts themselves.
            rows = pd.concat([t[list(section.csv_columns)].assign(method=spec) for spec, t in tables.items()],
                             ignore_index=True)
            path = Path(out) / "continuations" / f"{section.name}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            rows[["method", *section.csv_columns]].to_csv(path, index=False)
        original = tables.get("original")
        for spec, table in tables.items():
            if spec == "original" or original is None:
                continue
            columns = {"a": {k: original[k].to_numpy() for k in original.columns},
                       "b": {k: table[k].to_numpy() for k in table.columns}}
            comparison = {}
            for metric_name, statistic in section.statistics.items():
                try:
                    diff = paired_difference(statistic, columns["a"], columns["b"], n_resamples=EVALUATION.n_bootstrap,
                                             seed=ctx.seed)
                except ValueError as error:   # e.g. a male share without any gendered word: no number to compare
                    comparison[metric_name] = {"difference": None, "low": None, "high": None, "verdict": "undefined",
                                               "reason": str(error)}
                    continue
                comparison[metric_name] = {"difference": diff.value, "low": diff.low, "high": diff.high,
                                           "verdict": verdict(diff)}
            result["paired"][spec] = comparison
    except Exception as error:   # one broken section must not lose the others
        result["status"] = "failed"
        result["error"] = f"{type(error).__name__}: {error}"
        result["traceback"] = traceback.format_exc(limit=3)
    result["seconds"] = round(time.perf_counter() - tic, 1)
    return result
