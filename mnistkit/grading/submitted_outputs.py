"""The outputs a student handed in, kept in their own cells of the autograded notebook and of
their feedback, made plain and bounded on the way (issue 18, item 5).

nbgrader's sanitizing step clears every output of a submission (``ClearOutput``), so the
feedback showed ``In [ ]`` everywhere and none of the student's prints, plots or tracebacks
next to the grader's messages. Two ways to show them were possible:

- bring back what the student's code printed when the kit ran it in the sandbox: a new
  channel out of the sandbox, which the student's code owns and can fill with anything, for
  outputs nobody grades;
- keep the outputs the student submitted, which they saw in JupyterLab.

The kit keeps the submitted ones: nothing new crosses the sandbox's wall, and the feedback shows
what the student saw. They are the student's data all the same (the notebook is a JSON file a
student can write by hand), so they are treated as hostile on the way to a page an instructor
opens in a logged-in browser (formgrader) and to the student's feedback:

- only the student's own cells keep outputs (answer cells and cells without a grade id); the
  kit's cells (locked setup and demonstration cells, self-checks) are cleared, and the kit
  writes its messages into them;
- only plain kinds survive: stream text, ``text/plain``, ``image/png`` (decoded and checked to
  be a PNG), and an error's name, message and traceback as text; HTML, JavaScript, SVG,
  widgets and every other kind are dropped, and output metadata with them (an image gets the
  kit's alternative text);
- text loses terminal escape sequences and control characters (a progress bar's ``\\r``
  redraws keep their last state), and is cut: per output, per cell, per notebook; images are
  limited in size and number;
- execution counts are kept where they are plain integers, so the feedback reads ``In [12]``
  as JupyterLab did.

``KeepOwnOutputs`` is the nbgrader step (in place of ``ClearOutput`` in
``c.Autograde.sanitize_preprocessors``); ``keep_own`` is what ``nbgrader_autograde.write_results``
applies to each cell again before it adds the grader's messages.
"""
from __future__ import annotations

import base64
import binascii
import re

from nbformat import NotebookNode
from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor

from mnistkit.grading.results import _ESCAPES, clean_line

OUTPUTS_PER_CELL = 20
CELL_CHARS = 10_000              # text of one cell's outputs
NOTEBOOK_CHARS = 200_000         # text of all the notebook's kept outputs
TRACEBACK_LINES = 40             # the last lines of an error's traceback
TEXT_LINES = 60                  # lines of one output's text (a training log: its first ones)
LINE_CHARS = 500                 # one line of text
PNG_BYTES = 400_000              # one image, decoded
PNGS_PER_CELL = 4
NOTEBOOK_PNG_BYTES = 4_000_000   # all the notebook's images, decoded
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The only output metadata kept: the kit's words for an image (a student's metadata is dropped:
# nbconvert would make an <img> of its "filenames" entry, and size it by its "width").
IMAGE_ALT = "an image your cell showed when you ran it"
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")
# text/plain that only stands for a rich output the kit drops (HTML, a widget, a figure)
_STAND_IN = re.compile(r"<(IPython\.core\.display\.\w+|Figure size [^>]*|[\w.]+Widget[^>]*) object>"
                       r"|<Figure size [^>]*>")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def is_own(cell) -> bool:
    """Is ``cell`` one of the student's own code cells (an answer cell, or a cell with no grade
    id), whose outputs the feedback keeps? Locked and graded cells are the kit's."""
    meta = cell.get("metadata", {}).get("nbgrader") or {}
    if cell.get("cell_type") != "code":
        return False
    if not meta.get("grade_id"):
        return True
    return bool(meta.get("solution")) and not meta.get("grade") and not meta.get("locked")


def plain_text(text, limit: int) -> str:
    """``text`` as plain lines: escape sequences and control characters removed, a carriage
    return keeping what was redrawn last on its line, each line and the whole cut."""
    text = "".join(text) if isinstance(text, list) else str(text)
    text = _ESCAPES.sub("", text[:limit * 4])
    lines = []
    for line in text.replace("\r\n", "\n").split("\n"):
        line = _CONTROL.sub("", line.rsplit("\r", 1)[-1]).replace("\t", "    ")
        lines.append(line if len(line) <= LINE_CHARS else line[:LINE_CHARS - 1] + "…")
    ends = not lines[-1]                       # a text ending in a newline: no line after it
    if len(lines) - ends > TEXT_LINES:
        left_out = len(lines) - ends - TEXT_LINES
        lines = lines[:TEXT_LINES] + [f"… ({left_out} more lines not shown)", ""]
    text = "\n".join(lines)
    if len(text) > limit:
        text = text[:limit] + f"\n… ({len(text) - limit} more characters not shown)\n"
    return text


