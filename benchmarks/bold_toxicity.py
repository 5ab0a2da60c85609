"""Toxicity of SmolLM2-135M-Instruct's continuations of BOLD gender prompts, per group, with the disparity D.

Run from the repository root (BOLD is read from the cache that ``debias-llm download bold`` fills):

    .venv/bin/python benchmarks/bold_toxicity.py [--n-per-group 50] [--samples 1] [--max-new-tokens 20]

Draws ``--n-per-group`` prompts (seeded) from each BOLD gender group (American_actors, American_actresses),
generates continuations with the course's shared loop (``debias_utils.evaluate``), scores the continuation
only with the Jigsaw BiLSTM scorer, and prints per-group mean toxicity with 95 % t intervals, the group
disparity D (both references) with a bootstrap interval, expected maximum toxicity / toxicity probability
(with ``--samples`` > 1), VADER sentiment per group and the wall-clock time of each step.
"""
from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

import pandas as pd
import torch

from debias_utils import load_model
from debias_utils.data import load_bold
from debias_utils.evaluate import generate_continuations, score_continuations
from debias_utils.metrics import (bootstrap_ci, expected_maximum_toxicity, group_disparity, group_means,
                                  max_per_prompt, sentiment, toxic_fraction, toxicity_probability)
from debias_utils.toxicity import load_scorer



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bold", type=Path, default=None,
                        help="your own copy of BOLD's prompts/ folder (default: the cached public copy)")
    parser.add_argument("--n-per-group", type=int, default=50)
    parser.add_argument("--samples", type=int, default=1, help="continuations per prompt (sampled if > 1)")
    parser.add_argument("--greedy", action="store_true", help="greedy decoding (only with --samples 1)")
    parser.add_argument("--max-new-tokens", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=25)
    parser.add_argument("--scorer", default="jigsaw-bilstm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.greedy and args.samples > 1:
        parser.error("--greedy gives the same continuation every time; use --samples 1")
    torch.set_num_threads(args.threads)

    bold = load_bold(args.bold, ["gender"])
    smallest = int(bold["group"].value_counts().min())
    if not 1 <= args.n_per_group <= smallest:
        parser.error(f"--n-per-group must be between 1 and {smallest} (the smaller BOLD gender group)")
    prompts = bold.groupby("group").sample(n=args.n_per_group, random_state=args.seed).reset_index(drop=True)
    model, tokenizer = load_model("smollm2-135m")
    decoding = "greedy" if args.greedy else "sampling (temperature 1, top-p 0.9)"
    print(f"{len(prompts)} BOLD gender prompts ({args.n_per_group} per group), {args.samples} continuation(s) each, "
          f"{args.max_new_tokens} new tokens, {decoding}, seed {args.seed}")

    start = time.perf_counter()
    generated = generate_continuations(model, tokenizer, prompts, n_samples=args.samples,
                                       max_new_tokens=args.max_new_tokens, do_sample=not args.greedy,
                                       batch_size=args.batch_size, seed=args.seed, progress=False)
    t_generate = time.perf_counter() - start
    start = time.perf_counter()
    scored = score_continuations(generated, load_scorer(args.scorer), progress=False)
    t_score = time.perf_counter() - start
    print(f"generation {t_generate:.1f} s ({generated.attrs['tokens_per_second']:.0f} new tokens/s), "
          f"scoring with {args.scorer} {t_score:.1f} s; empty continuations: {scored.attrs['empty_continuations']}")

    tox, groups = scored["toxicity"].to_numpy(), scored["group"].tolist()
    print("\nmean toxicity of the continuations per group (95 % t interval):")
    print(group_means(tox, groups).to_string(float_format=lambda v: f"{v:.4f}"))
    for reference in ("mean_of_group_means", "sample_mean"):
        est = bootstrap_ci(partial(group_disparity, reference=reference), tox, groups, seed=args.seed)
        print(f"D ({reference}) = {est.value:.4f}, 95 % bootstrap interval [{est.low:.4f}, {est.high:.4f}]")
    print(f"toxic fraction (>= 0.5): {toxic_fraction(tox):.4f}")
    if args.samples > 1:
        for name, part in scored.groupby("group"):
            print(f"{name}: expected maximum toxicity {expected_maximum_toxicity(part.toxicity, part.prompt_id):.4f}, "
                  f"toxicity probability {toxicity_probability(part.toxicity, part.prompt_id):.4f}")
        maxima = max_per_prompt(tox, scored["prompt_id"].tolist())
        first_group = scored.groupby("prompt_id")["group"].first().loc[maxima.index]
        print("group disparity of per-prompt maxima:", f"{group_disparity(maxima.to_numpy(), first_group.tolist()):.4f}")
    sent = sentiment(scored["continuation"].tolist())
    print("\nVADER compound sentiment per group (95 % t interval):")
    print(group_means(sent, groups).to_string(float_format=lambda v: f"{v:.4f}"))
    most = scored.sort_values("toxicity", ascending=False).head(3)
    print("\nmost toxic continuations (for inspection):")
    with pd.option_context("display.max_colwidth", 90):
        print(most[["group", "toxicity", "prompt", "continuation"]].to_string(index=False))


if __name__ == "__main__":
    main()
