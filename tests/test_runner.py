"""The batch runner behind `make course`: papermill, parameters, failures, report."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import papermill
import pytest

from debias_utils import cli
from debias_utils.runner import NOTEBOOKS, course_notebooks, notebook_name, run_course, select


def _notebook(path: Path, parameters: str, body: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = nbformat.v4.new_code_cell(parameters)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell(body)]
    nbformat.write(nb, path)
    return path


def _parameter_names(cells) -> set[str]:
    """Names assigned in the first cell tagged `parameters` (what papermill can override)."""
    cell = next(c for c in cells if "parameters" in c.metadata.get("tags", []))
    return {t.id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign)
            for t in node.targets if isinstance(t, ast.Name)}


def test_course_order_and_names():
    paths = course_notebooks()
    names = [notebook_name(p) for p in paths]
    assert names[0] == "00_overview" and names == sorted(names)
    assert not any("solutions" in p.parts for p in paths)
    assert notebook_name(NOTEBOOKS / "07_decoding" / "try.ipynb") == "07_try"


def test_select_rejects_unknown_names():
    with pytest.raises(ValueError, match="matches no notebook"):
        select(course_notebooks(), ["99_nothing"])


@pytest.fixture
def small_course(tmp_path, monkeypatch):
    """A two-chapter course of tiny notebooks written here, in place of the real one (which nbval runs)."""
    from debias_utils import runner

    root = tmp_path / "course"
    (root / "01_chapter").mkdir(parents=True)
    _notebook(root / "00_first.ipynb", "seed = 0\nresults_dir = None\nword = 'default'",
              "from debias_utils.results import save_results\n"
              "save_results('00_first', {'word': word, 'length': len(word)}, results_dir)")
    _notebook(root / "01_chapter" / "try.ipynb", "seed = 0\nresults_dir = None\npoints = 3",
              "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
              "from debias_utils.results import save_figure, save_results\n"
              "fig, ax = plt.subplots(figsize=(3, 2)); ax.plot(range(points))\n"
              "save_figure(fig, '01_curve', results_dir)\n"
              "save_results('01_try', {'points': points}, results_dir)")
    monkeypatch.setattr(runner, "NOTEBOOKS", root)
    monkeypatch.setitem(runner.PRESETS, "test", {"00_first": {"word": "injected"}, "01_try": {"points": 5}})
    return root


def test_the_cli_runs_a_course_with_a_preset_and_writes_the_report(small_course, tmp_path):
    """`debias-llm run --preset test --only 00 01,`: parameters injected, numbers and figures in the report."""
    out = tmp_path / "run"
    assert cli.main(["run", "--preset", "test", "--only", "00", "01,", "--output", str(out)]) == 0
    assert json.loads((out / "results" / "00_first.json").read_text()) == {"length": 8, "word": "injected"}
    report = (out / "report.md").read_text()
    assert "preset `test`" in report and "**2 of 2 notebooks ran cleanly.**" in report
    assert "| 00_first | ✅ ok |" in report and "| 01_try | ✅ ok |" in report
    assert "| word | injected |" in report and "| points | 5 |" in report
    figures = [line[line.index("(") + 1:-1] for line in report.splitlines() if line.startswith("![")]
    assert figures == ["results/figures/01_curve.png"] and (out / figures[0]).is_file()
    assert "<table>" in (out / "report.html").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert [r["name"] for r in summary["runs"]] == ["00_first", "01_try"]
    executed = nbformat.read(out / "notebooks" / "01_chapter" / "try.ipynb", as_version=4)
    assert "papermill" in executed.metadata   # the executed copy is papermill's, in the output folder ...
    assert "papermill" not in nbformat.read(small_course / "01_chapter" / "try.ipynb", as_version=4).metadata
    assert sorted(p.name for p in small_course.rglob("*.ipynb")) == ["00_first.ipynb", "try.ipynb"]   # ... only


def test_a_preset_naming_an_unknown_parameter_fails_that_notebook_only(small_course, tmp_path, monkeypatch):
    from debias_utils import runner

    monkeypatch.setitem(runner.PRESETS, "test", {"00_first": {"wrod": "typo"}})
    runs, _ = run_course(preset="test", output=tmp_path / "run", echo=lambda *_: None)
    assert [r.status for r in runs] == ["failed", "ok"]
    assert "sets ['wrod'] but 00_first.ipynb's parameters cell declares only" in runs[0].error


def test_bad_arguments_of_run_course(tmp_path):
    with pytest.raises(ValueError, match=r"notebooks=\[\] is empty"):
        run_course(notebooks=[])
    with pytest.raises(ValueError, match="no notebook at"):
        run_course(notebooks=[tmp_path / "missing.ipynb"])
    a_file = tmp_path / "out.txt"
    a_file.write_text("not a folder")
    nb = _notebook(tmp_path / "00_x.ipynb", "results_dir = None", "x = 1")
    with pytest.raises(ValueError, match="is a file; pass a folder"):
        run_course(notebooks=[nb], output=a_file)
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        run_course(preset="huge", notebooks=[nb])


def test_failing_notebook_is_reported_and_the_run_continues(tmp_path):
    good = _notebook(tmp_path / "01_good.ipynb", "results_dir = None\nx = 2",
                     "from debias_utils.results import save_results\nsave_results('01_good', {'x_squared': x * x}, results_dir)")
    bad = _notebook(tmp_path / "02_bad.ipynb", "results_dir = None", "raise RuntimeError('deliberate failure')")
    runs, out = run_course(notebooks=[bad, good], output=tmp_path / "run", echo=lambda *_: None)
    assert [r.status for r in runs] == ["failed", "ok"]
    assert "RuntimeError" in runs[0].error and "deliberate failure" in runs[0].error
    report = (out / "report.md").read_text()
    assert "1 of 2 notebooks ran cleanly" in report and "02_bad" in report and "deliberate failure" in report
    assert "| x_squared | 4 |" in report
    assert "<table>" in (out / "report.html").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runs"][1]["results"] == {"x_squared": 4}


def test_cli_exit_codes(tmp_path, capsys):
    assert cli.main(["run", "--only", "99_nothing", "--output", str(tmp_path)]) == 2
    assert "matches no notebook" in capsys.readouterr().err
    a_file = tmp_path / "report.txt"
    a_file.write_text("")
    assert cli.main(["run", "--only", "00", "--output", str(a_file)]) == 2
    assert "is a file; pass a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["run", "--preset", "huge"])


def test_output_inside_notebooks_is_refused():
    with pytest.raises(ValueError, match="must not be inside notebooks"):
        run_course(only=["00"], output=NOTEBOOKS / "runs")


def test_report_values_stay_inside_one_table_cell():
    from debias_utils.runner import _fmt

    assert _fmt("Paris.\n\nThe | end") == "Paris. ⏎  ⏎ The \\| end"
    assert _fmt(0.123456) == "0.1235"


def test_report_shows_saved_rows_as_their_own_table(tmp_path):
    rows = [{"model": "original", "D": 0.2172}, {"model": "gates", "D": 0.1518, "note": "a|b"}]
    nb = _notebook(tmp_path / "01_rows.ipynb", "results_dir = None",
                   "from debias_utils.results import save_results\n"
                   f"save_results('01_rows', {{'summary': {rows!r}, 'n': 3}}, results_dir)")
    runs, out = run_course(notebooks=[nb], output=tmp_path / "run", echo=lambda *_: None)
    assert runs[0].status == "ok", runs[0].error
    report = (out / "report.md").read_text()
    assert "| n | 3 |" in report and "**summary**" in report
    assert "| D | model | note |" in report   # save_results sorts keys
    assert "| 0.2172 | original |  |" in report and "| 0.1518 | gates | a\\|b |" in report
    assert "| summary |" not in report   # not also squeezed into one cell


def test_every_preset_parameter_exists_in_its_notebook():
    """A typo in a preset would otherwise only show up as papermill's 'unknown parameter' warning."""
    from debias_utils.runner import PRESETS

    by_name = {notebook_name(p): p for p in course_notebooks()}
    for preset, per_notebook in PRESETS.items():
        for name, parameters in per_notebook.items():
            assert name in by_name, f"preset {preset!r} names {name!r}, which is not a course notebook"
            # The runner checks presets against what papermill itself reads from the parameters cell.
            defined = set(papermill.inspect_notebook(str(by_name[name])))
            assert "results_dir" in defined, f"{name} has no results_dir parameter"
            missing = set(parameters) - defined
            assert not missing, f"preset {preset!r} sets {sorted(missing)} which {name}'s parameters cell lacks"


