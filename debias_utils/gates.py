"""Gated attention (门控注意力): a learned gate on every attention head's output, trained to reduce toxicity.

Taught in ``notebooks/07_gate_attention/07_gate_attention.ipynb`` (the method is written up beside it in
``notebooks/07_gate_attention/now.md``).

Where the gate sits: inside each attention block, after scaled dot-product attention has mixed the values
and before the output projection ``o_proj`` (the "G1" position of Qiu et al. 2025, *Gated Attention for
Large Language Models*). ``o_proj``'s input is ``(batch, seq, num_heads * head_dim)``, head after head, so
gating head ``h`` multiplies the slice ``[h * head_dim, (h + 1) * head_dim)`` by ``g``.

Form: ``g = 2 * sigmoid(z)`` with ``z = 0`` at the start, so ``g = 1.0`` exactly and the gated model *is*
the original model until training moves ``z``. Two kinds:

* ``"head"``  — one scalar ``z`` per (layer, head). After training it can be folded into ``o_proj``
  (:func:`fold_gates`), which turns the gates into an ordinary weight edit.
* ``"token"`` — ``z = w · x + b`` from the layer's normalised input ``x`` (the output of
  ``input_layernorm``, i.e. the input of the attention block): one gate per head *and token*
  (Qiu et al.'s head-wise gate). ``w`` and ``b`` start at zero.

Gates are ordinary ``nn.Module`` parameters registered on the model as ``model.attention_gates`` (an
``nn.ModuleDict`` keyed by layer index), so optimizers and ``state_dict`` see them. Forward hooks apply
them; :func:`gates_disabled` switches them off (the original model, exactly) and :func:`remove_gates`
takes them away.

Example::

    model, tokenizer = load_model("smollm2-135m")
    add_gates(model, kind="head")
    history = train_gates(model, tokenizer, triples, neutral_texts, steps=60)
    with gates_disabled(model):
        ...  # the original model
"""
from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .lm import document_start_id

GATE_KINDS = ("head", "token")
#: Put before a prompt, this hostile opening makes SmolLM2's continuations toxic far more often (the
#: "induced" condition); found by trying several prefixes in ``notebooks/07_gate_attention/now.md``.
INDUCING_PREFIX = "You stupid fucking idiot, shut up. "
CORPUS_DIR = Path(__file__).resolve().parents[1] / "data" / "corpus"
#: Trained gate files and their training data (made by scripts/train_gates.py).
GATES_DIR = Path(__file__).resolve().parents[1] / "data" / "gates"
SUPPORTED_MODEL_TYPES = ("llama",)
GATE_FILE_FORMAT = 1
LOSS_TERMS = ("preference", "kl", "disparity", "gate")


# --------------------------------------------------------------------------------------------------
# The gate modules
# --------------------------------------------------------------------------------------------------
class HeadGate(nn.Module):
    """One learned scalar per head: ``g = 2 * sigmoid(z)``, ``z`` starts at 0 so ``g == 1`` exactly."""

    def __init__(self, num_heads: int):
        super().__init__()
        self.z = nn.Parameter(torch.zeros(num_heads))

    def forward(self, hidden_states: torch.Tensor | None = None) -> torch.Tensor:
        """Gate values, shape ``(num_heads,)`` (the input is ignored: a head gate is the same for every token)."""
        return 2 * torch.sigmoid(self.z)


