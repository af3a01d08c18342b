"""Does a student's HTML stay inert where instructors and students read it (issue 10, class 7)?

A student's markdown may hold ``<script>`` and ``<img onerror=...>``. nbgrader renders it into
the feedback file and into formgrader's submission view, which an instructor opens in a browser
logged in to the course's Jupyter server. These tests load both pages in a real browser
(Debian's chromium driven by Playwright; Playwright's own browser download does not work here)
and check that the student's script did not run, while a control page rendered by nbconvert's
defaults shows that the same script does run there (so the check can fail).

The toy course goes through `nbgrader autograde` and `generate_feedback` with the kit's
nbgrader_config.py; formgrader is served by `jupyter lab` on 127.0.0.1, stopped by the test.
Skipped only when chromium (installed by scripts/install-system-packages.sh) or Playwright
(requirements.lock) is missing.
"""
import json
import re
import subprocess
import sys
import urllib.request
from html.parser import HTMLParser

import nbformat
import pytest

from mnistkit.build import nbgrader_env
from mnistkit.grading import run

from .fixtures import jupyter_server as js
from .fixtures.toy_course import toy_helpers as toy

STUDENT = "mallory"
TOKEN = "mnistkit-browser-test"
# Runs if the page lets student HTML through: a flag the test reads, in three ways.
PAYLOAD = ("My answer.\n\n<script>window.__pwned = 'script';</script>\n\n"
           "<img src=\"does-not-exist.png\" onerror=\"window.__pwned = 'onerror'\">\n\n"
           "<svg onload=\"window.__pwned = 'svg'\"></svg> STUDENT-TEXT-MARKER")

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with js.chromium(tmp_path_factory.mktemp("chromium-profile")) as context:
        yield context


def pwned(context, url: str):
    """What the student's script set, after the page loaded (None: nothing ran)."""
    page = context.new_page()
    try:
        page.goto(url, wait_until="load", timeout=30_000)
        page.wait_for_timeout(500)           # onerror fires after the image fails to load
        return page.evaluate("window.__pwned === undefined ? null : window.__pwned"), \
            page.content()
    finally:
        page.close()


def _nbgrader(course, *args):
    env = nbgrader_env()
    # The submission's code cells are the release's own (only its markdown is hostile): graded
    # in-process to keep this test short; the sandboxed path is tests/test_nbgrader_autograde.py.
    env[run.IN_PROCESS_ENV] = "1"
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args, "--log-level=WARN"],
                          cwd=course, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The toy course, one student whose written answer and an extra cell carry the payload,
    and whose code cells' outputs carry more (HTML, JavaScript, an image whose data would end
    its attribute: toy.with_outputs, kept in the feedback since issue 18), autograded and with
    feedback generated (the kit's nbgrader_config.py)."""
    course = toy.make_course(tmp_path_factory.mktemp("browser_course"))
    nb = toy.with_outputs(toy.release_notebook(course))
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = PAYLOAD
    nb.cells.append(nbformat.v4.new_markdown_cell(PAYLOAD))
    toy.submit(course / "submitted" / STUDENT / toy.ASSIGNMENT, nb)
    _nbgrader(course, "autograde", toy.ASSIGNMENT)
    _nbgrader(course, "generate_feedback", toy.ASSIGNMENT)
    return course


def test_the_check_detects_a_running_script(browser, tmp_path):
    """Control: does the payload run in a page nbconvert renders with its defaults?"""
    from nbconvert import HTMLExporter
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(PAYLOAD)])
    html, _ = HTMLExporter().from_notebook_node(nb)
    page = tmp_path / "unsanitized.html"
    page.write_text(html)
    flag, _ = pwned(browser, page.as_uri())
    assert flag is not None


def test_student_html_does_not_run_in_feedback(browser, course):
    """Does the feedback file show the student's text with their script inert?"""
    feedback = course / "feedback" / STUDENT / toy.ASSIGNMENT / f"{toy.NOTEBOOK}.html"
    flag, content = pwned(browser, feedback.as_uri())
    assert flag is None
    assert "STUDENT-TEXT-MARKER" in content and "Autograder:" in content
    assert toy.OUTPUT_MARKERS["printed"] in content     # the outputs are there, inert


class Server(str):
    """The server's base URL, with its log file as ``.log``."""


