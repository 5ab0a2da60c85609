"""The benchmark download path, for real: a local HTTP server on 127.0.0.1 that each test starts and fills.

Nothing here reaches the internet. The server plays the public URL's part (via the mirror setting) and can
answer 404, hang up in the middle of a file, or serve the wrong bytes.
"""
from __future__ import annotations

import hashlib
import shutil
import socket

import pytest

from debias_utils.assets import ENV_BENCHMARK_MIRROR, AssetMissingError, download_file
from debias_utils.cli import main as cli
from debias_utils.data import BENCHMARKS, Benchmark, BenchmarkFile, benchmarks_dir, fetch_benchmark, load_crows_pairs

PAYLOAD = b'{"American_actors": {"Jacob_Zachar": ["Jacob Zachar is an American actor whose "]}}\n' * 50
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache of our own, so the real one is never touched; no mirror and online by default."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("DEBIAS_LLM_CACHE", str(folder))
    monkeypatch.delenv(ENV_BENCHMARK_MIRROR, raising=False)
    monkeypatch.delenv("DEBIAS_LLM_OFFLINE", raising=False)
    return folder


def toy_benchmark(sha=PAYLOAD_SHA) -> Benchmark:
    return Benchmark("toy", "Toy benchmark", "someone/toy", "0" * 40, "CC0 (test)",
                     (BenchmarkFile("toy/gender_prompt.json", "prompts/gender_prompt.json", sha),))


@pytest.fixture
def toy(monkeypatch):
    """Register a one-file benchmark whose bytes the test controls."""
    monkeypatch.setitem(BENCHMARKS, "toy", toy_benchmark())
    return BENCHMARKS["toy"]


def test_a_good_file_is_cached_verified_and_not_fetched_twice(server, cache, toy, monkeypatch, capsys):
    server.files["/toy/gender_prompt.json"] = PAYLOAD
    monkeypatch.setenv(ENV_BENCHMARK_MIRROR, server.url)
    folder = fetch_benchmark("toy")
    assert folder == cache / "benchmarks" / "toy"
    assert (folder / "gender_prompt.json").read_bytes() == PAYLOAD
    assert "Licence: CC0 (test)" in capsys.readouterr().err     # the licence is shown when fetched
    assert fetch_benchmark("toy") == folder                     # idempotent ...
    assert server.requests == ["/toy/gender_prompt.json"]       # ... without a second request
    assert sorted(p.name for p in folder.iterdir()) == ["gender_prompt.json"]


def test_a_wrong_sha256_is_refused_and_nothing_half_written_stays(server, cache, monkeypatch):
    monkeypatch.setitem(BENCHMARKS, "toy", toy_benchmark(sha="1" * 64))
    server.files["/toy/gender_prompt.json"] = PAYLOAD
    with pytest.raises(AssetMissingError, match=f"sha256 {PAYLOAD_SHA}, expected {'1' * 64}") as error:
        fetch_benchmark("toy", source=server.url)
    assert ENV_BENCHMARK_MIRROR in str(error.value)
    assert list((cache / "benchmarks" / "toy").iterdir()) == []   # neither the file nor a .partial


def test_a_404_names_the_url_and_the_mirror_setting(server, cache, toy):
    with pytest.raises(AssetMissingError, match="HTTP 404") as error:
        fetch_benchmark("toy", source=server.url + "/")
    message = str(error.value)
    assert f"{server.url}/toy/gender_prompt.json" in message
    assert ENV_BENCHMARK_MIRROR in message and "debias-llm download toy" in message


def test_a_server_that_is_down_names_the_url_and_the_mirror_setting(cache, toy):
    with socket.socket() as probe:   # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(AssetMissingError, match="Connection refused") as error:
        fetch_benchmark("toy", source=f"http://127.0.0.1:{port}")
    assert f"http://127.0.0.1:{port}/toy/gender_prompt.json" in str(error.value)
    assert ENV_BENCHMARK_MIRROR in str(error.value)


def test_an_interrupted_download_leaves_nothing_and_the_next_call_starts_clean(server, cache, toy):
    server.files["/toy/gender_prompt.json"] = PAYLOAD
    server.truncate.add("/toy/gender_prompt.json")
    with pytest.raises(AssetMissingError, match="interrupted"):
        fetch_benchmark("toy", source=server.url)
    folder = cache / "benchmarks" / "toy"
    assert list(folder.iterdir()) == []
    # A .partial left by a killed process must not count as cached, and is overwritten.
    (folder / "gender_prompt.json.partial").write_bytes(b"half of it")
    server.truncate.clear()
    fetch_benchmark("toy", source=server.url)
    assert [p.name for p in folder.iterdir()] == ["gender_prompt.json"]
    assert (folder / "gender_prompt.json").read_bytes() == PAYLOAD


def test_a_damaged_cached_file_is_fetched_again(server, cache, toy, capsys):
    server.files["/toy/gender_prompt.json"] = PAYLOAD
    fetch_benchmark("toy", source=server.url)
    target = cache / "benchmarks" / "toy" / "gender_prompt.json"
    target.write_bytes(PAYLOAD[:-2] + b"!\n")   # same size, different bytes
    fetch_benchmark("toy", source=server.url)
    assert "damaged" in capsys.readouterr().err
    assert target.read_bytes() == PAYLOAD and len(server.requests) == 2


