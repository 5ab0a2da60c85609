"""Where the public bias benchmarks come from: a registry of pinned files, and fetching them into the cache.

Taught in ``notebooks/06_bias_metrics.ipynb``. Four public data sets, each a few files at a pinned commit of its
GitHub repository, with sha256 and licence (:data:`BENCHMARKS`): BOLD, CrowS-Pairs, HolisticBias v1.0 / v1.1
and the debiaswe word lists. ``debias-llm download --benchmarks`` (or :func:`download_benchmarks`) fetches them
into ``$DEBIAS_LLM_CACHE/benchmarks/`` from ``https://raw.githubusercontent.com/<repository>/<commit>/<path>``,
or from a mirror — a local folder or a base URL in the cache's own layout (``bold/gender_prompt.json``, ...),
set with ``DEBIAS_LLM_BENCHMARK_MIRROR`` or ``--from`` — and checks every sha256. ``DEBIAS_LLM_OFFLINE=1``
forbids network access (a local-folder mirror still works). The download itself is
:func:`debias_utils.assets.download_file`.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ..assets import ENV_BENCHMARK_MIRROR, AssetMissingError, cache_dir, download_file, is_url, is_verified, offline


# ----------------------------------------------------------------------------------------------------
# The registry of public benchmark files
# ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BenchmarkFile:
    """One public file: ``local`` is its place in the cache and in a mirror (``bold/gender_prompt.json``)."""

    local: str
    path: str      # in the repository
    sha256: str


@dataclass(frozen=True)
class Benchmark:
    """A public data set: its repository, the commit its files are pinned to, its licence and its files."""

    name: str
    title: str
    repository: str
    commit: str
    licence: str
    files: tuple[BenchmarkFile, ...]

    def url(self, file: BenchmarkFile) -> str:
        """The public address of one file at the pinned commit."""
        return f"https://raw.githubusercontent.com/{self.repository}/{self.commit}/{file.path}"

    @property
    def folder(self) -> str:
        """The dataset's folder in the cache and in a mirror, e.g. ``"bold"``."""
        return self.files[0].local.split("/")[0]


_CC_BY_SA = "CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/): credit the authors, share alike"


def _files(folder: str, repo_dir: str, names_and_hashes: str) -> tuple[BenchmarkFile, ...]:
    """Files from "name sha256" lines: cached as ``folder/name``, found at ``repo_dir/name`` in the repository."""
    pairs = [line.split() for line in names_and_hashes.strip().splitlines()]
    return tuple(BenchmarkFile(f"{folder}/{name}", f"{repo_dir}/{name}", sha) for name, sha in pairs)


#: The public benchmark files, by name (what ``debias-llm download NAME`` takes).
BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark("bold", "BOLD (Dhamala et al. 2021)", "amazon-science/bold",
              "3ad652c773f5d1e30d5f6f61657ed934d768ecad", _CC_BY_SA, _files("bold", "prompts", """
                  gender_prompt.json a863aaf2492e3c911c39f435005abee2eba5f5edabe836e97de110cd83273054
                  race_prompt.json 200337f6c43b09671e580b1df6aea2cdc0196ee02779260e9881da07029e1cb6
                  religious_ideology_prompt.json 633830ea87d569e5476895a93f68b8f686cb0dcae6d67a1091a9247c5c4c931d
                  political_ideology_prompt.json a83ea7cc272971b618231e13bcb5c1d1be5b208c92135c4ffde85be31f8ab4c6
                  profession_prompt.json 5508012069f20419559417e64d8bb2b8d864ebf8afedd21e5ca564393c291794""")),
    Benchmark("crows-pairs", "CrowS-Pairs (Nangia et al. 2020)", "nyu-mll/crows-pairs",
              "8aaac11c485473159ec9328a65253a5be9a479dc", _CC_BY_SA + " (stated in the repository's README)",
              _files("crows_pairs", "data", """
                  crows_pairs_anonymized.csv dfb36986ce0502abbaf7055b9176da3d08d48e07df1251991b5dfbcbceab9d0c""")),
    Benchmark("holistic-bias", "HolisticBias (Smith et al. 2022)", "facebookresearch/ResponsibleNLP",
              "0ec714eb084217f44cd9ac466d9e988c795302f9", "data " + _CC_BY_SA,
              _files("holistic_bias/v1.0", "holistic_bias/dataset/v1.0", """
                  descriptors.json 355ba8039d83f4b387b6f069ea9cb2374c1c5d2abceb2e99a41e9cab664a90ec
                  nouns.json ebd3e490fee3ac391fc2421d61be27ffce5912f476c389fe98aca9be8e660966
                  sentence_templates.json 8b1cf8fc3c9a10b12cf77902e8c2ff3d80e3fcfff2f177a00256925acb4f53a5
                  standalone_noun_phrases.json 46d99a89eb36007e32033c1ebca4df36b08ac0f4f1d0ebce2a7242aaa592f06e""")
              + _files("holistic_bias/v1.1", "holistic_bias/dataset/v1.1", """
                  descriptors.json c1328f0edfdeefb76302d360a01878df3db55f18026f4ea1956b4a0f52daf943
                  nouns.json 9bbe15bf01ea8827fd5d68a81ee2b05e04bd5f79478d9027efec0b4dbd232ee6
                  sentence_templates.json 8b1cf8fc3c9a10b12cf77902e8c2ff3d80e3fcfff2f177a00256925acb4f53a5
                  standalone_noun_phrases.json bac592574f81df55e8c8d8e3919a866d43cbd8df5ae9376a68d95e7b83dbebac""")),
    Benchmark("debiaswe", "debiaswe word lists (Bolukbasi et al. 2016)", "tolga-b/debiaswe",
              "6bb03ee2a0d7214339e513ca71cd0a99069dc29c", "MIT (https://opensource.org/license/mit)",
              _files("debiaswe", "data", """
                  definitional_pairs.json f2387fdd4ae4d956083ee7594f1401b1ba112914d40a99bb61d481de73db9614
                  equalize_pairs.json b6e7dda64461e7828f8d184a51216a87aefcfc2b726d3691aa15b7acc2a1994c
                  gender_specific_full.json 300068da1885e9dc8bf2235d987fd0cf5d0b08a6877a0a639ee0060a989bac1f
                  gender_specific_seed.json 9802a524c932d9f0b9b4ecd7ffc429a42d7f8dbe9cbe2020741f984255138958
                  professions.json 32cc82c7761e7cfb14e37e06dc1aa9f758bc8441f79ca7288996d3fc7c24639a""")),
)}


