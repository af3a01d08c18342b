"""Grade a whole class: every student's submission of one assignment, in parallel, resumable.

``mnistkit grade-class SUBMITTED --assignment NAME --out DIR [--jobs N]`` walks nbgrader's
layout (``SUBMITTED/<student>/<assignment>/``) and grades each student with
``run.grade_submission`` (one sandbox and one grader process per notebook, so students cannot
affect each other). A student is one unit of work, graded by ``grade_one`` in a worker: a
process of a ``concurrent.futures.ProcessPoolExecutor`` (``jobs`` of them), or any
``concurrent.futures.Executor`` the caller passes (a Dask cluster's ``Client.get_executor()``).

One writer, this process, records each student as soon as their grading comes back:
``DIR/<student>/results.json`` (Gradescope's format) and ``summary.txt``, then the caller's
``recorder`` (nbgrader's gradebook), then ``DIR/<student>/graded.json`` with a fingerprint of
everything that decides the score (``grading_inputs``: the submission's files, the hidden tests,
the reference solutions, the source and release notebooks with their points, the limits and
the seed, the grading engine's code). Every file is written to a temporary name and renamed,
and graded.json comes last, so an interrupted run (Ctrl-C, a crash, a reboot) leaves each
student either fully graded or not at all; running the same command again keeps every student
whose fingerprint still matches and grades the rest. ``DIR/scores.csv`` (one row per student,
one column per exercise) is rewritten at the end of every run, also an interrupted one.

One student never stops a class. Any exception while grading one student (their submission
tripping a bug of the kit included) makes that student "not graded: <reason>": not a zero,
nothing in results.json or the gradebook, no total in scores.csv, whose ``status`` column says
it; graded.json keeps the reason and the traceback for the instructor, and the next run grades
them again. The batch goes on, lists them at the end, and ``mnistkit grade-class`` exits 1. A
failure of the machine (``run.GradingUnavailable``: the sandbox did not start) is retried once,
unless the pre-flight now fails here too: then the machine cannot grade anyone, and the batch
stops with nothing recorded for that student (rerun once fixed). A worker process that dies
(``BrokenProcessPool``) takes every grading of the pool with it: the pool is started again and
those students are graded again, one at a time, so that a worker dying again names its cause.
"""
from __future__ import annotations

import concurrent.futures as cf
import csv
import hashlib
import io
import json
import math
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import mnistkit
from mnistkit import catalog
from mnistkit.grading import run, submitted_files
from mnistkit.grading.results import Results, clean_line, write_atomically
from mnistkit.paths import SOLUTIONS

FINGERPRINT_FILE = "graded.json"
RESULTS_FILE = "results.json"
SUMMARY_FILE = "summary.txt"
SCORES_FILE = "scores.csv"
GRADED, NOT_GRADED = "graded", "not graded"   # a record's status (graded.json, scores.csv)
REASON_CHARS = 300        # a not-graded reason, one line
# Peak memory of one grading (PSS of the grader, the sandbox and the student's code), measured
# at 1.25-1.8 GiB on the four assignments; the default worker count keeps this much per worker.
PER_GRADING_BYTES = 2 << 30
STOP_SECONDS = 20.0   # how long stopped workers get to end their graders before they are killed
# Modules of the grading package that decide where results go, not what they are: an edit to
# them does not make every class regrade. Anything else in mnistkit/grading/ counts.
_NOT_SCORING = {"batch.py", "cli.py", "gradebook.py", "dask_cluster.py"}
# The rest of the kit that grading reads: hidden tests import mnistkit.data, the plugin reads
# points through mnistkit.catalog.
_KIT = Path(mnistkit.__file__).resolve().parent
_ENGINE_MODULES = ("catalog.py", "data.py", "paths.py")
# Settings read from the environment that change a score besides MNISTKIT_LIMIT_* (the sandbox's
# and the grader's limits) and the seed.
_SCORING_ENV = ("MNISTKIT_GRADING_SEED", run.TIMEOUT_ENV, run.IN_PROCESS_ENV)


class Recorder(Protocol):
    """Where else a graded student goes (e.g. nbgrader's gradebook, mnistkit/grading/gradebook.py).

    ``record(student, results)`` is called by the writer, in this process and one student at a
    time, in the order the gradings finish, after the student's results.json and summary.txt are
    written and before graded.json: a student counts as graded only once the recorder has
    returned, so a run stopped in between grades (and records) that student again. A recorder
    must therefore accept a student it has recorded before (replace, not add). A
    ``run.GradingUnavailable`` it raises (the gradebook cannot be written at all) stops the
    batch; any other exception makes that student not graded."""

    def record(self, student: str, results: Results) -> None: ...


