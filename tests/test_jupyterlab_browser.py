"""Can a student do assignment 1 in JupyterLab, and an instructor grade a written answer in
formgrader, in a real browser (issue 12)?

The course is a fresh clone of this checkout (what git would clone), made a course by
`mnistkit course init` with nbgrader's exchange in a scratch folder; the instructor releases a1
with nbgrader, then

- the student (their own HOME and folder, the Jupyter configuration course init wrote for
  students, their own `jupyter lab`) finds no instructor tools in the Nbgrader menu, opens
  the Assignments tab, fetches a1, opens it, runs it (the MNIST data comes from FASTAI_HOME, no
  network), sees the self-check of the exercise they left blank fail and stop the run, presses
  Validate on the unfinished notebook, types an answer, sees the self-check fail again, fixes
  it, re-runs everything, presses Validate, saves, and submits from the Assignments tab; the
  test then finds the submission in the exchange's inbound folder;
- the instructor (`jupyter lab` in the course folder) opens formgrader from the Nbgrader menu on
  a submission autograded by `nbgrader autograde`, gives a written answer a grade and a comment,
  and the test finds both in the gradebook, the grade in `nbgrader export`'s CSV (which has no
  comment column) and the comment in the feedback nbgrader generates.

Chromium is Debian's, driven by Playwright (tests/fixtures/jupyter_server.py); skipped only when
either is missing. Every step leaves a screenshot in .mnistkit/screenshots/<test name>/.
"""
from __future__ import annotations

import csv
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from mnistkit import examples
from mnistkit.build import nbgrader_env
from mnistkit.cells import ANSWER_SUFFIX
from mnistkit.grading import run

from .fixtures import jupyter_server as js
from .fixtures.checkout import fresh_clone
from .fixtures.toy_course.toy_helpers import sandbox_ready

pytestmark = [pytest.mark.slow]

COURSE_ID = "mnist-basics"
ASSIGNMENT = "a1_pixel_similarity"
NOTEBOOK = "pixel_similarity"
GRADED = "grace"             # her autograded submission is graded by hand (test b)
TOKEN = "mnistkit-jupyterlab-test"
VIEWPORT = {"width": 1400, "height": 900}
# The exercise the student left blank, her first (wrong) try, and her fix.
BLANK = "stack_images"
FIRST_TRY = "def stack_images(images):\nreturn torch.stack(images)"
FIX = "def stack_images(images):\nreturn torch.stack(images).float() / 255"
WRITTEN = "dataset_layout_why"   # the written answer the instructor grades (1 point)
MANUAL_SCORE = 0.5
COMMENT = "Right folders; now say why a separate valid/ folder matters."
RUN_TIMEOUT = 240_000        # ms: Run All of a1 (fastai's import, 14,000 images) on 2 busy cores


@dataclass
class Course:
    """A course copy, its exchange and two people: the instructor (works in ``root``) and a
    student (works in ``student_root``, with their own HOME and Jupyter configuration)."""
    root: Path
    exchange: Path
    instructor_env: dict
    student_env: dict
    student_root: Path

    def nbgrader(self, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
        """An nbgrader command as the instructor types it in the course folder (the course id
        and exchange come from what `mnistkit course init` recorded)."""
        env = dict(self.instructor_env)
        if not sandbox_ready():
            env[run.IN_PROCESS_ENV] = "1"
        proc = subprocess.run([sys.executable, "-m", "nbgrader", *args, "--log-level=WARN"],
                              cwd=self.root, env=env, capture_output=True, text=True,
                              timeout=timeout)
        assert proc.returncode == 0, f"nbgrader {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
        return proc


def person(home: Path, config_from: Path | None = None) -> dict:
    """The environment of someone whose home is ``home``, their Jupyter configuration in
    ``home/.jupyter`` (a copy of ``config_from``'s files, else empty). The Unix account stays
    this one: nbgrader names a submission after the account (tests/test_exchange_users.py has
    separate accounts)."""
    config = home / ".jupyter"
    if config_from is not None:
        shutil.copytree(config_from, config)
    config.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in nbgrader_env().items() if not k.startswith("JUPYTER_")}
    env.update(HOME=str(home), JUPYTER_CONFIG_DIR=str(config))
    return env


