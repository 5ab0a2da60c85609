"""The README's results, rendered from the recorded files in ``results/`` — never typed in by hand.

``debias-llm run --preset full --only 06 07 08 09 --record results/full`` records each notebook's key numbers with the
command, date, machine, versions and commit (:func:`debias_utils.results.record_results`); ``debias-llm run --preset
quick --record results/quick`` records the default run (its times fill the course-times table); ``debias-llm audit …
--out results/audit_quick`` writes an audit there. ``debias-llm report --readme`` renders the tables below from those
files into the README between :data:`BEGIN` and :data:`END`; ``tests/test_readme_results.py`` fails when the README
and ``results/`` disagree (the way the figures are checked against their script).
"""
from __future__ import annotations

import json
from pathlib import Path

from .results import read_recorded

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
BEGIN = "<!-- results:begin — rendered from results/ by `debias-llm report --readme`; edit those files, not this -->"
END = "<!-- results:end -->"


def _ci(value, low, high, digits=3, saved_rounded=True) -> str:
    # Some notebooks save their tables rounded to 4 decimals; rounding everything to 4 first shows one number the
    # same way in every table (0.05549 and its saved 0.0555 would otherwise print as 0.055 and 0.056). The audit
    # saves full precision and its own report rounds once, so its numbers are not rounded twice here.
    if saved_rounded:
        value, low, high = (round(float(v), 4) for v in (value, low, high))
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _provenance(r: dict, runtime: str | None = "notebook") -> str:
    """The italic "Recorded by …" line; ``runtime`` says how its time is told ("notebook": the notebook's minutes,
    any other text as it is, ``None``: not at all)."""
    v = r["versions"]
    threads = r.get("torch_threads", "?")
    if runtime == "notebook":
        runtime = f"the notebook ran {r.get('seconds', 0) / 60:.0f} min"
    return (f"*Recorded by `{r['command']}` on {r['date'][:10]} — {r['machine']}, {threads} torch "
            f"thread{'' if threads == 1 else 's'}; Python {v['python']}, torch {v['torch']}, transformers "
            f"{v['transformers']}; commit `{r['git_commit'][:12]}`" + (f"; {runtime}.*" if runtime else ".*"))


def _bias(r: dict) -> list[str]:
    n = r["numbers"]
    lines = [f"**Bias in SmolLM2-135M-Instruct** (`06_bias_metrics.ipynb`, `{r['preset']}` preset): toxicity of "
             f"{n['n_continuations']:,} continuations of identity prompts on {len(n['axes'])} axes (jigsaw-bilstm "
             "scorer); D = Σ_g |T̄ − T_g| within each axis; 95 % bootstrap intervals; permutation p under shuffled "
             "group labels.", "",
             "| axis | toxicity D [95 % CI] | permutation p | sentiment D (VADER) |", "|---|---|---|---|"]
    for axis in n["axes"]:
        d, s = n["disparity"][axis], n["sentiment"][axis]
        lines.append(f"| {axis} | {_ci(d['D'], d['low'], d['high'])} | {d['permutation_p']:.3f} | {s['D']:.3f} |")
    lo, hi = n["crows_pairs_ci"]
    lines += ["", f"{n.get('crows_pairs_source', 'CrowS-Pairs')} on {n['crows_pairs_n']:,} pairs (50 % is "
                  f"ideal): **{_ci(n['crows_pairs_score'], lo, hi)}**, binomial p = {n['crows_pairs_p_value']:.3g}. "
                  f"Pronoun she-share against the share of women per occupation: Pearson r = "
                  f"{n['pronoun_pearson_r']:.3f}. WEAT (career/family vs names): effect size "
                  f"{n['weat_effect_size']:.3f}, p = {n['weat_p_value']:.3f}."]
    by_type = n.get("crows_pairs_by_type")
    if by_type:
        lines += ["", "| CrowS-Pairs bias type | pairs | score [95 % CI] |", "|---|---|---|"]
        lines += [f"| {row['bias_type']} | {row['n']} | {_ci(row['score'], row['low'], row['high'])} |"
                  for row in by_type]
    return lines + ["", _provenance(r)]