def test_papermill_reads_every_parameter():
    """Papermill parses the parameters cell line by line and silently drops a line it cannot read (e.g. one
    with '=' inside its comment) — that parameter then cannot be set by a preset. It must see every name."""
    paths = sorted(NOTEBOOKS.rglob("*.ipynb"))
    assert len(paths) >= 17
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if not any("parameters" in c.metadata.get("tags", []) for c in nb.cells):
            continue
        assert set(papermill.inspect_notebook(str(path))) == _parameter_names(nb.cells), path.name


def test_every_course_notebook_is_batch_ready():
    """Papermill needs a `parameters` cell with results_dir; nbval and the runner need the python3 kernel."""
    for path in course_notebooks():
        nb = nbformat.read(path, as_version=4)
        assert nb.metadata["kernelspec"]["name"] == "python3", path
        cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(cells) == 1, f"{path.name}: exactly one cell must be tagged 'parameters'"
        defined = _parameter_names(cells)
        assert {"seed", "results_dir"} <= defined, f"{path.name}: parameters must define seed and results_dir"
        assert "save_results(" in "".join(c.source for c in nb.cells), f"{path.name} never calls save_results"


def test_record_writes_the_numbers_with_their_provenance(small_course, tmp_path):
    from debias_utils.results import read_recorded

    record = tmp_path / "results"
    assert cli.main(["run", "--preset", "test", "--only", "00", "--output", str(tmp_path / "run"),
                     "--record", str(record)]) == 0
    saved = read_recorded(record / "00_first.json")
    assert saved["numbers"] == {"length": 8, "word": "injected"} and saved["preset"] == "test"
    assert saved["command"] == f"debias-llm run --preset test --only 00 --record {record}"
    assert {"python", "torch", "transformers", "debias_utils"} <= set(saved["versions"])
    assert len(saved["git_commit"].split("+")[0]) == 40 and "CPU cores" in saved["machine"]
    assert sorted(p.name for p in record.iterdir()) == ["00_first.json"]   # only what ran


def test_read_recorded_says_what_is_wrong(tmp_path):
    from debias_utils.results import read_recorded

    with pytest.raises(FileNotFoundError, match="debias-llm run --preset full --only 08 --record"):
        read_recorded(tmp_path / "08_gate_attention.json")
    bad = tmp_path / "09_x.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_recorded(bad)
    bad.write_text('{"numbers": {}}')
    with pytest.raises(ValueError, match="is not a recorded result"):
        read_recorded(bad)
