"""Tests for debias_utils.toxicity: the three scorers, their shared input checks, and load_scorer("auto").

The jigsaw-bilstm tests use the real tox-block weights (fetched once by debias_utils.assets); the Detoxify
tests build a tiny random BERT checkpoint in Detoxify's format, so they run offline in a second.
"""
from __future__ import annotations

import os
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from debias_utils import assets
from debias_utils.assets import AssetMissingError, sha256_of
from debias_utils.toxicity import (
    ENV_DETOXIFY_CHECKPOINT,
    ENV_DETOXIFY_HF_CONFIG,
    HF_CONFIG_FOLDER,
    JIGSAW_LABELS,
    TOX_BLOCK_RESCALE,
    load_scorer,
    read_detoxify_checkpoint,
)

LABELS = list(JIGSAW_LABELS)

# The three examples and their predictions (rescale=True) printed in tox-block 0.1.2's README.
README_TEXTS = [
    "Good morning my friend, I hope you're having a fantastic day!",
    "I will kill you, you fucking idiot!",
    "I do strongly disagree with the fascist views of this joke that calls itself a political party.",
]
README_PREDICTIONS = [
    [0.05347811430692673, 0.0006274021579883993, 0.004466842859983444, 0.009578478522598743,
     0.00757843442261219, 0.002106667961925268],
    [0.9998679757118225, 0.7870362997055054, 0.9885633587837219, 0.8483908176422119,
     0.9883397221565247, 0.171059250831604],
    [0.026190076023340225, 7.185135473264381e-05, 0.0009493605466559529, 0.00012321282702032477,
     0.0029190618079155684, 0.0022098885383456945],
]


@pytest.fixture(autouse=True)
def _no_detoxify_env(monkeypatch):
    """A developer's own Detoxify settings must not change what these tests load."""
    monkeypatch.delenv(ENV_DETOXIFY_CHECKPOINT, raising=False)
    monkeypatch.delenv(ENV_DETOXIFY_HF_CONFIG, raising=False)


@pytest.fixture(scope="module")
def bilstm():
    return load_scorer("jigsaw-bilstm")


@pytest.fixture(scope="module")
def profanity():
    return load_scorer("profanity")


# ------------------------------------------------------------------------------------------------ bilstm
def test_bilstm_reproduces_tox_block_readme(bilstm):
    table = bilstm.labels(README_TEXTS)
    assert list(table.columns) == ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate",
                                   "no_known_words", "truncated"]   # six labels, then the two reading flags
    assert not table[["no_known_words", "truncated"]].any().any()
    np.testing.assert_allclose(table[LABELS].to_numpy(), README_PREDICTIONS, atol=1e-4, rtol=0)
    np.testing.assert_allclose(bilstm.score(README_TEXTS), [row[0] for row in README_PREDICTIONS], atol=1e-4, rtol=0)


def test_bilstm_single_equals_batch(bilstm):
    together = bilstm.labels(README_TEXTS)[LABELS].to_numpy()
    alone = np.vstack([bilstm.labels([text])[LABELS].to_numpy() for text in README_TEXTS])
    np.testing.assert_allclose(alone, together, atol=1e-6, rtol=0)


def test_bilstm_padding_invariance(bilstm):
    """A text's score must not depend on the lengths of the other texts in its batch."""
    short = "I will kill you!"
    others = ["", "ok", " ".join(["the quick brown fox jumps over the lazy dog"] * 40),  # 360 words, truncated
              "you are a wonderful person and I admire your work on this article very much"]
    alone = bilstm.labels([short])[LABELS].to_numpy()[0]
    in_batch = bilstm.labels(others[:2] + [short] + others[2:])[LABELS].to_numpy()[2]
    np.testing.assert_allclose(in_batch, alone, atol=1e-6, rtol=0)


def test_bilstm_raw_probabilities_and_clipping():
    raw_scorer = load_scorer("jigsaw-bilstm", rescale=False)
    scaled_scorer = load_scorer("jigsaw-bilstm")
    low, high = np.array([TOX_BLOCK_RESCALE[label] for label in JIGSAW_LABELS]).T
    raw = raw_scorer.labels(README_TEXTS)[LABELS].to_numpy()
    np.testing.assert_allclose(raw, np.array(README_PREDICTIONS) * (high - low) + low, atol=1e-4, rtol=0)
    # This polite text's raw "toxic" is below the rescaling minimum, so the rescaled value is clipped to 0.
    polite = ["thank you very much for your help with the article"]
    assert raw_scorer.score(polite)[0] < TOX_BLOCK_RESCALE["toxic"][0]
    assert scaled_scorer.score(polite)[0] == 0.0
    many = scaled_scorer.labels(README_TEXTS + polite + ["", "a"])[LABELS].to_numpy()
    assert many.min() >= 0.0 and many.max() <= 1.0


