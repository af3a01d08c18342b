"""Assertions for hidden tests whose failure messages are safe to show a student.

A failed check raises ``Mismatch`` with a message that says *what* was wrong (shape, dtype,
values on which kind of input, technique) but never the reference's values or the test code.
Only these messages, and ``SubmissionProblem`` messages, reach feedback; any other exception
in a test is reported as a grader error.

The rules every comparison follows (one place, so no exercise can get them wrong):

* **The reference is never converted to the answer's kind.** The answer is turned into a
  tensor as it is; the reference decides which *kinds* of numbers are acceptable:

  ============  ==========================================  =========================
  reference     accepted answers by default                 widen with ``kinds=``
  ============  ==========================================  =========================
  bool          bool only                                   --
  integer       integer (any width, signed or not)          ``"if"``: floats too
  floating      floating (float16, bfloat16, 32, 64)        ``"fi"``: integers too
  complex       complex only                                --
  ============  ==========================================  =========================

  A bool answer never matches a numeric reference (``torch.tensor(True)`` is not ``1.0``),
  and a number never matches a bool reference. Python ``bool``/``int``/``float`` and NumPy
  scalars have the kind of their type.
* **Tensors and numbers: the answer's form is the prompt's** (one rule for every exercise,
  stated in each notebook's grading intro and checked by ``tests/test_prompts.py``). The
  reference's form stands for what the prompt asks, so every comparison checks it first:

  ==================================  =============================================================
  the prompt asks for                 accepted answers (the reference is ...)
  ==================================  =============================================================
  a tensor (rank 0: one number)       a ``torch.Tensor`` only (a tensor); a Python number, a list
                                      or a NumPy array is not one
  a number (``number=True``)          a Python number (or NumPy scalar) or a rank-0 tensor; not a
                                      tensor of shape ``(1,)``, not a list
  a Python ``int``/``float``          a Python number (a Python number); not a tensor
  a list (tuple) of any of these      a list (a tuple) of as many items, each by its own rule
  ==================================  =============================================================

  A wrong form fails every check that compares it, as a wrong value would; its message says
  which form was asked. A check whose prompt names no form passes the grader's own value.
* **Shapes are exact**: no broadcasting, and a 0-d tensor differs from a 1-element one.
* **Values**: floating comparisons in float64 with ``rtol``/``atol``; ``nan`` matches only
  ``nan`` and an answer with ``nan``/``inf`` where the reference is finite is wrong; integer
  and bool comparisons are exact.
"""
from __future__ import annotations

import numbers

import numpy as np
import torch


class Mismatch(AssertionError):
    """A check failed; ``str(exc)`` is the student-facing reason."""


def check(condition: bool, message: str) -> None:
    """``condition`` is the grader's own verdict (a bool computed from plain data)."""
    if not bool(condition):
        raise Mismatch(message)


KIND_NAMES = {"b": "True/False values", "i": "integers", "f": "floating-point numbers",
              "c": "complex numbers"}


def kind_of(t: torch.Tensor) -> str:
    """'b', 'i', 'f' or 'c': the kind of a tensor's dtype."""
    if t.dtype == torch.bool:
        return "b"
    if t.is_complex():
        return "c"
    if t.is_floating_point():
        return "f"
    return "i"


def as_tensor(value, what: str) -> torch.Tensor:
    """The answer as a tensor, of the kind it already has (a Python bool stays bool)."""
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, (str, bytes, dict)) or value is None:
        raise Mismatch(f"{what} should be a tensor (or numbers), got {type(value).__name__}")
    try:
        if _tensors(value):          # torch.as_tensor takes a list of rank-0 tensors only
            return torch.stack([v.detach() for v in value])
        t = torch.as_tensor(np.asarray(value) if isinstance(value, np.ndarray) else value)
    except Exception:
        raise Mismatch(f"{what} should be a tensor (or numbers), got {type(value).__name__}") from None
    return t.detach()


def _tensors(value) -> bool:
    """A non-empty list or tuple of tensors (compared stacked: a list of parameters)."""
    return isinstance(value, (list, tuple)) and bool(value) \
        and all(isinstance(v, torch.Tensor) for v in value)


def _reference_tensor(reference) -> torch.Tensor:
    """The grader's own value as a tensor; it is trusted, so a failure here is a kit bug."""
    if isinstance(reference, torch.Tensor):
        return reference.detach()
    if _tensors(reference):
        return torch.stack([v.detach() for v in reference])
    return torch.as_tensor(reference)


