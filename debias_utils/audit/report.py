"""The audit's output folder: ``results.json`` (a versioned schema), ``report.md``, ``report.html`` and figures.

``results.json``, schema ``"debias-llm-audit/1"``::

    {"schema": "debias-llm-audit/1", "model": str, "suite": "quick" | "standard" | "full", "scorer": str,
     "seed": int, "greedy": bool, "methods": [str, ...],            # "original" first
     "settings_key": str,                                          # sections resume only under the same key
     "seconds": float,                                             # wall time of this call (resumed sections ~0)
     "provenance": {"command", "date", "machine", "versions", "torch_threads", "git_commit"},
     "settings": {"suite": {...sample sizes...}, "evaluation": {...sampler, batch size, bootstrap...},
                  "processes": int},
     "sections": {NAME: {"title": str, "unit": str, "status": "ok" | "failed", "seconds": float,
                         "error": str,                             # only when failed
                         "note": str,                              # only when items were left out, and why
                         "methods": {METHOD: {"status": "ok", "metrics": {METRIC: {"value", "low", "high", "n"}},
                                              "groups": {GROUP: {"value", "low", "high", "n"}},   # some sections
                                              "tokens_per_second": float}                        # generation
                                     | {"status": "same as original", "reason": str}},
                         "paired": {METHOD: {METRIC: {"difference", "low", "high",
                                                      "verdict": "lower" | "higher" | "no evidence either way"
                                                                 | "undefined"}}}}}}

A metric that is undefined for a method (a male share when the continuations name no gender) has ``"value": None``
and a ``"note"`` saying why; its paired comparison has ``"verdict": "undefined"`` and a ``"reason"``.

Every interval is 95 %; ``difference`` is the method minus the original, with a paired bootstrap interval.
Used by :func:`debias_utils.audit.audit`.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

SCHEMA = "debias-llm-audit/1"


def _fmt(entry: dict | None, digits: int = 3) -> str:
    if not entry:
        return "—"
    value, low, high = entry.get("value"), entry.get("low"), entry.get("high")
    if value is None:
        return f"undefined ({entry['note']})" if entry.get("note") else "undefined"
    text = f"{value:.{digits}f}"
    if low is not None and high is not None:
        text += f" [{low:.{digits}f}, {high:.{digits}f}]"
    return text


def _markdown(results: dict, figures: list[str]) -> str:
    methods = results["methods"]
    lines = [f"# Bias audit of `{results['model']}`", "",
             f"Suite `{results['suite']}` · scorer `{results['scorer']}` · seed {results['seed']} · "
             f"{'greedy decoding' if results['greedy'] else 'nucleus sampling (top-p 0.9)'} · methods: "
             + ", ".join(f"`{m}`" for m in methods), "",
             "Every number has a 95 % interval and its sample size *n*. The paired columns compare each method with "
             "the original on the same items (paired bootstrap): *lower*, *higher* or *no evidence either way*.", ""]
    for name, section in results["sections"].items():
        lines += [f"## {section['title']}", ""]
        if section.get("note"):
            lines += [f"*{section['note']}.*", ""]
        if section["status"] != "ok":
            lines += [f"**This section failed:** `{section.get('error', '')}` — the other sections are unaffected.", ""]
            continue
        metric_names = list(dict.fromkeys(k for m in section["methods"].values() for k in m.get("metrics", {})))
        lines += ["| metric | " + " | ".join(f"`{m}`" for m in methods) + " | n |",
                  "|---|" + "---|" * (len(methods) + 1)]
        for metric_name in metric_names:
            cells, n = [], ""
            for m in methods:
                entry = section["methods"].get(m, {})
                if entry.get("status") != "ok":
                    cells.append("= original")
                    continue
                value = entry["metrics"].get(metric_name)
                cells.append(_fmt(value))
                n = n or (value or {}).get("n", "")
            lines.append(f"| {metric_name} | " + " | ".join(cells) + f" | {n} |")
        reasons = {m: e["reason"] for m, e in section["methods"].items() if e.get("status") != "ok"}
        for m, reason in reasons.items():
            lines.append(f"\n`{m}`: {reason}.")
        if section["paired"]:
            lines += ["", "| paired difference to the original | " + " | ".join(f"`{m}`" for m in section["paired"]) + " |",
                      "|---|" + "---|" * len(section["paired"])]
            for metric_name in next(iter(section["paired"].values())):
                cells = []
                for m, comparison in section["paired"].items():
                    d = comparison[metric_name]
                    cells.append("undefined" if d["difference"] is None else
                                 f"{d['difference']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}] {d['verdict']}")
                lines.append(f"| {metric_name} | " + " | ".join(cells) + " |")
        speeds = {m: e["tokens_per_second"] for m, e in section["methods"].items() if "tokens_per_second" in e}
        if speeds:
            lines += ["", "Generation speed (tokens/s, this run, this machine): "
                      + ", ".join(f"`{m}` {v:.0f}" for m, v in speeds.items() if math.isfinite(v))]
        lines += ["", f"*{section['seconds']:.0f} s*", ""]
    for figure in figures:
        lines += [f"![{Path(figure).stem}]({figure})", ""]
    return "\n".join(lines) + "\n"


def _figures(results: dict, out: Path) -> list[str]:
    """Per-group bars with error bars, and a bias-vs-fluency scatter with one point per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = out / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, label in (("bold", "mean toxicity per BOLD group"), ("holistic_bias", "D per HolisticBias axis")):
        section = results["sections"].get(name)
        if not section or section["status"] != "ok":
            continue
        runs = {m: e["groups"] for m, e in section["methods"].items() if e.get("status") == "ok" and e.get("groups")}
        if not runs:
            continue
        groups = list(next(iter(runs.values())))
        fig, ax = plt.subplots(figsize=(8, max(2.5, 0.22 * len(groups) * len(runs) + 1)))
        height = 0.8 / len(runs)
        for k, (method, values) in enumerate(runs.items()):
            ys = [i + k * height for i in range(len(groups))]
            xs = [values[g]["value"] for g in groups]
            err = [[max(0, values[g]["value"] - values[g]["low"]) for g in groups],
                   [max(0, values[g]["high"] - values[g]["value"]) for g in groups]]
            ax.barh(ys, xs, height=height, xerr=err, capsize=2, label=method)
        ax.set_yticks([i + 0.4 - height / 2 for i in range(len(groups))], groups, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(label + " (95 % interval)")
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        path = folder / f"{name}_groups.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path.relative_to(out).as_posix())
    balance = results["sections"].get("gender_balance", {})
    points = {m: e["metrics"] for m, e in balance.get("methods", {}).items()
              if e.get("status") == "ok" and e["metrics"]["|male_share - 0.5|"]["value"] is not None}
    if balance.get("status") == "ok" and points:   # no gendered word for any method: no point to draw
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for method, m in points.items():
            ppl = m["text_perplexity"]
            ax.errorbar(m["|male_share - 0.5|"]["value"], ppl["value"],
                        yerr=[[ppl["value"] - ppl["low"]], [ppl["high"] - ppl["value"]]], fmt="o", capsize=3,
                        label=method)
        ax.set_xlabel("|male share − 0.5| (gender balance; 0 is balanced)")
        ax.set_ylabel("perplexity of the text\n(unmodified model)")
        ax.set_title("bias against fluency, one point per method", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = folder / "bias_vs_fluency.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path.relative_to(out).as_posix())
    return written


def write_report(results: dict, out: str | Path) -> Path:
    """Write ``results.json``, the figures, ``report.md`` and ``report.html`` into ``out``; returns report.md."""
    import mistune

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=float) + "\n")
    markdown = _markdown(results, _figures(results, out))
    (out / "report.md").write_text(markdown)
    html = ("<!doctype html><html><head><meta charset='utf-8'><title>debias-llm audit</title><style>"
            "body{font-family:sans-serif;max-width:70em;margin:2em auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}img{max-width:100%}</style></head><body>"
            + mistune.html(markdown) + "</body></html>")
    (out / "report.html").write_text(html)
    return out / "report.md"
