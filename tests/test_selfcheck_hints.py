"""Working through a notebook: a NameError says which earlier exercise or cell to finish first.

The release's error-hint cell (mnistkit/selfcheck_hints.py), a few locked lines that import the
``error_hints.py`` shipped beside the notebook, runs in a real Jupyter kernel here (nbclient), on
a small notebook made for the test and on the real assignment 1.
"""
import copy
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook
from nbgrader.preprocessors import ClearSolutions, ComputeChecksums

from mnistkit import cells, examples
from mnistkit.paths import RELEASE
from mnistkit.selfcheck_hints import (HINTS_GRADE_ID, HINTS_MARK, HINTS_MODULE, AddErrorHints,
                                      hint_table_of, scan)

A1 = "a1_pixel_similarity"


def toy_source(extra=()):
    """An instructor notebook: exercise make_list makes `numbers`, a cell after it makes
    `total` from them, exercise twice uses `total`, a cell after it calls `twice`; then the
    plain cells ``extra`` (sources)."""
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
        *[new_code_cell(source) for source in extra],
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


MODULE_KEY = "test-error-hints-module"     # the toy's error_hints.py, carried in its metadata


def toy_release(extra=()):
    """The toy notebook as students get it: hint cell added, solutions cleared, checksums. The
    module the build ships beside it (``error_hints.py``) rides in its metadata, for ``execute``
    and ``write_toy`` to put beside it."""
    resources = {}
    nb, resources = AddErrorHints().preprocess(toy_source(extra), resources)
    nb, _ = ClearSolutions().preprocess(nb, {})
    nb, _ = ComputeChecksums().preprocess(nb, {})
    nb.metadata[MODULE_KEY] = resources["outputs"][HINTS_MODULE].decode()
    return nb


def write_toy(nb, folder, name="toy.ipynb"):
    """The toy release as a student's folder: the notebook and error_hints.py beside it."""
    folder = Path(folder)
    nb = copy.deepcopy(nb)
    (folder / HINTS_MODULE).write_text(nb.metadata.pop(MODULE_KEY))
    nbformat.write(nb, str(folder / name))
    return folder / name


def answered(nb, **answers):
    nb = copy.deepcopy(nb)
    examples.fill_answers(nb, answers)
    return nb


def by_source(nb, start):
    return next(c for c in nb.cells if c.source.startswith(start))


def error_of(cell):
    errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
    assert len(errors) == 1, f"expected one error in {cell.source[:40]!r}, got {cell.outputs}"
    return errors[0], plain("\n".join(errors[0].traceback))


def hint_of(error):
    """The hint under an error output, line by line as shown (without terminal colours); []
    when there is none. The hint is a note, printed last."""
    lines = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(error.traceback)).splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Hint: ")]
    return [line.rstrip() for line in lines[starts[-1]:]] if starts else []


def assert_short(error):
    """A hint that repeats a cause already explained: one or two lines of 78 columns at most."""
    lines = hint_of(error)
    assert 1 <= len(lines) <= 2 and max(map(len, lines)) <= 78, lines
    assert "Run All Above" not in " ".join(lines), lines


def plain(text):
    """Text without terminal colours, its lines joined (the hint is wrapped to 78 columns)."""
    return " ".join(re.sub(r"\x1b\[[0-9;]*m", "", text).split())


def execute(nb, skip=(), module=True):
    """Run ``nb`` in a fresh kernel, cell by cell, skipping the cells whose source starts with
    one of ``skip`` (a student who did not run them); errors are kept, as in JupyterLab. The
    kernel runs in a folder of its own, with the toy's error_hints.py unless ``module`` is
    False."""
    folder = Path(tempfile.mkdtemp(prefix="toy-hints-"))
    text = nb.metadata.pop(MODULE_KEY, None)
    if module and text:
        (folder / HINTS_MODULE).write_text(text)
    client = NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(folder)}})
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
    """Left blank, does an exercise's self-check say the answer is not written yet, and does
    each NameError it causes name that exercise in a line or two?"""
    nb = execute(answered(toy_release(), twice=TWICE))
    # The exercise's own self-check stops inside the blank answer: the cause, said in full.
    error, text = error_of(by_source(nb, "numbers = make_list(3)"))
    assert (error.ename, error.evalue) == ("NotImplementedError", "")
    assert ("Hint: `make_list` is not written yet: its answer cell (section \"1. Making things\") "
            "still raises NotImplementedError. Write your code there in place of `raise "
            "NotImplementedError()`, run it, then run this cell again.") in text
    # The NameErrors that follow come from the same cause: each names it, briefly.
    error, text = error_of(by_source(nb, "total = sum(numbers)"))
    assert (error.ename, error.evalue) == ("NameError", "name 'numbers' is not defined")
    assert ("Hint: `numbers` is made by the cells of exercise `make_list`: finish that exercise "
            "first.") in text
    assert_short(error)
    error, text = error_of(by_source(nb, "assert twice(total)"))
    assert (error.ename, error.evalue) == ("NameError", "name 'total' is not defined")
    assert "`total` needs `numbers`, which is made by the cells of exercise `make_list`" in text
    assert_short(error)


