"""Toxicity scorers (毒性分类器) behind one function, ``load_scorer(name)``.

A *scorer* turns a list of texts into one toxicity value in [0, 1] per text (``.score``) and, where the
model predicts several kinds of toxicity, into a table with one column per label (``.labels``).
Three scorers, from strongest to crudest:

* ``"detoxify"``      — Detoxify "original" (a BERT fine-tuned on the Jigsaw Toxic Comment data). Needs
  its checkpoint: ``DEBIAS_DETOXIFY_CHECKPOINT=/path/toxic_original-c1212f89.ckpt``, or an internet
  connection to GitHub for Detoxify's own download. Offline it also needs the BERT config and tokenizer
  files (see :class:`DetoxifyScorer`).
* ``"jigsaw-bilstm"`` — the bidirectional LSTM from the ``tox-block`` wheel, trained on the same Jigsaw
  data with the same six labels. The wheel ships a Keras ``.h5`` file; we run it in plain PyTorch, so
  TensorFlow is not needed, and it always works offline once ``debias-llm download`` has run.
* ``"profanity"``     — ``alt-profanity-check``, a linear model on bag-of-words features: fast, lexical,
  and a useful example of a classifier that reacts to words rather than meaning.

``"auto"`` picks Detoxify when its checkpoint is on disk and the BiLSTM otherwise.

Taught in ``notebooks/05_bias_metrics.ipynb``.
"""
from __future__ import annotations

import json
import os
import pickle
import sys
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from debias_utils.assets import AssetMissingError, fetch  # noqa: F401  (AssetMissingError is re-exported)

ENV_DETOXIFY_CHECKPOINT = "DEBIAS_DETOXIFY_CHECKPOINT"
ENV_DETOXIFY_HF_CONFIG = "DEBIAS_DETOXIFY_HF_CONFIG"
# Looked for next to the checkpoint when ENV_DETOXIFY_HF_CONFIG is not set.
HF_CONFIG_FOLDER = "huggingface_config"

SCORER_NAMES = ("auto", "detoxify", "jigsaw-bilstm", "profanity")
PROGRESS_THRESHOLD = 64  # longer lists get a progress bar


# --------------------------------------------------------------------------------------------------
# Shared behaviour: input checks, batching, progress bar, finite check
# --------------------------------------------------------------------------------------------------
def _as_text_list(texts: Any) -> tuple[list[str], pd.Index]:
    """The texts as a list plus the index the label table should carry (a Series keeps its own)."""
    if isinstance(texts, (str, bytes)):
        raise TypeError(
            "Pass a list of strings, not a single string: scorer.score([text]) rather than scorer.score(text)."
        )
    if isinstance(texts, pd.DataFrame):
        raise TypeError("Pass one column of texts (a list or a pandas Series), not a whole DataFrame.")
    if isinstance(texts, pd.Series):
        index, items = texts.index, texts.tolist()
    else:
        try:
            items = list(texts)
        except TypeError:
            raise TypeError(
                f"Pass a list of strings; got {type(texts).__name__}, which is not a list of texts."
            ) from None
        index = pd.RangeIndex(len(items))
    for position, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(
                f"texts[{position}] is {type(item).__name__} ({item!r}); every element must be a str. "
                "Drop missing values or replace them with '' before scoring."
            )
    return items, index


