"""The pre-flight (mnistkit.grading.preflight, issue 10 class 8): before grading anyone, grading
checks that this account has the data, verified, and that the sandbox starts with its limits;
otherwise it refuses in one line with a non-zero exit and records nothing, whichever way it is
graded (`mnistkit grade`, `mnistkit grade-class`, `nbgrader autograde`). A failure of the
grading environment in the middle of a batch stops the batch instead of charging a student.

Most tests use a copy of the toy course whose notebook loads ``URLs.MNIST_SAMPLE`` (so it needs
MNIST like a1 does, and grades in seconds), and a fastai data folder of our own made of hard
links to the kit's materialized one, which a test may break without touching the real one.
"""
import os
import time
import shutil
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from mnistkit import data
from mnistkit.build import nbgrader_env
from mnistkit.grading import batch, preflight, run
from mnistkit.grading.sandbox import Limits, SandboxStudent

from .conftest import TIMINGS, run_mnistkit
from .fixtures.toy_course import toy_helpers as toy

pytestmark = pytest.mark.skipif(not toy.sandbox_ready(), reason="needs the sandbox (bwrap)")

USES_MNIST = "# The data this assignment loads, like a1 does:\n# path = untar_data(URLs.MNIST_SAMPLE)"


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The toy course, needing MNIST_SAMPLE (one more code cell in its source notebook)."""
    course = toy.make_course(tmp_path_factory.mktemp("preflight_course"))
    path = course / "source" / toy.ASSIGNMENT / f"{toy.NOTEBOOK}.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(new_code_cell(USES_MNIST))
    nbformat.write(nb, str(path))
    return course


def linked_data(mnist_data_dir, fastai_home):
    """A fastai home whose data folder holds hard links to the needed datasets."""
    target = fastai_home / "data"
    for name in preflight.folders_to_verify(frozenset({data.SAMPLE_NAME}), sandboxed=True):
        shutil.copytree(mnist_data_dir / name, target / name, copy_function=os.link)
    return target


@pytest.fixture(autouse=True)
def fresh_verdicts():
    preflight.forget()
    yield
    preflight.forget()


def empty_account(tmp_path, monkeypatch=None) -> dict:
    """The environment of an account with no MNIST at all (a fresh HOME, its own FASTAI_HOME)."""
    home = tmp_path / "account"
    home.mkdir()
    env = {"HOME": str(home), "FASTAI_HOME": str(home / ".fastai")}
    if monkeypatch is not None:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
    return env


def test_needs_reads_the_data_an_assignment_loads(course):
    """Does the pre-flight know which assignments need which data (from their notebooks)?"""
    kit = run.Course.default()
    assert preflight.needs("a1_pixel_similarity", kit) == (frozenset({"mnist_sample"}), True)
    assert preflight.needs("a4_further_research", kit)[0] == {"mnist_sample", "mnist_png"}
    assert preflight.needs(toy.ASSIGNMENT, run.Course.at(course)) == (frozenset({"mnist_sample"}), True)
    assert preflight.needs(toy.ASSIGNMENT, run.Course.at(toy.TOY)) == (frozenset(), False)


@pytest.mark.slow
def test_grade_without_data_refuses_in_one_line_and_writes_nothing(tmp_path):
    """`mnistkit grade` of the a1 reference in an account without MNIST: does it refuse before
    grading, in one line, exit non-zero, and write no results (it used to score 18.6/33 on a4
    and carry on, exit 0)?"""
    from mnistkit import examples
    folder = examples.with_answers("a1_pixel_similarity",
                                   examples.reference_answers("a1_pixel_similarity"),
                                   tmp_path / "reference")
    results = tmp_path / "results.json"
    env = {**os.environ, **empty_account(tmp_path)}
    proc = run_mnistkit("grade", folder, "--assignment", "a1_pixel_similarity",
                        "--results", results, env=env, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "no MNIST for grading in this account" in proc.stderr and "mnistkit data" in proc.stderr
    assert "grading" not in proc.stdout and not results.exists()


def test_grade_class_without_data_refuses_before_anyone(course, tmp_path):
    """`mnistkit grade-class` without MNIST: one line, exit 1, no student recorded?"""
    for student in ("alice", "bob"):
        toy.submit(tmp_path / "submitted" / student / toy.ASSIGNMENT, toy.source_notebook(course))
    env = {**os.environ, **empty_account(tmp_path), run.COURSE_ENV: str(course)}
    proc = run_mnistkit("grade-class", tmp_path / "submitted", "--assignment", toy.ASSIGNMENT,
                        "--out", tmp_path / "out", env=env, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and "no MNIST for grading" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.json"))


def test_nbgrader_autograde_without_data_records_nothing(course, tmp_path):
    """`nbgrader autograde` through the kit's preprocessor without MNIST: does it refuse with the
    one-line reason, exit non-zero, and leave the student without a recorded grade (not 0)?"""
    toy.submit(course / "submitted" / "carol" / toy.ASSIGNMENT, toy.source_notebook(course))
    env = {**nbgrader_env(), **empty_account(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", toy.ASSIGNMENT,
                           "--student", "carol"], cwd=course, env=env, capture_output=True,
                          text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0, log
    refusals = [line for line in log.splitlines() if "mnistkit: refusing to grade" in line]
    assert len(refusals) == 1 and "no MNIST for grading in this account" in refusals[0], log
    assert not (course / "autograded" / "carol" / toy.ASSIGNMENT / f"{toy.NOTEBOOK}.ipynb").exists()
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        try:
            nb = gb.find_submission_notebook(toy.NOTEBOOK, toy.ASSIGNMENT, "carol")
            scores = [g.auto_score for g in nb.grades]
        except Exception:   # no submission row at all: nothing recorded either
            scores = []
    assert all(score is None for score in scores), scores


def test_data_is_verified_not_just_present(mnist_data_dir, tmp_path, monkeypatch):
    """Is a data folder with a file missing, or with a wrong image, refused (and a complete one
    accepted), and how long does the check take?"""
    empty_account(tmp_path, monkeypatch)
    folder = linked_data(mnist_data_dir, tmp_path / "account" / ".fastai")
    names = frozenset({data.SAMPLE_NAME})
    start = time.perf_counter()
    assert preflight.check_data(names, True, sandboxed=True) == folder
    TIMINGS["pre-flight: data check of mnist_sample + stand-in (first)"] = time.perf_counter() - start
    start = time.perf_counter()
    preflight.check_data(names, True, sandboxed=True)
    TIMINGS["pre-flight: data check again (layout memoized)"] = time.perf_counter() - start
    threes = sorted((folder / data.SAMPLE_NAME / "train" / "3").iterdir(),
                    key=lambda p: int(p.stem))
    threes[-1].unlink()
    with pytest.raises(preflight.NotReady, match="holds 6130 files"):
        preflight.check_data(names, True, sandboxed=True)
    shutil.copyfile(threes[1], threes[-1])        # the count is right again, not the content
    threes[0].unlink()
    shutil.copyfile(threes[1], threes[0])
    with pytest.raises(preflight.NotReady, match="is not the image mnist.npz has there"):
        preflight.check_data(names, True, sandboxed=True)


def test_sandbox_check_compares_the_limits(mnist_data_dir, monkeypatch):
    """Does the sandbox check pass with the limits grading uses, and would it see a quota that is
    not the one set? (It compares what the sandbox reports with the Limits.)"""
    limits = Limits.from_env()
    names = frozenset({data.SAMPLE_NAME})
    preflight.check_sandbox(limits, mnist_data_dir, names)
    report = {"uid": 65534, "fsize": limits.file_bytes, "data": limits.memory_bytes,
              "network": "OSError", "datasets": {"mnist_sample": 3},
              "places": {p: [7, limits.disk_bytes, limits.disk_files]
                         for p in ("/home/student", "/tmp", "/dev/shm")}}
    preflight._compare(report, limits, names, 65534)
    report["places"]["/tmp"] = [8, 64 << 20, 1_000_000]
    with pytest.raises(preflight.NotReady, match="not one disk quota"):
        preflight._compare(report, limits, names, 65534)


def test_a_sandbox_that_does_not_start_is_the_machines_fault(tmp_path):
    """Does a sandbox that cannot start (here: a quota too small for its own folders) mark the
    notebook's cells so that grading raises instead of recording zeros?"""
    path = tmp_path / "nb" / "n.ipynb"
    path.parent.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[new_code_cell("x = 1")]), str(path))
    student = SandboxStudent(path, limits=Limits(disk_files=3, preload=(), start_seconds=20))
    try:
        cells = [vars(c) for c in student.cells]
    finally:
        student.close()
    report = {"notebook_name": "n", "cells": cells, "graded": True, "exercises": {}}
    assert preflight.start_failure(report), cells
    with pytest.raises(preflight.NotReady, match="grading stopped at n.ipynb, nothing recorded"):
        preflight.after_grading(report, toy.ASSIGNMENT, run.Course.at(toy.TOY))


