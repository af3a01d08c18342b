"""Grade a whole class: every student's submission of one assignment, resumable.

``mnistkit grade-class SUBMITTED --assignment NAME --out DIR`` walks nbgrader's layout
(``SUBMITTED/<student>/<assignment>/``) and grades each student with ``run.grade_submission``
(one sandbox and one grader process per notebook, so students cannot affect each other). Per
student it writes ``DIR/<student>/results.json`` (Gradescope's format) and ``summary.txt``,
then ``DIR/<student>/graded.json`` with a fingerprint of what was graded: the submission's
files, the hidden tests, the reference solutions and the grading seed. Every file is written
to a temporary name and renamed, so an interrupted run (Ctrl-C, a crash, a reboot) leaves each
student either fully graded or not at all; running the same command again keeps every student
whose fingerprint still matches and grades the rest. ``DIR/scores.csv`` (one row per student,
one column per exercise) is rewritten at the end of every run from all results present.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mnistkit import catalog
from mnistkit.grading import run
from mnistkit.grading.results import clean_line, write_atomically
from mnistkit.paths import SOLUTIONS

FINGERPRINT_FILE = "graded.json"
RESULTS_FILE = "results.json"
SUMMARY_FILE = "summary.txt"
SCORES_FILE = "scores.csv"


def _hash_files(digest, root: Path) -> None:
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue   # .ipynb_checkpoints and the like are not graded
        digest.update(str(rel).encode() + b"\0")
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")


def grading_fingerprint(assignment: str, course: run.Course) -> str:
    """What every student of this run is graded with: hidden tests, references, seed."""
    digest = hashlib.sha256(assignment.encode())
    _hash_files(digest, course.autograder)
    reference = SOLUTIONS / f"{assignment}.py"
    if reference.is_file():
        digest.update(reference.read_bytes())
    digest.update(os.environ.get("MNISTKIT_GRADING_SEED", "").encode())
    return digest.hexdigest()


def submission_fingerprint(folder: Path, grading: str) -> str:
    digest = hashlib.sha256(grading.encode())
    _hash_files(digest, folder)
    return digest.hexdigest()


@dataclass
class ClassRun:
    """What one ``grade_class`` call did."""
    graded: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)       # unchanged since their last grading
    missing: list[str] = field(default_factory=list)    # a student folder without this assignment
    seconds: float = 0.0

    def line(self) -> str:
        return (f"graded {len(self.graded)}, kept {len(self.kept)} unchanged, "
                f"{len(self.missing)} without a submission, in {self.seconds:.0f} s")


def students(submitted: Path, assignment: str) -> list[tuple[str, Path | None]]:
    """(student id, their submission folder or None), sorted by id; hidden folders skipped."""
    found = []
    for entry in sorted(Path(submitted).iterdir()):
        if entry.is_dir() and not entry.name.startswith("."):
            folder = entry / assignment
            found.append((entry.name, folder if folder.is_dir() else None))
    return found


def is_current(out: Path, fingerprint: str) -> bool:
    try:
        recorded = json.loads((out / FINGERPRINT_FILE).read_text())
    except (OSError, ValueError):
        return False
    return recorded.get("fingerprint") == fingerprint and (out / RESULTS_FILE).is_file()


def grade_class(submitted: Path, assignment: str, out: Path, *, course: run.Course | None = None,
                say: Callable[[str], None] = print) -> ClassRun:
    """Grade every student who is not graded yet (or whose submission changed); see the module
    docstring. Raises ``run.GradingUnavailable`` when grading cannot run at all (the pre-flight
    refuses before anyone is graded), or when the grading environment fails mid-batch: then the
    batch stops there, and that student gets nothing recorded rather than zeros."""
    course = course or run.Course.default()
    submitted, out = Path(submitted), Path(out)
    if not submitted.is_dir():
        raise run.GradingUnavailable(f"no such folder: {submitted}")
    run.check_can_grade(assignment, course)   # the pre-flight: before grading anyone
    grading = grading_fingerprint(assignment, course)
    everyone = students(submitted, assignment)
    result = ClassRun()
    start = time.perf_counter()
    for number, (student, folder) in enumerate(everyone, 1):
        # a folder name is the submitter's text too: shown cleaned, like every student string
        where = f"[{number}/{len(everyone)}] {clean_line(student, 100)}"
        if folder is None:
            result.missing.append(student)
            say(f"{where}: no {assignment}/ folder, nothing to grade")
            continue
        fingerprint = submission_fingerprint(folder, grading)
        target = out / student
        if is_current(target, fingerprint):
            result.kept.append(student)
            say(f"{where}: unchanged since it was graded, kept")
            continue
        say(f"{where}: grading ...")
        try:
            graded = run.grade_submission(folder, assignment, course=course)
        except run.GradingUnavailable as exc:   # the machine's fault: stop, record nothing
            write_scores_csv(out, assignment, course)
            raise run.GradingUnavailable(
                f"stopped at {student} ({exc}); nothing recorded for them, the "
                f"{len(result.graded)} graded in this run are saved: run the same command "
                "again once fixed") from None
        write_atomically(target / RESULTS_FILE, json.dumps(graded.to_gradescope(), indent=2) + "\n")
        write_atomically(target / SUMMARY_FILE, graded.summary() + "\n")
        write_atomically(target / FINGERPRINT_FILE, json.dumps(
            {"fingerprint": fingerprint, "assignment": assignment, "student": student,
             "scores": graded.scores(), "problems": graded.problems,
             "warnings": graded.warnings}, indent=2) + "\n")
        result.graded.append(student)
        say(f"{where}: {graded.score:g} / {graded.max_score:g} in {graded.execution_time:.0f} s"
            + ("" if not graded.problems else f" (kit problems: {'; '.join(graded.problems)})")
            # checks the submission's values made raise: failed for the student, worth a look
            + ("" if not graded.warnings else f" ({len(graded.warnings)} warning(s) in "
               f"{FINGERPRINT_FILE})"))
    write_scores_csv(out, assignment, course)
    result.seconds = time.perf_counter() - start
    return result


def write_scores_csv(out: Path, assignment: str, course: run.Course) -> Path | None:
    """One row per graded student: each auto-graded exercise's score and the total."""
    if not out.is_dir():
        return None
    ids = [ex.id for ex in catalog.load(course.source)
           if ex.assignment == assignment and ex.kind == "auto"]
    rows = []
    for record in sorted(out.glob(f"*/{FINGERPRINT_FILE}")):
        try:
            data = json.loads(record.read_text())
        except (OSError, ValueError):
            continue
        if data.get("assignment") != assignment:
            continue
        scores = data.get("scores", {})
        rows.append([data["student"]] + [scores.get(i, "") for i in ids]
                    + [round(sum(scores.get(i) or 0 for i in ids), 4)])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student"] + ids + ["total"])
    writer.writerows(rows)
    path = out / SCORES_FILE
    write_atomically(path, buffer.getvalue())
    return path
