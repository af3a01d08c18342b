"""`grade-class` and time (issue 19): the slowest students are named at the end, and a sandbox
that does not start for one student makes that student "not graded" (after one more try),
never the end of the batch."""
from __future__ import annotations

import os
import shutil

import pytest

from mnistkit.grading import batch, run
from mnistkit.grading.results import Results

from .fixtures.toy_course import toy_helpers as toy
from .test_grade_class import make_class


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return toy.make_course(tmp_path_factory.mktemp("time_course"))


def test_the_slowest_students_are_named_slowest_first():
    done = batch.ClassRun(graded=["ann", "bob", "cy", "dee"],
                          walls={"ann": 12.0, "bob": 244.0, "cy": 61.0, "dee": 30.0})
    assert done.slowest_line() == "slowest: bob 4m04s, cy 1m01s, dee 30s"
    assert batch.ClassRun().slowest_line() == ""


def test_grade_class_records_each_students_time(course, tmp_path, monkeypatch):
    submitted = make_class(course, tmp_path / "submitted", full=("ann", "bob"), half=(), empty=())
    monkeypatch.setattr(run, "check_can_grade", lambda *args, **kwargs: None)

    def grade_one(folder, assignment, course_):
        report = run.failed_report(toy.ASSIGNMENT, toy.NOTEBOOK, "not graded in this test", course_)
        return Results(assignment=toy.ASSIGNMENT, notebooks=[report],
                       execution_time=90.0 if "bob" in folder else 5.0)
    monkeypatch.setattr(batch, "grade_one", grade_one)
    done = batch.grade_class(submitted, toy.ASSIGNMENT, tmp_path / "out",
                             course=run.Course.at(course), say=lambda line: None)
    assert done.walls == {"ann": 5.0, "bob": 90.0}
    assert done.slowest_line() == "slowest: bob 1m30s, ann 5s"


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_a_sandbox_that_does_not_start_for_one_student_leaves_the_class_graded(
        course, tmp_path, monkeypatch):
    """A real start failure (bob's sandboxes get no time to start): is bob tried twice, then
    "not graded" with the reason, while ann and cy are graded and the batch ends normally?"""
    submitted = make_class(course, tmp_path / "submitted", full=("ann", "bob", "cy"),
                           half=(), empty=())
    monkeypatch.setenv(run.COURSE_ENV, str(course))
    for name in [n for n in os.environ if n.startswith("MNISTKIT_LIMIT_")]:
        monkeypatch.delenv(name)
    real, tries = batch.grade_one, []

    def grade_one(folder, assignment, course_):
        if "bob" not in folder:
            return real(folder, assignment, course_)
        tries.append(folder)
        with pytest.MonkeyPatch.context() as mp:   # only bob's grader sees it
            mp.setenv("MNISTKIT_LIMIT_START_SECONDS", "0.001")
            mp.setenv("MNISTKIT_WARM_START", "0")
            return real(folder, assignment, course_)
    monkeypatch.setattr(batch, "grade_one", grade_one)
    lines = []
    done = batch.grade_class(submitted, toy.ASSIGNMENT, tmp_path / "out",
                             course=run.Course.at(course), say=lines.append)
    assert len(tries) == 2, lines
    assert sorted(done.graded) == ["ann", "cy"], lines
    assert list(done.not_graded) == ["bob"]
    assert "the sandbox did not start" in done.not_graded["bob"]
    assert any("bob: " in line and "grading once more" in line for line in lines), lines


def test_grade_class_ends_by_naming_the_slowest(course, tmp_path, monkeypatch, capsys):
    """Does `mnistkit grade-class` print the slowest students just before its last line?"""
    from mnistkit import cli
    submitted = make_class(course, tmp_path / "submitted", full=("ann", "bob"), half=(), empty=())
    monkeypatch.setenv(run.COURSE_ENV, str(course))
    monkeypatch.setattr(run, "check_can_grade", lambda *args, **kwargs: None)

    def grade_one(folder, assignment, course_):
        report = run.failed_report(toy.ASSIGNMENT, toy.NOTEBOOK, "not graded in this test", course_)
        return Results(assignment=toy.ASSIGNMENT, notebooks=[report],
                       execution_time=200.0 if "bob" in folder else 7.0)
    monkeypatch.setattr(batch, "grade_one", grade_one)
    code = cli.main(["grade-class", str(submitted), "--assignment", toy.ASSIGNMENT,
                     "--out", str(tmp_path / "out"), "--jobs", "1", "--no-gradebook"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0, lines
    assert lines[-2] == "slowest: bob 3m20s, ann 7s"
    assert lines[-1].startswith(f"{toy.ASSIGNMENT}: graded 2")
