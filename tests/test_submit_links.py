"""Handing in links instead of files (issue 18, item 3), and submission folders of any shape
(item 4).

A submitted notebook that is a symlink (to the instructor's source/ notebook, to a classmate's),
a hard link or a fifo is graded as missing, with the reason, and nothing it points to is read:
in `mnistkit grade`, `mnistkit grade-class` (and the files Dask ships) and nbgrader's autograde
and collect. The honest twin of every attack is a plain notebook: the reference graded to full
marks beside it, here and in tests/test_grade.py, tests/test_nbgrader_autograde.py. Finding and
preparing the notebooks of a submission never raises, whatever the folder holds (a property
test over generated layouts).
"""
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import nbformat
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from mnistkit import cli
from mnistkit.build import nbgrader_env
from mnistkit.grading import batch, run, submission

from .fixtures.toy_course import toy_helpers as toy

SOURCE = toy.TOY / "source" / toy.ASSIGNMENT / f"{toy.NOTEBOOK}.ipynb"   # has the solutions
SECRET = "SECRET-OUTSIDE-THE-SUBMISSION"   # in every file the layouts put outside the submission
NAME = f"{toy.NOTEBOOK}.ipynb"


def notebook_text(*sources: str) -> str:
    return nbformat.writes(nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(s) for s in sources]))


def prepare(folder: Path, expected=(toy.NOTEBOOK,), follow_root=True):
    scratch = Path(tempfile.mkdtemp(prefix="prepared-", dir=folder.parent))
    prepared, notes = submission.prepare(folder, list(expected), [SOURCE.parent], scratch,
                                         follow_root=follow_root)
    return {item.name: item for item in prepared}, notes


# --- every kind of link, and the plain file beside it ----------------------------------------

def _symlink_to_source(sub, outside):
    os.symlink(SOURCE, sub / NAME)


def _symlink_to_classmate(sub, outside):
    os.symlink(outside / "alice" / NAME, sub / NAME)


def _relative_symlink(sub, outside):
    os.symlink(os.path.relpath(outside / "alice" / NAME, sub), sub / NAME)


def _dangling_symlink(sub, outside):
    os.symlink(outside / "nowhere.ipynb", sub / NAME)


def _hard_link_to_classmate(sub, outside):
    os.link(outside / "alice" / NAME, sub / NAME)


def _fifo(sub, outside):
    os.mkfifo(sub / NAME)


def _in_a_linked_folder(sub, outside):
    os.symlink(outside / "alice", sub / "work")   # the only notebook is behind the link


def _renamed_symlink(sub, outside):
    os.symlink(outside / "alice" / NAME, sub / "homework.ipynb")   # the stand-in is a link


ATTACKS = {
    _symlink_to_source: "is a link, not a file",
    _symlink_to_classmate: "is a link, not a file",
    _relative_symlink: "is a link, not a file",
    _dangling_symlink: "is a link, not a file",
    _hard_link_to_classmate: "is a hard link",
    _fifo: "is not a regular file (a fifo)",
    _in_a_linked_folder: "was not found",
    _renamed_symlink: "homework.ipynb is a link, not a file",
}


