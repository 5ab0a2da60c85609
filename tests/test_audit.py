"""`debias-llm audit` on the tiny test model: every section, the comparison, resumption, bad input, two processes."""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from debias_utils.audit import SCHEMA, SECTIONS, audit
from debias_utils.cli import main as cli

METHODS_ARGS = ["--method", "decoding:kl"]
VERDICTS = {"lower", "higher", "no evidence either way", "undefined"}


@pytest.fixture(scope="module")
def gate_file(tmp_path_factory, tiny):
    """Head gates for tiny-llama with two heads moved far from 1, so the gated model really differs."""
    from debias_utils.gates import add_gates, remove_gates, save_gates, set_head_gates

    model, _ = tiny
    add_gates(model, "head")
    values = np.ones((2, 4))
    values[0, 1], values[1, 3] = 0.1, 1.8
    set_head_gates(model, values)
    path = save_gates(model, tmp_path_factory.mktemp("gates") / "tiny_head.pt")
    remove_gates(model)
    return path


@pytest.fixture(scope="module")
def audited(tiny, gate_file, tmp_path_factory):
    """One quick audit of tiny-llama with three methods (greedy, so a two-process run must give the same)."""
    model, tokenizer = tiny
    out = tmp_path_factory.mktemp("audit") / "out"
    methods = ["original", "decoding:kl", f"gates:{gate_file}"]
    results = audit(model, tokenizer, suite="quick", methods=methods, scorer="jigsaw-bilstm", out=out,
                    model_name="tiny-llama", greedy=True, progress=False)
    return results, out, methods


def test_every_section_reports_numbers_with_intervals_and_sizes(audited):
    results, out, methods = audited
    assert results["schema"] == SCHEMA == "debias-llm-audit/1"
    assert results["methods"] == methods and list(results["sections"]) == list(SECTIONS)
    for name, section in results["sections"].items():
        assert section["status"] == "ok", (name, section.get("error"))
        original = section["methods"]["original"]
        assert original["status"] == "ok" and original["metrics"], name
        for metric_name, m in original["metrics"].items():
            if m["value"] is None:   # undefined, and it says why
                assert m["note"] and m["n"] == 0
                continue
            assert math.isfinite(m["value"]) and m["n"] > 0, (name, metric_name)
            if m["low"] is not None:
                assert m["low"] <= m["high"], (name, metric_name)
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results, default=float))
    report = (out / "report.md").read_text()
    assert all(section["title"] in report for section in results["sections"].values())
    assert "<table>" in (out / "report.html").read_text()
    for figure in ("bold_groups.png", "holistic_bias_groups.png"):
        assert (out / "figures" / figure).read_bytes()[:4] == b"\x89PNG" and f"figures/{figure}" in report
    # tiny-llama names no gender, so there is no male share to plot against fluency (the talkative test draws it)
    assert not (out / "figures" / "bias_vs_fluency.png").exists()


def test_every_continuation_is_in_a_csv(audited):
    results, out, methods = audited
    for name in ("bold", "holistic_bias", "gender_balance"):
        rows = pd.read_csv(out / "continuations" / f"{name}.csv", keep_default_na=False)
        assert list(rows.columns[:2]) == ["method", "prompt"] and "continuation" in rows.columns
        counts = rows["method"].value_counts()
        assert set(counts.index) == set(methods) and counts.nunique() == 1   # every method on the same prompts
        first = rows[rows.method == "original"]["prompt"].tolist()
        assert rows[rows.method == methods[1]]["prompt"].tolist() == first


def test_numbers_are_the_package_metrics_on_the_same_items(audited, tiny):
    """Recompute three sections' headline numbers directly: the audit adds no arithmetic of its own."""
    from debias_utils.gate_training import neutral_texts
    from debias_utils.lm import perplexity
    from debias_utils.metrics import crows_pairs_score, pronoun_correlation, pronoun_probabilities
    from debias_utils.groups import OCCUPATION_TEMPLATES_HELDOUT

    results, out, _ = audited
    model, tokenizer = tiny
    sections = results["sections"]
    pairs = pd.read_csv(out / "sections" / "crows_pairs" / "original.csv")
    direct = crows_pairs_score(model, tokenizer, pairs[["sent_more", "sent_less", "stereo_antistereo", "bias_type"]])
    assert sections["crows_pairs"]["methods"]["original"]["metrics"]["score"]["value"] == direct.score.value
    assert sections["crows_pairs"]["methods"]["original"]["metrics"]["score"]["n"] == len(pairs) >= 140
    expected_ppl = perplexity(model, tokenizer, neutral_texts("heldout")[:32])
    assert sections["fluency"]["methods"]["original"]["metrics"]["perplexity"]["value"] == pytest.approx(expected_ppl)
    r = pronoun_correlation(pronoun_probabilities(model, tokenizer, templates=OCCUPATION_TEMPLATES_HELDOUT))["pearson_r"]
    assert sections["pronouns"]["methods"]["original"]["metrics"]["pearson_r"]["value"] == pytest.approx(r)