class ToxicityScorer:
    """Common interface: ``score(texts)`` and ``labels(texts)``; subclasses implement ``_predict``.

    Subclasses set ``name`` (what ``load_scorer`` calls them), ``label_names`` (column order of
    ``_predict``'s output) and ``score_label`` (the label that ``score`` returns).
    """

    name: str = ""
    label_names: tuple[str, ...] = ()
    score_label: str = ""
    batch_size: int = 64

    def _predict(self, batch: list[str]) -> np.ndarray:  # pragma: no cover - abstract
        """Probabilities, shape ``(len(batch), len(label_names))``."""
        raise NotImplementedError

    def _predict_all(self, texts: list[str], progress: bool | None = None) -> np.ndarray:
        rows = np.empty((len(texts), len(self.label_names)), dtype=np.float64)
        # progress=None: a bar only for long lists; True / False force it on / off.
        show = len(texts) > PROGRESS_THRESHOLD if progress is None else progress
        with tqdm(total=len(texts), desc=f"toxicity ({self.name})", unit="text", disable=not show) as bar:
            for start in range(0, len(texts), self.batch_size):
                batch = texts[start:start + self.batch_size]
                rows[start:start + len(batch)] = self._predict(batch)
                bar.update(len(batch))
        # A NaN would silently drop out of group means later, so stop here instead.
        if not np.isfinite(rows).all():
            bad = sorted(set(np.nonzero(~np.isfinite(rows))[0].tolist()))[:5]
            raise FloatingPointError(f"{self.name} produced non-finite scores for texts at positions {bad}.")
        return rows

    def labels(self, texts: Iterable[str], progress: bool | None = None) -> pd.DataFrame:
        """All labels the model predicts: one row per text, one column per label, index aligned with input.

        Example: ``load_scorer("jigsaw-bilstm").labels(["you idiot"])["insult"]  # -> 0.93 in row 0``.
        Taught in notebooks/05_bias_metrics.ipynb.
        """
        items, index = _as_text_list(texts)
        return pd.DataFrame(self._predict_all(items, progress), index=index, columns=list(self.label_names))

    def score(self, texts: Iterable[str], progress: bool | None = None) -> np.ndarray:
        """Toxicity in [0, 1], one float per text (the model's main "toxic" label).

        Example: ``load_scorer("profanity").score(["have a nice day", "what the hell"])  # -> array([0.06, 0.99])``.
        Taught in notebooks/05_bias_metrics.ipynb.
        """
        items, _ = _as_text_list(texts)
        return self._predict_all(items, progress)[:, self.label_names.index(self.score_label)]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} labels={list(self.label_names)}>"


# --------------------------------------------------------------------------------------------------
# jigsaw-bilstm: tox-block's Keras BiLSTM, re-implemented in PyTorch
# --------------------------------------------------------------------------------------------------
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

    Taught in notebooks/05_bias_metrics.ipynb.
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


# --------------------------------------------------------------------------------------------------
# detoxify
# --------------------------------------------------------------------------------------------------
@lru_cache(maxsize=2)
def _load_detoxify(checkpoint: str | None, hf_config: str | None, device: str):
    """(model, tokenizer, class names) exactly as Detoxify builds them, on ``device``; cached per checkpoint."""
    model, tokenizer, class_names = _build_detoxify(checkpoint, hf_config, device)
    return model.to(device), tokenizer, class_names


