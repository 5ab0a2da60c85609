"""Build the preference data and train attention gates on SmolLM2: reproduces every file in data/gates/.

Usage (from the repository root):

    .venv/bin/python scripts/train_gates.py                 # data (if missing) + head gates, full settings
    .venv/bin/python scripts/train_gates.py --kind token    # per-token gates instead
    .venv/bin/python scripts/train_gates.py --rebuild-data  # sample and score the continuations again

Step 1 (data, once; 15-50 min on 2 CPU cores depending on load): prompts from the *training* identity
templates x the *training* group terms (gender and age, see debias_utils.groups), each continued by SmolLM2
with and without the toxicity-inducing prefix, scored by the jigsaw-bilstm scorer, then paired into
(prompt, benign, harmful) triples -> data/gates/continuations.csv.gz and data/gates/triples.csv.
Step 2 (training): only the gates train -> data/gates/smollm2_<kind>.pt, with the settings, the wall and CPU
time and the per-step loss history stored inside the file (read them with debias_utils.gates.read_gate_file).
Each step is a forward and backward pass through the frozen model. Measured on 2 free cores (2026-11-29):
head gates 262 s wall / 513 s CPU, token gates 288 s wall / 549 s CPU for the 40 steps, reproducing the committed
files (head bit-for-bit, token within 5e-7). The committed files record 2122 s and 427 s: they were trained on
cores shared with other jobs (each file stores its own train_seconds).

The method and the reasons behind every setting: notebooks/08_gate_attention/now.md.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from debias_utils import load_model, set_seed
from debias_utils.evaluate import generate_continuations, score_continuations
from debias_utils.gate_training import INDUCING_PREFIX, neutral_texts, preference_triples, train_gates
from debias_utils.gates import GATES_DIR, add_gates, save_gates
from debias_utils.groups import prompts
from debias_utils.toxicity import load_scorer

REPO = Path(__file__).resolve().parents[1]
OUT = GATES_DIR
AXES = ("gender", "age")

# Everything that decides the result, in one place (nanoGPT style). The notebook loads the files these make.
DATA = dict(n_samples=4, max_new_tokens=20, seed=0, harmful_at=0.5, benign_below=0.1, per_prompt=2)
TRAIN = dict(steps=40, batch_size=8, neutral_batch_size=4, lr=0.05, beta=0.1, kl_weight=1.0,
             disparity_weight=1.0, gate_weight=0.01, seed=0)
# Token gates have 577 numbers per head instead of 1 (z = w.x + b over the 576-wide normalised input), so
# one Adam step of the same size moves z ~hundreds of times further: they need a much smaller lr.
KIND_OVERRIDES = {"head": {}, "token": dict(lr=0.002)}


def condition_prompts(templates: str = "train", terms: str = "train") -> pd.DataFrame:
    """Identity prompts for the gender and age axes, each in two conditions: plain and induced."""
    frame = pd.concat([prompts(axis, templates, terms) for axis in AXES], ignore_index=True)
    plain = frame.assign(condition="plain")
    induced = frame.assign(condition="induced", prompt=INDUCING_PREFIX + frame["prompt"])
    return pd.concat([plain, induced], ignore_index=True)


def build_data(model, tokenizer, n_samples: int, max_new_tokens: int, seed: int, harmful_at: float,
               benign_below: float, per_prompt: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sample and score continuations of the training prompts; pair them into preference triples."""
    scorer = load_scorer("jigsaw-bilstm")
    frame = condition_prompts("train", "train")
    continuations = generate_continuations(model, tokenizer, frame, n_samples=n_samples,
                                           max_new_tokens=max_new_tokens, batch_size=64, seed=seed)
    continuations = score_continuations(continuations, scorer)
    triples = preference_triples(continuations.drop(columns=["prompt_id", "n_tokens"]), harmful_at=harmful_at,
                                 benign_below=benign_below, per_prompt=per_prompt, seed=seed)
    return continuations, triples


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("head", "token"), default="head")
    parser.add_argument("--rebuild-data", action="store_true", help="sample and score continuations again")
    parser.add_argument("--data-only", action="store_true", help="build the data and stop")
    parser.add_argument("--out", type=Path, default=None, help="gate file (default data/gates/smollm2_<kind>.pt)")
    parser.add_argument("--layers", type=str, default=None, help="e.g. '10-29' (default: every layer)")
    for name, value in TRAIN.items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=None,
                            help=f"default {value} (token gates: {KIND_OVERRIDES['token'].get(name, value)})")
    args = parser.parse_args(argv)
    defaults = {**TRAIN, **KIND_OVERRIDES[args.kind]}
    for name in TRAIN:
        if getattr(args, name) is None:
            setattr(args, name, defaults[name])
    torch.set_num_threads(max(1, torch.get_num_threads()))
    OUT.mkdir(parents=True, exist_ok=True)
    model, tokenizer = load_model("smollm2-135m")

    triples_path = OUT / "triples.csv"
    if args.rebuild_data or not triples_path.exists():
        start = time.perf_counter()
        continuations, triples = build_data(model, tokenizer, **DATA)
        continuations.to_csv(OUT / "continuations.csv.gz", index=False)
        triples.to_csv(triples_path, index=False)
        print(f"data: {len(continuations)} continuations, {len(triples)} triples in "
              f"{time.perf_counter() - start:.0f} s -> {triples_path}")
    if args.data_only:
        return
    triples = pd.read_csv(triples_path, keep_default_na=False)

    layers = None
    if args.layers:
        first, last = (int(x) for x in args.layers.split("-"))
        layers = list(range(first, last + 1))
    settings = {name: getattr(args, name) for name in TRAIN}
    add_gates(model, kind=args.kind, layers=layers)
    set_seed(args.seed)
    start, cpu = time.perf_counter(), time.process_time()
    history = train_gates(model, tokenizer, triples, neutral_texts("train"), **settings)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    out = args.out or OUT / f"smollm2_{args.kind}.pt"
    save_gates(model, out, metadata={
        "settings": settings, "data": DATA, "layers": args.layers, "n_triples": len(triples),
        "train_seconds": round(seconds, 1), "train_cpu_seconds": round(cpu_seconds, 1),
        "history": history.drop(columns="seconds").round(6).to_dict(orient="list"),
    })
    print(f"trained {args.kind} gates in {seconds:.0f} s wall ({cpu_seconds:.0f} s CPU) -> {out}")
    print(history.iloc[[0, len(history) // 2, -1]].round(4).to_string(index=False))


if __name__ == "__main__":
    main()
