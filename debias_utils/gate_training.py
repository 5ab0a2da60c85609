"""Training the attention gates: the preference data, differentiable log-probabilities, the loss and the loop.

Taught in ``notebooks/08_gate_attention/08_gate_attention.ipynb`` (the loss and every setting are explained in
``notebooks/08_gate_attention/now.md``; ``scripts/train_gates.py`` makes the committed files in ``data/gates/``).
The gates themselves (add, disable, fold, save / load) are in :mod:`debias_utils.gates`; this module imports it.

* data — :data:`INDUCING_PREFIX` (the "induced" condition), :func:`neutral_texts` (ordinary sentences for the
  KL term and for perplexity), :func:`preference_triples` (harmful / benign continuation pairs);
* :func:`train_gates` — only the gates train, on a DPO preference loss + KL on neutral text + a group
  disparity term + a pull of every gate towards 1;
* :func:`kl_to_original` — how far the gates moved ordinary text.

Example::

    add_gates(model, kind="head")
    history = train_gates(model, tokenizer, triples, neutral_texts("train"), steps=60)
    kl_to_original(model, tokenizer, neutral_texts("heldout"))
"""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .checks import check_positive_int, check_texts
from .gates import _chunks, _gates, gates_disabled, only_gates_train
from .lm import document_start_id, pad_batch, pad_id_of

#: Put before a prompt, this hostile opening makes SmolLM2's continuations toxic far more often (the
#: "induced" condition); found by trying several prefixes in ``notebooks/08_gate_attention/now.md``.
INDUCING_PREFIX = "You stupid fucking idiot, shut up. "
CORPUS_DIR = Path(__file__).resolve().parents[1] / "data" / "corpus"
LOSS_TERMS = ("preference", "kl", "disparity", "gate")


# --------------------------------------------------------------------------------------------------
# Data: neutral text, preference triples
# --------------------------------------------------------------------------------------------------
def neutral_texts(split: str = "train", folder: str | Path | None = None, heldout_every: int = 4) -> list[str]:
    """Neutral sentences from the course corpus (``data/corpus/*.txt``) for the KL term and for perplexity.

    Every ``heldout_every``-th paragraph is held out (``split="heldout"``), the rest is ``split="train"``;
    paragraphs are cut into sentences. Titles (short lines) are skipped.
    Example: ``len(neutral_texts("heldout"))``. Taught in ``notebooks/08_gate_attention/08_gate_attention.ipynb``.
    """
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    folder = Path(folder) if folder is not None else CORPUS_DIR
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise FileNotFoundError(f"no .txt files in {folder}; the neutral corpus lives in data/corpus/ of the repo")
    paragraphs = [line.strip() for f in files for line in f.read_text(encoding="utf-8").splitlines()
                  if len(line.strip()) > 60]
    keep = [p for i, p in enumerate(paragraphs) if (i % heldout_every == heldout_every - 1) == (split == "heldout")]
    return [s for p in keep for s in re.split(r"(?<=[.!?])\s+(?=[A-Z\"])", p) if len(s) > 20]


