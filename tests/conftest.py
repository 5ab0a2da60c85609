"""Shared fixtures: the real model (loaded once per test session) and the tiny test model."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def smollm2():
    """(model, tokenizer) of the real SmolLM2-135M-Instruct, from the offline cache."""
    from debias_utils import load_model

    return load_model("smollm2-135m")


@pytest.fixture(scope="session")
def tiny():
    """(model, tokenizer) of the 2-layer random Llama that shares SmolLM2's tokenizer."""
    from debias_utils import load_model

    return load_model("tiny-llama")