def accepted_kinds(reference: torch.Tensor, kinds: str | None = None) -> str:
    own = kind_of(reference)
    if kinds is None:
        return own
    if own not in kinds:
        raise ValueError(f"kinds={kinds!r} must include the reference's own kind {own!r}")
    if own in "bc" and kinds != own:
        raise ValueError("bool and complex references accept only their own kind")
    return kinds


def expect_kind(got: torch.Tensor, want: torch.Tensor, what: str, where: str = "",
                kinds: str | None = None) -> None:
    allowed = accepted_kinds(want, kinds)
    mine = kind_of(got)
    if mine not in allowed:
        wanted = " or ".join(KIND_NAMES[k] for k in allowed)
        raise Mismatch(f"{what} holds {KIND_NAMES[mine]} ({got.dtype}){where}, expected {wanted}")


def expect_shape(value, shape, what: str) -> torch.Tensor:
    t = as_tensor(value, what)
    check(tuple(t.shape) == tuple(shape),
          f"{what} has shape {tuple(t.shape)}, expected {tuple(shape)}")
    return t


def expect_dtype(value, dtype, what: str) -> torch.Tensor:
    t = as_tensor(value, what)
    check(t.dtype == dtype, f"{what} has dtype {t.dtype}, expected {dtype}")
    return t


def expect_close(value, reference, what: str, on: str = "", rtol: float = 1e-4,
                 atol: float = 1e-5, check_dtype: bool = False, kinds: str | None = None,
                 number: bool = False) -> torch.Tensor:
    """Form, kind, shape, optionally the exact dtype, then values (module docstring: the
    rules). ``number=True`` where the prompt asks for "a number" (a Python number or a rank-0
    tensor). ``on`` names the kind of input (e.g. 'a random batch of 7 images') so the student
    knows where to look."""
    where = f" on {on}" if on else ""
    want = _reference_tensor(reference)
    accepted_kinds(want, kinds)                      # a kit bug is raised before any verdict
    expect_form(value, reference, what, where, number)
    got = as_tensor(value, what)
    if got.numel() or isinstance(value, (torch.Tensor, np.ndarray)):
        expect_kind(got, want, what, where, kinds)   # an empty Python list has no kind to judge
    if number:
        check(want.numel() == 1, "number=True needs a single-number reference")   # kit bug
        want = want.reshape(())
    check(tuple(got.shape) == tuple(want.shape),
          f"{what} has shape {tuple(got.shape)}{where}, expected {tuple(want.shape)}")
    if check_dtype:
        check(got.dtype == want.dtype, f"{what} has dtype {got.dtype}{where}, expected {want.dtype}")
    if kind_of(want) == "b" or (kind_of(want) == "i" and kind_of(got) == "i"):
        check(torch.equal(got.to(torch.int64), want.to(torch.int64)),
              f"{what} has wrong {'True/False values' if kind_of(want) == 'b' else 'values'}{where}")
        return got
    cast = torch.complex128 if kind_of(want) == "c" else torch.float64
    got_f, want_f = got.to(cast), want.to(cast)
    check(bool(torch.isfinite(got_f).all()) or not bool(torch.isfinite(want_f).all()),
          f"{what} contains nan or inf{where}")
    close = torch.isclose(got_f, want_f, rtol=rtol, atol=atol, equal_nan=True)
    if not bool(close.all()):
        wrong = int((~close).sum())
        raise Mismatch(f"{what} differs from the expected values{where} "
                       f"({wrong} of {close.numel()} values wrong)")
    return got


def expect_number(value, what: str, kinds: str = "fi") -> float:
    """A single real number as a Python float, where the prompt asks for "a number": a Python
    number (or NumPy scalar) or a rank-0 tensor of the accepted ``kinds``; a bool is not a
    number here, and neither is a tensor of shape ``(1,)`` (module docstring: the rules)."""
    if isinstance(value, (bool, np.bool_)):
        raise Mismatch(f"{what} should be a number, got a True/False value")
    if isinstance(value, numbers.Real):
        kind = "i" if isinstance(value, numbers.Integral) else "f"
        check(kind in kinds, f"{what} should be {' or '.join(KIND_NAMES[k] for k in kinds)}")
        return float(value)
    _expect_single_number(value, what, "")
    t = as_tensor(value, what)
    check(kind_of(t) in kinds, f"{what} holds {KIND_NAMES[kind_of(t)]}, expected "
                               f"{' or '.join(KIND_NAMES[k] for k in kinds)}")
    return float(t.reshape(()))


