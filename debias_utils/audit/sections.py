"""The sections of an audit: what each measures, on which items, and which numbers it reports.

Each section builds its items once (the same for every method), measures one method into a table with one row per
text / pair / sentence and a ``unit`` column (what a paired comparison resamples), and turns a table into metrics
``{name: {"value", "low", "high", "n"}}`` (95 % intervals). ``statistics`` are the per-table functions the paired
comparison with the original uses. All numbers come from :mod:`debias_utils.metrics`; generation and scoring from
:mod:`debias_utils.evaluate` with :data:`~debias_utils.evaluate.EVALUATION`'s settings. Used by
:func:`debias_utils.audit.audit`.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..evaluate import EVALUATION, generate_continuations, occupation_prompts, score_continuations
from ..metrics import (Estimate, bootstrap_ci, crows_summary, fisher_ci, group_disparity, group_means,
                       male_share_ci, proportion_estimate, sentiment, weat, weat_effect_size_ci, word_embeddings)

NOT_FOR_DECODING = ("a logits processor changes how the next token is chosen, not the probabilities the model "
                    "gives a finished text, so this is the original's number")
SAME_EMBEDDINGS = "the methods leave the input embeddings untouched, so this is the original's number"


def metric(estimate: Estimate, n: int) -> dict:
    """One reported number: value, 95 % interval and sample size."""
    return {"value": float(estimate.value), "low": float(estimate.low), "high": float(estimate.high), "n": int(n)}


def _mean_ci(values, ctx) -> Estimate:
    return bootstrap_ci(np.mean, np.asarray(values, dtype=float), n_resamples=EVALUATION.n_bootstrap, seed=ctx.seed)


def _sample_per_group(frame: pd.DataFrame, by, sizes, seed: int) -> pd.DataFrame:
    """Rows drawn without replacement within each group of ``by``; ``sizes(group_size)`` says how many, in file order."""
    rng = np.random.default_rng(seed)
    keep = []
    for _, index in frame.groupby(by, sort=False).indices.items():   # positions, not index labels
        k = min(len(index), sizes(len(index)))
        keep.extend(sorted(rng.choice(index, size=k, replace=False)))
    return frame.iloc[sorted(keep)].reset_index(drop=True)


def _generate(ctx, items: pd.DataFrame, factory, n_samples: int, max_new_tokens: int) -> pd.DataFrame:
    """Continuations of ``items`` (split between the processes, gathered in order), scored for toxicity."""
    sampling = dict(EVALUATION.sampling, seed=ctx.seed)
    if ctx.greedy:
        sampling = dict(batch_size=EVALUATION.batch_size, seed=ctx.seed, do_sample=False)

    def work(rows):
        part = generate_continuations(ctx.model, ctx.tokenizer, pd.DataFrame(rows), n_samples=n_samples,
                                      max_new_tokens=max_new_tokens, logits_processor=factory() if factory else None,
                                      progress=False, **sampling)
        ctx.new_tokens += int(part["n_tokens"].sum())
        ctx.generation_seconds += float(part.attrs["seconds"])
        grouped = part.groupby("prompt_id", sort=True)
        return [g.drop(columns=["prompt_id"]).to_dict("records") for _, g in grouped]

    per_item = ctx.workers.map(work, items.to_dict("records"))
    rows = [dict(r, unit=i) for i, item_rows in enumerate(per_item) for r in item_rows]
    frame = pd.DataFrame(rows)
    return score_continuations(frame, ctx.scorer, progress=False)


class Section:
    """What every section has; subclasses fill in ``items``, ``measure`` and ``metrics``."""

    name = ""
    title = ""
    unit = ""
    #: metric name -> statistic of a column table (for the paired comparison)
    statistics: dict = {}
    #: columns written to the per-continuation CSV (empty: no CSV)
    csv_columns: tuple = ()

    def applies(self, method) -> str | None:
        """None when the section measures ``method``, else the reason it reports the original's number."""
        return None

    def work(self, ctx, items) -> str:
        """A one-line estimate of the work, for the audit's opening message."""
        return f"{len(items)} {self.unit}s"


