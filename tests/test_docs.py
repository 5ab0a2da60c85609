"""The package's docstrings tell the truth about where the course teaches each function.

A docstring that says "Taught in ``notebooks/NN_x.ipynb``" (or "used in ``NN_y.ipynb``") sends a student to that
notebook; the notebook must then really use the function — its name must appear in one of its code cells.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "debias_utils"
POINTER = re.compile(r"(?:Taught in|[Uu]sed in)\s+((?:``[^`]+``(?:\s*(?:,|and)\s*)?)+)")
NAME = re.compile(r"``([^`]+)``")


def _course_code() -> dict[str, str]:
    """Code of every course notebook (solutions excluded), by path relative to the repository."""
    code = {}
    for path in sorted((REPO / "notebooks").rglob("*.ipynb")):
        if "solutions" in path.parts or ".ipynb_checkpoints" in path.parts:
            continue
        nb = nbformat.read(path, as_version=4)
        code[path.relative_to(REPO).as_posix()] = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    return code


def _resolve(pointer: str, code: dict[str, str]) -> list[str]:
    """The notebooks a pointer names: a full path, a folder (``notebooks/08_gate_attention``) or a file name."""
    pointer = pointer.rstrip("/.")
    return [p for p in code if p == pointer or p.startswith(pointer + "/") or p.endswith("/" + pointer)]


def _documented(tree: ast.Module):
    """(name, docstring) of every public function, class and public method of a module."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            yield node.name, ast.get_docstring(node) or ""
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and not item.name.startswith("_"):
                        yield item.name, ast.get_docstring(item) or ""


def pointers() -> list[tuple[str, str, str]]:
    found = []
    for module in sorted(PACKAGE.rglob("*.py")):
        for name, doc in _documented(ast.parse(module.read_text())):
            for group in POINTER.findall(" ".join(doc.split())):
                for target in NAME.findall(group):
                    if target.endswith((".ipynb", ".md")) or target.startswith("notebooks/") or target[:2].isdigit():
                        found.append((module.relative_to(REPO).as_posix(), name, target))
    return found


def test_there_are_pointers_to_check():
    assert len(pointers()) >= 50   # the pattern must keep finding the pointers it is meant to check


@pytest.mark.parametrize("module, name, target", pointers(), ids=lambda v: str(v))
def test_every_taught_in_pointer_names_a_notebook_that_uses_the_function(module, name, target):
    code = _course_code()
    notebooks = _resolve(target, code)
    assert notebooks, f"{module}: {name}'s docstring points to {target!r}, which is not a course notebook"
    uses = [p for p in notebooks if re.search(rf"\b{re.escape(name)}\b", code[p])]
    assert uses, (f"{module}: {name}'s docstring says it is taught in {target}, but no code cell there uses "
                  f"{name}; point to the notebook that does, or say how the package uses it instead")
