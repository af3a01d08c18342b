"""Does the course work through a real JupyterHub, in a real browser?

One hub for the module (tests/fixtures/hub.py): JupyterHub 6 on loopback, configurable-http-proxy,
DummyAuthenticator with a password, each user's JupyterLab running as their own Unix account.
The instructor (``mkteach-…``) has a fresh clone of the kit in their home made a course by
`mnistkit course init` (a shared exchange) and releases a1; the student (``mkada-…``) has the
students' Jupyter configuration course init wrote, in ``~/.jupyter``. In order:

1. the student logs in through the hub (the hub starts her server), fetches a1 from the
   Assignments tab, opens it, runs every cell (Run All: the self-checks pass), saves, Validates
   and submits; the exchange holds the submission, named after her account;
   then she opens the kit's grade-on-submit page (`mnistkit serve`, a hub service: no second
   login) and finds her grade there within minutes;
2. the instructor collects and autogrades it (nbgrader's commands); her server sends the hub's
   ``Content-Security-Policy: frame-ancestors 'none'`` and JupyterLab's Nbgrader > Formgrader
   tab stays blank (the browser refuses to frame it): nbgrader #1870/#1910/#1919;
3. she writes the kit's JupyterLab setting (``python -m mnistkit.hub_formgrader``): the Nbgrader
   menu's Formgrader now opens ``/hub/user-redirect/formgrader/`` in a browser tab of its own,
   where it works with the policy unchanged; she grades a written answer there, generates and
   releases feedback;
4. the student fetches the feedback from the Assignments tab and reads it in JupyterLab.

Screenshots of every step: .mnistkit/screenshots/hub/<test>/ (git-ignored). Skipped, saying
why, when not root, without chromium/playwright, or without configurable-http-proxy.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from mnistkit import examples, hub_formgrader
from mnistkit.grading import run

from .conftest import TIMINGS
from .fixtures import jupyter_server as js
from .fixtures.checkout import KIT, fresh_clone
from .fixtures.hub import PASSWORD, hub_unavailable, start_hub
from .fixtures.jupyter_server import free_port
from .fixtures.toy_course.toy_helpers import sandbox_ready
from .fixtures.unix_accounts import accounts

needs_hub = [
    pytest.mark.slow,
    pytest.mark.skipif(hub_unavailable() is not None,
                       reason=f"no JupyterHub with real accounts: {hub_unavailable()}"),
]


def on_a_hub(test):
    for mark in needs_hub:
        test = mark(test)
    return test

COURSE_ID = "mnist-basics"
ASSIGNMENT = "a1_pixel_similarity"
NOTEBOOK = "pixel_similarity"
WRITTEN = "dataset_layout_why"    # the written answer the instructor grades (1 point)
MANUAL_SCORE = 0.5
COMMENT = "Right folders; now say why a separate valid/ folder matters."
VIEWPORT = {"width": 1400, "height": 900}
LONG = 240_000                    # ms: a spawn, or Validate of a1 (fastai, 14,000 images)
SHOTS = js.SCREENSHOTS / "hub"
CSP = "frame-ancestors 'none'"


class Shots(js.Screenshots):
    """Numbered screenshots in .mnistkit/screenshots/hub/<name>/."""

    def __init__(self, name: str):
        self.folder = SHOTS / name
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.count = 0
        print(f"\nscreenshots: {self.folder}")


def chown_tree(path: Path, uid: int, gid: int) -> None:
    for item in [path, *path.rglob("*")]:
        os.chown(item, uid, gid, follow_symlinks=False)


@pytest.fixture(scope="module")
def hub_course(mnist_data_dir):
    """The accounts, the course, the exchange and a running hub (stopped at the end)."""
    started = time.perf_counter()
    # not under pytest's tmp folder: root's only (mode 700), which the accounts cannot enter
    root = Path(tempfile.mkdtemp(prefix="mnistkit-hub-"))
    root.chmod(0o755)
    try:
        with accounts(root / "home", "teach", "ada") as people:
            teach, ada = people["teach"], people["ada"]
            exchange = root / "exchange"
            exchange.mkdir(mode=0o777)
            exchange.chmod(0o777)
            course = fresh_clone(teach.home / "course")
            chown_tree(course, teach.uid, teach.gid)
            for person in people.values():
                person.run(["mnistkit", "data", "--use", mnist_data_dir])
            teach.run(["mnistkit", "course", "init", "--exchange", exchange], cwd=course)
            teach.run(["nbgrader", "release_assignment", ASSIGNMENT], cwd=course)
            # the student's Jupyter configuration: what course init wrote for students
            shutil.copytree(course / ".mnistkit" / "student-jupyter", ada.home / ".jupyter")
            chown_tree(ada.home / ".jupyter", ada.uid, ada.gid)
            # the kit's grade-on-submit service (docs/grade-on-submit.md), run by the hub from
            # the grading machine's checkout (this one: the instructor's home is hers alone)
            serve_json = root / "serve.json"
            serve_json.write_text(json.dumps({
                "exchange": str(exchange), "course_id": COURSE_ID, "state_dir": str(root / "serve"),
                "poll_seconds": 1, "settle_seconds": 1, "check_owner": True}))
            service = {"name": "grade", "url": f"http://127.0.0.1:{free_port()}", "cwd": str(KIT),
                       "command": [sys.executable, "-m", "mnistkit", "serve", "--config",
                                   str(serve_json)],
                       "oauth_no_confirm": True, "environment": {
                           k: os.environ[k] for k in ("FASTAI_HOME", "HOME", "PATH") if k in os.environ}}
            hub = start_hub(root / "hub", [teach, ada], folders={teach.name: course},
                            services=[service], roles=[{"name": "user", "scopes": [
                                "self", "access:services!service=grade"]}])
            try:
                TIMINGS["hub: accounts, course, hub started"] = time.perf_counter() - started
                yield dict(hub=hub, teach=teach, ada=ada, course=course, exchange=exchange)
            finally:
                hub.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Debian's chromium (Playwright); each person gets a context of their own (cookies)."""
    sync_playwright = js.require_playwright()
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(js.CHROMIUM), headless=True,
                                      args=js.ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def contexts(browser):
    made = {}

    def context_of(name: str):
        if name not in made:
            made[name] = browser.new_context(viewport=VIEWPORT)
            made[name].set_default_timeout(30_000)
        return made[name]
    yield context_of
    for context in made.values():
        context.close()


