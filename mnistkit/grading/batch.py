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

This module is the batch's loop; what it writes per student is ``batch_records``, what decides
a score ``fingerprints``, and the worker processes ``batch_workers``.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mnistkit.grading import run
# The records, the fingerprints and the workers are modules of their own; their names that
# callers use stay importable from here (batch.FINGERPRINT_FILE, batch.Capacity, ...).
from mnistkit.grading.batch_records import (  # noqa: F401
    FINGERPRINT_FILE, GRADED, NOT_GRADED, REASON_CHARS, RESULTS_FILE, SCORES_FILE, SUMMARY_FILE,
    Recorder, _NoRecorder, _record, _record_not_graded, is_current, write_scores_csv)
from mnistkit.grading.batch_workers import (  # noqa: F401
    PER_GRADING_BYTES, STOP_SECONDS, Capacity, _InThisProcess, _leave, _no_interrupt, _stop,
    _worker_started, _WORKER, _WorkersScratch, default_jobs, spawnable_main, stop_on_signals)
from mnistkit.grading.fingerprints import (  # noqa: F401
    grading_fingerprint, grading_inputs, grading_settings, reference_folders,
    submission_fingerprint)
from mnistkit.grading.results import Results, clean_line


# --- the workers' unit of work --------------------------------------------------------------

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


def _restart_pool(executor: cf.Executor, window: int) -> cf.Executor:
    """A new worker pool in place of one that broke; the gradings it was running are lost
    (their futures fail too and come back through the batch's loop, which grades them again)."""
    if isinstance(executor, _InThisProcess):
        return executor
    _stop(executor, [], owned=True)
    return _process_pool(window)