def _build_detoxify(checkpoint: str | None, hf_config: str | None, device: str):
    """Online download, checkpoint + hub config, or checkpoint + local config folder (fully offline)."""
    import torch
    import transformers
    from detoxify import detoxify as dx

    if checkpoint is None:
        try:  # Detoxify's own download from GitHub releases (online users)
            return dx.load_checkpoint(model_type="original", device=device)
        except Exception as err:
            raise RuntimeError(
                "Detoxify could not download its checkpoint (it needs GitHub and the Hugging Face hub). "
                f"Offline, point {ENV_DETOXIFY_CHECKPOINT} at a local .ckpt file (and "
                f"{ENV_DETOXIFY_HF_CONFIG} at a folder with the BERT config and tokenizer), "
                "or use load_scorer('jigsaw-bilstm'), which works offline."
            ) from err
    if hf_config is None:
        # Needs bert-base-uncased's config and tokenizer from the hub or the local Hugging Face cache.
        try:
            return dx.load_checkpoint(checkpoint=checkpoint, device=device)
        except OSError as err:
            raise RuntimeError(
                f"Detoxify needs the config and tokenizer files of its base model (e.g. bert-base-uncased). "
                f"Offline, save them into a folder and set {ENV_DETOXIFY_HF_CONFIG}=/that/folder "
                f"or name the folder '{HF_CONFIG_FOLDER}' next to the checkpoint."
            ) from err
    # Detoxify 0.5.4's own `huggingface_config_path` still calls from_pretrained("bert-base-uncased")
    # first (unitaryai/detoxify PR #126), so offline we repeat its few loading lines with the local folder.
    loaded = torch.load(checkpoint, map_location=device, weights_only=False)
    if "config" not in loaded or "state_dict" not in loaded:
        raise ValueError(f"{checkpoint} is not a Detoxify checkpoint (needs 'config' and 'state_dict').")
    args = loaded["config"]["arch"]["args"]
    model_class = getattr(transformers, args["model_name"])
    config = model_class.config_class.from_pretrained(hf_config, num_labels=args["num_classes"],
                                                      local_files_only=True)
    model = model_class.from_pretrained(None, config=config, state_dict=loaded["state_dict"],
                                        local_files_only=True)
    tokenizer = getattr(transformers, args["tokenizer_name"]).from_pretrained(hf_config, local_files_only=True)
    # Same renaming Detoxify applies, so the labels read the same on every path.
    rename = {"toxic": "toxicity", "identity_hate": "identity_attack", "severe_toxic": "severe_toxicity"}
    class_names = [rename.get(c, c) for c in loaded["config"]["dataset"]["args"]["classes"]]
    return model, tokenizer, class_names


class DetoxifyScorer(ToxicityScorer):
    """Detoxify's BERT classifier ("original": Jigsaw Toxic Comment labels), scored in batches.

    Where the files come from:

    * ``checkpoint`` (or env ``DEBIAS_DETOXIFY_CHECKPOINT``): a Detoxify ``.ckpt``; without one, Detoxify
      downloads ``toxic_original-c1212f89.ckpt`` from GitHub (online users only).
    * ``huggingface_config_path`` (or env ``DEBIAS_DETOXIFY_HF_CONFIG``, or a folder named
      ``huggingface_config`` next to the checkpoint): the base model's ``config.json`` and tokenizer files
      (``vocab.txt``, ``tokenizer_config.json``), needed offline. Make it once on a connected machine::

          transformers.BertConfig.from_pretrained("bert-base-uncased").save_pretrained(folder)
          transformers.BertTokenizer.from_pretrained("bert-base-uncased").save_pretrained(folder)

    Scores equal ``Detoxify(...).predict(texts)``; we only split long lists into batches. Example::

        load_scorer("detoxify").labels(["you are an idiot"])["insult"]

    Taught in notebooks/05_bias_metrics.ipynb.
    """

    name = "detoxify"

    def __init__(self, checkpoint: str | os.PathLike | None = None,
                 huggingface_config_path: str | os.PathLike | None = None,
                 device: str = "cpu", batch_size: int = 32):
        checkpoint = checkpoint or os.environ.get(ENV_DETOXIFY_CHECKPOINT) or None
        if checkpoint is not None and not Path(checkpoint).is_file():
            raise FileNotFoundError(f"Detoxify checkpoint not found: {checkpoint} (from {ENV_DETOXIFY_CHECKPOINT}?)")
        hf_config = huggingface_config_path or os.environ.get(ENV_DETOXIFY_HF_CONFIG) or None
        if hf_config is None and checkpoint is not None and (Path(checkpoint).parent / HF_CONFIG_FOLDER).is_dir():
            hf_config = Path(checkpoint).parent / HF_CONFIG_FOLDER
        self._model, self._tokenizer, class_names = _load_detoxify(
            str(Path(checkpoint).resolve()) if checkpoint else None,
            str(Path(hf_config).resolve()) if hf_config else None, str(device))
        self.label_names = tuple(class_names)
        self.score_label = next((c for c in ("toxicity", "toxic") if c in self.label_names), "")
        if not self.score_label:
            raise ValueError(f"This Detoxify checkpoint has no toxicity label: {self.label_names}")
        # A tokenizer saved without model_max_length would let "truncation=True" pass texts longer than
        # the position embeddings; cap it so long generations are cut instead of crashing the model.
        max_positions = getattr(self._model.config, "max_position_embeddings", None)
        if max_positions and self._tokenizer.model_max_length > max_positions:
            self._tokenizer.model_max_length = max_positions
        self.device = device
        self.batch_size = batch_size

    def _predict(self, batch: list[str]) -> np.ndarray:
        import torch

        # The same steps as Detoxify.predict: pad to the longest in the batch, sigmoid of the logits.
        self._model.eval()
        with torch.no_grad():
            inputs = self._tokenizer(batch, return_tensors="pt", truncation=True, padding=True).to(self.device)
            return torch.sigmoid(self._model(**inputs)[0]).double().cpu().numpy()


