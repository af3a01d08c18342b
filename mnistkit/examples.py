"""The bundled example submissions, made on demand from source/ and release/.

Rather than commit filled-in notebooks that drift from the assignments, examples are derived:
- ``reference``: every answer cell as in the instructor notebook (full marks expected);
- ``untouched``: the student notebook as released (0 on every auto-graded exercise);
- ``half_right``: the release with every other auto-graded exercise answered correctly.
``with_answers`` is the general tool (tests use it for mutants: one wrong answer at a time);
``fill_folder`` answers notebooks a student already has (fetched through the exchange).
"""
from __future__ import annotations

import re
import shutil
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


def fill_answers(nb, answers: dict[str, str]) -> set[str]:
    """Put ``answers`` (exercise id -> source) into ``nb``'s answer cells, in place; returns
    the exercises it found an answer cell for."""
    filled = set()
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id") or ""
        exercise = grade_id.removesuffix(ANSWER_SUFFIX)
        if grade_id.endswith(ANSWER_SUFFIX) and exercise in answers:
            cell.source = answers[exercise]
            filled.add(exercise)
    return filled


def fill_folder(folder: Path, answers: dict[str, str]) -> None:
    """Answer the notebooks already in ``folder`` (a student's fetched copy), rewriting each
    file in place: it keeps its owner and mode."""
    for path in sorted(Path(folder).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        fill_answers(nb, answers)
        nbformat.write(nb, str(path))


def add_cells(nb, added) -> set[str]:
    """Insert cells a student added: ``(where, cell_type, source)`` with ``where`` one of
    ``start``, ``end``, ``before:<exercise>`` or ``after:<exercise>`` (its answer cell); returns
    the exercises named that have no answer cell here. An optional fourth item is the cell's id
    (what Jupyter saves, up to 64 letters, digits, ``-`` and ``_``: a4's corpus hides data there)."""
    missing = set()
    for where, cell_type, source, *cell_id in added:
        new = (nbformat.v4.new_code_cell(source) if cell_type == "code"
               else nbformat.v4.new_markdown_cell(source))
        if cell_id:
            new.id = cell_id[0]
        if where in ("start", "end"):
            nb.cells.insert(0 if where == "start" else len(nb.cells), new)
            continue
        side, _, exercise = where.partition(":")
        at = next((i for i, c in enumerate(nb.cells)
                   if c.metadata.get("nbgrader", {}).get("grade_id") == exercise + ANSWER_SUFFIX), None)
        if at is None:
            missing.add(exercise)
        else:
            nb.cells.insert(at if side == "before" else at + 1, new)
    return missing


def with_answers(assignment: str, answers: dict[str, str], dest: Path, added=()) -> Path:
    """Write the released notebooks into ``dest`` with the given answer cells filled in, and
    the cells in ``added`` inserted (``add_cells``)."""
    dest.mkdir(parents=True, exist_ok=True)
    unused = set(answers)
    places = {where.partition(":")[2] for where, *_ in added if ":" in where}
    for path in sorted((RELEASE / assignment).iterdir()):
        if path.suffix != ".ipynb":          # the assignment's other files (grader_reads.py)
            shutil.copyfile(path, dest / path.name)
            continue
        nb = nbformat.read(path, as_version=4)
        unused -= fill_answers(nb, answers)
        places &= add_cells(nb, added)
        nbformat.write(nb, dest / path.name)
    if unused or places:
        raise KeyError(f"{assignment} has no answer cell for: {', '.join(sorted(unused | places))}")
    return dest


def answers_for(kind: str, assignment: str) -> dict[str, str]:
    """The answer cells an example of ``kind`` fills in (exercise id -> source)."""
    answers = reference_answers(assignment)
    if kind == "reference":
        return answers
    if kind == "untouched":
        return {}
    if kind == "half_right":
        auto = [ex.id for ex in catalog.load() if ex.assignment == assignment and ex.kind == "auto"]
        keep = set(auto[::2])
        # Answer cells that belong to no graded exercise (helpers) stay answered too.
        return {k: v for k, v in answers.items() if k in keep or k not in auto}
    raise ValueError(f"unknown example kind {kind!r}; known: {', '.join(KINDS)}")


def make(kind: str, assignment: str, dest: Path) -> Path:
    return with_answers(assignment, answers_for(kind, assignment), dest)
