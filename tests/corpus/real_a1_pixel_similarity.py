"""Attacks on a1_pixel_similarity (issue 10, classes 1 to 3), for tests/test_grade_corpus_real.py.

Two sandboxed gradings:

* ``truth_values`` (class 1): functions that compute nothing and return True/False tensors of the
  right shape. The old comparisons cast both sides to bool when either was bool, so a reference
  without zeros matched `True`: l1_distance, rmse_distance, doubled_corner and mnist_distance
  earned full marks (while their own visible self-checks failed). `is_3` and
  `baseline_accuracy` keep the reference's answers here, so this grading also shows that a
  broken `mnist_distance` costs them nothing (their checks answer it from the grader's tables).
* ``reference_finder_forged_runner`` (classes 2 and 3): an `is_3` that implements nothing but
  hunts the grader's reference (the old hidden tests defined `_ref_is_3` in the probe) through
  the calling frames and `gc`; and an `mnist_distance` that loops over the batch in Python and
  hides it: it switches torch's function hooks off (`torch._C.DisableTorchFunction`), blinds
  any `TorchFunctionMode` counter it finds with `gc`, rewrites any "counts" the probe collects,
  and patches the runner's wire so every `False` it sends is `True`. Its values are right, so
  it deserves everything but its technique check.
"""
from __future__ import annotations

from . import real
from .real import Case

ASSIGNMENT = "a1_pixel_similarity"


def share_without(exercise: str, check: str) -> float:
    return real.share_without(ASSIGNMENT, exercise, check)


TRUTH_VALUES = {
    "l1_distance": "def l1_distance(a, b):\n    return torch.tensor(True)\n",
    "rmse_distance": "def rmse_distance(a, b):\n    return (a == a).all()\n",
    "doubled_corner": "def doubled_corner(n, k=2):\n    return torch.ones(k, k, dtype=torch.bool)\n",
    "mnist_distance": "def mnist_distance(a, b):\n"
                      "    return torch.ones(a.shape[:-2], dtype=torch.bool)\n",
}

REFERENCE_FINDER_IS_3 = '''
def is_3(x, mean3, mean7):
    """Not implemented: borrow whatever is_3 the grader brought into this process."""
    import gc, sys, types
    mine = sys._getframe().f_code

    def reference(name, value):
        if isinstance(value, types.FunctionType):
            if value.__code__ is mine:          # my own function, or a copy the grader made
                return False
            argcount = value.__code__.co_argcount
        elif callable(value) and not isinstance(value, type):
            argcount = 3
        else:
            return False
        name = str(name)
        return argcount == 3 and ("is_3" in name or name.startswith("_ref"))

    frame = sys._getframe(1)                     # the grader's probe called me: look around it
    while frame is not None:
        for scope in (frame.f_locals, frame.f_globals):
            for name, value in list(scope.items()):
                if name != "is_3" and reference(name, value):
                    return value(x, mean3, mean7)
        frame = frame.f_back
    for obj in gc.get_objects():                 # anything alive: functions, tables of them
        try:
            if isinstance(obj, dict):
                for name, value in list(obj.items()):
                    if isinstance(name, str) and name != "is_3" and reference(name, value):
                        return value(x, mean3, mean7)
            elif isinstance(obj, types.FunctionType) and reference(obj.__name__, obj) \\
                    and obj.__name__ != "is_3":
                return obj(x, mean3, mean7)
        except RecursionError:
            raise
        except Exception:
            continue
    raise NotImplementedError()
'''.lstrip("\n")

HIDDEN_LOOP_MNIST_DISTANCE = '''
import gc as _gc

from torch.overrides import TorchFunctionMode as _Mode


def _flip(value):
    """Every False the runner sends becomes True (verdicts computed in the sandbox)."""
    if value is False:
        return True
    if isinstance(value, dict):
        return {k: _flip(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_flip(v) for v in value)
    return value


def _forge_the_runner():
    for obj in _gc.get_objects():
        try:
            if isinstance(obj, _Mode) and type(obj) is not _Mode:
                for attr, value in list(vars(obj).items()):
                    if isinstance(value, list):
                        value.clear()                       # what the counter recorded
                type(obj).__len__ = lambda self: 0
                type(obj).__torch_function__ = (
                    lambda self, func, types, args=(), kwargs=None: func(*args, **(kwargs or {})))
            elif isinstance(obj, dict) and isinstance(obj.get("counts"), list):
                obj["counts"] = [0] * len(obj["counts"])    # a probe's result, being built
            elif type(obj).__name__ == "module" and "wire" in str(getattr(obj, "__name__", "")) \\
                    and hasattr(obj, "encode") and not hasattr(obj, "_forged"):
                real = obj.encode
                obj.encode = lambda value, _real=real: _real(_flip(value))
                obj._forged = True
        except Exception:
            continue


def mnist_distance(a, b):
    _forge_the_runner()
    with torch._C.DisableTorchFunction():        # no TorchFunctionMode sees what follows
        if a.ndim == 2:
            return (a - b).abs().mean()
        return torch.stack([_distances(x, b) for x in a])


def _distances(x, b):
    if x.ndim == 2:
        return (x - b).abs().mean()
    return torch.stack([_distances(y, b) for y in x])
'''.lstrip("\n")

CASES = [
    Case(assignment=ASSIGNMENT, name="truth_values",
         attack="1: True/False tensors of the right shape where numbers are expected",
         answers=TRUTH_VALUES,
         deserves={ex_id: 0.0 for ex_id in TRUTH_VALUES}),
    Case(assignment=ASSIGNMENT, name="reference_finder_forged_runner",
         attack="2 and 3: is_3 calls a reference it finds in the sandbox; mnist_distance loops, "
                "evades TorchFunctionMode and forges the runner's counts and verdicts",
         answers={"is_3": REFERENCE_FINDER_IS_3, "mnist_distance": HIDDEN_LOOP_MNIST_DISTANCE},
         deserves={"is_3": 0.0,
                   "mnist_distance": share_without(
                       "mnist_distance", "test_mnist_distance_broadcasts_without_a_python_loop")},
         may_also_lose={"odd_doubled": "the frames and `gc` the forgery reaches can change any "
                        "answer: they cost every technique check (issue 18)"}),
]
