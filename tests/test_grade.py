"""Grading a submission with `mnistkit grade`, on a tiny toy course (tests/fixtures/toy_course).

The toy course has the kit's layout (source/, autograder/ with hidden tests and a reference
module) and no fastai import, so each grading run takes seconds. Student code runs in the
sandbox when it is installed, otherwise in-process (MNISTKIT_UNSAFE_IN_PROCESS=1, tests only).
"""
import json
import time

import nbformat
import pytest

from mnistkit import cli
from mnistkit.grading import run, submission
from mnistkit.grading.results import Results

from .conftest import TIMINGS
from .fixtures.toy_course import toy_helpers as toy

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="session")
def course(tmp_path_factory):
    return toy.make_course(tmp_path_factory.mktemp("toy_course"))


@pytest.fixture
def grading_env(course, monkeypatch):
    """`mnistkit grade` pointed at the toy course (the kit's own folders are the default)."""
    monkeypatch.setenv(run.COURSE_ENV, str(course))
    if not toy.sandbox_ready():
        monkeypatch.setenv(run.IN_PROCESS_ENV, "1")
    return course


def grade_cli(folder, tmp_path, capsys, assignment=toy.ASSIGNMENT):
    results = tmp_path / "out" / "results.json"
    start = time.perf_counter()
    code = cli.main(["grade", str(folder), "--assignment", assignment, "--results", str(results)])
    TIMINGS[f"mnistkit grade {folder.name}"] = time.perf_counter() - start
    out = capsys.readouterr()
    data = json.loads(results.read_text()) if results.exists() else None
    return code, data, out


def by_exercise(data):
    """results.json's tests (one per hidden check) gathered by exercise: scores added up,
    outputs one per line, failed if any check failed."""
    found = {}
    for t in data["tests"]:
        ex = found.setdefault(t["name"].split(":")[0], dict(score=0.0, max_score=0.0,
                                                            status="passed", outputs=[]))
        ex["score"] += t["score"]
        ex["max_score"] += t["max_score"]
        ex["status"] = "failed" if t["status"] == "failed" else ex["status"]
        ex["outputs"] += [t["output"]] if t["output"] else []
    for ex in found.values():
        ex["score"], ex["max_score"] = round(ex["score"], 4), round(ex["max_score"], 4)
        ex["output"] = "\n".join(ex["outputs"])
    return found


# --- whole submissions through the CLI ----------------------------------------------------

@pytest.fixture(scope="session")
def half_right_results(course, tmp_path_factory):
    """A half-right submission graded once (several tests read it)."""
    folder = toy.submit(tmp_path_factory.mktemp("half") / "half_right",
                        toy.with_answers(toy.release_notebook(course), **toy.HALF_RIGHT))
    results_path = folder.parent / "results.json"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(run.COURSE_ENV, str(course))
        if not toy.sandbox_ready():
            mp.setenv(run.IN_PROCESS_ENV, "1")
        start = time.perf_counter()
        code = cli.main(["grade", str(folder), "--assignment", toy.ASSIGNMENT,
                         "--results", str(results_path)])
        TIMINGS["mnistkit grade half_right"] = time.perf_counter() - start
    return code, json.loads(results_path.read_text())


def test_reference_solution_gets_full_marks(grading_env, tmp_path, capsys):
    """Does the instructor's source notebook (the reference) score full marks?"""
    folder = toy.submit(tmp_path / "reference", toy.source_notebook(grading_env))
    code, data, out = grade_cli(folder, tmp_path, capsys)
    assert code == 0, out.err
    assert data["score"] == sum(toy.POINTS.values())
    assert all(t["status"] == "passed" and t["output"] == "" for t in data["tests"])
    assert "toy_basics.ipynb" in out.out and "total" in out.out   # progress and summary


def test_untouched_release_scores_zero_without_errors(grading_env, tmp_path, capsys):
    """Does the untouched student notebook grade cleanly to 0, saying what is missing?"""
    folder = toy.submit(tmp_path / "untouched", toy.release_notebook(grading_env))
    code, data, out = grade_cli(folder, tmp_path, capsys)
    assert code == 0, out.err
    assert data["score"] == 0
    assert "kit problem" not in out.err
    for test in data["tests"]:
        assert test["status"] == "failed" and "NotImplementedError" in test["output"]
        assert "could not run" not in test["output"]      # the student's fault, not the grader's


