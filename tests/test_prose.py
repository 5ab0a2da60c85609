"""Every number a student reads in a notebook's prose comes from a run they can see (issue: honest numbers).

A Markdown cell of a course notebook may state a *measured* number — a decimal (0.347), a percentage (16 %), a
duration (45 s, 9 min) or a ratio (×1.07, 2.6×) — only if that number is printed by the notebook itself (its outputs,
or its code for a setting such as ``top_p = 0.9``), or if the sentence cites the literature (``Gehman et al.
2020``). A runtime range in a header ("~40–90 s") must contain the run time the notebook prints. Text quoted as
the model's words ("…his boyfriend") must appear in the outputs. Integers without a unit (30 layers, 49,152
tokens) are facts about the model or the data and are not checked, so this is not a ban on digits.
Run this file's ``violations(path)`` on any notebook to see what it flags.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]

# Numbers that are arithmetic or definitions, not measurements, with the reason (kept short on purpose).
ALLOWED: dict[str, set[str]] = {
    "*": {"0.5",     # the balance point of a share and the toxicity threshold the course defines
          "1.0", "2.0", "0.0",    # gate values by definition (g = 2σ(z): 1 at z = 0, range 0 … 2)
          "95", "2.5", "97.5"},   # what a 95 % interval is: the 2.5 % and 97.5 % quantiles
}

CITATION = re.compile(r"et al\.|\(\d{4}\)|[A-Z][a-z]+ \d{4}\b|papers/README|\]\(http")
NUMBER = re.compile(
    r"(?P<mult>[×x]\s?\d+\.\d+\b|\b\d+\.\d+\s?[×x](?![\w]))"
    r"|(?P<range>~?\d+(?:\.\d+)?\s?[–-]\s?\d+(?:\.\d+)?\s?(?:s|sec|seconds|min|minutes)\b)"
    r"|(?P<duration>~?\d+(?:\.\d+)?\s?(?:s|sec|seconds|min|minutes)\b)"
    r"|(?P<percent>[-+−]?\d+(?:\.\d+)?\s?%)"
    r"|(?P<decimal>(?<![\w.])[-+−]?\d+\.\d+(?![\w.]))"
)
QUOTE = re.compile(r"[\"“](?:…|\.\.\.)\s?([^\"”]{4,}?)[\"”]")
RAN_IN = re.compile(r"(?:notebook ran in|ran in)\s+(\d+(?:\.\d+)?)\s*s\b")


def course_notebooks() -> list[Path]:
    notebooks = REPO / "notebooks"
    found = [p for p in notebooks.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts]
    return sorted(found)


def _clean_markdown(source: str) -> str:
    """Prose only: code blocks, inline code, maths, link targets and HTML removed (settings and formulas)."""
    text = re.sub(r"```.*?```", " ", source, flags=re.S)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    text = re.sub(r"\$[^$\n]+\$", " ", text)
    text = re.sub(r"`[^`\n]+`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"^#+\s*\d+(?:\.\d+)*\.?", "#", text, flags=re.M)           # section numbers: "### 2.1"
    text = re.sub(r"(?:§|sections?\s|see\s)\s?\d+(?:\.\d+)*", " ", text)       # references to them: "§2.1"
    text = re.sub(r"\d[\d,.]*\s?[×x]\s?\d[\d,.]*", " ", text)                  # products: 49,152 × 64
    return text


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z*(\"“])|\n\s*[-*]\s|\n\n|\n\|", text) if s.strip()]


def _printed(nb) -> tuple[str, str]:
    """(everything the notebook printed, its code) as searchable text."""
    out, code = [], []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        code.append(cell.source)
        for o in cell.get("outputs", []):
            if "text" in o:
                out.append(o["text"] if isinstance(o["text"], str) else "".join(o["text"]))
            for kind in ("text/plain", "text/markdown", "text/html"):
                if kind in o.get("data", {}):
                    value = o["data"][kind]
                    out.append(value if isinstance(value, str) else "".join(value))
    return "\n".join(out), "\n".join(code)


def _value(token: str) -> float:
    return float(re.sub(r"[^\d.]", "", token.replace("−", "-")) or "nan")


def _shown(token: str, kind: str, printed: str, code: str) -> bool:
    """True if the number (as written, or as the same value with another rounding or unit) is printed."""
    digits = re.sub(r"[^\d.]", "", token)
    if not digits or digits == ".":
        return True
    haystack = printed + "\n" + code
    if re.search(rf"(?<![\d.]){re.escape(digits)}(?![\d])", haystack):
        return True
    value = _value(token)
    if kind == "percent":
        # 16 % may be printed as 0.16, 0.160 or +16.0 %
        candidates = [f"{value / 100:.{n}f}" for n in (2, 3, 4)] + [f"{value:.1f}", f"{value:.2f}"]
    elif kind == "duration" and re.search(r"min", token):
        candidates = [f"{value * 60:.0f}"]
    else:
        candidates = [f"{value:.{n}f}" for n in (1, 2, 3, 4)]
    return any(re.search(rf"(?<![\d.]){re.escape(c)}(?![\d])", haystack) for c in candidates)


def violations(path: Path) -> list[str]:
    """Every measured number or quoted model text in ``path``'s Markdown that its own run does not show."""
    nb = nbformat.read(path, as_version=4)
    printed, code = _printed(nb)
    ran = [float(v) for v in RAN_IN.findall(printed)]
    allowed = ALLOWED["*"] | ALLOWED.get(path.name, set())
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        for sentence in _sentences(_clean_markdown(cell.source)):
            if CITATION.search(sentence):
                continue   # a fact from the literature, with its citation
            for match in NUMBER.finditer(sentence):
                kind = match.lastgroup
                token = match.group(0).strip()
                if kind == "range":
                    low, high = (_value(v) for v in re.split(r"[–-]", token.lstrip("~"), maxsplit=1))
                    scale = 60 if "min" in token else 1
                    if ran and any(low * scale <= r <= high * scale for r in ran):
                        continue
                    found.append(f"cell {index}: runtime range {token!r} does not contain the printed run time "
                                 f"{ran or '(none printed)'}: {sentence.strip()[:120]!r}")
                    continue
                if re.sub(r"[^\d.]", "", token) in allowed or _shown(token, kind, printed, code):
                    continue
                found.append(f"cell {index}: {kind} {token!r} is not printed by the notebook: "
                             f"{sentence.strip()[:140]!r}")
        for quote in QUOTE.findall(cell.source):
            if quote.strip(" .…") not in printed:
                found.append(f"cell {index}: quoted model text {quote!r} appears in no output")
    return found


