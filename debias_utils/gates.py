"""Gated attention (门控注意力), the mechanism: a learned gate on every attention head's output, and its files.

Taught in ``notebooks/08_gate_attention/08_gate_attention.ipynb`` (the method is written up beside it in
``notebooks/08_gate_attention/now.md``). Here: the gate modules and the hooks that apply them, switching them
off (:func:`gates_disabled`), training only them (:func:`only_gates_train`), folding, reading / setting their
values, saving / loading. Training (data, loss, loop) is in :mod:`debias_utils.gate_training`, head importance
and head pruning in :mod:`debias_utils.pruning`; both import this module, never the other way round.

Where the gate sits: inside each attention block, after scaled dot-product attention has mixed the values
and before the output projection ``o_proj`` (the "G1" position of Qiu et al. 2025, *Gated Attention for
Large Language Models*). ``o_proj``'s input is ``(batch, seq, num_heads * head_dim)``, head after head, so
gating head ``h`` multiplies the slice ``[h * head_dim, (h + 1) * head_dim)`` by ``g``.

Form: ``g = 2 * sigmoid(z)`` with ``z = 0`` at the start, so ``g = 1.0`` exactly and the gated model *is*
the original model until training moves ``z``. Two kinds: ``"head"``, one scalar ``z`` per (layer, head),
which can be folded into ``o_proj`` after training (:func:`fold_gates`); ``"token"``, ``z = w · x + b`` from
the layer's normalised input ``x`` (the output of ``input_layernorm``), one gate per head *and token* (Qiu et
al.'s head-wise gate), ``w`` and ``b`` starting at zero. The gates are ``nn.Module`` parameters registered
as ``model.attention_gates`` (keyed by layer index), so optimizers and ``state_dict`` see them.

Example: ``load_gates(model, GATES_DIR / "smollm2_head.pt"); gate_values(model)  # (30, 9), 1.0 = unchanged``,
and ``with gates_disabled(model): ...`` runs the original model.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from .checks import check_texts

GATE_KINDS = ("head", "token")
#: Trained gate files and their training data (made by scripts/train_gates.py).
GATES_DIR = Path(__file__).resolve().parents[1] / "data" / "gates"
SUPPORTED_MODEL_TYPES = ("llama",)
GATE_FILE_FORMAT = 1
#: What :func:`save_gates` writes; :func:`read_gate_file` refuses a file without them.
GATE_FILE_KEYS = ("format", "kind", "layers", "model_type", "shape", "state", "metadata")


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
# Adding, disabling, training only the gates, removing, folding
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

    Example: ``add_gates(model); has_gates(model)  # True``.
    Taught in ``notebooks/08_gate_attention/08_gate_attention.ipynb``.
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
    Taught in ``notebooks/08_gate_attention/08_gate_attention.ipynb``.
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
    Taught in ``notebooks/08_gate_attention/08_gate_attention.ipynb``.
    """
    gates = _gates(model)
    previous = gates.enabled
    gates.enabled = False
    try:
        yield model
    finally:
        gates.enabled = previous
        gates.pending.clear()


@contextmanager
def only_gates_train(model):
    """Inside ``with only_gates_train(model) as gates:`` the gate parameters are the only trainable ones.

    Every base weight gets ``requires_grad=False`` and every gate parameter ``True``; the model is put in
    eval mode (no dropout, so the gated model is compared with the same deterministic original). On the way
    out — also after an exception — every parameter's ``requires_grad`` and the model's train / eval mode
    are restored, and the token gates' cached values are cleared. Example:
    ``with only_gates_train(model) as gates: loss(model).backward()``. Notebook 08 meets it inside
    ``train_gates`` and ``head_importance``, which both run in it.
    """
    gates = _gates(model)
    gate_ids = {id(p) for p in gates.parameters()}
    flags = [(p, p.requires_grad) for p in model.parameters()]   # includes the gates (registered on model)
    was_training = model.training
    try:
        for p, _ in flags:
            p.requires_grad_(id(p) in gate_ids)
        model.eval()
        yield gates
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        gates.pending.clear()
        gates.last_values.clear()
        model.train(was_training)


def remove_gates(model) -> None:
    """Take the gates and their hooks off ``model``; it is the original model again.

    Example: ``remove_gates(model); has_gates(model)  # False``.
    Taught in ``notebooks/08_gate_attention/08_gate_attention.ipynb``.
    """
    gates = _gates(model)
    for handle in gates.handles:
        handle.remove()
    gates.handles.clear()
    del model.attention_gates


