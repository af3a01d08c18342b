"""Where a course's folders are (``Course``), whether grading runs student code unsandboxed
(``unsafe_in_process``), and the one error for "grading cannot run here" (``GradingUnavailable``).

Kept apart from the grading driver (``run.py``) because the modules the driver calls need them
too (``preflight``, ``gradebook``, ``dask_cluster``): they import this module, never the driver,
so nothing below ``run.py`` imports it back.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mnistkit import catalog
from mnistkit.paths import AUTOGRADER, RELEASE, SOURCE
from mnistkit.settings import settings

# The variables (read through mnistkit.settings), named in messages and set for child processes.
IN_PROCESS_ENV = "MNISTKIT_UNSAFE_IN_PROCESS"
COURSE_ENV = "MNISTKIT_COURSE_ROOT"     # a folder with source/, release/, autograder/


class GradingUnavailable(Exception):
    """Grading cannot run at all (kit or machine problem); ``str(exc)`` is one line."""


@dataclass(frozen=True)
class Course:
    """Where a course's folders are. The kit's own by default; ``MNISTKIT_COURSE_ROOT`` (or
    ``Course.at(root)``) points at another course laid out the same way (tests use a toy one)."""
    source: Path = SOURCE
    release: Path = RELEASE
    autograder: Path = AUTOGRADER

    @classmethod
    def at(cls, root: Path) -> "Course":
        root = Path(root).absolute()
        return cls(root / "source", root / "release", root / "autograder")

    @classmethod
    def default(cls) -> "Course":
        root = settings().course_root
        return cls.at(root) if root else cls()

    def assignments(self) -> list[str]:
        return catalog.assignments(self.source) if self.source.is_dir() else []

    def notebooks(self, assignment: str) -> list[str]:
        return sorted(p.stem for p in (self.source / assignment).glob("*.ipynb"))

    def module(self, assignment: str) -> Path:
        return self.autograder / f"test_{assignment}.py"


def unsafe_in_process(in_process: bool | None = None) -> bool:
    """``in_process`` when given, else the course's setting (``MNISTKIT_UNSAFE_IN_PROCESS``)."""
    if in_process is not None:
        return in_process
    return settings().unsafe_in_process