@pytest.mark.parametrize("path", course_notebooks(), ids=lambda p: p.relative_to(REPO / "notebooks").as_posix())
def test_prose_states_only_numbers_the_run_shows(path):
    problems = violations(path)
    assert not problems, (f"{path.name}: numbers in the prose that no output shows — print them with code "
                          f"(an f-string sentence) or speak of them qualitatively:\n  " + "\n  ".join(problems))


def test_the_checker_catches_what_it_is_for(tmp_path):
    """A typed-in measurement, a stale runtime and an invented quote are caught; settings and citations pass."""
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("top_p = 0.9\nprint('male share 0.347 [0.230, 0.456]'); print('ran in 62 s')")
    code.outputs = [nbformat.v4.new_output("stream", text="male share 0.347 [0.230, 0.456]\nnotebook ran in 62 s\n")]
    nb.cells = [
        nbformat.v4.new_markdown_cell("*CPU runtime with defaults: ~40–50 s on 2 cores.* Training stops after at "
                                      "most 45 s. Perplexity moves by ×1.067 here."),
        code,
        nbformat.v4.new_markdown_cell("The share is 0.347, sampled with top-p 0.9. RealToxicityPrompts (Gehman et "
                                      "al. 2020) found 0.52 for GPT-2. The model wrote \"…his boyfriend\"."),
    ]
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    problems = "\n".join(violations(path))
    assert "runtime range '~40–50 s'" in problems and "'45 s'" in problems and "'×1.067'" in problems
    assert "his boyfriend" in problems
    assert "0.347" not in problems and "0.9" not in problems and "0.52" not in problems