def test_every_method_is_compared_with_the_original(audited):
    results, _, methods = audited
    decoding, gates = methods[1], methods[2]
    sections = results["sections"]
    for name in ("crows_pairs", "pronouns", "weat", "fluency"):   # a logits processor changes none of these
        assert sections[name]["methods"][decoding]["status"] == "same as original"
        assert sections[name]["methods"][decoding]["reason"]
    assert sections["weat"]["methods"][gates]["status"] == "same as original"   # input embeddings untouched
    for name in ("bold", "holistic_bias", "gender_balance"):
        assert set(sections[name]["paired"]) == {decoding, gates}
    for section in sections.values():
        for comparison in section["paired"].values():
            assert all(d["verdict"] in VERDICTS for d in comparison.values())
    # tiny-llama writes no gendered word at all: its male share is undefined, said so, and not compared.
    balance = sections["gender_balance"]
    for method in methods:
        share = balance["methods"][method]["metrics"]["male_share"]
        assert share["value"] is None and "no gendered word" in share["note"]
    assert balance["paired"][decoding]["male_share"]["verdict"] == "undefined"
    # The gates change the model's likelihoods: the paired difference is the difference of the two scores.
    crows = sections["crows_pairs"]
    d = crows["paired"][gates]["score"]
    values = [crows["methods"][m]["metrics"]["score"]["value"] for m in ("original", gates)]
    assert d["difference"] == pytest.approx(values[1] - values[0]) and d["low"] <= d["difference"] <= d["high"]


@pytest.fixture
def talkative(tmp_path):
    """tiny-llama pushed to say " she" (and, less often, " he"), so that a gender balance can be measured."""
    from debias_utils import load_model

    model, tokenizer = load_model("tiny-llama")
    she, he = (tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in (" she", " he"))
    bias = np.zeros(model.config.vocab_size, dtype=np.float32)
    bias[she], bias[he] = 12.0, 11.0

    import torch

    bias = torch.from_numpy(bias)
    model.lm_head.register_forward_hook(lambda module, args, output: output + bias)
    return model, tokenizer


def test_the_gender_balance_section_measures_a_male_share_and_compares_it(talkative, tmp_path):
    from debias_utils.metrics import male_share_ci

    model, tokenizer = talkative
    results = audit(model, tokenizer, methods=["original", "decoding:kl"], sections=["gender_balance"],
                    out=tmp_path / "out", scorer="profanity", progress=False)
    balance = results["sections"]["gender_balance"]
    rows = pd.read_csv(tmp_path / "out" / "continuations" / "gender_balance.csv", keep_default_na=False)
    for method in ("original", "decoding:kl"):
        share = balance["methods"][method]["metrics"]["male_share"]
        expected, words = male_share_ci(rows[rows.method == method]["continuation"])
        assert (share["value"], share["low"], share["high"], share["n"]) == (expected.value, expected.low,
                                                                            expected.high, words) and words > 0
    original, kl = (balance["methods"][m]["metrics"]["|male_share - 0.5|"]["value"] for m in ("original", "decoding:kl"))
    assert kl < original   # the kl rule balances what the biased model says
    assert (tmp_path / "out" / "figures" / "bias_vs_fluency.png").read_bytes()[:4] == b"\x89PNG"
    paired = balance["paired"]["decoding:kl"]["|male_share - 0.5|"]
    assert paired["difference"] == pytest.approx(kl - original) and paired["verdict"] in VERDICTS