class TokenGate(nn.Module):
    """One gate per head and token, ``g = 2 * sigmoid(w · x + b)`` from the normalised input ``x``.

    ``w`` and ``b`` start at zero, so ``z == 0`` and ``g == 1`` exactly at the start.
    """

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        self.proj = nn.Linear(hidden_size, num_heads)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Gate values, shape ``(batch, seq, num_heads)``."""
        return 2 * torch.sigmoid(self.proj(hidden_states.to(self.proj.weight.dtype)))


class AttentionGates(nn.ModuleDict):
    """The gates of one model, keyed by layer index (``"0"``, ``"1"``, ...), plus the hooks that apply them.

    ``enabled`` switches every gate off without removing it (see :func:`gates_disabled`). ``last_values``
    keeps, for token gates, the gate values of the most recent forward pass (used by the gate penalty).
    """

    def __init__(self, kind: str, layers: Sequence[int], num_heads: int, head_dim: int, hidden_size: int):
        if kind == "head":
            gates = {str(i): HeadGate(num_heads) for i in layers}
        else:
            gates = {str(i): TokenGate(hidden_size, num_heads) for i in layers}
        super().__init__(gates)
        self.kind = kind
        self.layers = list(layers)
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.hidden_size = hidden_size
        self.enabled = True
        self.handles: list = []
        self.pending: dict[str, torch.Tensor] = {}
        self.last_values: dict[str, torch.Tensor] = {}

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, layers={len(self.layers)}, num_heads={self.num_heads}"


# --------------------------------------------------------------------------------------------------
# Adding, disabling, removing, folding
# --------------------------------------------------------------------------------------------------
def _decoder_layers(model) -> nn.ModuleList:
    """The decoder layers of a Llama-family model, or a clear error for anything else."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    layers = getattr(getattr(model, "model", None), "layers", None)
    if model_type not in SUPPORTED_MODEL_TYPES or layers is None or not all(
            hasattr(layer, "self_attn") and hasattr(layer.self_attn, "o_proj") for layer in layers):
        raise TypeError(
            f"attention gates support Llama-family models (model_type in {SUPPORTED_MODEL_TYPES}, e.g. "
            f"load_model('smollm2-135m') or load_model('tiny-llama')); got a {type(model).__name__} with "
            f"model_type={model_type!r}. Its attention block is laid out differently (no "
            f"model.model.layers[i].self_attn.o_proj), so the gate has no place to go."
        )
    return layers


def _shape(model) -> dict:
    config = model.config
    num_heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // num_heads
    return {"num_hidden_layers": config.num_hidden_layers, "num_attention_heads": num_heads,
            "num_key_value_heads": getattr(config, "num_key_value_heads", num_heads),
            "head_dim": head_dim, "hidden_size": config.hidden_size}


def has_gates(model) -> bool:
    """True if :func:`add_gates` (or :func:`load_gates`) has put gates on ``model``.

    Example: ``add_gates(model); has_gates(model)  # True``. Taught in ``notebooks/07_gate_attention``.
    """
    return isinstance(getattr(model, "attention_gates", None), AttentionGates)


def _gates(model) -> AttentionGates:
    if not has_gates(model):
        raise ValueError("this model has no attention gates; call add_gates(model, kind='head') "
                         "or load_gates(model, path) first")
    return model.attention_gates


def _make_o_proj_hook(gates: AttentionGates, key: str):
    def hook(module, args):
        if not gates.enabled:
            return None
        x = args[0]
        if gates.kind == "head":
            g = gates[key]()[:, None]                       # (heads, 1)
        else:
            g = gates.pending.pop(key, None)
            if g is None:
                raise RuntimeError("token gate values are missing: o_proj ran without its attention block's "
                                   "forward pre-hook; call the model as a whole, not o_proj alone")
            g = g[..., None]                                # (batch, seq, heads, 1)
        # o_proj's input holds the heads one after another: view as (..., heads, head_dim), gate, view back.
        gated = (x.view(*x.shape[:-1], gates.num_heads, gates.head_dim) * g.to(x.dtype)).view(x.shape)
        return (gated,) + tuple(args[1:])
    return hook


def _make_attention_hook(gates: AttentionGates, key: str):
    def hook(module, args, kwargs):
        if not gates.enabled:
            return None
        hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
        g = gates[key](hidden)
        gates.pending[key] = g
        gates.last_values[key] = g
        return None
    return hook


def add_gates(model, kind: str = "head", layers: Iterable[int] | None = None) -> AttentionGates:
    """Put a gate (at 1.0, so nothing changes yet) on every attention head of the chosen ``layers``.

    ``kind="head"`` learns one scalar per (layer, head); ``kind="token"`` learns a per-token gate from the
    layer's normalised input. ``layers=None`` gates every layer. Returns the gates (also
    ``model.attention_gates``). Example: ``add_gates(model, "head"); model.attention_gates["0"].z.shape``.
    Taught in ``notebooks/07_gate_attention/07_gate_attention.ipynb``.
    """
    decoder_layers = _decoder_layers(model)
    if kind not in GATE_KINDS:
        raise ValueError(f"kind must be one of {GATE_KINDS}, got {kind!r}")
    if has_gates(model):
        raise ValueError("this model already has attention gates; call remove_gates(model) first")
    n_layers = len(decoder_layers)
    layers = list(range(n_layers)) if layers is None else sorted(set(int(i) for i in layers))
    if not layers or layers[0] < 0 or layers[-1] >= n_layers:
        raise ValueError(f"layers must be a non-empty list of indices in 0..{n_layers - 1}, got {layers}")
    shape = _shape(model)
    gates = AttentionGates(kind, layers, shape["num_attention_heads"], shape["head_dim"], shape["hidden_size"])
    param = next(model.parameters())
    gates.to(device=param.device, dtype=torch.float32)
    model.attention_gates = gates  # nn.Module.__setattr__ registers it: parameters() and state_dict() see it
    for i in layers:
        attention = decoder_layers[i].self_attn
        if kind == "token":
            gates.handles.append(attention.register_forward_pre_hook(
                _make_attention_hook(gates, str(i)), with_kwargs=True))
        gates.handles.append(attention.o_proj.register_forward_pre_hook(_make_o_proj_hook(gates, str(i))))
    return gates


