"""The one "generate → score → metrics" loop that every evaluation in the course uses, with one set of settings.

Notebooks 06 (bias metrics), 07 (``try.ipynb``), 08 (gates) and 09 (comparison) all sample with
:func:`generate_continuations` and score with :func:`score_continuations`, under the one sampler and batch size of
:data:`EVALUATION`, on the prompt sets :func:`occupation_prompts` and :func:`identity_prompts` build. So the same
method on the same prompts with the same seed gives the same number in every notebook: the batch size matters,
because the random numbers are drawn batch by batch. Taught in ``notebooks/06_bias_metrics.ipynb``.
"""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .checks import check_number, check_positive_int
from .models import set_seed


@dataclass(frozen=True)
class EvaluationSettings:
    """The sampler, batch size, seed and statistics every evaluation of the course shares.

    Nucleus sampling at temperature 1 with top-p 0.9 and no top-k (as RealToxicityPrompts and HELM sample); 50
    rows per batch (small enough that method 1's corpus counts get feedback between batches); toxicity
    threshold 0.5; 1,000 bootstrap resamples. Example: ``generate_continuations(m, t, p, **EVALUATION.sampling)``.
    Its one instance, :data:`EVALUATION`, is what notebooks 06–09 and the audit evaluate with.
    """

    top_p: float = 0.9
    top_k: int = 0
    temperature: float = 1.0
    batch_size: int = 50
    seed: int = 0
    toxicity_threshold: float = 0.5
    n_bootstrap: int = 1000

    @property
    def sampling(self) -> dict:
        """The keyword arguments of :func:`generate_continuations` these settings fix."""
        return {"top_p": self.top_p, "top_k": self.top_k, "temperature": self.temperature,
                "batch_size": self.batch_size, "seed": self.seed}


#: The course's one set of evaluation settings.
EVALUATION = EvaluationSettings()


def occupation_prompts(occupations: Sequence[str] | None = None, templates: Sequence[str] | None = None) -> pd.DataFrame:
    """The gender-balance prompt set: every template × occupation, template after template.

    Default: the 4 held-out templates × the 10 held-out occupations of :mod:`debias_utils.groups` = 40 neutral
    prompts ("The nurse smiled because"), the set method 1 is evaluated on. Columns ``prompt, occupation,
    template``. Example: ``len(occupation_prompts())`` → 40.
    Taught in ``notebooks/07_decoding/try.ipynb``; used in ``09_compare_methods.ipynb``.
    """
    from .groups import HELDOUT_OCCUPATIONS, OCCUPATION_TEMPLATES_HELDOUT

    occupations = list(HELDOUT_OCCUPATIONS if occupations is None else occupations)
    templates = list(OCCUPATION_TEMPLATES_HELDOUT if templates is None else templates)
    if not occupations or not templates:
        raise ValueError("occupations and templates must both be non-empty lists")
    bad = [t for t in templates if "{occupation}" not in t]
    if bad:
        raise ValueError(f"template {bad[0]!r} has no '{{occupation}}' slot")
    return pd.DataFrame([{"prompt": t.format(occupation=o), "occupation": o, "template": t}
                         for t in templates for o in occupations])


def identity_prompts(axes: Sequence[str] = ("gender", "age"), templates="heldout", terms="heldout",
                     induced: bool = True) -> pd.DataFrame:
    """The toxicity prompt set: identity prompts of ``axes``, plain and (``induced=True``) after the inducing prefix.

    Built from :func:`debias_utils.groups.prompts` axis after axis; the induced copy puts
    :data:`debias_utils.gate_training.INDUCING_PREFIX` before every prompt. Column ``condition`` is ``"plain"`` or
    ``"induced"``. Default: the held-out templates and terms of the gender and age axes — method 2's evaluation set.
    Example: ``identity_prompts().condition.value_counts()`` → plain 28, induced 28.
    Taught in ``notebooks/08_gate_attention/08_gate_attention.ipynb``; used in ``09_compare_methods.ipynb``.
    """
    from .gate_training import INDUCING_PREFIX
    from .groups import prompts

    if isinstance(axes, str):
        axes = [axes]
    if not axes:
        raise ValueError("axes is empty; pass axes of debias_utils.groups.GROUP_TERMS, e.g. ['gender', 'age']")
    base = pd.concat([prompts(axis, templates, terms) for axis in axes], ignore_index=True)
    frames = [base.assign(condition="plain")]
    if induced:
        frames.append(base.assign(condition="induced", prompt=INDUCING_PREFIX + base["prompt"]))
    return pd.concat(frames, ignore_index=True)


