"""Grading a class that includes every kind of hostile, broken and unusual notebook
(tests/corpus/toy_cases.py): one batch through `mnistkit grade-class` and one through
`nbgrader autograde`. Each case gets the score it deserves and a reason for what it lost,
classmates in the same batch are unaffected, nothing outside the sandbox changes, the gradebook
has no blanks, and an interrupted nbgrader batch resumes without grading anyone twice (the same
for `mnistkit grade-class`, with two workers: tests/test_grade_class.py)."""
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from mnistkit.build import nbgrader_env

from .corpus import toy_cases as corpus
from .fixtures.toy_course import toy_helpers as toy
from .test_nbgrader_autograde import gradebook_scores

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not toy.sandbox_ready(), reason="needs bubblewrap (make installs it)")]

HONEST = ("honest_first", "zz_honest_last")   # graded before and after every hostile case
# Tight limits keep the batch short (defaults: 120 s per cell, 4 GiB, 512 processes).
LIMITS = {"CELL_SECONDS": "6", "REQUEST_SECONDS": "6", "GRACE_SECONDS": "2",
          "MEMORY_BYTES": str(1 << 30), "PROCESSES": "128"}


def limits_env(**extra):
    env = {**os.environ, **nbgrader_env(), **{f"MNISTKIT_LIMIT_{k}": v for k, v in LIMITS.items()}}
    env.update(extra)
    return env


