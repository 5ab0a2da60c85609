"""The offline toxicity scorer: tox-block 0.1.2's Jigsaw-trained BiLSTM, read from its Keras file, run in PyTorch.

The ``tox-block`` wheel ships a Keras ``.h5`` file and a pickled tokenizer; we read both without TensorFlow (the
pickle through an allow-list, so it cannot run code) and re-implement the network. Taught in
``notebooks/06_bias_metrics.ipynb``.
"""
from __future__ import annotations

import json
import pickle
from contextlib import contextmanager
from functools import lru_cache

import numpy as np
import pandas as pd

from ..assets import fetch
from .base import ToxicityScorer


TOX_BLOCK_MODEL = "tox_block/trained_models/lstm_model_0.1.2.h5"
TOX_BLOCK_ENCODER = "tox_block/trained_models/encoder_0.1.2.pkl"
JIGSAW_LABELS = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")
# (min, max) of each label's raw probability, from tox_block/config/config.py (RESCALE_PROBA). tox-block
# min-max scales with these so that the six labels use similar ranges.
TOX_BLOCK_RESCALE = {
    "toxic": (0.002116, 0.999858),
    "severe_toxic": (0.000011, 0.648682),
    "obscene": (0.000347, 0.997533),
    "threat": (0.000040, 0.918887),
    "insult": (0.000373, 0.986303),
    "identity_hate": (0.000074, 0.901117),
}


class _KerasStandIn:
    """Takes the place of a Keras / tox-block class while unpickling: it just keeps the attributes."""

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


class _TokenizerUnpickler(pickle.Unpickler):
    """Reads tox-block's pickled ``TokenSequencer`` (holding a Keras ``Tokenizer``) without TensorFlow.

    Only the few classes that file contains are allowed, so the pickle cannot run arbitrary code.
    """

    STAND_INS = {("tox_block.data_processing.preprocessors", "TokenSequencer"),
                 ("keras_preprocessing.text", "Tokenizer")}
    SAFE = {("collections", "OrderedDict"), ("collections", "defaultdict"), ("builtins", "int")}

    def find_class(self, module: str, name: str):
        if (module, name) in self.STAND_INS:
            return type(name, (_KerasStandIn,), {})
        if (module, name) in self.SAFE:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected class {module}.{name} in the tox-block tokenizer pickle")


@lru_cache(maxsize=2)
def _load_bilstm(model_path: str, encoder_path: str) -> dict:
    """Weights (as torch tensors) and text-encoding settings; cached so a second load is free."""
    import h5py
    import torch

    with open(encoder_path, "rb") as handle:
        sequencer = _TokenizerUnpickler(handle).load()
    tokenizer = sequencer.tokenizer
    num_words = tokenizer.num_words
    if tokenizer.oov_token is not None or tokenizer.char_level:
        raise ValueError("tox-block tokenizer has settings this re-implementation does not cover")
    # Keras keeps the full 300k-word index but only ids < num_words reach the model; keep just those.
    word_index = {w: i for w, i in tokenizer.word_index.items() if i < num_words}

    with h5py.File(model_path, "r") as h5:
        config = json.loads(h5.attrs["model_config"])
        layers = {layer["name"]: layer["config"] for layer in config["config"]["layers"]}
        lstm = layers["bidirectional"]["layer"]["config"]
        weights = h5["model_weights"]

        def read(layer: str, weight: str) -> "torch.Tensor":
            # float32, like Keras: twice as fast as float64 and within 1e-7 of tox-block's numbers.
            return torch.from_numpy(np.asarray(weights[layer][layer][weight], dtype=np.float32))

        units = lstm["units"]
        # Keras stores the four gates side by side as input | forget | cell | output; put the three
        # sigmoid gates first (input | forget | output | cell) so one activation call covers them.
        gate_order = torch.cat([torch.arange(0, 2 * units), torch.arange(3 * units, 4 * units),
                                torch.arange(2 * units, 3 * units)])

        def lstm_weight(kind: str) -> "torch.Tensor":
            # Stack forward and backward so one batched matmul runs both directions per time step.
            both = [read("bidirectional", f"{d}_lstm/{kind}:0") for d in ("forward", "backward")]
            return torch.stack(both)[..., gate_order].contiguous()

        state = {
            "embedding": read("embedding", "embeddings:0"),
            "kernel": lstm_weight("kernel"),  # (2, 50, 200)
            "recurrent": lstm_weight("recurrent_kernel"),  # (2, 50, 200)
            "bias": lstm_weight("bias"),  # (2, 200)
            "dense_w": read("dense", "kernel:0"), "dense_b": read("dense", "bias:0"),
            "out_w": read("dense_1", "kernel:0"), "out_b": read("dense_1", "bias:0"),
        }
    # The maths below is written for exactly this architecture; refuse a file that differs.
    expected = {("activation", "tanh"), ("recurrent_activation", "hard_sigmoid"), ("use_bias", True),
                ("return_sequences", True), ("go_backwards", False)}
    found = {(k, lstm[k]) for k, _ in expected}
    if found != expected or layers["bidirectional"]["merge_mode"] != "concat" \
            or layers["embedding"]["mask_zero"] or layers["dense"]["activation"] != "relu" \
            or layers["dense_1"]["activation"] != "sigmoid" or "global_max_pooling1d" not in layers:
        raise ValueError(f"{model_path} is not the tox-block 0.1.2 BiLSTM this code re-implements")
    return {
        "state": state,
        "units": units,
        "word_index": word_index,
        "num_words": num_words,
        "filters": tokenizer.filters,
        "lower": tokenizer.lower,
        "split": tokenizer.split,
        "maxlen": sequencer.max_sequence_length,
    }


