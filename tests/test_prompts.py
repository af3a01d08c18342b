"""Do the notebooks state the grader's rule for tensors and numbers, and does a right value in
the wrong form lose points?

One rule decides tensors against numbers for every exercise (``mnistkit.grading.expect``: a
tensor where a tensor is asked; a Python number or a rank-0 tensor where a number is asked; a
Python type where one is named), and each notebook states it in its grading intro. Each "form"
mutant (a mutant cell whose description starts with "form:": a right value in the wrong form, a
Python float where a rank-0 tensor is asked...) fails a check of its exercise, which the
reference passes, with the checks run in-process on the reference solutions, the mutant in
place. That each prompt names the form its checks compare is `mnistkit check`'s rule 7.
"""
import importlib
import inspect

import numpy as np
import pytest

from mnistkit import catalog
from mnistkit.grading.student import InProcessStudent
from mnistkit.paths import ROOT
from mnistkit.authoring.mutants import mutants as declared_mutants

ASSIGNMENTS = catalog.assignments()
RULE = "Tensors and numbers: one rule for every exercise."


def release_notebook(assignment):
    return next((ROOT / "release" / assignment).glob("*.ipynb"))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_notebook_states_the_rule_for_tensors_and_numbers(assignment):
    """Does the notebook's grading intro (the cell that says how it is graded) state the one
    rule, once in the notebook?"""
    cells = [c["source"] for c in catalog.read_cells(release_notebook(assignment))]
    intro = next(text for text in cells if "How this notebook is graded" in text)
    assert RULE in intro and sum(text.count(RULE) for text in cells) == 1


# Whether each prompt says "tensor", "number" or the object its checks compare is one of
# `mnistkit check`'s rules (mnistkit/authoring/gaps.py; tests/test_check.py).


# --- form mutants lose points -------------------------------------------------------------

def form_mutants():
    for assignment in ASSIGNMENTS:
        mutants = declared_mutants(assignment)
        for ex_id, entries in mutants.items():
            for what, source in entries:
                if what.startswith("form:"):
                    yield pytest.param(assignment, ex_id, source, id=f"{ex_id}: {what[5:].strip()}")


def value_checks(assignment, ex_id):
    """The exercise's hidden checks that compare values (no source reading: those need a
    notebook), and the assignment's module (for its import cost once)."""
    module = importlib.import_module(f"autograder.test_{assignment}")
    checks = []
    for name, fn in vars(module).items():
        if not name.startswith("test_") or "notebook" in inspect.signature(fn).parameters:
            continue
        marks = getattr(fn, "pytestmark", [])
        ids = [m.args[0] for m in marks if m.name == "exercise"]
        params = [p for m in marks if m.name == "parametrize" for p in m.args[1]]
        if ex_id in ids:
            checks.append((fn, {}))
        for p in params:   # pytest.param(n, marks=ex(n)): the parameter is the exercise
            if any(m.name == "exercise" and m.args[0] == ex_id for m in getattr(p, "marks", ())):
                checks.append((fn, {"name": p.values[0]}))
    return checks


def failed(checks, namespace) -> list[str]:
    student = InProcessStudent.over(namespace)
    names = []
    for i, (fn, extra) in enumerate(checks):
        arguments = {"student": student, "rng": np.random.default_rng([7, i]), **extra}
        try:
            fn(**{k: v for k, v in arguments.items() if k in inspect.signature(fn).parameters})
        except Exception:
            names.append(fn.__name__)
    return names


@pytest.mark.parametrize("assignment,ex_id,source", list(form_mutants()))
def test_a_right_value_in_the_wrong_form_loses_points(assignment, ex_id, source):
    """Does a right value in a form the prompt does not ask for (a Python float where a rank-0
    tensor is asked, a tensor where a Python float is) fail a check of its exercise that the
    reference passes? Run in-process on the reference solutions' names, the mutant in place."""
    checks = value_checks(assignment, ex_id)
    if any("learner_runs" in inspect.signature(fn).parameters for fn, _ in checks):
        pytest.skip("checked through a module fixture that trains models (graded in the sandbox)")
    assert checks, f"{ex_id} has no value checks to run"
    reference = importlib.import_module(f"solutions.{assignment}")
    base = {k: v for k, v in vars(reference).items() if not k.startswith("__")}
    assert failed(checks, dict(base)) == []
    namespace = dict(base)
    exec(source, namespace)
    assert failed(checks, namespace) != []