def gate_parameters(model) -> list[nn.Parameter]:
    """The trainable gate parameters (what ``train_gates`` optimises).

    Example: ``sum(p.numel() for p in gate_parameters(model))  # 270 head gates on SmolLM2``.
    Taught in ``notebooks/08_gate_attention/08_gate_attention.ipynb``.
    """
    return list(_gates(model).parameters())


@torch.no_grad()
def fold_gates(model) -> None:
    """Fold trained head gates into ``o_proj`` and remove them: the gates become a plain weight edit.

    ``o_proj(g * x) = (W * g) x`` column block by column block, so afterwards the model needs no hooks.
    Only ``kind="head"`` gates can be folded (token gates depend on the input).
    Example: ``fold_gates(model); has_gates(model)  # False``.
    Taught in ``notebooks/08_gate_attention/08_gate_attention.ipynb``.
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
def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


@torch.no_grad()
def gate_values(model, tokenizer=None, texts: Sequence[str] | None = None) -> np.ndarray:
    """Gate values as a ``(num_layers, num_heads)`` array; un-gated layers show 1.0.

    Head gates need no input. Token gates vary by token, so pass ``tokenizer`` and ``texts`` (a list of
    strings): the result is each gate's mean over all tokens of those texts.
    Example: ``gate_values(model).shape  # (30, 9)``.
    Taught in ``notebooks/08_gate_attention/08_gate_attention.ipynb`` (the heat-map).
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
    texts = check_texts(texts, "texts")
    sums = {key: 0.0 for key in gates}
    count = 0
    for batch in _chunks(texts, 16):
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
    ``zero_heads`` (the head-pruning baseline of notebook 08) switches heads off through it.
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


def save_gates(model, path: str | Path, metadata: dict | None = None) -> Path:
    """Save only the gate parameters (plus the model shape and optional ``metadata``) to ``path``.

    The file is small (270 floats for SmolLM2's head gates). ``metadata`` must be JSON-serialisable;
    use it for the training settings and loss history. Example: ``save_gates(model, "data/gates/x.pt")``.
    ``scripts/train_gates.py`` writes the ``data/gates/*.pt`` files with it; notebook 08 loads them.
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

    Anything :func:`save_gates` did not write (an empty or corrupt file, another torch file, an older or
    newer file format) is a ``ValueError`` that names the file. Tensors only: loading never runs pickled code.
    Example: ``read_gate_file("data/gates/smollm2_head.pt")["metadata"]["history"]``. ``load_gates``
    (notebook 08) reads every file through it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"gate file {path} does not exist; train one with scripts/train_gates.py")

    def not_a_gate_file(reason: str) -> ValueError:
        return ValueError(f"{path} is not a gate file ({reason}): it was not written by save_gates; make one with "
                          "save_gates(model, path) after add_gates / train_gates, or with scripts/train_gates.py")

    if path.stat().st_size == 0:
        raise not_a_gate_file("it is empty, 0 bytes")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:   # torch raises many kinds on a foreign or damaged file; all mean "not readable"
        raise not_a_gate_file(f"torch.load could not read it as tensors: {type(err).__name__}") from err
    if not isinstance(payload, dict):
        raise not_a_gate_file(f"it holds a {type(payload).__name__}, not a dict")
    if "format" in payload and payload["format"] != GATE_FILE_FORMAT:
        raise ValueError(f"gate file {path} is in gate-file format {payload['format']!r}, but this debias_utils "
                         f"reads format {GATE_FILE_FORMAT}; save the gates again with save_gates or retrain them "
                         f"with scripts/train_gates.py")
    missing = [key for key in GATE_FILE_KEYS if key not in payload]
    if missing:
        raise not_a_gate_file(f"a dict without the gate keys {missing}")
    payload = dict(payload)
    try:
        payload["metadata"] = json.loads(payload["metadata"])
    except (TypeError, ValueError) as err:
        raise not_a_gate_file("its metadata is not JSON text") from err
    return payload


def load_gates(model, path: str | Path) -> dict:
    """Load gates saved by :func:`save_gates` onto ``model`` (adding them if it has none); returns the metadata.

    The file's model shape is checked against ``model`` first, so a file trained for another model gives
    a clear error instead of a silent broadcast. Example: ``meta = load_gates(model, "data/gates/x.pt")``.
    Taught in ``notebooks/08_gate_attention/08_gate_attention.ipynb``.
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