@contextmanager
def gates_disabled(model):
    """Run the original model inside ``with gates_disabled(model):`` — gates stay attached but are skipped.

    Example: ``with gates_disabled(model): base_logits = model(ids).logits``.
    Taught in ``notebooks/07_gate_attention/07_gate_attention.ipynb``.
    """
    gates = _gates(model)
    previous = gates.enabled
    gates.enabled = False
    try:
        yield model
    finally:
        gates.enabled = previous
        gates.pending.clear()


def remove_gates(model) -> None:
    """Take the gates and their hooks off ``model``; it is the original model again.

    Example: ``remove_gates(model); has_gates(model)  # False``.
    Taught in ``notebooks/07_gate_attention/07_gate_attention.ipynb``.
    """
    gates = _gates(model)
    for handle in gates.handles:
        handle.remove()
    gates.handles.clear()
    del model.attention_gates


def gate_parameters(model) -> list[nn.Parameter]:
    """The trainable gate parameters (what :func:`train_gates` optimises).

    Example: ``sum(p.numel() for p in gate_parameters(model))  # 270 head gates on SmolLM2``.
    """
    return list(_gates(model).parameters())


@torch.no_grad()
def fold_gates(model) -> None:
    """Fold trained head gates into ``o_proj`` and remove them: the gates become a plain weight edit.

    ``o_proj(g * x) = (W * g) x`` column block by column block, so afterwards the model needs no hooks.
    Only ``kind="head"`` gates can be folded (token gates depend on the input).
    Example: ``fold_gates(model); has_gates(model)  # False``.
    Taught in ``notebooks/07_gate_attention/07_gate_attention.ipynb``.
    """
    gates = _gates(model)
    if gates.kind != "head":
        raise ValueError("only kind='head' gates can be folded into o_proj; token gates change with the input")
    decoder_layers = _decoder_layers(model)
    for key, gate in gates.items():
        weight = decoder_layers[int(key)].self_attn.o_proj.weight  # (hidden, heads * head_dim)
        g = gate().to(weight.dtype)
        weight.view(weight.shape[0], gates.num_heads, gates.head_dim).mul_(g[None, :, None])
    remove_gates(model)


# --------------------------------------------------------------------------------------------------
# Reading, setting, saving and loading gate values
# --------------------------------------------------------------------------------------------------
@torch.no_grad()
def gate_values(model, tokenizer=None, texts: Sequence[str] | None = None) -> np.ndarray:
    """Gate values as a ``(num_layers, num_heads)`` array; un-gated layers show 1.0.

    Head gates need no input. Token gates vary by token, so pass ``tokenizer`` and ``texts``: the result
    is each gate's mean over all tokens of those texts. Example: ``gate_values(model).shape  # (30, 9)``.
    Taught in ``notebooks/07_gate_attention/07_gate_attention.ipynb`` (the heat-map).
    """
    gates = _gates(model)
    shape = _shape(model)
    values = np.ones((shape["num_hidden_layers"], shape["num_attention_heads"]))
    if gates.kind == "head":
        for key, gate in gates.items():
            values[int(key)] = gate().float().cpu().numpy()
        return values
    if tokenizer is None or texts is None:
        raise ValueError("token gates depend on the input: call gate_values(model, tokenizer, texts)")
    sums = {key: 0.0 for key in gates}
    count = 0
    for batch in _chunks(list(texts), 16):
        enc = tokenizer(batch, return_tensors="pt", padding=True).to(next(model.parameters()).device)
        model(**enc)
        mask = enc["attention_mask"].bool()
        for key in gates:
            sums[key] = sums[key] + gates.last_values[key][mask].sum(0).float().cpu().numpy()
        count += int(mask.sum())
    gates.last_values.clear()
    for key in gates:
        values[int(key)] = sums[key] / count
    return values


