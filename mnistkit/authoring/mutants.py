"""Plausible wrong answers, declared beside the answer they get wrong.

A mutant is a raw cell right after its exercise's graded cell, starting with
``# mutant of <id>: <what is wrong>``; the rest of the cell replaces the whole answer cell.
Raw cells never run in JupyterLab or nbgrader, and ``RemoveAuthoringCells`` drops them (and the
reference prelude) from the release, so students never see them.

A notebook that is the reference with one mutant in place must lose points on that exercise and
on no other (tests/test_grade_assignments.py grades each exercise's first mutant in the sandbox;
a3's others run in-process). The first mutant of an exercise is the one that matters most.
"""
from __future__ import annotations

from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor

from mnistkit.authoring import parts
from mnistkit.paths import SOURCE


def mutants(assignment: str, source: Path = SOURCE) -> dict[str, list[tuple[str, str]]]:
    """exercise id -> [(what is wrong, replacement answer cell source), ...], notebook order."""
    declared = parts.read(assignment, source)
    return {ex.id: [(m.what, m.source) for m in ex.mutants]
            for ex in declared.exercises if ex.mutants}


def is_authoring_cell(cell) -> bool:
    """A cell for instructors and the kit only: a mutant or the reference prelude."""
    if cell.get("cell_type") != "raw":
        return False
    source = cell.get("source", "")
    first = ("".join(source) if isinstance(source, list) else source).split("\n", 1)[0].strip()
    return bool(parts.MUTANT_HEADER.match(first)) or first.startswith(parts.PRELUDE_HEADER)


class RemoveAuthoringCells(NbGraderPreprocessor):
    """nbgrader release step: the mutants and the reference prelude never reach students."""

    def preprocess(self, nb, resources):
        nb.cells = [cell for cell in nb.cells if not is_authoring_cell(cell)]
        return nb, resources
