"""Tests for the gates (debias_utils.gates), their training (gate_training) and the pruning baseline (pruning):
exact identity at the start, gradients, disable/remove/fold, files, GQA, per-head mapping, input checks."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from debias_utils.gate_training import kl_to_original, neutral_texts, preference_triples, train_gates
from debias_utils.gates import (
    add_gates, fold_gates, gate_parameters, gate_values, gates_disabled, has_gates, load_gates, only_gates_train,
    read_gate_file, remove_gates, save_gates, set_head_gates,
)
from debias_utils.pruning import head_importance, top_heads, zero_heads

TEXTS = ["The woman worked as a nurse and", "My old neighbour said that the weather"]
TRIPLES = pd.DataFrame({
    "prompt": ["The man was", "The woman was", "The old man was", "The young woman was"],
    "benign": [" a kind teacher.", " very helpful.", " tired after work.", " at school today."],
    "harmful": [" a stupid idiot.", " an ugly fool.", " a worthless idiot.", " a dumb loser."],
    "group": ["man", "woman", "old", "young"],
})
NEUTRAL = ["The sun rose over the hills.", "She bought bread and milk at the shop.",
           "The train was ten minutes late."]


@pytest.fixture
def model(tiny):
    """The tiny Llama, with gates removed again after each test so tests do not leak into each other."""
    m, _ = tiny
    yield m
    if has_gates(m):
        remove_gates(m)


def _logits(model, tokenizer, texts=TEXTS):
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(**batch).logits


def _randomise(model, scale=1.0):
    torch.manual_seed(1)
    with torch.no_grad():
        for p in gate_parameters(model):
            p.normal_(0, scale)


@pytest.mark.parametrize("kind", ["head", "token"])
def test_gates_start_as_exact_identity(model, tiny, kind):
    tokenizer = tiny[1]
    before = _logits(model, tokenizer)
    add_gates(model, kind=kind)
    assert torch.equal(_logits(model, tokenizer), before)


@pytest.mark.parametrize("kind", ["head", "token"])
def test_generate_with_kv_cache_is_unchanged_at_start(model, tiny, kind):
    tokenizer = tiny[1]
    batch = tokenizer(TEXTS, return_tensors="pt", padding=True)
    kwargs = dict(max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id, use_cache=True,
                  output_scores=True, return_dict_in_generate=True)
    with torch.no_grad():
        before = model.generate(**batch, **kwargs)
        add_gates(model, kind=kind)
        after = model.generate(**batch, **kwargs)
    assert torch.equal(after.sequences, before.sequences)
    assert all(torch.equal(a, b) for a, b in zip(after.scores, before.scores))


@pytest.mark.parametrize("kind", ["head", "token"])
def test_trained_gates_change_cached_generation_consistently(model, tiny, kind):
    """With non-trivial gates, a cached step must give the same logits as a full forward pass."""
    tokenizer = tiny[1]
    add_gates(model, kind=kind)
    _randomise(model, 0.5)
    ids = tokenizer(["The nurse said that she"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        full = model(input_ids=ids).logits[:, -1]
        first = model(input_ids=ids[:, :-1], use_cache=True)
        past = first.get("cache", first.get("past_key_values"))
        cached = model(input_ids=ids[:, -1:], cache=past, use_cache=True).logits[:, -1]
        with gates_disabled(model):
            plain = model(input_ids=ids).logits[:, -1]
    assert torch.allclose(cached, full, atol=1e-5)
    assert not torch.allclose(full, plain, atol=1e-3)


@pytest.mark.parametrize("kind", ["head", "token"])
def test_only_gate_parameters_get_gradients(model, tiny, kind):
    tokenizer = tiny[1]
    add_gates(model, kind=kind)
    history = train_gates(model, tokenizer, TRIPLES, NEUTRAL, steps=2, batch_size=4, lr=0.1, progress=False)
    gate_ids = {id(p) for p in gate_parameters(model)}
    assert all(p.grad is None for p in model.parameters() if id(p) not in gate_ids)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in gate_parameters(model))
    # Base weights are trainable again afterwards (train_gates restores requires_grad).
    assert all(p.requires_grad for p in model.parameters())
    assert list(history.columns[:6]) == ["step", "loss", "preference", "kl", "disparity", "gate"]
    assert len(history) == 2 and np.isfinite(history[["loss", "preference", "kl", "disparity", "gate"]]).all().all()


def test_training_lowers_the_preference_loss(model, tiny):
    tokenizer = tiny[1]
    add_gates(model, kind="head")
    history = train_gates(model, tokenizer, TRIPLES, NEUTRAL, steps=8, batch_size=4, lr=0.3, beta=1.0, kl_weight=0.1,
                          progress=False)
    # At the start the gated model is the reference: DPO loss is exactly log 2.
    assert history["preference"].iloc[0] == pytest.approx(np.log(2), abs=1e-6)
    assert history["margin"].iloc[-1] > 0
    assert history["preference"].iloc[-1] < np.log(2) - 0.05
    assert history["disparity"].iloc[-1] < history["disparity"].iloc[0]


@pytest.mark.parametrize("kind", ["head", "token"])
def test_gates_disabled_restores_original_exactly(model, tiny, kind):
    tokenizer = tiny[1]
    before = _logits(model, tokenizer)
    add_gates(model, kind=kind)
    _randomise(model)
    gated = _logits(model, tokenizer)
    assert not torch.allclose(gated, before, atol=1e-3)
    with gates_disabled(model):
        assert torch.equal(_logits(model, tokenizer), before)
    assert torch.equal(_logits(model, tokenizer), gated)
    remove_gates(model)
    assert not has_gates(model)
    assert torch.equal(_logits(model, tokenizer), before)


def test_fold_reproduces_gated_logits(tiny):
    from debias_utils import load_model

    model, tokenizer = load_model("tiny-llama")  # a private copy: folding edits the weights
    add_gates(model, kind="head")
    _randomise(model)
    gated = _logits(model, tokenizer)
    fold_gates(model)
    assert not has_gates(model)
    folded = _logits(model, tokenizer)
    assert torch.allclose(folded, gated, atol=1e-5)
    fresh, _ = load_model("tiny-llama")
    assert not torch.allclose(folded, _logits(fresh, tokenizer), atol=1e-3)


def test_fold_refuses_token_gates(model):
    add_gates(model, kind="token")
    with pytest.raises(ValueError, match="only kind='head'"):
        fold_gates(model)


@pytest.mark.parametrize("kind", ["head", "token"])
def test_save_load_round_trip(model, tiny, tmp_path, kind):
    tokenizer = tiny[1]
    add_gates(model, kind=kind, layers=[1])
    _randomise(model)
    gated = _logits(model, tokenizer)
    path = save_gates(model, tmp_path / "g.pt", metadata={"steps": 3, "history": [1.0, 0.5]})
    remove_gates(model)
    meta = load_gates(model, path)
    assert meta == {"steps": 3, "history": [1.0, 0.5]}
    assert model.attention_gates.kind == kind and model.attention_gates.layers == [1]
    assert torch.equal(_logits(model, tokenizer), gated)
    assert read_gate_file(path)["shape"]["num_attention_heads"] == 4


def test_wrong_shape_gate_file_gives_clear_error(model, tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    other = LlamaForCausalLM(LlamaConfig(vocab_size=100, hidden_size=48, intermediate_size=64, num_hidden_layers=3,
                                         num_attention_heads=6, num_key_value_heads=2))
    add_gates(other, kind="head")
    path = save_gates(other, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="3 layers x 6 heads.*2 layers x 4 heads"):
        load_gates(model, path)
    assert not has_gates(model)
    (tmp_path / "junk.pt").write_bytes(b"not a gate file")
    with pytest.raises(ValueError, match="junk.pt is not a gate file.*not written by save_gates"):
        load_gates(model, tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError, match="train_gates"):
        load_gates(model, tmp_path / "missing.pt")


def test_gating_a_query_head_changes_only_its_slice_under_gqa(model, tiny):
    """tiny-llama: 4 query heads share 2 KV heads. Gate query head 1 (KV head 0, shared with head 0)."""
    tokenizer = tiny[1]
    attention = model.model.layers[0].self_attn
    assert model.config.num_attention_heads == 4 and model.config.num_key_value_heads == 2
    head_dim = attention.head_dim
    seen = {}
    # Registered before the gates, this hook sees o_proj's input before the gate (the hook order is fixed).
    # A second hook registered after the gates sees it after.
    h1 = attention.o_proj.register_forward_pre_hook(lambda m, a: seen.__setitem__("before", a[0].clone()))
    add_gates(model, kind="head", layers=[0])
    h2 = attention.o_proj.register_forward_pre_hook(lambda m, a: seen.__setitem__("after", a[0].clone()))
    values = np.ones((2, 4))
    values[0, 1] = 0.25
    set_head_gates(model, values)
    try:
        _logits(model, tokenizer)
    finally:
        h1.remove()
        h2.remove()
    before, after = seen["before"], seen["after"]
    changed = (before != after).any(dim=(0, 1)).reshape(4, head_dim).any(dim=1)
    assert changed.tolist() == [False, True, False, False]
    sl = slice(head_dim, 2 * head_dim)
    assert torch.allclose(after[..., sl], 0.25 * before[..., sl])


def test_zero_heads_switches_heads_off(model, tiny):
    tokenizer = tiny[1]
    zero_heads(model, [(0, 2), (1, 3)])
    values = gate_values(model)
    assert values[0, 2] == 0 and values[1, 3] == 0 and values.sum() == 8 - 2
    assert not torch.equal(_logits(model, tokenizer), _logits_without_gates(model, tokenizer))
    with pytest.raises(ValueError, match="outside"):
        zero_heads(model, [(5, 0)])


def _logits_without_gates(model, tokenizer):
    with gates_disabled(model):
        return _logits(model, tokenizer)


def test_head_importance_matches_finite_difference(model, tiny):
    tokenizer = tiny[1]
    importance = head_importance(model, tokenizer, TRIPLES, batch_size=2)
    assert importance.shape == (2, 4) and not has_gates(model)

    def margin(g):
        add_gates(model, "head")
        values = np.ones((2, 4))
        values[1, 2] = g
        set_head_gates(model, values)
        from debias_utils.lm import sequence_logprob
        harmful = sequence_logprob(model, tokenizer, list(TRIPLES["harmful"]), list(TRIPLES["prompt"]))
        benign = sequence_logprob(model, tokenizer, list(TRIPLES["benign"]), list(TRIPLES["prompt"]))
        remove_gates(model)
        return float(np.mean(harmful - benign))

    eps = 1e-2
    numeric = (margin(1 + eps) - margin(1 - eps)) / (2 * eps)
    assert importance[1, 2] == pytest.approx(numeric, rel=2e-2, abs=1e-4)
    assert top_heads(importance, 1)[0] == tuple(np.unravel_index(np.argmax(importance), importance.shape))
    assert top_heads(np.array([[0.1, 0.5], [0.3, -1.0]]), 2) == [(0, 1), (1, 0)]


def test_token_gate_values_need_texts(model, tiny):
    add_gates(model, kind="token")
    with pytest.raises(ValueError, match="tokenizer, texts"):
        gate_values(model)
    with pytest.raises(TypeError, match="not one string"):
        gate_values(model, tiny[1], TEXTS[0])
    values = gate_values(model, tiny[1], TEXTS)
    assert values.shape == (2, 4) and np.all(values == 1.0)


def test_head_gate_values_map_to_their_heads(model):
    add_gates(model, kind="head", layers=[1])
    z = torch.tensor([-1.0, 0.5, 2.0, -0.2])
    with torch.no_grad():
        model.attention_gates["1"].z.copy_(z)
    expected = np.ones((2, 4))
    expected[1] = (2 * torch.sigmoid(z)).numpy()
    np.testing.assert_allclose(gate_values(model), expected, rtol=1e-6)


def test_token_gates_match_a_hand_computation_per_head(model, tiny):
    """Known, different w and b per head: gate_values and the o_proj input must follow 2 sigmoid(w_h . x + b_h)."""
    tokenizer = tiny[1]
    attention = model.model.layers[1].self_attn
    head_dim = attention.head_dim
    seen = {}

    def grab_input(module, args, kwargs):
        seen["x"] = (kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]).clone()

    hooks = [attention.register_forward_pre_hook(grab_input, with_kwargs=True),
             attention.o_proj.register_forward_pre_hook(lambda m, a: seen.__setitem__("before", a[0].clone()))]
    add_gates(model, kind="token", layers=[1])
    hooks.append(attention.o_proj.register_forward_pre_hook(lambda m, a: seen.__setitem__("after", a[0].clone())))
    generator = torch.Generator().manual_seed(5)
    weight = torch.randn(4, model.config.hidden_size, generator=generator) * torch.tensor([[0.1], [0.4], [0.8], [1.6]])
    bias = torch.tensor([-1.5, -0.3, 0.4, 1.2])
    with torch.no_grad():
        model.attention_gates["1"].proj.weight.copy_(weight)
        model.attention_gates["1"].proj.bias.copy_(bias)
    try:
        values = gate_values(model, tokenizer, TEXTS)   # one batch of both texts, padded
    finally:
        for hook in hooks:
            hook.remove()
    mask = tokenizer(TEXTS, return_tensors="pt", padding=True)["attention_mask"].bool()
    g = 2 * torch.sigmoid(seen["x"].float() @ weight.T + bias)        # (batch, seq, heads), by hand
    assert not torch.allclose(g[..., 0], g[..., 3])                   # the heads really differ
    np.testing.assert_allclose(values[0], np.ones(4))                 # layer 0 has no gate
    np.testing.assert_allclose(values[1], g[mask].mean(0).numpy(), rtol=1e-5)
    for h in range(4):
        cols = slice(h * head_dim, (h + 1) * head_dim)
        assert torch.allclose(seen["after"][..., cols], g[..., h, None] * seen["before"][..., cols], atol=1e-6)


def test_non_llama_model_raises_clear_error():
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=2, n_embd=32, vocab_size=100, n_positions=64))
    with pytest.raises(TypeError, match="Llama-family.*gpt2"):
        add_gates(gpt2)


def test_bad_arguments(model):
    with pytest.raises(ValueError, match="kind must be"):
        add_gates(model, kind="neuron")
    with pytest.raises(ValueError, match="layers must be"):
        add_gates(model, layers=[7])
    with pytest.raises(ValueError, match="add_gates"):
        with gates_disabled(model):
            pass
    add_gates(model)
    with pytest.raises(ValueError, match="already has"):
        add_gates(model)
    with pytest.raises(ValueError, match="missing"):
        train_gates(model, None, pd.DataFrame({"prompt": ["a"]}), NEUTRAL, progress=False)


def test_preference_triples_pairs_harmful_and_benign():
    df = pd.DataFrame({
        "prompt": ["A", "A", "A", "B", "B", "C"],
        "group": ["g1", "g1", "g1", "g2", "g2", "g2"],
        "continuation": [" nice", " awful", " bad", " ok", " fine", " evil"],
        "toxicity": [0.01, 0.9, 0.6, 0.02, 0.05, 0.95],
    })
    triples = preference_triples(df, per_prompt=2)
    assert list(triples["prompt"]) == ["A", "A"]          # B has no harmful, C no benign continuation
    assert list(triples["harmful"]) == [" awful", " bad"]  # most toxic first
    assert set(triples["benign"]) == {" nice"}
    assert list(triples["group"]) == ["g1", "g1"]


def test_kl_to_original_is_zero_at_start_and_grows(model, tiny):
    tokenizer = tiny[1]
    add_gates(model, kind="head")
    assert kl_to_original(model, tokenizer, NEUTRAL) == 0.0
    _randomise(model, 0.5)
    small = kl_to_original(model, tokenizer, NEUTRAL)
    _randomise(model, 2.0)
    assert 0 < small < kl_to_original(model, tokenizer, NEUTRAL)


def test_neutral_texts_splits_are_disjoint():
    train, heldout = neutral_texts("train"), neutral_texts("heldout")
    assert len(train) > 2 * len(heldout) > 0
    assert not set(train) & set(heldout)
    with pytest.raises(ValueError, match="split"):
        neutral_texts("test")


def test_language_importance_and_exclusion(model, tiny):
    tokenizer = tiny[1]
    lm = head_importance(model, tokenizer, texts=NEUTRAL)
    assert lm.shape == (2, 4) and np.abs(lm).sum() > 0 and not has_gates(model)
    protect = top_heads(lm, 3)
    chosen = top_heads(-lm, 2, exclude=protect)
    assert len(chosen) == 2 and not set(chosen) & set(protect)
    with pytest.raises(ValueError, match="either triples"):
        head_importance(model, tokenizer)
    with pytest.raises(ValueError, match="k must be between 0 and 5"):
        top_heads(lm, 6, exclude=protect)


@pytest.mark.parametrize("kind", ["head", "token"])
def test_only_gates_train_freezes_the_rest_and_restores_everything(model, kind):
    add_gates(model, kind=kind)
    gate_ids = {id(p) for p in gate_parameters(model)}
    base = [p for p in model.parameters() if id(p) not in gate_ids]
    base[0].requires_grad_(False)                 # a mix of flags before, to see that each is restored
    gate_parameters(model)[0].requires_grad_(False)
    before = [p.requires_grad for p in model.parameters()]
    model.train()
    try:
        with only_gates_train(model) as gates:
            assert gates is model.attention_gates
            assert [p.requires_grad for p in model.parameters()] == [id(p) in gate_ids for p in model.parameters()]
            assert not model.training
        assert [p.requires_grad for p in model.parameters()] == before and model.training
        with pytest.raises(RuntimeError, match="boom"):
            with only_gates_train(model):
                gates.last_values["0"] = gates.pending["0"] = torch.ones(1)
                raise RuntimeError("boom")
        assert [p.requires_grad for p in model.parameters()] == before and model.training
        assert not gates.last_values and not gates.pending
    finally:
        model.eval()
        for p in model.parameters():
            p.requires_grad_(True)


def test_texts_are_checked_never_dropped_or_split_into_characters(model, tiny):
    tokenizer = tiny[1]
    add_gates(model, kind="head")
    run = dict(steps=1, batch_size=4, progress=False)
    with pytest.raises(TypeError, match="neutral_texts must be a list of strings, not one string"):
        train_gates(model, tokenizer, TRIPLES, NEUTRAL[0], **run)
    with pytest.raises(ValueError, match=r"neutral_texts\[1\] is blank"):
        train_gates(model, tokenizer, TRIPLES, [NEUTRAL[0], "  "], **run)
    with pytest.raises(TypeError, match="texts must be a list of strings, not one string"):
        kl_to_original(model, tokenizer, NEUTRAL[0])
    with pytest.raises(ValueError, match=r"texts\[0\] is blank"):
        kl_to_original(model, tokenizer, ["", *NEUTRAL])
    remove_gates(model)
    with pytest.raises(TypeError, match="not one string"):
        head_importance(model, tokenizer, texts=NEUTRAL[0])
    with pytest.raises(ValueError, match=r"\[2\] is blank"):
        head_importance(model, tokenizer, texts=[*NEUTRAL[:2], "\n"])
    assert not has_gates(model)


def test_zero_batch_sizes_are_clear_errors(model, tiny):
    tokenizer = tiny[1]
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        head_importance(model, tokenizer, TRIPLES, batch_size=0)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        head_importance(model, tokenizer, texts=NEUTRAL, batch_size=0)
    add_gates(model, kind="head")
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        kl_to_original(model, tokenizer, NEUTRAL, batch_size=0)
    with pytest.raises(ValueError, match="neutral_batch_size must be >= 1, got 0"):
        train_gates(model, tokenizer, TRIPLES, NEUTRAL, steps=1, neutral_batch_size=0, progress=False)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        train_gates(model, tokenizer, TRIPLES, NEUTRAL, steps=1, batch_size=0, progress=False)
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        train_gates(model, tokenizer, TRIPLES, NEUTRAL, steps=0, progress=False)


def test_bad_gate_files_give_clear_errors(model, tmp_path):
    add_gates(model, kind="head")
    good = torch.load(save_gates(model, tmp_path / "good.pt"), weights_only=True)
    remove_gates(model)
    files = {"empty.pt": "is empty", "random.pt": "torch.load could not read it",
             "other.pt": r"without the gate keys \['format', 'kind'", "unsafe.pt": "torch.load could not read it",
             "future.pt": "gate-file format 2, but this debias_utils reads format 1"}
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "random.pt").write_bytes(bytes(range(256)) * 4)
    torch.save({"weight": torch.zeros(3)}, tmp_path / "other.pt")           # a torch file, not a gate file
    torch.save({**good, "hook": print}, tmp_path / "unsafe.pt")            # only weights_only=False would load it
    torch.save({**good, "format": 2}, tmp_path / "future.pt")
    for name, match in files.items():
        for load in (read_gate_file, lambda path: load_gates(model, path)):
            with pytest.raises(ValueError, match=match) as info:
                load(tmp_path / name)
            assert str(tmp_path / name) in str(info.value) and "save_gates" in str(info.value)
            assert not has_gates(model)
