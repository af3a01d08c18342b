"""Grading the real assignments in the sandbox: the reference earns everything, an untouched
release nothing, and each plausible wrong answer (the source notebooks' mutant cells) costs its own exercise only.

Mutants are graded in two batches per assignment (every other exercise mutated at once), so each
exercise is seen both mutated (must lose points) and untouched next to mutated neighbours (must
keep full points): four sandboxed gradings per assignment instead of one per mutant.
"""
import ast
import contextlib
import importlib
import inspect
import json
import os
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from mnistkit import catalog, examples
from mnistkit.grading import wire_audit
from mnistkit.grading.run import grade_submission
from mnistkit.grading.left_out import DEMO_PREFIX, LEFT_OUT
from mnistkit.grading.student import InProcessStudent
from mnistkit.paths import ROOT
from mnistkit.authoring.mutants import mutants as declared_mutants

from .conftest import TIMINGS

pytestmark = pytest.mark.slow

ASSIGNMENTS = catalog.assignments()


def auto_points(assignment):
    return {ex.id: ex.points for ex in catalog.load() if ex.assignment == assignment and ex.kind == "auto"}


def reference_lines() -> set[str]:
    """Every line of 30+ characters (stripped) of the reference solutions."""
    return {line.strip() for path in (ROOT / "solutions").glob("*.py")
            for line in path.read_text().splitlines() if len(line.strip()) >= 30}


@contextlib.contextmanager
def audited_wire(log):
    """Record every request the grader sends into the sandbox (mnistkit.grading.wire_audit)."""
    old = os.environ.get(wire_audit.VARIABLE)
    os.environ[wire_audit.VARIABLE] = str(log)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(wire_audit.VARIABLE, None)
        else:
            os.environ[wire_audit.VARIABLE] = old


def own_statements(folder) -> set[str]:
    """Every top-level statement of the submitted notebooks' code cells, as syntax trees."""
    from mnistkit.catalog import read_cells
    from mnistkit.grading.source_checks import parse_cell
    found = set()
    for path in Path(folder).rglob("*.ipynb"):
        for cell in read_cells(path):
            tree = parse_cell(cell["source"]) if cell["cell_type"] == "code" else None
            found |= {ast.dump(statement) for statement in getattr(tree, "body", [])}
    return found


def reference_code_sent(log, folder=None) -> list[str]:
    """Lines of solutions/*.py found in what the grader sent, other than the notebook's own
    cells (a student's cells are theirs: the reference submission's hold the reference). A
    ``rebind`` carries the student's own definitions back: each of its statements must be one
    of the submitted notebook's (``folder``), else it is flagged whole."""
    lines, found = reference_lines(), []
    requests = [json.loads(row) for row in log.read_text().splitlines()]
    assert requests, "the wire audit recorded nothing: grading did not go through the sandbox"
    own = None
    for request in requests:
        if request["op"] == "cell":
            continue
        if request["op"] == "rebind":
            own = own_statements(folder) if own is None and folder is not None else own or set()
            sent = [s for s in request["strings"] if s not in ("rebind",)]
            strangers = [ast.dump(st) for text in sent if "\n" in text or "def " in text
                         for st in ast.parse(text).body if ast.dump(st) not in own]
            found += [f"rebind: {len(strangers)} statement(s) not in the notebook"] if strangers else []
            continue
        for text in request["strings"]:
            found += [f"{request['op']}: {line}" for line in lines if line in text]
    return sorted(set(found))


def grade(folder, assignment, label):
    """Grade in the sandbox, auditing the wire: no request may carry reference code."""
    log = folder.parent / f"wire-{assignment}-{label.replace(' ', '-')}.jsonl"
    start = time.perf_counter()
    with audited_wire(log):
        results = grade_submission(folder, assignment)
    TIMINGS[f"grade {assignment} ({label})"] = time.perf_counter() - start
    assert results.problems == [], results.problems   # kit problems: missing or broken checks
    assert reference_code_sent(log, folder) == []
    return results


def failed_checks(results, exercise_id):
    entry = dict(results.exercises())[exercise_id]
    return [f"{c['check']}: {c['message']}" for c in entry.get("checks", []) if c["status"] != "passed"]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_reference_earns_full_marks(assignment, tmp_path, mnist_data_dir):
    """Does the reference solution score every point of every auto-graded exercise?"""
    results = grade(examples.make("reference", assignment, tmp_path / assignment), assignment, "reference")
    scores = results.scores()
    short = {ex_id: (scores.get(ex_id), pts) for ex_id, pts in auto_points(assignment).items()
             if scores.get(ex_id) != pts}
    assert short == {}, {ex_id: failed_checks(results, ex_id) for ex_id in short}
    # every cell ran cleanly, but the demonstrations and self-checks grading leaves out
    cells = [cell for report in results.notebooks for cell in report["cells"]]
    assert [c for c in cells if c["status"] not in ("ok", LEFT_OUT)] == []
    assert [c["grade_id"] for c in cells if str(c["grade_id"]).startswith(DEMO_PREFIX)
            and c["status"] != LEFT_OUT] == []
    # a check that raises on the reference's values is a kit bug (students would see it as a
    # plain failure with a neutral reason, and the instructor a warning)
    assert results.warnings == [], results.warnings


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_untouched_release_scores_zero(assignment, tmp_path, mnist_data_dir):
    """Does the student notebook as released grade cleanly to 0 on every auto-graded exercise?"""
    results = grade(examples.make("untouched", assignment, tmp_path / assignment), assignment, "untouched")
    assert all(report.get("graded") for report in results.notebooks)
    scores = results.scores()
    assert {ex_id: scores.get(ex_id) for ex_id in auto_points(assignment)} == \
        {ex_id: 0 for ex_id in auto_points(assignment)}


