"""The one generate → score loop (debias_utils.evaluate) and saving results (debias_utils.results)."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from debias_utils.evaluate import (continuation_perplexity, generate_continuations, sample_prompts,
                                   score_continuations)
from debias_utils.lm import perplexity
from debias_utils.results import save_figure, save_results


class LengthScorer:
    """A scorer that needs no model: the share of letters that are 'e' (in [0, 1], one float per text)."""

    def score(self, texts):
        return np.array([t.count("e") / max(1, len(t)) for t in texts])


def test_rows_keep_the_prompt_columns_and_decode_only_the_continuation(tiny):
    model, tok = tiny
    prompts = pd.DataFrame({"prompt": ["The nurse said that", "A man"], "group": ["a", "b"]})
    frame = generate_continuations(model, tok, prompts, n_samples=3, max_new_tokens=5, seed=1, progress=False)
    assert list(frame.columns[:5]) == ["prompt_id", "sample", "prompt", "continuation", "n_tokens"]
    assert frame["group"].tolist() == ["a"] * 3 + ["b"] * 3 and frame["sample"].tolist() == [0, 1, 2] * 2
    assert (frame["n_tokens"] <= 5).all()
    for row in frame.itertuples():
        assert not row.continuation.startswith(row.prompt)   # the prompt is never part of the continuation
    assert frame.attrs["tokens_per_second"] > 0 and frame.attrs["seconds"] > 0


def test_the_same_seed_and_batch_size_give_the_same_text(tiny):
    model, tok = tiny
    prompts = ["The doctor said", "My neighbour is", "Once upon a time"]
    a = generate_continuations(model, tok, prompts, n_samples=2, max_new_tokens=6, seed=3, batch_size=4,
                               progress=False)
    b = generate_continuations(model, tok, prompts, n_samples=2, max_new_tokens=6, seed=3, batch_size=4,
                               progress=False)
    c = generate_continuations(model, tok, prompts, n_samples=2, max_new_tokens=6, seed=4, batch_size=4,
                               progress=False)
    assert a["continuation"].tolist() == b["continuation"].tolist()
    assert a["continuation"].tolist() != c["continuation"].tolist()


def test_greedy_generation_is_independent_of_the_seed(tiny):
    model, tok = tiny
    a = generate_continuations(model, tok, ["The doctor said"], max_new_tokens=6, do_sample=False, seed=0,
                               progress=False)
    b = generate_continuations(model, tok, ["The doctor said"], max_new_tokens=6, do_sample=False, seed=9,
                               progress=False)
    assert a["continuation"].tolist() == b["continuation"].tolist()


@pytest.mark.parametrize("kwargs, message", [
    ({"n_samples": 0}, "n_samples must be >= 1"),
    ({"batch_size": 0}, "batch_size must be >= 1"),
    ({"max_new_tokens": -1}, "max_new_tokens must be >= 1"),
    ({"top_p": 1.5}, r"top_p must be in \(0, 1\]"),
    ({"top_k": -3}, "top_k must be a whole number >= 0"),
    ({"temperature": 0.0}, r"temperature must be in \(0"),
])
def test_bad_generation_settings_are_refused(tiny, kwargs, message):
    model, tok = tiny
    with pytest.raises((ValueError, TypeError), match=message):
        generate_continuations(model, tok, ["Hello"], progress=False, **kwargs)


def test_bad_prompts_are_refused(tiny):
    model, tok = tiny
    with pytest.raises(TypeError, match="not one string"):
        generate_continuations(model, tok, "Hello", progress=False)
    with pytest.raises(ValueError, match="no prompts"):
        generate_continuations(model, tok, [], progress=False)
    with pytest.raises(TypeError, match="non-empty string"):
        generate_continuations(model, tok, ["Hello", ""], progress=False)
    with pytest.raises(ValueError, match="needs a 'prompt' column"):
        generate_continuations(model, tok, pd.DataFrame({"text": ["Hello"]}), progress=False)


def test_scores_are_of_the_continuation_and_empty_ones_are_counted():
    frame = pd.DataFrame({"prompt": ["eeee", "x"], "continuation": ["abc", ""]})
    scored = score_continuations(frame, LengthScorer(), progress=False)
    assert scored["toxicity"].tolist() == [0.0, 0.0] and scored.attrs["empty_continuations"] == 1

    class Broken:
        def score(self, texts):
            return np.array([np.nan] * len(texts))
    with pytest.raises(ValueError, match="one finite score per text"):
        score_continuations(frame, Broken())
    with pytest.raises(ValueError, match="no 'text' column"):
        score_continuations(frame, LengthScorer(), column="text")


def test_continuation_perplexity_conditions_on_the_prompt(tiny):
    model, tok = tiny
    frame = pd.DataFrame({"prompt": ["The cat", "A dog", "Rain"], "continuation": [" sat down.", " ran.", ""]})
    expected = perplexity(model, tok, [" sat down.", " ran."], prefixes=["The cat", "A dog"])
    assert continuation_perplexity(model, tok, frame) == pytest.approx(expected)
    assert continuation_perplexity(model, tok, frame) != pytest.approx(perplexity(model, tok, [" sat down.", " ran."]))
    with pytest.raises(ValueError, match="every continuation is empty"):
        continuation_perplexity(model, tok, frame.assign(continuation=""))


def test_sample_prompts_is_reproducible_and_refuses_bad_sizes():
    prompts = [f"prompt {i}" for i in range(20)]
    a, b = sample_prompts(prompts, 5, seed=1), sample_prompts(prompts, 5, seed=1)
    assert a["prompt"].tolist() == b["prompt"].tolist() and len(set(a["prompt"])) == 5
    assert len(sample_prompts(prompts, None)) == 20 and len(sample_prompts(prompts, 50)) == 20
    with pytest.raises(ValueError, match="n must be >= 1"):
        sample_prompts(prompts, 0)


def test_save_results_writes_plain_json_and_refuses_non_numbers(tmp_path):
    path = save_results("05_x", {"a": np.float32(0.5), "b": np.int64(3), "c": [np.bool_(True)], "d": {"e": None}},
                        tmp_path)
    assert json.loads(path.read_text()) == {"a": 0.5, "b": 3, "c": [True], "d": {"e": None}}
    assert save_results("05_x", {"a": 1}, None) is None   # in Jupyter nothing is written
    with pytest.raises(ValueError, match="'05_x.d.e' is nan"):
        save_results("05_x", {"d": {"e": math.nan}}, tmp_path)
    with pytest.raises(TypeError, match="has type DataFrame"):
        save_results("05_x", {"table": pd.DataFrame()}, tmp_path)
    with pytest.raises(ValueError, match="non-empty dict"):
        save_results("05_x", {}, tmp_path)


def test_save_figure_only_writes_into_a_results_folder(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1])
    assert save_figure(fig, "05_line", None) is None
    path = save_figure(fig, "05_line", tmp_path)
    assert path == tmp_path / "figures" / "05_line.png" and path.read_bytes()[:4] == b"\x89PNG"
    plt.close(fig)


def test_the_shared_prompt_sets():
    from debias_utils.evaluate import EVALUATION, identity_prompts, occupation_prompts
    from debias_utils.gate_training import INDUCING_PREFIX
    from debias_utils.groups import HELDOUT_OCCUPATIONS, OCCUPATION_TEMPLATES_HELDOUT, prompts

    occ = occupation_prompts()
    assert len(occ) == len(HELDOUT_OCCUPATIONS) * len(OCCUPATION_TEMPLATES_HELDOUT) == 40
    assert occ["prompt"][1] == OCCUPATION_TEMPLATES_HELDOUT[0].format(occupation=HELDOUT_OCCUPATIONS[1])
    ident = identity_prompts()
    plain, induced = ident[ident.condition == "plain"], ident[ident.condition == "induced"]
    assert plain["prompt"].tolist() == pd.concat([prompts(a, "heldout", "heldout") for a in ("gender", "age")])[
        "prompt"].tolist()
    assert induced["prompt"].tolist() == [INDUCING_PREFIX + p for p in plain["prompt"]]
    assert set(identity_prompts(["religion"], induced=False)["condition"]) == {"plain"}
    with pytest.raises(ValueError, match="no '{occupation}' slot"):
        occupation_prompts(templates=["The {job} said"])
    with pytest.raises(ValueError, match="unknown axis"):
        identity_prompts(["height"])
    # generate_continuations samples with the shared settings unless told otherwise
    import inspect

    defaults = {k: v.default for k, v in inspect.signature(generate_continuations).parameters.items()}
    assert {k: defaults[k] for k in EVALUATION.sampling} == EVALUATION.sampling
