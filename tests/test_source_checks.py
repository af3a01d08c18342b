"""Does the grader judge technique on the code it questions, and nothing else
(mnistkit.grading.source_checks)? Each way around the checks has honest twins that keep
every point: ordinary notebook habits cost nothing anywhere."""
import nbformat
import pytest

from mnistkit.grading import source_checks as sc
from mnistkit.grading.expect import Mismatch

from .corpus import boilerplate

_counter = [0]


def notebook(tmp_path, *cells):
    """A notebook of code cells ``(grade_id, source)``; ``setup-*``/``f``-like ids are the kit's."""
    nb = nbformat.v4.new_notebook()
    for grade_id, source in cells:
        cell = nbformat.v4.new_code_cell(source)
        if grade_id:
            cell.metadata["nbgrader"] = {"grade_id": grade_id}
        nb.cells.append(cell)
    _counter[0] += 1
    path = tmp_path / f"nb{_counter[0]}.ipynb"
    nbformat.write(nb, path)
    return path


CLEAN = ("f-answer", "def f(x):\n    return (x - x.mean()).abs().mean((-1, -2))\n")
ADDED = None       # a cell the student added: no grade id


def judged(tmp_path, *cells, name="f"):
    """(loops, evasions) the grader finds in ``name``'s questioned code."""
    code = sc.function_code(notebook(tmp_path, *cells), name)
    return sc.python_loops(code), sc.evasions(code)


# ---- honest habits cost nothing ----------------------------------------------------------
# The cells learners keep (the honest corpus's, graded for real in test_grade_corpus_real)
KAGGLE, COLAB = boilerplate.KAGGLE_FIRST_CELL, boilerplate.COLAB_SETUP
NOTES = boilerplate.PIP_AND_VERSIONS + boilerplate.NOTES_TO_STDERR + boilerplate.PLOT
HONEST_ANSWERS = {
    "broadcast over the last two axes": "def f(x):\n    return (x - x.mean()).abs().mean(dim=tuple(range(-2, 0)))\n",
    "a helper in the same cell": "def _diff(x):\n    return (x - x.mean()).abs()\n\ndef f(x):\n    return _diff(x).mean((-1, -2))\n",
    "type hints and a docstring": "def f(x: 'Tensor') -> 'Tensor':\n    \"\"\"Mean absolute difference.\"\"\"\n    diff = x - x.mean()\n    return diff.abs().mean((-1, -2))\n",
    "a loop over fixed axes": "def f(x):\n    d = (x - x.mean()).abs()\n    for axis in (-1, -1):\n        d = d.mean(axis)\n    return d\n",
    "an alias of a clean def": "def _impl(x):\n    return (x - x.mean()).abs().mean((-1, -2))\n\nf = _impl\n",
    "numpy-style sum over a shape": "def f(x):\n    n = x.shape[-1] * x.shape[-2]\n    return (x - x.mean()).abs().sum((-1, -2)) / n\n",
    "printing and timing inside": "def f(x):\n    out = (x - x.mean()).abs().mean((-1, -2))\n    print('shape', out.shape)\n    return out\n%time f(torch.zeros(2, 3, 3))\n",
}


@pytest.mark.parametrize("answer", HONEST_ANSWERS.values(), ids=HONEST_ANSWERS)
@pytest.mark.parametrize("added", [KAGGLE, COLAB, NOTES], ids=["kaggle", "colab", "notes"])
def test_honest_answers_and_boilerplate_cells_cost_nothing(tmp_path, answer, added):
    assert judged(tmp_path, (ADDED, added), ("f-answer", answer), (ADDED, added)) == ([], [])


def test_a_helper_in_its_own_cell_is_read_with_the_answer(tmp_path):
    path = notebook(tmp_path, (ADDED, "def helper(x):\n    return x.abs()\n"),
                    ("f-answer", "def f(x):\n    return helper(x - x.mean()).mean((-1, -2))\n"))
    code = sc.function_code(path, "f")
    assert set(code.nodes) == {"f", "helper"} and sc.python_loops(code) == []
    assert "def helper(x)" in sc.rebind_source(code) and "def f(x)" in sc.rebind_source(code)


