"""grade-class into nbgrader's gradebook (mnistkit/grading/gradebook.py) on the toy course.

Two copies of the toy course get the same submissions: one is graded by grade-class with the
gradebook recorder, starting like a fresh clone (release/ but no gradebook.db), the other by
`nbgrader autograde`. formgrader and `nbgrader export` must then see the same thing in both.
"""
import csv
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.apps.api import NbGraderAPI
from nbgrader.coursedir import CourseDirectory

from mnistkit.build import nbgrader_env
from mnistkit.grading import batch, run
from mnistkit.grading.gradebook import GradebookUnavailable, NbgraderRecorder, load_config
from mnistkit.grading.results import Results

from .fixtures.toy_course import toy_helpers as toy
from .test_nbgrader_autograde import gradebook_scores, nbgrader

STUDENTS = ("alice", "bob")   # the reference notebook, a half-right one
STAND_IN = "toy_basics (1).ipynb"   # carol's only notebook: grade-class grades it, nbgrader not


def submit_class(course, stand_in=False):
    release = toy.release_notebook(course)
    toy.submit(course / "submitted" / "alice" / toy.ASSIGNMENT, toy.source_notebook(course))
    toy.submit(course / "submitted" / "bob" / toy.ASSIGNMENT,
               toy.with_answers(release, **toy.HALF_RIGHT))
    if stand_in:
        toy.submit(course / "submitted" / "carol" / toy.ASSIGNMENT, toy.source_notebook(course),
                   name=STAND_IN[:-len(".ipynb")])