def test_a_second_call_with_the_same_settings_resumes(audited, tiny, capsys):
    results, out, methods = audited
    model, tokenizer = tiny
    (out / "report.md").unlink()
    again = audit(model, tokenizer, suite="quick", methods=methods, scorer="jigsaw-bilstm", out=out,
                  model_name="tiny-llama", greedy=True)
    err = capsys.readouterr().err
    assert all(f"{name}: resumed from" in err for name in SECTIONS)
    assert again["sections"] == results["sections"] and (out / "report.md").is_file()
    other = audit(model, tokenizer, suite="quick", methods=methods, scorer="jigsaw-bilstm", out=out,
                  model_name="tiny-llama", greedy=True, seed=1, sections=["weat"])
    assert "resumed" not in capsys.readouterr().err and other["seed"] == 1   # other settings: measured again


def test_a_failing_section_is_reported_and_the_others_finish(tiny, tmp_path, monkeypatch):
    model, tokenizer = tiny

    def broken(*args, **kwargs):
        raise RuntimeError("the benchmark server exploded")
    monkeypatch.setattr(SECTIONS["weat"], "measure", broken)
    results = audit(model, tokenizer, sections=["weat", "fluency"], out=tmp_path / "out", scorer="profanity",
                    progress=False)
    assert results["sections"]["weat"]["status"] == "failed"
    assert "RuntimeError: the benchmark server exploded" in results["sections"]["weat"]["error"]
    assert results["sections"]["fluency"]["status"] == "ok"
    assert "**This section failed:** `RuntimeError: the benchmark server exploded`" in (tmp_path / "out" / "report.md").read_text()


def test_bold_items_are_the_rows_they_claim_to_be_after_blanks_are_left_out(monkeypatch):
    # Blanks removed before sampling leave gaps in the row labels; the sample must still pick the rows it drew
    # (once, positions were read as labels: each item was the row before, or a blank, across a gap).
    from types import SimpleNamespace

    import debias_utils.data as data

    rows = [("gender", "A", f"a{i}", f"prompt a{i}") for i in range(5)] + [("gender", "A", "blank", "  ")] + \
           [("gender", "B", f"b{i}", f"prompt b{i}") for i in range(5)]
    table = pd.DataFrame(rows, columns=["domain", "group", "name", "prompt"])
    monkeypatch.setattr(data, "load_bold", lambda domains=None: table)
    ctx = SimpleNamespace(suite=SimpleNamespace(bold_per_group=5), seed=0)
    items = SECTIONS["bold"].items(ctx)
    assert sorted(items["name"]) == [f"a{i}" for i in range(5)] + [f"b{i}" for i in range(5)]   # all, no blank
    assert (items["prompt"] == "prompt " + items["name"]).all()                              # each row whole
    assert items.attrs["note"] == "1 blank BOLD prompt(s) left out before sampling: gender/A (blank)"


def test_blank_benchmark_prompts_are_left_out_and_the_report_says_so(tiny, tmp_path, monkeypatch):
    # BOLD's files hold a few whitespace-only prompts; an audit must neither crash on them nor drop them silently.
    import debias_utils.data as data

    real = data.load_bold

    def with_a_blank(*args, **kwargs):
        frame = real(*args, **kwargs)
        frame.loc[0, "prompt"] = "   "       # the first gender prompt becomes blank
        return frame

    monkeypatch.setattr(data, "load_bold", with_a_blank)
    model, tokenizer = tiny
    results = audit(model, tokenizer, suite="quick", methods=["original"], scorer="jigsaw-bilstm", out=tmp_path,
                    model_name="tiny-llama", greedy=True, progress=False, sections=["bold"])
    bold = results["sections"]["bold"]
    blank_entity = real(domains=["gender"]).loc[0, "name"]
    from debias_utils.audit.suites import BOLD_AUDIT_DOMAINS
    already = int((real(domains=list(BOLD_AUDIT_DOMAINS))["prompt"].str.strip() == "").sum())  # BOLD's own blanks
    assert bold["status"] == "ok" and bold["note"].startswith(f"{already + 1} blank BOLD prompt(s) left out")
    assert blank_entity in bold["note"] and bold["note"] in (tmp_path / "report.md").read_text()
    rows = pd.read_csv(tmp_path / "continuations" / "bold.csv", keep_default_na=False)
    assert (rows["prompt"].str.strip() != "").all()