class _NoRecorder:
    def record(self, student: str, results: Results) -> None:
        pass


# --- what decides a score -----------------------------------------------------------------

def _files(root: Path) -> list[Path]:
    """Files under ``root`` that grading can read: hidden ones (.ipynb_checkpoints) and
    compiled bytecode left by someone running the tests by hand are not."""
    if not root.is_dir():
        return []
    found = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if (not path.is_file() or path.is_symlink() or path.suffix == ".pyc"
                or any(part.startswith(".") or part == "__pycache__" for part in rel.parts)):
            continue
        found.append(path)
    return sorted(found)


def _hash_files(digest, root: Path, files: list[Path] | None = None) -> None:
    for path in _files(root) if files is None else files:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")


def reference_folders(course: run.Course) -> list[Path]:
    """Where the hidden tests' ``from solutions import ...`` can come from: the kit's
    solutions/ (on the grader's path for every course), and a course's own solutions/ next to
    its autograder/ when it has one. All their modules count, so a change to a module the tests
    import indirectly (``solutions/all_digits.py``) regrades too."""
    folders = [SOLUTIONS]
    own = course.autograder.parent / "solutions"
    if own.resolve() != SOLUTIONS.resolve():
        folders.append(own)
    return folders


def grading_inputs(assignment: str, course: run.Course) -> dict[str, tuple[Path, list[Path]]]:
    """The files every student of this assignment is graded with: what they are -> (their
    folder, the files in it that count). The hidden tests and the modules they import, the
    source notebooks (points, titles; locked cells a release lacks), the release notebooks
    (locked cells are restored from them), the grading engine's code."""
    inputs = {"hidden tests": (course.autograder, _files(course.autograder))}
    for number, folder in enumerate(reference_folders(course)):
        inputs[f"references {number}"] = (folder, [p for p in _files(folder) if p.suffix == ".py"])
    inputs["source notebooks"] = (course.source, _files(course.source / assignment))
    inputs["release notebooks"] = (course.release, _files(course.release / assignment))
    engine = [p for p in sorted((_KIT / "grading").glob("*.py")) if p.name not in _NOT_SCORING]
    inputs["grading engine"] = (_KIT, engine + [_KIT / name for name in _ENGINE_MODULES])
    return inputs


def grading_settings() -> dict[str, str]:
    """The settings from the environment that change a score: every ``MNISTKIT_LIMIT_*``
    variable that is set, the sandbox limits they make (``sandbox.Limits.from_env``, so a
    changed default counts too), the seed, the grading timeout, and the kit's version."""
    import dataclasses

    from mnistkit.grading.sandbox import Limits
    try:
        limits = Limits.from_env()
    except ValueError as exc:
        raise run.GradingUnavailable(str(exc)) from None
    # Threads change how fast a grading runs, not its score (grade-class gives each of N
    # workers its share of the cores): not in the fingerprint, or --jobs 2 would regrade a
    # class graded with --jobs 1.
    threads = Limits.ENV_PREFIX + "THREADS"
    settings = {name: value for name, value in os.environ.items() if name != threads
                and (name.startswith(Limits.ENV_PREFIX) or name in _SCORING_ENV)}
    settings["sandbox limits"] = repr(dataclasses.astuple(dataclasses.replace(limits, threads=0)))
    settings["grader memory"] = str(run.grader_memory())
    settings["mnistkit"] = mnistkit.__version__
    return dict(sorted(settings.items()))


def grading_fingerprint(assignment: str, course: run.Course) -> str:
    """One hash of everything every student of this run is graded with (``grading_inputs``
    and ``grading_settings``); a student's fingerprint adds their submission's files."""
    digest = hashlib.sha256(assignment.encode() + b"\0")
    for what, (folder, files) in grading_inputs(assignment, course).items():
        digest.update(what.encode() + b"\0")   # paths relative: a moved course keeps its grades
        _hash_files(digest, folder, files)
    digest.update(json.dumps(grading_settings()).encode())
    return digest.hexdigest()