def test_first_name_error_of_a_cause_gets_the_full_hint():
    """When a NameError is the first error of its cause, does its hint say where the exercise
    is and what to run after it?"""
    nb = execute(answered(toy_release(), twice=TWICE), skip=["numbers = make_list(3)"])
    error, text = error_of(by_source(nb, "total = sum(numbers)"))
    assert ("Hint: `numbers` is made by the cells of exercise `make_list` (section \"1. Making "
            "things\"): finish that exercise and run its cells, then the cells below it down to "
            "this one (Run > Run All Above Selected Cell), then run this one again.") in text
    assert max(map(len, hint_of(error))) <= 78
    assert_short(error_of(by_source(nb, "assert twice(total)"))[0])


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
    """A plain cell not run, which calls an answer: does the hint name the cell and say which
    exercise to finish if it stops there?"""
    nb = execute(answered(toy_release(), make_list=MAKE_LIST, twice=TWICE),
                 skip=["doubled = twice(3)"])
    _, text = error_of(by_source(nb, "print(doubled)"))
    assert ("`doubled` is made by the cell `doubled = twice(3)` (section \"2. Using them\"): run "
            "it; if it stops there, finish exercise `twice` first") in text


def test_cell_stopped_by_a_blank_answer_counts_as_that_cause():
    """A plain cell that stopped inside a blank answer: does it say so, does the NameError it
    causes name that exercise briefly, and only while that answer is still blank?"""
    extra = ["def twice(x):\n    return 2 * x", "print(doubled)"]      # fixed, not re-run
    nb = execute(answered(toy_release(extra), make_list=MAKE_LIST))
    error, text = error_of(by_source(nb, "assert twice(total)"))
    assert error.ename == "NotImplementedError" and "`twice` is not written yet" in text
    error, text = error_of(by_source(nb, "doubled = twice(3)"))
    assert (error.ename, error.evalue) == ("NotImplementedError", "")
    assert "Hint: `twice` is not written yet: its answer cell still raises NotImplementedError." \
        in text
    assert_short(error)
    error, text = error_of(by_source(nb, "print(doubled)"))
    assert ("Hint: `doubled` is made by a cell that cannot run until exercise `twice` is "
            "written.") in text
    assert_short(error)
    _, text = error_of(nb.cells[-1])      # `twice` now written: run the cell, it will not stop
    assert "`doubled` is made by the cell `doubled = twice(3)`" in text
    assert "cannot run until" not in text and "run it" in text


def test_not_implemented_elsewhere_gets_no_hint():
    """A NotImplementedError that is not a blank answer's (a library's, a message of the
    student's own, a helper outside any answer, a cell's own raise): no (wrong) hint?"""
    library = "import codecs\n\ndef twice(x):\n    return codecs.Codec().encode(x)\n"
    extra = ["raise NotImplementedError()",
             "def helper():\n    raise NotImplementedError()\n\nhelper()",
             "def make_list(n):\n    raise NotImplementedError('ask me later')\n\nmake_list(2)"]
    nb = execute(answered(toy_release(extra), make_list=MAKE_LIST, twice=library))
    for cell in [by_source(nb, "assert twice(total)"), *nb.cells[-3:]]:
        error, text = error_of(cell)
        assert error.ename == "NotImplementedError" and "Hint:" not in text, cell.source