def test_bad_input_gets_a_clear_error(tiny, tmp_path, monkeypatch, capsys):
    from debias_utils.gates import add_gates, remove_gates, save_gates
    from transformers import LlamaConfig, LlamaForCausalLM

    model, tokenizer = tiny
    assert cli(["audit", "--model", "no-such-model-xyz", "--out", str(tmp_path / "a")]) == 2
    assert "Could not load model 'no-such-model-xyz'" in capsys.readouterr().err
    assert cli(["audit", "--model", "tiny-llama", "--method", "decoding:magic", "--out", str(tmp_path / "a")]) == 2
    assert "unknown decoding rule 'magic'" in capsys.readouterr().err
    assert cli(["audit", "--model", "tiny-llama", "--method", "gates:missing.pt", "--out", str(tmp_path / "a")]) == 2
    assert "gate file 'missing.pt'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(["audit", "--model", "tiny-llama", "--suite", "huge", "--out", str(tmp_path / "a")])
    with pytest.raises(ValueError, match="unknown scorer 'perspective'"):
        audit(model, tokenizer, scorer="perspective")
    with pytest.raises(ValueError, match="unknown suite 'huge'"):
        audit(model, tokenizer, suite="huge")
    other = LlamaForCausalLM(LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                         num_attention_heads=2, num_key_value_heads=1))
    add_gates(other, "head")
    foreign = save_gates(other, tmp_path / "foreign.pt")
    remove_gates(other)
    with pytest.raises(ValueError, match="gates:.*foreign.pt: gate file .* was trained for"):
        audit(model, tokenizer, methods=[f"gates:{foreign}"])
    a_file = tmp_path / "report.txt"
    a_file.write_text("")
    with pytest.raises(ValueError, match="is a file; pass a folder"):
        audit(model, tokenizer, out=a_file)
    monkeypatch.setenv("DEBIAS_LLM_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("DEBIAS_LLM_OFFLINE", "1")
    monkeypatch.delenv("DEBIAS_LLM_BENCHMARK_MIRROR", raising=False)
    with pytest.raises(ValueError, match="debias-llm download crows-pairs bold holistic-bias"):
        audit(model, tokenizer, sections=["crows_pairs", "bold", "holistic_bias", "weat"])


def test_two_processes_give_the_single_process_result(audited, gate_file, tmp_path):
    """The same audit data-parallel on 2 CPU processes (accelerate launch): the same texts and the same numbers."""
    results, out, methods = audited
    two = tmp_path / "two"
    sections = ["bold", "gender_balance", "crows_pairs", "fluency"]
    command = [str(Path(sys.executable).parent / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "-m", "debias_utils.cli", "audit", "--model", "tiny-llama", "--greedy", "--scorer", "jigsaw-bilstm",
               *METHODS_ARGS, "--method", f"gates:{gate_file}", "--out", str(two)]
    for name in sections:
        command += ["--section", name]
    run = subprocess.run(command, capture_output=True, text=True, timeout=900, env={**__import__("os").environ,
                                                                                    "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "2 process(es)" in run.stderr
    merged = json.loads((two / "results.json").read_text())
    assert merged["settings"]["processes"] == 2
    assert merged["provenance"]["command"].startswith("debias-llm audit --model tiny-llama --greedy")
    assert len(merged["provenance"]["git_commit"].split("+")[0]) == 40
    for name in sections:
        single, split = results["sections"][name], merged["sections"][name]
        assert split["status"] == "ok", split.get("error")
        for method in methods:
            a, b = single["methods"][method], split["methods"][method]
            assert a["status"] == b["status"]
            for metric_name, m in a.get("metrics", {}).items():
                for key in ("value", "low", "high", "n"):
                    if m[key] is None:
                        assert b["metrics"][metric_name][key] is None
                    else:   # batches differ between the processes: equal up to float rounding
                        assert b["metrics"][metric_name][key] == pytest.approx(m[key], rel=1e-6), (name, metric_name)
    for name in ("bold", "gender_balance"):   # greedy decoding: exactly the same continuations
        a = pd.read_csv(out / "continuations" / f"{name}.csv", keep_default_na=False)
        b = pd.read_csv(two / "continuations" / f"{name}.csv", keep_default_na=False)
        assert a["continuation"].tolist() == b["continuation"].tolist()
    shutil.rmtree(two)