def submission_fingerprint(folder: Path, grading: str) -> str:
    """The grading's fingerprint and the submission's files. Read like grading reads them
    (``submitted_files``): a link, a hard link or a special file counts by its name and kind,
    never by what it points to; a linked submission folder by where it points."""
    digest = hashlib.sha256(grading.encode())
    if submitted_files.root_refusal(folder):
        try:
            digest.update(b"refused\0" + os.fsencode(os.readlink(folder)))
        except OSError:
            digest.update(b"refused\0")
        return digest.hexdigest()
    entries, _ = submitted_files.walk(folder, skip=lambda name: name.startswith("."))
    for entry in entries:
        if any(part.startswith(".") for part in entry.rel.parts) or entry.kind == "folder":
            continue   # hidden folders are never read
        digest.update(os.fsencode(str(entry.rel)) + b"\0" + entry.kind.encode() + b"\0")
        if entry.kind != "file":
            continue
        try:
            with submitted_files.open_regular(folder, entry.rel) as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        except (OSError, submitted_files.Refused) as exc:   # changed since it was listed
            digest.update(type(exc).__name__.encode())
        digest.update(b"\0")
    return digest.hexdigest()


# --- how many workers ---------------------------------------------------------------------

def _cgroup_dir() -> Path | None:
    """This process's cgroup v2 folder (a container's or a systemd slice's limits live there)."""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return Path("/sys/fs/cgroup") / line[3:].lstrip("/")
    except OSError:
        pass
    return None


def _cgroup_value(name: str) -> list[str] | None:
    folder = _cgroup_dir()
    try:
        return (folder / name).read_text().split() if folder else None
    except OSError:
        return None


