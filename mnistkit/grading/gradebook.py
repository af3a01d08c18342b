"""grade-class's scores into nbgrader's gradebook, by nbgrader's own code.

formgrader (hand-grading) and ``nbgrader export`` read ``gradebook.db`` and
``autograded/<student>/<assignment>/<notebook>.ipynb``. ``NbgraderRecorder.record`` fills both
for one student by running nbgrader's Autograde converter in this process -- the same
sanitizing, the same kit preprocessor (``nbgrader_autograde.GradeWithHiddenTests``) and the same
``SaveAutoGrades`` as ``nbgrader autograde`` -- except that the preprocessor is handed the grade
reports grade-class has just computed, so nothing is graded twice and no student code runs
here: a record only reads the submission and writes. The gradebook therefore holds exactly what
``nbgrader autograde ASSIGNMENT --student S --force`` would record for that submission.

The course is nbgrader's: ``course_dir`` holds ``nbgrader_config.py`` (the kit's, which
replaces Execute) and the gradebook it names; submissions are read from its ``submitted/``
unless ``submitted`` says otherwise. One recorder is one writer: grade-class calls ``record``
from its main process only (SQLite and nbgrader's converters are not for concurrent writers).
"""
from __future__ import annotations

import contextlib
import copy
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

from mnistkit.grading.results import Results, clean_line
from mnistkit.grading.run import GradingUnavailable

CONFIG_FILE = "nbgrader_config.py"


@contextlib.contextmanager
def _quiet_nbgrader():
    """nbgrader 0.9.6's Gradebook.add_submission builds a submission's rows before it adds them
    to the session; SQLAlchemy 2 autoflushes in between and warns (SAWarning "Object of type
    <SubmittedAssignment> not in session, add operation along 'Student.submissions' will not
    proceed") although the rows are added and committed right after: nbgrader's, harmless,
    and `nbgrader autograde` prints it too. Only that message, only from nbgrader's api module,
    only while nbgrader runs here. (The checksum and "No submitted file" messages go to the
    recorder's own logger, not to the terminal: see _log_buffer.)"""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Object of type <Submitted\w+> not in session",
                                module=r"nbgrader\.api")
        yield


class GradebookUnavailable(GradingUnavailable):
    """The gradebook cannot be written at all (no config, the assignment does not fit the
    gradebook's, the database fails); ``str(exc)`` is one line. A kind of
    ``run.GradingUnavailable``: grade-class stops on it the same way, with every student
    recorded so far kept."""


def _log_buffer(name: str) -> tuple[logging.Logger, "_Lines"]:
    """A logger of our own for nbgrader's converters (they log through the logger they are
    given, and their preprocessors inherit it): nothing reaches the terminal, warnings and
    errors are kept for the report. nbgrader logs at INFO every file it copies and, when a
    student has no notebook of that name, a WARNING that grade-class already reports its
    way; none of it belongs in grade-class's output."""
    logger = logging.getLogger(f"mnistkit.gradebook.{name}")
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    lines = _Lines()
    logger.addHandler(lines)
    return logger, lines


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)

    def take(self) -> list[str]:
        """The errors logged since the last take, one line each: a traceback nbgrader logs
        becomes its last line (the exception); the exceptions first, they say the most."""
        errors = [r.getMessage().strip().splitlines() for r in self.records
                  if r.levelno >= logging.ERROR]
        self.records = []
        tracebacks = [lines[-1] for lines in errors if len(lines) > 1]
        return tracebacks + [lines[0] for lines in errors if len(lines) == 1]


@contextlib.contextmanager
def _alembic_on_path():
    """nbgrader creates a new gradebook by running the ``alembic`` command (for the schema
    version to stamp it with); it lives beside this Python, which is not on PATH when the kit's
    venv is used without activating it (mnistkit.build.nbgrader_env does the same for
    subprocesses)."""
    here = str(Path(sys.executable).parent)
    old = os.environ.get("PATH", "")
    if shutil.which("alembic") is None:
        os.environ["PATH"] = here + os.pathsep + old
    try:
        yield
    finally:
        os.environ["PATH"] = old


def load_config(course_dir: Path):
    """The course's nbgrader configuration, as ``nbgrader`` run in ``course_dir`` loads it."""
    from traitlets.config.loader import ConfigFileNotFound, PyFileConfigLoader

    try:
        config = PyFileConfigLoader(CONFIG_FILE, path=str(course_dir)).load_config()
    except ConfigFileNotFound:
        raise GradebookUnavailable(f"{course_dir / CONFIG_FILE} does not exist: not an "
                                   "nbgrader course folder") from None
    config.CourseDirectory.root = str(course_dir)
    return config