@pytest.fixture(scope="module")
def course(tmp_path_factory, mnist_data_dir) -> Course:
    """A fresh clone made a course by `mnistkit course init` (gradebook, a scratch exchange,
    the students' Jupyter configuration, which the student's JupyterLab uses as is), a1
    released."""
    top = tmp_path_factory.mktemp("jupyterlab-course")
    exchange = top / "exchange"
    root = fresh_clone(top / "course")
    init = subprocess.run([str(Path(sys.executable).parent / "mnistkit"), "course", "init",
                           "--exchange", str(exchange)], cwd=root, env=nbgrader_env(),
                          capture_output=True, text=True, timeout=600)
    assert init.returncode == 0, init.stdout + init.stderr
    student_root = top / "student" / "work"
    student_root.mkdir(parents=True)
    course = Course(root=root, exchange=exchange,
                    instructor_env=person(top / "instructor"),
                    student_env=person(top / "student",
                                       config_from=root / ".mnistkit" / "student-jupyter"),
                    student_root=student_root)
    course.nbgrader("release_assignment", ASSIGNMENT)
    return course


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with js.chromium(tmp_path_factory.mktemp("chromium-profile"), viewport=VIEWPORT) as context:
        yield context


def open_lab(context, base: str):
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{base}/lab?token={TOKEN}")
    page.locator("#jp-main-dock-panel .lm-TabBar-tab").first.wait_for()
    return page


def nbgrader_menu(page, command: str) -> None:
    page.locator('#jp-menu-panel div.lm-MenuBar-itemLabel:text-is("Nbgrader")').click()
    page.locator(f'#jp-mainmenu-nbgrader li[data-command="{command}"]').click()


def type_into(page, cell, text: str) -> None:
    """Replace a cell's source by typing ``text`` (the editor indents after a colon)."""
    cell.locator(".cm-content").click()
    page.keyboard.press("ControlOrMeta+a")
    for i, line in enumerate(text.split("\n")):
        if i:
            page.keyboard.press("Enter")
        page.keyboard.type(line)


def run_cell(page, cell) -> None:
    """Select ``cell`` and run it (Shift+Enter), as a student does."""
    cell.locator(".jp-InputPrompt").click()
    page.keyboard.press("Shift+Enter")


def cell_outputs(nb, grade_id: str) -> str:
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    return "".join(o.get("text", "") + "".join(o.get("traceback", [])) for o in cell.outputs)


def validate(page, shot, step: str) -> str:
    """Press the notebook's Validate button; the verdict dialog's text (then closed)."""
    page.locator("jp-button.validate-button").click()
    verdict = page.locator(".jp-Dialog-content")
    verdict.wait_for(timeout=RUN_TIMEOUT)
    shot(page, step)
    text = verdict.inner_text()
    shot.text(step, text)
    verdict.locator("button.jp-Dialog-button").last.click()
    verdict.wait_for(state="detached")
    return text