def test_a_parameter_that_shadows_a_global_is_not_that_global(tmp_path):
    loopy = "means = [m for m in range(100)]\ndef build():\n    return [i for i in range(100)]\ntable = build()\n"
    assert judged(tmp_path, (ADDED, loopy),
                  ("f-answer", "def f(means, table):\n    return (means - table).abs()\n")) == ([], [])


def test_data_loaded_with_a_loop_is_data(tmp_path):
    load = "stack = torch.stack([torch.zeros(3, 3) for _ in range(10)])\nmean = stack.mean(0)\n"
    assert judged(tmp_path, (ADDED, load), ("f-answer", "def f(x):\n    return (x - mean).abs()\n")) == ([], [])


def test_the_kits_own_cells_are_never_the_students(tmp_path):
    hints = ("setup-error-hints", "import sys\nexec('x = 1')\nget_ipython().user_ns['y'] = 2\n")
    assert judged(tmp_path, hints, CLEAN) == ([], [])


# ---- what the deny-list missed -----------------------------------------------------------
@pytest.mark.parametrize("cells,found", [
    ([("f-answer", "def _looped(x):\n    return sum(r for r in x)\nimpl = _looped\ndef f(x):\n    return impl(x)\n")],
     "a comprehension"),
    ([(ADDED, "def _looped(x):\n    return torch.stack([r.abs() for r in x])\n"),
      ("f-answer", "impl = _looped\ndef f(x):\n    return impl(x)\n")], "a comprehension"),
    ([("f-answer", "import functools\ndef f(x):\n    return functools.reduce(lambda a, b: a + b, x)\n")],
     "`functools.reduce`"),
    ([("f-answer", "from functools import reduce as fold\ndef f(x):\n    return fold(lambda a, b: a + b, x)\n")],
     "`functools.reduce`"),
    ([("f-answer", "import itertools as it\ndef f(x):\n    return torch.stack(list(it.starmap(torch.add, zip(x, x))))\n")],
     "`itertools.starmap`"),
    ([("f-answer", "import numpy as np\n@np.vectorize\ndef g(v):\n    return abs(v)\ndef f(x):\n    return g(x)\n")],
     "`numpy.vectorize`"),
    ([("f-answer", "per_image = torch.vmap(lambda im: im.abs().mean())\ndef f(x):\n    return per_image(x)\n")],
     "`torch.vmap`"),
    ([("f-answer", "def looping(fn):\n    def wrapper(x):\n        return torch.stack([fn(r) for r in x])\n"
                   "    return wrapper\n@looping\ndef f(x):\n    return x.abs().mean()\n")], "a comprehension"),
    ([("f-answer", "def f(x):\n    return x.clone().apply_(abs)\n")], "`.apply_()`"),
    ([("f-answer", "def f(x):\n    return torch.stack([r.abs().mean() for r in x])\n")], "a comprehension"),
    ([("f-answer", "def f(x):\n    return sum(x) / len(x)\n")], "`sum(...)`"),
    ([("f-answer", "def f(x):\n    out = []\n    for i in range(x.shape[0]):\n        out.append(x[i].mean())\n"
                   "    return torch.stack(out)\n")], "a `for` loop"),
], ids=["alias-same-cell", "alias-helper-cell", "functools.reduce", "reduce-renamed", "itertools",
        "np.vectorize", "torch.vmap", "looping-decorator", "apply_", "comprehension", "sum-over-tensor",
        "range-over-batch"])
def test_a_loop_reached_any_way_is_a_loop(tmp_path, cells, found):
    loops, _ = judged(tmp_path, *cells)
    assert found in loops


@pytest.mark.parametrize("swap", [
    "run = exec\nrun('def f(x):\\n    return torch.stack([r.abs() for r in x])')\n",
    "get_ipython().user_ns['f'] = lambda x: torch.stack([r.abs() for r in x])\n",
    "globals()['f'] = lambda x: x\n",
    "import sys\nsys.modules['__main__'].f = lambda x: x\n",
    "g = vars()\ng['f'] = print\n",
    "b = __builtins__\n",
    "import gc\n",
    "import importlib\n",
    "%run other_notebook.py\n",
    "ns = ().__class__.__base__.__subclasses__()\n",
    "import operator\nfind = operator.attrgetter('__globals__')\n",
])
def test_code_that_can_replace_any_answer_costs_the_technique(tmp_path, swap):
    """The grader re-binds what it read before questioning, but code like this can still change
    anything: the technique point of every exercise (dynamic code reaches all code)."""
    _, evasions = judged(tmp_path, CLEAN, (ADDED, swap))
    assert evasions
    # and in another exercise's answer cell, the same
    _, evasions = judged(tmp_path, CLEAN, ("g-answer", swap))
    assert evasions