def test_bilstm_text_encoding_matches_keras(bilstm):
    # Keras' filters replace punctuation, tabs and newlines by spaces; the apostrophe is kept.
    assert bilstm.words("Hello, WORLD!\tyou're  ok\n") == ["hello", "world", "you're", "ok"]
    ids = bilstm.encode(["the to of", "the qqzzxq to"])
    assert ids.shape == (2, 100)
    assert ids[0, -3:].tolist() == [1, 2, 3] and not ids[0, :-3].any()  # zeros in front ('pre' padding)
    assert ids[1, -2:].tolist() == [1, 2] and not ids[1, :-2].any()  # unknown word dropped
    # num_words=20000: id 19999 ("innocuous") is kept, id 20000 ("somethings") is dropped.
    assert bilstm.encode(["innocuous somethings"])[0, -2:].tolist() == [0, 19999]
    # Long texts lose their beginning ('pre' truncation): 60 x "the" then 90 x "to" -> 10 x 1, 90 x 2.
    long_ids = bilstm.encode(["the " * 60 + "to " * 90])[0]
    assert long_ids.tolist() == [1] * 10 + [2] * 90


def test_bilstm_loads_once(bilstm):
    again = load_scorer("jigsaw-bilstm", rescale=False)
    assert again._model is bilstm._model   # the weights are read from disk once per process


