"""Checking an exercise that uses another one, without handing the student any reference.

``is_3`` calls the student's ``mnist_distance``, ``train_epoch`` calls their ``calc_grad``: a bug
in the helper must not cost points twice. The old fix sent the reference helper into the sandbox
(as source or as a function), which a student could find and call. The trust rule forbids
that: nothing derived from ``solutions/`` crosses into the sandbox. Instead, for the length of
one probe, a dependency is replaced by a **stand-in** that the grader builds from its own data:

``Answers(name)``
    A table of the dependency's results on the exact inputs this check will hand it, computed
    in the grader with the reference (plain data, like any other input of the check). A call
    with other inputs falls through to the student's own function, so a student who calls
    their helper differently (or not at all) is graded on their own code. For pure functions.
``Neutral(name, source)``
    A function of the kit's own, which is *not* the answer to any exercise (a different loss, a
    different distance). The grader computes the expected result with the reference rebound to
    the same stand-in (``Neutral.rebind``), so a right answer matches whatever the stand-in
    computes. For dependencies whose effect is more than a value (gradients through autograd).

The sandbox side is ``PRELUDE`` (kit code, no reference in it): a copy of the notebook's globals
with the stand-ins and ``overrides`` (other values for notebook globals such as ``dl`` or
``weights``) put in, and every function the student defined rebound to that copy, so their own
helper functions see the stand-ins too. The notebook's own globals are left untouched. Only
functions defined with ``def``/``lambda`` are rebound; classes keep their globals.
"""
from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any

from mnistkit.grading import probes
from mnistkit.grading.student import NotDefined, NotPlainData, Student, StudentCodeError


@dataclass
class Answers:
    """The grader's results of dependency ``name`` on given inputs (see the module docstring)."""
    name: str
    calls: list = field(default_factory=list)

    def add(self, *args, result: Any, **kwargs) -> "Answers":
        self.calls.append({"args": list(args), "kwargs": kwargs, "result": result})
        return self

    def spec(self) -> dict:
        return {"kind": "answers", "name": self.name, "calls": self.calls}


@dataclass
class Neutral:
    """A kit-made stand-in for dependency ``name``: ``source`` defines a function ``name``."""
    name: str
    source: str

    @classmethod
    def of(cls, name: str, function, *helpers) -> "Neutral":
        """The stand-in ``name`` made from a kit function of the grader's (its source, renamed
        ``name``, after that of the ``helpers`` it calls): kit code, never the reference's."""
        text = probes.source(*helpers, function)
        return cls(name, text.replace(f"def {function.__name__}(", f"def {name}(", 1))

    def spec(self) -> dict:
        return {"kind": "neutral", "name": self.name, "source": self.source}

    def function(self):
        scope: dict = {}
        exec(compile(self.source, f"<stand-in {self.name}>", "exec"), scope)
        return scope[self.name]

    def rebind(self, function, **names):
        """``function`` (the reference, in the grader) with this stand-in as its ``name``."""
        return rebind(function, **{self.name: self.function()}, **names)


def rebind(function, **names):
    """A copy of ``function`` whose globals are a copy of its own plus ``names`` (grader side)."""
    scope = dict(function.__globals__)
    scope.update(names)
    copy = types.FunctionType(function.__code__, scope, function.__name__, function.__defaults__,
                              function.__closure__)
    copy.__kwdefaults__ = function.__kwdefaults__
    return copy