def student_session(page, shot, course: Course) -> None:
    """The student's steps in JupyterLab, from the Assignments tab to Submit."""
    shot(page, "jupyterlab-opened")
    # The instructor's tools are hidden from students (course init's student configuration),
    # and so is JupyterLab's prompt to opt in to news (which a course server cannot fetch).
    page.locator('#jp-menu-panel div.lm-MenuBar-itemLabel:text-is("Nbgrader")').click()
    menu = page.locator("#jp-mainmenu-nbgrader")
    menu.locator('li[data-command="nbgrader:open-assignment-list"]').wait_for()
    shot(page, "nbgrader-menu")
    # (nbgrader's menu keeps an item for a disabled plugin's command, hidden)
    for tool in ("nbgrader:open-formgrader", "nbgrader:open-create-assignment",
                 "nbgrader:open-course-list"):
        assert menu.locator(f'li[data-command="{tool}"]:visible').count() == 0, tool
    assert [t.strip() for t in menu.locator("li.lm-Menu-item:visible").all_inner_texts()] == \
        ["Assignment List"]
    page.keyboard.press("Escape")
    assert page.locator(".lm-TabBar-tab", has_text="Create Assignment").count() == 0
    assert page.get_by_text("Would you like to get notified").count() == 0
    nbgrader_menu(page, "nbgrader:open-assignment-list")
    released = page.locator("#released_assignments_list > .list_item")
    released.filter(has_text=ASSIGNMENT).wait_for()
    shot(page, "assignments-tab")

    released.filter(has_text=ASSIGNMENT).locator(".item_status button",
                                                 has_text="Fetch").click()
    fetched = page.locator("#fetched_assignments_list > .list_item")
    fetched.filter(has_text=ASSIGNMENT).wait_for()
    folder = course.student_root / ASSIGNMENT
    assert (folder / f"{NOTEBOOK}.ipynb").is_file()
    page.locator(f'#fetched_assignments_list a:text-is("{ASSIGNMENT}")').click()
    notebook_link = page.locator(f'#fetched_assignments_list .list_item a:text-is("{NOTEBOOK}")')
    notebook_link.wait_for()
    shot(page, "fetched")

    # The student has done every exercise but one in an earlier session.
    examples.fill_folder(folder, {k: v for k, v in examples.reference_answers(ASSIGNMENT).items()
                                  if k != BLANK})
    notebook_link.click()
    page.locator(".jp-Notebook .jp-MarkdownCell", has_text="Assignment 1").first.wait_for()
    page.locator("#jp-main-statusbar", has_text="| Idle").wait_for(timeout=60_000)
    shot(page, "notebook-opened")

    js.main_menu(page, "Run", "runmenu:run-all")
    answer = js.code_cell(page, f"def {BLANK}(")
    check = js.code_cell(page, f"# Self-check for {BLANK}")
    check.locator(".jp-OutputArea-output", has_text="NotImplementedError").wait_for(
        state="attached", timeout=RUN_TIMEOUT)
    check.scroll_into_view_if_needed()
    shot(page, "run-all-stops-at-the-blank-exercise")
    later = js.code_cell(page, "# Self-check for rank_from_shape")
    assert later.locator(".jp-OutputArea-output").count() == 0   # the run stopped there

    text = validate(page, shot, "validate-with-the-blank-exercise")
    assert "Success!" not in text and BLANK in text, text

    type_into(page, answer, FIRST_TRY)
    run_cell(page, answer)
    run_cell(page, check)
    failed = check.locator(".jp-OutputArea-output", has_text="AssertionError")
    failed.wait_for(state="attached", timeout=60_000)
    assert "expected float32" in failed.inner_text()
    check.scroll_into_view_if_needed()
    shot(page, "self-check-fails")

    type_into(page, answer, FIX)
    run_cell(page, answer)
    run_cell(page, check)
    check.locator(".jp-OutputArea-output",
                  has_text=f"{BLANK}: self-check passed").wait_for(state="attached",
                                                              timeout=60_000)
    shot(page, "self-check-passes")

    js.main_menu(page, "Run", "runmenu:run-all")
    last = js.code_cell(page, "# Self-check for validation_metrics_choice")
    last.locator(".jp-OutputArea-output",
                 has_text="validation_metrics_choice: self-check passed").wait_for(
        state="attached", timeout=RUN_TIMEOUT)
    last.scroll_into_view_if_needed()
    shot(page, "run-all-passes")
    errors = page.locator(".jp-Notebook .jp-OutputArea-output", has_text="Traceback")
    assert errors.count() == 0, errors.first.inner_text()

    text = validate(page, shot, "validate-verdict")
    assert "Success! Your notebook passes all the tests." in text, text

    page.locator(".jp-NotebookPanel .jp-Notebook").click()
    js.main_menu(page, "File", "docmanager:save")
    page.locator("#jp-main-dock-panel .lm-TabBar-tab.jp-mod-dirty").wait_for(state="detached")
    shot(page, "saved")

    page.locator("#jp-main-dock-panel .lm-TabBar-tab", has_text="Assignments").click()
    fetched.filter(has_text=ASSIGNMENT).locator(".item_status button",
                                                has_text="Submit").click()
    page.locator("#submitted_assignments_list > .list_item",
                 has_text=ASSIGNMENT).wait_for()
    shot(page, "submitted")


