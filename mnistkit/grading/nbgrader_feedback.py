"""nbgrader preprocessors for ``nbgrader generate_feedback`` (listed in nbgrader_config.py).

What a student reads in their feedback file, and nothing an instructor need worry about in the
log:

- ``FeedbackStep``: the base for every preprocessor ``generate_feedback`` runs. nbgrader's
  ``NbGraderPreprocessor`` redefines nbconvert's ``display_data_priority`` without
  ``config=True``, and nbconvert's HTMLExporter configures ``NbConvertBase.display_data_priority``,
  so traitlets warns "Config option `display_data_priority` not recognized by ..." for every
  nbgrader step built under it, once per command. nbgrader fixed its own GetGrades so
  (nbgrader#683); this base gives the trait back its ``config=True``. ``ClearHiddenTests`` and
  ``ClearMarkScheme`` are nbgrader's own on this base.
- ``ShowScoreMessages``: the kit writes each self-check cell's score twice (grading/
  nbgrader_autograde.py): a stdout line "Autograder: 2 / 3 points" with the reasons, and an
  ``execute_result`` holding the bare number, which nbgrader's partial credit reads at
  autograde time. In the feedback that number showed as ``Out[ ]: 0.0`` under every graded
  cell; this step leaves the message only. Scores are untouched: nbgrader's feedback takes
  them from the gradebook (GetGrades), and the autograded notebook keeps its number.
- ``FeedbackStyle``: long lines wrap inside their box instead of being cut off at its edge.
- ``ScoresAsGraded`` (after nbgrader's ``GetGrades``): hand-graded points nobody has graded yet
  are *pending*, not zero: the header reads "Score: 14 / 28 auto-graded; 7 points of written
  answers pending hand grading" until a person grades them, and the contents list names each
  exercise by its id and points. It fills ``resources["mnistkit"]`` and marks pending cells
  (``metadata.nbgrader.pending``) for the kit's feedback template, ``templates/feedback``: a copy
  of nbgrader 0.9.6's, named like it so that every way of generating feedback finds it first
  (``nbgrader generate_feedback`` and formgrader's button, which sets the template name
  ``feedback`` itself), given in ``c.HTMLExporter.extra_template_basedirs`` before nbgrader's.

The student's own outputs (prints, plots, tracebacks) come with the autograded notebook, kept
plain and bounded (``submitted_outputs``).
"""
from __future__ import annotations

from pathlib import Path

from nbgrader import preprocessors as nbp
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import List

from mnistkit.grading.nbgrader_autograde import HEADER

# nbgrader's own default for the trait (nbgrader/preprocessors/base.py and getgrades.py).
_PRIORITY = ["text/html", "application/pdf", "text/latex", "image/svg+xml", "image/png",
             "image/jpeg", "text/plain"]


class FeedbackStep(NbGraderPreprocessor):
    """Base for the preprocessors of ``generate_feedback`` (and any nbgrader step run under an
    HTMLExporter): no "Config option `display_data_priority` not recognized" warning."""

    display_data_priority = List(_PRIORITY).tag(config=True)


class ClearHiddenTests(FeedbackStep, nbp.ClearHiddenTests):
    """nbgrader's ClearHiddenTests, without the display_data_priority warning."""


class ClearMarkScheme(FeedbackStep, nbp.ClearMarkScheme):
    """nbgrader's ClearMarkScheme, without the display_data_priority warning."""


def has_kit_score(cell) -> bool:
    """Is ``cell`` a graded cell into which the kit wrote its message and, for nbgrader, the
    bare score as an ``execute_result``?"""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    if cell.get("cell_type") != "code" or not meta.get("grade") or meta.get("solution"):
        return False
    return any(o.get("output_type") == "stream" and o.get("name") == "stdout"
               and "".join(o.get("text", "")).startswith(f"{HEADER}: ")
               for o in cell.get("outputs", []))


class ShowScoreMessages(FeedbackStep):
    """Feedback only: drop the bare score under each graded cell, keep the kit's message."""

    def preprocess_cell(self, cell, resources, index):
        if has_kit_score(cell):
            cell.outputs = [o for o in cell.outputs if o.get("output_type") != "execute_result"]
        return cell, resources