class NbgraderRecorder:
    """Records each graded student of ``assignment`` into ``course_dir``'s gradebook.

    Creating it makes sure the gradebook knows the assignment as ``source/`` has it now: it runs
    nbgrader's GenerateAssignment (what ``nbgrader generate_assignment ASSIGNMENT --force``
    records: the assignment, its notebooks, grade and task cells with their points, the
    locked cells' sources and checksums that nbgrader's sanitizing restores) with the release
    written to a scratch folder, so the kit's ``release/`` (``mnistkit build``'s) is never
    touched. That covers a fresh clone (``release/`` but no ``gradebook.db``: the database is
    created), and a points fix since the last run. nbgrader refuses to add or remove cells or
    notebooks of an assignment that has submissions in the gradebook: that is raised here, as
    ``GradebookUnavailable``, before anyone is graded.

    ``record(student, results)`` returns None when recorded as is, else one cleaned line (also
    given to ``say``) saying what differs: not recorded (nbgrader could not read that
    submission, it has no notebook under its released name) or recorded with a 0 where
    grade-class graded a stand-in file. It does not raise for one student's sake, only
    ``GradebookUnavailable`` when the database itself fails (locked, unreadable): then no one
    can be recorded, and grade-class stops with that line. ``failures`` keeps, per student,
    what nbgrader logged when it failed.
    """

    def __init__(self, course_dir: Path, assignment: str, *, submitted: Path | None = None,
                 say: Callable[[str], None] | None = None):
        self.say = say or (lambda line: None)
        self.course_dir = Path(course_dir).absolute()
        self.assignment = assignment
        self.config = load_config(self.course_dir)
        if submitted is not None:
            # nbgrader joins root and the step folder; an absolute folder stands on its own
            self.config.CourseDirectory.submitted_directory = str(Path(submitted).absolute())
        self.failures: dict[str, list[str]] = {}
        self.seconds = 0.0          # spent recording, all students together
        self.log, self._lines = _log_buffer(f"{id(self):x}")
        self._sync_assignment()

    def _coursedir(self, config, **attrs):
        from nbgrader.coursedir import CourseDirectory
        coursedir = CourseDirectory(config=config, log=self.log)
        for name, value in attrs.items():
            setattr(coursedir, name, value)
        return coursedir

    def _sync_assignment(self) -> None:
        plain = self._coursedir(self.config)
        source = Path(plain.format_path(plain.source_directory, ".", self.assignment))
        if not source.is_dir():
            raise GradebookUnavailable(f"{source} does not exist: nbgrader's gradebook takes "
                                       "the assignment from its source notebooks")
        with tempfile.TemporaryDirectory(prefix="mnistkit-gradebook-") as scratch:
            _generate_into_gradebook(self.config, self.assignment, Path(scratch) / "release",
                                     self.log, self._lines)

    def record(self, student: str, results: Results) -> str | None:
        """Record ``student``'s graded ``results`` (see the class docstring)."""
        from nbgrader.converters import Autograde

        start = time.perf_counter()
        try:
            plain = self._coursedir(self.config)
            folder = Path(plain.format_path(plain.submitted_directory, student, self.assignment))
            # nbgrader reads a notebook under its released name only; grade-class also takes
            # a stand-in ('a1 (1).ipynb' for a missing a1.ipynb). Say where the two differ.
            names = [report["notebook_name"] for report in results.notebooks]
            absent = [n for n in names if not (folder / f"{n}.ipynb").is_file()]
            stand_ins = [n for n in absent
                         if any(r["notebook_name"] == n and r.get("graded")
                                for r in results.notebooks)]
            unnamed = ", ".join(f"{n}.ipynb" for n in stand_ins)
            if names and len(absent) == len(names):
                # nbgrader would fail on this folder after opening an empty submission for the
                # student (blank grades in formgrader): record nothing instead, like it means to
                return self._said(
                    student, f"not recorded in the gradebook: nbgrader finds no "
                    f"{', '.join(f'{n}.ipynb' for n in names)} in the submission"
                    + (f" (grade-class graded another file as {unnamed})" if stand_ins else ""))
            config = copy.deepcopy(self.config)
            config.GradeWithHiddenTests.reports = {
                student: {report["notebook_name"]: report for report in results.notebooks}}
            coursedir = self._coursedir(config, assignment_id=self.assignment,
                                        student_id=_glob_literal(student), notebook_id="*")
            app = Autograde(coursedir=coursedir, config=config, log=self.log)
            app.force = True            # a regraded student replaces the old record
            app.create_student = True
            cwd = os.getcwd()           # nbgrader's start() changes into the course and back
            try:
                with _quiet_nbgrader():
                    app.start()
            except Exception as exc:
                errors = self._lines.take() or [f"{type(exc).__name__}: {exc}"]
                if _database_error(exc) or not self._database_opens():
                    # no one can be recorded: stop the batch, say why
                    raise GradebookUnavailable(clean_line(
                        f"could not write {coursedir.db_url}: {errors[0]}", 1000)) from None
                self.failures[student] = errors   # this submission only (nbgrader's reason)
                return self._said(student, f"not recorded in the gradebook: {errors[0]}")
            finally:
                os.chdir(cwd)
            self._lines.take()
            if stand_ins:
                return self._said(student, f"the gradebook has 0 for {unnamed}: nbgrader reads "
                                  "a notebook under its released name only, grade-class graded "
                                  "another file in its place")
            return None
        finally:
            self.seconds += time.perf_counter() - start

    def _said(self, student: str, line: str) -> str:
        # a folder name is the submitter's text: cleaned like every student string
        line = clean_line(f"{clean_line(student, 100)}: {line}", 400)
        self.say(line)
        return line

    def _database_opens(self) -> bool:
        """Whether the gradebook still opens (nbgrader logs a corrupt or vanished database like
        a failure of one submission)."""
        from nbgrader.api import Gradebook
        try:
            coursedir = self._coursedir(self.config)
            Gradebook(coursedir.db_url, coursedir.course_id).close()
        except Exception:
            return False
        return True

    @property
    def fingerprint(self) -> str:
        """Where this recorder writes: for grade-class to count a student as done only for the
        gradebook they were recorded in (a student kept from a run without one is not in it)."""
        return f"nbgrader:{self.course_dir}:{self._coursedir(self.config).db_url}"

    def recorded_students(self) -> set[str]:
        """Students with a submission of this assignment in the gradebook and its autograded
        folder present: the ones formgrader can show."""
        from nbgrader.api import Gradebook, MissingEntry
        coursedir = self._coursedir(self.config)
        with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
            try:
                submissions = gb.find_assignment(self.assignment).submissions
            except MissingEntry:
                return set()
            names = {sub.student.id for sub in submissions}
        return {name for name in names if Path(coursedir.format_path(
            coursedir.autograded_directory, name, self.assignment)).is_dir()}