def test_half_right_submission_gets_partial_credit(half_right_results):
    """Does a partly right answer earn part of the points, with a reason for what failed?"""
    code, data = half_right_results
    assert code == 0
    tests = by_exercise(data)
    assert {k: t["score"] for k, t in tests.items()} == pytest.approx(toy.HALF_RIGHT_SCORES,
                                                                        abs=1e-3)
    assert tests["mean_image"]["status"] == "failed"
    assert "RuntimeError" in tests["mean_image"]["output"]  # the student's own error, one line
    assert all("\n" not in output for output in tests["mean_image"]["outputs"])
    assert "differs from the expected values" in tests["double_it"]["output"]


def test_results_json_has_the_gradescope_fields(half_right_results):
    """Is results.json in Gradescope's format, naming each exercise, hiding grader output?"""
    _, data = half_right_results
    assert set(data) >= {"score", "execution_time", "output", "visibility", "stdout_visibility",
                         "tests"}
    assert data["stdout_visibility"] == "hidden" and data["visibility"] == "visible"
    assert data["score"] == pytest.approx(sum(t["score"] for t in data["tests"]), abs=1e-3)
    for test in data["tests"]:
        assert set(test) == {"name", "score", "max_score", "status", "output", "visibility"}
        assert test["status"] in ("passed", "failed")
        assert toy.HIDDEN_MARKER not in test["output"] and "def test_" not in test["output"]
    assert {ex: t["max_score"] for ex, t in by_exercise(data).items()} == toy.POINTS
    # one test per hidden check, named by its exercise and what it checks
    assert [t["name"] for t in data["tests"]] == [
        "double_it: on an integer", "double_it: on a tensor", "mean_image: of a float stack",
        "mean_image: of a single image", "mean_image: of uint8 pixels"]
    assert "why_fast" in data["output"]                     # hand-graded, listed, not a test


def test_a_cell_that_failed_is_named_as_the_student_sees_it(grading_env, tmp_path, capsys):
    """Is a cell of the student's own that raised named by the text it follows, never by a
    count of code cells ("code cell 7"), and never as "one of your own cells"?"""
    nb = toy.source_notebook(grading_env)
    at = next(i for i, c in enumerate(nb.cells) if c.source.startswith("## Mean image"))
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell("scratch = 1 / 0"))
    folder = toy.submit(tmp_path / "scratch", nb)
    code, data, out = grade_cli(folder, tmp_path, capsys)
    assert code == 0, out.err
    assert data["score"] == sum(toy.POINTS.values())
    assert "the cell after 'Mean image' raised: ZeroDivisionError" in data["output"]
    assert "code cell" not in data["output"] and "your own" not in data["output"]


def test_unreadable_notebook_gets_zero_with_a_reason(grading_env, tmp_path, capsys):
    """Is a cut-off notebook graded 0 on every exercise, with the reason, and exit code 0?"""
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "toy_basics.ipynb").write_text('{"cells": [{"cell_type": "code", "sour')
    code, data, out = grade_cli(folder, tmp_path, capsys)
    assert code == 0, out.err
    assert data["score"] == 0 and len(data["tests"]) == 2
    for test in data["tests"]:
        assert "not a valid notebook file" in test["output"]
    assert "not graded" in data["output"]


def test_missing_notebook_gets_zero_and_extra_files_are_noted(grading_env, tmp_path, capsys):
    """Is a submission without the notebook graded 0, naming what was missing and ignored?"""
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "notes.txt").write_text("hi")
    code, data, out = grade_cli(folder, tmp_path, capsys)
    assert code == 0
    assert data["score"] == 0
    assert all("toy_basics.ipynb was not found" in t["output"] for t in data["tests"])