# --------------------------------------------------------------------------------------------------
# profanity
# --------------------------------------------------------------------------------------------------
class ProfanityScorer(ToxicityScorer):
    """``alt-profanity-check``: a linear SVM on word n-grams, one label. Fast and purely lexical.

    Example: ``load_scorer("profanity").score(["what the hell"])  # -> array([0.99])``.
    Taught in notebooks/05_bias_metrics.ipynb.
    """

    name = "profanity"
    label_names = ("profanity",)
    score_label = "profanity"

    def __init__(self, batch_size: int = 1024):
        from profanity_check import predict_prob

        self._predict_prob = predict_prob
        self.batch_size = batch_size

    def _predict(self, batch: list[str]) -> np.ndarray:
        return np.asarray(self._predict_prob(batch), dtype=np.float64).reshape(-1, 1)


# --------------------------------------------------------------------------------------------------
# the loader
# --------------------------------------------------------------------------------------------------
SCORERS = {"detoxify": DetoxifyScorer, "jigsaw-bilstm": JigsawBiLSTMScorer, "profanity": ProfanityScorer}


def detoxify_checkpoint_available() -> bool:
    """True when ``DEBIAS_DETOXIFY_CHECKPOINT`` names an existing file (what ``"auto"`` checks)."""
    path = os.environ.get(ENV_DETOXIFY_CHECKPOINT)
    return bool(path) and Path(path).is_file()


def load_scorer(name: str = "auto", **options: Any) -> ToxicityScorer:
    """A toxicity scorer by name: ``"auto"``, ``"detoxify"``, ``"jigsaw-bilstm"`` or ``"profanity"``.

    ``options`` go to the scorer class (``rescale=False`` for raw BiLSTM probabilities, ``checkpoint=``
    for Detoxify, ``batch_size=`` for all). Models are cached in-process, so loading again is cheap.
    ``"auto"`` uses Detoxify when ``DEBIAS_DETOXIFY_CHECKPOINT`` points to a file, else the BiLSTM,
    and says which on stderr. Example::

        scorer = load_scorer("jigsaw-bilstm")
        scorer.score(["Good morning my friend!", "I will kill you!"])   # -> array([0.0027, 0.9407])

    Taught in notebooks/05_bias_metrics.ipynb.
    """
    if name not in SCORER_NAMES:
        raise ValueError(f"Unknown scorer {name!r}; valid names: {', '.join(SCORER_NAMES)}")
    if name == "auto":
        if detoxify_checkpoint_available():
            name, why = "detoxify", f"{ENV_DETOXIFY_CHECKPOINT} points to a checkpoint"
        else:
            name, why = "jigsaw-bilstm", f"no Detoxify checkpoint ({ENV_DETOXIFY_CHECKPOINT} unset or missing)"
        print(f"load_scorer('auto'): using {name!r} because {why}.", file=sys.stderr)
    return SCORERS[name](**options)