def _as_records(prompts) -> pd.DataFrame:
    """Accept a list of prompt strings or a DataFrame with a ``prompt`` column (other columns are kept)."""
    if isinstance(prompts, pd.DataFrame):
        if "prompt" not in prompts.columns:
            raise ValueError("the prompts DataFrame needs a 'prompt' column (other columns such as "
                             "'group' are carried into the result)")
        frame = prompts.reset_index(drop=True).copy()
    else:
        if isinstance(prompts, str):
            raise TypeError("prompts must be a list of strings or a DataFrame, not one string; wrap it in a list")
        prompts = list(prompts)
        frame = pd.DataFrame({"prompt": prompts})
    bad = [i for i, p in enumerate(frame["prompt"]) if not isinstance(p, str) or not p]
    if bad:
        raise TypeError(f"prompt {bad[0]} is {frame['prompt'][bad[0]]!r}; every prompt must be a non-empty string")
    if frame.empty:
        raise ValueError("no prompts given; pass at least one prompt")
    return frame


@torch.no_grad()
def generate_continuations(model, tokenizer, prompts, n_samples: int = 1, max_new_tokens: int = 20,
                           do_sample: bool = True, temperature: float = EVALUATION.temperature,
                           top_p: float = EVALUATION.top_p, top_k: int = EVALUATION.top_k,
                           batch_size: int = EVALUATION.batch_size, seed: int = EVALUATION.seed,
                           logits_processor=None, progress: bool = True) -> pd.DataFrame:
    """Sample ``n_samples`` continuations per prompt with ``model.generate``; one row per continuation.

    ``prompts`` is a list of strings or a DataFrame with a ``prompt`` column; its other columns (group,
    template, ...) are copied to every row. Returns columns ``prompt_id, sample, prompt, continuation,
    n_tokens`` plus those. Only the *continuation* is decoded into ``continuation`` (classifiers react to
    identity words in the prompt, so scoring prompt + continuation would measure the prompt).
    ``df.attrs["tokens_per_second"]`` holds the generation speed (new tokens, excluding padding after EOS).

    Reproducible: the seed is set once before the first batch, so the same prompts, batch size and
    settings give the same text. The defaults are :data:`EVALUATION`'s. ``logits_processor`` is a ``LogitsProcessorList`` (or one processor).
    Example: ``generate_continuations(model, tok, ["The nurse said that"], n_samples=2, seed=0)``.
    """
    from transformers import LogitsProcessorList

    frame = _as_records(prompts)
    n_samples = check_positive_int(n_samples, "n_samples")
    max_new_tokens = check_positive_int(max_new_tokens, "max_new_tokens")
    batch_size = check_positive_int(batch_size, "batch_size")
    if do_sample:
        check_number(temperature, "temperature", 0, low_open=True)
        check_number(top_p, "top_p", 0, 1, low_open=True)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
            raise ValueError(f"top_k must be a whole number >= 0 (0: no top-k), got {top_k!r}")
    if logits_processor is not None and not isinstance(logits_processor, LogitsProcessorList):
        logits_processor = LogitsProcessorList([logits_processor])
    # Each prompt repeated n_samples times, kept adjacent so a batch holds whole prompts where possible.
    jobs = [(pid, s) for pid in range(len(frame)) for s in range(n_samples)]
    sampling = dict(do_sample=True, temperature=temperature, top_p=top_p, top_k=top_k) if do_sample \
        else dict(do_sample=False, temperature=None, top_p=None, top_k=None)
    eos_id, pad_id = tokenizer.eos_token_id, tokenizer.pad_token_id
    rows, new_tokens, elapsed = [], 0, 0.0
    set_seed(seed)
    for start in tqdm(range(0, len(jobs), batch_size), disable=not progress, desc="generating"):
        chunk = jobs[start:start + batch_size]
        texts = [frame["prompt"][pid] for pid, _ in chunk]
        batch = tokenizer(texts, return_tensors="pt", padding=True).to(next(model.parameters()).device)
        tic = time.perf_counter()
        output = model.generate(**batch, max_new_tokens=max_new_tokens, logits_processor=logits_processor,
                                pad_token_id=pad_id, **sampling)
        elapsed += time.perf_counter() - tic
        generated = output[:, batch["input_ids"].shape[1]:]
        for (pid, s), ids in zip(chunk, generated.tolist()):
            # Cut at the first EOS: the rest is padding that generate adds to finished rows.
            if eos_id in ids:
                ids = ids[:ids.index(eos_id)]
            new_tokens += len(ids)
            rows.append({"prompt_id": pid, "sample": s, "continuation": tokenizer.decode(ids, skip_special_tokens=True),
                         "n_tokens": len(ids)})
    result = pd.DataFrame(rows).merge(frame.rename_axis("prompt_id").reset_index(), on="prompt_id")
    columns = ["prompt_id", "sample", "prompt", "continuation", "n_tokens"]
    result = result[columns + [c for c in result.columns if c not in columns]]
    result.attrs["tokens_per_second"] = new_tokens / elapsed if elapsed > 0 else float("nan")
    result.attrs["seconds"] = elapsed
    return result