def test_the_only_notebook_under_another_name_is_graded(grading_env, tmp_path, capsys):
    """Is a submission whose one notebook was renamed `homework.ipynb` graded as the
    assignment's notebook, with a note (it stopped `mnistkit grade` with "internal error:
    IndexError" and no results before)?"""
    folder = toy.submit(tmp_path / "renamed", toy.source_notebook(grading_env), name="homework")
    code, data, out = grade_cli(folder, tmp_path, capsys)
    assert code == 0, out.err
    assert data["score"] == sum(toy.POINTS.values())
    assert "graded homework.ipynb as toy_basics.ipynb" in data["output"]


def test_unknown_assignment_is_a_one_line_error(grading_env, tmp_path, capsys):
    """Does a wrong --assignment fail fast with one line naming the known ones?"""
    folder = toy.submit(tmp_path / "sub", toy.release_notebook(grading_env))
    code, data, out = grade_cli(folder, tmp_path, capsys, assignment="nope")
    assert code != 0 and data is None
    assert out.err.count("\n") == 1 and "nope" in out.err and "toy_basics" in out.err


def test_missing_folder_is_a_one_line_error(grading_env, tmp_path, capsys):
    """Does a submission folder that does not exist fail with one line?"""
    code, data, out = grade_cli(tmp_path / "nowhere", tmp_path, capsys)
    assert code != 0 and data is None
    assert out.err.count("\n") == 1 and "no such folder" in out.err


def test_missing_hidden_tests_module_is_a_one_line_error(grading_env, tmp_path, capsys):
    """Does an assignment without autograder/test_<name>.py refuse to grade?"""
    folder = toy.submit(tmp_path / "sub", toy.release_notebook(grading_env))
    module = grading_env / "autograder" / "test_toy_basics.py"
    hidden = module.with_suffix(".off")
    module.rename(hidden)
    try:
        code, data, out = grade_cli(folder, tmp_path, capsys)
    finally:
        hidden.rename(module)
    assert code != 0 and data is None
    assert out.err.count("\n") == 1 and "hidden tests" in out.err


def test_default_grading_refuses_to_run_without_the_sandbox(grading_env, monkeypatch):
    """Without the in-process opt-in, is student code only ever run in the sandbox?"""
    monkeypatch.delenv(run.IN_PROCESS_ENV, raising=False)
    monkeypatch.setattr(run.shutil, "which", lambda name: None)   # as if bwrap were missing
    with pytest.raises(run.GradingUnavailable, match="bwrap|sandbox"):
        run.check_can_grade(toy.ASSIGNMENT, run.Course.default())


def test_exercise_without_hidden_tests_is_loud(grading_env, tmp_path, capsys):
    """Is an exercise with no hidden tests (a kit bug) scored 0 and reported, exit code 1?"""
    module = grading_env / "autograder" / "test_toy_basics.py"
    original = module.read_text()
    module.write_text(original.split('@pytest.mark.exercise("mean_image")')[0])
    folder = toy.submit(tmp_path / "reference", toy.source_notebook(grading_env))
    try:
        code, data, out = grade_cli(folder, tmp_path, capsys)
    finally:
        module.write_text(original)
    assert code == 1
    tests = by_exercise(data)
    assert tests["double_it"]["score"] == 2
    assert tests["mean_image"]["score"] == 0 and "no hidden tests" in tests["mean_image"]["output"]
    assert "kit problem" in out.err and "mean_image" in out.err


def test_a_grading_run_that_dies_records_zero_with_the_reason(grading_env, tmp_path):
    """Does a grading run killed at its time limit give 0 and the reason on every exercise?"""
    path = tmp_path / "toy_basics.ipynb"
    nbformat.write(toy.source_notebook(grading_env), str(path))
    report = run.grade_notebook(path, toy.ASSIGNMENT, course=run.Course.at(grading_env),
                                timeout=0.2)
    assert report["graded"] is False and "time limit" in report["reason"]
    auto = {k: e for k, e in report["exercises"].items() if e["kind"] == "auto"}
    assert set(auto) == set(toy.POINTS)
    assert all(e["score"] == 0 and "time limit" in e["feedback"][0] for e in auto.values())
    assert report["exercises"]["why_fast"]["status"] == "needs hand grading"


# --- reading submissions safely (no grading run) ------------------------------------------

def _release(course):
    return submission.read_release(course / "release" / toy.ASSIGNMENT / "toy_basics.ipynb")


def _ids(nb):
    return [submission.grade_id(c) for c in nb.cells]