GOALS = {"share_within_0.05": "male share within 0.50 ± 0.05", "perplexity_within_5pct": "perplexity at most +5 %",
         "control_agreement_not_lower": "control agreement not lower"}


def _decoding(r: dict) -> list[str]:
    n = r["numbers"]
    lo, hi = n["male_share_baseline_ci"]
    mlo, mhi = n["male_share_method_ci"]
    goal = n["goal"]
    lines = [f"**Method 1 — decoding adjustment** (`07_decoding/try.ipynb`, `{r['preset']}` preset): 40 held-out "
             f"occupation prompts × {n['n_samples']} samples × {n['max_new_tokens']} new tokens; share of male words "
             "among gendered words (0.5 = balanced), bootstrap over texts.", "",
             "| | male share [95 % CI] | gendered words | continuation perplexity | control-prompt agreement |",
             "|---|---|---|---|---|",
             f"| original model | {_ci(n['male_share_baseline'], lo, hi)} | {n['gendered_words_baseline']} | "
             f"{n['perplexity_baseline']:.2f} | {n['control_agreement_baseline']:.3f} |",
             f"| `{n['rule']}` rule (strength {n['strength']:g}) | **{_ci(n['male_share_method'], mlo, mhi)}** | "
             f"{n['gendered_words_method']} | {n['perplexity_method']:.2f} (×{n['perplexity_ratio']:.3f}) | "
             f"{n['control_agreement_method']:.3f} |", "",
             "Goal: " + ", ".join(f"{GOALS.get(k, k)} {'✔' if v else '✘'}" for k, v in goal.items()) + ".", "",
             _provenance(r)]
    return lines


def _gates(r: dict) -> list[str]:
    n = r["numbers"]
    rows = {}
    for row in n["summary"]:
        rows.setdefault(row["model"], {})[row["condition"]] = row
    lines = [f"**Method 2 — gated attention** (`08_gate_attention.ipynb`, `{r['preset']}` preset): {n['n_prompts']} "
             f"held-out identity prompts (gender and age, plain and after the inducing prefix) × {n['n_samples']} "
             f"samples × {n['max_new_tokens']} new tokens; jigsaw-bilstm scorer; held-out neutral sentences for "
             "perplexity and KL.", "",
             "| | D plain | D induced | toxicity prob. (induced) | EMT (induced) | neutral perplexity | KL to original |",
             "|---|---|---|---|---|---|---|"]
    for model, conditions in rows.items():
        plain, induced = conditions.get("plain"), conditions.get("induced")
        neutral = n["neutral"].get(model, {})
        lines.append(f"| {model} | {_ci(plain['D'], plain['D low'], plain['D high'])} | "
                     f"{_ci(induced['D'], induced['D low'], induced['D high'])} | "
                     f"{_ci(induced['tox prob'], induced['prob low'], induced['prob high'], 2)} | "
                     f"{_ci(induced['EMT'], induced['EMT low'], induced['EMT high'])} | "
                     f"{neutral.get('perplexity', float('nan')):.2f} | {neutral.get('KL to original', 0.0):.3f} |")
    lines += ["", f"The head-gate file records its own training time: {n['train_seconds']:.0f} s wall "
                  f"({n['train_cpu_seconds']:.0f} s CPU). Heads the training-free baseline switched off: "
                  + ", ".join(n["pruned_heads"]) + ".", "", _provenance(r)]
    return lines