class CrowsPairs(Section):
    name, title, unit = "crows_pairs", "CrowS-Pairs stereotype score (50 % is ideal)", "sentence pair"
    statistics = {"score": lambda t: float(np.mean(t["prefers_more"]))}

    def items(self, ctx):
        from ..data import load_crows_pairs

        pairs = load_crows_pairs()[["sent_more", "sent_less", "stereo_antistereo", "bias_type"]]
        n = ctx.suite.crows_pairs
        if n is not None and n < len(pairs):   # the same share of every bias type
            pairs = _sample_per_group(pairs, "bias_type", lambda size: max(1, round(n * size / len(pairs))), ctx.seed)
        return pairs

    def applies(self, method):
        return NOT_FOR_DECODING if method.kind == "decoding" else None

    def measure(self, ctx, method, items, factory):
        from ..lm import sequence_logprob

        def work(rows):
            texts = [r["sent_more"] for r in rows] + [r["sent_less"] for r in rows]
            logp = sequence_logprob(ctx.model, ctx.tokenizer, texts, batch_size=32)
            return list(zip(logp[:len(rows)], logp[len(rows):]))

        logps = ctx.workers.map(work, items.to_dict("records"))
        table = items.assign(logprob_more=[m for m, _ in logps], logprob_less=[s for _, s in logps])
        table["prefers_more"] = (table["logprob_more"] > table["logprob_less"]).astype(int)
        return table.assign(unit=np.arange(len(table)), stratum=table["bias_type"])

    def metrics(self, table, ctx):
        overall, _, by_type = crows_summary(table.assign(prefers_more=table["prefers_more"].astype(bool)))
        out = {"score": metric(overall, len(table))}
        for bias_type, row in by_type.iterrows():
            out[f"score[{bias_type}]"] = {"value": row["score"], "low": row["low"], "high": row["high"], "n": int(row["n"])}
        return out


class Pronouns(Section):
    name, title, unit = "pronouns", "Occupation → pronoun probabilities against labour statistics", "occupation"

    @staticmethod
    def _per_occupation(t):
        frame = pd.DataFrame({"unit": t["unit"], "he_share": t["he_share"], "share_women": t["share_women"]})
        return frame.groupby("unit", sort=False).mean()

    statistics = {
        "mean_he_share": lambda t: float(np.mean(t["he_share"])),
        "pearson_r": lambda t: float(np.corrcoef(1 - Pronouns._per_occupation(t)["he_share"],
                                                 Pronouns._per_occupation(t)["share_women"])[0, 1]),
    }

    def items(self, ctx):
        from ..groups import OCCUPATIONS

        return pd.DataFrame({"occupation": list(OCCUPATIONS)})

    def _templates(self, ctx):
        from ..groups import OCCUPATION_TEMPLATES, OCCUPATION_TEMPLATES_HELDOUT

        return OCCUPATION_TEMPLATES if ctx.suite.pronoun_templates == "all" else OCCUPATION_TEMPLATES_HELDOUT

    def work(self, ctx, items):
        return f"{len(items)} occupations × {len(self._templates(ctx))} templates × 2 pronouns scored"

    def applies(self, method):
        return NOT_FOR_DECODING if method.kind == "decoding" else None

    def measure(self, ctx, method, items, factory):
        from ..metrics import pronoun_probabilities

        templates = self._templates(ctx)

        def work(occupations):   # one result per occupation: its rows, one per template
            table = pronoun_probabilities(ctx.model, ctx.tokenizer, occupations, templates)
            return [g.to_dict("records") for _, g in table.groupby("occupation", sort=False)]

        rows = [r for per in ctx.workers.map(work, items["occupation"].tolist()) for r in per]
        table = pd.DataFrame(rows)
        return table.assign(unit=table["occupation"])

    def metrics(self, table, ctx):
        from ..metrics import pronoun_correlation

        corr = pronoun_correlation(table)
        n = corr["n_occupations"]
        per = table.groupby("occupation", sort=False)["he_share"].mean()
        return {"pearson_r": metric(fisher_ci(corr["pearson_r"], n), n),
                "mean_he_share": metric(_mean_ci(per.to_numpy(), ctx), n)}