def log_in(hub, page, shot, name: str, step: str) -> None:
    """The hub's login page, the account's name and password; then the hub starts the server
    (its "spawn pending" page) and sends the browser to JupyterLab."""
    page.goto(f"{hub.url}/hub/login")
    page.locator("input#username_input").fill(name)
    page.locator("input#password_input").fill(PASSWORD)
    shot(page, step)
    page.locator("#login_submit").click()
    wait_for_lab(page)


def open_lab(hub, page, shot, name: str) -> None:
    """JupyterLab again (logged in already, or through the login page when run alone)."""
    page.goto(f"{hub.url}/user/{name}/lab")
    if "/hub/login" in page.url:
        log_in(hub, page, shot, name, "hub-login")
    wait_for_lab(page)


def wait_for_lab(page) -> None:
    page.locator("#jp-main-dock-panel .lm-TabBar-tab").first.wait_for(timeout=LONG)
    page.locator("#jp-main-statusbar").wait_for()


def nbgrader_menu(page, item) -> None:
    """Open the Nbgrader menu and click ``item`` (a locator built on the open menu)."""
    page.locator('#jp-menu-panel div.lm-MenuBar-itemLabel:text-is("Nbgrader")').click()
    item(page.locator(".lm-Menu")).click()


def assignment_list(page) -> None:
    nbgrader_menu(page, lambda m: m.locator('li[data-command="nbgrader:open-assignment-list"]'))


