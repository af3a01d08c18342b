"""nbgrader preprocessor: grade with the hidden autograder instead of running the notebook.

It replaces nbgrader's ``Execute`` in ``c.Autograde.autograde_preprocessors`` (see
nbgrader_config.py). By then nbgrader has sanitized the submission (the kit's cells' outputs
cleared, the student's own kept plain and bounded by ``submitted_outputs``, locked cells
overwritten from the gradebook); this preprocessor also puts back locked cells the student
deleted (from the release notebook), grades the notebook with ``mnistkit.grading.run`` (the same
code as ``mnistkit grade``, so the same score) and writes the result into every graded code
cell: a stdout stream with the score and one feedback line per problem, then an
``execute_result`` whose text/plain is the score, which nbgrader's ``determine_grade`` reads as
partial credit. It never writes stderr or error outputs (nbgrader gives those 0 whatever they
say), and a grading run that fails still writes 0 and the reason into every graded cell: a
graded code cell left without outputs would get full marks from nbgrader. The one exception is
a grading machine unfit to grade (``preflight.NotReady``: no data, no sandbox): that is never
the student's fault, so the preprocessor raises, nbgrader records nothing for the notebook and
``nbgrader autograde`` exits non-zero. A submitted notebook that is not a file of the submission
(a link to the instructor's notebook, a fifo: ``nbgrader_submitted``) is never read: it gets 0
and the reason in every graded cell, like a missing notebook.

``mnistkit grade-class`` records into the same gradebook through this same preprocessor
(``mnistkit.grading.gradebook``): it runs nbgrader's Autograde for one student with
``GradeWithHiddenTests.reports`` holding the grade reports it has just computed, and a notebook
found there is written from its report instead of being graded a second time. Everything else
-- nbgrader's sanitizing, the restored cells, the cell outputs, SaveAutoGrades -- is the same
code, so the gradebook gets what ``nbgrader autograde`` would have recorded.
"""
from __future__ import annotations

import copy
import tempfile
import warnings
from pathlib import Path

import nbformat
from nbformat.v4 import new_output
from nbgrader import preprocessors as nbp
from nbgrader.api import MissingEntry
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Dict, Float, Unicode

from mnistkit.grading import nbgrader_submitted, preflight, run, submission, submitted_outputs
from mnistkit.grading.left_out import ran_as_designed
from mnistkit.grading.results import (FEEDBACK_CHARS, FEEDBACK_LINES, NOTE_LINES, cap_lines,
                                      clean_block)

HEADER = "Autograder"


def _stdout(text: str):
    return new_output("stream", name="stdout", text=text)


def _cell_line(cell: dict) -> str:
    return run._cell_line(cell)


def write_results(nb, report: dict, notes: list[str] = ()) -> None:
    """Put the report into ``nb``'s code cells (see the module docstring). The student's own
    cells keep the outputs they handed in, plain and bounded (``submitted_outputs``); the
    grader's message about such a cell comes after them."""
    runs = {c["index"]: c for c in report.get("cells", [])}
    code_index = -1
    first_graded = True
    budget = submitted_outputs.Budget()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        code_index += 1
        submitted_outputs.keep_own(cell, budget)
        meta = cell.metadata.get("nbgrader", {})
        grade_id = meta.get("grade_id")
        if meta.get("grade") and grade_id:
            points = float(meta.get("points", 0))
            entry = report["exercises"].get(grade_id)
            if entry is None or entry["kind"] != "auto":
                score = 0.0
                lines = ["no hidden tests graded this cell (a kit problem); tell your instructor"]
            else:
                score = min(max(float(entry["score"]), 0.0), points)
                lines = cap_lines(entry.get("feedback", []), FEEDBACK_LINES, FEEDBACK_CHARS)
            if first_graded:
                lines += [f"note: {n}" for n in cap_lines(notes, NOTE_LINES)]
                first_graded = False
            text = f"{HEADER}: {score:g} / {points:g} points\n" + "".join(f"- {l}\n" for l in lines)
            cell.outputs = [_stdout(text),
                            new_output("execute_result", data={"text/plain": repr(score)},
                                       execution_count=None)]
            continue
        ran = runs.get(code_index)
        if ran and not ran_as_designed(ran["status"]):
            cell.outputs = [*cell.outputs,
                            _stdout(f"{HEADER}: when graded, this cell {_cell_line(ran)}\n")]