@pytest.fixture
def layout(tmp_path):
    """A classmate's notebook outside the submission, and an empty submission folder."""
    outside = tmp_path / "class"
    (outside / "alice").mkdir(parents=True)
    (outside / "alice" / NAME).write_text(notebook_text(f"# {SECRET}"))
    sub = tmp_path / "mallory" / toy.ASSIGNMENT
    sub.mkdir(parents=True)
    return sub, outside


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda f: f.__name__.strip("_"))
def test_a_notebook_that_is_not_a_file_is_missing_with_the_reason(layout, attack):
    """Is a notebook handed in as a link (to source/, to a classmate's, dangling, relative), a
    hard link, a fifo or inside a linked folder graded as missing, with a reason the student can
    act on, without reading (or blocking on) what it points to?"""
    sub, outside = layout
    attack(sub, outside)
    done = {}
    worker = threading.Thread(target=lambda: done.update(prepared=prepare(sub)), daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "preparing the submission blocked (a fifo opened?)"
    items, notes = done["prepared"]
    item = items[toy.NOTEBOOK]
    assert item.path is None and ATTACKS[attack] in item.reason
    if "link" in item.reason or "fifo" in item.reason:
        assert "submit" in item.reason   # what to do about it
    for path in (sub.parent).rglob("prepared-*/*"):
        assert SECRET not in path.read_text() and "BEGIN SOLUTION" not in path.read_text()


def test_a_plain_copy_of_the_same_notebook_is_read(layout):
    """The honest twin: the classmate's notebook copied (one link, a file of its own) is read,
    under its own name or another."""
    sub, outside = layout
    shutil.copy(outside / "alice" / NAME, sub / "homework.ipynb")
    items, notes = prepare(sub)
    assert items[toy.NOTEBOOK].path is not None and not items[toy.NOTEBOOK].reason
    assert notes == [f"graded homework.ipynb as {NAME}"]
    assert SECRET in items[toy.NOTEBOOK].path.read_text()


def test_a_plain_file_beats_a_link_of_the_same_name(layout):
    """A link under the expected name beside the real notebook in a subfolder: the file is
    graded, the link ignored and noted."""
    sub, outside = layout
    os.symlink(SOURCE, sub / NAME)
    (sub / "sub").mkdir()
    (sub / "sub" / NAME).write_text(notebook_text("x = 1"))
    items, notes = prepare(sub)
    assert items[toy.NOTEBOOK].submitted == sub / "sub" / NAME
    assert any(NAME in n and "a link, not a file" in n for n in notes)


def test_a_linked_submission_folder_is_refused_in_a_class(layout):
    """grade-class's <student>/<assignment> is the student's: a link there (to a classmate's
    folder) is refused like a linked notebook; `mnistkit grade`'s folder is the caller's."""
    sub, outside = layout
    shutil.rmtree(sub)
    os.symlink(outside / "alice", sub)
    items, _ = prepare(sub, follow_root=False)
    assert items[toy.NOTEBOOK].path is None
    assert items[toy.NOTEBOOK].reason == (f"{toy.ASSIGNMENT} is a link, not a folder; submit "
                                          "the folder itself")
    items, _ = prepare(sub, follow_root=True)
    assert items[toy.NOTEBOOK].path is not None


def test_the_fingerprint_never_reads_through_a_link(layout):
    """Does grade-class's resume fingerprint ignore what a link points to (never read) and still
    see a change of the student's own files?"""
    sub, outside = layout
    os.symlink(outside / "alice" / NAME, sub / NAME)
    (sub / "notes.txt").write_text("mine")
    first = batch.submission_fingerprint(sub, "g")
    (outside / "alice" / NAME).write_text(notebook_text("changed"))
    assert batch.submission_fingerprint(sub, "g") == first
    (sub / "notes.txt").write_text("mine, edited")
    assert batch.submission_fingerprint(sub, "g") != first


def test_dask_ships_a_refused_notebook_as_what_it_is(layout, tmp_path):
    """Does a grading on a Dask worker see the link, hard link or fifo a student handed in (and
    refuse it with the same reason), never the file it points to?"""
    from mnistkit.grading import dask_cluster
    sub, outside = layout
    os.symlink(outside / "alice" / NAME, sub / NAME)
    os.link(outside / "alice" / NAME, sub / "extra.ipynb")
    os.mkfifo(sub / "pipe.ipynb")
    shipped = dask_cluster.Shipped.pack(sub)
    assert shipped.files == {} and shipped.refused == {
        NAME: "link", "extra.ipynb": "hard link", "pipe.ipynb": "fifo"}
    back = shipped.unpack(tmp_path / "worker")
    expected = [toy.NOTEBOOK, "extra", "pipe"]
    here, _ = prepare(sub, expected)
    there, _ = prepare(back, expected)
    assert {k: v.reason for k, v in there.items()} == {k: v.reason for k, v in here.items()}
    assert all(v.path is None for v in there.values())


def test_nbgrader_collect_keeps_links_as_links(tmp_path):
    """Does collect copy an inbound link as a link (so grading refuses it) instead of the
    instructor's file it points to, and leave a fifo out?"""
    from nbgrader.coursedir import CourseDirectory

    from mnistkit.grading.nbgrader_submitted import CollectKeepingLinks
    inbound = tmp_path / "inbound" / "mallory+a+1"
    inbound.mkdir(parents=True)
    os.symlink(SOURCE, inbound / NAME)
    os.mkfifo(inbound / "pipe")
    (inbound / "notes.txt").write_text("mine")
    collect = CollectKeepingLinks(coursedir=CourseDirectory())
    collect.do_copy(str(inbound), str(tmp_path / "submitted"))
    copied = tmp_path / "submitted"
    assert (copied / NAME).is_symlink() and os.readlink(copied / NAME) == str(SOURCE)
    assert not (copied / "pipe").exists() and (copied / "notes.txt").read_text() == "mine"


# --- any layout: locating and preparing never raise ----------------------------------------

_NAMES = st.sampled_from([toy.NOTEBOOK, toy.NOTEBOOK.upper(), f"{toy.NOTEBOOK} (1)",
                          f"{toy.NOTEBOOK}-Copy1", "homework", "other", "a", ".hidden",
                          ".ipynb_checkpoints", "__MACOSX", "dir.ipynb"])
_ODD = st.binary(min_size=1, max_size=12).filter(lambda b: b"/" not in b and b"\0" not in b
                                                  and b not in (b".", b".."))
_NAME = st.one_of(_NAMES, _ODD.map(os.fsdecode), st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="/\0"),
    min_size=1, max_size=10).filter(lambda s: s not in (".", "..")))
