"""Does the grader read the technique of an answer from the notebook itself, so that what the
student's sandbox reports never decides it (mnistkit.grading.source_checks)?"""
import nbformat
import pytest

from mnistkit.grading import source_checks as sc
from mnistkit.grading.expect import Mismatch


def notebook(tmp_path, *cells):
    nb = nbformat.v4.new_notebook()
    for grade_id, source in cells:
        cell = nbformat.v4.new_code_cell(source)
        if grade_id:
            cell.metadata["nbgrader"] = {"grade_id": grade_id}
        nb.cells.append(cell)
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    return path


CLEAN = ("f-answer", "def f(x):\n    return (x - x.mean()).abs().mean((-1, -2))\n")


def test_a_broadcasting_answer_has_no_loop_and_no_evasion(tmp_path):
    code = sc.function_code(notebook(tmp_path, CLEAN), "f")
    assert sc.python_loops(code) == [] and sc.evasions(code) == []


@pytest.mark.parametrize("body,found", [
    ("return torch.stack([v.abs().mean() for v in x])", "a comprehension"),
    ("out = []\n    for v in x:\n        out.append(v.mean())\n    return out", "a `for` loop"),
    ("return sum(x) / len(x)", "`sum(...)`"),
    ("return helper(x)", "a `while` loop"),               # a loop moved into a helper
    ("return f(x[1:]) if len(x) else 0", "recursion"),
])
def test_loops_are_found_wherever_they_hide(tmp_path, body, found):
    helper = (None, "def helper(x):\n    while False:\n        pass\n    return x\n")
    path = notebook(tmp_path, ("f-answer", f"def f(x):\n    {body}\n"), helper)
    assert found in sc.python_loops(sc.function_code(path, "f"))


@pytest.mark.parametrize("source,found", [
    ("import torch\ndef f(x):\n    with torch._C.DisableTorchFunction():\n        return x\n", "`._C`"),
    ("def f(x):\n    return eval('x.mean()')\n", "`eval(...)`"),
    ("def f(x):\n    import gc\n    return x\n", "`import gc`"),
    ("def f(x):\n    return getattr(x, 'mean')()\n", "`getattr(...)`"),
    ("def f(x):\n    return x.__class__\n", "`.__class__`"),
])
def test_code_the_grader_cannot_read_is_an_evasion(tmp_path, source, found):
    assert found in sc.evasions(sc.function_code(notebook(tmp_path, ("f-answer", source)), "f"))


def test_a_later_cell_that_redefines_the_answer_is_what_gets_read(tmp_path):
    """The namespace holds the last definition: a clean answer cell followed by a looping
    redefinition is graded on the loop."""
    later = (None, "def f(x):\n    return sum(v for v in x)\n")
    assert sc.python_loops(sc.function_code(notebook(tmp_path, CLEAN, later), "f"))


def test_an_evasion_in_any_cell_the_student_writes_counts(tmp_path):
    """`exec` in an added cell could rebind the answer after its clean definition."""
    path = notebook(tmp_path, CLEAN, (None, "exec('f = lambda x: 0')\n"))
    assert "`exec(...)` (in a cell you added)" in sc.evasions(sc.function_code(path, "f"))
    locked = notebook(tmp_path, CLEAN, ("setup-data", "exec('y = 1')\n"))   # restored kit cell
    assert sc.evasions(sc.function_code(locked, "f")) == []


def test_an_evasion_in_another_exercises_answer_costs_that_exercise_only(tmp_path):
    """A forged answer never costs another exercise anything: `import gc` in g's answer cell
    is g's problem, not f's."""
    path = notebook(tmp_path, CLEAN, ("g-answer", "import gc\ndef g(x):\n    return x\n"))
    assert sc.evasions(sc.function_code(path, "f")) == []
    assert "`import gc` (in the cell g-answer)" in sc.evasions(sc.function_code(path, "g"))


@pytest.mark.parametrize("rebinding", ["f = make_f()\n", "from helpers import f\n",
                                       "if True:\n    def f(x):\n        return x\n",
                                       "for f in [len]:\n    pass\n"])
def test_an_answer_last_bound_by_something_unreadable_fails(tmp_path, rebinding):
    with pytest.raises(Mismatch, match="cannot read"):
        sc.function_code(notebook(tmp_path, CLEAN, (None, rebinding)), "f")


def test_a_missing_definition_is_a_mismatch(tmp_path):
    with pytest.raises(Mismatch, match="could not find"):
        sc.function_code(notebook(tmp_path, CLEAN), "g")


@pytest.mark.parametrize("body,found", [
    ("x.clamp_(min=0)", "`.clamp_(...)`"), ("x += 1", "an augmented assignment (`+=`, ...)"),
    ("x[x < 0] = 0", "an assignment into a tensor (`x[...] = ...`)"),
    ("torch.relu(x, out=x)", "`out=`")])
def test_in_place_changes_of_an_argument_are_found(tmp_path, body, found):
    path = notebook(tmp_path, ("f-answer", f"def f(x):\n    {body}\n    return x\n"))
    assert found in sc.in_place_operations(sc.function_code(path, "f"))
    fresh = notebook(tmp_path, ("f-answer", "def f(x):\n    y = x.clone()\n    y += 1\n    return y\n"))
    assert sc.in_place_operations(sc.function_code(fresh, "f")) == []