def test_student_fetches_runs_validates_and_submits_a1(browser, course, request):
    """Can a first-time student fetch a1 from the Assignments tab, run it, find and fix the
    exercise they left blank, pass Validate and submit, so that the instructor's exchange holds
    their answer?"""
    shot = js.Screenshots(request.node.name)
    with js.jupyter_lab(course.student_root, course.student_env, TOKEN,
                        log=course.student_root.parent / "jupyter-lab.log") as base:
        page = open_lab(browser, base)
        with shot.on_failure(page):
            student_session(page, shot, course)

    from nbgrader.utils import get_username
    student = get_username()     # nbgrader's name for this account's submissions
    inbound = sorted((course.exchange / COURSE_ID / "inbound").glob(f"{student}+{ASSIGNMENT}+*"))
    assert len(inbound) == 1, inbound
    submitted = nbformat.read(inbound[0] / f"{NOTEBOOK}.ipynb", as_version=4)
    answer_cell = next(c for c in submitted.cells
                       if c.metadata.get("nbgrader", {}).get("grade_id") == BLANK + ANSWER_SUFFIX)
    assert re.sub(r"\s+", " ", answer_cell.source) == re.sub(r"\s+", " ", FIX)
    assert f"{BLANK}: self-check passed" in cell_outputs(submitted, BLANK)


def write_answers(nb, student: str):
    """Each written question's answer cell (the cell after it) in ``student``'s words."""
    for question, answer in zip(nb.cells, nb.cells[1:]):
        grade_id = question.metadata.get("nbgrader", {}).get("grade_id", "")
        if question.metadata.get("nbgrader", {}).get("task") and answer.cell_type == "markdown":
            answer.source = f"{student.title()}'s answer to {grade_id}: the sample has train/ " \
                            "and valid/, each with one folder per label (3/ and 7/)."
    return nb


@pytest.fixture(scope="module")
def autograded(course) -> Course:
    """``GRADED`` handed in the instructor's answers and her own written ones; autograded."""
    folder = examples.with_answers(ASSIGNMENT, examples.reference_answers(ASSIGNMENT),
                                   course.root / "submitted" / GRADED / ASSIGNMENT)
    path = folder / f"{NOTEBOOK}.ipynb"
    nbformat.write(write_answers(nbformat.read(path, as_version=4), GRADED), path)
    course.nbgrader("autograde", ASSIGNMENT, f"--student={GRADED}")
    return course


def gradebook(course: Course):
    from nbgrader.api import Gradebook
    return Gradebook(f"sqlite:///{course.root / 'gradebook.db'}")


def to_top(element) -> None:
    """Scroll formgrader's page so that ``element``'s cell starts below its fixed top bar."""
    element.evaluate("e => { (e.closest('.cell') || e).scrollIntoView({block: 'start'});"
                     " window.scrollBy(0, -70); }")