_SUFFIX = st.sampled_from([".ipynb", ".IPYNB", ".Ipynb", ".txt", "", ".ipynb.bak"])
_CONTENT = st.sampled_from([
    notebook_text("x = 1"), "", "{", "[1, 2]", '{"nbformat": 9, "cells": []}',
    '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code", '
    '"source": 5, "metadata": {"nbgrader": {"grade_id": 3}}}]}',
    "[" * 5000, '{"nbformat": 4, "cells": [], "n": ' + "9" * 5000 + "}",
    "\ufeff" + notebook_text("café"),
]).map(str.encode) | st.sampled_from([b"\xff\xfe{\x00", b"\xff\xfea", b"\x80\x81\xfe"]) \
    | st.binary(max_size=200)
_KIND = st.sampled_from(["file", "file", "file", "symlink-file", "symlink-dir", "dangling",
                         "hard link", "fifo", "dir", "self-loop"])
_ENTRY = st.tuples(st.lists(_NAME, min_size=0, max_size=3), _NAME, _SUFFIX, _KIND, _CONTENT)


def _build(root: Path, outside: Path, entries) -> None:
    for folders, stem, suffix, kind, content in entries:
        parent = root.joinpath(*folders)
        try:
            parent.mkdir(parents=True, exist_ok=True)
            path = parent / (stem + suffix)
            if os.path.lexists(path):
                continue
            if kind == "file":
                path.write_bytes(content)
            elif kind == "symlink-file":
                os.symlink(outside / NAME, path)
            elif kind == "symlink-dir":
                os.symlink(outside, path)
            elif kind == "dangling":
                os.symlink(outside / "missing", path)
            elif kind == "hard link":
                os.link(outside / NAME, path)
            elif kind == "fifo":
                os.mkfifo(path)
            elif kind == "self-loop":
                os.symlink(path.name, path)
            else:
                path.mkdir()
        except OSError:
            continue   # a name this layout cannot hold (a file where a folder is wanted)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=st.lists(_ENTRY, max_size=8),
       expected=st.sampled_from([[toy.NOTEBOOK], [toy.NOTEBOOK, "other"], ["a", "homework"]]),
       follow_root=st.booleans())
def test_locate_and_prepare_never_raise_and_read_only_files_of_the_submission(
        entries, expected, follow_root):
    """Over generated submission folders (names in any case and any bytes, nesting, several
    notebooks or none, non-notebooks, symlinks to files and folders, dangling and looping links,
    hard links, fifos, empty folders, broken contents): do locate and prepare always return, with
    one answer per expected notebook, and is every notebook prepared a file of the submission
    (nothing outside it is ever read)?"""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        outside = tmp / "outside"
        outside.mkdir()
        (outside / NAME).write_text(notebook_text(f"# {SECRET}"))
        root = tmp / "submission"
        root.mkdir()
        _build(root, outside, entries)
        found, notes = submission.locate(root, expected)
        assert set(found) == set(expected)
        assert all(isinstance(n, str) for n in notes)
        scratch = tmp / "scratch"
        prepared, notes = submission.prepare(root, expected, [SOURCE.parent], scratch,
                                             follow_root=follow_root)
        assert [item.name for item in prepared] == expected
        for item in prepared:
            assert (item.path is None) != (item.reason == "")
            # text that can be written anywhere (no surrogates from names that are not UTF-8)
            "\n".join([item.reason, *item.notes, *notes]).encode("utf-8")
            if item.path is not None:
                assert SECRET not in item.path.read_text(encoding="utf-8")
                assert os.lstat(item.submitted).st_nlink == 1
                assert not os.path.islink(item.submitted)
                assert Path(os.path.realpath(item.submitted)).is_relative_to(
                    os.path.realpath(root))