def quiet_known_nbgrader_warnings() -> None:
    """Silence the SQLAlchemy warning nbgrader 0.9.6 gives three times per submission graded.

    ``Gradebook.add_submission`` builds the submission, its notebooks and their grades before it
    adds the submission to the session; reading ``assignment.notebooks`` meanwhile autoflushes,
    and SQLAlchemy 2 (which no longer cascades objects into the session along backrefs) warns
    "Object of type <SubmittedAssignment> not in session, add operation along
    'Student.submissions' will not proceed" (and for 'Assignment.submissions',
    <SubmittedNotebook> along 'Notebook.submissions'). Nothing is lost: the ``db.add`` a line
    later adds them all, which the gradebook tests check. Only these messages, from
    nbgrader.api, are silenced."""
    from sqlalchemy.exc import SAWarning
    warnings.filterwarnings(
        "ignore", category=SAWarning, module=r"nbgrader\.api",
        message=r"Object of type <Submitted(Assignment|Notebook)> not in session, add operation "
                r"along '\w+\.submissions' will not proceed")


class GradeWithHiddenTests(NbGraderPreprocessor):
    """Grade a sanitized submission with the hidden autograder (replaces ``Execute``)."""

    autograder_directory = Unicode(
        "autograder", help="the hidden tests' folder, relative to the course root").tag(config=True)
    timeout = Float(None, allow_none=True,
                    help="seconds for one notebook's grading run (default: the course's "
                         "grade_timeout setting, MNISTKIT_GRADE_TIMEOUT, 1800)").tag(config=True)
    reports = Dict(
        help="student id -> {notebook name -> grade report from run.grade_notebook}: reports "
             "already computed (by `mnistkit grade-class`); a notebook found here is not graded "
             "again. Empty (the default) for `nbgrader autograde`.").tag(config=True)

    def _course(self) -> tuple[run.Course, CourseDirectory]:
        coursedir = CourseDirectory(parent=self)
        root = Path(coursedir.root)
        course = run.Course(source=root / coursedir.source_directory,
                            release=root / coursedir.release_directory,
                            autograder=root / self.autograder_directory)
        return course, coursedir

    @staticmethod
    def _refused(coursedir: CourseDirectory, info: dict) -> str:
        """Why the submitted notebook this copy was made from is not a file of the submission
        ("" when it is): nbgrader_submitted.SubmittedFilesOnly read an empty notebook in its
        place, and nothing of it may be graded."""
        if not info.get("student"):
            return ""
        folder = Path(coursedir.format_path(coursedir.submitted_directory, info["student"],
                                            info["assignment"]))
        return nbgrader_submitted.refusal(folder / f"{info['notebook']}.ipynb")

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        assignment, notebook = info["assignment"], info["notebook"]
        course, coursedir = self._course()
        notes = []
        given = self.reports.get(info.get("student"), {}).get(notebook)
        try:
            release = Path(coursedir.format_path(coursedir.release_directory, ".", assignment))
            release_nb = release / f"{notebook}.ipynb"
            if release_nb.is_file():
                held = submitted_outputs.hold(nb)     # restore_cells clears every output
                nb, notes = submission.restore_cells(
                    nb, submission.read_release(release_nb, full=True), replace=False)
                submitted_outputs.put_back(nb, held)
            if given is not None:   # graded already (grade-class): only write it down
                write_results(nb, given, notes)
                self.log.info("mnistkit: recorded %s/%s from its grade report", assignment,
                              notebook)
                return nb, resources
            refused = self._refused(coursedir, info)
            if refused:   # never read (SubmittedFilesOnly): graded as missing, with the reason
                report = run.failed_report(assignment, notebook, refused, course)
            else:
                run.check_can_grade(assignment, course)
                with tempfile.TemporaryDirectory(prefix="mnistkit-nbgrader-") as tmp:
                    path = Path(tmp) / f"{notebook}.ipynb"
                    nbformat.write(submission.grading_copy(nb, release_nb), str(path))
                    report = run.grade_notebook(path, assignment, course=course,
                                                notebook_name=notebook, timeout=self.timeout)
        except preflight.NotReady as exc:
            # The grading machine is at fault, not the student: refuse rather than record 0.
            # nbgrader then records no grade for this notebook, drops its autograded copy and
            # exits non-zero; the same cached one-line reason refuses every other notebook.
            self.log.error("mnistkit: refusing to grade %s/%s: %s", assignment, notebook, exc)
            raise
        except Exception as exc:  # never leave graded cells blank: blank means full marks
            self.log.error("mnistkit: could not grade %s/%s: %s: %s", assignment, notebook,
                           type(exc).__name__, exc)
            report = run.failed_report(assignment, notebook, f"{run.GRADER_TROUBLE} ({exc})"
                                       if isinstance(exc, run.GradingUnavailable)
                                       else run.GRADER_TROUBLE, course)
        for problem in report.get("problems", []):
            self.log.error("mnistkit: kit problem grading %s/%s: %s", assignment, notebook,
                           clean_block(problem, 1000))
        for warning in report.get("warnings", []):
            self.log.warning("mnistkit: %s/%s: %s", assignment, notebook, clean_block(warning, 1000))
        if not report.get("graded", False) and report.get("log"):
            self.log.error("mnistkit: grader output:\n%s", clean_block(report["log"]))
        write_results(nb, report, notes)
        self.log.info("mnistkit: graded %s/%s in %.1f s", assignment, notebook,
                      report.get("seconds", 0.0))
        return nb, resources


