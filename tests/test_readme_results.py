"""The README's results come from results/ by one command, and the test fails when the two disagree."""
from __future__ import annotations

import json
import shutil

import pytest

from debias_utils.cli import main as cli
from debias_utils.readme_results import BEGIN, END, RESULTS, REPO, render, update_readme


def test_the_readme_shows_exactly_what_results_holds():
    assert update_readme(REPO / "README.md", RESULTS, check=True), \
        "README.md's results section differs from results/: run `debias-llm report --readme` and commit both"


def test_every_recorded_file_is_rendered_and_missing_ones_are_named(tmp_path):
    shutil.copytree(RESULTS, tmp_path / "results")
    folder = tmp_path / "results"
    text = render(folder)
    assert text.startswith(BEGIN) and text.endswith(END)
    recorded = sorted(folder.glob("full/*.json"))
    assert [p.name for p in recorded] == ["06_bias_metrics.json", "07_try.json", "08_gate_attention.json",
                                          "09_compare_methods.json"]
    for path in recorded:
        payload = json.loads(path.read_text())
        assert payload["preset"] == "full" and payload["command"] in text and payload["git_commit"][:12] in text
    assert all(json.loads(p.read_text())["notebook"] in text for p in folder.glob("quick/*.json"))
    (folder / "full" / "07_try.json").unlink()
    assert "`07_try.json` is not recorded yet — make it with `debias-llm run --preset full --only 07" in render(folder)


def test_a_changed_number_makes_the_check_fail(tmp_path):
    readme = tmp_path / "README.md"
    shutil.copy(REPO / "README.md", readme)
    folder = tmp_path / "results"
    shutil.copytree(RESULTS, folder)
    assert update_readme(readme, folder, check=True)
    recorded = sorted(folder.glob("full/*.json"))
    assert recorded, "results/ holds no recorded notebook results"
    payload = json.loads(recorded[0].read_text())
    payload["date"] = "1999-01-01T00:00:00+00:00"
    recorded[0].write_text(json.dumps(payload))
    assert not update_readme(readme, folder, check=True)
    assert cli(["report", "--readme", str(readme), "--results", str(folder), "--check"]) == 1
    assert cli(["report", "--readme", str(readme), "--results", str(folder)]) == 0
    assert update_readme(readme, folder, check=True) and "1999-01-01" in readme.read_text()


def test_a_readme_without_markers_says_what_to_add(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers here\n")
    with pytest.raises(ValueError, match="has no results markers"):
        update_readme(readme, RESULTS)


def test_the_audit_headline_numbers_are_the_reports_own():
    # The README's audit table and the committed report round the same results.json: every interval the README
    # shows must appear verbatim in the report it links to (rounding twice once turned 0.87149 into 0.872 here).
    import re
    report = (RESULTS / "audit_quick" / "report.md").read_text()
    headline = render(RESULTS).split("**Audit of ", 1)[1].split("Paired differences", 1)[0]
    intervals = re.findall(r"\d+\.\d+ \[\d+\.\d+, \d+\.\d+\]", headline)
    assert len(intervals) >= 10
    assert [i for i in intervals if i not in report] == []
