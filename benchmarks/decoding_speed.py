"""Speed of model.generate with and without the decoding processors, in one run (same prompts, seeds, batch).

Run from the repository root:

    .venv/bin/python benchmarks/decoding_speed.py [--batch-size 16] [--new-tokens 30] [--repeats 5] [--threads 2]

For each repeat it runs plain ``generate`` and ``generate`` + each processor back to back (interleaved, so
that load from other processes hits every variant alike), with the same prompts (neutral occupation
templates), the same seed and sampling settings as ``debias_utils.evaluate.generate_continuations``.
Speed is ``batch × decoding steps / seconds`` (every row is computed at every step, finished or not),
so variants that stop at different steps are compared fairly. It prints the median tokens/s of each
variant, the slowdown ratio (median over repeats of time_variant / time_plain for the same repeat), and the
time spent inside the processor itself (``processor share``), which does not depend on machine load.
Goal for GroupBalanceProcessor: slowdown ≤ 1.10×. Self-Debias needs a second forward pass, so ~2× is expected.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from transformers import LogitsProcessorList

from debias_utils import load_model, set_seed
from debias_utils.decoding import GroupBalanceProcessor, SelfDebiasProcessor
from debias_utils.groups import HELDOUT_OCCUPATIONS, OCCUPATION_TEMPLATES_HELDOUT


class Timed:
    """Wraps a processor and adds up the seconds spent inside it."""

    def __init__(self, processor):
        self.processor, self.seconds = processor, 0.0

    def __call__(self, input_ids, scores):
        tic = time.perf_counter()
        out = self.processor(input_ids, scores)
        self.seconds += time.perf_counter() - tic
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the course targets 2 cores)")
    parser.add_argument("--rules", default="kl,quota", help="GroupBalanceProcessor rules to time, comma-separated")
    parser.add_argument("--self-debias", action="store_true", help="also time SelfDebiasProcessor (slow)")
    parser.add_argument("--json", help="write the numbers to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model, tok = load_model(args.model)
    prompts = [t.format(occupation=o) for t in OCCUPATION_TEMPLATES_HELDOUT for o in HELDOUT_OCCUPATIONS]
    prompts = (prompts * (args.batch_size // len(prompts) + 1))[:args.batch_size]
    batch = tok(prompts, return_tensors="pt", padding=True)
    sampling = dict(do_sample=True, temperature=1.0, top_p=0.9, top_k=0, max_new_tokens=args.new_tokens,
                    pad_token_id=tok.pad_token_id)

    variants = {"plain": None}
    for rule in filter(None, args.rules.split(",")):
        extra = {"boost": "female"} if rule == "static" else {}
        variants[rule] = lambda rule=rule, extra=extra: GroupBalanceProcessor(tok, rule=rule, **extra)
    if args.self_debias:
        variants["self_debias"] = lambda: SelfDebiasProcessor(model, tok)

    def once(make):
        timed = Timed(make()) if make is not None else None
        set_seed(0)
        tic = time.perf_counter()
        with torch.no_grad():
            out = model.generate(**batch, logits_processor=LogitsProcessorList([timed] if timed else []),
                                 **sampling)
        seconds = time.perf_counter() - tic
        steps = out.shape[1] - batch["input_ids"].shape[1]
        return seconds, out.shape[0] * steps, (timed.seconds if timed else 0.0), timed

    once(None)   # warm-up
    runs = {name: [] for name in variants}
    for r in range(args.repeats):
        for name, make in variants.items():
            runs[name].append(once(make))
        print(f"repeat {r + 1}/{args.repeats}: " + ", ".join(
            f"{n} {runs[n][-1][1] / runs[n][-1][0]:.0f} tok/s" for n in variants), flush=True)

    results = {"batch_size": args.batch_size, "new_tokens": args.new_tokens, "repeats": args.repeats,
               "threads": args.threads, "variants": {}}
    plain = runs["plain"]
    for name, rs in runs.items():
        ratios = [r[0] / p[0] * (p[1] / r[1]) for r, p in zip(rs, plain)]   # time per token vs plain
        entry = {"tokens_per_second": statistics.median(r[1] / r[0] for r in rs),
                 "slowdown": statistics.median(ratios),
                 "processor_share": statistics.median(r[2] / r[0] for r in rs)}
        if rs[-1][3] is not None and hasattr(rs[-1][3].processor, "stats"):
            stats = rs[-1][3].processor.stats()
            entry.update({k: stats[k] for k in ("intervention_rate", "mean_kl") if k in stats})
        results["variants"][name] = entry
    print(f"\nbatch {args.batch_size}, {args.new_tokens} new tokens, {args.repeats} repeats, {args.threads} threads")
    print(f"{'variant':<12} {'tokens/s':>9} {'slowdown':>9} {'in processor':>13}")
    for name, e in results["variants"].items():
        print(f"{name:<12} {e['tokens_per_second']:9.1f} {e['slowdown']:8.3f}x {100 * e['processor_share']:12.1f}%")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