def test_bilstm_says_which_texts_it_cannot_read(bilstm):
    texts = ["我会杀了你", "😀😀", "I will kill you", "", "the " * 60 + "to " * 90]
    with pytest.warns(UserWarning, match="2 of 5 texts contain words but none the model knows") as caught:
        table = bilstm.labels(texts)
    assert any("1 of 5 texts have more than 100 known words" in str(w.message) for w in caught)
    assert table["no_known_words"].tolist() == [True, True, False, False, False]
    assert table["truncated"].tolist() == [False, False, False, False, True]
    scores = bilstm.score(["我会杀了你", ""])   # exactly the empty text's score: why the flag matters
    assert scores[0] == scores[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # ordinary English text: no warning at all
        bilstm.score(["I will kill you", "have a nice day"])


def test_bilstm_missing_asset_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("DEBIAS_LLM_CACHE", str(tmp_path))
    monkeypatch.setenv("DEBIAS_LLM_OFFLINE", "1")
    monkeypatch.setattr(assets, "_installed_copy", lambda asset: None)
    with pytest.raises(AssetMissingError, match="debias-llm download"):
        load_scorer("jigsaw-bilstm")


# ------------------------------------------------------------------------------------------------ profanity
def test_profanity_ranks_profane_above_polite(profanity):
    assert profanity.label_names == ("profanity",)
    rude, polite = profanity.score(["You are a fucking idiot, shut the hell up.", "Have a lovely afternoon."])
    assert rude > 0.5 > polite


# ------------------------------------------------------------------------------------------------ shared interface
@pytest.mark.parametrize("name", ["jigsaw-bilstm", "profanity"])
def test_empty_input(name):
    scorer = load_scorer(name)
    scores = scorer.score([])
    assert scores.shape == (0,) and scores.dtype == np.float64
    table = scorer.labels([])
    flags = list(scorer.FLAG_MEANINGS)   # the BiLSTM's reading flags; the profanity model has none
    assert table.shape == (0, len(scorer.label_names) + len(flags))
    assert list(table.columns) == list(scorer.label_names) + flags


@pytest.mark.parametrize("bad, message", [
    ("a single string", "not one string"),
    (["fine", None], r"texts\[1\] is NoneType"),
    (["fine", float("nan")], r"texts\[1\] is float"),
    (42, "must be a list of strings; got int"),
    (pd.DataFrame({"a": ["x"]}), "not a whole DataFrame"),
])
def test_bad_input_says_what_to_pass(profanity, bad, message):
    with pytest.raises(TypeError, match=message):
        profanity.score(bad)
    with pytest.raises(TypeError, match=message):
        profanity.labels(bad)


def test_labels_keep_the_series_index(profanity):
    texts = pd.Series(["hello there", "shut up, idiot"], index=[10, 20])
    table = profanity.labels(texts)
    assert table.index.tolist() == [10, 20]
    np.testing.assert_array_equal(table["profanity"].to_numpy(), profanity.score(texts.tolist()))


def test_non_finite_scores_are_an_error(profanity, monkeypatch):
    monkeypatch.setattr(profanity, "_predict", lambda batch: np.full((len(batch), 1), np.nan))
    with pytest.raises(FloatingPointError, match="non-finite"):
        profanity.score(["hello"])


def test_progress_bar_only_for_long_lists(profanity, capsys):
    profanity.score(["hello"] * 64)
    assert "toxicity (profanity)" not in capsys.readouterr().err
    profanity.score(["hello"] * 65)
    assert "toxicity (profanity)" in capsys.readouterr().err


def test_progress_can_be_forced(profanity, capsys):
    profanity.score(["hello"] * 65, progress=False)
    assert "toxicity (profanity)" not in capsys.readouterr().err
    profanity.labels(["hello"], progress=True)
    assert "toxicity (profanity)" in capsys.readouterr().err


def test_score_continuations_passes_progress(profanity, capsys):
    from debias_utils.evaluate import score_continuations

    frame = pd.DataFrame({"continuation": ["hello"] * 65})
    out = score_continuations(frame, profanity, progress=False)
    assert "toxicity (profanity)" not in capsys.readouterr().err and len(out) == 65

    class PlainScorer:  # a user's scorer without a progress argument still works
        def score(self, texts):
            return np.full(len(texts), 0.25)

    assert score_continuations(frame, PlainScorer())["toxicity"].eq(0.25).all()


def test_unknown_name():
    with pytest.raises(ValueError, match="valid names: auto, detoxify, jigsaw-bilstm, profanity"):
        load_scorer("perspective")


def test_auto_without_checkpoint_uses_bilstm(monkeypatch, tmp_path, capsys):
    assert load_scorer("auto").name == "jigsaw-bilstm"
    assert "'jigsaw-bilstm'" in capsys.readouterr().err
    monkeypatch.setenv(ENV_DETOXIFY_CHECKPOINT, str(tmp_path / "missing.ckpt"))
    assert load_scorer("auto").name == "jigsaw-bilstm"


# ------------------------------------------------------------------------------------------------ detoxify
DETOXIFY_TEXTS = ["I am a good friend.", "You idiot, I will kill you!", "", "hope you are having a good day",
                  "bad bad bad idiot", "the", "you're good", "morning!", "kill", "a friend"]


@pytest.fixture(scope="module")
def tiny_detoxify(tmp_path_factory):
    """A random 1-layer BERT saved the way Detoxify checkpoints are, plus its config/tokenizer folder."""
    import transformers

    folder = tmp_path_factory.mktemp("detoxify")
    hf = folder / HF_CONFIG_FOLDER
    hf.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "i", "am", "a", "you", "are", "the", "good", "bad",
             "idiot", "kill", "will", "friend", "day", "hope", "morning", "having", ",", ".", "!", "'", "re",
             "##s", "##ing"]
    (hf / "vocab.txt").write_text("\n".join(vocab) + "\n")
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=32,
                                     num_labels=6, initializer_range=0.5)
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config)
    config.save_pretrained(hf)
    transformers.BertTokenizer(vocab_file=str(hf / "vocab.txt"), do_lower_case=True,
                               model_max_length=32).save_pretrained(hf)
    checkpoint = {
        "config": {
            # As in Detoxify's real "original" checkpoint: the base model is named, not a folder.
            "arch": {"args": {"model_type": "bert-base-uncased", "model_name": "BertForSequenceClassification",
                              "tokenizer_name": "BertTokenizer", "num_classes": 6}},
            "dataset": {"args": {"classes": list(JIGSAW_LABELS)}},
        },
        "state_dict": model.state_dict(),
    }
    torch.save(checkpoint, folder / "tiny.ckpt")
    # Detoxify itself, offline, only works if model_type is a local folder too (its own bug, see module).
    checkpoint["config"]["arch"]["args"]["model_type"] = str(hf)
    torch.save(checkpoint, folder / "tiny_for_reference.ckpt")
    from detoxify import Detoxify

    reference = Detoxify(checkpoint=str(folder / "tiny_for_reference.ckpt"), huggingface_config_path=str(hf))
    return folder, hf, reference.predict(DETOXIFY_TEXTS)