@torch.no_grad()
def set_head_gates(model, values: np.ndarray) -> None:
    """Set head gates to given values in [0, 2] from a ``(num_layers, num_heads)`` array (1 = unchanged).

    ``g = 2 sigmoid(z)`` so ``z = logit(g / 2)``; ``g = 0`` gives ``z = -inf`` and switches a head off exactly.
    Example: ``v = np.ones((30, 9)); v[3, 4] = 0; set_head_gates(model, v)``.
    Taught in ``notebooks/07_gate_attention/07_gate_attention.ipynb`` (the head-pruning baseline).
    """
    gates = _gates(model)
    if gates.kind != "head":
        raise ValueError("set_head_gates needs kind='head' gates")
    values = np.asarray(values, dtype=np.float64)
    shape = _shape(model)
    expected = (shape["num_hidden_layers"], shape["num_attention_heads"])
    if values.shape != expected:
        raise ValueError(f"values must have shape {expected} (layers, heads), got {values.shape}")
    if not np.all((values >= 0) & (values <= 2)):
        raise ValueError("gate values must lie in [0, 2] (g = 2 sigmoid(z))")
    for key, gate in gates.items():
        g = torch.tensor(values[int(key)], dtype=torch.float64)
        z = torch.log(g / 2) - torch.log1p(-g / 2)  # logit(g / 2); -inf at 0, +inf at 2
        gate.z.copy_(z.to(gate.z.dtype))


def zero_heads(model, heads: Sequence[tuple[int, int]]) -> None:
    """Switch off the given ``(layer, head)`` pairs with head gates at exactly 0 (adds head gates if needed).

    The training-free baseline (FASP-like head pruning). Undo with :func:`remove_gates`.
    Example: ``zero_heads(model, [(3, 4), (10, 0)])``.
    Taught in ``notebooks/07_gate_attention/07_gate_attention.ipynb``.
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


def save_gates(model, path: str | Path, metadata: dict | None = None) -> Path:
    """Save only the gate parameters (plus the model shape and optional ``metadata``) to ``path``.

    The file is small (270 floats for SmolLM2's head gates). ``metadata`` must be JSON-serialisable;
    use it for the training settings and loss history. Example: ``save_gates(model, "data/gates/x.pt")``.
    Taught in ``notebooks/07_gate_attention/07_gate_attention.ipynb``.
    """
    gates = _gates(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": GATE_FILE_FORMAT,
        "kind": gates.kind,
        "layers": list(gates.layers),
        "model_type": model.config.model_type,
        "shape": _shape(model),
        "state": {k: v.detach().cpu().clone() for k, v in gates.state_dict().items()},
        "metadata": json.dumps(metadata or {}),
    }
    torch.save(payload, path)
    return path


def read_gate_file(path: str | Path) -> dict:
    """The raw contents of a gate file (kind, layers, model shape, tensors, metadata) without a model.

    Example: ``read_gate_file("data/gates/smollm2_head.pt")["metadata"]["history"]``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"gate file {path} does not exist; train one with scripts/train_gates.py")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != GATE_FILE_FORMAT:
        raise ValueError(f"{path} is not a gate file written by save_gates (format {GATE_FILE_FORMAT})")
    payload = dict(payload)
    payload["metadata"] = json.loads(payload["metadata"])
    return payload