# Inlined after nbconvert's and nbgrader's own styles (the feedback template's inlining.css).
FEEDBACK_CSS = """
/* mnistkit: wrap long lines in their box (outputs, code) instead of cutting them off */
div.output_area pre, div.input_area pre, div.output_subarea pre {
    white-space: pre-wrap;
    word-break: normal;       /* nbconvert's classic style breaks output lines mid-word */
    overflow-wrap: anywhere;  /* a word longer than the box still breaks */
}
"""


class FeedbackStyle(FeedbackStep):
    """Feedback only: the kit's CSS (list it after nbconvert's CSSHTMLHeaderPreprocessor, which
    replaces ``resources['inlining']``)."""

    def preprocess(self, nb, resources):
        css = resources.setdefault("inlining", {}).setdefault("css", [])
        css.append(FEEDBACK_CSS)
        return nb, resources


# The kit's feedback template (templates/feedback), first; then nbgrader's own templates, which
# nbgrader's generate_feedback adds only when this setting is not configured.
TEMPLATES = Path(__file__).parent / "templates"


def template_basedirs() -> list[str]:
    """``c.HTMLExporter.extra_template_basedirs`` for the course: the kit's templates before
    nbgrader's (formgrader's own ``formgrade`` template is found in nbgrader's)."""
    import nbgrader
    nbgraders = Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates"
    return [str(TEMPLATES), str(nbgraders)]


def _points(value) -> str:
    return f"{float(value or 0):g} point{'' if float(value or 0) == 1 else 's'}"


def score_line(graded: float, graded_max: float, pending: float, pending_written: bool,
               hand_graded: bool) -> str:
    """The feedback header's score: points given so far out of the points graded so far, and
    the points still waiting for a person, never counted as zero."""
    if not pending:
        return f"Score: {graded:.1f} / {graded_max:.1f}"
    so_far = "graded so far" if hand_graded else "auto-graded"
    what = "of written answers " if pending_written else ""
    return (f"Score: {graded:.1f} / {graded_max:.1f} {so_far}; {_points(pending)} {what}"
            "pending hand grading")


class ScoresAsGraded(FeedbackStep):
    """Feedback only, after ``GetGrades``: pending hand grading is not a score of 0 (module
    docstring). Reads each grade's ``needs_manual_grade`` from the gradebook."""

    def preprocess(self, nb, resources):
        from nbgrader.api import Gradebook
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gradebook:
            submitted = gradebook.find_submission_notebook(info["notebook"], info["assignment"],
                                                           info["student"])
            grades = {g.name: (float(g.score or 0), float(g.max_score or 0),
                               bool(g.needs_manual_grade), g.manual_score is not None)
                      for g in submitted.grades}
        graded = graded_max = pending = 0.0
        pending_written, hand_graded, contents = True, False, []
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            grade_id = meta.get("grade_id")
            if meta.get("comment") and (meta.get("solution") or meta.get("task")):
                contents.append(dict(anchor=f"comment-{grade_id}",
                                     label=f"the grader's comment on {grade_id}", score=""))
            if not (meta.get("grade") or meta.get("task")) or grade_id not in grades:
                continue
            score, points, waiting, by_hand = grades[grade_id]
            meta["pending"] = waiting
            written = bool(meta.get("task")) or cell.cell_type == "markdown"
            if waiting:
                pending += points
                pending_written = pending_written and written
            else:
                graded, graded_max = graded + score, graded_max + points
                hand_graded = hand_graded or by_hand or written
            kind = ("written answer, " if written else
                    "answer graded by hand, " if meta.get("solution") else "")
            contents.append(dict(
                anchor=grade_id, label=f"{grade_id} ({kind}{_points(points)})",
                score="pending hand grading" if waiting else f"Score: {score:.1f} / {points:.1f}"))
        graded -= float(info.get("late_penalty") or 0)
        resources["mnistkit"] = dict(
            score_line=score_line(graded, graded_max, pending, pending_written, hand_graded),
            contents=contents)
        return nb, resources