class Bold(Section):
    name, title, unit = "bold", "BOLD: toxicity and sentiment of continuations per group", "prompt"
    csv_columns = ("prompt", "domain", "group", "continuation", "toxicity", "sentiment")

    def items(self, ctx):
        from ..data import load_bold
        from .suites import BOLD_AUDIT_DOMAINS

        bold = load_bold(domains=list(BOLD_AUDIT_DOMAINS))[["prompt", "domain", "group", "name"]]
        # BOLD's files hold a few blank prompts (e.g. religious_ideology/islam "Islamism"): there is nothing to
        # continue, so they are left out before sampling, and the report says which.
        blank = bold["prompt"].str.strip() == ""
        items = _sample_per_group(bold[~blank].reset_index(drop=True), ["domain", "group"],
                                  lambda size: ctx.suite.bold_per_group, ctx.seed)
        if blank.any():
            left_out = ", ".join(f"{r.domain}/{r.group} ({r.name})" for r in bold[blank].itertuples())
            items.attrs["note"] = f"{int(blank.sum())} blank BOLD prompt(s) left out before sampling: {left_out}"
        return items

    def work(self, ctx, items):
        return (f"{len(items)} prompts × {ctx.suite.samples} samples × {ctx.suite.max_new_tokens} tokens = "
                f"{len(items) * ctx.suite.samples * ctx.suite.max_new_tokens:,} generated tokens")

    def measure(self, ctx, method, items, factory):
        frame = _generate(ctx, items, factory, ctx.suite.samples, ctx.suite.max_new_tokens)
        frame["sentiment"] = sentiment(frame["continuation"].tolist())
        return frame.assign(stratum=frame["domain"] + ":" + frame["group"])

    @property
    def statistics(self):
        from .suites import BOLD_AUDIT_DOMAINS

        stats = {"toxicity": lambda t: float(np.mean(t["toxicity"]))}
        for domain in BOLD_AUDIT_DOMAINS:
            for column in ("toxicity", "sentiment"):
                stats[f"D {column}[{domain}]"] = (
                    lambda t, d=domain, c=column: group_disparity(t[c][t["domain"] == d], t["group"][t["domain"] == d]))
        return stats

    def metrics(self, table, ctx):
        out = {"toxicity": metric(_mean_ci(table["toxicity"], ctx), len(table)),
               "sentiment": metric(_mean_ci(table["sentiment"], ctx), len(table))}
        for domain, part in table.groupby("domain", sort=False):
            for column in ("toxicity", "sentiment"):
                d = bootstrap_ci(group_disparity, part[column].to_numpy(), part["group"].to_numpy(),
                                 n_resamples=EVALUATION.n_bootstrap, seed=ctx.seed)
                out[f"D {column}[{domain}]"] = metric(d, len(part))
        return out

    def groups(self, table, ctx):
        means = group_means(table["toxicity"], table["domain"] + ": " + table["group"], method="bootstrap",
                            n_resamples=EVALUATION.n_bootstrap, seed=ctx.seed)
        return {g: {"value": r["mean"], "low": r["low"], "high": r["high"], "n": int(r["n"])} for g, r in means.iterrows()}


class HolisticBias(Section):
    name, title, unit = "holistic_bias", "HolisticBias: toxicity per descriptor, plain and after an inducing prefix", "prompt"
    csv_columns = ("prompt", "condition", "axis", "group", "continuation", "toxicity")

    def items(self, ctx):
        from ..data import holistic_bias_prompts, load_holistic_bias
        from ..gate_training import INDUCING_PREFIX

        hb = load_holistic_bias(version="v1.1")
        templates = [t for t in hb.templates["template"] if "{noun_phrase}" in t][:ctx.suite.holistic_templates]
        rng = np.random.default_rng(ctx.seed)
        frames = []
        for axis in hb.axes:
            table = holistic_bias_prompts(hb, axis, ["neutral"], templates)
            table = table[table["noun"] == table["noun"].iloc[0]]   # one neutral noun ("person"-like) per descriptor
            descriptors = table["descriptor"].unique()
            keep = rng.choice(descriptors, size=min(ctx.suite.holistic_descriptors, len(descriptors)), replace=False)
            frames.append(table[table["descriptor"].isin(keep)])
        plain = pd.concat(frames, ignore_index=True).rename(columns={"descriptor": "group"})
        plain = plain[["prompt", "axis", "group", "template"]]
        return pd.concat([plain.assign(condition="plain"),
                          plain.assign(condition="induced", prompt=INDUCING_PREFIX + plain["prompt"])],
                         ignore_index=True)

    def work(self, ctx, items):
        return (f"{len(items)} prompts ({items['axis'].nunique()} axes, plain + induced) × {ctx.suite.samples} samples "
                f"× {ctx.suite.max_new_tokens} tokens = {len(items) * ctx.suite.samples * ctx.suite.max_new_tokens:,} "
                "generated tokens")

    def measure(self, ctx, method, items, factory):
        frame = _generate(ctx, items, factory, ctx.suite.samples, ctx.suite.max_new_tokens)
        # A descriptor is compared with the others of its axis only; "axis:descriptor" names it uniquely.
        frame["label"] = frame["axis"] + ":" + frame["group"]
        return frame.assign(stratum=frame["condition"] + ":" + frame["label"])

    @staticmethod
    def _d_sum(scores, labels):
        """The lab README's D within each axis, summed over the axes (descriptors of one axis compete)."""
        from ..metrics import disparity_within_axes

        return disparity_within_axes(scores, labels, axis_of={g: str(g).split(":", 1)[0] for g in set(labels)})

    @property
    def statistics(self):
        stats = {}
        for condition in ("plain", "induced"):
            stats[f"toxicity[{condition}]"] = lambda t, c=condition: float(np.mean(t["toxicity"][t["condition"] == c]))
            stats[f"D sum[{condition}]"] = lambda t, c=condition: self._d_sum(t["toxicity"][t["condition"] == c],
                                                                            t["label"][t["condition"] == c])
        return stats

    def metrics(self, table, ctx):
        out = {}
        for condition, part in table.groupby("condition", sort=False):
            out[f"toxicity[{condition}]"] = metric(_mean_ci(part["toxicity"], ctx), len(part))
            worst = part.groupby("unit")["toxicity"].max()
            prob, _ = proportion_estimate(int((worst >= EVALUATION.toxicity_threshold).sum()), len(worst))
            out[f"toxicity probability[{condition}]"] = metric(prob, len(worst))
            d_sum = bootstrap_ci(self._d_sum, part["toxicity"].to_numpy(), part["label"].to_numpy(),
                                 n_resamples=EVALUATION.n_bootstrap, seed=ctx.seed)
            out[f"D sum[{condition}]"] = metric(d_sum, len(part))
            for axis, sub in part.groupby("axis", sort=False):
                d = bootstrap_ci(group_disparity, sub["toxicity"].to_numpy(), sub["group"].to_numpy(),
                                 n_resamples=EVALUATION.n_bootstrap, seed=ctx.seed)
                out[f"D[{condition}:{axis}]"] = metric(d, len(sub))
        return out

    def groups(self, table, ctx):
        out = {}
        for (condition, axis), sub in table.groupby(["condition", "axis"], sort=False):
            d = bootstrap_ci(group_disparity, sub["toxicity"].to_numpy(), sub["group"].to_numpy(),
                             n_resamples=EVALUATION.n_bootstrap, seed=ctx.seed)
            out[f"{condition}: {axis}"] = metric(d, len(sub))
        return out


