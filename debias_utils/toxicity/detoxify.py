"""Detoxify's BERT classifier ("original", Jigsaw labels) from a local checkpoint or Detoxify's own download.

A checkpoint is read with ``torch.load(weights_only=True)`` (it cannot run code) and, when its name carries a hash
prefix (``toxic_original-c1212f89.ckpt``), checked against it. Taught in ``notebooks/06_bias_metrics.ipynb``.
"""
from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from .base import ToxicityScorer

ENV_DETOXIFY_CHECKPOINT = "DEBIAS_DETOXIFY_CHECKPOINT"
ENV_DETOXIFY_HF_CONFIG = "DEBIAS_DETOXIFY_HF_CONFIG"
# Looked for next to the checkpoint when ENV_DETOXIFY_HF_CONFIG is not set.
HF_CONFIG_FOLDER = "huggingface_config"


@lru_cache(maxsize=2)
def _load_detoxify(checkpoint: str | None, hf_config: str | None, device: str):
    """(model, tokenizer, class names) exactly as Detoxify builds them, on ``device``; cached per checkpoint."""
    model, tokenizer, class_names = _build_detoxify(checkpoint, hf_config, device)
    return model.to(device), tokenizer, class_names


#: Detoxify's official checkpoints carry the first hex digits of their sha256 in the name (torch hub's
#: convention), e.g. ``toxic_original-c1212f89.ckpt``.
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.(?:ckpt|pt|pth)$")


def read_detoxify_checkpoint(path: str | os.PathLike) -> dict:
    """A Detoxify checkpoint's contents (``config`` and ``state_dict``), loaded without running code from it.

    ``torch.load(weights_only=True)`` accepts only tensors and plain data, so a crafted file cannot execute
    anything; a file whose name carries a hash prefix (``toxic_original-c1212f89.ckpt``) must have a sha256
    starting with it. Anything else — a damaged file, a file that is not a checkpoint — is a clear error.
    Example: ``read_detoxify_checkpoint("toxic_original-c1212f89.ckpt")["config"]["arch"]["args"]``.
    Used by :class:`DetoxifyScorer` (``load_scorer("detoxify")``).
    """
    import torch

    from ..assets import sha256_of

    path = Path(path)
    match = _HASH_IN_NAME.search(path.name)
    if match:
        digest = sha256_of(path)
        if not digest.startswith(match.group(1)):
            raise ValueError(f"{path} has sha256 {digest[:16]}…, but its name promises one starting with "
                             f"{match.group(1)} (the torch-hub convention of Detoxify's official files): the "
                             "file is damaged or not the official checkpoint; download it again")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:   # torch raises many kinds on a foreign or damaged file; all mean "not readable"
        first = str(error).splitlines()[0] if str(error) else "empty or damaged file"
        raise ValueError(f"{path} is not a Detoxify checkpoint that can be read safely: torch.load(weights_only=True) "
                         f"refused it ({type(error).__name__}: {first[:120]}). It is damaged, another kind of file, "
                         "or holds objects beyond tensors and plain data — which are not loaded, since reading a "
                         "checkpoint must not run code.") from None
    try:
        args = loaded["config"]["arch"]["args"]
        complete = (all(k in args for k in ("model_type", "model_name", "tokenizer_name", "num_classes"))
                    and isinstance(loaded["config"]["dataset"]["args"]["classes"], list)
                    and isinstance(loaded["state_dict"], dict))
    except (KeyError, TypeError):
        complete = False
    if not complete:
        raise ValueError(f"{path} is not a Detoxify checkpoint: it needs config.arch.args (model_type, model_name, "
                         "tokenizer_name, num_classes), config.dataset.args.classes and a state_dict")
    return loaded


def _build_detoxify(checkpoint: str | None, hf_config: str | None, device: str):
    """Online download, or a local checkpoint with its base model's config from a folder (offline) or the hub."""
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
    loaded = read_detoxify_checkpoint(checkpoint)
    # The few loading lines of Detoxify's own load_checkpoint (0.5.4), on the checked contents: its own
    # `huggingface_config_path` still calls from_pretrained("bert-base-uncased") first (unitaryai/detoxify #126).
    args = loaded["config"]["arch"]["args"]
    source = hf_config or args["model_type"]   # a local folder, or the base model's name on the hub
    model_class = getattr(transformers, str(args["model_name"]), None)
    if not (isinstance(model_class, type) and hasattr(model_class, "config_class")):
        raise ValueError(f"{checkpoint}: model_name {args['model_name']!r} is not a transformers model class")
    try:
        config = model_class.config_class.from_pretrained(source, num_labels=args["num_classes"],
                                                          local_files_only=hf_config is not None)
        model = model_class.from_pretrained(None, config=config, state_dict=loaded["state_dict"],
                                            local_files_only=True)
        tokenizer = getattr(transformers, args["tokenizer_name"]).from_pretrained(
            source, local_files_only=hf_config is not None)
    except OSError as err:
        raise RuntimeError(
            f"Detoxify needs the config and tokenizer files of its base model ({args['model_type']}). "
            f"Offline, save them into a folder and set {ENV_DETOXIFY_HF_CONFIG}=/that/folder "
            f"or name the folder '{HF_CONFIG_FOLDER}' next to the checkpoint."
        ) from err
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

    Taught in notebooks/06_bias_metrics.ipynb.
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


def detoxify_checkpoint_available() -> bool:
    """True when ``DEBIAS_DETOXIFY_CHECKPOINT`` names an existing file (what ``load_scorer("auto")`` checks)."""
    path = os.environ.get(ENV_DETOXIFY_CHECKPOINT)
    return bool(path) and Path(path).is_file()