def test_locked_cells_are_restored_and_answers_kept(course):
    """Are edited self-checks put back, deleted ones re-added, and answers kept in order?"""
    nb = toy.with_answers(toy.release_notebook(course), double_it="def double_it(x):\n    return x + x\n")
    for cell in nb.cells:
        if submission.grade_id(cell) == "double_it":
            cell.source = "print('I always pass')"
    nb.cells = [c for c in nb.cells if submission.grade_id(c) != "mean_image"]
    nb.cells.append(nbformat.v4.new_code_cell("x = 1  # my own cell"))
    restored, notes = submission.restore_cells(submission.clean(nb), _release(course))
    release = _release(course)
    by_id = {submission.grade_id(c): c for c in restored.cells if submission.grade_id(c)}
    assert by_id["double_it"].source == next(c.source for c in release.cells
                                             if submission.grade_id(c) == "double_it")
    assert "return x + x" in by_id["double_it-answer"].source
    ids = [i for i in _ids(restored) if i]
    assert ids == [i for i in _ids(release) if i]                  # mean_image back in place
    assert restored.cells[-1].source.startswith("x = 1")
    assert any("double_it" in n and "restored" in n for n in notes)
    assert any("mean_image" in n and "put back" in n for n in notes)


def test_deleted_answer_cell_is_not_refilled_from_the_source(course):
    """When the release is missing, is a deleted answer cell left deleted (no solution leak)?"""
    source = submission.read_release(course / "source" / toy.ASSIGNMENT / "toy_basics.ipynb")
    nb = toy.release_notebook(course)
    nb.cells = [c for c in nb.cells if submission.grade_id(c) != "double_it-answer"]
    restored, _ = submission.restore_cells(submission.clean(nb), source)
    assert "double_it-answer" not in _ids(restored)
    assert "BEGIN SOLUTION" not in json.dumps(restored)


def test_duplicated_graded_cell_is_just_code(course):
    """Is a copy of a graded cell's id treated as the student's own cell?"""
    nb = toy.release_notebook(course)
    extra = nbformat.v4.new_code_cell("pass")
    extra.metadata["nbgrader"] = {"grade": True, "grade_id": "double_it", "points": 99}
    nb.cells.append(extra)
    restored, notes = submission.restore_cells(submission.clean(nb), _release(course))
    assert _ids(restored).count("double_it") == 1
    assert restored.cells[-1].source == "pass" and "nbgrader" not in restored.cells[-1].metadata


def test_outputs_are_stripped_and_odd_encodings_read(course, tmp_path):
    """Are huge outputs dropped, and Latin-1 and old-format notebooks read with a note?"""
    nb = toy.release_notebook(course)
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * 5_000_000)]
    nb.cells[1].source = "Ünïcödé café"
    path = tmp_path / "a.ipynb"
    path.write_bytes(nbformat.writes(nb).encode("latin-1", errors="replace"))
    clean, notes = submission.read_notebook(path)
    assert all(not c.get("outputs") for c in clean.cells)
    assert any("Latin-1" in n for n in notes) and "café" in clean.cells[1].source
    v3 = nbformat.v3.new_notebook(worksheets=[nbformat.v3.new_worksheet(
        cells=[nbformat.v3.new_code_cell(input="y = 2")])])
    old = tmp_path / "old.ipynb"
    old.write_text(json.dumps(v3))
    clean, notes = submission.read_notebook(old)
    assert clean.cells[0].source == "y = 2" and any("format 3" in n for n in notes)


@pytest.mark.parametrize("content, reason", [
    (b"", "empty"), (b"\x00\x01garbage", "not a valid notebook"), (b"[1, 2]", "not a Jupyter"),
    (b'{"nbformat": 9, "cells": []}', "newer"),
])
def test_unreadable_files_say_why(tmp_path, content, reason):
    """Does each kind of broken file get a reason the student can act on?"""
    path = tmp_path / "nb.ipynb"
    path.write_bytes(content)
    with pytest.raises(submission.Unreadable, match=reason):
        submission.read_notebook(path)


