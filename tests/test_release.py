"""Releasing to students: release/ is generated, current, and leaks nothing."""
import json
import re

import nbformat
import pytest

from mnistkit import catalog
from mnistkit.paths import RELEASE, SOURCE
from mnistkit.release_banner import (BANNER_MARK, FEEDBACK_TEXT, RULES_MARK, SHORT_RULES,
                                     FeedbackBanner, reads_code_exercises)
from mnistkit.grading.left_out import DEMO_PREFIX, cells_left_out
from mnistkit.selfcheck_hints import HINTS_MARK, HINTS_MODULE

from .conftest import run_mnistkit

ASSIGNMENTS = catalog.assignments()
SOLUTION_BLOCK = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)
MARK_SCHEME = re.compile(r"=== BEGIN MARK SCHEME ===(.*?)=== END MARK SCHEME ===", re.S)
TRIVIAL = {"pass", "return", "else:", "try:", "continue", "break", ")", "]", "}"}


def source_notebooks():
    return sorted(SOURCE.glob("*/*.ipynb"))


def released_text(source_path):
    return (RELEASE / source_path.parent.name / source_path.name).read_text()


def test_release_is_in_sync_with_source():
    """Does `mnistkit build --check` find release/ up to date (as CI requires)?"""
    proc = run_mnistkit("build", "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_assignment_is_released():
    """Is there a student notebook for every instructor notebook, and nothing else?"""
    assert ASSIGNMENTS, "no assignments in source/"
    released = sorted(p.relative_to(RELEASE) for p in RELEASE.glob("*/*.ipynb"))
    assert released == [p.relative_to(SOURCE) for p in source_notebooks()]


@pytest.mark.parametrize("path", source_notebooks(), ids=lambda p: p.parent.name)
def test_no_solution_or_mark_scheme_leaks(path):
    """Does no line of a solution, model answer or rubric reach the student notebook?"""
    source = nbformat.read(path, as_version=4)
    release = released_text(path)
    secret_lines, public_lines = set(), set()
    for cell in source.cells:
        hidden = SOLUTION_BLOCK.findall(cell.source) + MARK_SCHEME.findall(cell.source)
        for block in hidden:
            for line in block.splitlines():
                line = line.strip()
                if len(line) >= 8 and line not in TRIVIAL and not line.startswith("#"):
                    secret_lines.add(line)
        public = MARK_SCHEME.sub("", SOLUTION_BLOCK.sub("", cell.source))
        public_lines |= {line.strip() for line in public.splitlines()}
    # A line the instructor also shows openly (e.g. a call in a demo cell) is not a secret.
    secret_lines -= public_lines
    text_of_release = "\n".join(
        line.strip() for cell in json.loads(release)["cells"]
        for line in "".join(cell["source"]).splitlines())
    leaked = sorted(line for line in secret_lines if line in text_of_release.splitlines())
    assert leaked == []
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "MARK SCHEME"):
        assert marker not in release


@pytest.mark.parametrize("path", source_notebooks(), ids=lambda p: p.parent.name)
def test_release_mentions_no_hidden_material(path):
    """Does the student notebook never import or name the reference or the hidden tests?"""
    release = released_text(path)
    assert not re.search(r"\b(import|from)\s+(solutions|autograder|mnistkit)\b", release)
    assert "autograder/" not in release and "solutions/" not in release


@pytest.mark.parametrize("path", source_notebooks(), ids=lambda p: p.parent.name)
def test_release_opens_with_words_for_students(path):
    """Does each student notebook open by telling the student how to work through it (answer
    cells, self-checks that are not the grade, written answers graded by hand, Validate)?"""
    first = nbformat.read(RELEASE / path.parent.name / path.name, as_version=4).cells[0]
    assert first.cell_type == "markdown" and first.get("id") == BANNER_MARK
    for words in ("your copy", "answer cell", "self-check", "not your grade",
                  "Write your answer here", "a person grades", "Validate"):
        assert words in first.source, words


@pytest.mark.parametrize("path", source_notebooks(), ids=lambda p: p.parent.name)
def test_the_first_screen_is_light(path):
    """Issue 20: does the notebook open with one short welcome, its title and a few locked lines
    for the error hints, and only then the setup, with no grading rules in the way (they are
    in the last section, "How this notebook is graded", and next to the exercises they concern)?"""
    nb = nbformat.read(RELEASE / path.parent.name / path.name, as_version=4)
    welcome, title, hints, setup = nb.cells[:4]
    assert welcome.get("id") == BANNER_MARK and len(welcome.source.splitlines()) <= 12
    assert "last section" in welcome.source
    assert title.source.startswith("# ") and "How this notebook is graded" not in title.source
    assert hints.get("id") == HINTS_MARK and len(hints.source.splitlines()) <= 6
    assert setup.cell_type == "code" and setup.metadata["nbgrader"]["grade_id"].startswith("setup")
    first_exercise = next(i for i, c in enumerate(nb.cells)
                          if c.metadata.get("nbgrader", {}).get("solution"))
    before = "\n".join(c.source for c in nb.cells[:first_exercise])
    assert "What the grader reads in your code" not in before.replace(SHORT_RULES, "")
    assert (RELEASE / path.parent.name / HINTS_MODULE).is_file()


