"""Working through a notebook: a NameError says which earlier exercise or cell to finish first.

The release's error-hint cell (mnistkit/selfcheck_hints.py) runs in a real Jupyter kernel here
(nbclient), on a small notebook made for the test and on the real assignment 1.
"""
import ast
import copy
import re
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook
from nbgrader.preprocessors import ClearSolutions, ComputeChecksums

from mnistkit import cells, examples
from mnistkit.paths import RELEASE
from mnistkit.selfcheck_hints import HINTS_MARK, AddErrorHints, scan

A1 = "a1_pixel_similarity"


def toy_source():
    """An instructor notebook: exercise make_list makes `numbers`, a cell after it makes
    `total` from them, exercise twice uses `total`, a cell after it calls `twice`."""
    nb = new_notebook(cells=[
        cells.markdown("# A toy notebook"),
        cells.locked_code("setup", "import math\nfrom math import *"),
        cells.markdown("## 1. Making things"),
        cells.answer_code("make_list", "def make_list(n):\n    ### BEGIN SOLUTION\n"
                                       "    return list(range(n))\n    ### END SOLUTION"),
        cells.self_check("make_list", 1, "numbers = make_list(3)\nassert numbers == [0, 1, 2]"),
        new_code_cell("total = sum(numbers)"),
        cells.markdown("## 2. Using them"),
        cells.answer_code("twice", "def twice(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n"
                                   "    ### END SOLUTION"),
        cells.self_check("twice", 1, "assert twice(total) == 6"),
        new_code_cell("doubled = twice(3)"),
        new_code_cell("print(doubled)"),
        new_code_cell("root = sqrt(total)"),
        new_code_cell("print(totl)"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def toy_release():
    """The toy notebook as students get it: hint cell added, solutions cleared, checksums."""
    nb, _ = AddErrorHints().preprocess(toy_source(), {})
    nb, _ = ClearSolutions().preprocess(nb, {})
    nb, _ = ComputeChecksums().preprocess(nb, {})
    return nb


def answered(nb, **answers):
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if gid.removesuffix("-answer") in answers and gid.endswith("-answer"):
            cell.source = answers[gid.removesuffix("-answer")]
    return nb


def by_source(nb, start):
    return next(c for c in nb.cells if c.source.startswith(start))


def error_of(cell):
    errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
    assert len(errors) == 1, f"expected one error in {cell.source[:40]!r}, got {cell.outputs}"
    return errors[0], plain("\n".join(errors[0].traceback))


def plain(text):
    """Text without terminal colours, its lines joined (the hint is wrapped to 78 columns)."""
    return " ".join(re.sub(r"\x1b\[[0-9;]*m", "", text).split())


def execute(nb, skip=()):
    """Run ``nb`` in a fresh kernel, cell by cell, skipping the cells whose source starts with
    one of ``skip`` (a student who did not run them); errors are kept, as in JupyterLab."""
    client = NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True)
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and not cell.source.startswith(tuple(skip) or ("\0",)):
                client.execute_cell(cell, index)
    return nb


MAKE_LIST = "def make_list(n):\n    return list(range(n))\n"
TWICE = "def twice(x):\n    return 2 * x\n"


def test_names_a_cell_defines_and_needs_come_from_its_syntax():
    """Does the build read which names a cell makes and which it needs before making them?"""
    seen = scan("%matplotlib inline\nfrom math import *\nimport numpy as np\n"
                "x = [v * k for v in range(3)]\ny = x + z\nx += 1\n"
                "def f(a=default):\n    return hidden\nfor i in items:\n    pass\n")
    assert seen.defines == ["np", "x", "y", "f", "i"]
    assert seen.needs == ["get_ipython", "range", "k", "z", "default", "items"]   # the magic too
    assert seen.stars == ["math"]
    assert "hidden" in seen.mentions and "hidden" not in seen.needs


def test_blank_exercise_names_the_exercise_in_later_errors():
    """Left blank, does an exercise's cascade of NameErrors say to finish that exercise?"""
    nb = execute(answered(toy_release(), twice=TWICE))
    error, text = error_of(by_source(nb, "total = sum(numbers)"))
    assert (error.ename, error.evalue) == ("NameError", "name 'numbers' is not defined")
    assert "Hint: `numbers` is made by the cells of exercise `make_list`" in text
    assert 'section "1. Making things"' in text
    error, text = error_of(by_source(nb, "assert twice(total)"))
    assert (error.ename, error.evalue) == ("NameError", "name 'total' is not defined")
    assert "`total` needs `numbers`, which is made by the cells of exercise `make_list`" in text
    # The exercise's own self-check fails with the stub's error, which needs no hint.
    error, text = error_of(by_source(nb, "numbers = make_list(3)"))
    assert error.ename == "NotImplementedError" and "Hint:" not in text


def test_skipped_cell_after_a_finished_exercise_is_the_one_named():
    """Exercise done but the cell after it not run: is that cell named, not the exercise?"""
    nb = execute(answered(toy_release(), make_list=MAKE_LIST, twice=TWICE),
                 skip=["total = sum(numbers)"])
    _, text = error_of(by_source(nb, "assert twice(total)"))
    assert "`total` is made by the cell `total = sum(numbers)`" in text
    assert "exercise `make_list`" not in text


def test_answer_cell_not_run_names_the_answer():
    """An answer cell never run: does the hint send the student to write and run it?"""
    nb = execute(answered(toy_release(), make_list=MAKE_LIST), skip=["def twice"])
    _, text = error_of(by_source(nb, "assert twice(total)"))
    assert "`twice` is made by your answer to exercise `twice`" in text


def test_cell_that_calls_a_blank_answer_names_that_exercise():
    """A plain cell that stopped inside a blank answer: does the hint name the cell and say
    which exercise to finish if it stops again?"""
    nb = execute(answered(toy_release(), make_list=MAKE_LIST))
    assert error_of(by_source(nb, "doubled = twice(3)"))[0].ename == "NotImplementedError"
    _, text = error_of(by_source(nb, "print(doubled)"))
    assert ("`doubled` is made by the cell `doubled = twice(3)` (section \"2. Using them\"): run "
            "it; if it stops there, finish exercise `twice` first") in text


def test_star_import_not_run_names_the_setup_cell():
    """A name from `from ... import *` before that cell ran: is the setup cell named?"""
    nb = execute(answered(toy_release(), make_list=MAKE_LIST, twice=TWICE), skip=["import math"])
    _, text = error_of(by_source(nb, "root = sqrt(total)"))
    assert "`sqrt` comes from the setup cell with `from math import *`" in text


def test_unknown_name_gets_no_hint_and_a_full_notebook_no_output():
    """A typo gets no (wrong) hint; with every answer right, does the hint cell stay silent?"""
    nb = execute(answered(toy_release(), make_list=MAKE_LIST, twice=TWICE))
    hint_cell = next(c for c in nb.cells if c.get("id") == HINTS_MARK)
    assert hint_cell.outputs == []
    error, text = error_of(by_source(nb, "print(totl)"))
    assert error.evalue == "name 'totl' is not defined" and "Hint:" not in text
    others = [c for c in nb.cells if c.cell_type == "code" and c.source != "print(totl)"]
    assert [o for c in others for o in c.outputs if o.output_type == "error"] == []


def test_release_hint_tables_name_only_what_students_can_see():
    """Does no hint table name something that only a solution block defines?"""
    for path in sorted(RELEASE.glob("*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        hints = [c for c in nb.cells if c.get("id") == HINTS_MARK]
        assert len(hints) == 1, f"{path.name}: expected one hint cell"
        assert hints[0].metadata.get("editable") is False
        rest = "\n".join(c.source for c in nb.cells if c is not hints[0])
        table = hints[0].source.split("cells=[", 1)[1].split("stars=", 1)[0]
        rows = ast.literal_eval("[" + table.rsplit("]", 1)[0] + "]")
        names = {n for row in rows for n in row[3].split()}
        assert names and {n for n in names if n not in rest} == set(), path.name


def test_hint_cell_costs_no_technique_point():
    """Does the hint cell never cost an answer a technique point? The grader's technique checks
    read every cell without a grade id as the student's (a first, unlocked version's `getattr`
    and `import sys` cost 28 -> 26.9 on the a1 reference): it is locked, and its code has
    nothing those checks flag even where it loses its lock (an old gradebook)."""
    from mnistkit.grading import source_checks
    path = RELEASE / A1 / "pixel_similarity.ipynb"
    nb = nbformat.read(path, as_version=4)
    hint = next(c for c in nb.cells if c.get("id") == HINTS_MARK)
    assert hint.metadata.nbgrader.locked
    tree = source_checks.parse_cell(hint.source)
    assert source_checks.evasions(source_checks.FunctionCode("cell", {"cell": tree},
                                                             hint.source)) == []
    for exercise in ("odd_doubled", "mnist_distance"):
        assert source_checks._cell_evasions(path, exercise) == [], exercise


@pytest.mark.slow
def test_a1_with_stack_images_blank_says_to_finish_it(tmp_path, mnist_data_dir):
    """Assignment 1, `stack_images` left blank: does the l1_distance self-check's NameError
    (`a_3`) name `stack_images`, and does the reference run with no error and no hint output?"""
    answers = examples.reference_answers(A1)
    blank = examples.with_answers(A1, {k: v for k, v in answers.items() if k != "stack_images"},
                                  tmp_path / "blank")
    nb = nbformat.read(next(blank.glob("*.ipynb")), as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(blank)}}).execute()
    check = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "l1_distance")
    error, text = error_of(check)
    assert (error.ename, error.evalue) == ("NameError", "name 'a_3' is not defined")
    assert "`a_3` needs `stacked_threes`, which is made by the cells of exercise `stack_images`" in text

    full = examples.with_answers(A1, answers, tmp_path / "reference")
    nb = nbformat.read(next(full.glob("*.ipynb")), as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3",
                   resources={"metadata": {"path": str(full)}}).execute()
    assert next(c for c in nb.cells if c.get("id") == HINTS_MARK).outputs == []
    assert [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"] == []


@pytest.mark.slow
def test_nbgrader_validate_still_reports_the_failure(tmp_path):
    """With the hint, does `nbgrader validate` still fail a notebook whose self-check stops on
    a NameError (and show the hint)?"""
    nb = answered(toy_release(), twice=TWICE, make_list="")
    path = tmp_path / "toy.ipynb"
    nbformat.write(nb, str(path))
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "validate", str(path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    out = plain(proc.stdout + proc.stderr)
    assert "VALIDATION FAILED" in out, out
    assert "NameError: name 'make_list' is not defined" in out
    assert "your answer to exercise `make_list`" in out
