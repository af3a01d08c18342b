"""What a class run writes for each student, and when a student counts as graded: the files
under ``DIR/<student>/`` (results.json, summary.txt, graded.json last), each written atomically,
the ``Recorder`` a caller adds (nbgrader's gradebook), and ``DIR/scores.csv``.

Apart from the batch (``batch.py``), which schedules the gradings: this module only reads and
writes the records, so the batch's loop and the files it leaves can be read separately.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Protocol

from mnistkit import catalog
from mnistkit.grading.course_files import Course
from mnistkit.grading.results import Results, clean_line, write_atomically

FINGERPRINT_FILE = "graded.json"
RESULTS_FILE = "results.json"
SUMMARY_FILE = "summary.txt"
SCORES_FILE = "scores.csv"
GRADED, NOT_GRADED = "graded", "not graded"   # a record's status (graded.json, scores.csv)
REASON_CHARS = 300        # a not-graded reason, one line


class Recorder(Protocol):
    """Where else a graded student goes (e.g. nbgrader's gradebook, mnistkit/grading/gradebook.py).

    ``record(student, results)`` is called by the writer, in this process and one student at a
    time, in the order the gradings finish, after the student's results.json and summary.txt are
    written and before graded.json: a student counts as graded only once the recorder has
    returned, so a run stopped in between grades (and records) that student again. A recorder
    must therefore accept a student it has recorded before (replace, not add). A
    ``run.GradingUnavailable`` it raises (the gradebook cannot be written at all) stops the
    batch; any other exception makes that student not graded."""

    def record(self, student: str, results: Results) -> None: ...


class _NoRecorder:
    def record(self, student: str, results: Results) -> None:
        pass


def is_current(out: Path, fingerprint: str) -> bool:
    try:
        recorded = json.loads((out / FINGERPRINT_FILE).read_text())
    except (OSError, ValueError):
        return False
    return (recorded.get("fingerprint") == fingerprint and (out / RESULTS_FILE).is_file()
            and recorded.get("status", GRADED) == GRADED)


def _record(target: Path, student: str, fingerprint: str, graded: Results,
            recorder: Recorder) -> None:
    write_atomically(target / RESULTS_FILE, json.dumps(graded.to_gradescope(), indent=2) + "\n")
    write_atomically(target / SUMMARY_FILE, graded.summary() + "\n")
    recorder.record(student, graded)
    write_atomically(target / FINGERPRINT_FILE, json.dumps(
        {"fingerprint": fingerprint, "assignment": graded.assignment, "student": student,
         "status": GRADED, "scores": graded.scores(), "problems": graded.problems,
         "warnings": graded.warnings,
         # how each notebook's sandbox ran (warm or cold, restarts, peak memory): for instructors
         "sandboxes": {r.get("notebook_name") or "": r.get("sandbox", {})
                       for r in graded.notebooks}}, indent=2) + "\n")


def _record_not_graded(target: Path, student: str, assignment: str, fingerprint: str,
                       reason: str, details: str) -> None:
    """A student the batch could not grade: graded.json says so (with the traceback, for the
    instructor) and holds no scores; results.json from an earlier grading goes, since it no
    longer describes this submission. Not handed to the recorder: nothing to record."""
    (target / RESULTS_FILE).unlink(missing_ok=True)
    write_atomically(target / SUMMARY_FILE, f"not graded: {reason}\n")
    write_atomically(target / FINGERPRINT_FILE, json.dumps(
        {"fingerprint": fingerprint, "assignment": assignment, "student": student,
         "status": NOT_GRADED, "reason": reason, "scores": {}, "details": details[-20000:]},
        indent=2) + "\n")


def write_scores_csv(out: Path, assignment: str, course: Course) -> Path | None:
    """One row per student recorded: each auto-graded exercise's score, the total and the
    ``status`` ("graded", or "not graded: <reason>" with no scores and no total, so that no
    sum or mean over the column counts a student who was not graded as a zero)."""
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
        if data.get("status", GRADED) != GRADED:
            rows.append([data["student"]] + [""] * len(ids)
                        + ["", f"{NOT_GRADED}: {clean_line(data.get('reason', ''), REASON_CHARS)}"])
            continue
        scores = data.get("scores", {})
        rows.append([data["student"]] + [scores.get(i, "") for i in ids]
                    + [round(sum(scores.get(i) or 0 for i in ids), 4), GRADED])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student"] + ids + ["total", "status"])
    writer.writerows(rows)
    path = out / SCORES_FILE
    write_atomically(path, buffer.getvalue())
    return path