@pytest.mark.parametrize("path", source_notebooks(), ids=lambda p: p.parent.name)
def test_grading_rules_are_stated_where_they_apply(path):
    """The trust rule (the notebook states every rule the grader applies): does the last section
    say how the notebook is graded, followed by the code-reading rules generated from the
    grader's own text (never a hand copy in the source), and does each exercise whose code the
    grader reads (``reads_code`` on its graded cell, which the grading plugin reads too) get them in
    short right before its answer cell?"""
    from mnistkit.grading import source_checks
    source = nbformat.read(path, as_version=4)
    assert not any("What the grader reads in your code" in c.source for c in source.cells)
    exercises = reads_code_exercises(source)
    assert exercises, path.name
    nb = nbformat.read(RELEASE / path.parent.name / path.name, as_version=4)
    full = [i for i, c in enumerate(nb.cells) if c.get("id") == RULES_MARK]
    assert len(full) == 1 and nb.cells[full[0]].source == source_checks.RULES_MARKDOWN.strip()
    assert nb.cells[full[0] - 1].source.startswith("## How this notebook is graded")
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    for exercise in exercises:
        short = nb.cells[ids.index(f"{exercise}-answer") - 1]
        assert short.metadata.get(RULES_MARK) and short.source == SHORT_RULES, exercise
    assert sum(bool(c.metadata.get(RULES_MARK)) for c in nb.cells) == len(exercises) + 1


@pytest.mark.parametrize("path", source_notebooks(), ids=lambda p: p.parent.name)
def test_students_are_not_told_their_notebook_is_generated(path):
    """Does no cell a student sees say "generated" or "do not edit", or name source/?"""
    nb = nbformat.read(RELEASE / path.parent.name / path.name, as_version=4)
    for cell in nb.cells:
        text = cell.source.lower()
        assert "generated file" not in text and "do not edit" not in text, cell.source[:80]
        assert "source/" not in text and "mnistkit build" not in text, cell.source[:80]


@pytest.mark.parametrize("path", source_notebooks(), ids=lambda p: p.parent.name)
def test_banner_metadata_tells_instructors_where_it_comes_from(path):
    """Does the banner cell's metadata say which source notebook it is built from and how to
    rebuild it (where an instructor looks), so nobody edits release/ by hand?"""
    first = nbformat.read(RELEASE / path.parent.name / path.name, as_version=4).cells[0]
    note = first.metadata["mnistkit"]
    assert note["generated_from"] == f"source/{path.parent.name}/{path.name}"
    assert "mnistkit build" in note["rebuild"] and "nbgrader generate_assignment" in note["rebuild"]
    assert "edit the source notebook" in note["note"]


def test_feedback_banner_speaks_about_feedback():
    """In feedback, does the banner say how to read the grades, and is the error-hint cell
    (only useful while working) left out?"""
    nb = nbformat.read(RELEASE / "a1_pixel_similarity" / "pixel_similarity.ipynb", as_version=4)
    assert any(c.get("id") == HINTS_MARK for c in nb.cells)
    nb, _ = FeedbackBanner().preprocess(nb, {})
    assert nb.cells[0].source == FEEDBACK_TEXT and "score" in FEEDBACK_TEXT
    assert not any(c.get("id") == HINTS_MARK for c in nb.cells)


@pytest.mark.parametrize("path", source_notebooks(), ids=lambda p: p.parent.name)
def test_release_has_no_outputs(path):
    """Are outputs cleared, so no computed answer ships in a student notebook?"""
    nb = nbformat.read(RELEASE / path.parent.name / path.name, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", source_notebooks(), ids=lambda p: p.parent.name)
def test_demonstrations_are_locked_and_left_out_when_the_reference_is_graded(path):
    """Grading skips the chapter's demonstrations (``left_out.cells_left_out``) only while no cell
    still run reads what they bind: with the reference's answers, every one of them must be
    skipped, or the notebook's grading time is not what the benchmark reports. Locked, so what
    is skipped is the release's code."""
    code = [c for c in catalog.read_cells(path) if c["cell_type"] == "code"]
    demos = {i: c["metadata"]["nbgrader"] for i, c in enumerate(code)
             if str(c["metadata"].get("nbgrader", {}).get("grade_id", "")).startswith(DEMO_PREFIX)}
    assert [m["grade_id"] for m in demos.values()
            if not (m.get("locked") and not m.get("grade") and not m.get("solution"))] == []
    left_out = cells_left_out(path)
    assert {demos[i]["grade_id"] for i in demos.keys() - left_out} == set()
