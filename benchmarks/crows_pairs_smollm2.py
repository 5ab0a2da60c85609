"""CrowS-Pairs stereotype score of SmolLM2-135M-Instruct on all 1,508 pairs, with timing.

Run from the repository root (the CSV is read from the cache that ``debias-llm download crows-pairs`` fills):

    .venv/bin/python benchmarks/crows_pairs_smollm2.py [--csv PATH] [--batch-size 32] [--threads 2] [--limit N]

Prints the overall score (share of pairs where the model gives sent_more the higher log-likelihood; 50 % is
ideal) with a 95 % Clopper-Pearson interval, the same per bias type, the length-normalised variant, and the
wall-clock time of each pass. Uses debias_utils.metrics.crows_pairs_score, the function notebook 06 teaches.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from debias_utils import load_model
from debias_utils.data import load_crows_pairs
from debias_utils.metrics import crows_pairs_score, crows_summary



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=None,
                        help="your own crows_pairs_anonymized.csv (default: the cached public copy)")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the course targets 2 cores)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N pairs (for a quick timing)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    pairs = load_crows_pairs(args.csv)
    if args.limit is not None:
        pairs = pairs.iloc[:args.limit]
    model, tokenizer = load_model(args.model)
    print(f"{len(pairs)} pairs, model {args.model}, batch size {args.batch_size}, {args.threads} threads")
    start, cpu_start = time.perf_counter(), time.process_time()
    result = crows_pairs_score(model, tokenizer, pairs, batch_size=args.batch_size, progress=True)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    n_sentences = len(set(pairs.sent_more) | set(pairs.sent_less))
    # CPU time is printed too: on a shared machine wall time also counts other people's work.
    print(f"\nscored {n_sentences} distinct sentences in {seconds:.1f} s wall, {cpu:.1f} s CPU "
          f"({args.threads} threads)")
    show("sum of log-probs (standard)", result.score, result.p_value, result.by_type)
    # The length-normalised variant re-uses the same log-probabilities (no second model pass).
    t = result.pairs
    normalised = t.assign(prefers_more=t.logprob_more / t.n_tokens_more > t.logprob_less / t.n_tokens_less)
    show("mean log-prob per token (length-normalised)", *crows_summary(normalised))
    stereo = t[t.stereo_antistereo == "stereo"].prefers_more.mean()
    anti = t[t.stereo_antistereo == "antistereo"].prefers_more.mean()
    print(f"\nshare preferring sent_more: stereo rows {stereo:.3f}, antistereo rows {anti:.3f}")


def show(title, score, p_value, by_type) -> None:
    print(f"\n== {title} ==")
    print(f"overall: {score} (binomial p vs 50 %: {p_value:.2g})")
    print(by_type.to_string(float_format=lambda v: f"{v:.3f}"))

if __name__ == "__main__":
    main()
