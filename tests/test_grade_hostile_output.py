"""Does the grader survive hostile answers, and does student text come out clean (issue 10, 4 and 7)?

- Reports: every student string is cleaned where it is shown (terminal summary, results.json):
  no escape sequences or control characters, each message and each report capped.
- An exception inside a hidden test caused by the student's values is that check's failure
  with a neutral reason and an instructor warning, never a kit problem, never exit 1; the
  reference grades with no warning at all.
- The grader process has its own memory limit: a check that a student's value sends into a
  runaway allocation fails alone.
- On the real a1: the forged-runner case of tests/corpus/real_grader_attacks.py graded with
  `mnistkit grade` as a user runs it: exit 0, clean terminal output, clean results.json.
"""
import json
import re
import subprocess
import sys

import pytest

from mnistkit import examples
from mnistkit.grading import run
from mnistkit.grading.results import FEEDBACK_CHARS, MESSAGE_CHARS, Results, clean_line

from .conftest import ROOT, run_mnistkit
from .corpus.real_grader_attacks import CASES
from .fixtures.toy_course import toy_helpers as toy

# Anything a terminal acts on: C0 controls but newline, DEL, C1 controls, bidi/zero-width tricks.
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
HOSTILE = ("\x1b[2K\r\x1b[1A\x1b[32;1mdouble_it  2 / 2\x1b[0m\x1b]0;title\x07\x1b[2J\x1b[H"
           "\u202egnp.exe\b\b\x9b31m" + "x" * 30000)


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def test_clean_line_removes_what_a_terminal_would_act_on():
    """Are escapes, carriage returns, backspaces and bidi overrides gone, the text kept, capped?"""
    line = clean_line(HOSTILE)
    assert not CONTROL.search(line) and "[2K" not in line and "title" not in line
    assert line.startswith("double_it 2 / 2gnp.exe") and len(line) == MESSAGE_CHARS
    assert clean_line("shape (3, 4)\nexpected\t(4,)") == "shape (3, 4) expected (4,)"


def test_reports_are_clean_and_capped_wherever_shown():
    """Do the terminal summary and results.json carry no control character and stay small,
    however many hostile messages the checks, cells and notes hold?"""
    report = dict(notebook_name="toy_basics", graded=True, reason="", problems=[], warnings=[],
                  cells=[dict(index=i, grade_id=None, status="error", seconds=0.0,
                              message=HOSTILE) for i in range(50)],
                  exercises={"double_it": dict(
                      kind="auto", title="Double", points=2.0, score=0.0, status="graded",
                      checks=[dict(exercise="double_it", check=f"c{i}", status="failed",
                                   message=HOSTILE + str(i)) for i in range(40)])})
    run.finish_report(report)
    results = Results(assignment="toy_basics", notebooks=[report], notes=[HOSTILE])
    shown = results.summary()
    data = results.to_gradescope()
    assert not CONTROL.search(shown)
    assert all(not CONTROL.search(s) for s in strings(data))
    assert len(data["tests"][0]["output"]) <= FEEDBACK_CHARS + 200
    assert len(json.dumps(data)) < 20_000 and len(shown) < 10_000


def by_exercise(tests):
    """results.json's tests (one per hidden check) gathered by exercise: scores added up,
    outputs joined."""
    found = {}
    for t in tests:
        ex = found.setdefault(t["name"].split(":")[0], dict(score=0.0, output=""))
        ex["score"] = round(ex["score"] + t["score"], 4)
        ex["output"] += t["output"] + "\n"
    return found


# --- the toy course with extra hidden checks that trip over a student's values --------------

EXTRA_CHECKS = '''

@pytest.mark.exercise("double_it")
def test_double_it_gives_an_even_number(student):
    # trips (TypeError) over an answer that is not a number: the student's doing
    if student.call("double_it", 21) % 2:
        raise AssertionError("odd")


@pytest.mark.exercise("mean_image")
def test_mean_image_buffer_the_student_sized(student):
    # a runaway the student's value drives: RUNAWAY_BYTES of address space in the grader
    if student.has("RUNAWAY_BYTES"):
        torch.empty(int(student.get("RUNAWAY_BYTES")), dtype=torch.uint8)
'''
RUNAWAY = 3 << 30
GRADER_LIMIT = 2 << 30


@pytest.fixture(scope="module")
def tripping_course(tmp_path_factory):
    course = toy.make_course(tmp_path_factory.mktemp("tripping_course"))
    hidden = course / "autograder" / "test_toy_basics.py"
    hidden.write_text(hidden.read_text() + EXTRA_CHECKS)
    return course


@pytest.fixture
def toy_env(tripping_course, monkeypatch):
    monkeypatch.setenv(run.COURSE_ENV, str(tripping_course))
    monkeypatch.setenv(run.GRADER_MEMORY_ENV, str(GRADER_LIMIT))
    if not toy.sandbox_ready():
        monkeypatch.setenv(run.IN_PROCESS_ENV, "1")
    return tripping_course