def _generate_into_gradebook(config, assignment: str, release_dir: Path, log, lines) -> None:
    """nbgrader's GenerateAssignment (``--force``) for ``assignment`` (``*``: all of them, in one
    run), with the release written to ``release_dir`` (a scratch folder: ``release/`` is
    ``mnistkit build``'s) and the gradebook the config names updated: the assignment, its
    notebooks, grade and task cells with their points, the locked cells' sources and checksums."""
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    config = copy.deepcopy(config)   # sections are shared by a shallow copy
    config.CourseDirectory.release_directory = str(release_dir)
    coursedir = CourseDirectory(config=config, log=log)
    coursedir.assignment_id, coursedir.notebook_id = assignment, "*"
    app = GenerateAssignment(coursedir=coursedir, config=config, log=log)
    app.force = True
    try:
        with _alembic_on_path(), _quiet_nbgrader():
            app.start()
    except Exception as exc:
        errors = lines.take()
        raise GradebookUnavailable(clean_line(
            f"nbgrader could not record {assignment} in {coursedir.db_url}: "
            f"{'; '.join(errors) or exc}", 1000)) from None
    lines.take()


def add_assignments(course_dir: Path, release_dir: Path, assignment: str = "*") -> None:
    """Add ``assignment`` (default: every one in ``source/``) to ``course_dir``'s gradebook, as
    ``nbgrader generate_assignment --force`` does, writing the release to ``release_dir`` for
    the caller to compare with ``release/`` (mnistkit.course). Raises GradebookUnavailable."""
    config = load_config(Path(course_dir).absolute())
    log, lines = _log_buffer(f"add-{id(config):x}")
    _generate_into_gradebook(config, assignment, Path(release_dir), log, lines)


def _database_error(exc: BaseException) -> bool:
    """Whether nbgrader failed on the database itself (locked, unreadable, an old schema) rather
    than on one submission: it raises NbGraderException from sqlalchemy's OperationalError."""
    import sqlalchemy.exc
    while exc is not None:
        if isinstance(exc, sqlalchemy.exc.OperationalError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _glob_literal(name: str) -> str:
    """nbgrader finds a student's notebooks with glob(); a folder named ``a[1]`` must match
    itself only (nbgrader reads the id back from the path it found, so it is stored as is)."""
    import glob
    return glob.escape(name)