def png_bytes(data) -> bytes | None:
    """The decoded PNG of an ``image/png`` value, or None when it is not one (not base64, not
    a PNG, over ``PNG_BYTES``)."""
    if isinstance(data, list):
        data = "".join(data)
    if not isinstance(data, str) or len(data) > PNG_BYTES * 4 // 3 + 1024 \
            or not _BASE64.fullmatch(data):
        return None
    try:
        raw = base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if raw.startswith(PNG_SIGNATURE) and len(raw) <= PNG_BYTES else None


def _count(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) \
        and 0 <= value < 10**7 else None


class Budget:
    """What is left to keep, in one cell and in the whole notebook."""

    def __init__(self, chars: int = NOTEBOOK_CHARS, png: int = NOTEBOOK_PNG_BYTES):
        self.chars, self.png = chars, png

    def text(self, text, cell_left: int) -> str:
        kept = plain_text(text, max(0, min(cell_left, self.chars)))
        self.chars -= len(kept)
        return kept


def sanitize_outputs(outputs, budget: Budget | None = None) -> list[NotebookNode]:
    """Plain, bounded copies of a cell's outputs (module docstring: what is kept)."""
    budget = budget or Budget()
    kept, cell_chars, images = [], CELL_CHARS, 0
    for out in (outputs if isinstance(outputs, list) else [])[:OUTPUTS_PER_CELL * 4]:
        if len(kept) >= OUTPUTS_PER_CELL or cell_chars <= 0 or budget.chars <= 0:
            break
        if not isinstance(out, dict):
            continue
        kind = out.get("output_type")
        if kind == "stream":
            name = out.get("name") if out.get("name") in ("stdout", "stderr") else "stdout"
            text = budget.text(out.get("text", ""), cell_chars)
            cell_chars -= len(text)
            if text:
                kept.append(new_output("stream", name=name, text=text))
        elif kind in ("execute_result", "display_data"):
            data = out.get("data") if isinstance(out.get("data"), dict) else {}
            png = png_bytes(data.get("image/png")) if images < PNGS_PER_CELL else None
            if png is not None and len(png) <= budget.png:
                budget.png -= len(png)
                images += 1
                fields = {"image/png": base64.b64encode(png).decode("ascii")}
                meta = {"image/png": {"alt": IMAGE_ALT}}
            else:
                text = data.get("text/plain", "")
                text = "".join(text) if isinstance(text, list) else str(text)
                if not text.strip() or _STAND_IN.fullmatch(text.strip()):
                    continue
                text = budget.text(text, cell_chars)
                cell_chars -= len(text)
                fields, meta = {"text/plain": text}, {}
            if kind == "execute_result":
                kept.append(new_output(kind, data=fields, metadata=meta,
                                       execution_count=_count(out.get("execution_count"))))
            else:
                kept.append(new_output(kind, data=fields, metadata=meta))
        elif kind == "error":
            traceback = out.get("traceback") if isinstance(out.get("traceback"), list) else []
            lines = [plain_text(line, LINE_CHARS * 4) for line in traceback[-TRACEBACK_LINES:]
                     if isinstance(line, str)]
            text = budget.text("\n".join(lines), cell_chars)
            cell_chars -= len(text)
            kept.append(new_output("error", ename=clean_line(out.get("ename", "Error"), 100),
                                   evalue=clean_line(out.get("evalue", ""), LINE_CHARS),
                                   traceback=text.split("\n") if text else []))
    return kept


def keep_own(cell, budget: Budget | None = None) -> None:
    """The student's own code cell keeps its outputs and count, made plain; any other code
    cell loses them (the kit writes its own)."""
    if cell.get("cell_type") != "code":
        return
    if is_own(cell):
        cell.outputs = sanitize_outputs(cell.get("outputs"), budget)
        cell.execution_count = _count(cell.get("execution_count"))
    else:
        cell.outputs = []
        cell.execution_count = None
    for field in ("collapsed", "scrolled"):        # as nbconvert's ClearOutput does
        cell.metadata.pop(field, None)


def hold(nb) -> dict[int, tuple]:
    """The code cells' outputs and counts, by cell, before a step that clears them
    (``submission.restore_cells``); ``put_back`` returns them to the same cells."""
    return {id(cell): (cell.get("outputs", []), cell.get("execution_count"))
            for cell in nb.cells if cell.get("cell_type") == "code"}


def put_back(nb, held: dict[int, tuple]) -> None:
    for cell in nb.cells:
        if id(cell) in held:
            cell.outputs, cell.execution_count = held[id(cell)]


class KeepOwnOutputs(NbGraderPreprocessor):
    """Autograde's first sanitizing step, in place of nbgrader's ``ClearOutput``: the
    student's own cells keep their submitted outputs, plain and bounded; every other cell is
    cleared as before."""

    def preprocess(self, nb, resources):
        budget = Budget()
        for cell in nb.cells:
            keep_own(cell, budget)
        return nb, resources