@pytest.mark.slow
def test_data_gone_mid_batch_stops_the_batch_instead_of_charging(course, mnist_data_dir,
                                                                  tmp_path, monkeypatch):
    """The data disappears after the first student: is the second (whose notebook has failures)
    left unrecorded and the batch stopped with the reason, the first kept?"""
    empty_account(tmp_path, monkeypatch)
    folder = linked_data(mnist_data_dir, tmp_path / "account" / ".fastai")
    submitted = tmp_path / "submitted"
    toy.submit(submitted / "alice" / toy.ASSIGNMENT, toy.source_notebook(course))
    toy.submit(submitted / "bob" / toy.ASSIGNMENT,
               toy.with_answers(toy.release_notebook(course), **toy.HALF_RIGHT))

    def say(line):
        if "bob: grading" in line:
            shutil.rmtree(folder / data.SAMPLE_NAME)
    out = tmp_path / "out"
    with pytest.raises(run.GradingUnavailable, match=r"stopped at bob .*nothing recorded for them"):
        batch.grade_class(submitted, toy.ASSIGNMENT, out, course=run.Course.at(course), say=say)
    assert (out / "alice" / batch.RESULTS_FILE).is_file()
    assert not (out / "bob").exists()
    rows = (out / batch.SCORES_FILE).read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["alice"]


def test_preflight_verdict_is_cached(course, mnist_data_dir, tmp_path, monkeypatch):
    """Is the second check in a process free (a batch or nbgrader run pays once)?"""
    empty_account(tmp_path, monkeypatch)
    linked_data(mnist_data_dir, tmp_path / "account" / ".fastai")
    start = time.perf_counter()
    run.check_can_grade(toy.ASSIGNMENT, run.Course.at(course))
    first = time.perf_counter() - start
    start = time.perf_counter()
    run.check_can_grade(toy.ASSIGNMENT, run.Course.at(course))
    again = time.perf_counter() - start
    TIMINGS["pre-flight: data + sandbox (first call in a process)"] = first
    TIMINGS["pre-flight: cached"] = again
    assert again < 0.1 < first