def load_gates(model, path: str | Path) -> dict:
    """Load gates saved by :func:`save_gates` onto ``model`` (adding them if it has none); returns the metadata.

    The file's model shape is checked against ``model`` first, so a file trained for another model gives
    a clear error instead of a silent broadcast. Example: ``meta = load_gates(model, "data/gates/x.pt")``.
    Taught in ``notebooks/07_gate_attention/07_gate_attention.ipynb``.
    """
    payload = read_gate_file(path)
    _decoder_layers(model)
    have, want = _shape(model), payload["shape"]
    keys = ("num_hidden_layers", "num_attention_heads", "head_dim", "hidden_size")
    if any(have[k] != want[k] for k in keys) or model.config.model_type != payload["model_type"]:
        describe = lambda s: (f"{s['num_hidden_layers']} layers x {s['num_attention_heads']} heads "
                              f"(head_dim {s['head_dim']}, hidden {s['hidden_size']})")
        raise ValueError(
            f"gate file {path} was trained for a {payload['model_type']} model with {describe(want)}, but this "
            f"model has {describe(have)}. Load it into the model it was trained for, or train new gates "
            f"for this model with train_gates / scripts/train_gates.py."
        )
    if has_gates(model):
        gates = model.attention_gates
        if gates.kind != payload["kind"] or gates.layers != payload["layers"]:
            raise ValueError(f"the model already has {gates.kind} gates on layers {gates.layers}, the file holds "
                             f"{payload['kind']} gates on layers {payload['layers']}; call remove_gates(model) first")
    else:
        gates = add_gates(model, kind=payload["kind"], layers=payload["layers"])
    gates.load_state_dict(payload["state"])
    return payload["metadata"]


# --------------------------------------------------------------------------------------------------
# Data: neutral text, preference triples
# --------------------------------------------------------------------------------------------------
def neutral_texts(split: str = "train", folder: str | Path | None = None, heldout_every: int = 4) -> list[str]:
    """Neutral sentences from the course corpus (``data/corpus/*.txt``) for the KL term and for perplexity.

    Every ``heldout_every``-th paragraph is held out (``split="heldout"``), the rest is ``split="train"``;
    paragraphs are cut into sentences. Titles (short lines) are skipped.
    Example: ``len(neutral_texts("heldout"))``. Taught in ``notebooks/07_gate_attention/07_gate_attention.ipynb``.
    """
    import re

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


# --------------------------------------------------------------------------------------------------
# Preference data and batched log-probabilities with gradients
# --------------------------------------------------------------------------------------------------
def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def preference_triples(continuations: pd.DataFrame, harmful_at: float = 0.5, benign_below: float = 0.1,
                       per_prompt: int = 1, text_column: str = "continuation",
                       score_column: str = "toxicity", seed: int = 0) -> pd.DataFrame:
    """Pair a harmful and a benign continuation of the same prompt: the training data of the gates.

    ``continuations`` has one row per sampled continuation with columns ``prompt``, ``group`` (and any
    others, e.g. ``template``), the text and its toxicity score. For every prompt with at least one
    continuation scoring ``>= harmful_at`` and one scoring ``< benign_below``, up to ``per_prompt`` pairs
    are made: the most toxic continuations first, each with a benign one drawn at random. Returns columns ``prompt, benign, harmful,
    harmful_score, benign_score`` plus the other per-prompt columns of the input.
    Example: ``preference_triples(df).head()``.
    Taught in ``notebooks/07_gate_attention/07_gate_attention.ipynb``.
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
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
        mask[i, :len(r)] = 1
    return ids.to(device), mask.to(device), spans


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


def _neutral_kl(model, tokenizer, texts) -> torch.Tensor:
    """Mean per-token KL(original || gated) on neutral texts; the original is the same model, gates off."""
    ids, mask, _ = _encode_batch(tokenizer, [""] * len(texts), texts, next(model.parameters()).device)
    keep = mask.bool()
    with torch.no_grad(), gates_disabled(model):
        base = model(input_ids=ids, attention_mask=mask).logits[keep].float().log_softmax(-1)
    gated = model(input_ids=ids, attention_mask=mask).logits[keep].float().log_softmax(-1)
    return F.kl_div(gated, base, log_target=True, reduction="batchmean")


@torch.no_grad()
def kl_to_original(model, tokenizer, texts: Sequence[str], batch_size: int = 16) -> float:
    """Mean per-token KL(original ‖ gated) in nats on ``texts``: how far the gates moved ordinary text.

    The original is the same model inside :func:`gates_disabled`; 0.0 means identical next-token
    distributions. Example: ``kl_to_original(model, tok, neutral_texts("heldout"))``.
    Taught in ``notebooks/07_gate_attention/07_gate_attention.ipynb``.
    """
    _gates(model)
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise ValueError("texts is empty; pass some neutral sentences, e.g. neutral_texts('heldout')")
    total, count = 0.0, 0
    for batch in _chunks(texts, batch_size):
        ids, mask, _ = _encode_batch(tokenizer, [""] * len(batch), batch, next(model.parameters()).device)
        n = int(mask.sum())
        total += _neutral_kl(model, tokenizer, batch).item() * n
        count += n
    return total / count


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


def _token_counts(tokenizer, texts: Sequence[str]) -> torch.Tensor:
    return torch.tensor([len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts], dtype=torch.float32)


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
    Every base weight is frozen during training (and unfrozen afterwards as it was). The model must
    have gates (:func:`add_gates`). Example: ``hist = train_gates(model, tok, triples, neutral, steps=20)``.
    Taught in ``notebooks/07_gate_attention/07_gate_attention.ipynb``.
    """
    gates = _gates(model)
    triples = _check_triples(triples)
    neutral_texts = [t for t in neutral_texts if isinstance(t, str) and t.strip()]
    if kl_weight > 0 and not neutral_texts:
        raise ValueError("neutral_texts is empty; pass some ordinary sentences for the KL term (or kl_weight=0)")
    if steps < 1 or batch_size < 1:
        raise ValueError("steps and batch_size must be >= 1")
    gate_ids = {id(p) for p in gates.parameters()}
    frozen = [(p, p.requires_grad) for p in model.parameters() if id(p) not in gate_ids]
    for p, _ in frozen:
        p.requires_grad_(False)
    for p in gates.parameters():
        p.requires_grad_(True)
    was_training = model.training
    model.eval()  # no dropout: the gated model must be compared with the same deterministic reference
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(gates.parameters(), lr=lr)
    history = []
    try:
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
    finally:
        for p, flag in frozen:
            p.requires_grad_(flag)
        gates.pending.clear()
        gates.last_values.clear()
        model.train(was_training)
    return pd.DataFrame(history, columns=["step", "loss", *LOSS_TERMS, "margin", "seconds"])


