"""Grading with nbgrader (`nbgrader autograde`, `generate_feedback`, `export`) on the toy course.

nbgrader_config.py replaces nbgrader's Execute with the hidden autograder; a scratch copy of
the toy course with the kit's nbgrader_config.py shows it gives the same scores as
`mnistkit grade`, partial credit included, and feedback without hidden tests.
"""
import csv
import re
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
from mnistkit.grading.submitted_outputs import IMAGE_ALT

from .conftest import TIMINGS
from .fixtures.toy_course import toy_helpers as toy

STUDENTS = ("alice", "bob")   # alice hands in the reference, bob a half-right notebook
# dora hands in bob's answers as she ran them: outputs of every kind (toy.with_outputs)
RAN = "dora"
# carol also changed a locked self-check cell (nbgrader restores it and must still say so).
EDITED_LOCKED = "double_it"
LOGS: dict[str, str] = {}     # nbgrader command -> what it printed (stdout + stderr)


def nbgrader(course, *args):
    env = nbgrader_env()
    if not toy.sandbox_ready():
        env[run.IN_PROCESS_ENV] = "1"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                          capture_output=True, text=True, timeout=900)
    TIMINGS[f"nbgrader {args[0]} (toy course)"] = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout + proc.stderr
    LOGS[args[0]] = proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """The toy course after `nbgrader autograde`, `generate_feedback` and `export`, plus the
    same submissions graded by `mnistkit grade`'s code."""
    course = toy.make_course(tmp_path_factory.mktemp("nbgrader_course"))
    release = toy.release_notebook(course)
    carol = toy.with_answers(release, **toy.HALF_RIGHT)
    for cell in carol.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == EDITED_LOCKED:
            cell.source = "# carol's own check\n" + cell.source
    notebooks = {"alice": toy.source_notebook(course),
                 "bob": toy.with_answers(release, **toy.HALF_RIGHT), "carol": carol,
                 RAN: toy.with_outputs(toy.with_answers(release, **toy.HALF_RIGHT))}
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


# --- what nbgrader prints: nothing to alarm an instructor (issue 12) -----------------------

def warnings_by_student(log: str) -> dict[str, list[str]]:
    """nbgrader's WARNING lines (and Python warnings) of an autograde log, by the student whose
    submission was being processed."""
    found, student = {}, None
    for line in log.splitlines():
        if m := re.search(r"Creating/updating student with ID '([^']+)'", line):
            student = m.group(1)
        elif "| WARNING]" in line or "Warning:" in line:
            found.setdefault(student, []).append(line)
    return found


@pytest.mark.slow
def test_autograde_warns_about_changed_locked_cells_only(graded):
    """Does autograde keep quiet about task cells handed in as released (nbgrader#1961: their
    mark scheme is in the gradebook's copy, not in the release), and still warn about the
    locked cell a student did change?"""
    checksum = {student: [line for line in lines if "Attribute 'checksum'" in line]
                for student, lines in warnings_by_student(LOGS["autograde"]).items()}
    assert {s: lines for s, lines in checksum.items() if lines} == {
        "carol": [line for line in checksum.get("carol", [])
                  if f"for cell {EDITED_LOCKED} has changed" in line]}
    assert len(checksum["carol"]) == 1


@pytest.mark.slow
def test_changed_locked_cell_is_restored_and_graded_as_released(graded):
    """Is carol's changed self-check cell put back from the source before grading, so she gets
    what bob gets for the same answers?"""
    course, _ = graded
    assert gradebook_scores(course, "carol") == gradebook_scores(course, "bob")
    source = {c.metadata.nbgrader.grade_id: c.source for c in toy.source_notebook(course).cells
              if c.metadata.get("nbgrader", {}).get("grade_id")}
    for cell in autograded(course, "carol").cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in (EDITED_LOCKED, "why_fast"):
            assert cell.source == source[grade_id]


@pytest.mark.slow
def test_autograde_prints_no_sqlalchemy_warnings(graded):
    """Is autograde free of SQLAlchemy's "not in session" warnings (three per student)?"""
    assert "SAWarning" not in LOGS["autograde"]
    assert "not in session" not in LOGS["autograde"]


@pytest.mark.slow
def test_autograde_warns_about_nothing_else(graded):
    """Apart from carol's changed cell, does autograde print no warning at all?"""
    found = warnings_by_student(LOGS["autograde"])
    assert {s: lines for s, lines in found.items() if s != "carol"} == {}
    assert all(f"for cell {EDITED_LOCKED}" in line for line in found.get("carol", []))


@pytest.mark.slow
def test_generate_feedback_and_export_print_no_warnings(graded):
    """Do `generate_feedback` and `export` print no warning, in particular no "Config option
    `display_data_priority` not recognized"?"""
    assert "display_data_priority" not in LOGS["generate_feedback"]
    for command in ("generate_feedback", "export"):
        assert [line for line in LOGS[command].splitlines()
                if "| WARNING]" in line or "| ERROR]" in line or "Warning:" in line] == []


# --- the feedback file: the kit's messages, not bare numbers; long lines wrap -------------

def feedback_html(course, student):
    return (course / "feedback" / student / toy.ASSIGNMENT / f"{toy.NOTEBOOK}.html").read_text()


