"""Submit and get feedback through nbgrader's exchange, with real accounts: an instructor and
three students, each a separate unprivileged Unix user (issue 12).

The instructor clones the course into their own home (mode 700: no student can read
solutions/ or autograder/), runs `mnistkit course init` with a shared exchange, releases a2.
Each student fetches it with the configuration `course init` wrote for students, answers
(one with the reference answers, one half of them, one nothing), submits (the full and the
blank one run validate first: its verdict on those two is what is checked). The
instructor collects, autogrades with `nbgrader autograde` and with the kit's class path
(`mnistkit grade-class`), generates and releases feedback, exports. Each student fetches
feedback and gets their own only; no student can list or find another's submission or
feedback in the exchange, nor read the instructor's course; the scores agree with `mnistkit grade`'s. The instructor is not root:
the grading runs unprivileged, as in an instructor's JupyterHub server.

Skipped (with the reason) where accounts cannot be created: not root, or no useradd/setpriv.
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from mnistkit import catalog, examples

from .fixtures.checkout import fresh_clone
from .fixtures.unix_accounts import accounts, accounts_unavailable

ASSIGNMENT = "a2_gradient_descent"
STUDENTS = {"ada": "reference", "bob": "half_right", "cy": "untouched"}

pytestmark = [
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed"),
    pytest.mark.skipif(accounts_unavailable() is not None,
                       reason=f"no test accounts: {accounts_unavailable()}"),
]


def chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)


@pytest.fixture(scope="module")
def a_class(mnist_data_dir):
    """The whole round trip, run once; the tests below look at what it left."""
    # not under pytest's tmp folder: it is root's only (mode 700), which the accounts cannot enter
    root = Path(tempfile.mkdtemp(prefix="mnistkit-class-"))
    root.chmod(0o755)
    try:
        yield from _round_trip(root, Path(mnist_data_dir))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _round_trip(root: Path, shared_data: Path):
    with accounts(root / "home", "teach", *STUDENTS) as people:
        teach = people["teach"]
        exchange = root / "exchange"            # made by an administrator, as on a hub
        exchange.mkdir(mode=0o777)
        exchange.chmod(0o777)
        course = fresh_clone(teach.home / "course")
        chown_tree(course, teach.uid, teach.gid)
        # shared_data: the kit's materialized MNIST, which every account reads, none writes
        for person in people.values():
            person.run(["mnistkit", "data", "--use", shared_data])

        said = {"init": teach.run(["mnistkit", "course", "init", "--exchange", exchange],
                                  cwd=course).stdout}
        teach.run(["nbgrader", "release_assignment", ASSIGNMENT], cwd=course)
        # the students' configuration, installed where each student's Jupyter reads it
        student_config = (course / ".mnistkit" / "student-jupyter" / "nbgrader_config.py")
        validated = {}
        for role, kind in STUDENTS.items():
            student = people[role]
            config_dir = student.home / ".jupyter"
            config_dir.mkdir()
            shutil.copy(student_config, config_dir / "nbgrader_config.py")
            chown_tree(config_dir, student.uid, student.gid)
            student.run(["nbgrader", "fetch_assignment", ASSIGNMENT])
            examples.fill_folder(student.home / ASSIGNMENT, examples.answers_for(kind, ASSIGNMENT))
            notebook = next((student.home / ASSIGNMENT).glob("*.ipynb"))
            if kind != "half_right":   # validate's verdict is checked on the full and the blank one
                validated[role] = student.run(["nbgrader", "validate", notebook], check=False)
            student.run(["nbgrader", "submit", ASSIGNMENT])

        teach.run(["nbgrader", "collect", ASSIGNMENT], cwd=course)
        said["autograde"] = teach.run(["nbgrader", "autograde", ASSIGNMENT], cwd=course)
        said["grade-class"] = teach.run(["mnistkit", "grade-class", "submitted", "--assignment",
                                         ASSIGNMENT, "--out", "graded/a2"], cwd=course)
        # `mnistkit grade` of one submission (the partial one: the others' scores are 0 and
        # full marks, checked against the catalog), the command a TA runs on a single student
        teach.run(["mnistkit", "grade", f"submitted/{people['bob'].name}/{ASSIGNMENT}",
                   "--assignment", ASSIGNMENT, "--results", "graded/single-bob.json"], cwd=course)
        teach.run(["nbgrader", "generate_feedback", ASSIGNMENT], cwd=course)
        teach.run(["nbgrader", "release_feedback", ASSIGNMENT], cwd=course)
        teach.run(["nbgrader", "export"], cwd=course)
        feedback = {}
        for role in STUDENTS:
            people[role].run(["nbgrader", "fetch_feedback", ASSIGNMENT])
            feedback[role] = sorted((people[role].home / ASSIGNMENT / "feedback").rglob("*.html"))

        yield dict(people=people, course=course, exchange=exchange, said=said,
                   validated=validated, feedback=feedback)


def test_every_student_submits_and_is_graded_in_the_gradebook(a_class):
    """Do all three submissions reach the instructor through the exchange and the gradebook,
    with validate (run by the full and the blank one) telling the blank one it fails and the
    full one it passes?"""
    people, course = a_class["people"], a_class["course"]
    submitted = {p.name for p in (course / "submitted").iterdir()}
    assert submitted == {people[role].name for role in STUDENTS}
    full = a_class["validated"]["ada"]
    blank = a_class["validated"]["cy"]
    assert "Success! Your notebook passes all the tests." in full.stdout, full.stdout + full.stderr
    assert "failed" in (blank.stdout + blank.stderr).lower() or "error" in blank.stdout.lower()


def test_scores_agree_across_nbgrader_grade_class_and_mnistkit_grade(a_class):
    """Is each student's auto-graded score the same in nbgrader's export and grade-class's
    scores.csv (and `mnistkit grade`'s for the partial one), full marks for the reference
    answers, 0 for the blank notebook, in between for the half?"""
    people, course = a_class["people"], a_class["course"]
    with open(course / "grades.csv", newline="") as f:
        exported = {row["student_id"]: float(row["raw_score"]) for row in csv.DictReader(f)
                    if row["assignment"] == ASSIGNMENT}
    with open(course / "graded" / "a2" / "scores.csv", newline="") as f:
        classwide = {row["student"]: float(row["total"]) for row in csv.DictReader(f)}
    names = [people[role].name for role in STUDENTS]
    for name in names:
        assert exported[name] == pytest.approx(classwide[name])
    single = json.loads((course / "graded" / "single-bob.json").read_text())["score"]
    assert single == pytest.approx(exported[people["bob"].name])
    full_marks = sum(ex.points for ex in catalog.load()
                     if ex.assignment == ASSIGNMENT and ex.kind == "auto")
    ada, bob, cy = (exported[n] for n in names)
    assert ada == pytest.approx(full_marks) and 0 < bob < ada and cy == 0


def test_each_student_fetches_their_own_feedback_only(a_class):
    """Does each student get exactly one feedback file, theirs (their own score in it), and no
    other student's?"""
    people, course = a_class["people"], a_class["course"]
    with open(course / "grades.csv", newline="") as f:
        scores = {row["student_id"]: float(row["raw_score"]) for row in csv.DictReader(f)
                  if row["assignment"] == ASSIGNMENT}
    seen = set()
    for role in STUDENTS:
        files = a_class["feedback"][role]
        assert len(files) == 1, files
        html = files[0].read_text()
        seen.add(html)
        assert re.search(rf"Score:\s*{scores[people[role].name]:g}", re.sub(r"<[^>]+>", " ", html)) \
            or f"{scores[people[role].name]:g}" in html
    assert len(seen) == len(STUDENTS)


def test_no_student_reads_another_s_submission_or_feedback_through_the_exchange(a_class):
    """As bob: can he list the exchange's inbound or feedback folders, read ada's home, or the
    instructor's course (solutions/, autograder/)? nbgrader's own model for the exchange:
    submissions and feedback are files the instructor (another account) must read, so they are
    world-readable, inside folders nobody but their owner can list, under names nobody can
    derive (a random suffix; feedback: a hash of the submission). So is ada's submission's
    name unguessable?"""
    people, exchange, course = a_class["people"], a_class["exchange"], a_class["course"]
    bob, ada = people["bob"], people["ada"]
    inbound = exchange / "mnist-basics" / "inbound"
    feedback = exchange / "mnist-basics" / "feedback"
    probe = ("import os, sys\n"
             "for path in sys.argv[1:]:\n"
             "    try:\n"
             "        (os.listdir if os.path.isdir(path) else (lambda p: open(p).read(1)))(path)\n"
             "        print('READ', path)\n"
             "    except OSError as exc:\n"
             "        print('DENIED', path, exc.errno)\n")
    targets = [inbound, feedback, course / "solutions", course / "autograder",
               course / "gradebook.db", ada.home / ASSIGNMENT]
    out = bob.run(["python", "-c", probe, *targets]).stdout
    for target in targets:
        assert f"DENIED {target}" in out, out
    # what bob would have to guess: ada's folder is user+assignment+timestamp+random
    adas = [p.name for p in inbound.iterdir() if p.name.startswith(ada.name + "+")]
    assert len(adas) == 1
    assert re.fullmatch(rf"{re.escape(ada.name)}\+{ASSIGNMENT}\+[^+]+\+[A-Za-z0-9_-]{{12,}}", adas[0])
    assert len(list(feedback.iterdir())) == len(STUDENTS)
    # the outbound release is readable by every student (that is how they fetch it)
    out = bob.run(["python", "-c", probe, exchange / "mnist-basics" / "outbound"]).stdout
    assert "READ" in out