PRELUDE = '''
import types as _types
import torch as _torch


def _same(_a, _b):
    if isinstance(_a, _torch.Tensor) or isinstance(_b, _torch.Tensor):
        return (isinstance(_a, _torch.Tensor) and isinstance(_b, _torch.Tensor)
                and _a.shape == _b.shape and _a.dtype == _b.dtype
                and bool(_torch.equal(_a.detach(), _b.detach())))
    if isinstance(_a, (list, tuple)) and isinstance(_b, (list, tuple)):
        return len(_a) == len(_b) and all(_same(_x, _y) for _x, _y in zip(_a, _b))
    if isinstance(_a, dict) and isinstance(_b, dict):
        return _a.keys() == _b.keys() and all(_same(_a[_k], _b[_k]) for _k in _a)
    try:
        return type(_a) is type(_b) and bool(_a == _b)
    except Exception:
        return False


def _copy(_v):
    if isinstance(_v, _torch.Tensor):
        return _v.clone()
    if isinstance(_v, (list, tuple)):
        return type(_v)(_copy(_x) for _x in _v)
    if isinstance(_v, dict):
        return {_k: _copy(_x) for _k, _x in _v.items()}
    return _v


class _Answers:
    """Stand-in: the grader's answers for the inputs it expects, else the student's own."""

    def __init__(self, name, calls, own):
        self.__name__, self._calls, self._own = name, calls, own

    def __call__(self, *args, **kwargs):
        for _c in self._calls:
            if _same(list(args), _c["args"]) and _same(kwargs, _c["kwargs"]):
                return _copy(_c["result"])
        if self._own is None:
            raise NameError(f"name {self.__name__!r} is not defined")
        return self._own(*args, **kwargs)


def _rebound(_f, _scope):
    _new = _types.FunctionType(_f.__code__, _scope, _f.__name__, _f.__defaults__, _f.__closure__)
    _new.__kwdefaults__ = _f.__kwdefaults__
    return _new


def _isolate(_targets, _specs, _overrides):
    _home = None
    for _t in _targets:
        if isinstance(globals().get(_t), _types.FunctionType):
            _home = globals()[_t].__globals__
            break
    if _home is None:       # no target defined with def: nothing to rebind
        return
    _g = dict(_home)
    _g.update(_overrides)
    _names = {_s["name"] for _s in _specs}
    for _k, _v in list(_g.items()):
        if isinstance(_v, _types.FunctionType) and _v.__globals__ is _home:
            _g[_k] = _rebound(_v, _g)
    for _s in _specs:
        if _s["kind"] == "answers":
            _own = _g.get(_s["name"])
            _g[_s["name"]] = _Answers(_s["name"], _s["calls"], _own if callable(_own) else None)
        else:
            _ns = {}
            exec(compile(_s["source"], "<stand-in>", "exec"), _ns)
            _g[_s["name"]] = _ns[_s["name"]]
    globals().update({_k: _v for _k, _v in _g.items()
                      if _k in _names or _k in _overrides or
                      (isinstance(_v, _types.FunctionType) and _v.__globals__ is _g)})


_isolate(_iso_targets, _iso_specs, _iso_overrides)
del _isolate
'''


def probe(student: Student, targets, body, *, stand_ins=(), overrides=None, helpers=(), **inputs):
    """Run ``body`` in the student's namespace with ``stand_ins`` (``Answers``/``Neutral``) and
    ``overrides`` (plain data for notebook globals) in place for the student's ``targets``
    (names of the functions under test, which ``body`` calls by name). Returns the value
    ``body`` assigns to ``result``; errors name the first target. ``body`` is program text or a
    probe function (``mnistkit.grading.probes``: its source, and that of ``helpers``, is sent,
    and its result returned)."""
    if callable(body):
        body = probes.program(body, *helpers)
    targets = [targets] if isinstance(targets, str) else list(targets)
    for name in targets:
        if not student.has(name):
            raise NotDefined(name)
    try:
        return student.run(PRELUDE + body, _iso_targets=targets,
                           _iso_specs=[s.spec() for s in stand_ins],
                           _iso_overrides=dict(overrides or {}), **inputs)
    except StudentCodeError as exc:
        message, prefix = str(exc), "your code raised "
        if message.startswith(prefix):
            message = f"`{targets[0]}` raised " + message[len(prefix):]
        raise StudentCodeError(message) from None
    except NotPlainData as exc:
        raise NotPlainData(f"`{targets[0]}` returned something the grader cannot read: {exc}") from None


def call(student: Student, name: str, *args, stand_ins=(), overrides=None):
    """``name(*args)`` in the student's namespace with ``stand_ins`` for its dependencies."""
    return probe(student, name, f"result = {name}(*_args)", stand_ins=stand_ins,
                 overrides=overrides, _args=list(args))
