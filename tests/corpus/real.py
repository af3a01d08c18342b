"""Attacks on the real assignments (issue 10), graded in `make test` by
tests/test_grade_corpus_real.py against the score each deserves.

Cases live in ``tests/corpus/real_<topic>.py`` modules (one per assignment, plus modules for
attacks on the grader itself) as ``CASES``, a list of ``Case``. A case is one submission: the reference answers with some answer cells replaced
(``answers``: exercise id -> cell source), so that one grading carries several attacks on
different exercises. ``deserves`` gives, per attacked exercise, the most it may score (0 for a
cheat that computes nothing); every other auto-graded exercise must keep full marks -- a forged
answer never costs another exercise anything.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

AUTOGRADER = Path(__file__).resolve().parents[2] / "autograder"


@dataclass
class Case:
    assignment: str               # e.g. "a1_pixel_similarity"
    name: str                     # the submission's folder name, e.g. "bools_for_numbers"
    attack: str                   # which class of issue 10 it tries (for the report)
    answers: dict[str, str]       # exercise id -> answer cell source
    deserves: dict[str, float]    # exercise id -> the most it may score
    # exercises that may lose points through the attack's side effects (rare; say why)
    may_also_lose: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)   # extra MNISTKIT_LIMIT_* etc.
    # cells the student added: (where, cell_type, source[, id]), see mnistkit.examples.add_cells
    cells: list[tuple[str, str, str]] = field(default_factory=list)
    # ``deserves`` is exact: the exercise must score that, no less (an honest twin's points)
    exact: bool = False


def share_without(assignment: str, exercise: str, *checks: str) -> float:
    """The points of ``exercise`` that its checks other than ``checks`` carry (weights read from
    the hidden test module's syntax tree: ``@ex("id")`` or ``@ex("id", weight=w)``): what an
    answer deserves that fails exactly those checks."""
    from mnistkit import catalog
    weights = {}
    for node in ast.parse((AUTOGRADER / f"test_{assignment}.py").read_text()).body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for deco in node.decorator_list:
            if (isinstance(deco, ast.Call) and getattr(deco.func, "id", None) in ("ex", "exercise")
                    or isinstance(deco, ast.Call) and getattr(deco.func, "attr", None) == "exercise") \
                    and deco.args and getattr(deco.args[0], "value", None) == exercise:
                weight = next((k.value.value for k in deco.keywords if k.arg == "weight"), 1.0)
                weights[node.name] = float(weight)
    assert set(checks) <= set(weights), f"{sorted(set(checks) - set(weights))} are not checks of {exercise}"
    points = next(ex.points for ex in catalog.load() if ex.assignment == assignment and ex.id == exercise)
    return points * (sum(weights.values()) - sum(weights[c] for c in checks)) / sum(weights.values())