def _benchmark(name: str) -> Benchmark:
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name]


def benchmarks_dir() -> Path:
    """The cache folder of the public benchmarks, ``$DEBIAS_LLM_CACHE/benchmarks`` (not created here)."""
    return cache_dir() / "benchmarks"


def _mirror(source: str | os.PathLike | None) -> str | None:
    source = source if source is not None else os.environ.get(ENV_BENCHMARK_MIRROR) or None
    return None if source is None else str(source)


def _source_of(benchmark: Benchmark, file: BenchmarkFile, mirror: str | None) -> str:
    if mirror is None:
        return benchmark.url(file)
    if is_url(mirror):
        return mirror.rstrip("/") + "/" + file.local
    return str(Path(mirror) / file.local)


def _hint(name: str, mirror: str | None) -> str:
    if mirror is None:
        return (f"Fetch it with:  debias-llm download {name}   (needs raw.githubusercontent.com; behind a firewall "
                f"set {ENV_BENCHMARK_MIRROR}, or pass --from, to a folder or base URL holding a copy in the cache's "
                f"layout, e.g. bold/gender_prompt.json)")
    return (f"The mirror is {mirror!r} ({ENV_BENCHMARK_MIRROR} or --from): check that it holds the files in the "
            f"cache's layout (e.g. bold/gender_prompt.json), or unset it to use the public URLs; then run:  "
            f"debias-llm download {name}")


def fetch_benchmark(name: str, source: str | os.PathLike | None = None, allow_download: bool = True,
                    quiet: bool = False) -> Path:
    """The cache folder holding benchmark ``name``'s files, each checked against its sha256; fetches what is missing.

    ``source`` is a mirror (a local folder or a base URL in the cache's layout); by default
    ``DEBIAS_LLM_BENCHMARK_MIRROR``, else the public URLs. A file that is missing or damaged in the cache is
    fetched again unless ``allow_download=False`` or ``DEBIAS_LLM_OFFLINE=1`` (a local-folder mirror still works
    offline); then :class:`~debias_utils.assets.AssetMissingError` names the command to run. The licence is
    printed when a file is fetched. Idempotent: a verified cache is returned without touching the network.
    Example: ``fetch_benchmark("crows-pairs") / "crows_pairs_anonymized.csv"``.
    Used by every loader of :mod:`debias_utils.data` called without a path.
    """
    benchmark = _benchmark(name)
    mirror = _mirror(source)
    root = benchmarks_dir()
    fetched = 0
    for file in benchmark.files:
        target = root / file.local
        if is_verified(target, file.sha256):
            continue
        where = _source_of(benchmark, file, mirror)
        local_mirror = mirror is not None and (not is_url(mirror) or mirror.startswith("file://"))
        if not allow_download or (offline() and not local_mirror):
            why = "is damaged (wrong sha256)" if target.exists() else "is not in the cache"
            if offline():
                raise AssetMissingError(
                    f"{benchmark.title}: {target} {why}, and DEBIAS_LLM_OFFLINE=1 forbids downloading it. With "
                    f"network access (DEBIAS_LLM_OFFLINE unset) run:  debias-llm download {name}   — or set "
                    f"{ENV_BENCHMARK_MIRROR} to a local folder holding a copy in the cache's layout "
                    f"(e.g. bold/gender_prompt.json).")
            raise AssetMissingError(f"{benchmark.title}: {target} {why} and downloading was not allowed. "
                                    + _hint(name, mirror))
        if target.exists() and not quiet:
            print(f"{target} is damaged (its sha256 does not match); fetching it again.", file=sys.stderr)
        if fetched == 0 and not quiet:
            print(f"Fetching {benchmark.title} from {mirror or 'github.com/' + benchmark.repository} "
                  f"(commit {benchmark.commit[:7]}). Licence: {benchmark.licence}.", file=sys.stderr)
        download_file(where, target, file.sha256, mirror_hint=_hint(name, mirror), quiet=quiet)
        fetched += 1
    return root / benchmark.folder


def download_benchmarks(names=None, source: str | os.PathLike | None = None, quiet: bool = False) -> dict[str, Path]:
    """Fetch several benchmarks (default: all of :data:`BENCHMARKS`); returns ``{name: cache folder}``.

    What ``debias-llm download --benchmarks [--from MIRROR]`` runs. Example: ``download_benchmarks(["bold"])``.
    Used by ``make setup``.
    """
    names = list(BENCHMARKS) if names is None else ([names] if isinstance(names, str) else list(names))
    if not names:
        raise ValueError(f"names is empty; pass some of {', '.join(BENCHMARKS)} or None for all")
    for name in names:
        _benchmark(name)   # every name is checked before anything is fetched
    return {name: fetch_benchmark(name, source=source, quiet=quiet) for name in names}