class OverwriteCellsAsReleased(nbp.OverwriteCells):
    """nbgrader's OverwriteCells, without its false alarm on locked cells handed in as released.

    nbgrader records a locked cell's source and checksum in the gradebook *before* it clears
    mark schemes and hidden tests from the release (GenerateAssignment's ComputeChecksums and
    SaveCells run before ClearHiddenTests and ClearMarkScheme; upstream nbgrader#1961). Every
    untouched task cell with a mark scheme (five in a1) therefore differs from the gradebook's,
    and OverwriteCells warns "Attribute 'checksum' for cell ... has changed!" for every student,
    then puts the gradebook's source back. This step first recognises a cell that is exactly
    what the release made of the gradebook's source (the same two nbgrader steps applied to it)
    and puts the gradebook's source back itself, silently: the autograded notebook is the same
    as before, and a locked cell the student really changed still gets nbgrader's warning."""

    def preprocess(self, nb, resources):
        self._release_steps = [nbp.ClearHiddenTests(parent=self), nbp.ClearMarkScheme(parent=self)]
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id:
            try:
                recorded = self.gradebook.find_source_cell(grade_id, self.notebook_id,
                                                           self.assignment_id)
            except MissingEntry:
                recorded = None     # nbgrader's own step says so and drops the grade id
            if recorded is not None and recorded.locked and cell.source != recorded.source \
                    and cell.source == self._as_released(cell, recorded.source):
                cell.source = recorded.source
        return super().preprocess_cell(cell, resources, cell_index)

    def _as_released(self, cell, source: str) -> str | None:
        released = copy.deepcopy(cell)
        released.source = source
        try:
            for step in self._release_steps:
                released, _ = step.preprocess_cell(released, {}, 0)
        except RuntimeError:        # a region nbgrader itself would refuse: not as released
            return None
        return released.source


class ForgetLostGradeIds(NbGraderPreprocessor):
    """Sanitize step between nbgrader's OverwriteCells and CheckCellMetadata.

    nbgrader strips the grade id of a duplicated cell (DeduplicateIds leaves ``nbgrader: {}``)
    and of a cell whose id the gradebook does not know (a student renamed it), then its own
    metadata check rejects the notebook, and the student is left with blanks in the gradebook.
    Such a cell is the student's own cell now: this drops its nbgrader metadata, so the notebook
    is graded like any other (the kit restores the real cells by grade id anyway)."""

    def preprocess_cell(self, cell, resources, index):
        meta = cell.metadata.get("nbgrader")
        if meta is not None and not meta.get("grade_id"):
            del cell.metadata["nbgrader"]
        return cell, resources
