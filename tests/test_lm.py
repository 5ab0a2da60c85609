"""Log-probabilities, cross-entropy, perplexity and the manual generation loop."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from debias_utils import set_seed
from debias_utils.lm import (document_start_id, filter_logits, generate_manual, mean_cross_entropy, pad_batch,
                             perplexity, sequence_logprob, token_logprobs)


def _by_hand(model, tokenizer, prefix, text):
    """Log-probs of text's tokens given [start] + prefix, computed directly from the logits."""
    p_ids = tokenizer(prefix, add_special_tokens=False)["input_ids"] if prefix else []
    t_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([[document_start_id(tokenizer)] + p_ids + t_ids])
    with torch.no_grad():
        logp = model(ids).logits.log_softmax(-1)[0]
    n = 1 + len(p_ids)
    return np.array([logp[n - 1 + i, t].item() for i, t in enumerate(t_ids)])


def test_smollm2_documents_start_with_endoftext(smollm2):
    assert smollm2[1].convert_ids_to_tokens(document_start_id(smollm2[1])) == "<|endoftext|>"


def test_token_logprobs_match_a_direct_computation_with_and_without_prefix(tiny):
    model, tokenizer = tiny
    texts, prefixes = [" is a nurse.", " went home"], ["My neighbour", "After a long day the engineer"]
    got = token_logprobs(model, tokenizer, texts, prefixes)
    for g, p, t in zip(got, prefixes, texts):
        np.testing.assert_allclose(g, _by_hand(model, tokenizer, p, t), atol=1e-5)
    plain = token_logprobs(model, tokenizer, ["Hello there"])[0]
    np.testing.assert_allclose(plain, _by_hand(model, tokenizer, "", "Hello there"), atol=1e-5)


def test_batching_and_padding_do_not_change_the_numbers(tiny):
    model, tokenizer = tiny
    texts = ["Hi", "A considerably longer sentence that forces a lot of padding in the batch", "Mid length text"]
    together = token_logprobs(model, tokenizer, texts, batch_size=3)
    alone = [token_logprobs(model, tokenizer, [t])[0] for t in texts]
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(sequence_logprob(model, tokenizer, texts), [a.sum() for a in alone], atol=1e-4)