def interruptible():
    """Popen preexec_fn: Ctrl-C's default action in the child (pytest-xdist workers ignore
    SIGINT, and an ignored signal stays ignored across exec)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt(proc, timeout=120):
    """Press Ctrl-C until ``proc`` stops, as a person would: a SIGINT that lands while Python
    runs a finalizer (``weakref.finalize``, ``__del__``) is printed and swallowed there ("Exception
    ignored in ..."), and the run would go on (seen once in CI). Returns its output."""
    deadline = time.monotonic() + timeout
    while True:
        proc.send_signal(signal.SIGINT)
        try:
            return proc.communicate(timeout=3)
        except subprocess.TimeoutExpired:
            if time.monotonic() > deadline:
                proc.kill()
                raise


def grade_class(course, out, **popen):
    cmd = [sys.executable, "-m", "mnistkit", "grade-class", str(course / "submitted"),
           "--assignment", toy.ASSIGNMENT, "--out", str(out)]
    return subprocess.Popen(cmd, env=limits_env(MNISTKIT_COURSE_ROOT=str(course)), cwd=course,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Listener:
    """A TCP server on the grader's loopback; records any connection a notebook manages."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


@pytest.fixture(scope="session")
def batch(tmp_path_factory):
    course = toy.make_course(tmp_path_factory.mktemp("corpus_course"))
    listener = Listener()
    classmate = course / "submitted" / HONEST[0] / toy.ASSIGNMENT
    corpus.TARGETS.update(course=str(course), classmate=str(classmate), port=str(listener.port))
    reference = toy.source_notebook(course)
    for student in HONEST:
        toy.submit(course / "submitted" / student / toy.ASSIGNMENT, reference)
    for case in corpus.CASES:
        corpus.make_submission(case, course / "submitted" / case.name / toy.ASSIGNMENT,
                               reference, toy.with_answers)
    protected = [classmate / f"{toy.NOTEBOOK}.ipynb", *sorted((course / "autograder").glob("*.py"))]
    before = {p: digest(p) for p in protected}
    out = course / "results"
    start = time.perf_counter()
    mnistkit = grade_class(course, out)
    stdout, stderr = mnistkit.communicate(timeout=1800)
    mnistkit_seconds = time.perf_counter() - start
    nbgrader = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", toy.ASSIGNMENT],
                              cwd=course, env=limits_env(), capture_output=True, text=True, timeout=1800)
    listener.close()
    yield dict(course=course, out=out, rc=mnistkit.returncode, stdout=stdout, stderr=stderr,
               seconds=mnistkit_seconds, nbgrader=nbgrader, connections=listener.connections,
               changed=[str(p) for p in protected if digest(p) != before[p]])


def mnistkit_scores(batch, student):
    record = json.loads((batch["out"] / student / "graded.json").read_text())
    return {k: v for k, v in record["scores"].items() if v is not None}


def results_text(batch, student):
    results = json.loads((batch["out"] / student / "results.json").read_text())
    return results["output"] + "\n" + "\n".join(t["output"] for t in results["tests"])


CASE_IDS = [c.name for c in corpus.CASES]


@pytest.mark.parametrize("case", corpus.CASES, ids=CASE_IDS)
def test_mnistkit_gives_each_case_its_score_and_a_reason(batch, case):
    """Does `mnistkit grade-class` give the case exactly the points it deserves, and say why it
    lost the others?"""
    assert mnistkit_scores(batch, case.name) == case.expect
    if case.expect != corpus.FULL:
        assert case.reason.lower() in results_text(batch, case.name).lower()


@pytest.mark.parametrize("case", [c for c in corpus.CASES if c.name not in corpus.NBGRADER_LIMITS],
                         ids=[n for n in CASE_IDS if n not in corpus.NBGRADER_LIMITS])
def test_nbgrader_gives_each_case_its_score(batch, case):
    """Does `nbgrader autograde` (with the kit's preprocessor) record the same points?"""
    scores = gradebook_scores(batch["course"], case.name)
    assert {k: v for k, v in scores.items() if v is not None} == case.expect


def test_honest_students_keep_full_marks_in_both(batch):
    """Are the honest notebooks graded before and after all the others unaffected?"""
    for student in HONEST:
        assert mnistkit_scores(batch, student) == corpus.FULL
        assert {k: v for k, v in gradebook_scores(batch["course"], student).items()
                if v is not None} == corpus.FULL


def test_gradebook_has_no_blank_auto_scores(batch):
    """Does every submission nbgrader could read have a number (never None) in each graded cell?
    (The files nbgrader cannot read itself are the only blanks; see NBGRADER_LIMITS.)"""
    from nbgrader.api import Gradebook
    blank = set()
    with Gradebook(f"sqlite:///{batch['course'] / 'gradebook.db'}") as gb:
        for submission in gb.assignment_submissions(toy.ASSIGNMENT):
            for notebook in submission.notebooks:
                autos = [g.auto_score for g in notebook.grades if g.name != "why_fast"]
                if None in autos:
                    blank.add(submission.student_id)
    assert blank <= corpus.NBGRADER_LIMITS


def test_nothing_outside_the_sandbox_changed(batch):
    """Did the cheaters leave the classmate's notebook, the hidden tests and the network alone?"""
    assert batch["changed"] == []
    assert batch["connections"] == 0
    assert not (batch["course"] / "gradebook.db").read_bytes().startswith(b"pwned")


def test_batch_ends_with_a_summary_line_and_exit_0(batch):
    """Does the class batch finish normally and say what it did?"""
    assert batch["rc"] == 0, batch["stderr"][-2000:]
    last = batch["stdout"].strip().splitlines()[-1]
    assert last.startswith(f"{toy.ASSIGNMENT}: graded {len(corpus.CASES) + len(HONEST)}, kept 0")
    rows = (batch["out"] / "scores.csv").read_text().splitlines()
    assert len(rows) == 1 + len(corpus.CASES) + len(HONEST)


def test_nbgrader_names_the_files_it_cannot_read(batch):
    """nbgrader reads each notebook itself before any kit code runs: a file that is not JSON or
    not UTF-8, or a notebook under another name, stops there (mnistkit grade-class grades them).
    Does nbgrader's own log name each such student, so an instructor knows whom to look at?"""
    log = batch["nbgrader"].stdout + batch["nbgrader"].stderr
    submitted = batch["course"] / "submitted"
    for name in corpus.NBGRADER_LIMITS - {"missing_notebook"}:
        assert f"error processing assignment: {submitted / name / toy.ASSIGNMENT}" in log, name
    assert f"No notebooks were matched by '{submitted / 'missing_notebook' / toy.ASSIGNMENT}" in log


def test_interrupted_nbgrader_autograde_resumes_without_grading_anyone_twice(tmp_path):
    """Same with `nbgrader autograde` (the kit's preprocessor inside): after Ctrl-C, does the next
    run skip the students already autograded and leave no blank in the gradebook?"""
    course = toy.make_course(tmp_path / "course")
    reference = toy.source_notebook(course)
    students = ["s1", "s2", "s3"]
    for student in students:
        toy.submit(course / "submitted" / student / toy.ASSIGNMENT, reference)
    cmd = [sys.executable, "-m", "nbgrader", "autograde", toy.ASSIGNMENT]
    proc = subprocess.Popen(cmd, cwd=course, env=limits_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=interruptible)
    deadline = time.monotonic() + 300
    while not (course / "autograded" / "s2").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    output, _ = interrupt(proc)
    assert proc.returncode != 0, output
    first = (course / "autograded" / "s1" / toy.ASSIGNMENT / f"{toy.NOTEBOOK}.ipynb").stat().st_mtime_ns
    again = subprocess.run(cmd, cwd=course, env=limits_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Skipping existing assignment" in again.stdout + again.stderr
    assert (course / "autograded" / "s1" / toy.ASSIGNMENT / f"{toy.NOTEBOOK}.ipynb").stat().st_mtime_ns == first
    for student in students:
        assert {k: v for k, v in gradebook_scores(course, student).items() if v is not None} == corpus.FULL
