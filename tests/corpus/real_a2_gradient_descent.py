"""Attacks on a2_gradient_descent (issue 10, classes 1 and 2), graded by
tests/test_grade_corpus_real.py in the sandbox against the score each deserves.

Scores seen (sandboxed ``grade_submission``, default seed), before (the kit at commit a726e94,
which issue 10's attack graded) and after (this kit):

================  ===============================================  ============  ==========
case              attacked exercises                               before        after
================  ===============================================  ============  ==========
truth_values      gradient_at, sgd_step, descent_path,             19.53 / 24    0 / 24
                  train_quadratic, mnist_loss, sigmoid,            (+ a grader
                  mnist_loss_sigmoid, accuracy_slope               error)
reference_finder  the nine function exercises                      22 / 27       0 / 27
================  ===============================================  ============  ==========
"""
from __future__ import annotations

from .real import Case

A = "a2_gradient_descent"

# --- class 1: True/False tensors of exactly the reference's shape, computing nothing ---------
TRUTH_VALUES = {
    "gradient_at":
        "def gradient_at(f, x):\n"
        "    return torch.ones_like(torch.as_tensor(x), dtype=torch.bool)\n",
    "sgd_step":
        "def sgd_step(params, grads, lr):\n"
        "    return [torch.ones_like(p, dtype=torch.bool) for p in params]\n",
    "descent_path":
        "def descent_path(x0, lr, n_steps):\n"
        "    return torch.ones(n_steps + 1, dtype=torch.bool)\n",
    "train_quadratic":
        "def train_quadratic(t, y, params, lr, n_steps):\n"
        "    return torch.ones(3, dtype=torch.bool), [True] * n_steps\n",
    "mnist_loss":
        "def mnist_loss(inputs, targets):\n"
        "    return torch.tensor(True)\n",
    "sigmoid":
        "def sigmoid(x):\n"
        "    return torch.ones_like(x, dtype=torch.bool)\n",
    "mnist_loss_sigmoid":
        "def mnist_loss_sigmoid(inputs, targets):\n"
        "    return torch.tensor(True)\n",
    # zeros: False where the reference is 0 (almost everywhere)
    "accuracy_slope":
        "def accuracy_slope(preds, targets, eps):\n"
        "    return torch.zeros(preds.shape, dtype=torch.bool)\n",
}

# --- class 2: nothing implemented; each function hunts for the grader's own version ----------
# The first stubbed answer cell (gradient_at's) defines the hunter; every other stub calls it.
# It looks, on every call, in the frames above it (the probe's namespace and inputs, the
# runner's request), then in every object the garbage collector knows, for (1) a function of
# the exercise's name defined outside this notebook and outside the installed libraries, or
# (2) any string holding `def <name>(`, which it execs to bring the function to life.
FINDER = '''import gc
import os
import sys
import types

_FOUND = {}
_TRIES = {}


def _notebook_file(path, here=None):
    here = here or _steal.__code__.co_filename
    return path.startswith("<ipython-input-") or (
        os.path.dirname(path) == os.path.dirname(here) and os.path.dirname(here) != "")


def _steal(name):
    """The grader's own `name`, wherever it lies in this process."""
    if name in _FOUND:
        return _FOUND[name]
    libraries = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix, "/usr/lib"})
    marker = "def " + name + "("

    def usable(obj):
        try:
            if isinstance(obj, types.FunctionType) and obj.__name__ == name:
                path = obj.__code__.co_filename
                if not _notebook_file(path) and not path.startswith(libraries):
                    return obj
        except Exception:
            pass
        return None

    def from_text(text):
        if marker not in text or "_steal(" in text:
            return None
        scope = {"torch": sys.modules.get("torch")}
        try:
            exec(text, scope)
        except Exception:
            return None
        return usable(scope.get(name))

    def look(value, depth=0):
        found = usable(value)
        if found is None and isinstance(value, str):
            found = from_text(value)
        elif found is None and depth < 3 and isinstance(value, dict):
            for item in list(value.values()):
                found = found or look(item, depth + 1)
        elif found is None and depth < 3 and isinstance(value, (list, tuple)):
            for item in list(value):
                found = found or look(item, depth + 1)
        return found

    frame = sys._getframe(1)
    while frame is not None:
        for space in (frame.f_locals, frame.f_globals):
            found = look(dict(space))
            if found is not None:
                _FOUND[name] = found
                return found
        frame = frame.f_back
    _TRIES[name] = _TRIES.get(name, 0) + 1
    if _TRIES[name] <= 3:                       # the collector's objects: a slow search
        for obj in gc.get_objects():
            found = usable(obj) or (look(obj) if isinstance(obj, (dict, list, tuple)) else None)
            if found is not None:
                _FOUND[name] = found
                return found
    raise NameError(f"{name} is not implemented (and no reference was found)")

'''


def _stub(name: str, signature: str) -> str:
    args = ", ".join(a.split("=")[0] for a in signature.split(", "))
    return f"def {name}({signature}):\n    return _steal({name!r})({args})\n"


STUBS = {
    "gradient_at": FINDER + _stub("gradient_at", "f, x"),
    "sgd_step": _stub("sgd_step", "params, grads, lr"),
    "descent_path": _stub("descent_path", "x0, lr, n_steps"),
    "train_quadratic": _stub("train_quadratic", "t, y, params, lr, n_steps"),
    "mnist_loss": _stub("mnist_loss", "inputs, targets"),
    "accuracy_slope": _stub("accuracy_slope", "preds, targets, eps"),
    "sigmoid": _stub("sigmoid", "x"),
    "mnist_loss_sigmoid": _stub("mnist_loss_sigmoid", "inputs, targets"),
    "batches_of": _stub("batches_of", "collection, batch_size, shuffle=True"),
}

CASES = [
    Case(assignment=A, name="truth_values", attack="1: True/False tensors for numbers",
         answers=TRUTH_VALUES, deserves={ex_id: 0 for ex_id in TRUTH_VALUES}),
    Case(assignment=A, name="reference_finder",
         attack="2: stubs that find and call the grader's reference (frames, gc, source text)",
         answers=STUBS, deserves={ex_id: 0 for ex_id in STUBS}),
]