def _compare(r: dict) -> list[str]:
    n = r["numbers"]
    s = n["settings"]
    lines = [f"**All methods side by side** (`09_compare_methods.ipynb`, `{r['preset']}` preset): 40 occupation prompts × "
             f"{s['occupation_samples']} samples × {s['occupation_new_tokens']} tokens for the male share; identity "
             f"prompts × {s['identity_samples']} samples × {s['identity_new_tokens']} tokens for toxicity; the same "
             "prompts, seed and sampler for every method.", "",
             "| method | male share [95 % CI] | D plain [95 % CI] | toxicity prob. (induced) | text ppl | neutral ppl | "
             "forward passes | training s |", "|---|---|---|---|---|---|---|---|"]
    # Recorded files sort their keys; show the methods in the notebook's order: original, decoding, gates, pruning.
    rank = ("original", "decoding", "Self-Debias", "gates", "FASP")
    methods = sorted(n["methods"].items(), key=lambda kv: (next((i for i, r in enumerate(rank)
                                                                  if kv[0].startswith(r)), len(rank)), kv[0]))
    for name, m in methods:
        share = _ci(m["male_share"], m["share_low"], m["share_high"], 2)
        d = _ci(m["D_plain"], m["D_plain_low"], m["D_plain_high"]) if "D_plain" in m else "not run"
        tox = _ci(m["tox_prob"], m["tox_prob_low"], m["tox_prob_high"], 2) if "tox_prob" in m else "not run"
        lines.append(f"| {name} | {share} | {d} | {tox} | {m['ppl_text']:.1f} | {m['ppl_neutral']:.1f} | "
                     f"{m['forward_passes']:.0f} | {m['train_s']:.0f} |")
    lines += ["", f"Closest to balanced: {n['closest_to_balanced']}; clearly lower toxicity probability than the original "
                  f"(each estimate outside the other's 95 % interval): {', '.join(n['clearly_lower_tox_prob']) or 'none'}.", "", _provenance(r)]
    return lines


def _link(folder: Path) -> str:
    # Links are relative to the README, which sits beside results/ (a copy of results/ elsewhere renders the same).
    return f"{folder.parent.name}/{folder.name}"


def _audit(folder: Path) -> list[str]:
    results = json.loads((folder / "results.json").read_text())
    sections = results["sections"]
    methods = results["methods"]

    def cell(section, method, metric):
        entry = sections[section]["methods"].get(method, {})
        if entry.get("status") != "ok":
            return "= original"
        m = entry["metrics"][metric]
        return "undefined" if m["value"] is None else _ci(m["value"], m["low"], m["high"], saved_rounded=False)

    rows = [("CrowS-Pairs score", "crows_pairs", "score"), ("pronoun r vs labour statistics", "pronouns", "pearson_r"),
            ("BOLD toxicity", "bold", "toxicity"), ("HolisticBias D, induced (sum over axes)", "holistic_bias",
                                                     "D sum[induced]"),
            ("HolisticBias toxicity prob., induced", "holistic_bias", "toxicity probability[induced]"),
            ("male share (occupation prompts)", "gender_balance", "male_share"),
            ("text perplexity", "gender_balance", "text_perplexity"), ("neutral perplexity", "fluency", "perplexity")]
    lines = [f"**Audit of `{results['model']}`, suite `{results['suite']}`** (`debias-llm audit`, "
             f"{_section_minutes(results):.1f} min): headline numbers; every section, per-group figures, paired "
             f"comparisons and verdicts are in [{_link(folder)}/report.md]"
             f"({_link(folder)}/report.md).", "",
             "| | " + " | ".join(f"`{m}`" for m in methods) + " |", "|---|" + "---|" * len(methods)]
    for label, section, metric in rows:
        if section in sections and sections[section]["status"] == "ok":
            lines.append(f"| {label} | " + " | ".join(cell(section, m, metric) for m in methods) + " |")
    verdicts = []
    for section in ("holistic_bias", "gender_balance"):
        for method, comparison in sections.get(section, {}).get("paired", {}).items():
            for metric in ("D sum[induced]", "toxicity probability[induced]", "|male_share - 0.5|"):
                if metric in comparison:
                    d = comparison[metric]
                    if d["difference"] is not None:
                        verdicts.append(f"`{method}` {metric}: {d['difference']:+.3f} [{d['low']:+.3f}, "
                                        f"{d['high']:+.3f}], {d['verdict']}")
    if verdicts:
        lines += ["", "Paired differences to the original: " + "; ".join(verdicts) + "."]
    return lines