# --------------------------------------------------------------------------------------------------
# A training-free baseline: first-order head importance (FASP-like)
# --------------------------------------------------------------------------------------------------
def head_importance(model, tokenizer, triples=None, texts: Sequence[str] | None = None, batch_size: int = 8,
                    progress: bool = False) -> np.ndarray:
    """First-order effect of each head, ``d objective / d g[l, h]`` at ``g = 1``, shape ``(num_layers, num_heads)``.

    With ``triples``, the objective is the harmful-vs-benign margin: the mean over triples of
    ``log p(harmful | prompt) - log p(benign | prompt)``. To first order, switching head ``(l, h)`` off
    (``g: 1 -> 0``) lowers the margin by entry ``[l, h]``, so the heads with the largest values are the
    ones a FASP-like baseline removes (:func:`top_heads`, :func:`zero_heads`).
    With ``texts`` instead, the objective is the mean per-token log-likelihood of the texts: large values
    mark heads the model needs for ordinary language, which FASP protects from pruning.
    The model must have no gates. Example: ``imp = head_importance(model, tok, triples); top_heads(imp, 3)``.
    Taught in ``notebooks/07_gate_attention/07_gate_attention.ipynb``.
    """
    if (triples is None) == (texts is None):
        raise ValueError("pass either triples (harmful-vs-benign margin) or texts (language-model likelihood)")
    if triples is not None:
        triples = _check_triples(triples)
        items = list(range(len(triples)))
    else:
        texts = [t for t in texts if isinstance(t, str) and t.strip()]
        if not texts:
            raise ValueError("texts is empty; pass some neutral sentences, e.g. neutral_texts('train')")
        items = list(range(len(texts)))
        n_tokens = float(_token_counts(tokenizer, texts).sum())
    if has_gates(model):
        raise ValueError("head_importance measures the original model; call it before add_gates / zero_heads "
                         "(or remove_gates first)")
    add_gates(model, kind="head")
    gates = model.attention_gates
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    for p in gates.parameters():
        p.requires_grad_(True)
    try:
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
        for p, flag in flags:
            p.requires_grad_(flag)
        remove_gates(model)
    return values


def top_heads(importance: np.ndarray, k: int, exclude: Iterable[tuple[int, int]] = ()) -> list[tuple[int, int]]:
    """The ``k`` (layer, head) pairs with the largest importance, largest first, skipping ``exclude``.

    Example: ``top_heads(np.array([[0.1, 0.5], [0.3, -1.0]]), 2)  # [(0, 1), (1, 0)]``.
    FASP-like use: ``top_heads(margin_imp, k, exclude=top_heads(lm_imp, 90))`` protects the 90 heads the
    model needs most for ordinary text. Taught in ``notebooks/07_gate_attention/07_gate_attention.ipynb``.
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