@pytest.mark.parametrize("half", [0, 1], ids=["even", "odd"])
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_each_mutant_costs_its_own_exercise_only(assignment, half, tmp_path, mnist_data_dir):
    """Does a plausible wrong answer lose that exercise's points and no other exercise's?"""
    mutants = declared_mutants(assignment)
    points = auto_points(assignment)
    assert sorted(set(points) - set(mutants)) == [], "every auto-graded exercise needs a mutant"
    mutated = sorted(points)[half::2]
    answers = examples.reference_answers(assignment)
    answers.update({ex_id: mutants[ex_id][0][1] for ex_id in mutated})
    folder = examples.with_answers(assignment, answers, tmp_path / assignment)
    scores = grade(folder, assignment, f"mutants {'even odd'.split()[half]}").scores()
    not_caught = [f"{ex_id} ({mutants[ex_id][0][0]})" for ex_id in mutated if scores[ex_id] >= points[ex_id]]
    collateral = [ex_id for ex_id in points if ex_id not in mutated and scores[ex_id] != points[ex_id]]
    assert not_caught == [] and collateral == []


def test_the_wire_audit_finds_reference_code(tmp_path):
    """Would the audit above notice a probe that carries a reference line (and ignore the
    notebook's own cells)? A check of the check, on a hand-made log."""
    line = sorted(reference_lines())[0]
    log = tmp_path / "wire.jsonl"
    log.write_text(json.dumps({"op": "cell", "strings": [line]}) + "\n")
    assert reference_code_sent(log) == []
    with log.open("a") as f:
        f.write(json.dumps({"op": "run", "strings": ["code", f"x = 1\n    {line}\n"]}) + "\n")
    assert reference_code_sent(log) == [f"run: {line}"]
    folder = tmp_path / "submission"
    folder.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("def f(x):\n    return x + 1\n")])
    nbformat.write(nb, folder / "nb.ipynb")
    log.write_text(json.dumps({"op": "rebind", "strings": ["rebind", "def f(x):\n    return x + 1\n"]}) + "\n")
    assert reference_code_sent(log, folder) == []
    log.write_text(json.dumps({"op": "rebind", "strings": ["rebind", "def f(x):\n    return x + 2\n"]}) + "\n")
    assert reference_code_sent(log, folder) == ["rebind: 1 statement(s) not in the notebook"]


# ------------------------------------------------------------------------------------------------
# Every mutant, not only each exercise's first: a3's hidden checks run in-process on a namespace
# holding the reference's answer cells with one mutant in place, and read the same answers'
# notebook (no notebook run, no sandbox: the checks decide the same; the sandboxed batches above
# grade the first mutants). a3 only: a1's and a4's checks need their data or train models.
def hidden_checks(assignment):
    """exercise id -> its hidden check functions (read from their pytest marks)."""
    module = importlib.import_module(f"autograder.test_{assignment}")
    checks = {}
    for name, fn in vars(module).items():
        for mark in getattr(fn, "pytestmark", []) if name.startswith("test_") else []:
            if mark.name == "exercise":
                checks.setdefault(mark.args[0], []).append(fn)
    return checks


def failed_in_process(checks, namespace, notebook):
    """Names of the checks that fail, run one after the other on ``namespace`` (as in the
    sandbox, where one notebook process answers every check), reading ``notebook`` where a check
    reads the source."""
    failed = []
    student = InProcessStudent.over(namespace)
    for i, check_fn in enumerate(checks):
        arguments = {"student": student, "notebook": notebook,
                     "rng": np.random.default_rng([IN_PROCESS_SEED, i])}
        try:
            check_fn(**{k: v for k, v in arguments.items()
                        if k in inspect.signature(check_fn).parameters})
        except Exception:
            failed.append(check_fn.__name__)
    return failed


IN_PROCESS = "a3_training_loop"
IN_PROCESS_SEED = 13


def test_every_a3_mutant_fails_a_check_of_its_own_exercise(tmp_path):
    """Does each plausible wrong answer of a3 (the source notebooks' mutant cells) after each exercise's first (the
    sandboxed batches above grade the first ones, and the reference) fail at least one of its
    exercise's checks, while the reference's own answers pass that exercise's checks?"""
    mutants = declared_mutants(IN_PROCESS)
    answers = examples.reference_answers(IN_PROCESS)
    given = next(c.source for c in nbformat.read(
        next((ROOT / "source" / IN_PROCESS).glob("*.ipynb")), as_version=4).cells
        if c.metadata.get("nbgrader", {}).get("grade_id") == "setup-given")
    base = {}
    exec("import warnings\nwarnings.filterwarnings('ignore')\nfrom fastai.vision.all import *\n"
         + given, base)
    checks = hidden_checks(IN_PROCESS)

    def failed(label, changed, source):
        filled = dict(answers, **{changed: source})
        namespace = dict(base)
        for code in filled.values():
            exec(code, namespace)
        notebook = None   # written only for checks that read the source (technique)
        if any("notebook" in inspect.signature(fn).parameters for fn in checks[changed]):
            notebook = next(examples.with_answers(IN_PROCESS, filled, tmp_path / label).glob("*.ipynb"))
        return failed_in_process(checks[changed], namespace, notebook)

    later = {ex: entries[1:] for ex, entries in mutants.items() if entries[1:]}
    assert {ex: failed(f"{ex}-reference", ex, answers[ex]) for ex in later} == \
        {ex: [] for ex in later}
    missed = [f"{ex}: {what}" for ex, entries in later.items()
              for i, (what, source) in enumerate(entries)
              if not failed(f"{ex}-{i}", ex, source)]
    assert missed == []