# --- through the commands ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return toy.make_course(tmp_path_factory.mktemp("links_course"))


@pytest.mark.slow
def test_grade_gives_a_link_to_source_nothing(course, tmp_path, capsys, monkeypatch):
    """`mnistkit grade` of a notebook that is a symlink to the instructor's source notebook:
    0 with the reason, exit 0, and no solution in results.json (it was 5/5 before). The honest
    twin, the same notebook copied, is test_grade.py's test_reference_solution_gets_full_marks."""
    monkeypatch.setenv(run.COURSE_ENV, str(course))
    if not toy.sandbox_ready():
        monkeypatch.setenv(run.IN_PROCESS_ENV, "1")
    folder = tmp_path / "mallory"
    folder.mkdir()
    os.symlink(course / "source" / toy.ASSIGNMENT / NAME, folder / NAME)
    results = tmp_path / "results.json"
    code = cli.main(["grade", str(folder), "--assignment", toy.ASSIGNMENT, "--results",
                     str(results)])
    out = capsys.readouterr()
    assert code == 0, out.err
    data = json.loads(results.read_text())
    assert data["score"] == 0
    assert all(f"{NAME} is a link, not a file; submit the notebook itself" in t["output"]
               for t in data["tests"])
    assert "BEGIN SOLUTION" not in results.read_text() and "return 2 * x" not in out.out


@pytest.mark.slow
def test_grade_class_refuses_links_and_goes_on_past_a_student_it_cannot_grade(
        course, tmp_path, monkeypatch, capsys):
    """A class: alice hands in the reference (full marks), mallory a symlink to alice's
    notebook, bob a symlink in place of his assignment folder, carol a notebook whose grading
    raises (a kit bug). Do mallory and bob get 0 with the reason, is carol "not graded" (listed
    at the end, a status in scores.csv, no total, not a zero) while the others are graded, and
    does the command exit 1? (Before: mallory and bob got alice's 5/5.)"""
    submitted = tmp_path / "class" / "submitted"
    alice = toy.submit(submitted / "alice" / toy.ASSIGNMENT, toy.source_notebook(course))
    (submitted / "mallory" / toy.ASSIGNMENT).mkdir(parents=True)
    os.symlink(alice / NAME, submitted / "mallory" / toy.ASSIGNMENT / NAME)
    (submitted / "bob").mkdir()
    os.symlink(alice, submitted / "bob" / toy.ASSIGNMENT)
    toy.submit(submitted / "carol" / toy.ASSIGNMENT, toy.release_notebook(course))
    monkeypatch.setenv(run.COURSE_ENV, str(course))
    if not toy.sandbox_ready():
        monkeypatch.setenv(run.IN_PROCESS_ENV, "1")
    real = batch.grade_one

    def grade_one(folder, assignment, course_):
        if "carol" in folder:
            raise IndexError("list index out of range")   # as locate raised on homework.ipynb
        return real(folder, assignment, course_)
    monkeypatch.setattr(batch, "grade_one", grade_one)
    out = tmp_path / "out"
    code = cli.main(["grade-class", str(submitted), "--assignment", toy.ASSIGNMENT, "--out",
                     str(out), "--jobs", "1", "--no-gradebook"])
    printed = capsys.readouterr().out
    assert code == 1
    with open(out / batch.SCORES_FILE, newline="") as fh:
        rows = {row[0]: row[1:] for row in list(csv.reader(fh))[1:]}
    scores = {s: [float(v) for v in row[:3]] for s, row in rows.items() if s != "carol"}
    assert scores == {"alice": [2, 3, 5], "mallory": [0, 0, 0], "bob": [0, 0, 0]}
    assert {s: row[3] for s, row in rows.items() if s != "carol"} == dict.fromkeys(scores,
                                                                                  "graded")
    assert rows["carol"][:3] == ["", "", ""]
    assert rows["carol"][3].startswith("not graded: the grader failed (IndexError: list index")
    mallory = json.loads((out / "mallory" / batch.RESULTS_FILE).read_text())
    assert f"{NAME} is a link, not a file" in mallory["tests"][0]["output"]
    bob = json.loads((out / "bob" / batch.RESULTS_FILE).read_text())
    assert f"{toy.ASSIGNMENT} is a link, not a folder" in bob["tests"][0]["output"]
    assert not (out / "carol" / batch.RESULTS_FILE).exists()
    record = json.loads((out / "carol" / batch.FINGERPRINT_FILE).read_text())
    assert record["status"] == "not graded" and "IndexError" in record["details"]
    lines = printed.strip().splitlines()
    assert lines[-1].startswith(f"{toy.ASSIGNMENT}: graded 3, kept 0 unchanged, 0 without a "
                                "submission, 1 NOT GRADED")
    assert lines[-2].startswith("  carol: not graded: the grader failed (IndexError")