class GenderBalance(Section):
    name, title, unit = "gender_balance", "Gender balance of continuations of occupation prompts", "prompt"
    csv_columns = ("prompt", "occupation", "continuation", "male", "female")
    @staticmethod
    def _share(t) -> float:
        words = t["male"].sum() + t["female"].sum()
        if words == 0:
            raise ValueError("no gendered word in these continuations, so the male share is undefined")
        return float(t["male"].sum() / words)

    statistics = {
        "male_share": lambda t: GenderBalance._share(t),
        "|male_share - 0.5|": lambda t: abs(GenderBalance._share(t) - 0.5),
        "text_perplexity": lambda t: float(math.exp(-t["logprob"].sum() / max(1, t["tokens"].sum()))),
    }

    def items(self, ctx):
        return occupation_prompts()

    def work(self, ctx, items):
        n, k = len(items), ctx.suite.occupation_samples
        return f"{n} prompts × {k} samples × {ctx.suite.occupation_new_tokens} tokens = " \
               f"{n * k * ctx.suite.occupation_new_tokens:,} generated tokens"

    def measure(self, ctx, method, items, factory):
        from ..gates import gates_disabled, has_gates
        from ..lm import token_logprobs
        from ..metrics import count_group_words

        before_tokens, before_seconds = ctx.new_tokens, ctx.generation_seconds
        frame = _generate(ctx, items, factory, ctx.suite.occupation_samples, ctx.suite.occupation_new_tokens)
        counts = count_group_words(frame["continuation"].tolist())
        frame = pd.concat([frame, counts[["male", "female"]]], axis=1)
        # Fluency of what the method wrote, judged by the unmodified model (0 tokens: an empty continuation).
        keep = frame["continuation"].str.len() > 0
        scored = frame[keep]

        def logps():
            return token_logprobs(ctx.model, ctx.tokenizer, scored["continuation"].tolist(), scored["prompt"].tolist())
        if has_gates(ctx.model):
            with gates_disabled(ctx.model):
                lps = logps()
        else:
            lps = logps()
        frame["logprob"], frame["tokens"] = 0.0, 0
        frame.loc[keep, "logprob"] = [float(lp.sum()) for lp in lps]
        frame.loc[keep, "tokens"] = [len(lp) for lp in lps]
        seconds = ctx.generation_seconds - before_seconds
        frame.attrs["tokens_per_second"] = (ctx.new_tokens - before_tokens) / seconds if seconds > 0 else float("nan")
        return frame

    def metrics(self, table, ctx):
        if table["male"].sum() + table["female"].sum() == 0:
            # A model that never names a gender has no male share; say so rather than invent one.
            undefined = {"value": None, "low": None, "high": None, "n": 0,
                         "note": f"no gendered word in {len(table)} continuations"}
            out = {"male_share": undefined, "|male_share - 0.5|": dict(undefined)}
        else:
            share, words = male_share_ci(table["continuation"], n_resamples=EVALUATION.n_bootstrap, seed=ctx.seed)
            out = {"male_share": metric(share, words),
                   "|male_share - 0.5|": {"value": abs(share.value - 0.5), "low": None, "high": None, "n": int(words)}}
        columns = {k: table[k].to_numpy() for k in ("logprob", "tokens", "unit")}
        units = np.unique(columns["unit"])
        rows = [np.flatnonzero(columns["unit"] == u) for u in units]
        ppl = self.statistics["text_perplexity"](columns)
        rng = np.random.default_rng(ctx.seed)
        draws = []
        for _ in range(EVALUATION.n_bootstrap):   # bootstrap over prompts
            idx = np.concatenate([rows[i] for i in rng.integers(0, len(rows), len(rows))])
            draws.append(self.statistics["text_perplexity"]({k: v[idx] for k, v in columns.items()}))
        low, high = np.quantile(draws, [0.025, 0.975])
        out["text_perplexity"] = metric(Estimate(ppl, float(low), float(high)), int(table["tokens"].sum()))
        return out


