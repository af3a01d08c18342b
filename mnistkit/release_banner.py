"""nbgrader preprocessors: the first words a student reads in a released notebook and in feedback.

``AddReleaseBanner`` runs inside `nbgrader generate_assignment` (see nbgrader_config.py), so
`mnistkit build` and the stock nbgrader command produce the same release. The banner is the one
short welcome above the notebook's own title: how to work through it (answer cells, self-checks
that are not the grade, written answers graded by a person, Validate before submitting) and
where the grading rules are. The rules themselves are further down, where they apply (the trust
rule: the notebook states every rule the grader applies):

- the source notebook's last section, "How this notebook is graded" (its cell's metadata has
  ``mnistkit.grading_section``), holds the notebook's own grading notes (the tensor/number rule,
  what the hidden tests do);
- right after it, the full rules of the code-reading checks, generated from
  ``mnistkit.grading.source_checks.RULES_MARKDOWN`` (never a hand copy in a source notebook);
- before the answer cell of each exercise whose code the grader reads (its graded cell's
  ``metadata.mnistkit.reads_code``), those rules in short, pointing at the full text.

The instructor's fact, that the file is generated from ``source/`` and must not be edited, is
kept out of the students' view: it is in the banner cell's metadata (``metadata.mnistkit``), and
README.md and docs/ARCHITECTURE.md say that release/ is generated.

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
> **This is your copy of the assignment:** you work in it and hand it in. Run the cells in
> order, from the top (Shift+Enter); cells you cannot edit are part of the assignment: run them
> as they are.
>
> - **Code exercises:** write your code in the answer cell, in place of
>   `raise NotImplementedError()`, then run the self-check under it. It catches common slips,
>   but it is not your grade: after you hand in, hidden tests try your code on other inputs.
> - **Written questions:** answer in the cell marked *Write your answer here*; a person grades them.
> - **Before you hand in:** Kernel → Restart Kernel and Run All Cells, then press **Validate**.
>
> The notebook's last section states every rule of its grading."""

RULES_MARK = "mnistkit-grading-rules"      # metadata key of the rule cells the release adds
SECTION_KEY = "grading_section"            # metadata.mnistkit of the source's grading section
SECTION_TITLE = "## How this notebook is graded"

SHORT_RULES = """\
> **The grader reads this exercise's code**, not only what it returns: the function the
> exercise names, and the notebook's code that function uses. There, a *loop* is any `for` or
> `while`, comprehension, recursion or element-by-element call (`map`, `.apply_()`, ...), and
> code it cannot read (`exec` or `eval`, writing `globals()`, a `global` that rebinds the
> exercise's names, replacing a library function) costs the technique point; imports, prints,
> plots and cells of your own cost nothing. The self-check says when the grader cannot read your
> answer. The full rules: *What the grader reads in your code*, in the last section."""

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


def _rule_cell(source: str, cell_id: str):
    cell = new_markdown_cell(source, id=cell_id)
    cell.metadata[RULES_MARK] = True
    cell.metadata["editable"] = False
    cell.metadata["deletable"] = False
    return cell


def reads_code_exercises(nb) -> list[str]:
    """The exercises whose code the grader reads: graded cells with ``mnistkit.reads_code``."""
    return [cell.metadata["nbgrader"]["grade_id"] for cell in nb.cells
            if cell.metadata.get("mnistkit", {}).get("reads_code")
            and cell.metadata.get("nbgrader", {}).get("grade_id")]


def place_grading_rules(nb) -> None:
    """The rules of the code-reading checks where they apply: in short before the answer cell
    of each exercise whose code the grader reads, in full once after the grading section (at
    the end of the notebook when it has none). Idempotent: earlier copies are replaced."""
    from mnistkit.grading import source_checks
    nb.cells = [c for c in nb.cells if not c.metadata.get(RULES_MARK)]
    exercises = reads_code_exercises(nb)
    if not exercises:
        return
    for exercise in exercises:
        ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
        at = ids.index(f"{exercise}-answer") if f"{exercise}-answer" in ids else ids.index(exercise)
        nb.cells.insert(at, _rule_cell(SHORT_RULES, f"{RULES_MARK}-{exercise}"[:64]))
    section = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and (
        c.metadata.get("mnistkit", {}).get(SECTION_KEY)
        or c.source.lstrip().startswith(SECTION_TITLE))), None)
    at = len(nb.cells) if section is None else section + 1
    nb.cells.insert(at, _rule_cell(source_checks.RULES_MARKDOWN.strip(), RULES_MARK))


class AddReleaseBanner(NbGraderPreprocessor):
    """The students' banner, first in the notebook (above the title), and the grading rules
    where they apply (``place_grading_rules``)."""

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        cell = new_markdown_cell(STUDENT_TEXT, id=BANNER_MARK)
        cell.metadata[BANNER_MARK] = True
        cell.metadata["mnistkit"] = instructor_note(info["assignment"], info["notebook"])
        cell.metadata["editable"] = False
        cell.metadata["deletable"] = False
        nb.cells = [c for c in nb.cells if not _is_banner(c)]
        nb.cells.insert(0, cell)
        place_grading_rules(nb)
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