def test_a_function_that_rebinds_the_answer_costs_only_that_answer(tmp_path):
    later = ("def later():\n    global f\n    f = lambda x: torch.stack([r for r in x])\n"
             "import threading\nthreading.Timer(5, later).start()\n")
    other = ("h-answer", "def h(x):\n    return x + 1\n")
    path = notebook(tmp_path, CLEAN, other, (ADDED, later))
    assert "`global f` in `later` (in a cell you added)" in sc.evasions(sc.function_code(path, "f"))
    assert sc.evasions(sc.function_code(path, "h")) == []


def test_patching_a_library_function_costs_the_answers_that_use_it(tmp_path):
    patch = "def slow_mean(self, *dims):\n    return torch.stack([r.sum() for r in self])\ntorch.Tensor.mean = slow_mean\n"
    other = ("h-answer", "def h(x):\n    return x.abs() + 1\n")
    path = notebook(tmp_path, CLEAN, other, (ADDED, patch))
    assert any("torch.Tensor.mean" in e for e in sc.evasions(sc.function_code(path, "f")))
    assert sc.evasions(sc.function_code(path, "h")) == []


def test_an_answer_the_grader_cannot_read_says_why(tmp_path):
    with pytest.raises(Mismatch, match="computed value"):
        sc.function_code(notebook(tmp_path, ("f-answer", "f = make_function()\n")), "f")
    with pytest.raises(Mismatch, match="could not find"):
        sc.function_code(notebook(tmp_path, CLEAN), "g")
    with pytest.raises(Mismatch, match="block"):
        sc.function_code(notebook(tmp_path, ("f-answer", "if True:\n    def f(x):\n        return x\n")), "f")
    own_module = "%%writefile mine.py\ndef g(x):\n    return [r for r in x]\n"
    path = notebook(tmp_path, (ADDED, own_module),
                    ("f-answer", "from mine import g\ndef f(x):\n    return g(x)\n"))
    with pytest.raises(Mismatch, match="module of your own"):
        sc.function_code(path, "f")


def test_the_last_binding_is_questioned(tmp_path):
    later = (ADDED, "def f(x):\n    return torch.stack([r.mean() for r in x])\n")
    assert sc.python_loops(sc.function_code(notebook(tmp_path, CLEAN, later), "f"))


@pytest.mark.parametrize("body,found", [
    ("x.clamp_(0)\n    return x", "`.clamp_(...)`"),
    ("x[x < 0] = 0\n    return x", "an assignment into a tensor (`x[...] = ...`)"),
    ("x += 1\n    return x", "an augmented assignment (`+=`, ...)"),
    ("torch.add(x, 1, out=x)\n    return x", "`out=`"),
])
def test_in_place_changes_of_an_argument_are_found(tmp_path, body, found):
    path = notebook(tmp_path, ("f-answer", f"def f(x):\n    {body}\n"))
    assert found in sc.in_place_operations(sc.function_code(path, "f"))
    fresh = notebook(tmp_path, ("f-answer", "def f(x):\n    y = x.clone()\n    y += 1\n    return y\n"))
    assert sc.in_place_operations(sc.function_code(fresh, "f")) == []


def test_the_self_check_reads_the_same_rules(tmp_path):
    """What a self-check tells the student before they hand in (``cannot_read``)."""
    assert sc.cannot_read([CLEAN], "f") == []
    assert sc.cannot_read([("f-answer", "f = make()\n")], "f")[0].startswith("`f` is last bound")
    assert any("exec" in why for why in sc.cannot_read([CLEAN, (ADDED, "exec('')")], "f"))


def test_the_students_rules_are_the_graders():
    """Every notebook with a technique check states the rules exactly as the grader has them
    (the release's copy is generated from RULES_MARKDOWN: mnistkit.release_banner)."""
    from mnistkit.paths import RELEASE
    for path in sorted(RELEASE.glob("*/*.ipynb")):
        texts = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"]
        assert sc.RULES_MARKDOWN.strip() in [t.strip() for t in texts], path.name