def grade_in_formgrader(page, shot, course: Course):
    """The instructor's steps: Nbgrader menu, Formgrader, Manual Grading, down to the
    written answer; a grade and a comment. Returns what the gradebook then holds."""
    nbgrader_menu(page, "nbgrader:open-formgrader")
    frame = page.frame_locator("#jp-main-dock-panel iframe")
    frame.locator("td", has_text=ASSIGNMENT).first.wait_for()
    shot(page, "formgrader")

    frame.locator("a", has_text="Manual Grading").first.click()
    frame.locator(f'a:text-is("{ASSIGNMENT}")').wait_for()
    shot(page, "manual-grading")
    frame.locator(f'a:text-is("{ASSIGNMENT}")').click()
    frame.locator(f'a:text-is("{NOTEBOOK}")').wait_for()
    shot(page, "assignment")
    frame.locator(f'a:text-is("{NOTEBOOK}")').click()
    submission = frame.locator("td a", has_text=re.compile("Submission|" + GRADED)).first
    submission.wait_for()
    shot(page, "submissions")
    submission.click()

    score = frame.locator(f"input.score#{WRITTEN}")
    score.wait_for()
    shot(page, "submission-opened")
    to_top(score)
    frame.get_by_text(f"{GRADED.title()}'s answer to {WRITTEN}").wait_for()
    shot(page, "written-answer")
    score.fill(str(MANUAL_SCORE))
    score.press("Tab")
    comment = frame.locator(f"textarea#{WRITTEN}-comment")
    comment.fill(COMMENT)
    comment.blur()              # as a click elsewhere (Tab would scroll to the next cell)
    # formgrader saves on change; wait until the gradebook has both
    for _ in range(60):
        with gradebook(course) as gb:
            grade = gb.find_grade(WRITTEN, NOTEBOOK, ASSIGNMENT, GRADED)
            saved = gb.find_comment(WRITTEN, NOTEBOOK, ASSIGNMENT, GRADED)
            manual, text = grade.manual_score, saved.manual_comment
        if manual is not None and text:
            break
        page.wait_for_timeout(250)
    to_top(score)
    shot(page, "graded")
    return manual, text


def test_instructor_grades_a_written_answer_in_formgrader(browser, autograded, request,
                                                          tmp_path):
    """Can an instructor open formgrader from JupyterLab's Nbgrader menu, find a student's
    written answer, give it a grade and a comment, and find both where nbgrader keeps and
    exports grades?"""
    course = autograded
    shot = js.Screenshots(request.node.name)
    with gradebook(course) as gb:
        grades = gb.find_submission_notebook(NOTEBOOK, ASSIGNMENT, GRADED).grades
        auto_total = sum(g.score for g in grades if g.name != WRITTEN)
        assert gb.find_grade(WRITTEN, NOTEBOOK, ASSIGNMENT, GRADED).manual_score is None
    with js.jupyter_lab(course.root, course.instructor_env, TOKEN,
                        log=tmp_path / "jupyter-lab.log") as base:
        page = open_lab(browser, base)
        with shot.on_failure(page):
            manual, text = grade_in_formgrader(page, shot, course)
    assert manual == MANUAL_SCORE
    assert text == COMMENT

    export = tmp_path / "grades.csv"
    course.nbgrader("export", f"--to={export}")
    # (course init put every assignment in the gradebook: the others are 0 for her)
    rows = [r for r in csv.DictReader(export.open())
            if r["student_id"] == GRADED and r["assignment"] == ASSIGNMENT]
    assert [(r["assignment"], float(r["score"])) for r in rows] == \
        [(ASSIGNMENT, auto_total + MANUAL_SCORE)]

    course.nbgrader("generate_feedback", ASSIGNMENT, f"--student={GRADED}")
    feedback = course.root / "feedback" / GRADED / ASSIGNMENT / f"{NOTEBOOK}.html"
    page = browser.new_page()
    try:
        page.goto(feedback.as_uri())
        assert COMMENT in page.content()
        shot(page, "feedback-top")
        page.get_by_text(COMMENT).first.scroll_into_view_if_needed()
        shot(page, "feedback-comment")
    finally:
        page.close()