def in_process_unless_sandboxed(mp):
    if not toy.sandbox_ready():
        mp.setenv(run.IN_PROCESS_ENV, "1")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The class graded both ways: ``kit`` by grade-class with the recorder (two worker
    processes, one writer), ``ref`` by `nbgrader autograde`; ``lines`` what grade-class said."""
    kit = toy.make_course(tmp_path_factory.mktemp("grade_class"))
    (kit / "gradebook.db").unlink()   # as on a fresh clone: only nbgrader's own runs make one
    ref = toy.make_course(tmp_path_factory.mktemp("nbgrader_autograde"))
    submit_class(kit, stand_in=True)
    submit_class(ref)
    lines = []
    with pytest.MonkeyPatch.context() as mp:
        in_process_unless_sandboxed(mp)
        recorder = NbgraderRecorder(kit, toy.ASSIGNMENT, say=lines.append)
        batch.grade_class(kit / "submitted", toy.ASSIGNMENT, kit / "class",
                          course=run.Course.at(kit), jobs=2, say=lines.append,
                          recorder=recorder)
    nbgrader(ref, "autograde", toy.ASSIGNMENT)
    return SimpleNamespace(kit=kit, ref=ref, lines=lines, recorder=recorder)


def class_scores(course, student):
    return json.loads((course / "class" / student / batch.FINGERPRINT_FILE).read_text())["scores"]


def autograded(course, student):
    return nbformat.read(course / "autograded" / student / toy.ASSIGNMENT
                         / f"{toy.NOTEBOOK}.ipynb", as_version=4)


def graded_outputs(nb):
    return {c.metadata.nbgrader.grade_id: c.outputs for c in nb.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")}


def formgrader_api(course):
    """nbgrader's own API, the one formgrader's pages are served from."""
    config = load_config(course)
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


@pytest.mark.slow
def test_grade_class_records_what_nbgrader_autograde_records(graded):
    """Does grade-class put into the gradebook the very scores `nbgrader autograde` records,
    with the same score outputs in the autograded notebooks?"""
    for student in STUDENTS:
        assert gradebook_scores(graded.kit, student) == gradebook_scores(graded.ref, student)
        assert gradebook_scores(graded.kit, student) == class_scores(graded.kit, student)
        assert graded_outputs(autograded(graded.kit, student)) == \
            graded_outputs(autograded(graded.ref, student))
    assert gradebook_scores(graded.kit, "bob") == {**toy.HALF_RIGHT_SCORES, "why_fast": None}


@pytest.mark.slow
def test_export_after_grade_class_lists_every_students_score(graded):
    """Does `nbgrader export` after grade-class list each student with their total?"""
    nbgrader(graded.kit, "export")
    rows = {r["student_id"]: r for r in csv.DictReader((graded.kit / "grades.csv").open())}
    assert set(rows) == set(STUDENTS)   # carol's notebook is not where nbgrader reads it
    for student in STUDENTS:
        total = sum(s for s in class_scores(graded.kit, student).values() if s is not None)
        assert float(rows[student]["raw_score"]) == total
        assert float(rows[student]["max_score"]) == sum(toy.POINTS.values()) + 1


@pytest.mark.slow
def test_formgrader_shows_auto_scores_and_the_written_task_to_grade(graded):
    """Does formgrader see each submission autograded, its auto scores per grade cell, and the
    written task waiting for a grader?"""
    submissions = {s["student"]: s for s in formgrader_api(graded.kit).get_submissions(
        toy.ASSIGNMENT)}
    for student in STUDENTS:
        assert submissions[student]["autograded"] is True
        assert submissions[student]["needs_manual_grade"] is True
        assert submissions[student]["code_score"] == sum(
            s for s in class_scores(graded.kit, student).values() if s is not None)
    with Gradebook(f"sqlite:///{graded.kit / 'gradebook.db'}") as gb:
        for student in STUDENTS:
            grades = {g.name: g for g in gb.find_submission_notebook(
                toy.NOTEBOOK, toy.ASSIGNMENT, student).grades}
            for ex_id in toy.POINTS:
                assert grades[ex_id].auto_score is not None
                assert grades[ex_id].needs_manual_grade is False
            assert grades["why_fast"].needs_manual_grade is True
    text = "".join(o.get("text", "") for outs in graded_outputs(autograded(graded.kit, "bob"))
                   .values() for o in outs)
    assert "Autograder: 0 / 2 points" in text and "Autograder: 2 / 3 points" in text


@pytest.mark.slow
def test_a_notebook_under_another_name_is_said_and_left_out_of_the_gradebook(graded):
    """When grade-class grades a stand-in file that nbgrader does not read, does it say so and
    leave the gradebook without a half-made submission?"""
    assert class_scores(graded.kit, "carol") == {**toy.POINTS, "why_fast": None}
    said = [line for line in graded.lines if "not recorded in the gradebook" in line]
    assert said == ["carol: not recorded in the gradebook: nbgrader finds no toy_basics.ipynb "
                    "in the submission (grade-class graded another file as toy_basics.ipynb)"]
    with Gradebook(f"sqlite:///{graded.kit / 'gradebook.db'}") as gb:
        with pytest.raises(MissingEntry):
            gb.find_submission(toy.ASSIGNMENT, "carol")
    assert graded.recorder.recorded_students() == set(STUDENTS)


# --- the recorder alone: made-up grade reports, nothing graded ----------------------------

def made_up(course, **scores):
    """Results as grade-class would have them, with these auto scores (no student code run)."""
    report = run.failed_report(toy.ASSIGNMENT, toy.NOTEBOOK, "x", run.Course.at(course))
    report.update(graded=True, reason="")
    for ex_id, score in scores.items():
        report["exercises"][ex_id].update(score=score, status="graded", feedback=[f"{score}"])
    return Results(toy.ASSIGNMENT, [report])


@pytest.fixture(scope="module")
def bare_course(tmp_path_factory):
    course = toy.make_course(tmp_path_factory.mktemp("bare") / "course")
    submit_class(course)
    return course


@pytest.fixture
def bare(bare_course, tmp_path):
    """The toy course with the class's submissions, nothing graded or recorded (a fresh copy
    for each test: making one runs nbgrader)."""
    return Path(shutil.copytree(bare_course, tmp_path / "course", symlinks=True))


def test_recording_a_student_again_replaces_their_record(bare):
    """Does a student recorded twice (regraded, or a run stopped before graded.json) keep one
    submission with the newer scores?"""
    recorder = NbgraderRecorder(bare, toy.ASSIGNMENT)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert recorder.record("alice", made_up(bare, double_it=1.0, mean_image=0.5)) is None
        assert recorder.record("alice", made_up(bare, double_it=2.0, mean_image=1.5)) is None
    assert [str(w.message) for w in caught] == []   # nbgrader's SQLAlchemy noise kept out
    assert gradebook_scores(bare, "alice") == {"double_it": 2.0, "mean_image": 1.5,
                                               "why_fast": None}
    with Gradebook(f"sqlite:///{bare / 'gradebook.db'}") as gb:
        assert [s.student.id for s in gb.find_assignment(toy.ASSIGNMENT).submissions] == ["alice"]


def test_a_points_fix_in_source_reaches_the_gradebook(bare):
    """After the points of an exercise change in source/, does the next grade-class record
    them as the cell's maximum, as `nbgrader generate_assignment` would?"""
    NbgraderRecorder(bare, toy.ASSIGNMENT).record("alice", made_up(bare, double_it=2.0))
    toy.set_points(bare, "double_it", 4)
    NbgraderRecorder(bare, toy.ASSIGNMENT)
    with Gradebook(f"sqlite:///{bare / 'gradebook.db'}") as gb:
        assert gb.find_grade_cell("double_it", toy.NOTEBOOK, toy.ASSIGNMENT).max_score == 4


