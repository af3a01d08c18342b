"""Which code cells grading runs: all but the ones it leaves out by design.

Light on purpose (no numpy, no torch): the CLI's grading path imports it (``ran_as_designed``)
before it has checked its arguments.
"""
from __future__ import annotations

from pathlib import Path

from mnistkit.catalog import read_cells
from mnistkit.cell_names import reads, scan

# Grade ids of the chapter's demonstrations, and the status of a cell grading skips by design.
DEMO_PREFIX = "demo-"
LEFT_OUT = "left out"


def ran_as_designed(status: str) -> bool:
    """A cell's run that is worth no note: it ran cleanly, or grading left it out."""
    return status in ("ok", LEFT_OUT)


def may_be_left_out(cell: dict) -> bool:
    """Whether grading may skip this code cell: what the hidden tests never depend on, and most
    of a notebook's run time (a3: 9 of its 15 CPU-s; a4: loading all 70,000 PNGs, a training run):
    - the chapter's demonstrations, grade id ``demo-*``: a training run that shows an accuracy,
      a plot of it, the data only they use; locked, so the release's code is what is skipped;
    - the self-check cells (nbgrader's autograder test cells): hints for the student, while the
      hidden tests grade.
    ``cells_left_out`` says which of them actually are. JupyterLab, Validate and
    ``nbgrader validate`` run everything."""
    nbgrader = cell.get("metadata", {}).get("nbgrader", {})
    demo = str(nbgrader.get("grade_id") or "").startswith(DEMO_PREFIX)
    self_check = bool(nbgrader.get("grade")) and not nbgrader.get("solution")
    return cell.get("cell_type") == "code" and (demo or self_check)


def cells_left_out(notebook_path: Path) -> set[int]:
    """Positions among the code cells (as in ``code_cells``) of the cells grading skips: those
    that ``may_be_left_out`` and bind no name that a cell still run reads, in this very notebook
    (``cell_names.reads``): a later cell as it runs, or a function of any cell, as a hidden test
    may call it at the end. A student whose answer uses a demonstration's data thus gets that
    demonstration run, and every answer sees the names it would see in JupyterLab. Decided in
    the grader, from the notebook the grader cleaned; metadata a student adds can only leave
    their own code unrun. (A name reached only through ``globals()`` or ``eval`` is not seen.)"""
    code = [c for c in read_cells(notebook_path) if c["cell_type"] == "code"]
    scans = [scan(c["source"]) for c in code]
    names = [(s.defines, *reads(c["source"], s)) for c, s in zip(code, scans)]
    # names read by the cells after this one that run, and by every function that stays defined
    needed = set().union(*(later for cell, (_, _, later) in zip(code, names)
                           if not may_be_left_out(cell)))
    left_out = set()
    for index in range(len(code) - 1, -1, -1):
        defines, now, later = names[index]
        if may_be_left_out(code[index]) and not needed.intersection(defines):
            left_out.add(index)
        else:   # a name a later cell rebinds stays needed: running an extra cell is only slower
            needed |= now | later
    return left_out
