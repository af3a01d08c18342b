"""Set up a course: does a new instructor's fresh clone become an nbgrader course, and does the
README's nbgrader sequence then work exactly as written (issue 12)?

The clone is a copy of what git would clone of this working tree (tests/fixtures/checkout.py):
no gradebook, no .mnistkit/, release/ as committed. The README's block is read from README.md
and run line by line, as the instructor would type it; the only change is the exchange folder
(a scratch one instead of /srv/nbgrader/exchange). Between `release_assignment` and `collect` a
student (the same Unix account here; tests/test_exchange_users.py has separate ones) fetches,
answers and submits with the Jupyter configuration `course init` wrote for students.
"""
from __future__ import annotations

import csv
import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from mnistkit import catalog, examples
from mnistkit.build import nbgrader_env

from .fixtures.checkout import KIT, fresh_clone

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None,
                                reason="bubblewrap is not installed (grading needs it)")


def readme_nbgrader_block() -> list[str]:
    """The commands of the README's nbgrader block, comments dropped."""
    text = (KIT / "README.md").read_text()
    section = text.split("## Teaching a class with nbgrader", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [line.split("  #", 1)[0].strip() for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def run(args: list[str], cwd: Path, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=cwd, env={**nbgrader_env(), **env}, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0 or not check, f"{shlex.join(args)} exited {proc.returncode}:\n" \
                                 f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def course(tmp_path_factory, mnist_data_dir):
    root = tmp_path_factory.mktemp("fresh-course")
    return fresh_clone(root / "course"), root / "exchange", root / "student"


def test_the_readme_block_is_the_whole_sequence():
    """Does the README's block set the course up first and take a1 from release to export?"""
    verbs = [shlex.split(line)[:3] for line in readme_nbgrader_block()]
    assert verbs[0] == ["mnistkit", "course", "init"]
    assert [v[1] for v in verbs if v[0] == "nbgrader"] == [
        "release_assignment", "collect", "autograde", "generate_feedback", "release_feedback",
        "export"]


def test_readme_nbgrader_sequence_works_on_a_fresh_clone(course):
    """Run the README's block on a fresh clone, a student submitting in between: does every
    command succeed, and do nbgrader's export, the gradebook and grade-class agree on the
    student's score (full marks for the reference answers)?"""
    clone, exchange, student_home = course
    assert not (clone / "gradebook.db").exists() and not (clone / ".mnistkit").exists()
    student_config = clone / ".mnistkit" / "student-jupyter"
    assignment = "a1_pixel_similarity"
    for line in readme_nbgrader_block():
        args = shlex.split(line)
        if args[:3] == ["mnistkit", "course", "init"]:
            args[args.index("--exchange") + 1] = str(exchange)
        run(args, clone)
        if args[:2] == ["nbgrader", "release_assignment"]:
            student_home.mkdir()
            # the student's side: their own folder, the configuration `course init` wrote
            run(["nbgrader", "fetch_assignment", assignment], student_home,
                JUPYTER_CONFIG_DIR=str(student_config))
            examples.fill_folder(student_home / assignment, examples.reference_answers(assignment))
            run(["nbgrader", "submit", assignment], student_home,
                JUPYTER_CONFIG_DIR=str(student_config))

    # the exchange course init made, the settings nbgrader read from .mnistkit/course.json
    settings = json.loads((clone / ".mnistkit" / "course.json").read_text())
    assert settings == {"course_id": "mnist-basics", "exchange": str(exchange)}
    assert (exchange / "mnist-basics" / "outbound" / assignment).is_dir()
    assert exchange.stat().st_mode & 0o777 == 0o777

    # the student's feedback comes back through the exchange
    run(["nbgrader", "fetch_feedback", assignment], student_home,
        JUPYTER_CONFIG_DIR=str(student_config))
    feedback = list((student_home / assignment / "feedback").rglob("*.html"))
    assert len(feedback) == 1

    # the same score three ways: nbgrader's export, grade-class's scores.csv, full marks
    import getpass
    me = getpass.getuser()
    with open(clone / "grades.csv", newline="") as f:
        exported = {row["assignment"]: row for row in csv.DictReader(f) if row["student_id"] == me}
    row = exported[assignment]
    with open(clone / "graded" / "a1" / "scores.csv", newline="") as f:
        graded = {r["student"]: r for r in csv.DictReader(f)}
    full_marks = sum(ex.points for ex in catalog.load(clone / "source")
                     if ex.assignment == assignment and ex.kind == "auto")
    assert full_marks > 0
    assert float(graded[me]["total"]) == pytest.approx(full_marks)
    assert float(row["raw_score"]) == pytest.approx(full_marks)   # written answers: not graded yet
    # the other assignments are in the gradebook too (course init added all four)
    assert set(exported) == {p.name for p in (clone / "source").iterdir() if p.is_dir()}


def test_course_init_again_keeps_the_settings_and_refuses_a_stale_release(course, tmp_path):
    """Run twice, is the second run harmless (settings kept)? With a release that no longer
    matches source/, does it refuse with a line that says to run `mnistkit build`?"""
    clone, exchange, _ = course
    if not (clone / ".mnistkit" / "course.json").exists():
        run(["mnistkit", "course", "init", "--exchange", str(exchange)], clone)
    again = run(["mnistkit", "course", "init"], clone)
    assert str(exchange) in again.stdout
    stale = fresh_clone(tmp_path / "stale")
    released = next((stale / "release" / "a2_gradient_descent").glob("*.ipynb"))
    nb = json.loads(released.read_text())
    nb["cells"][0]["source"] = "changed by hand"
    released.write_text(json.dumps(nb))
    proc = run(["mnistkit", "course", "init", "--exchange", str(tmp_path / "ex")], stale,
               check=False)
    assert proc.returncode == 1
    assert "mnistkit build" in proc.stderr and "a2_gradient_descent" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_course_init_says_what_to_do_when_the_exchange_cannot_be_made(tmp_path):
    """An exchange where no folder can be made (under a file): one line naming the folder and
    the way out (an administrator, or --exchange), exit 1, nothing written?"""
    clone = fresh_clone(tmp_path / "course")
    (tmp_path / "a-file").write_text("")
    proc = run(["mnistkit", "course", "init", "--exchange", str(tmp_path / "a-file" / "exchange")],
               clone, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "--exchange" in proc.stderr and str(tmp_path / "a-file") in proc.stderr
    assert not (clone / "gradebook.db").exists() and not (clone / ".mnistkit").exists()
