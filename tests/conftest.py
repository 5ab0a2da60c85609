"""Shared fixtures: the real model (loaded once per test session), the tiny test model, benchmark data."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO.parent / "shared" / "benchmarks"


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


@pytest.fixture(scope="session")
def benchmarks() -> Path:
    """The read-only public benchmark copies in ../shared/benchmarks. Fails loudly (never skips) if absent."""
    if not BENCHMARKS.is_dir():
        pytest.fail(
            f"{BENCHMARKS} is missing: these tests read the public benchmark copies that sit beside the "
            "repository (../shared/benchmarks). Clone the repo next to its shared/ folder."
        )
    return BENCHMARKS
