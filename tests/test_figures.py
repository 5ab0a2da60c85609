"""The README figures: ``scripts/make_figures.py`` draws them deterministically, and the committed copies in
``readme_images/`` are exactly what it draws now (derived files kept in sync, as fastbook's CI does)."""
from __future__ import annotations

import hashlib
import runpy
import struct
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "make_figures.py"
COMMITTED = REPO / "readme_images"
FIGURES = ("transformer.png", "bias.png", "decoding.png", "gates.png", "stages.png")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REGENERATE = f"run `{sys.executable} scripts/make_figures.py` and commit readme_images/"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, after checking the PNG signature."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG file"
    assert head[12:16] == b"IHDR", f"{path.name} has no IHDR chunk first"
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def drawn(tmp_path_factory) -> Path:
    """The figures, drawn once by the script, run as a user would run it, into a fresh folder."""
    out = tmp_path_factory.mktemp("figures")
    result = subprocess.run([sys.executable, str(SCRIPT), str(out)], capture_output=True, text=True,
                            timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, f"drawing warned (missing glyph? clipped text?):\n{result.stderr}"
    return out


@pytest.mark.parametrize("name", FIGURES)
def test_figure_is_a_readme_sized_png(drawn, name):
    path = drawn / name
    assert path.is_file(), f"{name} was not written"
    width, height = png_size(path)
    assert width == 800, f"{name} is {width} px wide; README figures are 800 px (figsize width 8 at dpi 100)"
    assert 300 <= height <= 480, f"{name} is {height} px high; keep it between 300 and 480"
    assert 10_000 < path.stat().st_size < 200_000, f"{name} is {path.stat().st_size} bytes; keep it < 200 KB"


@pytest.mark.parametrize("name", FIGURES)
def test_committed_figure_is_in_sync(drawn, name):
    # Also the determinism check: the committed file came from an earlier, separate run of the script.
    committed = COMMITTED / name
    assert committed.is_file(), f"readme_images/{name} is missing; {REGENERATE}"
    new, old = (hashlib.sha256(p.read_bytes()).hexdigest() for p in (drawn / name, committed))
    assert new == old, f"readme_images/{name} differs from what scripts/make_figures.py draws; {REGENERATE}"


def test_no_metadata_that_changes_between_runs(drawn):
    # Chunks like tEXt "Software" or tIME would tie the bytes to a matplotlib version or a clock.
    data = (drawn / "bias.png").read_bytes()
    assert b"tIME" not in data and b"Software" not in data


def test_bad_arguments_are_refused(tmp_path):
    module = runpy.run_path(str(SCRIPT), run_name="make_figures")  # defines, draws nothing
    assert module["main"](["--help"]) == 2
    assert module["main"]([str(tmp_path), "extra"]) == 2
    assert list(tmp_path.iterdir()) == []  # refused before drawing anything
    a_file = tmp_path / "not_a_folder.png"
    a_file.write_bytes(b"x")
    with pytest.raises(ValueError, match="pass a folder"):
        module["make_figures"](a_file)
