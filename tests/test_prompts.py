"""Do the exercises' prompts say what their hidden checks hold a student to (issue 18, item 6)?

One rule decides tensors against numbers for every exercise (``mnistkit.grading.expect``: a
tensor where a tensor is asked; a Python number or a rank-0 tensor where a number is asked; a
Python type where one is named), and each notebook states it in its grading intro. These tests
read the release notebooks (what students see) and the hidden test modules (what grades them),
without running a notebook or a sandbox:

- every notebook states the rule;
- an exercise whose checks compare its answer as a tensor says "tensor" in its prompt (the
  markdown before its answer cell, and the answer cell's skeleton), and one compared as a
  number says "number": a heuristic reading each check's ``expect_*`` calls, and the helpers of
  its module that it calls;
- each "form" mutant (tests/mutants/, a right value in the wrong form: a Python float where a
  rank-0 tensor is asked...) fails a check of its exercise, which the reference passes, with the
  checks run in-process on the reference solutions with the mutant in place.
"""
import ast
import importlib
import inspect
import re

import numpy as np
import pytest

from mnistkit import catalog
from mnistkit.grading.student import InProcessStudent
from mnistkit.paths import ROOT

ASSIGNMENTS = catalog.assignments()
RULE = "Tensors and numbers: one rule for every exercise."
WORDS = {"tensor": "tensor", "number": "number"}
# Exercises whose answer is an object (a class, a Learner, DataLoaders, a module, a trained
# model): their checks compare what the grader's own probe code reads from the object, in the
# form the probe gives it, so the heuristic below has nothing to hold their prompts to.
OBJECTS = {"BasicOptim": "class", "MomentumSGD": "class", "Learner": "class",
           "make_learner": "Learner", "resnet_learner": "Learner", "image_dls": "DataLoaders",
           "relu_module": "module", "train_digits": "model"}


def release_notebook(assignment):
    return next((ROOT / "release" / assignment).glob("*.ipynb"))


def prompts(assignment) -> dict[str, str]:
    """Exercise id -> what the student reads for it: the markdown since the previous graded
    cell, and the answer cell's skeleton."""
    found, text = {}, []
    for cell in catalog.read_cells(release_notebook(assignment)):
        meta = cell["metadata"].get("nbgrader", {})
        grade_id = meta.get("grade_id") or ""
        if cell["cell_type"] == "markdown":
            text.append(cell["source"])
        elif grade_id.endswith("-answer"):
            found[grade_id[:-len("-answer")]] = "\n".join(text + [cell["source"]])
            text = []
        elif meta.get("grade"):
            text = []
    return found


def _marked_exercises(fn: ast.FunctionDef, tree: ast.Module) -> list[str]:
    """The exercise ids of a hidden check: its ``ex("id")`` marker, or those of its
    ``pytest.param(n, marks=ex(n)) for n in TABLE`` parameters."""
    ids = []
    for deco in fn.decorator_list:
        text = ast.unparse(deco)
        ids += re.findall(r"^(?:ex|pytest\.mark\.exercise)\('(\w+)'", text)
        if "marks=ex(" in text:
            table = re.search(r"for \w+ in (\w+)", text).group(1)
            assigned = next(node.value for node in tree.body if isinstance(node, ast.Assign)
                            and ast.unparse(node.targets[0]) == table)
            ids += re.findall(r"'(\w+)':", ast.unparse(assigned))
    return ids


def demands(assignment) -> dict[str, set[str]]:
    """Exercise id -> the forms its checks compare answers in: "tensor" (``expect_close``,
    ``expect_shape``, ``expect_dtype`` without ``number=True``) and "number" (``expect_number``
    or ``number=True``), read in each check and the module's functions it calls."""
    tree = ast.parse((ROOT / "autograder" / f"test_{assignment}.py").read_text())
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}

    def reached(name, seen):
        if name in functions and name not in seen:
            seen.add(name)
            for node in ast.walk(functions[name]):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    reached(node.func.id, seen)
        return seen

    found: dict[str, set[str]] = {}
    for name, fn in functions.items():
        ids = _marked_exercises(fn, tree)
        forms = set()
        for helper in reached(name, set()) if ids else ():
            for call in (n for n in ast.walk(functions[helper]) if isinstance(n, ast.Call)):
                called = ast.unparse(call.func)
                number = any(k.arg == "number" and ast.unparse(k.value) == "True"
                             for k in call.keywords)
                if called in ("expect_close", "expect_close_any", "expect_shape",
                              "expect_dtype") and not number:
                    forms.add("tensor")
                if called == "expect_number" or number:
                    forms.add("number")
        for ex_id in ids:
            found.setdefault(ex_id, set()).update(forms)
    return found


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_notebook_states_the_rule_for_tensors_and_numbers(assignment):
    """Does the notebook's grading intro (the cell that says how it is graded) state the one
    rule, once in the notebook?"""
    cells = [c["source"] for c in catalog.read_cells(release_notebook(assignment))]
    intro = next(text for text in cells if "How this notebook is graded" in text)
    assert RULE in intro and sum(text.count(RULE) for text in cells) == 1


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_an_answer_compared_as_a_tensor_or_number_is_asked_for_as_one(assignment):
    """Does every exercise whose checks compare its answer as a tensor say "tensor" in its
    prompt, and one compared as a number say "number"? (Objects are checked through the
    grader's probes: their prompts must name the object instead.)"""
    text = prompts(assignment)
    missing = []
    for ex_id, forms in demands(assignment).items():
        assert ex_id in text, f"{ex_id}: hidden checks for an exercise with no answer cell"
        if ex_id in OBJECTS:
            assert OBJECTS[ex_id] in text[ex_id], ex_id
            continue
        missing += [f"{ex_id}: {form}" for form in sorted(forms) if WORDS[form] not in text[ex_id]]
    assert missing == []


def test_the_heuristic_sees_what_a_check_compares():
    """A check of the heuristic: the distances are compared as tensors (a parametrized check),
    `baseline_accuracy` as numbers, `validation_metrics_choice` as neither."""
    found = demands("a1_pixel_similarity")
    assert found["l1_distance"] == found["rmse_distance"] == {"tensor"}
    assert found["baseline_accuracy"] == {"number"}
    assert found["validation_metrics_choice"] == set()


# --- form mutants lose points -------------------------------------------------------------

def form_mutants():
    for assignment in ASSIGNMENTS:
        mutants = importlib.import_module(f"tests.mutants.{assignment}").MUTANTS
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
