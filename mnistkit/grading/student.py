"""The handle hidden tests use to question a student's notebook, and what can go wrong.

Tests only ever see plain data (tensors, arrays, numbers, strings, lists, dicts): every value
that crosses from student code is encoded by ``wire`` and decoded in the grader, so a student
object can never run code in the grader or fake a comparison.

``InProcessStudent`` runs the notebook in the grader's own process: for developing hidden
tests against trusted notebooks (the reference) only. Untrusted submissions go through the
sandboxed implementation in ``mnistkit.grading.sandbox``, which has the same interface.
"""
from __future__ import annotations

import contextlib
import io
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnistkit.grading import wire
from mnistkit.grading.left_out import LEFT_OUT, cells_left_out


class SubmissionProblem(Exception):
    """Something about the student's code; ``str(exc)`` is feedback safe to show them."""


class NotDefined(SubmissionProblem):
    def __init__(self, name: str):
        super().__init__(f"`{name}` is not defined after running your notebook "
                         "(did its cell raise an error, or is it named differently?)")
        self.name = name


class StudentCodeError(SubmissionProblem):
    """The student's code raised; the message is their exception, not the grader's code."""


class StudentTimeout(SubmissionProblem):
    pass


class StudentCrashed(SubmissionProblem):
    """The student's process died (exit, signal, memory); later questions cannot be asked."""


class NotPlainData(SubmissionProblem):
    pass


@dataclass
class CellRun:
    index: int          # position among the notebook's code cells
    grade_id: str | None
    status: str         # ok | error | timeout | crashed | skipped | left out (by design)
    seconds: float
    message: str = ""   # the exception line, for feedback


def code_cells(notebook_path: Path) -> list[tuple[str | None, str]]:
    """(grade_id, source) of every code cell, in order. The notebook is one the grader wrote
    (mnistkit.grading.submission cleaned it), so plain json is enough and avoids nbformat's
    slow import in every grading subprocess."""
    from mnistkit.catalog import read_cells
    return [(c["metadata"].get("nbgrader", {}).get("grade_id"), c["source"])
            for c in read_cells(notebook_path) if c["cell_type"] == "code"]


class Student:
    """Interface: what a hidden test may ask of a submission."""

    cells: list[CellRun]

    def call(self, name: str, *args, **kwargs) -> Any:
        """Call the student's function ``name`` with plain-data arguments."""
        raise NotImplementedError

    def get(self, name: str) -> Any:
        """The value of the student's global ``name``, as plain data."""
        raise NotImplementedError

    def has(self, name: str) -> bool:
        raise NotImplementedError

    def run(self, code: str, **inputs) -> Any:
        """Run grader code in the student's namespace with ``inputs`` bound as names; returns
        the value the code assigns to ``result``. For checks that need live objects there
        (a model, an optimizer); the returned value is still untrusted plain data."""
        raise NotImplementedError

    def run_for(self, seconds: float, code: str, **inputs) -> Any:
        """``run`` with a time limit of ``seconds`` instead of the usual per-request one: for a
        check whose budget the notebook states (training a model on the full data)."""
        raise NotImplementedError

    def rebind(self, source: str) -> None:
        """Run ``source``, the student's own definitions as the grader read them from the
        notebook (``source_checks.rebind_source``), in the student's namespace: what the grader
        questions next is then the code it read."""
        raise NotImplementedError

    def close(self) -> None:
        pass


def _exception_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


class _Alarm(BaseException):
    pass


