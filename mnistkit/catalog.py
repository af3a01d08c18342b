"""The exercise catalog, read from the source notebooks: the one place points are set.

Every graded cell of a source notebook is one exercise: a locked self-check code cell is an
auto-graded exercise, a task cell is a hand-graded one. Its nbgrader ``grade_id`` is the
exercise id used everywhere (hidden tests, reports); ``metadata.mnistkit.questionnaire`` lists
the chapter's questionnaire items it answers, ``reads_code`` marks an exercise whose code the
grader reads (its technique checks: the plugin re-binds that code before each of its checks).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mnistkit.paths import SOURCE


@dataclass(frozen=True)
class Exercise:
    id: str
    assignment: str
    notebook: str          # notebook name without .ipynb, as nbgrader names it
    kind: str              # "auto" (hidden autograder) or "manual" (graded by hand)
    points: float
    questionnaire: list[int] = field(default_factory=list)
    title: str = ""        # first line of the task text / self-check comment
    reads_code: bool = False   # the grader reads its code (technique checks; metadata.mnistkit)


def assignments(source: Path = SOURCE) -> list[str]:
    return sorted(p.name for p in source.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def read_cells(path: Path) -> list[dict]:
    """The cells of a trusted notebook as plain dicts, sources joined into strings.

    Plain json rather than nbformat: importing nbformat costs ~4 s (jsonschema's format checkers
    compile a grammar at import), paid by every grading subprocess that reads the catalog."""
    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        cell["source"] = "".join(cell.get("source", ""))
        cell.setdefault("metadata", {})
    return cells


def _title(cell) -> str:
    first = next((line for line in cell["source"].splitlines() if line.strip()), "")
    return first.lstrip("#* ").strip()[:80]


def notebook_exercises(path: Path, assignment: str) -> list[Exercise]:
    found = []
    for cell in read_cells(path):
        meta = cell["metadata"].get("nbgrader", {})
        if not (meta.get("grade") or meta.get("task")):
            continue
        if meta.get("task") or cell["cell_type"] == "markdown":
            kind = "manual"
        elif meta.get("solution"):
            raise ValueError(f"{path}: cell {meta.get('grade_id')} is an autograded answer cell; "
                             "the kit grades code through a locked self-check cell")
        else:
            kind = "auto"
        found.append(Exercise(
            id=meta["grade_id"], assignment=assignment, notebook=path.stem, kind=kind,
            points=float(meta.get("points", 0)),
            questionnaire=list(cell["metadata"].get("mnistkit", {}).get("questionnaire", [])),
            title=_title(cell),
            reads_code=bool(cell["metadata"].get("mnistkit", {}).get("reads_code"))))
    return found


def load(source: Path = SOURCE) -> list[Exercise]:
    """All exercises of all assignments, in notebook order; ids must be unique kit-wide."""
    exercises = []
    for assignment in assignments(source):
        for path in sorted((source / assignment).glob("*.ipynb")):
            exercises += notebook_exercises(path, assignment)
    seen = set()
    for ex in exercises:
        if ex.id in seen:
            raise ValueError(f"exercise id {ex.id!r} is used twice; ids must be unique")
        seen.add(ex.id)
    return exercises


def by_id(source: Path = SOURCE) -> dict[str, Exercise]:
    return {ex.id: ex for ex in load(source)}


def to_json(exercises: list[Exercise]) -> str:
    return json.dumps([asdict(ex) for ex in exercises], indent=2)
