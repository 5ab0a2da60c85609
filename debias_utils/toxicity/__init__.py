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

Taught in ``notebooks/06_bias_metrics.ipynb``.
"""
from __future__ import annotations

import sys
from typing import Any

from .base import ToxicityScorer
from .bilstm import JIGSAW_LABELS, TOX_BLOCK_RESCALE, JigsawBiLSTMScorer
from .detoxify import (ENV_DETOXIFY_CHECKPOINT, ENV_DETOXIFY_HF_CONFIG, HF_CONFIG_FOLDER, DetoxifyScorer,
                       detoxify_checkpoint_available, read_detoxify_checkpoint)
from .profanity import ProfanityScorer

SCORER_NAMES = ("auto", "detoxify", "jigsaw-bilstm", "profanity")
SCORERS = {"detoxify": DetoxifyScorer, "jigsaw-bilstm": JigsawBiLSTMScorer, "profanity": ProfanityScorer}


def load_scorer(name: str = "auto", **options: Any) -> ToxicityScorer:
    """A toxicity scorer by name: ``"auto"``, ``"detoxify"``, ``"jigsaw-bilstm"`` or ``"profanity"``.

    ``options`` go to the scorer class (``rescale=False`` for raw BiLSTM probabilities, ``checkpoint=``
    for Detoxify, ``batch_size=`` for all). Models are cached in-process, so loading again is cheap.
    ``"auto"`` uses Detoxify when ``DEBIAS_DETOXIFY_CHECKPOINT`` points to a file, else the BiLSTM,
    and says which on stderr. Example::

        scorer = load_scorer("jigsaw-bilstm")
        scorer.score(["Good morning my friend!", "I will kill you!"])   # -> array([0.0027, 0.9407])

    Taught in notebooks/06_bias_metrics.ipynb.
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


__all__ = ["DetoxifyScorer", "ENV_DETOXIFY_CHECKPOINT", "ENV_DETOXIFY_HF_CONFIG", "HF_CONFIG_FOLDER", "JIGSAW_LABELS",
           "JigsawBiLSTMScorer", "ProfanityScorer", "SCORERS", "SCORER_NAMES", "TOX_BLOCK_RESCALE", "ToxicityScorer",
           "detoxify_checkpoint_available", "load_scorer", "read_detoxify_checkpoint"]
