"""Assertions for hidden tests whose failure messages are safe to show a student.

A failed check raises ``Mismatch`` with a message that says *what* was wrong (shape, dtype,
values on which kind of input, technique) but never the reference's values or the test code.
Only these messages, and ``SubmissionProblem`` messages, reach feedback; any other exception
in a test is reported as a grader error.
"""
from __future__ import annotations

import torch


class Mismatch(AssertionError):
    """A check failed; ``str(exc)`` is the student-facing reason."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Mismatch(message)


def as_tensor(value, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    try:
        return torch.as_tensor(value)
    except Exception:
        raise Mismatch(f"{what} should be a tensor (or numbers), got {type(value).__name__}") from None


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
                 atol: float = 1e-5, check_dtype: bool = False) -> torch.Tensor:
    """Shape, optionally dtype, then values; ``on`` names the kind of input (e.g.
    'a random batch of 7 images') so the student knows where to look."""
    where = f" on {on}" if on else ""
    got = as_tensor(value, what)
    want = torch.as_tensor(reference)
    check(tuple(got.shape) == tuple(want.shape),
          f"{what} has shape {tuple(got.shape)}{where}, expected {tuple(want.shape)}")
    if check_dtype:
        check(got.dtype == want.dtype, f"{what} has dtype {got.dtype}{where}, expected {want.dtype}")
    if want.dtype == torch.bool or got.dtype == torch.bool:
        check(torch.equal(got.bool(), want.bool()), f"{what} has wrong True/False values{where}")
        return got
    got_f, want_f = got.detach().double(), want.detach().double()
    check(bool(torch.isfinite(got_f).all()) or not bool(torch.isfinite(want_f).all()),
          f"{what} contains nan or inf{where}")
    close = torch.isclose(got_f, want_f, rtol=rtol, atol=atol, equal_nan=True)
    if not bool(close.all()):
        wrong = int((~close).sum())
        raise Mismatch(f"{what} differs from the expected values{where} "
                       f"({wrong} of {close.numel()} values wrong)")
    return got


def expect_equal(value, reference, what: str, on: str = "") -> None:
    where = f" on {on}" if on else ""
    check(value == reference, f"{what} is not what was expected{where}")