def validate(page, shot, step: str) -> str:
    page.locator("jp-button.validate-button").click()
    verdict = page.locator(".jp-Dialog-content")
    verdict.wait_for(timeout=LONG)
    shot(page, step)
    text = verdict.inner_text()
    verdict.locator("button.jp-Dialog-button").last.click()
    verdict.wait_for(state="detached")
    return text


def write_answers(nb, who: str):
    """Each written question's answer cell (the markdown cell after it) in ``who``'s words."""
    for question, answer in zip(nb.cells, nb.cells[1:]):
        grade_id = question.metadata.get("nbgrader", {}).get("grade_id", "")
        if question.metadata.get("nbgrader", {}).get("task") and answer.cell_type == "markdown":
            answer.source = f"{who}'s answer to {grade_id}: the sample has train/ and valid/, " \
                            "each with one folder per label (3/ and 7/)."
    return nb


@on_a_hub
def test_student_logs_in_fetches_validates_and_submits_a1(hub_course, contexts):
    """Can a student log in through the hub, fetch a1 from the Assignments tab, pass Validate
    and submit, so that the exchange holds their notebook, named after their account?"""
    started = time.perf_counter()
    hub, ada, exchange = hub_course["hub"], hub_course["ada"], hub_course["exchange"]
    shot = Shots("1-student-submits")
    page = contexts(ada.name).new_page()
    with shot.on_failure(page):
        log_in(hub, page, shot, ada.name, "hub-login")
        assert page.url.startswith(f"{hub.url}/user/{ada.name}/lab"), page.url
        shot(page, "jupyterlab-through-the-hub")
        assignment_list(page)
        released = page.locator("#released_assignments_list > .list_item", has_text=ASSIGNMENT)
        released.wait_for()
        shot(page, "assignments-tab")
        released.locator(".item_status button", has_text="Fetch").click()
        fetched = page.locator("#fetched_assignments_list > .list_item", has_text=ASSIGNMENT)
        fetched.wait_for()
        folder = ada.home / ASSIGNMENT
        notebook = folder / f"{NOTEBOOK}.ipynb"
        assert notebook.is_file() and notebook.stat().st_uid == ada.uid   # fetched as ada
        # ada did the work in an earlier session: every exercise, and the written answers
        examples.fill_folder(folder, examples.reference_answers(ASSIGNMENT))
        nbformat.write(write_answers(nbformat.read(notebook, as_version=4), "Ada"), notebook)
        page.locator(f'#fetched_assignments_list a:text-is("{ASSIGNMENT}")').click()
        link = page.locator(f'#fetched_assignments_list .list_item a:text-is("{NOTEBOOK}")')
        link.wait_for()
        shot(page, "fetched")
        link.click()
        page.locator(".jp-Notebook .jp-MarkdownCell", has_text="Assignment 1").first.wait_for()
        page.locator("#jp-main-statusbar", has_text="| Idle").wait_for(timeout=60_000)
        shot(page, "notebook-opened")
        # as the notebook's first cell asks: run everything, then Validate
        js.main_menu(page, "Run", "runmenu:run-all")
        last = js.code_cell(page, "# Self-check for validation_metrics_choice")
        last.locator(".jp-OutputArea-output",
                     has_text="validation_metrics_choice: self-check passed").wait_for(
            state="attached", timeout=LONG)
        last.scroll_into_view_if_needed()
        shot(page, "run-all-passes")
        errors = page.locator(".jp-Notebook .jp-OutputArea-output", has_text="Traceback")
        assert errors.count() == 0, errors.first.inner_text()
        page.locator(".jp-NotebookPanel .jp-Notebook").click()
        js.main_menu(page, "File", "docmanager:save")
        page.locator("#jp-main-dock-panel .lm-TabBar-tab.jp-mod-dirty").wait_for(state="detached")
        text = validate(page, shot, "validate-verdict")
        assert "Success! Your notebook passes all the tests." in text, text
        page.locator("#jp-main-dock-panel .lm-TabBar-tab", has_text="Assignments").click()
        fetched.locator(".item_status button", has_text="Submit").click()
        page.locator("#submitted_assignments_list > .list_item", has_text=ASSIGNMENT).wait_for()
        shot(page, "submitted")
    page.close()
    inbound = sorted((exchange / COURSE_ID / "inbound").glob(f"{ada.name}+{ASSIGNMENT}+*"))
    assert len(inbound) == 1, inbound
    assert "Ada's answer to" in (inbound[0] / f"{NOTEBOOK}.ipynb").read_text()
    TIMINGS["hub: student logs in, fetches, validates, submits"] = time.perf_counter() - started