def preference_triples(continuations: pd.DataFrame, harmful_at: float = 0.5, benign_below: float = 0.1,
                       per_prompt: int = 1, text_column: str = "continuation",
                       score_column: str = "toxicity", seed: int = 0) -> pd.DataFrame:
    """Pair a harmful and a benign continuation of the same prompt: the training data of the gates.

    ``continuations`` has one row per sampled continuation with columns ``prompt``, ``group`` (and any
    others, e.g. ``template``), the text and its toxicity score. For every prompt with at least one
    continuation scoring ``>= harmful_at`` and one scoring ``< benign_below``, up to ``per_prompt`` pairs
    are made: the most toxic continuations first, each with a benign one drawn at random. Returns columns
    ``prompt, benign, harmful, harmful_score, benign_score`` plus the other per-prompt columns of the input.
    Example: ``preference_triples(df).head()``. ``scripts/train_gates.py`` calls it to make
    ``data/gates/triples.csv``, the file notebook 08 reads (its text explains the pairing).
    """
    needed = {"prompt", "group", text_column, score_column}
    missing = needed - set(continuations.columns)
    if missing:
        raise ValueError(f"continuations needs columns {sorted(needed)}; missing {sorted(missing)}")
    if not 0 <= benign_below <= harmful_at <= 1:
        raise ValueError("need 0 <= benign_below <= harmful_at <= 1")
    rng = np.random.default_rng(seed)
    extra = [c for c in continuations.columns if c not in (text_column, score_column, "sample")]
    rows = []
    for prompt, part in continuations.groupby("prompt", sort=False):
        harmful = part[part[score_column] >= harmful_at].sort_values(score_column, ascending=False)
        benign = part[part[score_column] < benign_below]
        if benign.empty:
            continue
        for k in range(min(per_prompt, len(harmful))):
            chosen = benign.iloc[int(rng.integers(len(benign)))]
            row = {c: part.iloc[0][c] for c in extra}
            row.update(benign=chosen[text_column], harmful=harmful.iloc[k][text_column],
                       benign_score=float(chosen[score_column]), harmful_score=float(harmful.iloc[k][score_column]))
            rows.append(row)
    columns = extra + ["benign", "harmful", "benign_score", "harmful_score"]
    return pd.DataFrame(rows, columns=columns)


def _check_triples(triples) -> pd.DataFrame:
    if not isinstance(triples, pd.DataFrame):
        triples = pd.DataFrame(list(triples))
    needed = {"prompt", "benign", "harmful", "group"}
    missing = needed - set(triples.columns)
    if missing:
        raise ValueError(f"triples needs columns {sorted(needed)} (see preference_triples); missing {sorted(missing)}")
    if len(triples) == 0:
        raise ValueError("triples is empty: no prompt had both a harmful and a benign continuation; "
                         "sample more continuations or lower harmful_at")
    return triples.reset_index(drop=True)


# --------------------------------------------------------------------------------------------------
# Batched log-probabilities and KL, with gradients
# --------------------------------------------------------------------------------------------------
def _encode_batch(tokenizer, prefixes: Sequence[str], texts: Sequence[str], device):
    """Right-padded ids of ``start + prefix + text`` and, per row, the positions that predict ``text``."""
    start = [document_start_id(tokenizer)]
    rows, spans = [], []
    for prefix, text in zip(prefixes, texts):
        p = tokenizer(prefix, add_special_tokens=False)["input_ids"] if prefix else []
        t = tokenizer(text, add_special_tokens=False)["input_ids"]
        if not t:
            raise ValueError(f"text {text!r} has no tokens")
        rows.append(start + p + t)
        spans.append((len(start) + len(p), len(start) + len(p) + len(t)))
    ids, mask = pad_batch(rows, pad_id_of(tokenizer), side="right")
    return ids.to(device), mask.to(device), spans


def _token_counts(tokenizer, texts: Sequence[str]) -> torch.Tensor:
    return torch.tensor([len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts], dtype=torch.float32)


