"""Build nbgrader cells the kit's way, so every exercise is marked up identically.

Conventions (docs/ARCHITECTURE.md has the full story):
- an auto-graded exercise ``X`` is a solution code cell ``X-answer`` (the student's code)
  followed by a locked, graded self-check cell ``X`` that carries the points;
- a hand-graded exercise ``X`` is a task cell ``X`` (the question, points, and a mark scheme
  that only graders see) followed by an answer cell ``X-answer`` the student writes in;
- ``metadata.mnistkit.questionnaire`` on the graded cell lists the questionnaire items it answers.
Source notebooks are edited in JupyterLab (hand-graded tasks too); these helpers are for scripts
and tests that make cells.
"""
from __future__ import annotations

from nbformat.v4 import new_code_cell, new_markdown_cell

ANSWER_SUFFIX = "-answer"


def _nbgrader(cell, **fields):
    cell.metadata["nbgrader"] = {"schema_version": 3, "solution": False, "grade": False,
                                 "locked": False, "task": False, **fields}
    return cell


def _mnistkit(cell, questionnaire):
    cell.metadata["mnistkit"] = {"questionnaire": sorted(questionnaire)}
    return cell


def markdown(text: str):
    """Explanatory text, read-only for the student."""
    return new_markdown_cell(text)


def locked_code(grade_id: str, source: str):
    """Setup code the student runs but should not change (restored at grading)."""
    return _nbgrader(new_code_cell(source), locked=True, grade_id=grade_id)


def answer_code(exercise_id: str, source: str):
    """Where the student writes code; ``source`` holds ### BEGIN/END SOLUTION markers."""
    return _nbgrader(new_code_cell(source), solution=True, grade_id=exercise_id + ANSWER_SUFFIX)


def self_check(exercise_id: str, points: float, source: str, questionnaire=()):
    """The graded cell: a visible self-check; the hidden autograder decides its score."""
    cell = _nbgrader(new_code_cell(source), grade=True, locked=True, grade_id=exercise_id,
                     points=points)
    return _mnistkit(cell, questionnaire)