@on_a_hub
def test_student_sees_their_grade_on_submit(hub_course, contexts):
    """Within minutes of submitting from the Assignments tab, does the student find their grade
    on the kit's grade-on-submit page (`mnistkit serve`, a hub service behind the hub's OAuth:
    no second login), every auto-graded exercise at full marks, and nothing of the hidden tests?"""
    started = time.perf_counter()
    hub, ada = hub_course["hub"], hub_course["ada"]
    shot = Shots("5-student-sees-grade-on-submit")
    page = contexts(ada.name).new_page()
    with shot.on_failure(page):
        page.goto(f"{hub.url}/services/grade/")
        page.get_by_text(f"Grading on submit: {ada.name}").wait_for(timeout=LONG)
        shot(page, "queued-or-grading")
        deadline = time.monotonic() + 600
        while not page.get_by_text("28.0 / 28.0").count():
            assert time.monotonic() < deadline, page.inner_text("body")[:2000]
            time.sleep(5)
            page.reload()
        shot(page, "graded")
        body = page.inner_text("body")
        assert "mnist_distance" in body and "def test_" not in body and "ref." not in body
    page.close()
    TIMINGS["hub: the student's grade on submit, seen"] = time.perf_counter() - started


@pytest.fixture(scope="module")
def autograded(hub_course):
    """The instructor collects and autogrades a1 (nbgrader's commands, her account)."""
    teach, course = hub_course["teach"], hub_course["course"]
    env = {} if sandbox_ready() else {run.IN_PROCESS_ENV: "1"}
    teach.run(["nbgrader", "collect", ASSIGNMENT], cwd=course, **env)
    teach.run(["nbgrader", "autograde", ASSIGNMENT], cwd=course, **env)
    return hub_course


def gradebook(course: Path):
    from nbgrader.api import Gradebook
    return Gradebook(f"sqlite:///{course / 'gradebook.db'}")


@on_a_hub
def test_formgrader_inside_jupyterlab_is_blank_under_the_hub_csp(autograded, contexts):
    """Does the instructor's server send the hub's `frame-ancestors 'none'`, so that nbgrader's
    Formgrader, an iframe in JupyterLab, is refused by the browser (a blank tab)?"""
    hub, teach = autograded["hub"], autograded["teach"]
    hub.spawn(teach.name)
    token = hub.token_for(teach.name)
    for path in ("formgrader/manage_assignments", "lab"):
        response = hub.get(f"/user/{teach.name}/{path}", token=token)
        assert response.status == 200, (path, response.status)
        assert response.headers["Content-Security-Policy"] == CSP, path
    shot = Shots("2-formgrader-iframe-blank")
    page = contexts(teach.name).new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    with shot.on_failure(page):
        log_in(hub, page, shot, teach.name, "hub-login")
        shot(page, "jupyterlab-through-the-hub")
        nbgrader_menu(page, lambda m: m.locator('li[data-command="nbgrader:open-formgrader"]'))
        iframe = page.locator("#jp-main-dock-panel iframe")
        iframe.wait_for()
        assert "/formgrader" in iframe.get_attribute("src")
        frame = iframe.element_handle().content_frame()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
                frame.url.startswith("chrome-error:") or any("frame-ancestors" in c for c in console)):
            page.wait_for_timeout(250)
        page.wait_for_timeout(1000)
        shot(page, "formgrader-tab-blank")
    # the browser refused to frame it: an error page in the frame, the policy in the console
    assert frame.url.startswith("chrome-error:") or \
        any("frame-ancestors" in c for c in console), (frame.url, console)
    assert page.frame_locator("#jp-main-dock-panel iframe").locator(
        "td", has_text=ASSIGNMENT).count() == 0
    print("frame:", frame.url, "console:", [c for c in console if "frame" in c])
    page.close()