@pytest.mark.slow
def test_the_reference_trips_no_check(toy_env, tmp_path):
    """Does the reference pass the extra checks with no warning (so a warning means the
    submission's values, or a kit bug the kit's own tests would catch)?"""
    folder = toy.submit(tmp_path / "reference", toy.source_notebook(toy_env))
    results = run.grade_submission(folder, toy.ASSIGNMENT)
    assert results.problems == [] and results.warnings == []
    assert results.scores() == {**toy.POINTS, "why_fast": None}


@pytest.mark.slow
def test_checks_tripped_by_student_values_fail_alone(toy_env, tmp_path):
    """Does a check that raises on a student's string answer, or runs out of the grader's
    memory limit on a student-sized buffer, fail alone with a neutral reason, a warning for
    the instructor, no kit problem, and `mnistkit grade` exit 0?"""
    import torch
    probe = torch.empty(RUNAWAY, dtype=torch.uint8)   # possible here, without the grader's limit
    del probe
    nb = toy.with_answers(toy.release_notebook(toy_env),
                          double_it="def double_it(x):\n    return str(2 * x)\n",
                          mean_image=f"RUNAWAY_BYTES = {RUNAWAY}\n"
                                     "def mean_image(stack):\n    return stack.float().mean(0)\n")
    folder = toy.submit(tmp_path / "tripping", nb)
    results_path = tmp_path / "results.json"
    proc = run_mnistkit("grade", folder, "--assignment", toy.ASSIGNMENT, "--results", results_path,
                        env=dict(__import__("os").environ))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "kit problem" not in proc.stderr
    assert proc.stderr.count("mnistkit grade: warning:") == 2, proc.stderr
    assert "test_double_it_gives_an_even_number" in proc.stderr
    assert "test_mean_image_buffer_the_student_sized" in proc.stderr
    tests = by_exercise(json.loads(results_path.read_text())["tests"])
    assert tests["double_it"]["score"] == 0
    assert tests["mean_image"]["score"] == pytest.approx(3 * 3 / 4)   # 3 of its 4 checks
    for name in ("double_it", "mean_image"):
        assert "stopped on an unexpected" in tests[name]["output"]
        assert "tell your instructor" not in tests[name]["output"]
    # grade-class keeps the same warnings for the instructor and says where they are
    toy.submit(tmp_path / "submitted" / "ada" / toy.ASSIGNMENT, nb)
    out = tmp_path / "class"
    proc = run_mnistkit("grade-class", tmp_path / "submitted", "--assignment", toy.ASSIGNMENT,
                        "--out", out, env=dict(__import__("os").environ))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 warning(s) in graded.json" in proc.stdout + proc.stderr
    graded = json.loads((out / "ada" / "graded.json").read_text())
    assert len(graded["warnings"]) == 2 and graded["problems"] == []


# --- the real a1 with a forged runner (tests/corpus/real_grader_attacks.py) -------------------

@pytest.fixture(scope="module")
def hostile_a1(tmp_path_factory, mnist_data_dir):
    case = CASES[0]
    answers = examples.reference_answers(case.assignment)
    answers.update(case.answers)
    folder = examples.with_answers(case.assignment, answers,
                                   tmp_path_factory.mktemp("hostile") / case.name)
    results = folder.parent / "results.json"
    proc = subprocess.run([sys.executable, "-m", "mnistkit", "grade", str(folder), "--assignment",
                           case.assignment, "--results", str(results)], cwd=ROOT,
                          capture_output=True, timeout=1200)
    return case, proc, results


@pytest.mark.slow
def test_mnistkit_grade_survives_a_forged_runner(hostile_a1):
    """Does `mnistkit grade` finish (exit 0, no kit problem) with the attacked exercises at 0?"""
    case, proc, results = hostile_a1
    out = proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, out[-3000:]
    assert "kit problem" not in out
    tests = by_exercise(json.loads(results.read_text())["tests"])
    for ex_id, most in case.deserves.items():
        assert tests[ex_id]["score"] <= most
    assert "cannot read" in tests["rmse_distance"]["output"]


@pytest.mark.slow
def test_terminal_output_and_results_json_are_clean(hostile_a1):
    """Do the bytes `mnistkit grade` writes to the terminal, and results.json, hold no escape
    sequence or control character, and stay small, although the student sent 20 KB of them?"""
    _, proc, results = hostile_a1
    for stream in (proc.stdout, proc.stderr):
        text = stream.decode("utf-8", "replace")
        assert not CONTROL.search(text), CONTROL.search(text)
    data = json.loads(results.read_text())
    assert all(not CONTROL.search(s) for s in strings(data))
    assert len(results.read_text()) < 20_000
    assert all(len(t["output"]) <= FEEDBACK_CHARS + 200 for t in data["tests"])