@contextmanager
def _single_thread():
    """Run torch on one thread for a while: the LSTM's per-step tensors are tiny (2 x batch x 50), and
    handing them to a second thread costs more than it saves (10-100x slower, measured on a 2-core VM)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _hard_sigmoid(x):
    """tf.keras 2.x ``hard_sigmoid``: a piecewise-linear sigmoid, ``clip(0.2 x + 0.5, 0, 1)``.

    The model was trained with it as the LSTM's recurrent activation (Keras' default then), so a smooth
    sigmoid here would give different numbers; ``torch.nn.LSTM`` hard-codes the smooth one.
    """
    return (0.2 * x + 0.5).clamp(0.0, 1.0)


class JigsawBiLSTMScorer(ToxicityScorer):
    """tox-block 0.1.2's BiLSTM (GloVe-initialised embeddings, Jigsaw labels) in plain PyTorch.

    Architecture, read from the ``.h5`` file: Embedding(20000, 50) → Bidirectional LSTM(50, returning the
    whole sequence) → max over time → Dense(50, relu) → Dense(6, sigmoid). Texts are encoded like Keras'
    ``Tokenizer`` + ``pad_sequences`` did during training: lower-case, punctuation replaced by spaces,
    split on " ", only the 19,999 most frequent words kept (others dropped), then zeros added *in front*
    up to 100 ids and long texts cut *from the front* (the last 100 words are kept).

    The model never masked the padding, so the zeros are real inputs to the LSTM; every text is therefore
    padded to exactly 100, whatever else is in the batch, and a text's score does not depend on its batch.

    ``rescale=True`` (default) applies tox-block's per-label min-max scaling, clipped into [0, 1];
    ``rescale=False`` returns the raw sigmoid probabilities. Example::

        scorer = load_scorer("jigsaw-bilstm")
        scorer.score(["I will kill you, you fucking idiot!"])   # -> array([0.99986...])

    Taught in notebooks/06_bias_metrics.ipynb.
    """

    name = "jigsaw-bilstm"
    label_names = JIGSAW_LABELS
    score_label = "toxic"

    def __init__(self, rescale: bool = True, batch_size: int = 128):
        paths = fetch("tox-block")  # raises AssetMissingError (naming `debias-llm download`) when offline
        self._model = _load_bilstm(str(paths[TOX_BLOCK_MODEL]), str(paths[TOX_BLOCK_ENCODER]))
        self.rescale = rescale
        self.batch_size = batch_size
        self._translate = str.maketrans({c: self._model["split"] for c in self._model["filters"]})
        low, high = np.array([TOX_BLOCK_RESCALE[label] for label in self.label_names]).T
        self._rescale_low, self._rescale_range = low, high - low

    def words(self, text: str) -> list[str]:
        """Keras ``text_to_word_sequence`` with tox-block's settings. ``words("Hi, you're OK!")`` → hi you're ok."""
        if self._model["lower"]:
            text = text.lower()
        return [w for w in text.translate(self._translate).split(self._model["split"]) if w]

    FLAG_MEANINGS = {
        "no_known_words": "contain words but none the model knows (e.g. non-English text, emoji): they get the "
                          "empty text's score",
        "truncated": "have more than 100 known words: only the last 100 were read",
    }

    def _flags(self, texts: list[str]) -> pd.DataFrame:
        """Which texts the model cannot read as written: no known word at all, or cut to the last 100 words."""
        word_index, maxlen = self._model["word_index"], self._model["maxlen"]
        rows = []
        for text in texts:
            words = self.words(text)
            known = sum(w in word_index for w in words)
            rows.append({"no_known_words": bool(words) and known == 0, "truncated": known > maxlen})
        return pd.DataFrame(rows, columns=list(self.FLAG_MEANINGS), dtype=bool)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Word ids, shape ``(len(texts), 100)``: Keras ``texts_to_sequences`` + ``pad_sequences`` (pre/pre)."""
        word_index, maxlen = self._model["word_index"], self._model["maxlen"]
        ids = np.zeros((len(texts), maxlen), dtype=np.int64)
        for row, text in enumerate(texts):
            # Unknown and rare words are dropped (the tokenizer had no OOV token).
            seq = [word_index[w] for w in self.words(text) if w in word_index][-maxlen:]  # truncate 'pre'
            if seq:
                ids[row, maxlen - len(seq):] = seq  # pad 'pre'
        return ids

    def _forward(self, ids: np.ndarray) -> np.ndarray:
        import torch

        s, units = self._model["state"], self._model["units"]
        with torch.no_grad(), _single_thread():
            x = s["embedding"][torch.from_numpy(ids)]  # (B, T, 50)
            # Direction 1 reads the sequence backwards; both directions share one loop.
            x = torch.stack([x, x.flip(1)], dim=1)  # (B, 2, T, 50)
            # Input projections for all time steps at once (time first, so z_in[t] is contiguous);
            # only the recurrent part needs the Python loop.
            z_in = (torch.einsum("bdte,deg->tdbg", x, s["kernel"]) + s["bias"][:, None, :]).contiguous()
            h = x.new_zeros(2, len(ids), units)
            c = x.new_zeros(2, len(ids), units)
            pooled = x.new_full((2, len(ids), units), -torch.inf)
            for t in range(ids.shape[1]):
                z = torch.baddbmm(z_in[t], h, s["recurrent"])
                # Columns were reordered at load time to input, forget, output | cell candidate,
                # so one hard_sigmoid call covers the three gates.
                gates = _hard_sigmoid(z[..., :3 * units])
                i, f, o = gates.split(units, dim=-1)
                c = f * c + i * torch.tanh(z[..., 3 * units:])
                h = o * torch.tanh(c)
                # GlobalMaxPool1D over time; the order of time steps does not matter for a max.
                pooled = torch.maximum(pooled, h)
            features = torch.cat([pooled[0], pooled[1]], dim=-1)  # Keras concat: forward then backward
            hidden = torch.relu(features @ s["dense_w"] + s["dense_b"])  # Dropout is off at inference
            return torch.sigmoid(hidden @ s["out_w"] + s["out_b"]).double().numpy()

    def _predict(self, batch: list[str]) -> np.ndarray:
        proba = self._forward(self.encode(batch))
        if self.rescale:
            # tox-block wraps this in np.abs, which maps values just below the minimum back up;
            # clipping keeps the score monotonic in the probability and inside [0, 1].
            proba = np.clip((proba - self._rescale_low) / self._rescale_range, 0.0, 1.0)
        return proba
