"""Grading with nbgrader (`nbgrader autograde`, `generate_feedback`, `export`) on the toy course.

nbgrader_config.py replaces nbgrader's Execute with the hidden autograder; a scratch copy of
the toy course with the kit's nbgrader_config.py shows it gives the same scores as
`mnistkit grade`, partial credit included, and feedback without hidden tests.
"""
import csv
import subprocess
import sys
import time

import nbformat
import pytest
from nbgrader.utils import determine_grade
from traitlets.config import Config

from mnistkit.build import nbgrader_env
from mnistkit.grading import run
from mnistkit.grading.nbgrader_autograde import GradeWithHiddenTests, write_results

from .conftest import TIMINGS
from .fixtures.toy_course import toy_helpers as toy

STUDENTS = ("alice", "bob")   # alice hands in the reference, bob a half-right notebook


def nbgrader(course, *args):
    env = nbgrader_env()
    if not toy.sandbox_ready():
        env[run.IN_PROCESS_ENV] = "1"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                          capture_output=True, text=True, timeout=900)
    TIMINGS[f"nbgrader {args[0]} (toy course)"] = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """The toy course after `nbgrader autograde`, `generate_feedback` and `export`, plus the
    same submissions graded by `mnistkit grade`'s code."""
    course = toy.make_course(tmp_path_factory.mktemp("nbgrader_course"))
    release = toy.release_notebook(course)
    notebooks = {"alice": toy.source_notebook(course),
                 "bob": toy.with_answers(release, **toy.HALF_RIGHT)}
    for student, nb in notebooks.items():
        toy.submit(course / "submitted" / student / toy.ASSIGNMENT, nb)
    nbgrader(course, "autograde", toy.ASSIGNMENT)
    nbgrader(course, "generate_feedback", toy.ASSIGNMENT)
    nbgrader(course, "export")
    with pytest.MonkeyPatch.context() as mp:
        if not toy.sandbox_ready():
            mp.setenv(run.IN_PROCESS_ENV, "1")
        mnistkit = {s: run.grade_submission(course / "submitted" / s / toy.ASSIGNMENT,
                                            toy.ASSIGNMENT, course=run.Course.at(course))
                    for s in STUDENTS}
    return course, mnistkit


def gradebook_scores(course, student):
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook(toy.NOTEBOOK, toy.ASSIGNMENT, student)
        return {g.name: g.auto_score for g in nb.grades}


def autograded(course, student):
    return nbformat.read(course / "autograded" / student / toy.ASSIGNMENT
                         / f"{toy.NOTEBOOK}.ipynb", as_version=4)


@pytest.mark.slow
def test_nbgrader_and_mnistkit_grade_agree(graded):
    """Does `nbgrader autograde` record the same score per exercise as `mnistkit grade`?"""
    course, mnistkit = graded
    for student in STUDENTS:
        assert gradebook_scores(course, student) == mnistkit[student].scores()
    assert mnistkit["alice"].scores() == {**toy.POINTS, "why_fast": None}
    assert mnistkit["bob"].scores() == {**toy.HALF_RIGHT_SCORES, "why_fast": None}


@pytest.mark.slow
def test_stderr_from_student_code_does_not_zero_a_cell(graded):
    """Does a student's stderr warning leave their partial credit alone (no stderr outputs)?"""
    course, _ = graded
    assert gradebook_scores(course, "bob")["mean_image"] == toy.HALF_RIGHT_SCORES["mean_image"]
    for cell in autograded(course, "bob").cells:
        for out in cell.get("outputs", []):
            assert out.output_type in ("stream", "execute_result")
            assert out.get("name", "stdout") == "stdout"


@pytest.mark.slow
def test_feedback_shows_scores_and_messages_but_no_hidden_tests(graded):
    """Does the feedback HTML show each score and reason, and nothing of the hidden tests?"""
    course, _ = graded
    html = (course / "feedback" / "bob" / toy.ASSIGNMENT / f"{toy.NOTEBOOK}.html").read_text()
    assert "Autograder: 2 / 3 points" in html and "Autograder: 0 / 2 points" in html
    assert "RuntimeError" in html and "not what was expected" in html
    for secret in (toy.HIDDEN_MARKER, "toy_reference", "def test_", "MARK SCHEME",
                   "Model answer"):
        assert secret not in html


@pytest.mark.slow
def test_export_lists_every_students_score(graded):
    """Does `nbgrader export` give each student's total (hand-graded part still 0)?"""
    course, mnistkit = graded
    rows = {r["student_id"]: r for r in csv.DictReader((course / "grades.csv").open())}
    for student in STUDENTS:
        assert float(rows[student]["raw_score"]) == mnistkit[student].score
        assert float(rows[student]["max_score"]) == sum(toy.POINTS.values()) + 1


# --- the preprocessor's outputs (no nbgrader run) -----------------------------------------

def _graded_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"
            and c.metadata.get("nbgrader", {}).get("grade")]


def test_partial_scores_are_what_nbgrader_reads():
    """Does nbgrader's determine_grade read each graded cell's score back exactly?"""
    nb = nbformat.read(toy.TOY / "source" / toy.ASSIGNMENT / f"{toy.NOTEBOOK}.ipynb", 4)
    report = run.failed_report(toy.ASSIGNMENT, toy.NOTEBOOK, "x", run.Course.at(toy.TOY))
    report["exercises"]["double_it"].update(score=1.3333, status="graded", feedback=["a", "b"])
    report["exercises"]["mean_image"].update(score=3.0, status="graded", feedback=[])
    write_results(nb, report)
    got = {c.metadata.nbgrader.grade_id: determine_grade(c)[0] for c in _graded_cells(nb)}
    assert got == {"double_it": 1.3333, "mean_image": 3.0}


def test_failed_grading_writes_zero_and_the_reason_in_every_graded_cell(tmp_path):
    """When grading cannot run, does every graded cell get 0 and the reason, never a blank?"""
    config = Config()
    config.CourseDirectory.root = str(toy.TOY)
    config.GradeWithHiddenTests.autograder_directory = "no_such_folder"
    nb = nbformat.read(toy.TOY / "source" / toy.ASSIGNMENT / f"{toy.NOTEBOOK}.ipynb", 4)
    nb, _ = GradeWithHiddenTests(config=config).preprocess(
        nb, {"nbgrader": {"assignment": toy.ASSIGNMENT, "notebook": toy.NOTEBOOK}})
    cells = _graded_cells(nb)
    assert len(cells) == 2
    for cell in cells:
        assert determine_grade(cell)[0] == 0
        assert "tell your instructor" in cell.outputs[0].text
        assert all(o.get("name", "stdout") == "stdout" for o in cell.outputs)