@dataclass(frozen=True)
class Capacity:
    """What this machine (or container) has for grading: cores and available memory.

    Read from the OS rather than psutil, which reports neither a container's CPU quota nor its
    memory limit (cgroup v2 ``cpu.max``, ``memory.max``)."""
    cores: int
    available_bytes: int | None   # None: unknown (then only the cores count)

    @classmethod
    def measure(cls) -> "Capacity":
        try:
            cores = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cores = os.cpu_count() or 1
        quota = _cgroup_value("cpu.max")
        if quota and quota[0] != "max":
            cores = min(cores, max(1, math.ceil(int(quota[0]) / int(quota[1]))))
        return cls(cores=cores, available_bytes=cls._available_memory())

    @staticmethod
    def _available_memory() -> int | None:
        available = None
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
        except (OSError, ValueError):
            try:
                available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
            except (AttributeError, ValueError, OSError):
                available = None
        limit, used = _cgroup_value("memory.max"), _cgroup_value("memory.current")
        if limit and used and limit[0] != "max":
            room = max(0, int(limit[0]) - int(used[0]))
            available = room if available is None else min(available, room)
        return available

    def jobs(self) -> int:
        """As many workers as there are cores and memory for (PER_GRADING_BYTES each), >= 1."""
        fit = self.cores if self.available_bytes is None else \
            min(self.cores, self.available_bytes // PER_GRADING_BYTES)
        return max(1, fit)

    def line(self, jobs: int, asked: bool = False) -> str:
        """One line saying the choice: '2 workers (2 cores, 20.1 GiB available, ~2 GiB per
        grading)'."""
        memory = "memory unknown" if self.available_bytes is None else \
            f"{self.available_bytes / (1 << 30):.1f} GiB available"
        why = f"{self.cores} core{'s' * (self.cores != 1)}, {memory}, " \
              f"~{PER_GRADING_BYTES / (1 << 30):g} GiB per grading"
        line = f"{jobs} worker{'s' * (jobs != 1)} ({'asked for; ' if asked else ''}{why})"
        if asked and jobs > self.jobs():
            line += f"; more than the {self.jobs()} that fit, gradings may run short of memory"
        return line


def default_jobs() -> int:
    """The worker count ``grade-class`` uses unless told (``Capacity.jobs``)."""
    return Capacity.measure().jobs()


# --- the workers --------------------------------------------------------------------------

def grade_one(folder: str, assignment: str, course: run.Course) -> Results:
    """One student's grading: the unit of work a worker runs. A top-level function of plain
    arguments, so it pickles by name for worker processes and Dask alike; ``Results`` is plain
    data too. Raises ``run.GradingUnavailable`` when the machine cannot grade. The folder is
    the student's (``follow_root=False``): a link in its place is refused, not followed.
    In the kit's own worker, a SIGTERM during the grading unwinds it (its grader, sandboxes and
    scratch folders go) and then ends the worker (``_leave``)."""
    _WORKER["grading"] = True
    try:
        return run.grade_submission(Path(folder), assignment, course=course, follow_root=False)
    except SystemExit as exc:
        if _WORKER["started"]:
            _leave(exc.code if isinstance(exc.code, int) else 1)
        raise
    finally:
        _WORKER["grading"] = False


# Set in the kit's worker processes: whether this is one, and whether a grading is under way.
_WORKER = {"started": False, "grading": False}
LEAVE_SECONDS = 10     # the most a stopped worker spends closing its warm servers


def _leave(code: int) -> None:
    """End this worker at once: its warm servers closed (their processes and inboxes) and then
    ``os._exit``. Not an interpreter shutdown: multiprocessing's exit handlers join the queue
    threads that talk to a batch that may be gone, and a worker once hung there for an hour
    (issue 22). Nothing here takes a lock a signal could have interrupted: it runs after the
    grading unwound, or in a worker idle between gradings. SIGALRM's default action ends the
    worker if closing takes longer than ``LEAVE_SECONDS``."""
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(LEAVE_SECONDS)
    try:
        from mnistkit.grading import warm_grader, zygote
        for pool in (warm_grader._servers, zygote._servers):
            for servers in list(pool.idle.values()):
                for server in list(servers):
                    server.close()
    finally:
        os._exit(code)


def _die_with_parent(signum: int) -> None:
    """PR_SET_PDEATHSIG: the kernel sends ``signum`` to this process when its parent dies, so a
    batch killed outright (SIGKILL, an OOM kill) does not leave its workers running."""
    import ctypes
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signum, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _worker_started(threads: int = 0) -> None:
    """Initializer of the kit's own worker processes. They share the terminal's process group,
    so a Ctrl-C reaches them too: they leave it to the batch (which stops them with SIGTERM,
    in turn, after cancelling what has not started). SIGTERM raises SystemExit, so a grading in
    progress kills its grader process group on the way out (``run._run``) instead of leaving it
    behind. A Python-level handler, not SIG_IGN: an ignored signal would stay ignored in the
    grader and the sandbox started from here, a handled one is reset by exec."""
    signal.signal(signal.SIGINT, lambda signum, frame: None)
    signal.signal(signal.SIGTERM, _exit_on_term)
    signal.signal(signal.SIGHUP, _exit_on_term)
    _WORKER["started"] = True
    _die_with_parent(signal.SIGTERM)
    # Each worker its share of the cores, in its sandboxes and its grader (unless the course set
    # MNISTKIT_LIMIT_THREADS): two workers of two threads each on two cores fight over them.
    if threads > 0:
        os.environ.setdefault("MNISTKIT_LIMIT_THREADS", str(threads))
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ.setdefault(name, str(threads))


def _exit_on_term(signum, frame):
    """A grading under way unwinds (``grade_one`` then leaves); an idle worker leaves now."""
    if _WORKER["grading"]:
        raise SystemExit(128 + signum)
    _leave(128 + signum)


@contextmanager
def stop_on_signals():
    """For the commands that run a batch (grade-class, bench): SIGTERM and SIGHUP, the way
    ``timeout``, a scheduler or a closed terminal stops a command, stop the batch like a Ctrl-C
    (``KeyboardInterrupt``): workers stopped, scores written, scratch folders removed."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"stopped by signal {signum}")
    try:
        previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    except ValueError:   # not the main thread: the caller handles signals
        previous = {}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def spawnable_main() -> None:
    """multiprocessing's spawn reads ``__main__.__spec__``; an IPython shell in this process (an
    in-process grading, the kit's tests) leaves a ``__main__`` without one, and starting workers
    then fails. None is what spawn expects of a main module it need not import."""
    main = sys.modules.get("__main__")
    if main is not None and not hasattr(main, "__spec__"):
        main.__spec__ = None


def _process_pool(workers: int) -> cf.ProcessPoolExecutor:
    # "spawn": a fresh interpreter per worker. Not fork (the batch's process may have threads: a
    # forked copy of a held lock deadlocks), and not forkserver: its server is started once per
    # process with the environment of that moment, and later batches (MNISTKIT_LIMIT_* changed)
    # would be graded with stale settings; spawn reads os.environ at every start.
    threads = max(1, Capacity.measure().cores // workers)
    spawnable_main()
    return cf.ProcessPoolExecutor(max_workers=workers, initializer=_worker_started,
                                  initargs=(threads,),
                                  mp_context=multiprocessing.get_context("spawn"))


class _InThisProcess(cf.Executor):
    """One grading at a time in this process (``jobs=1``): no worker to start, and no second
    pre-flight in it; the batch goes through the same writer. ``submit`` grades before it
    returns; a Ctrl-C raises out of it like out of a wait."""

    def submit(self, fn, /, *args, **kwargs):
        future = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future


def _stop(executor: cf.Executor, futures, owned: bool) -> None:
    """Cancel every grading not started; when the pool is ours, end the running ones too and make
    sure no worker (and so no grader, no sandbox: they die with their worker's grading) is left."""
    for future in futures:
        future.cancel()
    if not owned or isinstance(executor, _InThisProcess):
        return
    # The pool's worker processes: concurrent.futures has no public way to list them.
    processes = list((getattr(executor, "_processes", None) or {}).values())
    for process in processes:
        if process.is_alive():
            try:
                os.kill(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    executor.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + STOP_SECONDS
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(5)
    executor.shutdown(wait=True, cancel_futures=True)


@contextmanager
def _no_interrupt():
    """Another Ctrl-C while the batch stops would leave workers behind: hold it until done."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:   # not the main thread: nothing to hold
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


# --- the batch ----------------------------------------------------------------------------

@dataclass
class ClassRun:
    """What one ``grade_class`` call did."""
    graded: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)       # unchanged since their last grading
    missing: list[str] = field(default_factory=list)    # a student folder without this assignment
    not_graded: dict[str, str] = field(default_factory=dict)   # student -> why (one line)
    seconds: float = 0.0
    walls: dict[str, float] = field(default_factory=dict)   # student -> their grading's seconds

    SLOWEST = 3

    def slowest_line(self, count: int = SLOWEST) -> str:
        """The students whose gradings took longest, slowest first: time is what one submission
        can take from a class (a notebook that sleeps to its budget holds a worker), so the
        instructor sees who spent it; "" when nobody was graded."""
        ranked = sorted(self.walls.items(), key=lambda item: (-item[1], item[0]))[:count]
        if not ranked:
            return ""
        return "slowest: " + ", ".join(f"{clean_line(student, 100)} {duration(seconds)}"
                                       for student, seconds in ranked)

    def line(self) -> str:
        return (f"graded {len(self.graded)}, kept {len(self.kept)} unchanged, "
                f"{len(self.missing)} without a submission, "
                + (f"{len(self.not_graded)} NOT GRADED, " if self.not_graded else "")
                + f"in {self.seconds:.0f} s")

    def not_graded_lines(self) -> list[str]:
        """One line per student not graded, for the end of the run's output."""
        return [f"  {clean_line(student, 100)}: not graded: {reason}"
                for student, reason in sorted(self.not_graded.items())]


def students(submitted: Path, assignment: str) -> list[tuple[str, Path | None]]:
    """(student id, their submission folder or None), sorted by id; hidden folders skipped."""
    found = []
    for entry in sorted(Path(submitted).iterdir()):
        if entry.is_dir() and not entry.name.startswith("."):
            folder = entry / assignment
            # a link in its place is the student's doing: graded, and refused (grade_one)
            found.append((entry.name, folder if folder.is_dir() or folder.is_symlink() else None))
    return found


def is_current(out: Path, fingerprint: str) -> bool:
    try:
        recorded = json.loads((out / FINGERPRINT_FILE).read_text())
    except (OSError, ValueError):
        return False
    return (recorded.get("fingerprint") == fingerprint and (out / RESULTS_FILE).is_file()
            and recorded.get("status", GRADED) == GRADED)


def duration(seconds: float) -> str:
    """'25s', '1m10s', '1h02m': short enough for a progress line."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


@dataclass
class _Progress:
    """done/total, elapsed, and the time left: the mean wall time of a grading so far, times the
    gradings left, over the workers grading them (``workers`` None, an executor of unknown
    size: the time per student graded so far, times the students left)."""
    total: int
    workers: int | None
    start: float = field(default_factory=time.perf_counter)
    done: int = 0
    walls: list[float] = field(default_factory=list)
    left_to_grade: int = 0

    def where(self, student: str) -> str:
        # a folder name is the submitter's text too: shown cleaned, like every student string
        return f"[{self.done}/{self.total}] {clean_line(student, 100)}"

    def timing(self) -> str:
        line = f" · elapsed {duration(time.perf_counter() - self.start)}"
        if self.left_to_grade and self.walls:
            if self.workers is None:
                per_student = (time.perf_counter() - self.start) / len(self.walls)
            else:
                per_student = sum(self.walls) / len(self.walls) / \
                    max(1, min(self.workers, self.left_to_grade))
            line += f" · about {duration(per_student * self.left_to_grade)} left"
        return line


def _record(target: Path, student: str, fingerprint: str, graded: Results,
            recorder: Recorder) -> None:
    write_atomically(target / RESULTS_FILE, json.dumps(graded.to_gradescope(), indent=2) + "\n")
    write_atomically(target / SUMMARY_FILE, graded.summary() + "\n")
    recorder.record(student, graded)
    write_atomically(target / FINGERPRINT_FILE, json.dumps(
        {"fingerprint": fingerprint, "assignment": graded.assignment, "student": student,
         "status": GRADED, "scores": graded.scores(), "problems": graded.problems,
         "warnings": graded.warnings,
         # how each notebook's sandbox ran (warm or cold, restarts, peak memory): for instructors
         "sandboxes": {r.get("notebook_name") or "": r.get("sandbox", {})
                       for r in graded.notebooks}}, indent=2) + "\n")


def _record_not_graded(target: Path, student: str, assignment: str, fingerprint: str,
                       reason: str, details: str) -> None:
    """A student the batch could not grade: graded.json says so (with the traceback, for the
    instructor) and holds no scores; results.json from an earlier grading goes, since it no
    longer describes this submission. Not handed to the recorder: nothing to record."""
    (target / RESULTS_FILE).unlink(missing_ok=True)
    write_atomically(target / SUMMARY_FILE, f"not graded: {reason}\n")
    write_atomically(target / FINGERPRINT_FILE, json.dumps(
        {"fingerprint": fingerprint, "assignment": assignment, "student": student,
         "status": NOT_GRADED, "reason": reason, "scores": {}, "details": details[-20000:]},
        indent=2) + "\n")


def _why(exc: BaseException) -> tuple[str, str]:
    """(one line for the instructor's list and scores.csv, the traceback) of a failed grading.
    A worker's traceback comes along as the exception's cause (concurrent.futures)."""
    if isinstance(exc, run.GradingUnavailable):
        line = str(exc)
    else:
        line = f"the grader failed ({type(exc).__name__}: {exc}); a kit problem, see graded.json"
    return clean_line(line, REASON_CHARS), "".join(traceback.format_exception(exc))


def _machine_cannot_grade(assignment: str, course: run.Course, executor) -> str | None:
    """After a machine failure: the pre-flight again, uncached, here (None: it passes, so the
    failure was that student's grading's; a cluster checks its own workers)."""
    if getattr(executor, "checks_workers", False):
        return None
    from mnistkit.grading import preflight
    preflight.forget()
    try:
        run.check_can_grade(assignment, course)
    except run.GradingUnavailable as exc:
        return str(exc)
    return None


def _graded_line(graded: Results) -> str:
    return (f"{graded.score:g} / {graded.max_score:g} in {graded.execution_time:.0f} s"
            + ("" if not graded.problems else f" (kit problems: {'; '.join(graded.problems)})")
            # checks the submission's values made raise: failed for the student, worth a look
            + ("" if not graded.warnings else f" ({len(graded.warnings)} warning(s) in "
               f"{FINGERPRINT_FILE})"))


def grade_class(submitted: Path, assignment: str, out: Path, *, course: run.Course | None = None,
                jobs: int | None = None, executor: cf.Executor | None = None,
                say: Callable[[str], None] = print,
                recorder: Recorder | None = None) -> ClassRun:
    """Grade every student who is not graded yet (or whose grading inputs changed); see the
    module docstring.

    ``jobs``: how many students are graded at once (default 1, in this process; ``mnistkit
    grade-class`` defaults to ``default_jobs()``): with ``executor`` None, that many worker
    processes of our own, stopped before this returns. ``executor``: any
    ``concurrent.futures.Executor`` to grade on instead (it stays the caller's to shut down); it
    is handed ``jobs`` gradings at a time, all of them when ``jobs`` is None. ``recorder``: see
    ``Recorder``.

    A student whose grading fails is "not graded" (``ClassRun.not_graded``; see the module
    docstring) and the batch goes on. Raises ``run.GradingUnavailable`` when grading cannot run
    at all: the pre-flight refuses before anyone is graded, or fails again after a student's
    grading failed on the machine's side, or a caller's executor breaks; then the batch stops
    there, and that student gets nothing recorded rather than zeros. On KeyboardInterrupt the
    gradings in progress are stopped, scores.csv is written, and the interrupt raised again.
    Either way every student recorded stays."""
    course = course or run.Course.default()
    recorder = recorder or _NoRecorder()
    submitted, out = Path(submitted), Path(out)
    if not submitted.is_dir():
        raise run.GradingUnavailable(f"no such folder: {submitted}")
    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    if not getattr(executor, "checks_workers", False):   # a cluster checks its own workers
        run.check_can_grade(assignment, course)   # the pre-flight: before grading anyone
    if jobs is None and hasattr(executor, "slots"):
        jobs = executor.slots
    grading = grading_fingerprint(assignment, course)
    # A gradebook that lacks a student graded before (a run without it): graded again for it.
    in_gradebook = recorder.recorded_students() if hasattr(recorder, "recorded_students") else None
    everyone = students(submitted, assignment)
    result = ClassRun()
    todo: deque[tuple[str, Path, str]] = deque()
    progress = _Progress(total=len(everyone), workers=jobs)
    for student, folder in everyone:   # the students with nothing to grade count as done now
        if folder is None:
            result.missing.append(student)
            progress.done += 1
            say(f"{progress.where(student)}: no {assignment}/ folder, nothing to grade")
            continue
        fingerprint = submission_fingerprint(folder, grading)
        if is_current(out / student, fingerprint) and (in_gradebook is None
                                                       or student in in_gradebook):
            result.kept.append(student)
            progress.done += 1
            say(f"{progress.where(student)}: unchanged since it was graded, kept")
            continue
        todo.append((student, folder, fingerprint))
    progress.left_to_grade = len(todo)
    owned = executor is None
    scratch = None
    if owned:
        window = min(jobs or 1, max(1, len(todo)))
        if window > 1 and todo:
            scratch = _WorkersScratch()
        executor = _InThisProcess() if window == 1 or not todo else _process_pool(window)
    else:
        window = jobs or max(1, len(todo))
    progress.workers = window if owned else jobs
    running: dict[cf.Future, tuple[str, Path, str]] = {}
    tries: dict[str, int] = {}   # machine failures, per student
    pool_of: dict[cf.Future, cf.Executor] = {}   # a broken pool is started again once
    suspects: set[str] = set()   # were grading when a worker died: graded again, alone

    def not_graded(student, fingerprint, exc):
        reason, details = _why(exc)
        _record_not_graded(out / student, student, assignment, fingerprint, reason, details)
        result.not_graded[student] = reason
        progress.done += 1
        progress.left_to_grade -= 1
        say(f"{progress.where(student)}: not graded: {reason}{progress.timing()}")

    def stop(student, why):
        raise run.GradingUnavailable(
            f"stopped at {student} ({why}); nothing recorded for them, the "
            f"{len(result.graded)} graded in this run are saved: run the same "
            "command again once fixed") from None

    try:
        while todo or running:
            while todo and len(running) < window:   # hand out work as workers free up
                if suspects & {running[f][0] for f in running} \
                        or running and todo[0][0] in suspects:
                    break   # a suspect is graded alone: if its worker dies, it was its doing
                student, folder, fingerprint = item = todo.popleft()
                say(f"{progress.where(student)}: grading ...")
                try:
                    future = executor.submit(grade_one, str(folder), assignment, course)
                except cf.BrokenExecutor as exc:   # a worker died since the last look
                    if not owned:
                        stop(student, f"a worker process died: {exc}")
                    todo.appendleft(item)
                    executor = _restart_pool(executor, window)
                    continue
                running[future], pool_of[future] = item, executor
            # wait, not as_completed: the set of futures grows as work is handed out
            finished, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for future in sorted(finished, key=lambda f: running[f][0]):
                student, folder, fingerprint = item = running.pop(future)
                pool = pool_of.pop(future)
                try:
                    graded = future.result()
                except cf.BrokenExecutor as exc:
                    # a worker died (killed for memory?): every grading in the pool is lost.
                    # Ours is started again and they are graded again, each alone; a student
                    # whose worker dies while graded alone is not graded (the cause, theirs,
                    # would otherwise stop the class)
                    if not owned:
                        stop(student, f"a worker process died: {exc}; out of memory? try "
                                      "fewer --jobs")
                    if student in suspects and not running:
                        suspects.discard(student)
                        not_graded(student, fingerprint, run.GradingUnavailable(
                            "the worker process grading it died (out of memory?)"))
                    else:
                        suspects.add(student)
                        todo.appendleft(item)
                    if pool is executor:
                        executor = _restart_pool(executor, window)
                    continue
                except run.GradingUnavailable as exc:
                    # the machine's fault (the sandbox did not start, the data gone): if it
                    # cannot grade anyone now, stop; else once more, then not graded
                    if _machine_cannot_grade(assignment, course, executor) is not None:
                        stop(student, str(exc))
                    tries[student] = tries.get(student, 0) + 1
                    if tries[student] < 2:
                        say(f"{progress.where(student)}: {clean_line(exc, REASON_CHARS)}; "
                            "grading once more")
                        todo.appendleft(item)
                    else:
                        not_graded(student, fingerprint, exc)
                    continue
                except Exception as exc:   # a kit bug their submission trips: theirs alone
                    not_graded(student, fingerprint, exc)
                    continue
                try:
                    _record(out / student, student, fingerprint, graded, recorder)
                except run.GradingUnavailable:
                    raise   # the gradebook cannot be written at all: nobody can be recorded
                except Exception as exc:
                    not_graded(student, fingerprint, exc)
                    continue
                suspects.discard(student)
                result.graded.append(student)
                result.walls[student] = graded.execution_time
                progress.done += 1
                progress.left_to_grade -= 1
                progress.walls.append(graded.execution_time)
                say(f"{progress.where(student)}: {_graded_line(graded)}{progress.timing()}")
    except BaseException:
        with _no_interrupt():
            _stop(executor, running, owned)
            if scratch is not None:
                scratch.remove()
            write_scores_csv(out, assignment, course)
        raise
    if owned:
        executor.shutdown(wait=True)
    if scratch is not None:
        scratch.remove()
    write_scores_csv(out, assignment, course)
    result.seconds = time.perf_counter() - progress.start
    return result


class _WorkersScratch:
    """The workers' TMPDIR: one folder of this batch's (workers are spawned with the environment
    of the moment), removed whole once they are stopped. A worker stopped at the wrong instant,
    inside a clean-up, or killed after ``STOP_SECONDS``, can leave a grading's scratch folder
    behind; here it goes with the rest."""

    def __init__(self):
        self.before = os.environ.get("TMPDIR")
        self.path = tempfile.mkdtemp(prefix="mnistkit-batch-")
        os.environ["TMPDIR"] = self.path

    def remove(self) -> None:
        if self.before is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = self.before
        shutil.rmtree(self.path, ignore_errors=True)


def _restart_pool(executor: cf.Executor, window: int) -> cf.Executor:
    """A new worker pool in place of one that broke; the gradings it was running are lost
    (their futures fail too and come back through the batch's loop, which grades them again)."""
    if isinstance(executor, _InThisProcess):
        return executor
    _stop(executor, [], owned=True)
    return _process_pool(window)


def write_scores_csv(out: Path, assignment: str, course: run.Course) -> Path | None:
    """One row per student recorded: each auto-graded exercise's score, the total and the
    ``status`` ("graded", or "not graded: <reason>" with no scores and no total, so that no
    sum or mean over the column counts a student who was not graded as a zero)."""
    if not out.is_dir():
        return None
    ids = [ex.id for ex in catalog.load(course.source)
           if ex.assignment == assignment and ex.kind == "auto"]
    rows = []
    for record in sorted(out.glob(f"*/{FINGERPRINT_FILE}")):
        try:
            data = json.loads(record.read_text())
        except (OSError, ValueError):
            continue
        if data.get("assignment") != assignment:
            continue
        if data.get("status", GRADED) != GRADED:
            rows.append([data["student"]] + [""] * len(ids)
                        + ["", f"{NOT_GRADED}: {clean_line(data.get('reason', ''), REASON_CHARS)}"])
            continue
        scores = data.get("scores", {})
        rows.append([data["student"]] + [scores.get(i, "") for i in ids]
                    + [round(sum(scores.get(i) or 0 for i in ids), 4), GRADED])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student"] + ids + ["total", "status"])
    writer.writerows(rows)
    path = out / SCORES_FILE
    write_atomically(path, buffer.getvalue())
    return path