def test_offline_forbids_the_network_and_names_the_exact_command(server, cache, toy, monkeypatch):
    server.files["/toy/gender_prompt.json"] = PAYLOAD
    monkeypatch.setenv("DEBIAS_LLM_OFFLINE", "1")
    with pytest.raises(AssetMissingError, match="debias-llm download toy") as error:
        fetch_benchmark("toy", source=server.url)
    assert "DEBIAS_LLM_OFFLINE=1" in str(error.value)
    assert server.requests == []   # not even one request
    with pytest.raises(AssetMissingError, match="DEBIAS_LLM_OFFLINE=1 forbids"):
        download_file(server.url + "/toy/gender_prompt.json", cache / "x.json", PAYLOAD_SHA)


def test_a_local_folder_mirror_works_even_offline(tmp_path, cache, toy, monkeypatch):
    mirror = tmp_path / "mirror"
    (mirror / "toy").mkdir(parents=True)
    (mirror / "toy" / "gender_prompt.json").write_bytes(PAYLOAD)
    monkeypatch.setenv("DEBIAS_LLM_OFFLINE", "1")
    monkeypatch.setenv(ENV_BENCHMARK_MIRROR, str(mirror))
    assert (fetch_benchmark("toy") / "gender_prompt.json").read_bytes() == PAYLOAD
    # A folder without the file: the error names the mirror and the layout it expects.
    (cache / "benchmarks" / "toy" / "gender_prompt.json").unlink()
    (mirror / "toy" / "gender_prompt.json").unlink()
    with pytest.raises(AssetMissingError, match="The mirror is .*bold/gender_prompt.json"):
        fetch_benchmark("toy")


def test_the_real_registry_downloads_from_a_mirror_and_loads(server, cache, monkeypatch):
    """Serve the real cached CrowS-Pairs file over HTTP: the registry's sha256 and the loader agree with it."""
    with monkeypatch.context() as real:
        real.delenv("DEBIAS_LLM_CACHE")   # the real cache, filled by `make setup`
        source = fetch_benchmark("crows-pairs", allow_download=False) / "crows_pairs_anonymized.csv"
    server.files["/crows_pairs/crows_pairs_anonymized.csv"] = source.read_bytes()
    folder = fetch_benchmark("crows-pairs", source=server.url)   # into the empty test cache
    assert folder == benchmarks_dir() / "crows_pairs" and str(folder).startswith(str(cache))
    assert len(load_crows_pairs(folder)) == 1508 and len(load_crows_pairs()) == 1508


def test_public_urls_are_the_pinned_raw_github_addresses():
    bold = BENCHMARKS["bold"]
    assert bold.url(bold.files[0]) == ("https://raw.githubusercontent.com/amazon-science/bold/"
                                       "3ad652c773f5d1e30d5f6f61657ed934d768ecad/prompts/gender_prompt.json")
    hb = BENCHMARKS["holistic-bias"]
    assert [f.local for f in hb.files][:2] == ["holistic_bias/v1.0/descriptors.json", "holistic_bias/v1.0/nouns.json"]
    assert hb.url(hb.files[-1]).endswith("/0ec714eb084217f44cd9ac466d9e988c795302f9/holistic_bias/dataset/v1.1/"
                                         "standalone_noun_phrases.json")
    assert {name: len(b.files) for name, b in BENCHMARKS.items()} == {"bold": 5, "crows-pairs": 1,
                                                                       "holistic-bias": 8, "debiaswe": 5}
    assert all(len(f.sha256) == 64 for b in BENCHMARKS.values() for f in b.files)
    assert BENCHMARKS["debiaswe"].licence.startswith("MIT") and "CC BY-SA 4.0" in BENCHMARKS["bold"].licence


def test_unknown_benchmark_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="bold, crows-pairs, holistic-bias, debiaswe"):
        fetch_benchmark("winobias")


def test_cli_download_from_a_mirror_url(server, cache, toy, capsys):
    server.files["/toy/gender_prompt.json"] = PAYLOAD
    assert cli(["download", "toy", "--from", server.url]) == 0
    out = capsys.readouterr()
    assert "toy: " in out.out and "sha256 checked" in out.out and "Licence: CC0 (test)" in out.err
    assert cli(["download", "toy", "--from", server.url]) == 0 and len(server.requests) == 1   # idempotent
    assert cli(["download", "no-such-set"]) == 2
    assert "unknown name(s) no-such-set" in capsys.readouterr().err
    server.files.clear()
    (cache / "benchmarks" / "toy" / "gender_prompt.json").unlink()
    assert cli(["download", "toy", "--from", server.url]) == 1
    assert "HTTP 404" in capsys.readouterr().err


def test_a_cache_setting_that_is_a_file_says_so(tmp_path, monkeypatch):
    not_a_folder = tmp_path / "cache.txt"
    not_a_folder.write_text("oops")
    monkeypatch.setenv("DEBIAS_LLM_CACHE", str(not_a_folder))
    with pytest.raises(NotADirectoryError, match="DEBIAS_LLM_CACHE=.*is a file"):
        fetch_benchmark("bold")


def test_copying_from_a_local_path_uses_the_same_checks(tmp_path, cache):
    src = tmp_path / "src.json"
    src.write_bytes(PAYLOAD)
    target = cache / "copy" / "a.json"
    assert download_file(src, target, PAYLOAD_SHA, quiet=True).read_bytes() == PAYLOAD
    with pytest.raises(AssetMissingError, match="No such file"):
        download_file(tmp_path / "missing.json", target, PAYLOAD_SHA, quiet=True)
    shutil.rmtree(cache / "copy")
