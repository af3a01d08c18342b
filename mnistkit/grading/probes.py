"""Probes: grader code that runs in the student's namespace, written as real Python functions.

Why: a hidden check that needs live objects (a model, an optimizer, a folder of images) sends a
short program into the sandbox (``student.run``) and gets plain data back. Kept in strings,
those programs could be neither read, linted nor shared between assignments, and they made the
hidden test modules long. Here a probe is a plain function in a library module
(``training_probes``, ``model_probes``, ``folder_probes``); what is sent is its source text
(``inspect.getsource``, dedented), with the source of the helpers it names, and one line that
calls it with the inputs of the same names:

    program(probe, *helpers) == "<helpers>\\n\\n<probe>\\n\\nresult = probe(a=a, b=b)\\n"

The sandbox runs that text in a copy of the notebook's namespace with the inputs in it
(``runner.op_run``), so the probe sees the student's names (``Learner``, ``calc_grad``) as its
globals, exactly as the old top-level programs did. A probe imports what it needs in its own
body, so its text stands alone.

The trust rule (docs/ARCHITECTURE.md, "Hidden tests"): nothing derived from ``solutions/`` is
sent into the sandbox. Probe modules are kit code: they never import ``solutions``, and hold no
reference code and no expected value; tests/test_grade_assignments.py audits what is sent.

``run_here`` runs the very same program in the grader with names of the grader's choosing (a4's
``Learner`` probe runs once with the student's class, once with the reference class);
``shared`` caches an expensive probe for several checks (a module-scoped fixture's value).
"""
from __future__ import annotations

import functools
import inspect
import textwrap
from typing import Any, Callable


@functools.lru_cache(maxsize=None)
def source(*functions: Callable) -> str:
    """The dedented source text of ``functions``, in order, as one program."""
    return "\n\n".join(textwrap.dedent(inspect.getsource(f)).strip("\n") for f in functions) + "\n"


@functools.lru_cache(maxsize=None)
def program(probe: Callable, *helpers: Callable) -> str:
    """What is sent for ``probe``: the helpers' and the probe's source, then
    ``result = probe(name=name, ...)`` for each of its parameters (the inputs of those names)."""
    call = ", ".join(f"{name}={name}" for name in inspect.signature(probe).parameters)
    return source(*helpers, probe) + f"\n\nresult = {probe.__name__}({call})\n"


def run(student, probe: Callable, *helpers: Callable, **inputs) -> Any:
    """``probe(**inputs)`` in the student's namespace (``student.run``): its plain-data result."""
    return student.run(program(probe, *helpers), **inputs)


def run_for(student, seconds: float, probe: Callable, *helpers: Callable, **inputs) -> Any:
    """``run`` within the time budget the notebook states (``student.run_for``)."""
    return student.run_for(seconds, program(probe, *helpers), **inputs)


def run_here(probe: Callable, *helpers: Callable, names: dict | None = None, **inputs) -> Any:
    """The same program as ``run`` sends, run in the grader in a scope of ``names`` (such as the
    reference's class of the name the probe uses) and ``inputs``."""
    scope = dict(names or {})
    scope.update(inputs)
    exec(compile(program(probe, *helpers), "<reference run>", "exec"), scope)
    return scope["result"]


def shared(compute: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A getter that computes ``compute(key)`` once per key, on first use, and returns the same
    value to every later caller; an exception is kept too and raised again to each caller, so
    every check that uses a failed probe fails with the same message. Return it from a
    module-scoped fixture to share one expensive probe (a4's Learner runs) among checks."""
    cache: dict = {}

    def get(key):
        if key not in cache:
            try:
                cache[key] = ("ok", compute(key))
            except Exception as exc:   # the same failure for every check that uses it
                cache[key] = ("raised", exc)
        status, value = cache[key]
        if status == "raised":
            raise value
        return value
    return get