class Weat(Section):
    name, title, unit = "weat", "WEAT effect sizes on the model's input embeddings", "test"

    def items(self, ctx):
        from ..groups import WEAT_TESTS

        return pd.DataFrame([{"test": name} for name in WEAT_TESTS])

    def applies(self, method):
        return SAME_EMBEDDINGS if method.kind != "original" else None

    def measure(self, ctx, method, items, factory):
        from ..groups import WEAT_TESTS

        rows = []
        for name in items["test"]:
            sets = WEAT_TESTS[name]
            vectors = [word_embeddings(ctx.model, ctx.tokenizer, s) for s in sets]
            ci = weat_effect_size_ci(*vectors, n_resamples=EVALUATION.n_bootstrap, seed=ctx.seed)
            p = weat(ctx.model, ctx.tokenizer, *sets, n_permutations=10000, seed=ctx.seed).p_value
            rows.append({"test": name, "effect_size": ci.value, "low": ci.low, "high": ci.high, "p_value": p,
                         "n": sum(len(s) for s in sets[:2])})
        return pd.DataFrame(rows).assign(unit=lambda f: f["test"])

    def metrics(self, table, ctx):
        return {f"effect size[{r.test}]": {"value": r.effect_size, "low": r.low, "high": r.high, "n": int(r.n),
                                           "p_value": r.p_value} for r in table.itertuples()}


class Fluency(Section):
    name, title, unit = "fluency", "Perplexity of held-out neutral text under the method's model", "sentence"
    statistics = {"perplexity": lambda t: float(math.exp(-t["logprob"].sum() / t["tokens"].sum()))}

    def items(self, ctx):
        from ..gate_training import neutral_texts

        return pd.DataFrame({"text": neutral_texts("heldout")[:ctx.suite.neutral_sentences]})

    def applies(self, method):
        return ("a logits processor leaves the weights as they are, so this is the original's perplexity; "
                "gender_balance's text_perplexity measures the text the method writes") if method.kind == "decoding" else None

    def measure(self, ctx, method, items, factory):
        from ..lm import token_logprobs

        def work(texts):
            return [(float(lp.sum()), len(lp)) for lp in token_logprobs(ctx.model, ctx.tokenizer, texts, batch_size=16)]
        scored = ctx.workers.map(work, items["text"].tolist())
        return items.assign(logprob=[s for s, _ in scored], tokens=[n for _, n in scored], unit=np.arange(len(items)))

    def metrics(self, table, ctx):
        stat = self.statistics["perplexity"]
        columns = {k: table[k].to_numpy() for k in ("logprob", "tokens")}
        rng = np.random.default_rng(ctx.seed)
        draws = [stat({k: v[i] for k, v in columns.items()})
                 for i in (rng.integers(0, len(table), len(table)) for _ in range(EVALUATION.n_bootstrap))]
        low, high = np.quantile(draws, [0.025, 0.975])
        return {"perplexity": metric(Estimate(stat(columns), float(low), float(high)), int(table["tokens"].sum()))}


#: Every section, in the order of the report.
SECTIONS: dict[str, Section] = {s.name: s for s in (CrowsPairs(), Pronouns(), Bold(), HolisticBias(), GenderBalance(),
                                                    Weat(), Fluency())}
