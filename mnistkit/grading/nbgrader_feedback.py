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
"""
from __future__ import annotations

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
