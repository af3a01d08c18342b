"""Where a code cell is, in the words a student sees in JupyterLab (issue 18, item 5).

A grade report says which cells did not run cleanly. JupyterLab numbers no cells, and counting
code cells ("code cell 17") points nowhere a student can look; calling every cell without an
exercise "one of your own" blames the student for the kit's setup and demonstration cells. So
a cell is named by what is on screen around it:

- an exercise's cells by its id and section: "the answer cell of mnist_distance (section
  '4. Broadcasting and metrics')", "the kit's self-check of mnist_distance (...)";
- the kit's other locked cells (``setup-*``, ``demo-*``) as the kit's, by the text they follow:
  "the kit's setup cell after 'Pixels: how a computer sees an image'";
- any other cell by the text it follows, and its own first line when other code cells stand
  between: "the cell after 'Exercise: RMSE'", "the cell starting `print(x)` after '...'".

Never a count, and never "yours" for a cell of the kit. The words come from the notebook being
graded, so a student's own markdown can appear in them: callers clean them where they show
them (``results.clean_line``), as every student string.
"""
from __future__ import annotations

import re
from pathlib import Path

from mnistkit.catalog import read_cells

ANSWER_SUFFIX = "-answer"
WORDS = 8             # first words of the text a cell follows
CHARS = 60            # and at most this many characters of it (or of a first line of code)
_MARKUP = re.compile(r"[*`>#]+")


def _words(text: str, words: int = WORDS, chars: int = CHARS) -> str:
    """The first non-empty line of ``text`` without markdown marks, cut to a few words."""
    line = next((ln for ln in text.splitlines() if _MARKUP.sub("", ln).strip(" -")), "")
    kept = " ".join(_MARKUP.sub("", line).strip(" -").split()[:words])
    cut = len(kept) > chars or len(_MARKUP.sub("", line).split()) > words
    return (kept[:chars].rstrip() + "…") if cut else kept


def _heading(text: str, deepest: int) -> str | None:
    """The last markdown heading of ``text`` of level ``deepest`` or higher (``#``, ``##``)."""
    found = None
    for line in text.splitlines():
        match = re.match(r"^(#{1,6})\s+(.*\S)", line.strip())
        if match and len(match.group(1)) <= deepest:
            found = _words(match.group(2), words=12, chars=80)
    return found


def _kind(grade_id: str) -> str:
    if grade_id.startswith("setup"):
        return "the kit's setup cell"
    if grade_id.startswith("demo-"):
        return "the kit's demonstration cell"
    return "the kit's cell"


def code_cell_places(cells: list[dict]) -> list[str]:
    """One description per code cell of ``cells`` (plain dicts, as ``catalog.read_cells``
    gives), in order: the positions ``CellRun.index`` counts."""
    places = []
    after = ""             # first words of the last markdown cell
    section = None         # the last level-1/2 heading (or level 3 before any)
    code_since = 0         # code cells since that markdown cell
    for cell in cells:
        source = cell.get("source", "")
        if cell.get("cell_type") == "markdown":
            section = _heading(source, 2) or section or _heading(source, 3)
            if _words(source):
                after, code_since = _words(source), 0
            continue
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {}) or {}
        grade_id = str(meta.get("grade_id") or "")
        where = f" (section '{section}')" if section and section != after else ""
        following = f"after '{after}'" if after else "at the top of the notebook"
        if grade_id.endswith(ANSWER_SUFFIX) and meta.get("solution"):
            place = f"the answer cell of {grade_id[:-len(ANSWER_SUFFIX)]}"
            place += f" (section '{section}')" if section else ""
        elif meta.get("grade") and grade_id:
            place = f"the kit's self-check of {grade_id}"
            place += f" (section '{section}')" if section else ""
        elif meta.get("locked") and grade_id:
            place = f"{_kind(grade_id)} {following}{where}"
        elif code_since:
            first = _words(source, words=20, chars=40) or "(empty)"
            place = f"the cell starting `{first}` {following}{where}"
        else:
            place = f"the cell {following}{where}"
        places.append(place)
        code_since += 1
    return places


def notebook_places(path: Path) -> list[str]:
    """``code_cell_places`` of a notebook file; [] when it cannot be read (the report then
    names cells without them: ``place_of``)."""
    try:
        return code_cell_places(read_cells(path))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


def place_of(cell: dict) -> str:
    """A cell run's description from a grade report: its ``place``, or, for a report made
    without one, words that still neither count cells nor call the kit's cells the student's."""
    if cell.get("place"):
        return str(cell["place"])
    grade_id = str(cell.get("grade_id") or "")
    if grade_id.endswith(ANSWER_SUFFIX):
        return f"the answer cell of {grade_id[:-len(ANSWER_SUFFIX)]}"
    return f"the kit's cell {grade_id!r}" if grade_id else "a cell without an exercise"