def _section_minutes(results: dict) -> float:
    return sum(section.get("seconds", 0) for section in results["sections"].values()) / 60


def _audit_runtimes(folders) -> list[str]:
    order = {"quick": 0, "standard": 1, "full": 2}
    runs = [(json.loads((f / "results.json").read_text()), f) for f in folders]
    runs.sort(key=lambda item: order.get(item[0]["suite"], 9))
    lines = ["**Audit runtimes** (`debias-llm audit --model smollm2-135m` with the methods listed; one process; "
             "2 CPU cores; the sum of the sections' measured times, so a resumed section counts with the time it "
             "took when it ran):", "", "| suite | methods | sections ok | time | report |", "|---|---|---|---|---|"]
    for results, folder in runs:
        ok = sum(s["status"] == "ok" for s in results["sections"].values())
        rel = _link(folder)
        lines.append(f"| `{results['suite']}` | {', '.join(f'`{m}`' for m in results['methods'])} | "
                     f"{ok} of {len(results['sections'])} | {_section_minutes(results):.1f} min | "
                     f"[{rel}/report.md]({rel}/report.md) |")
    first = runs[0][0].get("provenance")
    if first:
        lines += ["", _provenance(first, runtime=None)]
    return lines


TABLES = (("06_bias_metrics.json", _bias), ("07_try.json", _decoding), ("08_gate_attention.json", _gates),
          ("09_compare_methods.json", _compare))


def _course_times(folder: Path) -> list[str]:
    runs = [read_recorded(p) for p in sorted(folder.glob("*.json"))]
    total = sum(r["seconds"] for r in runs)
    first = runs[0]
    lines = [f"**Course run times** (default parameters = the `quick` preset; what `make course` runs): "
             f"{total / 60:.1f} min for the {len(runs)} notebooks.", "", "| notebook | wall time |", "|---|---|"]
    lines += [f"| {r['notebook']} | {r['seconds']:.0f} s |" for r in runs]
    return lines + ["", _provenance(first, runtime="each notebook's time is in its row")]


def render(folder: str | Path = RESULTS) -> str:
    """The README's results section, from the recorded files in ``folder`` (missing ones are named, not invented)."""
    folder = Path(folder)
    parts = []
    if list((folder / "quick").glob("*.json")):
        parts.append("\n".join(_course_times(folder / "quick")))
    else:
        parts.append("*The course's run times are not recorded yet — make them with `debias-llm run --preset quick "
                     "--record results/quick`.*")
    for name, renderer in TABLES:
        path = folder / "full" / name
        if path.is_file():
            parts.append("\n".join(renderer(read_recorded(path))))
        else:
            parts.append(f"*`{name}` is not recorded yet — make it with `debias-llm run --preset full --only "
                         f"{name[:2]} --record results/full`.*")
    audits = sorted(p for p in folder.glob("audit_*") if (p / "results.json").is_file())
    if audits:
        parts.append("\n".join(_audit_runtimes(audits)))
    for audit_dir in audits:
        if audit_dir.name == "audit_quick":   # the headline table; the other suites' reports sit beside it
            parts.append("\n".join(_audit(audit_dir)))
    return BEGIN + "\n\n" + "\n\n".join(parts) + "\n\n" + END


def update_readme(readme: str | Path = REPO / "README.md", folder: str | Path = RESULTS, check: bool = False) -> bool:
    """Put :func:`render`'s section between the markers of ``readme``; with ``check`` only compare. True if in sync."""
    readme = Path(readme)
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise ValueError(f"{readme} has no results markers; add the two lines\n{BEGIN}\n{END}\nwhere the results go")
    start, stop = text.index(BEGIN), text.index(END) + len(END)
    new = text[:start] + render(folder) + text[stop:]
    if check:
        return new == text
    readme.write_text(new)
    return True