def to_top(element) -> None:
    element.evaluate("e => { (e.closest('.cell') || e).scrollIntoView({block: 'start'});"
                     " window.scrollBy(0, -70); }")


@on_a_hub
def test_instructor_grades_in_formgrader_in_its_own_tab_and_releases_feedback(autograded,
                                                                              contexts):
    """With the kit's setting (`python -m mnistkit.hub_formgrader`), does the Nbgrader menu's
    Formgrader open in a browser tab of its own, with the server's policy unchanged, where the
    instructor grades a written answer and generates and releases feedback?"""
    started = time.perf_counter()
    hub, teach, course, exchange = (autograded[k] for k in ("hub", "teach", "course", "exchange"))
    said = teach.run(["python", "-m", "mnistkit.hub_formgrader"]).stdout
    assert "user-redirect/formgrader/" in said, said
    shot = Shots("3-instructor-grades")
    context = contexts(teach.name)
    page = context.new_page()
    with shot.on_failure(page):
        open_lab(hub, page, shot, teach.name)
        page.locator('#jp-menu-panel div.lm-MenuBar-itemLabel:text-is("Nbgrader")').click()
        item = page.locator('.lm-Menu li[data-command="help:open"]', has_text="Formgrader")
        item.wait_for()
        assert page.locator('.lm-Menu li[data-command="nbgrader:open-formgrader"]').count() == 0
        shot(page, "nbgrader-menu")
        with context.expect_page() as opened:
            item.click()
        fg = opened.value
    with shot.on_failure(fg):
        fg.set_default_timeout(30_000)
        fg.wait_for_url(lambda url: url.startswith(f"{hub.url}/user/{teach.name}/formgrader"))
        row = fg.locator("tbody tr", has_text=ASSIGNMENT)
        row.wait_for()
        shot(fg, "formgrader-own-tab")
        fg.locator("a", has_text="Manual Grading").first.click()
        fg.locator(f'a:text-is("{ASSIGNMENT}")').click()
        fg.locator(f'a:text-is("{NOTEBOOK}")').click()
        submission = fg.locator("td a", has_text=re.compile(
            "Submission|" + re.escape(autograded["ada"].name)))
        submission.first.wait_for()
        shot(fg, "submissions")
        submission.first.click()
        score = fg.locator(f"input.score#{WRITTEN}")
        score.wait_for()
        to_top(score)
        fg.get_by_text(f"Ada's answer to {WRITTEN}").wait_for()
        shot(fg, "written-answer")
        score.fill(str(MANUAL_SCORE))
        score.press("Tab")
        comment = fg.locator(f"textarea#{WRITTEN}-comment")
        comment.fill(COMMENT)
        comment.blur()
        ada = autograded["ada"].name
        for _ in range(60):
            with gradebook(course) as gb:
                manual = gb.find_grade(WRITTEN, NOTEBOOK, ASSIGNMENT, ada).manual_score
                text = gb.find_comment(WRITTEN, NOTEBOOK, ASSIGNMENT, ada).manual_comment
            if manual is not None and text:
                break
            fg.wait_for_timeout(250)
        to_top(score)
        shot(fg, "graded")
        assert (manual, text) == (MANUAL_SCORE, COMMENT)

        fg.goto(f"{hub.url}/user/{teach.name}/formgrader/manage_assignments")
        row = fg.locator("tbody tr", has_text=ASSIGNMENT)
        row.locator(".generate-feedback a").click()
        fg.locator("#success-modal", has_text="Successfully generated feedback").wait_for(
            timeout=LONG)
        fg.wait_for_timeout(600)          # (the dialog fades in)
        shot(fg, "feedback-generated")
        fg.locator("#success-modal button", has_text="OK").click()
        fg.locator("#success-modal").wait_for(state="detached")
        row.locator(".release-feedback a").click()
        fg.locator("#success-modal", has_text="Successfully released feedback").wait_for(
            timeout=LONG)
        fg.wait_for_timeout(600)
        shot(fg, "feedback-released")
    assert len(list((exchange / COURSE_ID / "feedback").iterdir())) == 1
    response = hub.get(f"/user/{teach.name}/formgrader/manage_assignments",
                       token=hub.token_for(teach.name))
    assert response.headers["Content-Security-Policy"] == CSP      # the policy is unchanged
    fg.close()
    page.close()
    TIMINGS["hub: instructor grades in formgrader, releases feedback"] = \
        time.perf_counter() - started