@pytest.fixture(scope="module")
def formgrader(course, tmp_path_factory):
    """`jupyter lab` serving the course (formgrader is its server extension), on loopback."""
    env = nbgrader_env()
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path_factory.mktemp("jupyter-runtime"))
    with js.jupyter_lab(course, env, TOKEN) as base:
        yield base


def test_student_html_does_not_run_in_formgrader(browser, course, formgrader):
    """Does formgrader's submission view, open in an instructor's logged-in browser, show the
    student's answer without running their script?"""
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        submission = gb.find_submission_notebook(toy.NOTEBOOK, toy.ASSIGNMENT, STUDENT).id
    flag, content = pwned(browser, f"{formgrader}/formgrader/submissions/{submission}/?token={TOKEN}")
    assert "STUDENT-TEXT-MARKER" in content      # the real page, not a login or error page
    assert flag is None


class _PanelText(HTMLParser):
    """The text a browser shows of formgrader's configuration panel (tags dropped)."""

    def __init__(self):
        super().__init__()
        self.depth, self.text = 0, []

    def handle_starttag(self, tag, attrs):
        if self.depth or (tag == "pre" and "panel-body" in (dict(attrs).get("class") or "")):
            self.depth += 1

    def handle_endtag(self, tag):
        if self.depth and tag == "pre":
            self.depth = 0

    def handle_data(self, data):
        if self.depth:
            self.text.append(data)


def test_course_configuration_is_json(course):
    """Is the course's nbgrader configuration plain JSON, as formgrader's configuration panel
    needs (it showed "Formgrader config is not serializable" and the preprocessor lists as
    `[, , , ...]` while they held classes)?"""
    from traitlets.config.loader import PyFileConfigLoader
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    assert json.loads(json.dumps(config))["Autograde"]["autograde_preprocessors"][0] == \
        "mnistkit.grading.nbgrader_autograde.GradeWithHiddenTests"


def test_formgrader_shows_the_course_configuration(formgrader):
    """Does formgrader's configuration panel show the kit's preprocessors by name? Its log line
    "Formgrader config is not serializable" now comes from jupyter_server's own setting only:
    ``ServerApp.jpserver_extensions`` is a traitlets LazyConfigValue in any JupyterLab with
    server extensions (nbgrader 0.9.6 json.dumps the whole configuration, then falls back to
    Python's repr of it: nbgrader#1919); nothing of the course's is in the way."""
    page = urllib.request.urlopen(f"{formgrader}/formgrader/manage_assignments?token={TOKEN}",
                                  timeout=60).read().decode()
    reader = _PanelText()
    reader.feed(page)
    shown = "".join(reader.text)
    for name in ("mnistkit.grading.nbgrader_autograde.GradeWithHiddenTests",
                 "mnistkit.grading.nbgrader_autograde.OverwriteCellsAsReleased",
                 "mnistkit.grading.nbgrader_feedback.ShowScoreMessages",
                 "mnistkit.release_banner.AddReleaseBanner",
                 "nbgrader.preprocessors.savecells.SaveCells"):
        assert name in shown, name
    raw = page.split('<pre class="panel-body">', 1)[1].split("</pre>", 1)[0]
    assert "<class " not in raw
    lazy = re.findall(r"'(\w+)': <LazyConfigValue", raw)
    assert set(lazy) <= {"jpserver_extensions"} and raw.count("<") == len(lazy)


def test_feedback_lines_wrap_in_their_box(browser, course):
    """In a narrow window, does every line of the feedback stay inside its box (wrapped), so
    nothing a student should read is cut off at the edge?"""
    feedback = course / "feedback" / STUDENT / toy.ASSIGNMENT / f"{toy.NOTEBOOK}.html"
    page = browser.new_page()
    page.set_viewport_size({"width": 480, "height": 900})
    try:
        page.goto(feedback.as_uri(), wait_until="load", timeout=30_000)
        boxes = page.evaluate("""() => [...document.querySelectorAll(
            'div.output_area pre, div.input_area pre')].map(
            e => [e.scrollWidth, e.clientWidth, e.textContent.slice(0, 60)])""")
    finally:
        page.close()
    assert any("Autograder:" in text for _, _, text in boxes)
    assert [b for b in boxes if b[0] > b[1] + 1] == []
