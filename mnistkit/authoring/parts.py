"""An assignment's exercises with all their parts, read from the source notebook.

Plain json, like ``mnistkit.catalog`` (importing nbformat costs seconds); the notebook is the
instructor's and trusted. Cell numbers are 1-based, as JupyterLab shows them nowhere but
people count them: messages also give the cell's id.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from mnistkit import catalog
from mnistkit.cells import ANSWER_SUFFIX
from mnistkit.paths import SOURCE

MUTANT_HEADER = re.compile(r"^# mutant of (?P<id>[A-Za-z_][\w]*): (?P<what>.+)$")
PRELUDE_HEADER = "# reference prelude"
_MARKER_LINE = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.M)


def without_markers(source: str) -> str:
    """An answer cell as the reference solution: the solution markers removed."""
    return _MARKER_LINE.sub("", source)


@dataclass(frozen=True)
class Cell:
    number: int            # 1-based position in the notebook
    id: str                # the cell's nbformat id (or its grade id)
    type: str
    source: str
    metadata: dict

    @property
    def grade_id(self) -> str:
        return self.metadata.get("nbgrader", {}).get("grade_id") or ""

    def where(self, notebook: Path) -> str:
        return f"{notebook.relative_to(notebook.parents[2]) if len(notebook.parents) > 2 else notebook}, cell {self.number} ({self.grade_id or self.id})"


@dataclass(frozen=True)
class Mutant:
    exercise: str
    what: str
    source: str            # the whole answer cell it replaces the reference's with
    cell: Cell


@dataclass
class ExerciseParts:
    id: str
    kind: str                               # "auto" or "manual"
    points: float
    questionnaire: list[int]
    reads_code: bool
    graded: Cell
    answer: Cell | None = None
    prompt: str = ""                        # the markdown since the previous graded cell
    mutants: list[Mutant] = field(default_factory=list)

    @property
    def reference(self) -> str:
        return without_markers(self.answer.source) if self.answer else ""


@dataclass
class AssignmentParts:
    assignment: str
    notebook: Path
    cells: list[Cell]
    exercises: list[ExerciseParts]
    prelude: Cell | None                    # raw cell "# reference prelude" (imports, stand-ins)
    reference_cells: list[Cell]             # given code the references use (mnistkit.reference)
    stray_mutants: list[Mutant]             # mutants of no exercise of this notebook

    def exercise(self, exercise_id: str) -> ExerciseParts:
        return next(ex for ex in self.exercises if ex.id == exercise_id)


def _cells(path: Path) -> list[Cell]:
    return [Cell(number=i, id=c.get("id", ""), type=c["cell_type"], source=c["source"],
                 metadata=c["metadata"])
            for i, c in enumerate(catalog.read_cells(path), start=1)]


def read_notebook(path: Path, assignment: str) -> AssignmentParts:
    cells = _cells(path)
    answers = {c.grade_id.removesuffix(ANSWER_SUFFIX): c for c in cells
               if c.type == "code" and c.grade_id.endswith(ANSWER_SUFFIX)}
    exercises, mutants, prelude, reference_cells = [], [], None, []
    for ex in catalog.notebook_exercises(path, assignment):
        graded = next(c for c in cells if c.grade_id == ex.id and c.type != "raw")
        answer = answers.get(ex.id) if ex.kind == "auto" else None
        prompt = ""
        if answer is not None:   # the markdown since the previous graded cell
            before = []
            for c in reversed(cells[:answer.number - 1]):
                if c.metadata.get("nbgrader", {}).get("grade"):
                    break
                if c.type == "markdown":
                    before.insert(0, c.source)
            prompt = "\n\n".join(before)
        exercises.append(ExerciseParts(
            id=ex.id, kind=ex.kind, points=ex.points, questionnaire=ex.questionnaire,
            reads_code=bool(graded.metadata.get("mnistkit", {}).get("reads_code")),
            graded=graded, answer=answer, prompt=prompt))
    for c in cells:
        first = c.source.split("\n", 1)[0].strip()
        if c.type == "raw" and (m := MUTANT_HEADER.match(first)):
            body = c.source.split("\n", 1)[1] if "\n" in c.source else ""
            mutants.append(Mutant(m["id"], m["what"].strip(), body, c))
        elif c.type == "raw" and first.startswith(PRELUDE_HEADER):
            prelude = c
        elif c.type == "code" and c.metadata.get("mnistkit", {}).get("reference"):
            reference_cells.append(c)
    by_id = {ex.id: ex for ex in exercises}
    stray = []
    for mutant in mutants:
        (by_id[mutant.exercise].mutants if mutant.exercise in by_id else stray).append(mutant)
    return AssignmentParts(assignment, path, cells, exercises, prelude, reference_cells, stray)


def read(assignment: str, source: Path = SOURCE) -> AssignmentParts:
    """The one notebook of ``source/<assignment>/`` (the kit has one per assignment)."""
    notebooks = sorted((source / assignment).glob("*.ipynb"))
    if len(notebooks) != 1:
        raise ValueError(f"{source / assignment}: expected one notebook, found {len(notebooks)}")
    return read_notebook(notebooks[0], assignment)