@on_a_hub
def test_student_fetches_and_reads_the_feedback(autograded, contexts):
    """Does the student get the feedback from the Assignments tab and read, in JupyterLab, the
    grade and comment the instructor gave?"""
    hub, ada = autograded["hub"], autograded["ada"]
    shot = Shots("4-student-reads-feedback")
    page = contexts(ada.name).new_page()
    with shot.on_failure(page):
        open_lab(hub, page, shot, ada.name)
        assignment_list(page)
        submitted = page.locator("#submitted_assignments_list > .list_item", has_text=ASSIGNMENT)
        submitted.wait_for()
        submitted.locator("button", has_text="Fetch Feedback").click()
        view = page.locator("#submitted_assignments_list a", has_text="view feedback")
        view.wait_for(timeout=60_000)
        shot(page, "feedback-fetched")
        view.click()
        html = page.locator(".jp-DirListing-item", has_text=f"{NOTEBOOK}.html")
        html.wait_for()
        shot(page, "feedback-folder")
        html.dblclick()
        frame = page.frame_locator(".jp-HTMLViewer iframe")
        frame.get_by_text(COMMENT).first.wait_for()
        shot(page, "feedback-open")
        frame.get_by_text(COMMENT).first.scroll_into_view_if_needed()
        shot(page, "feedback-comment")
    files = [p for p in sorted((ada.home / ASSIGNMENT / "feedback").rglob("*.html"))
             if ".ipynb_checkpoints" not in p.parts]       # (JupyterLab's copy, once opened)
    assert len(files) == 1 and COMMENT in files[0].read_text()
    page.close()


def test_the_kit_setting_replaces_nbgrader_s_menu_and_keeps_other_settings(tmp_path):
    """Does `python -m mnistkit.hub_formgrader` disable nbgrader's menu plugin and add an
    Nbgrader menu whose Formgrader opens the hub's user-redirect in a new browser tab, keeping
    the settings already in both files (run twice: one menu)?"""
    import json
    (tmp_path / "labconfig").mkdir()
    (tmp_path / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"other": True}, "x": 1}))
    settings = tmp_path / hub_formgrader.MAINMENU_SETTINGS
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"menus": [{"id": "jp-mainmenu-mine", "items": []}]}))
    for _ in range(2):
        assert hub_formgrader.main(["--into", str(tmp_path), "--hub-prefix", "/course/hub/"]) == 0
    page_config = json.loads((tmp_path / "labconfig" / "page_config.json").read_text())
    assert page_config == {"disabledExtensions": {"other": True, "@jupyter/nbgrader:menu": True},
                           "x": 1}
    menus = json.loads(settings.read_text())["menus"]
    assert [m["id"] for m in menus] == ["jp-mainmenu-mine", "jp-mainmenu-nbgrader"]
    formgrader = [i for i in menus[1]["items"] if i["command"] == "help:open"]
    assert formgrader == [{"command": "help:open", "rank": 3, "args": {
        "url": "/course/hub/user-redirect/formgrader/", "text": "Formgrader",
        "newBrowserTab": True}}]
