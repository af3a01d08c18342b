"""pytest plugin behind the hidden autograder (autograder/conftest.py loads it).

It gives hidden tests a ``student`` (the submission under grade), a seeded ``rng`` and the
``exercise(id)`` marker, and turns test outcomes into per-exercise scores:
score = points x (checks passed / checks run), points from the catalog (source notebooks).
The report is JSON, written with ``--grade-report``; only messages meant for students
(``Mismatch``, ``SubmissionProblem``) are copied into it, never test code or tracebacks.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from mnistkit.grading.expect import Mismatch
from mnistkit.grading.student import SubmissionProblem

# Instructors may change this per course to get fresh hidden inputs; same seed, same grade.
DEFAULT_SEED = "mnistkit-hidden-inputs-v1"


def pytest_addoption(parser):
    group = parser.getgroup("mnistkit", "hidden autograder")
    group.addoption("--notebook", help="the student's notebook to grade")
    group.addoption("--grade-report", help="write per-exercise scores here (JSON)")
    group.addoption("--in-process", action="store_true",
                    help="run the notebook in this process, unsandboxed: trusted notebooks only")
    group.addoption("--grading-seed", default=os.environ.get("MNISTKIT_GRADING_SEED", DEFAULT_SEED))


def pytest_configure(config):
    config.addinivalue_line("markers", "exercise(id): the exercise id this check grades")
    config._mnistkit_checks = []


def exercise_of(item) -> str | None:
    marker = item.get_closest_marker("exercise")
    return marker.args[0] if marker else None


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
        handle = SandboxStudent(Path(notebook))
    request.config._mnistkit_student = handle
    yield handle
    handle.close()


@pytest.fixture
def rng(request):
    """A numpy Generator seeded by the course seed and the test's id: the same inputs every
    grading run, inputs no student has seen."""
    seed_text = f"{request.config.getoption('--grading-seed')}::{request.node.nodeid.split('::', 1)[-1]}"
    seed = int.from_bytes(hashlib.sha256(seed_text.encode()).digest()[:8], "little")
    return np.random.default_rng(seed)


def _feedback(excinfo) -> tuple[str, str]:
    """(status, message) for a failed check, with nothing of the test's code in it."""
    exc = excinfo.value
    if isinstance(exc, Mismatch):
        return "failed", str(exc)
    if isinstance(exc, SubmissionProblem):
        return "failed", str(exc)
    return "error", f"the grader could not run this check ({type(exc).__name__}); tell your instructor"


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
        item.config._mnistkit_checks.append(dict(
            exercise=exercise, check=item.name, status=status, message=message))


def pytest_collection_modifyitems(config, items):
    missing = [item.nodeid for item in items if exercise_of(item) is None]
    if missing:
        raise pytest.UsageError("hidden tests without @pytest.mark.exercise(id): " + ", ".join(missing))


def scores(checks: list[dict], exercises: dict) -> dict:
    """Per-exercise score from check outcomes; exercises with no checks run score 0."""
    result = {}
    for ex_id, ex in exercises.items():
        mine = [c for c in checks if c["exercise"] == ex_id]
        passed = sum(c["status"] == "passed" for c in mine)
        score = round(ex.points * passed / len(mine), 4) if mine else 0.0
        result[ex_id] = dict(points=ex.points, score=score, checks=mine)
    return result


def pytest_sessionfinish(session, exitstatus):
    path = session.config.getoption("--grade-report")
    if not path:
        return
    from mnistkit import catalog
    checks = session.config._mnistkit_checks
    graded = {c["exercise"] for c in checks}
    exercises = {k: v for k, v in catalog.by_id().items() if k in graded}
    handle = getattr(session.config, "_mnistkit_student", None)
    report = dict(
        notebook=session.config.getoption("--notebook"),
        exercises=scores(checks, exercises),
        cells=[vars(c) for c in getattr(handle, "cells", [])],
    )
    Path(path).write_text(json.dumps(report, indent=2))