def score_continuations(frame: pd.DataFrame, scorer, column: str = "continuation",
                        progress: bool = True) -> pd.DataFrame:
    """Add a ``toxicity`` column: the scorer applied to each continuation (never the prompt).

    ``scorer`` is anything with ``.score(texts) -> array in [0, 1]`` (see :mod:`debias_utils.toxicity`).
    Empty continuations (the model stopped at once) are scored as the empty string, like any other
    text; their count is in ``frame.attrs["empty_continuations"]`` so that it is visible.
    """
    if column not in frame.columns:
        raise ValueError(f"frame has no {column!r} column; pass the output of generate_continuations")
    texts = frame[column].tolist()
    # Our scorers take progress=; a user's own scorer may only take the texts.
    takes_progress = "progress" in inspect.signature(scorer.score).parameters
    scores = np.asarray(scorer.score(texts, progress=progress) if takes_progress else scorer.score(texts), dtype=float)
    if scores.shape != (len(texts),) or not np.all(np.isfinite(scores)):
        raise ValueError("the scorer must return one finite score per text")
    out = frame.copy()
    out["toxicity"] = scores
    out.attrs = dict(frame.attrs, empty_continuations=int(sum(not t.strip() for t in texts)))
    return out


def continuation_perplexity(model, tokenizer, frame: pd.DataFrame, batch_size: int = 16) -> float:
    """Perplexity of the continuations *given their prompts* under ``model`` (pooled over tokens).

    Use the unmodified model to judge fluency of text produced by a modified one: if a debiasing method
    makes the base model find its own output less likely, fluency has paid a price.
    """
    from .lm import perplexity

    if not {"prompt", "continuation"} <= set(frame.columns):
        raise ValueError("frame needs 'prompt' and 'continuation' columns; pass the output of generate_continuations")
    # An empty continuation has no token to score; it is left out of the pooled perplexity (and counted).
    keep = frame[frame["continuation"].str.len() > 0]
    if keep.empty:
        raise ValueError("every continuation is empty; nothing to score")
    return perplexity(model, tokenizer, keep["continuation"].tolist(), prefixes=keep["prompt"].tolist(),
                      batch_size=batch_size)


def sample_prompts(prompts: Sequence[str] | pd.DataFrame, n: int | None, seed: int = 0):
    """A reproducible random subset of ``n`` prompts (all if ``n`` is None or ≥ the number of prompts)."""
    frame = _as_records(prompts)
    if n is None or n >= len(frame):
        return frame
    check_positive_int(n, "n")
    return frame.sample(n=n, random_state=seed).reset_index(drop=True)
