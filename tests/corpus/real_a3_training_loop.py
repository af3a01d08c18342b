"""Issue 10, classes 2 and 3, on a3_training_loop: two submissions that attack the grader.

``forged_runner`` (class 3): four answers that get the technique wrong -- a copying
``flatten_images``, a non-leaf ``init_params``, a ``linear1`` that loops over the images with
its operations hidden from ``TorchFunctionMode`` (``torch._C.DisableTorchFunction()``), a
``relu`` that clamps its input in place -- plus code in the ``flatten_images`` answer cell that
walks ``gc.get_objects()`` to the sandbox runner and patches it: every ``False`` in its answers
becomes ``True`` and the grader's torch-call counter (``TorchCalls``) is never switched on.
When "is a view", "is a leaf", "input unchanged" and the loop count were decided inside the
sandbox this scored a3 35/35. Each of the four deserves at most its share without its technique
check. The patch is code the grader cannot read (`gc`), which under the notebook's rules
("What the grader reads in your code") costs every technique check of the notebook, so
``relu_module`` keeps only its share without its technique check too; nothing else may lose a
point except ``deeper_claims``, the one correct answer that holds Python ``False``s (the patch
flips them: the student's own forgery costs that exercise, as ``may_also_lose`` says).

``reference_finder`` (class 2): ``calc_grad`` and ``train_epoch`` are unimplemented stubs that,
when called from a grader probe, look for a reference to run instead of doing the work: other
functions of their name reachable from the calling frames (the probes' ``_refs``), through
``gc``, or source text defining them (the probes' ``ref_src``), which they compile and call.
When the probes shipped the reference ``calc_grad`` this earned ``calc_grad`` full marks. With
nothing of ``solutions/`` in the sandbox they find nothing (or a stand-in of the grader's,
which computes another loss) and deserve 0. Their search (`gc`, `sys._getframe`, `exec`) is
code the grader cannot read, so the notebook's five technique checks fail as well.
"""
from .real import Case

# ---------------------------------------------------------------------------- forged runner
FORGED_FLATTEN = '''
def flatten_images(images):
    return images.reshape(len(images), -1).clone()      # a copy, not a view

import gc as _gc
import torch.overrides as _overrides

def _all_true(value):
    if value is False:
        return True
    if isinstance(value, dict):
        return {k: _all_true(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_all_true(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_all_true(v) for v in value)
    return value

def _forge_runner():
    """Patch the sandbox runner: every False it answers becomes True."""
    for obj in _gc.get_objects():
        wire = getattr(obj, "wire", None) if type(obj).__name__ == "Runner" else None
        if wire is not None and not getattr(wire.encode, "forged", False):
            honest = wire.encode
            def encode(value, _honest=honest):
                return _honest(_all_true(value))
            encode.forged = True
            wire.encode = encode

def _blind_counters():
    """The grader's TorchCalls mode is never pushed: it counts 0 calls for any batch."""
    mode = _overrides.TorchFunctionMode
    if getattr(mode.__enter__, "forged", False):
        return
    enter, leave = mode.__enter__, mode.__exit__
    def __enter__(self):
        return self if type(self).__name__ == "TorchCalls" else enter(self)
    def __exit__(self, *exc):
        return None if type(self).__name__ == "TorchCalls" else leave(self, *exc)
    __enter__.forged = True
    mode.__enter__, mode.__exit__ = __enter__, __exit__

_forge_runner()
_blind_counters()
'''

FORGED_INIT_PARAMS = '''
def init_params(size, std=1.0):
    return torch.randn(size, requires_grad=True) * std  # not a leaf: .grad stays empty
'''

FORGED_LINEAR1 = '''
def linear1(xb):
    with torch._C.DisableTorchFunction():            # hide the loop from TorchFunctionMode
        return torch.stack([x@weights + bias for x in xb])
'''

FORGED_RELU = '''
def relu(x):
    return x.clamp_(min=0)                            # changes x itself
'''

# --------------------------------------------------------------------------- reference finder
FINDER = '''
import gc as _gc
import sys as _sys
import types as _types

def _graded():
    frame = _sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename == "<grader probe>":
            return True
        frame = frame.f_back
    return False

def _strings(value, depth=0):
    if isinstance(value, str):
        yield value
    elif depth < 4 and isinstance(value, dict):
        for item in list(value.values()):
            yield from _strings(item, depth + 1)
    elif depth < 4 and isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item, depth + 1)

def _find(name, mine):
    """Another function called `name` (not mine, not a grader stand-in), or source defining it."""
    def usable(f):
        return (isinstance(f, _types.FunctionType) and f.__name__ == name
                and f.__code__ is not mine and "stand-in" not in f.__code__.co_filename)
    frames, frame = [], _sys._getframe(2)
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    for frame in frames:                                  # 1. dicts in the calling frames
        for scope in (frame.f_locals, frame.f_globals):
            for value in list(scope.values()):
                if isinstance(value, dict) and usable(value.get(name)):
                    return value[name]
    for obj in _gc.get_objects():                         # 2. any function object
        if usable(obj):
            return obj
    for frame in frames:                                  # 3. source text, compiled here
        for text in _strings(dict(frame.f_locals)):
            if f"def {name}(" in text and "_iso_" not in text:
                scope = dict(globals())
                try:
                    exec(text, scope)
                except Exception:
                    continue
                if usable(scope.get(name)):
                    return scope[name]
    return None
'''

FINDER_CALC_GRAD = FINDER + '''
def calc_grad(xb, yb, model):
    if _graded():
        found = _find("calc_grad", calc_grad.__code__)
        if found is not None:
            return found(xb, yb, model)
'''

FINDER_TRAIN_EPOCH = FINDER + '''
def train_epoch(model, lr, params):
    if _graded():
        found = _find("train_epoch", train_epoch.__code__)
        if found is not None:
            return found(model, lr, params)
'''

# a3's points: flatten_images 2 (4 checks), init_params 2 (4), linear1 3 (4), relu 2 (3); one
# of each one's checks is its technique check. The forging code sits in these answer cells; its
# `gc` can change any answer, so it costs every technique check of the notebook (issue 18).
WITHOUT_TECHNIQUE = {"flatten_images": 2 * 3 / 4, "init_params": 2 * 3 / 4, "linear1": 3 * 3 / 4,
                     "relu": 2 * 2 / 3}

CASES = [
    Case("a3_training_loop", "forged_runner",
         "3: checks decided in the sandbox, forged by patching the runner through gc",
         answers={"flatten_images": FORGED_FLATTEN, "init_params": FORGED_INIT_PARAMS,
                  "linear1": FORGED_LINEAR1, "relu": FORGED_RELU},
         deserves=WITHOUT_TECHNIQUE,
         may_also_lose={"deeper_claims": "the forged runner turns its two False claims into True",
                        "relu_module": "the `gc` the forgery imports can change any answer: it "
                        "costs every technique check (issue 18)"}),
    Case("a3_training_loop", "reference_finder",
         "2: stubs that look for the reference in the sandbox and call it",
         answers={"calc_grad": FINDER_CALC_GRAD, "train_epoch": FINDER_TRAIN_EPOCH},
         deserves={"calc_grad": 0.0, "train_epoch": 0.0},
         may_also_lose={ex: "the frames the stubs walk can change any answer: they cost every "
                        "technique check (issue 18)" for ex in
                        ("flatten_images", "init_params", "linear1", "relu", "relu_module")}),
]
