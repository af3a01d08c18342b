"""pytest plugin behind the hidden autograder (autograder/conftest.py loads it).

It gives hidden tests a ``student`` (the submission under grade), a seeded ``rng`` and the
``exercise(id)`` marker, and turns test outcomes into per-exercise scores:
score = points x (checks passed / checks run), points from the catalog (source notebooks).
The report is JSON, written with ``--grade-report``; only messages meant for students
(``Mismatch``, ``SubmissionProblem``) are copied into it, never test code or tracebacks.

Every exercise of the graded notebook appears in the report: auto-graded ones with their
checks (one with no checks at all is a kit bug, reported under ``problems`` and printed in the
terminal summary), hand-graded ones as "needs hand grading". ``cells`` holds how each code
cell of the notebook ran (``student.cells``).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from mnistkit.grading.expect import Mismatch
from mnistkit.grading.results import clean_line
from mnistkit.grading.student import SubmissionProblem
from mnistkit.settings import DEFAULT_SEED, settings

# A course changes the seed (``grading_seed``: course.json or MNISTKIT_GRADING_SEED) to get
# fresh hidden inputs; same seed, same grade.


def pytest_addoption(parser):
    group = parser.getgroup("mnistkit", "hidden autograder")
    group.addoption("--notebook", help="the student's notebook to grade")
    group.addoption("--grade-report", help="write per-exercise scores here (JSON)")
    group.addoption("--in-process", action="store_true",
                    help="run the notebook in this process, unsandboxed: trusted notebooks only")
    group.addoption("--grading-seed", default=settings().grading_seed)
    group.addoption("--assignment", default=None,
                    help="the assignment graded (default: NAME of the test_NAME.py module run)")
    group.addoption("--notebook-name", default=None,
                    help="the notebook's name in the assignment (default: the --notebook file's stem)")
    group.addoption("--course-source", default=None,
                    help="the source/ folder the exercise catalog (points) is read from "
                         "(default: the kit's source/)")


def pytest_configure(config):
    config.addinivalue_line("markers", "exercise(id): the exercise id this check grades")
    config._mnistkit_checks = []
    config._mnistkit_collected = set()     # exercise ids that have at least one hidden test
    config._mnistkit_modules = set()       # stems of the hidden test modules collected
    config._mnistkit_problems = []         # kit bugs: loud in the report and the terminal
    config.pluginmanager.register(_CollectErrors(config), "mnistkit-collect-errors")


def exercise_of(item) -> str | None:
    marker = item.get_closest_marker("exercise")
    return marker.args[0] if marker else None


def weight_of(item) -> float:
    """A check's share of its exercise (default 1). A check the grader cannot fully verify
    (it rests on what the student's sandbox reports) gets a small weight, so that it is at
    most a tenth of its exercise: ``@pytest.mark.exercise("init_params", weight=0.1)``."""
    marker = item.get_closest_marker("exercise")
    return float(marker.kwargs.get("weight", 1.0)) if marker else 1.0


@pytest.fixture(scope="session")
def student(request):
    notebook = request.config.getoption("--notebook")
    if not notebook:
        pytest.exit("the hidden autograder needs --notebook PATH", returncode=4)
    if request.config.getoption("--in-process"):
        from mnistkit.grading.student import InProcessStudent
        handle = InProcessStudent(Path(notebook))
    else:
        from mnistkit.grading.sandbox import SandboxStudent  # built by the grading engine
        handle = SandboxStudent(Path(notebook), limits=settings().limits)
    request.config._mnistkit_student = handle
    yield handle
    handle.close()


@pytest.fixture(scope="session")
def notebook(request) -> Path:
    """The submitted notebook's path, for checks that read its source here, in the grader
    (``mnistkit.grading.source_checks``); it is never run in this process."""
    return Path(request.config.getoption("--notebook"))


_CODE_READ = pytest.StashKey[frozenset]()


def code_read(config) -> frozenset:
    """The exercises whose code the grader reads, from the catalog (once per session)."""
    if _CODE_READ not in config.stash:
        from mnistkit import catalog
        from mnistkit.paths import SOURCE
        source = Path(config.getoption("--course-source") or SOURCE)
        config.stash[_CODE_READ] = frozenset(ex.id for ex in catalog.load(source) if ex.reads_code)
    return config.stash[_CODE_READ]


@pytest.fixture(autouse=True)
def rebind_read_code(request):
    """Before each check of an exercise whose code the grader reads (``reads_code`` in its
    graded cell's metadata, the source notebook), define that code again in the student's namespace from the notebook's own
    text (``source_checks.rebind_source``): the function questioned is the code read, whatever
    the notebook did after its clean ``def`` (an ``exec``, a namespace write). Nothing of
    ``solutions/`` is sent: only the student's definitions, and only from cells that ran
    without error. An answer the grader cannot read is left as it is; its technique check says
    why."""
    exercise = exercise_of(request.node)
    if exercise not in code_read(request.config):
        return
    from mnistkit.grading import source_checks
    notebook = request.getfixturevalue("notebook")
    student = request.getfixturevalue("student")
    try:
        code = source_checks.function_code(notebook, exercise)
    except Mismatch:
        return
    # Only what ran: a cell that failed (an error, the disk quota, a time-out) or was skipped
    # on a replay does not get its definitions back from the grader.
    ran = {cell.index for cell in getattr(student, "cells", []) if cell.status == "ok"}
    if all(index in ran for index, _ in code.statements):
        student.rebind(source_checks.rebind_source(code))


@pytest.fixture(autouse=True)
def not_reached_in_time(request):
    """Every check of an exercise whose answer cell the notebook's time budget did not reach
    (``SandboxStudent.not_reached``: the cell stopped at the budget and all after it) fails
    with the budget's reason, whatever an earlier cell may have defined under its name: the
    time past the budget is the student's, so are the points it would have earned. Source-only
    checks included: they need the student handle first (the sandbox starts for every
    grading anyway)."""
    if request.config.getoption("--in-process"):
        return
    student = request.getfixturevalue("student")
    reason = getattr(student, "budget_reason", None)
    if not reason:
        return
    answer = f"{exercise_of(request.node)}-answer"
    if any(cell.index in student.not_reached and cell.grade_id == answer
           for cell in student.cells):
        raise SubmissionProblem(reason)


def seeded_rng(config, key: str) -> np.random.Generator:
    """A numpy Generator seeded by the course seed and ``key``: the same inputs every grading
    run, inputs no student has seen. For module-scoped fixtures (one expensive probe shared by
    several checks); tests use the ``rng`` fixture."""
    seed_text = f"{config.getoption('--grading-seed')}::{key}"
    seed = int.from_bytes(hashlib.sha256(seed_text.encode()).digest()[:8], "little")
    return np.random.default_rng(seed)


@pytest.fixture
def rng(request):
    """A numpy Generator seeded by the course seed and the test's id."""
    return seeded_rng(request.config, request.node.nodeid.split("::", 1)[-1])


def explain_unanswered(message: str) -> str:
    """The released stub raises NotImplementedError: say what to do instead of just that."""
    if "NotImplementedError" in message:
        message = (message.rstrip().rstrip(":") + " (not answered yet: replace "
                   "`raise NotImplementedError()` in the answer cell with your code)")
    return message


# Exceptions no student value can cause: the kit's or the machine's (a missing module or data
# file, a hidden test referring to a name that does not exist, a fixture that is not there).
KIT_ERRORS = (ImportError, OSError, SyntaxError, pytest.FixtureLookupError)
UNEXPECTED = ("this check stopped on an unexpected {kind} while examining what your code "
              "returned; check that your answer gives the kind of value the exercise asks for "
              "(type, dtype, shape)")


def _is_kit_error(exc: BaseException) -> bool:
    if isinstance(exc, NameError) and not isinstance(exc, UnboundLocalError):
        return True
    return isinstance(exc, KIT_ERRORS) and not isinstance(exc, MemoryError)


def _feedback(excinfo) -> tuple[str, str]:
    """(status, message) for a failed check, with nothing of the test's code in it.

    Mismatch and SubmissionProblem carry messages meant for students. Any other exception in a
    hidden test was most likely caused by the student's data (a check that trips over a bool
    where it expected a tensor): the check fails with a neutral reason, never a kit error, and
    the instructor gets a warning (``_unexpected``); the kit's own tests require the reference
    to grade without any. Only exceptions no student value can cause (``KIT_ERRORS``) are
    "error": a kit problem, loud in the report."""
    exc = excinfo.value
    if isinstance(exc, Mismatch):
        return "failed", clean_line(str(exc))
    if isinstance(exc, SubmissionProblem):
        return "failed", clean_line(explain_unanswered(str(exc)))
    if _is_kit_error(exc):
        return "error", (f"the grader could not run this check ({type(exc).__name__}); "
                         "tell your instructor")
    return "failed", UNEXPECTED.format(kind=type(exc).__name__)


def _unexpected(item, excinfo) -> str:
    """For the instructor: what an unexpected exception was and where in the hidden test."""
    exc = excinfo.value
    where = ""
    for entry in reversed(excinfo.traceback):
        if Path(str(entry.path)) == Path(str(item.fspath)):
            where = f" at {Path(str(entry.path)).name}:{entry.lineno + 1}"
            break
    try:
        text = str(exc)
    except Exception:
        text = ""
    return clean_line(f"{type(exc).__name__}: {text}{where}", limit=400)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    exercise = exercise_of(item)
    if exercise is None:
        return
    failed_setup = report.when == "setup" and report.failed
    if report.when == "call" or failed_setup:
        if report.passed:
            status, message = "passed", ""
        elif report.skipped:
            return
        else:
            status, message = _feedback(call.excinfo)
        check = dict(exercise=exercise, check=item.name, status=status, message=message,
                     weight=weight_of(item))
        if status == "failed" and not report.passed \
                and not isinstance(call.excinfo.value, (Mismatch, SubmissionProblem)):
            check["unexpected"] = _unexpected(item, call.excinfo)
        item.config._mnistkit_checks.append(check)


def pytest_collection_modifyitems(config, items):
    missing = [item.nodeid for item in items if exercise_of(item) is None]
    if missing:
        raise pytest.UsageError("hidden tests without @pytest.mark.exercise(id): " + ", ".join(missing))
    for item in items:
        config._mnistkit_collected.add(exercise_of(item))
        config._mnistkit_modules.add(Path(str(item.fspath)).stem)


class _CollectErrors:
    """Hidden test modules that fail to import (syntax error, missing solutions): a kit bug.
    Also counts deselected tests as existing, so ``-k`` while developing is not a kit bug."""

    def __init__(self, config):
        self.config = config

    def pytest_collectreport(self, report):
        if report.failed:
            self.config._mnistkit_problems.append(
                f"hidden tests could not be loaded: {report.nodeid or 'session'}")

    def pytest_deselected(self, items):  # -k / -m while developing: the tests still exist
        for item in items:
            self.config._mnistkit_collected.add(exercise_of(item))


def scores(checks: list[dict], exercises: dict) -> dict:
    """Per-exercise score from check outcomes, each check counting its weight; exercises with
    no checks run score 0."""
    result = {}
    for ex_id, ex in exercises.items():
        mine = [c for c in checks if c["exercise"] == ex_id]
        total = sum(c.get("weight", 1.0) for c in mine)
        passed = sum(c.get("weight", 1.0) for c in mine if c["status"] == "passed")
        score = round(ex.points * passed / total, 4) if mine and total > 0 else 0.0
        result[ex_id] = dict(points=ex.points, score=score, checks=mine)
    return result


def _assignment(config) -> str | None:
    name = config.getoption("--assignment")
    if name:
        return name
    modules = sorted(m[len("test_"):] for m in config._mnistkit_modules if m.startswith("test_"))
    return modules[0] if len(modules) == 1 else None


def build_report(config) -> dict:
    """The grade report: every exercise of the notebook, the cells' run statuses, problems."""
    from mnistkit import catalog
    from mnistkit.paths import SOURCE
    source = Path(config.getoption("--course-source") or SOURCE)
    notebook = config.getoption("--notebook") or ""
    notebook_name = config.getoption("--notebook-name") or Path(notebook).stem
    assignment = _assignment(config)
    checks = config._mnistkit_checks
    problems = list(config._mnistkit_problems)
    known = catalog.by_id(source)
    mine = [ex for ex in known.values()
            if ex.assignment == assignment and ex.notebook == notebook_name]
    if not mine:  # notebook renamed upstream: fall back to the assignment's exercises
        mine = [ex for ex in known.values() if ex.assignment == assignment]
    if not mine:
        problems.append(f"no exercises found for assignment {assignment!r} notebook "
                        f"{notebook_name!r} in {source}")
    auto = {ex.id: ex for ex in mine if ex.kind == "auto"}
    scored = scores(checks, auto)
    exercises = {}
    for ex in mine:
        if ex.kind == "manual":
            exercises[ex.id] = dict(kind="manual", title=ex.title, points=ex.points, score=None,
                                    status="needs hand grading", checks=[])
            continue
        entry = dict(kind="auto", title=ex.title, **scored[ex.id])
        entry["status"] = "graded"
        if ex.id not in config._mnistkit_collected:
            problems.append(f"exercise {ex.id!r} has no hidden tests (kit bug): it scores 0")
            entry["status"] = "no hidden tests"
        exercises[ex.id] = entry
    mine_ids = {ex.id for ex in mine}
    for ex_id in sorted({c["exercise"] for c in checks} - mine_ids):
        problems.append(f"hidden tests are marked with exercise {ex_id!r}, which is not an "
                        f"auto-graded exercise of this notebook (kit bug)")
    errors = sorted({c["exercise"] for c in checks if c["status"] == "error"})
    if errors:
        problems.append("the grader could not run some checks of: " + ", ".join(errors))
    # Unexpected exceptions on the submission's values: failed checks, not kit problems; the
    # instructor sees them (a kit bug if they ever show up on a right answer).
    warnings = [f"{c['exercise']}: {c['check']} counted as failed after an unexpected "
                f"{c['unexpected']}" for c in checks if c.get("unexpected")]
    handle = getattr(config, "_mnistkit_student", None)
    return dict(
        notebook=notebook,
        notebook_name=notebook_name,
        assignment=assignment,
        seed_name=("default" if config.getoption("--grading-seed") == DEFAULT_SEED else "custom"),
        exercises=exercises,
        cells=_cells_with_places(getattr(handle, "cells", []), notebook),
        sandbox=handle.resources() if hasattr(handle, "resources") else {},
        problems=problems,
        warnings=warnings,
    )


def _cells_with_places(cells, notebook: str) -> list[dict]:
    """How each code cell ran, with where it is in words a student can find in JupyterLab
    (``mnistkit.cell_places``), read from the notebook this grading ran."""
    from mnistkit.cell_places import notebook_places
    places = notebook_places(Path(notebook)) if notebook else []
    return [dict(vars(c), **({"place": places[c.index]} if 0 <= c.index < len(places) else {}))
            for c in cells]


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    try:
        report = build_report(config)
    except Exception as exc:  # a broken catalog must be loud, not a silent missing report
        config._mnistkit_problems.append(f"could not build the grade report: "
                                         f"{type(exc).__name__}: {exc}")
        report = None
    config._mnistkit_report = report
    path = config.getoption("--grade-report")
    if path and report is not None:
        Path(path).write_text(json.dumps(report, indent=2))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    report = getattr(config, "_mnistkit_report", None)
    problems = report["problems"] if report else config._mnistkit_problems
    if problems:
        terminalreporter.section("mnistkit: KIT PROBLEMS", sep="!", red=True, bold=True)
        for line in problems:
            terminalreporter.line(f"  {line}", red=True)
    if report and report.get("warnings"):
        terminalreporter.section("mnistkit: warnings (checks failed on unexpected exceptions)",
                                 sep="-", yellow=True)
        for line in report["warnings"]:
            terminalreporter.line(f"  {line}", yellow=True)
    if report:
        terminalreporter.section("mnistkit: scores", sep="-")
        for ex_id, entry in report["exercises"].items():
            score = "hand" if entry["score"] is None else f"{entry['score']:g}"
            terminalreporter.line(f"  {ex_id:<28} {score:>6} / {entry['points']:g}")