def test_mean_cross_entropy_equals_the_transformers_loss(smollm2):
    model, tokenizer = smollm2
    text = "The quick brown fox jumps over the lazy dog."
    ids = torch.tensor([[document_start_id(tokenizer)] + tokenizer(text, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        hf_loss = model(ids, labels=ids).loss.item()
    assert mean_cross_entropy(model, tokenizer, [text]) == pytest.approx(hf_loss, abs=1e-5)
    assert perplexity(model, tokenizer, [text]) == pytest.approx(math.exp(hf_loss), rel=1e-5)


def test_pooled_perplexity_weights_tokens_not_texts(tiny):
    model, tokenizer = tiny
    texts = ["one two", "three four five six seven eight nine ten"]
    logps = token_logprobs(model, tokenizer, texts)
    pooled = math.exp(-np.concatenate(logps).mean())
    assert perplexity(model, tokenizer, texts) == pytest.approx(pooled, rel=1e-6)
    per_text = perplexity(model, tokenizer, texts, per_text=True)
    np.testing.assert_allclose(per_text, [math.exp(-lp.mean()) for lp in logps], rtol=1e-6)
    assert per_text.shape == (2,)


def test_real_model_prefers_paris(smollm2):
    model, tokenizer = smollm2
    paris, rome = sequence_logprob(model, tokenizer, [" Paris", " Rome"], ["The capital of France is"] * 2)
    assert paris > rome + 2


@pytest.mark.parametrize("bad, error", [("one string", TypeError), ([1, 2], TypeError)])
def test_bad_texts_get_clear_errors(tiny, bad, error):
    with pytest.raises(error, match="str"):
        token_logprobs(*tiny, bad)


def test_prefix_count_must_match(tiny):
    with pytest.raises(ValueError, match="one prefix per text"):
        token_logprobs(*tiny, ["a", "b"], ["only one"])
    with pytest.raises(ValueError, match="texts is empty"):
        mean_cross_entropy(*tiny, [])


def test_filter_logits_matches_the_transformers_warpers():
    torch.manual_seed(0)
    logits = torch.randn(3, 200)
    expected = TopPLogitsWarper(0.8)(None, TopKLogitsWarper(20)(None, TemperatureLogitsWarper(0.7)(None, logits)))
    assert torch.equal(filter_logits(logits, 0.7, 20, 0.8), expected)
    assert torch.isfinite(filter_logits(logits, 1.0, None, 0.01)).sum(-1).min() >= 1  # never empty
    with pytest.raises(ValueError, match="greedy"):
        filter_logits(logits, temperature=0)


SETTINGS = [dict(do_sample=False), dict(do_sample=True, temperature=0.8, top_k=40, top_p=0.9),
            dict(do_sample=True, temperature=1.3, top_k=0, top_p=1.0)]


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("use_cache", [True, False])
def test_manual_loop_equals_generate_on_tiny(tiny, settings, use_cache):
    model, tokenizer = tiny
    prompts = ["Once upon a time", "The nurse said that she would"]
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
    set_seed(1)
    expected = model.generate(**batch, max_new_tokens=12, pad_token_id=tokenizer.pad_token_id, **settings)
    set_seed(1)
    got = generate_manual(model, tokenizer, prompts, max_new_tokens=12, use_cache=use_cache, **settings)
    assert torch.equal(got, expected)


@pytest.mark.parametrize("settings", SETTINGS[:2])
def test_manual_loop_equals_generate_on_smollm2(smollm2, settings):
    model, tokenizer = smollm2
    prompts = ["The capital of France is", "My favourite food is"]
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
    set_seed(3)
    expected = model.generate(**batch, max_new_tokens=15, **settings)
    set_seed(3)
    assert torch.equal(generate_manual(model, tokenizer, prompts, max_new_tokens=15, **settings), expected)


def test_generate_manual_rejects_empty_prompts(tiny):
    with pytest.raises(ValueError, match="prompts is empty"):
        generate_manual(*tiny, [])


@pytest.mark.parametrize("kwargs, message", [
    (dict(top_k=-1), "top_k must be a whole number >= 0"),
    (dict(top_k=2.5), "top_k must be a whole number >= 0"),
    (dict(top_p=0.0), r"top_p .* must be in \(0, 1\]"),
    (dict(top_p=1.2), r"top_p .* must be in \(0, 1\]"),
    (dict(temperature=float("nan")), "temperature .*must be a finite number"),
])
def test_sampling_settings_that_transformers_refuses_are_refused(tiny, kwargs, message):
    with pytest.raises(ValueError, match=message):
        filter_logits(torch.zeros(1, 5), **{"temperature": 1.0, **kwargs})
    with pytest.raises(ValueError, match=message):
        generate_manual(*tiny, ["Hello"], do_sample=True, **kwargs)


@pytest.mark.parametrize("max_new_tokens", [0, -3])
def test_generate_manual_needs_at_least_one_new_token(tiny, max_new_tokens):
    with pytest.raises(ValueError, match="max_new_tokens must be >= 1"):
        generate_manual(*tiny, ["Hello"], max_new_tokens=max_new_tokens)


def test_pad_batch_right_and_left():
    ids, mask = pad_batch([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    ids, mask = pad_batch([[5, 6, 7], [8]], pad_id=9, side="left")
    assert ids.tolist() == [[5, 6, 7], [9, 9, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    with pytest.raises(ValueError, match="every sequence needs at least one token"):
        pad_batch([[1], []], pad_id=0)
    with pytest.raises(ValueError, match="side must be"):
        pad_batch([[1]], pad_id=0, side="middle")


def test_texts_longer_than_the_context_are_scored_with_a_sliding_window(tiny):
    """A model built for 32 positions scores a 90-token text window by window, each token once."""
    from transformers import LlamaConfig, LlamaForCausalLM

    _, tokenizer = tiny
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    text = " ".join(["word"] * 45 + ["other"] * 44)
    ids = [document_start_id(tokenizer)] + tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) > 64   # at least three windows
    got = token_logprobs(model, tokenizer, [text], stride=16)[0]
    assert len(got) == len(ids) - 1
    # By hand: windows of 32 tokens every 16; a token is scored in the first window that reaches it.
    expected, done = [], 1
    with torch.no_grad():
        for begin in range(0, len(ids), 16):
            window = torch.tensor([ids[begin:begin + 32]])
            logp = torch.log_softmax(model(window).logits[0, :-1].float(), -1)
            targets = window[0, 1:]
            values = logp.gather(-1, targets[:, None]).squeeze(-1).tolist()
            end = min(begin + 32, len(ids))
            expected += values[done - begin - 1:]
            done = end
            if end == len(ids):
                break
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # One pass over all 90 positions (beyond what the model was built for) gives other numbers.
    with torch.no_grad():
        whole = torch.log_softmax(model(torch.tensor([ids])).logits[0, :-1].float(), -1)
    naive = whole.gather(-1, torch.tensor(ids[1:])[:, None]).squeeze(-1).numpy()
    assert not np.allclose(got, naive, atol=1e-3)
    np.testing.assert_allclose(got[:31], naive[:31], rtol=1e-5, atol=1e-6)   # the first window is the same
    with pytest.raises(ValueError, match="stride must be between 1 and 31"):
        token_logprobs(model, tokenizer, [text], stride=32)
