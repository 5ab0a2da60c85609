"""load_model, set_seed, offline assets and the safetensors cache."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import random
import shutil
import zipfile

import numpy as np
import pytest
import torch

from debias_utils import assets, load_model, set_seed
from debias_utils.models import BUILTIN_MODELS, _smollm2_cache, check_device, check_dtype


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


def test_unknown_model_name_lists_builtin_names(monkeypatch):
    monkeypatch.setenv("DEBIAS_LLM_OFFLINE", "1")   # offline: only local folders are tried, so it fails at once
    with pytest.raises(ValueError) as info:
        load_model("no-such-model-anywhere-xyz")
    for name in BUILTIN_MODELS:
        assert name in str(info.value)


@pytest.mark.parametrize("dtype", ["fp16", "int8", torch.int64, None])
def test_a_wrong_dtype_is_a_clear_error_and_the_cache_is_left_alone(dtype):
    manifest = _smollm2_cache() / "MANIFEST.json"
    before = manifest.stat().st_mtime_ns
    with pytest.raises(ValueError, match="float32, float16, bfloat16"):
        load_model("smollm2-135m", dtype=dtype)
    assert manifest.stat().st_mtime_ns == before   # not mistaken for a damaged cache and rebuilt


def test_dtype_names_and_devices():
    assert check_dtype("bfloat16") is torch.bfloat16 and check_dtype(torch.float16) is torch.float16
    assert check_device("cpu") == "cpu" and check_device("auto") in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available on this machine"):
            load_model("tiny-llama", device="cuda")
    for bad in ("gpu", "cpu:0", "", 3):
        with pytest.raises(ValueError, match="device="):
            check_device(bad)


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


def fake_wheel(members: dict[str, bytes]) -> bytes:
    """A minimal valid wheel of tox-block 0.1.2 holding ``members`` (what pip needs to accept it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        archive.writestr("tox_block-0.1.2.dist-info/METADATA", "Metadata-Version: 2.1\nName: tox-block\nVersion: 0.1.2\n")
        archive.writestr("tox_block-0.1.2.dist-info/WHEEL",
                         "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr("tox_block-0.1.2.dist-info/RECORD", "")
    return buffer.getvalue()


@pytest.fixture
def package_index(server):
    """A PEP 503 package index on the local server that offers one tox-block wheel (set ``.wheel``)."""
    wheel_name = assets.ASSETS["tox-block"].wheel
    server.files["/simple/tox-block/"] = f'<a href="/files/{wheel_name}">{wheel_name}</a>'.encode()

    def offer(data: bytes):
        server.files[f"/files/{wheel_name}"] = data
    server.offer = offer
    return server


def test_download_rejects_a_wheel_with_the_wrong_checksum(tmp_path, monkeypatch, package_index):
    monkeypatch.setenv("DEBIAS_LLM_CACHE", str(tmp_path))
    monkeypatch.delenv("DEBIAS_LLM_OFFLINE", raising=False)
    package_index.offer(fake_wheel({m: b"not the real model" for m in assets.ASSETS["tox-block"].members}))
    with pytest.raises(assets.AssetMissingError, match=f"has sha256 .*, expected {assets.ASSETS['tox-block'].sha256}"):
        assets.download("tox-block", quiet=True, index_url=package_index.url + "/simple/")
    assert "/files/tox_block-0.1.2-py3-none-any.whl" in package_index.requests   # pip really fetched it here
    assert not (tmp_path / "assets" / "tox-block-0.1.2").exists()


def test_download_extracts_the_members_of_a_verified_wheel(tmp_path, monkeypatch, package_index):
    monkeypatch.setenv("DEBIAS_LLM_CACHE", str(tmp_path))
    monkeypatch.delenv("DEBIAS_LLM_OFFLINE", raising=False)
    members = {m: f"contents of {m}".encode() for m in assets.ASSETS["tox-block"].members}
    wheel = fake_wheel(members)
    monkeypatch.setitem(assets.ASSETS, "tox-block", dataclasses.replace(
        assets.ASSETS["tox-block"], sha256=hashlib.sha256(wheel).hexdigest(), module="no_such_module_installed"))
    package_index.offer(wheel)
    paths = assets.download("tox-block", quiet=True, index_url=package_index.url + "/simple/")
    assert {m: p.read_bytes() for m, p in paths.items()} == members
    assert (tmp_path / "assets" / "tox-block-0.1.2" / "COMPLETE").is_file()
    assert assets.fetch("tox-block", allow_download=False) == paths   # cached now: no second download


def test_download_offline_is_refused_before_pip_runs(tmp_path, monkeypatch, package_index):
    monkeypatch.setenv("DEBIAS_LLM_CACHE", str(tmp_path))
    monkeypatch.setenv("DEBIAS_LLM_OFFLINE", "1")
    monkeypatch.setitem(assets.ASSETS, "tox-block", dataclasses.replace(assets.ASSETS["tox-block"],
                                                                        module="no_such_module_installed"))
    with pytest.raises(assets.AssetMissingError, match="DEBIAS_LLM_OFFLINE=1 forbids"):
        assets.download("tox-block", quiet=True, index_url=package_index.url + "/simple/")
    assert package_index.requests == []


@pytest.fixture
def cache_copy(tmp_path, monkeypatch):
    """A copy of the real converted cache in a temporary cache folder (the GGUF is shared through a link)."""
    real_cache = _smollm2_cache()
    monkeypatch.setenv("DEBIAS_LLM_CACHE", str(tmp_path))
    (tmp_path / "assets").symlink_to(real_cache.parent / "assets")  # reuse the GGUF: no download
    copy = _smollm2_cache()
    shutil.copytree(real_cache, copy)   # copy2 keeps modification times, so the fingerprints still match
    return copy


def test_a_same_size_corruption_anywhere_in_the_weights_is_detected_and_rebuilt(cache_copy, smollm2, capsys):
    """Flip bytes in the middle of the weights (size unchanged, header intact): the sha256 check catches it."""
    target = cache_copy / "model.safetensors"
    size = target.stat().st_size
    with open(target, "r+b") as handle:
        handle.seek(size // 2)
        handle.write(b"\x7f" * 4096)
    assert target.stat().st_size == size
    model, tokenizer = load_model("smollm2-135m")
    assert "damaged" in capsys.readouterr().err
    reference, _ = smollm2
    ids = tokenizer(["Hello world"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.equal(model(ids).logits, reference(ids).logits)


def test_an_untouched_cache_is_trusted_without_rebuilding(cache_copy, capsys):
    before = (cache_copy / "model.safetensors").stat().st_mtime_ns
    load_model("smollm2-135m")
    assert (cache_copy / "model.safetensors").stat().st_mtime_ns == before
    assert "damaged" not in capsys.readouterr().err


def test_a_garbled_header_makes_the_cache_invalid(cache_copy):
    # A garbled safetensors header is a damaged cache like any other changed byte: not trusted, so load_model
    # rebuilds it (the rebuild itself, and that it gives the original logits, is the test above).
    from debias_utils.models import _cache_is_valid

    assert _cache_is_valid(cache_copy)
    with open(cache_copy / "model.safetensors", "r+b") as handle:
        handle.write(b"\xff" * 64)
    assert not _cache_is_valid(cache_copy)