def _continuation_logprobs(model, tokenizer, prefixes, texts) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum and number of ``log p(text token | prefix, earlier tokens)`` per row, with gradients.

    Only the positions that predict the text go through ``lm_head`` (the 49k-word output layer is a
    fifth of SmolLM2's compute), which keeps training fast.
    """
    device = next(model.parameters()).device
    ids, mask, spans = _encode_batch(tokenizer, prefixes, texts, device)
    hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
    rows = torch.cat([torch.full((b - a,), i) for i, (a, b) in enumerate(spans)]).to(device)
    cols = torch.cat([torch.arange(a - 1, b - 1) for a, b in spans]).to(device)
    logits = model.lm_head(hidden[rows, cols]).float()
    logp = logits.log_softmax(-1).gather(-1, ids[rows, cols + 1][:, None]).squeeze(-1)
    counts = torch.tensor([b - a for a, b in spans], device=device, dtype=logp.dtype)
    sums = torch.zeros(len(spans), device=device, dtype=logp.dtype).index_add(0, rows, logp)
    return sums, counts


def _kl_on_batch(model, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean per-token KL(original || gated) over the unmasked positions; the original is the model, gates off."""
    keep = mask.bool()
    with torch.no_grad(), gates_disabled(model):
        base = model(input_ids=ids, attention_mask=mask).logits[keep].float().log_softmax(-1)
    gated = model(input_ids=ids, attention_mask=mask).logits[keep].float().log_softmax(-1)
    return F.kl_div(gated, base, log_target=True, reduction="batchmean")


def _neutral_kl(model, tokenizer, texts) -> torch.Tensor:
    """Mean per-token KL(original || gated) on neutral texts (with gradients through the gates)."""
    ids, mask, _ = _encode_batch(tokenizer, [""] * len(texts), texts, next(model.parameters()).device)
    return _kl_on_batch(model, ids, mask)


@torch.no_grad()
def kl_to_original(model, tokenizer, texts: Sequence[str], batch_size: int = 16) -> float:
    """Mean per-token KL(original ‖ gated) in nats on ``texts``: how far the gates moved ordinary text.

    The original is the same model inside ``gates_disabled``; 0.0 means identical next-token
    distributions. ``texts`` must be a list of non-blank strings. Example:
    ``kl_to_original(model, tok, neutral_texts("heldout"))``.
    Taught in ``notebooks/08_gate_attention/08_gate_attention.ipynb``.
    """
    _gates(model)
    texts = check_texts(texts, "texts", allow_blank=False)
    batch_size = check_positive_int(batch_size, "batch_size")
    total, count = 0.0, 0
    for batch in _chunks(texts, batch_size):
        ids, mask, _ = _encode_batch(tokenizer, [""] * len(batch), batch, next(model.parameters()).device)
        n = int(mask.sum())
        total += _kl_on_batch(model, ids, mask).item() * n
        count += n
    return total / count


# --------------------------------------------------------------------------------------------------
# The loss terms that need the whole training set
# --------------------------------------------------------------------------------------------------
def _group_disparity_term(change: torch.Tensor, groups: Sequence[str], reference: dict[str, float]) -> torch.Tensor:
    """Differentiable disparity between groups of the harmful continuations' per-token log-likelihood.

    A group's level is its mean over *all* training triples under the original model (``reference``, fixed)
    plus the mean change the gates made on this batch's triples of that group (``change``). Estimating the
    level this way is far less noisy than a batch mean of raw log-likelihoods, where a batch of 8 holds one
    or two triples per group. Returns ``sum_g |level_g - mean of the levels|`` over the groups in the batch
    (the seed's D with the mean of group means as centre).
    """
    labels = sorted(set(groups))
    levels = torch.stack([reference[label] + change[[i for i, g in enumerate(groups) if g == label]].mean()
                          for label in labels])
    return (levels - levels.mean()).abs().sum()


@torch.no_grad()
def _reference_logprobs(model, tokenizer, triples: pd.DataFrame, batch_size: int):
    """Sequence log-probs of benign and harmful continuations under the original model (gates off)."""
    benign, harmful = [], []
    with gates_disabled(model):
        for rows in _chunks(list(range(len(triples))), batch_size):
            part = triples.iloc[rows]
            prefixes = list(part["prompt"]) * 2
            sums, _ = _continuation_logprobs(model, tokenizer, prefixes, list(part["benign"]) + list(part["harmful"]))
            benign.append(sums[:len(rows)])
            harmful.append(sums[len(rows):])
    return torch.cat(benign), torch.cat(harmful)


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------
def train_gates(model, tokenizer, triples, neutral_texts: Sequence[str], steps: int = 60, batch_size: int = 8,
                neutral_batch_size: int = 4, lr: float = 0.05, beta: float = 0.1, kl_weight: float = 1.0,
                disparity_weight: float = 1.0, gate_weight: float = 0.01, seed: int = 0,
                progress: bool = True) -> pd.DataFrame:
    """Train only the gates; returns the loss history (one row per step, one column per loss term).

    The loss, per step, on a random batch of ``(prompt, benign, harmful, group)`` triples and neutral texts:

    * ``preference`` — DPO: ``-log sigmoid(beta * [(log p(benign) - log p_ref(benign))
      - (log p(harmful) - log p_ref(harmful))])``, the reference being the same model with gates off;
    * ``kl`` — KL(original || gated) per token on neutral text, so ordinary text keeps its probabilities;
    * ``disparity`` — sum over groups of |group level − mean level| of the harmful continuations' per-token
      log-likelihood (level = mean under the original model over all triples of the group + the change
      the gates made on this batch), a differentiable stand-in for the seed's D between groups;
    * ``gate`` — mean (g − 1)², a small pull of every gate back to 1.

    ``loss = preference + kl_weight * kl + disparity_weight * disparity + gate_weight * gate``.
    Training runs inside ``only_gates_train`` (every base weight frozen, eval mode; all restored
    afterwards). The model must have gates (``add_gates``); ``neutral_texts`` must be a list of non-blank
    strings when ``kl_weight > 0``. Example: ``hist = train_gates(model, tok, triples, neutral, steps=20)``.
    Taught in ``notebooks/08_gate_attention/08_gate_attention.ipynb``.
    """
    gates = _gates(model)
    triples = _check_triples(triples)
    if kl_weight > 0:
        if isinstance(neutral_texts, (list, tuple)) and not neutral_texts:
            raise ValueError("neutral_texts is empty; pass some ordinary sentences for the KL term (or kl_weight=0)")
        neutral_texts = check_texts(neutral_texts, "neutral_texts", allow_blank=False)
        neutral_batch_size = check_positive_int(neutral_batch_size, "neutral_batch_size")
    steps = check_positive_int(steps, "steps")
    batch_size = check_positive_int(batch_size, "batch_size")
    with only_gates_train(model):
        generator = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.Adam(gates.parameters(), lr=lr)
        history = []
        ref_benign, ref_harmful = _reference_logprobs(model, tokenizer, triples, 2 * batch_size)
        # Each group's per-token log-likelihood of its harmful continuations under the original model.
        ref_rate = (ref_harmful / _token_counts(tokenizer, triples["harmful"]).to(ref_harmful.device)).cpu()
        group_of = list(triples["group"])
        reference = {g: float(ref_rate[[i for i, x in enumerate(group_of) if x == g]].mean()) for g in set(group_of)}
        start = time.perf_counter()
        for step in tqdm(range(steps), desc="training gates", disable=not progress):
            rows = torch.randperm(len(triples), generator=generator)[:batch_size].tolist()
            part = triples.iloc[rows]
            n = len(rows)
            sums, counts = _continuation_logprobs(model, tokenizer, list(part["prompt"]) * 2,
                                                  list(part["benign"]) + list(part["harmful"]))
            benign, harmful = sums[:n], sums[n:]
            margin = (benign - ref_benign[rows]) - (harmful - ref_harmful[rows])
            terms = {"preference": -F.logsigmoid(beta * margin).mean()}
            change = (harmful - ref_harmful[rows]) / counts[n:]
            terms["disparity"] = _group_disparity_term(change, list(part["group"]), reference)
            if kl_weight > 0:
                pick = torch.randint(len(neutral_texts), (neutral_batch_size,), generator=generator).tolist()
                terms["kl"] = _neutral_kl(model, tokenizer, [neutral_texts[i] for i in pick])
            else:
                terms["kl"] = torch.zeros(())
            if gates.kind == "head":
                g = torch.cat([gate() for gate in gates.values()])
                terms["gate"] = ((g - 1) ** 2).mean()
            else:
                terms["gate"] = torch.stack([((v - 1) ** 2).mean() for v in gates.last_values.values()]).mean()
            loss = (terms["preference"] + kl_weight * terms["kl"] + disparity_weight * terms["disparity"]
                    + gate_weight * terms["gate"])
            if not torch.isfinite(loss):
                raise FloatingPointError(f"the gate loss became {loss.item()} at step {step}; lower lr")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            gates.last_values.clear()
            history.append({"step": step, "loss": loss.item(), **{k: v.item() for k, v in terms.items()},
                            "margin": margin.mean().item(), "seconds": time.perf_counter() - start})
    return pd.DataFrame(history, columns=["step", "loss", *LOSS_TERMS, "margin", "seconds"])