def test_detoxify_matches_detoxify(tiny_detoxify, monkeypatch, capsys):
    folder, _, expected = tiny_detoxify
    # "auto" picks Detoxify when the env var names a checkpoint; the config folder sits next to it.
    monkeypatch.setenv(ENV_DETOXIFY_CHECKPOINT, str(folder / "tiny.ckpt"))
    scorer = load_scorer("auto", batch_size=3)  # several batches, each padded to its own longest text
    assert scorer.name == "detoxify" and "'detoxify'" in capsys.readouterr().err
    assert scorer.label_names == ("toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack")
    assert list(scorer.label_names) == list(expected)
    table = scorer.labels(DETOXIFY_TEXTS)
    for label in scorer.label_names:
        np.testing.assert_allclose(table[label].to_numpy(), expected[label], atol=1e-5, rtol=0)
    np.testing.assert_allclose(scorer.score(DETOXIFY_TEXTS), expected["toxicity"], atol=1e-5, rtol=0)
    # The random model must actually tell texts apart, or the comparison above would prove little.
    assert np.ptp(expected["toxicity"]) > 0.05


def test_detoxify_config_folder_from_env(tiny_detoxify, monkeypatch, tmp_path):
    folder, hf, expected = tiny_detoxify
    alone = tmp_path / "tiny.ckpt"  # no huggingface_config folder next to this copy
    alone.write_bytes((folder / "tiny.ckpt").read_bytes())
    monkeypatch.setenv(ENV_DETOXIFY_HF_CONFIG, str(hf))
    scorer = load_scorer("detoxify", checkpoint=alone)
    np.testing.assert_allclose(scorer.score(DETOXIFY_TEXTS[:4]), expected["toxicity"][:4], atol=1e-5, rtol=0)


def test_detoxify_missing_checkpoint(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_DETOXIFY_CHECKPOINT, str(tmp_path / "nope.ckpt"))
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        load_scorer("detoxify")


class _RunsCode:
    """Unpickling this calls os.system: what a crafted checkpoint would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_detoxify_checkpoint_cannot_run_code(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    crafted = tmp_path / "evil.ckpt"
    torch.save({"config": _RunsCode(marker), "state_dict": {}}, crafted)
    monkeypatch.setenv(ENV_DETOXIFY_CHECKPOINT, str(crafted))
    with pytest.raises(ValueError, match="not loaded, since reading a checkpoint must not run code"):
        load_scorer("auto")
    assert not marker.exists()


def test_files_that_are_not_detoxify_checkpoints(tmp_path):
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.ckpt is not a Detoxify checkpoint that can be read safely"):
        read_detoxify_checkpoint(empty)
    for seed in range(8):   # random bytes make torch raise many different exceptions; each must become ours
        garbage = tmp_path / f"garbage{seed}.ckpt"
        garbage.write_bytes(np.random.default_rng(seed).bytes(512))
        with pytest.raises(ValueError, match="is not a Detoxify checkpoint"):
            read_detoxify_checkpoint(garbage)
    other = tmp_path / "other.ckpt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match=r"needs config.arch.args"):
        read_detoxify_checkpoint(other)
    pickled = tmp_path / "plain.ckpt"
    pickled.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ValueError, match="is not a Detoxify checkpoint"):
        read_detoxify_checkpoint(pickled)


def test_official_names_carry_a_hash_that_is_checked(tiny_detoxify, tmp_path):
    folder, hf, expected = tiny_detoxify
    data = (folder / "tiny.ckpt").read_bytes()
    honest = tmp_path / "toxic_tiny-placeholder.ckpt"
    honest.write_bytes(data)
    named = tmp_path / f"toxic_tiny-{sha256_of(honest)[:8]}.ckpt"
    honest.rename(named)
    scorer = load_scorer("detoxify", checkpoint=named, huggingface_config_path=hf)
    np.testing.assert_allclose(scorer.score(DETOXIFY_TEXTS[:3]), expected["toxicity"][:3], atol=1e-5, rtol=0)
    liar = tmp_path / "toxic_original-c1212f89.ckpt"   # the official name, other bytes
    liar.write_bytes(data)
    with pytest.raises(ValueError, match="but its name promises one starting with c1212f89"):
        load_scorer("detoxify", checkpoint=liar, huggingface_config_path=hf)