@pytest.fixture(scope="module")
def autograded(course, tmp_path_factory):
    """`nbgrader autograde` and `generate_feedback` of mallory, whose notebook is a symlink to
    the instructor's source notebook and whose notes.txt is one too, and of bob, whose whole
    assignment folder is a link to a folder elsewhere (a notebook and a notes.txt)."""
    folder = course / "submitted" / "mallory" / toy.ASSIGNMENT
    folder.mkdir(parents=True)
    source = course / "source" / toy.ASSIGNMENT / NAME
    os.symlink(source, folder / NAME)
    os.symlink(source, folder / "notes.txt")
    elsewhere = toy.submit(tmp_path_factory.mktemp("elsewhere"), toy.source_notebook(course))
    (elsewhere / "notes.txt").write_text(SECRET)
    (course / "submitted" / "bob").mkdir()
    os.symlink(elsewhere, course / "submitted" / "bob" / toy.ASSIGNMENT)
    env = nbgrader_env()
    if not toy.sandbox_ready():
        env[run.IN_PROCESS_ENV] = "1"
    logs = ""
    for step in ("autograde", "generate_feedback"):
        proc = subprocess.run([sys.executable, "-m", "nbgrader", step, toy.ASSIGNMENT],
                              cwd=course, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        logs += proc.stdout + proc.stderr
    return course, logs


@pytest.mark.slow
def test_nbgrader_autograde_never_reads_a_linked_notebook(autograded):
    """Through `nbgrader autograde`: is a notebook that is a symlink to source/ (or in a linked
    assignment folder) graded 0 in the gradebook with the reason, and does nothing it points to
    (the instructor's notebook, a linked notes.txt, the linked folder's files) reach autograded/
    or the feedback (before: full marks, and the BEGIN SOLUTION blocks in the feedback)? The
    honest twin: tests/test_nbgrader_autograde.py's reference, full marks through the same
    exporter."""
    from .test_nbgrader_autograde import gradebook_scores
    course, logs = autograded
    reasons = {"mallory": f"{NAME} is a link, not a file; submit the notebook itself",
               "bob": f"{toy.ASSIGNMENT} is a link, not a folder; submit the folder itself"}
    for student, reason in reasons.items():
        assert gradebook_scores(course, student) == {"double_it": 0.0, "mean_image": 0.0,
                                                     "why_fast": None}
        graded = course / "autograded" / student / toy.ASSIGNMENT
        feedback = course / "feedback" / student / toy.ASSIGNMENT
        assert not (graded / "notes.txt").exists() and not (feedback / "notes.txt").exists()
        for folder in (graded, feedback):
            for path in folder.iterdir():
                text = path.read_text()
                assert "BEGIN SOLUTION" not in text and "return 2 * x" not in text, path
                assert SECRET not in text
        html = (feedback / f"{toy.NOTEBOOK}.html").read_text()
        assert reason in html and "Autograder: 0 / 2 points" in html
        # nbgrader copied notes.txt through the link; the kit took the copy away again
        assert f"removed {graded / 'notes.txt'} from autograded/" in logs
