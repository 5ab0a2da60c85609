"""A training-free baseline for the gates: first-order head importance and switching heads off (FASP-like).

Taught in ``notebooks/08_gate_attention/08_gate_attention.ipynb`` (the head-pruning baseline; compared with
the other methods in ``notebooks/09_compare_methods.ipynb``). The importance of head ``(l, h)`` is the
gradient of an objective with respect to a head gate at ``g = 1`` (:func:`head_importance`); the baseline
switches off the heads that push the harmful-vs-benign margin most (:func:`top_heads`, :func:`zero_heads`),
optionally protecting the heads ordinary language needs most. It uses the gate mechanism of
:mod:`debias_utils.gates` and the log-probabilities of :mod:`debias_utils.gate_training`.

Example::

    margin = head_importance(model, tokenizer, triples)
    language = head_importance(model, tokenizer, texts=neutral_texts("train")[:64])
    zero_heads(model, top_heads(margin, 10, exclude=top_heads(np.abs(language), 90)))
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
from tqdm.auto import tqdm

from .checks import check_positive_int, check_texts
from .gate_training import _check_triples, _continuation_logprobs, _token_counts
from .gates import (_chunks, _decoder_layers, _shape, add_gates, gate_values, has_gates, only_gates_train,
                    remove_gates, set_head_gates)


def head_importance(model, tokenizer, triples=None, texts: Sequence[str] | None = None, batch_size: int = 8,
                    progress: bool = False) -> np.ndarray:
    """First-order effect of each head, ``d objective / d g[l, h]`` at ``g = 1``, shape ``(num_layers, num_heads)``.

    With ``triples``, the objective is the harmful-vs-benign margin: the mean over triples of
    ``log p(harmful | prompt) - log p(benign | prompt)``. To first order, switching head ``(l, h)`` off
    (``g: 1 -> 0``) lowers the margin by entry ``[l, h]``, so the heads with the largest values are the
    ones a FASP-like baseline removes (:func:`top_heads`, :func:`zero_heads`).
    With ``texts`` (a list of non-blank strings) instead, the objective is the mean per-token log-likelihood
    of the texts: large values mark heads the model needs for ordinary language, which FASP protects from
    pruning. The model must have no gates.
    Example: ``imp = head_importance(model, tok, triples); top_heads(imp, 3)``.
    Taught in ``notebooks/08_gate_attention/08_gate_attention.ipynb``.
    """
    if (triples is None) == (texts is None):
        raise ValueError("pass either triples (harmful-vs-benign margin) or texts (language-model likelihood)")
    batch_size = check_positive_int(batch_size, "batch_size")
    if triples is not None:
        triples = _check_triples(triples)
        items = list(range(len(triples)))
    else:
        texts = check_texts(texts, "texts (neutral sentences, e.g. neutral_texts('train'))", allow_blank=False)
        items = list(range(len(texts)))
        n_tokens = float(_token_counts(tokenizer, texts).sum())
    if has_gates(model):
        raise ValueError("head_importance measures the original model; call it before add_gates / zero_heads "
                         "(or remove_gates first)")
    gates = add_gates(model, kind="head")
    try:
        with only_gates_train(model):
            for rows in tqdm(list(_chunks(items, batch_size)), desc="head importance", disable=not progress):
                if triples is not None:
                    part = triples.iloc[rows]
                    sums, _ = _continuation_logprobs(model, tokenizer, list(part["prompt"]) * 2,
                                                     list(part["harmful"]) + list(part["benign"]))
                    objective = (sums[:len(rows)] - sums[len(rows):]).sum() / len(triples)
                else:
                    sums, _ = _continuation_logprobs(model, tokenizer, [""] * len(rows), [texts[i] for i in rows])
                    objective = sums.sum() / n_tokens
                objective.backward()
        # dg/dz = 2 sigma(0) (1 - sigma(0)) = 0.5 at z = 0, so d objective / dg = 2 * d objective / dz.
        values = np.zeros((len(_decoder_layers(model)), gates.num_heads))
        for key, gate in gates.items():
            values[int(key)] = 2 * gate.z.grad.cpu().numpy()
    finally:
        remove_gates(model)
    return values


def top_heads(importance: np.ndarray, k: int, exclude: Iterable[tuple[int, int]] = ()) -> list[tuple[int, int]]:
    """The ``k`` (layer, head) pairs with the largest importance, largest first, skipping ``exclude``.

    Example: ``top_heads(np.array([[0.1, 0.5], [0.3, -1.0]]), 2)  # [(0, 1), (1, 0)]``.
    FASP-like use: ``top_heads(margin_imp, k, exclude=top_heads(lm_imp, 90))`` protects the 90 heads the
    model needs most for ordinary text. Taught in ``notebooks/08_gate_attention/08_gate_attention.ipynb``.
    """
    importance = np.asarray(importance)
    if importance.ndim != 2:
        raise ValueError("importance must be a (num_layers, num_heads) array from head_importance")
    excluded = {tuple(int(i) for i in pair) for pair in exclude}
    if not 0 <= k <= importance.size - len(excluded):
        raise ValueError(f"k must be between 0 and {importance.size - len(excluded)} "
                         f"({importance.size} heads, {len(excluded)} excluded), got {k}")
    order = [tuple(int(i) for i in np.unravel_index(j, importance.shape))
             for j in np.argsort(-importance, axis=None, kind="stable")]
    return [pair for pair in order if pair not in excluded][:k]


def zero_heads(model, heads: Sequence[tuple[int, int]]) -> None:
    """Switch off the given ``(layer, head)`` pairs with head gates at exactly 0 (adds head gates if needed).

    The training-free baseline (FASP-like head pruning). Undo with ``remove_gates``.
    Example: ``zero_heads(model, [(3, 4), (10, 0)])``.
    Taught in ``notebooks/08_gate_attention/08_gate_attention.ipynb``.
    """
    if not has_gates(model):
        add_gates(model, kind="head")
    shape = _shape(model)
    values = gate_values(model)
    for layer, head in heads:
        if not (0 <= layer < shape["num_hidden_layers"] and 0 <= head < shape["num_attention_heads"]):
            raise ValueError(f"head ({layer}, {head}) is outside the model's "
                             f"{shape['num_hidden_layers']} layers x {shape['num_attention_heads']} heads")
        if str(layer) not in model.attention_gates:
            raise ValueError(f"layer {layer} has no gate; add_gates(model, 'head') with that layer included")
        values[layer, head] = 0.0
    set_head_gates(model, values)