@pytest.mark.slow
def test_feedback_shows_messages_not_bare_scores(graded):
    """Does the feedback show the kit's message under each self-check and no `Out[ ]: 0.0`
    (the number nbgrader's partial credit reads), with the scores as the gradebook has them?"""
    course, _ = graded
    html = feedback_html(course, "bob")
    assert "output_execute_result" not in html and "Out[" not in html
    assert "Autograder: 0 / 2 points" in html and "Autograder: 2 / 3 points" in html
    scores = gradebook_scores(course, "bob")
    for grade_id in toy.POINTS:                    # the contents name each exercise
        assert (f'<li><a href="#{grade_id}">{grade_id} ({toy.POINTS[grade_id]:g} points)</a> '
                f"(Score: {scores[grade_id]:.1f} / {toy.POINTS[grade_id]:.1f})</li>") in html
    assert "Test cell" not in html


@pytest.mark.slow
def test_autograded_notebook_keeps_the_number_nbgrader_reads(graded):
    """Does the autograded notebook still carry each partial-credit number, equal to the
    gradebook's score (only the feedback leaves it out)?"""
    course, _ = graded
    scores = gradebook_scores(course, "bob")
    for cell in _graded_cells(autograded(course, "bob")):
        assert [o.output_type for o in cell.outputs] == ["stream", "execute_result"]
        assert determine_grade(cell)[0] == scores[cell.metadata.nbgrader.grade_id]


@pytest.mark.slow
def test_feedback_wraps_long_lines(graded):
    """Does the feedback's style wrap long lines in outputs and code instead of cutting them
    off at the edge of their box (nbconvert's classic style breaks them mid-word, or not)?"""
    course, _ = graded
    html = feedback_html(course, "bob")
    styles = "".join(re.findall(r"<style[^>]*>(.*?)</style>", html, re.S))
    rules = [body for selector, body in re.findall(r"([^{}]*)\{([^{}]*)\}", styles)
             if "div.output_area pre" in selector and "white-space" in body]
    assert rules, "no style sets how output lines break"
    last = rules[-1]             # the one that applies (the same selector, later)
    assert "white-space: pre-wrap" in last and "word-break: normal" in last


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


# --- the feedback a student can act on (issue 18, item 5) ----------------------------------

@pytest.mark.slow
def test_feedback_keeps_the_students_own_outputs_beside_the_graders_messages(graded):
    """Does dora's feedback show what her own cells printed (a print, a result, an error, a
    plot) with their execution counts, next to the grader's messages, and nothing of the kit's
    cells' outputs?"""
    course, _ = graded
    html = feedback_html(course, RAN)
    for marker in ("printed", "error"):
        assert html.count(toy.OUTPUT_MARKERS[marker]) == 1, marker
    assert "redrawn" in html and "\x1b" not in html            # the line as it ended up
    assert html.count("data:image/png;base64,") == 1           # the plot; not the forged one
    for prompt in (r"In\W*\[3\]:", r"In\W*\[7\]:", r"Out\W*\[3\]:"):   # a no-break space
        assert re.search(prompt, html), prompt
    assert "Autograder: 0 / 2 points" in html
    assert toy.OUTPUT_MARKERS["kit"] not in html


@pytest.mark.slow
def test_the_students_outputs_reach_the_feedback_plain_and_bounded(graded):
    """Does nothing of dora's HTML, JavaScript or forged image reach her feedback, and does her
    megabyte of printed text stay out of it?"""
    course, _ = graded
    html = feedback_html(course, RAN)
    assert "__pwned" not in html and "onerror" not in html
    assert toy.OUTPUT_MARKERS["forged"] in html                # shown as text, never as <img>
    assert len(html) < len(feedback_html(course, "bob")) + 40_000


@pytest.mark.slow
def test_autograded_notebook_keeps_outputs_in_the_students_own_cells_only(graded):
    """In dora's autograded notebook (formgrader shows it to instructors), do the kit's cells
    hold only the kit's outputs, and her own cells only plain kinds of output?"""
    course, _ = graded
    for cell in autograded(course, RAN).cells:
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            assert [o.output_type for o in cell.outputs] == ["stream", "execute_result"]
        elif meta.get("locked"):
            assert cell.outputs == [] and cell.execution_count is None
        for out in cell.outputs:
            assert set(out.get("data", {})) <= {"text/plain", "image/png"}
            assert out.get("metadata", {}) in ({}, {"image/png": {"alt": IMAGE_ALT}})


@pytest.mark.slow
def test_feedback_counts_hand_grading_that_has_not_happened_as_pending(graded):
    """Does bob's header read his auto-graded score out of the auto-graded points, with the
    written answer's point pending, and list that answer as pending, not 0?"""
    course, _ = graded
    html = feedback_html(course, "bob")
    assert ("toy_basics (Score: 2.0 / 5.0 auto-graded; 1 point of written answers pending "
            "hand grading)") in html
    assert ('<li><a href="#why_fast">why_fast (written answer, 1 point)</a> '
            "(pending hand grading)</li>") in html
    assert "Pending hand grading (1.0 points)" in html


@pytest.mark.slow
def test_feedback_after_hand_grading_counts_every_point(graded):
    """Once a person grades carol's written answer, does her regenerated feedback count it
    (a plain score of everything), with the score it got?"""
    course, _ = graded
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        grade = gb.find_grade("why_fast", toy.NOTEBOOK, toy.ASSIGNMENT, "carol")
        grade.manual_score, grade.needs_manual_grade = 1.0, False   # as formgrader saves it
        gb.db.commit()
    nbgrader(course, "generate_feedback", toy.ASSIGNMENT, "--student", "carol", "--force")
    html = feedback_html(course, "carol")
    assert "toy_basics (Score: 3.0 / 6.0)" in html and "pending hand grading" not in html
    assert ('<li><a href="#why_fast">why_fast (written answer, 1 point)</a> '
            "(Score: 1.0 / 1.0)</li>") in html