def form_of(value) -> str:
    """What a value is, in the words of the rule (for messages)."""
    if isinstance(value, torch.Tensor):
        return "a rank-0 tensor" if value.ndim == 0 else f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, (bool, np.bool_)):
        return "a True/False value"
    if isinstance(value, numbers.Number) or isinstance(value, np.generic):
        return f"a Python {type(value).__name__}" if type(value).__module__ == "builtins" \
            else f"a NumPy {type(value).__name__}"
    if isinstance(value, np.ndarray):
        return "a NumPy array"
    return f"a {type(value).__name__}"


def _is_python_number(value) -> bool:
    return isinstance(value, (numbers.Number, np.generic)) \
        or (isinstance(value, np.ndarray) and value.ndim == 0)


def _expect_single_number(value, what: str, where: str) -> None:
    """A number: a Python number (or NumPy scalar) or a rank-0 tensor."""
    if _is_python_number(value) or (isinstance(value, torch.Tensor) and value.ndim == 0):
        return
    raise Mismatch(f"{what}{where} should be a single number (a Python number or a rank-0 "
                   f"tensor), got {form_of(value)}")


def expect_form(value, reference, what: str, where: str = "", number: bool = False) -> None:
    """The answer has the form the prompt asks for, which the reference's form stands for
    (module docstring: the rules): a tensor for a tensor, a Python number for a Python number,
    a list (tuple) of as many items for a list (tuple), item by item; with ``number=True`` any
    single number (a Python number or a rank-0 tensor). A value of another form fails here,
    before its values are looked at, with a message that names the form asked for."""
    if number:
        _expect_single_number(value, what, where)
    elif isinstance(reference, torch.Tensor):
        if not isinstance(value, torch.Tensor):
            asked = "a tensor (rank 0: one number as a tensor)" if reference.ndim == 0 \
                else "a tensor"
            raise Mismatch(f"{what}{where} should be {asked}, got {form_of(value)}")
    elif isinstance(reference, (list, tuple)):
        kind = type(reference).__name__
        check(type(value) is type(reference),
              f"{what}{where} should be a {kind}, got {form_of(value)}")
        if len(value) == len(reference):      # otherwise the shape check says so
            for item, ref_item in zip(value, reference):
                expect_form(item, ref_item, f"an item of {what}", where)
    elif _is_python_number(reference) and not isinstance(reference, np.ndarray):
        if not _is_python_number(value):
            hint = " (.item() turns a rank-0 tensor into one)" \
                if isinstance(value, torch.Tensor) else ""
            raise Mismatch(f"{what}{where} should be a Python number{hint}, got {form_of(value)}")


def _same_plain(got, want) -> bool:
    """Equality of plain data where the answer must have the reference's own types: 1 is not
    True, 1.0 is not 1, a tuple is not a list; tensors compared exactly, kind and shape first."""
    if isinstance(want, torch.Tensor) or isinstance(got, torch.Tensor):
        if not (isinstance(want, torch.Tensor) and isinstance(got, torch.Tensor)):
            return False
        return (kind_of(got) == kind_of(want) and got.shape == want.shape
                and bool(torch.equal(got.detach().to(want.dtype), want.detach())))
    if type(got) is not type(want):
        return False
    if isinstance(want, (list, tuple)):
        return len(got) == len(want) and all(_same_plain(g, w) for g, w in zip(got, want))
    if isinstance(want, dict):
        return got.keys() == want.keys() and all(_same_plain(got[k], want[k]) for k in want)
    if isinstance(want, float) and want != want:
        return got != got
    return bool(got == want)


def expect_equal(value, reference, what: str, on: str = "") -> None:
    """Exact equality of plain data, types included (see ``_same_plain``)."""
    where = f" on {on}" if on else ""
    check(_same_plain(value, reference), f"{what} is not what was expected{where}")


def expect_true_false(value, keys, message: str) -> dict:
    """A True/False answer sheet: a dict with exactly ``keys`` (the reference's), each value a
    Python bool; ``message`` says what was asked. Returns the dict for the checks that grade it."""
    check(isinstance(value, dict) and set(value) == set(keys)
          and all(isinstance(v, bool) for v in value.values()), message)
    return value
