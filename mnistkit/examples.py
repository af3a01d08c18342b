"""The bundled example submissions, made on demand from source/ and release/.

Rather than commit filled-in notebooks that drift from the assignments, examples are derived:
- ``reference``: every answer cell as in the instructor notebook (full marks expected);
- ``untouched``: the student notebook as released (0 on every auto-graded exercise);
- ``half_right``: the release with every other auto-graded exercise answered correctly.
``with_answers`` is the general tool (tests use it for mutants: one wrong answer at a time).
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat

from mnistkit import catalog
from mnistkit.cells import ANSWER_SUFFIX
from mnistkit.paths import RELEASE, SOURCE

KINDS = ("reference", "half_right", "untouched")
_MARKER_LINE = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.M)


def solution_code(source_cell_source: str) -> str:
    """An answer cell as a student who got it right would leave it: markers removed."""
    return _MARKER_LINE.sub("", source_cell_source)


def reference_answers(assignment: str) -> dict[str, str]:
    """exercise id -> the instructor's answer cell source, for every answer cell."""
    answers = {}
    for path in sorted((SOURCE / assignment).glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id") or ""
            if cell.cell_type == "code" and grade_id.endswith(ANSWER_SUFFIX):
                answers[grade_id.removesuffix(ANSWER_SUFFIX)] = solution_code(cell.source)
    return answers


def with_answers(assignment: str, answers: dict[str, str], dest: Path) -> Path:
    """Write the released notebooks into ``dest`` with the given answer cells filled in."""
    dest.mkdir(parents=True, exist_ok=True)
    unused = set(answers)
    for path in sorted((RELEASE / assignment).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id") or ""
            exercise = grade_id.removesuffix(ANSWER_SUFFIX)
            if grade_id.endswith(ANSWER_SUFFIX) and exercise in answers:
                cell.source = answers[exercise]
                unused.discard(exercise)
        nbformat.write(nb, dest / path.name)
    if unused:
        raise KeyError(f"{assignment} has no answer cell for: {', '.join(sorted(unused))}")
    return dest


def make(kind: str, assignment: str, dest: Path) -> Path:
    answers = reference_answers(assignment)
    if kind == "reference":
        return with_answers(assignment, answers, dest)
    if kind == "untouched":
        return with_answers(assignment, {}, dest)
    if kind == "half_right":
        auto = [ex.id for ex in catalog.load() if ex.assignment == assignment and ex.kind == "auto"]
        keep = {ex_id for ex_id in auto[::2]}
        # Answer cells that belong to no graded exercise (helpers) stay answered too.
        return with_answers(assignment, {k: v for k, v in answers.items()
                                         if k in keep or k not in auto}, dest)
    raise ValueError(f"unknown example kind {kind!r}; known: {', '.join(KINDS)}")