def test_renamed_and_extra_notebooks(tmp_path):
    """Is `toy_basics (1).ipynb` graded as toy_basics, and a stray notebook noted and ignored?"""
    (tmp_path / "toy_basics (1).ipynb").write_text("{}")
    (tmp_path / "scratch.ipynb").write_text("{}")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "toy_basics-checkpoint.ipynb").write_text("{}")
    found, notes = submission.locate(tmp_path, ["toy_basics"])
    assert found["toy_basics"].name == "toy_basics (1).ipynb"
    assert any("scratch.ipynb" in n and "ignored" in n for n in notes)
    assert not any("checkpoint" in n for n in notes)


def test_a_lone_notebook_stands_in_whatever_its_name(tmp_path):
    """Does the one notebook of a submission stand in for the one expected (`homework.ipynb`,
    `TOY_BASICS.IPYNB`), and for two expected notebooks, only by name?"""
    (tmp_path / "homework.ipynb").write_text("{}")
    found, notes = submission.locate(tmp_path, ["toy_basics"])
    assert found["toy_basics"].name == "homework.ipynb"
    assert notes == ["graded homework.ipynb as toy_basics.ipynb"]
    found, notes = submission.locate(tmp_path, ["toy_basics", "other"])
    assert found == {"toy_basics": None, "other": None}
    assert notes == ["ignored homework.ipynb (not a notebook of this assignment)"]
    (tmp_path / "homework.ipynb").rename(tmp_path / "TOY_BASICS.IPYNB")
    found, _ = submission.locate(tmp_path, ["toy_basics", "other"])
    assert found["toy_basics"].name == "TOY_BASICS.IPYNB" and found["other"] is None


def test_summary_fits_one_screen():
    """Does the terminal summary show id, score/max and the first problem, one line each?"""
    report = run.failed_report(toy.ASSIGNMENT, "toy_basics", "toy_basics.ipynb was not found",
                               run.Course.at(toy.TOY))
    results = Results(toy.ASSIGNMENT, [report], notes=["ignored x.ipynb"])
    text = results.summary()
    assert len(text.splitlines()) < 25 and max(map(len, text.splitlines())) <= 100
    assert "double_it" in text and "0 / 2" in text and "was not found" in text


# --- what grading runs of a notebook ---------------------------------------------------------

def _notebook_with(path, *cells):
    from nbformat.v4 import new_notebook
    nbformat.write(new_notebook(cells=list(cells)), str(path))
    return path


def test_demonstrations_and_self_checks_are_left_out_unless_an_answer_reads_them(tmp_path):
    """Grading skips a demonstration (``demo-*``) or a self-check only while no cell that runs
    reads what it binds, in that very notebook: a later cell as it runs, or a function of any
    cell, which a hidden test may call after every cell has run."""
    from mnistkit import cells
    from mnistkit.grading.left_out import LEFT_OUT, cells_left_out
    from mnistkit.grading.student import InProcessStudent
    demo = cells.locked_code("demo-train", "trained = 'a trained model'\nprint(trained)")
    check = cells.self_check("double", 1, "probe = double(2)\nassert probe == 4")
    after = nbformat.v4.new_code_cell("shown = probe + 1")   # the chapter reads the check's name

    def notebook(name, answer_body, *rest):
        answer = cells.answer_code("double", f"def double(x):\n{answer_body}")
        return _notebook_with(tmp_path / name, answer, check, *rest, demo)

    chapter = notebook("chapter.ipynb", "    return 2 * x", after)
    assert cells_left_out(chapter) == {3}                 # the demonstration; the check is read
    student = InProcessStudent(chapter, workdir=tmp_path)
    assert [c.status for c in student.cells] == ["ok", "ok", "ok", LEFT_OUT]
    assert not student.has("trained") and student.get("shown") == 5
    assert cells_left_out(notebook("alone.ipynb", "    return 2 * x")) == {1, 2}
    # an answer that reads the demonstration's name, from a cell before it
    assert cells_left_out(notebook("reads.ipynb", "    return 2 * x if trained else x")) == {1}
    # a helper of the student's, defined before the check, that reads the check's name
    helper = nbformat.v4.new_code_cell("def last_probe():\n    return probe")
    assert cells_left_out(_notebook_with(tmp_path / "helper.ipynb", helper, check, demo)) == {2}
