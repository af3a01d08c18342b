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
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from mnistkit.build import nbgrader_env
from mnistkit.grading import run

from .fixtures.toy_course import toy_helpers as toy

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
STUDENT = "mallory"
TOKEN = "mnistkit-browser-test"
# Runs if the page lets student HTML through: a flag the test reads, in three ways.
PAYLOAD = ("My answer.\n\n<script>window.__pwned = 'script';</script>\n\n"
           "<img src=\"does-not-exist.png\" onerror=\"window.__pwned = 'onerror'\">\n\n"
           "<svg onload=\"window.__pwned = 'svg'\"></svg> STUDENT-TEXT-MARKER")

pytestmark = [pytest.mark.slow]


def _playwright():
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"no chromium at {CHROMIUM} (scripts/install-system-packages.sh installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (requirements.lock has it)")
    return sync_playwright


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    sync_playwright = _playwright()
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield context
        finally:
            context.close()


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
    autograded and with feedback generated (the kit's nbgrader_config.py)."""
    course = toy.make_course(tmp_path_factory.mktemp("browser_course"))
    nb = toy.release_notebook(course)
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def formgrader(course, tmp_path_factory):
    """`jupyter lab` serving the course (formgrader is its server extension), on loopback."""
    port = _free_port()
    env = nbgrader_env()
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path_factory.mktemp("jupyter-runtime"))
    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent)) or "jupyter"
    proc = subprocess.Popen(
        [jupyter, "lab", "--allow-root", "--no-browser", f"--ServerApp.token={TOKEN}",
         "--ServerApp.ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
         f"--ServerApp.root_dir={course}"],
        cwd=course, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("jupyter lab did not start: " + proc.stderr.read()[-2000:])
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_student_html_does_not_run_in_formgrader(browser, course, formgrader):
    """Does formgrader's submission view, open in an instructor's logged-in browser, show the
    student's answer without running their script?"""
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        submission = gb.find_submission_notebook(toy.NOTEBOOK, toy.ASSIGNMENT, STUDENT).id
    flag, content = pwned(browser, f"{formgrader}/formgrader/submissions/{submission}/?token={TOKEN}")
    assert "STUDENT-TEXT-MARKER" in content      # the real page, not a login or error page
    assert flag is None