def test_a_broken_gradebook_stops_the_batch_with_one_line(bare):
    """When the database itself cannot be written, does record raise (grade-class stops and
    says why) instead of passing over every student?"""
    recorder = NbgraderRecorder(bare, toy.ASSIGNMENT)
    (bare / "gradebook.db").write_bytes(b"not a database, " * 100)
    with pytest.raises(GradebookUnavailable) as caught:
        recorder.record("alice", made_up(bare, double_it=2.0))
    assert "gradebook.db" in str(caught.value) and "\n" not in str(caught.value)


# --- the command line ---------------------------------------------------------------------

def _cli_has(flag):
    """Whether `mnistkit grade-class` takes ``flag`` (the gradebook's flag is wired in cli.py)."""
    import argparse

    from mnistkit.cli import make_parser
    verbs = next(a for a in make_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return flag in verbs.choices["grade-class"].format_help()


@pytest.mark.slow
@pytest.mark.skipif(not _cli_has("--gradebook"), reason="grade-class has no --gradebook yet")
def test_grade_class_with_two_jobs_fills_the_gradebook(tmp_path):
    """Does `mnistkit grade-class --jobs 2` record every student where formgrader and
    `nbgrader export` find them?"""
    course = toy.make_course(tmp_path / "course")
    (course / "gradebook.db").unlink()
    submit_class(course)
    env = {**nbgrader_env(), run.COURSE_ENV: str(course)}
    if not toy.sandbox_ready():
        env[run.IN_PROCESS_ENV] = "1"
    proc = subprocess.run([sys.executable, "-m", "mnistkit", "grade-class",
                           str(course / "submitted"), "--assignment", toy.ASSIGNMENT,
                           "--out", str(course / "class"), "--jobs", "2",
                           "--gradebook", str(course)],
                          cwd=course, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SAWarning" not in proc.stdout + proc.stderr
    for student in STUDENTS:
        assert gradebook_scores(course, student) == class_scores(course, student)
    nbgrader(course, "export")
    rows = {r["student_id"]: r for r in csv.DictReader((course / "grades.csv").open())}
    assert {s: float(rows[s]["raw_score"]) for s in STUDENTS} == {
        "alice": sum(toy.POINTS.values()), "bob": sum(toy.HALF_RIGHT_SCORES.values())}
    assert os.path.isfile(course / "autograded" / "bob" / toy.ASSIGNMENT
                          / f"{toy.NOTEBOOK}.ipynb")