@contextlib.contextmanager
def _time_limit(seconds: float):
    def fire(signum, frame):
        raise _Alarm()
    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class InProcessStudent(Student):
    """Trusted notebooks only: runs cells with IPython in this process."""

    def __init__(self, notebook_path: Path, cell_timeout: float = 120.0,
                 call_timeout: float = 60.0, workdir: Path | None = None):
        import time
        from IPython.core.interactiveshell import InteractiveShell

        self.call_timeout = call_timeout
        self.shell = InteractiveShell.instance()
        # No event loop here: let `%matplotlib inline` select the backend instead of raising.
        self.shell.enable_gui = lambda gui=None: None
        self.ns = self.shell.user_ns
        self.cells = []
        cwd = Path.cwd()
        # as in the sandbox (sandbox.env_args) and under nbgrader: cells that skip work when
        # graded (a3's ResNet-18 epoch) skip it here too
        before = os.environ.get("NBGRADER_EXECUTION")
        os.environ["NBGRADER_EXECUTION"] = "autograde"
        try:
            if workdir:
                os.chdir(workdir)
            left_out = cells_left_out(notebook_path)
            for index, (grade_id, source) in enumerate(code_cells(notebook_path)):
                if index in left_out:
                    self.cells.append(CellRun(index, grade_id, LEFT_OUT, 0.0))
                    continue
                start = time.perf_counter()
                status, message = "ok", ""
                try:
                    with _time_limit(cell_timeout), contextlib.redirect_stdout(io.StringIO()):
                        result = self.shell.run_cell(source, silent=True)
                    if not result.success:
                        status = "error"
                        err = result.error_in_exec or result.error_before_exec
                        message = _exception_line(err) if err else "error"
                except _Alarm:
                    status, message = "timeout", f"cell ran longer than {cell_timeout:g} s"
                self.cells.append(CellRun(index, grade_id, status,
                                          time.perf_counter() - start, message))
        finally:
            os.chdir(cwd)
            if before is None:
                os.environ.pop("NBGRADER_EXECUTION", None)
            else:
                os.environ["NBGRADER_EXECUTION"] = before

    @classmethod
    def over(cls, namespace: dict, call_timeout: float = 60.0) -> "InProcessStudent":
        """A student whose notebook is ``namespace``, already run (trusted code only: the kit's
        tests put the reference's answer cells there, with one wrong answer in place)."""
        student = cls.__new__(cls)
        student.call_timeout, student.ns, student.cells = call_timeout, namespace, []
        return student

    def _plain(self, value):
        try:
            return wire.decode(wire.encode(value))
        except wire.WireError as exc:
            raise NotPlainData(str(exc)) from None

    def has(self, name):
        return name in self.ns

    def get(self, name):
        if name not in self.ns:
            raise NotDefined(name)
        return self._plain(self.ns[name])

    def call(self, name, *args, **kwargs):
        if name not in self.ns:
            raise NotDefined(name)
        if not callable(self.ns[name]):
            raise SubmissionProblem(f"`{name}` is not a function")
        args, kwargs = wire.decode(wire.encode([list(args), kwargs]))
        try:
            with _time_limit(self.call_timeout):
                value = self.ns[name](*args, **kwargs)
        except _Alarm:
            raise StudentTimeout(f"`{name}` did not return within {self.call_timeout:g} s") from None
        except Exception as exc:
            raise StudentCodeError(f"`{name}` raised {_exception_line(exc)}") from None
        return self._plain(value)

    def run(self, code, **inputs):
        return self.run_for(self.call_timeout, code, **inputs)

    def rebind(self, source):
        try:
            with _time_limit(self.call_timeout):
                exec(compile(source, "<your answer, as the grader read it>", "exec"), self.ns)
        except _Alarm:
            raise StudentTimeout(f"your answer did not finish within {self.call_timeout:g} s") from None
        except Exception as exc:
            raise StudentCodeError(f"your answer raised {_exception_line(exc)} when the grader "
                                   "defined it again") from None

    def run_for(self, seconds, code, **inputs):
        scope = dict(self.ns)
        scope.update(wire.decode(wire.encode(inputs)))
        try:
            with _time_limit(seconds):
                exec(compile(code, "<grader probe>", "exec"), scope)
        except _Alarm:
            raise StudentTimeout(f"your code did not finish within {seconds:g} s") from None
        except Exception as exc:
            raise StudentCodeError(f"your code raised {_exception_line(exc)}") from None
        if "result" not in scope:
            raise StudentCodeError("the check produced no result")
        return self._plain(scope["result"])
