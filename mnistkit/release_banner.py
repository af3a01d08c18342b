"""nbgrader preprocessors: the first words a student reads in a released notebook and in feedback.

``AddReleaseBanner`` runs inside `nbgrader generate_assignment` (see nbgrader_config.py), so
`mnistkit build` and the stock nbgrader command produce the same release. The banner speaks to
students: what the notebook is and how to work through it (answer cells, self-checks that are
not the grade, written answers graded by hand, Validate before submitting). The instructor's
fact, that the file is generated from ``source/`` and must not be edited, is kept out of the
students' view: it is in the banner cell's metadata (``metadata.mnistkit``), and README.md and
docs/ARCHITECTURE.md say that release/ is generated.

``FeedbackBanner`` runs in `nbgrader generate_feedback`: a graded notebook is no longer one to
work through, so the banner says how to read the feedback instead, and the error-hint cell
(mnistkit.selfcheck_hints), which is only useful while working, is left out.
"""
from nbformat.v4 import new_markdown_cell
from nbgrader.preprocessors import NbGraderPreprocessor

from mnistkit.grading.nbgrader_feedback import FeedbackStep
from mnistkit.selfcheck_hints import HINTS_MARK

BANNER_MARK = "mnistkit-release-banner"

STUDENT_TEXT = """\
> **This is your copy of the assignment:** you work in it and hand it in.
>
> - Run the cells in order, from the top (Shift+Enter runs a cell). Cells you cannot edit are
>   part of the assignment: run them as they are.
> - **Code exercises:** write your code in the answer cell, in place of
>   `raise NotImplementedError()`, then run the self-check cell under it. A self-check catches
>   common slips; it is not your grade: after you hand in, hidden tests try your code on other
>   inputs.
> - **Written questions:** answer in the cell marked *Write your answer here*; a person grades
>   them.
> - A cell that stops with `NameError` needs an earlier one: the error's last lines say which
>   exercise or cell to finish and run first.
> - **Before you hand in:** Kernel → Restart Kernel and Run All Cells, then press **Validate** in
>   the notebook's toolbar and fix what it reports."""

FEEDBACK_TEXT = """\
> **Your graded notebook.** Under each self-check you find the score the hidden tests gave
> that exercise and what they found; written answers show the grader's score and comments
> once a person has graded them (until then they are *pending*, not 0). Your own cells keep
> what they printed when you ran them, as plain text and images."""


def instructor_note(assignment: str, notebook: str) -> dict:
    """What instructors need to know about a released notebook (kept in cell metadata)."""
    return {
        "generated_from": f"source/{assignment}/{notebook}.ipynb",
        "rebuild": f"mnistkit build (or: nbgrader generate_assignment {assignment} --force)",
        "note": "Generated file: edit the source notebook, not this one.",
    }


def _is_banner(cell) -> bool:
    return cell.get("id") == BANNER_MARK or bool(cell.metadata.get(BANNER_MARK))


class AddReleaseBanner(NbGraderPreprocessor):
    """The students' banner, first in the notebook (above the title and its grading notes)."""

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        cell = new_markdown_cell(STUDENT_TEXT, id=BANNER_MARK)
        cell.metadata[BANNER_MARK] = True
        cell.metadata["mnistkit"] = instructor_note(info["assignment"], info["notebook"])
        cell.metadata["editable"] = False
        cell.metadata["deletable"] = False
        nb.cells = [c for c in nb.cells if not _is_banner(c)]
        nb.cells.insert(0, cell)
        return nb, resources


class FeedbackBanner(FeedbackStep):
    """In feedback: the banner says how to read it; the error-hint cell is dropped. (On the
    kit's feedback base: no "display_data_priority not recognized" warning.)"""

    def preprocess(self, nb, resources):
        cells = []
        for cell in nb.cells:
            if cell.get("id") == HINTS_MARK or cell.metadata.get(HINTS_MARK):
                continue
            if _is_banner(cell):
                cell.source = FEEDBACK_TEXT
            cells.append(cell)
        nb.cells = cells
        return nb, resources