def test_blank_answer_seen_by_its_name_outside_notebook_code():
    """When the raising frame is not the notebook's own code (a function made by `exec` with
    other globals), is the blank answer still found by its function's name?"""
    extra = ["space = {}\nexec('def make_list(n):\\n    raise NotImplementedError()', space)\n"
             "space['make_list'](2)"]
    nb = execute(answered(toy_release(extra), make_list=MAKE_LIST, twice=TWICE))
    error, text = error_of(nb.cells[-1])
    assert (error.ename, error.evalue) == ("NotImplementedError", "")
    assert "Hint: `make_list` is not written yet" in text


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
    """Is the hint cell a few locked lines, and does no hint table (in the error_hints.py shipped
    beside the notebook) name something that only a solution block defines?"""
    for path in sorted(RELEASE.glob("*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        hints = [c for c in nb.cells if c.get("id") == HINTS_MARK]
        assert len(hints) == 1, f"{path.name}: expected one hint cell"
        assert hints[0].metadata.get("editable") is False
        code = [ln for ln in hints[0].source.splitlines() if ln.strip() and not ln.startswith("#")]
        assert len(code) <= 4 and f"install({path.stem!r})" in hints[0].source, hints[0].source
        rest = "\n".join(c.source for c in nb.cells if c is not hints[0])
        tables = hint_table_of((path.parent / HINTS_MODULE).read_text())
        assert set(tables) == {p.stem for p in path.parent.glob("*.ipynb")}, path.name
        names = {n for row in tables[path.stem]["cells"] for n in row[3].split()}
        assert names and {n for n in names if n not in rest} == set(), path.name


def test_without_its_module_the_hint_cell_does_nothing_and_never_fails():
    """A notebook copied without error_hints.py (or where it cannot be imported, as in the
    grading sandbox): does the hint cell run without an error, errors stay plain, and does a
    technique self-check's line say it cannot tell instead of failing?"""
    nb = answered(toy_release(extra=['_grader_can_read("twice")']), twice=TWICE)
    nb = execute(nb, module=False)
    hint_cell = next(c for c in nb.cells if c.get("id") == HINTS_MARK)
    assert hint_cell.outputs == []
    error, text = error_of(by_source(nb, "total = sum(numbers)"))
    assert error.ename == "NameError" and "Hint:" not in text
    assert "no check of what the grader reads" in "".join(o.get("text", "") for o in nb.cells[-1].outputs)


def test_graded_the_module_installs_nothing(monkeypatch):
    """Under a grader (``NBGRADER_EXECUTION=autograde``, as the sandbox and nbgrader's autograde
    set it), does ``install`` leave IPython alone, and the self-check's line do nothing?"""
    text = (RELEASE / A1 / HINTS_MODULE).read_text()
    space = {}
    exec(compile(text, HINTS_MODULE, "exec"), space)
    calls = []
    space["_install_error_hints"] = lambda **table: calls.append(table)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    can_read = space["install"]("pixel_similarity")
    assert calls == [] and can_read("mnist_distance") is None
    monkeypatch.setenv("NBGRADER_EXECUTION", "validate")
    space["install"]("pixel_similarity")
    assert [sorted(t) for t in calls] == [["cells", "sections", "stars"]]


def test_hint_cell_costs_no_technique_point(tmp_path):
    """Does the hint cell never cost an answer a technique point? It is a locked cell of the
    kit's, which the technique checks never count; and its few lines only import the shipped
    module (whose handler reaches the kernel's namespace), so even unlocked nothing counts."""
    from mnistkit import examples
    from mnistkit.grading import source_checks
    path = RELEASE / A1 / "pixel_similarity.ipynb"
    nb = nbformat.read(path, as_version=4)
    hint = next(c for c in nb.cells if c.get("id") == HINTS_MARK)
    assert hint.metadata.nbgrader.locked and hint.metadata.nbgrader.grade_id == HINTS_GRADE_ID
    # Its few lines only import the shipped module: even read as the student's, nothing counts.
    assert source_checks.suspects(source_checks.Notebook.read([(None, hint.source)])) == []
    examples.fill_answers(nb, examples.reference_answers(A1))
    filled = tmp_path / "filled.ipynb"
    nbformat.write(nb, filled)
    for exercise in ("odd_doubled", "mnist_distance"):
        assert source_checks.evasions(source_checks.function_code(filled, exercise)) == [], exercise


def grade_cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def executed_a1(answers, folder, allow_errors=False):
    """Assignment 1 released with ``answers`` into ``folder``, run top to bottom there."""
    examples.with_answers(A1, answers, folder)
    nb = nbformat.read(next(folder.glob("*.ipynb")), as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3", allow_errors=allow_errors,
                   resources={"metadata": {"path": str(folder)}}).execute()
    return nb


@pytest.mark.slow
def test_a1_with_stack_images_blank_says_to_finish_it(tmp_path, mnist_data_dir):
    """Assignment 1, `stack_images` left blank: does its self-check's NotImplementedError say
    that `stack_images` is not written, does every later cell Validate lists name that one
    cause in a line or two, and does the reference run with no error and no hint output?"""
    from nbgrader.validator import Validator
    answers = examples.reference_answers(A1)
    nb = executed_a1({k: v for k, v in answers.items() if k != "stack_images"},
                     tmp_path / "blank", allow_errors=True)
    error, text = error_of(grade_cell(nb, "stack_images"))
    assert (error.ename, error.evalue) == ("NotImplementedError", "")
    assert ('Hint: `stack_images` is not written yet: its answer cell (section "2. A first idea: '
            'pixel similarity") still raises NotImplementedError. Write your code there in place '
            'of `raise NotImplementedError()`, run it, then run this cell again.') in text
    error, text = error_of(grade_cell(nb, "l1_distance"))
    assert (error.ename, error.evalue) == ("NameError", "name 'a_3' is not defined")
    assert ("Hint: `a_3` needs `stacked_threes`, which is made by the cells of exercise "
            "`stack_images`: finish that exercise first.") in text
    # Validate's dialog: nbgrader's own choice of failing cells and its text for each.
    validator = Validator()
    failed = validator._get_failed_cells(nb)
    assert failed[0] is grade_cell(nb, "stack_images") and len(failed) > 1, failed
    for cell in failed[1:]:
        assert "exercise `stack_images`" in plain(validator._extract_error(cell)), cell.source
        assert_short(error_of(cell)[0])

    nb = executed_a1(answers, tmp_path / "reference")
    assert next(c for c in nb.cells if c.get("id") == HINTS_MARK).outputs == []
    assert [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"] == []


@pytest.mark.slow
def test_nbgrader_validate_still_reports_the_failure(tmp_path):
    """With the hint, does `nbgrader validate` still fail a notebook whose self-check stops on
    a NameError (and show the hint)?"""
    nb = answered(toy_release(), twice=TWICE, make_list="")
    path = write_toy(nb, tmp_path)
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "validate", str(path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    out = plain(proc.stdout + proc.stderr)
    assert "VALIDATION FAILED" in out, out
    assert "NameError: name 'make_list' is not defined" in out
    assert "your answer to exercise `make_list`" in out


@pytest.mark.parametrize("added,says", [
    ("", "mnist_distance: the grader can read your code"),
    ("run = exec\n", "the grader cannot read mnist_distance's code: `exec` (in a cell you added)"),
    ("mnist_distance = (lambda f: f)(lambda a, b: (a - b).abs().mean((-1, -2)))\n",
     "`mnist_distance` is last bound by a computed value"),
])
def test_a_technique_self_check_says_when_the_grader_cannot_read_the_answer(tmp_path, added, says):
    """Before handing in (JupyterLab, Validate): does mnist_distance's self-check pass and say
    the grader can read the answer, or fail saying why not, by the grader's own rules
    (``grader_reads.py``, shipped with the assignment), never counting the kit's cells?"""
    release = RELEASE / A1
    nb = nbformat.read(release / "pixel_similarity.ipynb", as_version=4)
    hint = next(c for c in nb.cells if c.get("id") == HINTS_MARK)
    check = grade_cell(nb, "mnist_distance").source
    line = next(ln for ln in check.splitlines() if "_grader_can_read" in ln)
    cells = [hint.source, "import torch\ndef mnist_distance(a, b):\n    return (a - b).abs().mean((-1, -2))\n"]
    cells += [added] if added else []
    cells.append(line)
    shutil.copyfile(release / "grader_reads.py", tmp_path / "grader_reads.py")
    shutil.copyfile(release / HINTS_MODULE, tmp_path / HINTS_MODULE)
    run = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(run, timeout=60, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    last = run.cells[-1]
    text = plain("".join(o.get("text", "") for o in last.outputs) +
                 "\n".join("\n".join(o.traceback) for o in last.outputs if o.output_type == "error"))
    assert says in text, text
    failed = [o for c in run.cells for o in c.outputs if o.output_type == "error"]
    assert len(failed) == (0 if says.endswith("can read your code") else 1), failed
