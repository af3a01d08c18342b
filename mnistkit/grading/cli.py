"""`mnistkit grade SUBMISSION_DIR --assignment NAME --results FILE`.

Exit 0 when the submission was graded, whatever its score (an unreadable or missing notebook is
graded 0 with the reason). Exit 2 for bad arguments (no such folder, an unknown assignment:
``mnistkit.cli`` checks them before anything is imported). Exit 1 with a one-line error when
grading could not run: no sandbox, hidden tests missing, or the pre-flight refuses
(this account has no verified MNIST, the sandbox does not start or its limits do not apply:
grading/preflight.py), before anyone is graded and with nothing written; also when the kit itself is
broken for this assignment (hidden tests that do not load, an exercise without hidden tests):
results.json is still written then, and the problems are printed.
"""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from mnistkit.grading import run
from mnistkit.grading.results import clean_block, clean_line


def grade(args) -> int:
    from mnistkit.errors import KitError

    course = run.Course.default()
    submission = Path(args.submission)
    results_path = Path(args.results)   # both checked by mnistkit.cli before this is imported
    try:
        run.check_can_grade(args.assignment, course)
    except run.GradingUnavailable as exc:
        raise KitError(str(exc)) from None
    print(f"grading {submission} as {args.assignment}")
    if run.unsafe_in_process():
        print(f"WARNING: {run.IN_PROCESS_ENV} is set: student code runs UNSANDBOXED in the grader",
              file=sys.stderr)
    try:
        results = run.grade_submission(submission, args.assignment, course=course, progress=print)
    except run.GradingUnavailable as exc:
        raise KitError(str(exc)) from None
    results.write(results_path)
    print()
    print(results.summary())
    print(f"\nwrote {results_path}")
    problems = results.problems
    for report in results.notebooks:
        if report.get("graded") is False and report.get("log"):
            print(f"--- grader output for {report['notebook_name']}.ipynb (instructors only) ---\n"
                  + clean_block(report["log"]), file=sys.stderr)
    for line in results.warnings:   # the submission's doing, not the kit's: exit 0
        print(f"mnistkit grade: warning: {line}", file=sys.stderr)
    if problems:
        for line in problems:
            print(f"mnistkit grade: kit problem: {clean_block(line, 1000)}", file=sys.stderr)
        return 1
    return 0


def grade_class(args) -> int:
    """`mnistkit grade-class SUBMITTED --assignment NAME --out DIR [--jobs N] [--scheduler A]
    [--gradebook COURSE | --no-gradebook]` (grading/batch.py).

    Says first how many workers grade and why (cores, memory), or which cluster; records into
    nbgrader's gradebook when there is one (``gradebook_course``); exit 130 on Ctrl-C, SIGTERM or
    SIGHUP with every student graded so far saved and nothing of the kit left running. Exit 1
    after the whole class when some student could not be graded (batch.py: listed at the end,
    "not graded" in scores.csv, never a zero)."""
    from mnistkit.errors import KitError
    from mnistkit.grading import batch

    course = run.Course.default()
    say = lambda line: print(line, flush=True)   # noqa: E731
    submitted, out = Path(args.submitted).absolute(), Path(args.out).absolute()   # checked
    where = gradebook_course(submitted, args.gradebook, args.no_gradebook)
    try:
        with batch.stop_on_signals():
            if not getattr(args, "scheduler", None):   # a cluster's workers: dask_cluster
                say_warm_start(say)
    except KeyboardInterrupt:
        print("interrupted before any student was graded", file=sys.stderr, flush=True)
        return 130
    try:
        with batch.stop_on_signals(), _executor(args, course, say) as (executor, jobs):
            recorder = None
            if where is not None:
                from mnistkit.grading.gradebook import NbgraderRecorder
                recorder = NbgraderRecorder(where, args.assignment, submitted=submitted, say=say)
                say(f"recording into nbgrader's gradebook of {clean_line(str(where), 200)} "
                    "(--no-gradebook: results only)")
            done = batch.grade_class(submitted, args.assignment, out, course=course, jobs=jobs,
                                     executor=executor, say=say, recorder=recorder)
    except run.GradingUnavailable as exc:
        raise KitError(str(exc)) from None
    except KeyboardInterrupt:   # the batch stopped its workers and wrote scores.csv
        print("interrupted: every student graded so far is saved; run the same command again "
              "to grade the rest", file=sys.stderr, flush=True)
        return 130
    if done.slowest_line():   # before the not-graded list, which stays just above the last line
        print(done.slowest_line())
    if done.not_graded:   # not zeros: they get no score until graded (rerun once fixed)
        print(f"not graded ({len(done.not_graded)}; details in {out}/<student>/"
              f"{batch.FINGERPRINT_FILE}, graded again by the next run):")
        print("\n".join(done.not_graded_lines()))
    print(f"{args.assignment}: {done.line()}; scores in {out / batch.SCORES_FILE}")
    return 1 if done.not_graded else 0


def say_warm_start(say) -> bool:
    """The first line when the warm start does not work on this machine (zygote.warm_start_problem):
    every notebook then runs cold, 7.5 CPU-s slower, which otherwise only a grader's log shows.
    True when it works."""
    from mnistkit.grading import zygote
    problem = zygote.warm_start_problem()
    if problem:
        say(f"WARNING: the warm start does not work here, every notebook is graded cold "
            f"(slower): {clean_line(problem, 400)}")
    return not problem


def gradebook_course(submitted: Path, chosen: str | None, off: bool) -> Path | None:
    """The nbgrader course to record into: the one named, else the folder that holds SUBMITTED
    when it is an nbgrader course (nbgrader_config.py there), else none."""
    from mnistkit.errors import UsageError
    if off:
        return None
    if chosen:
        folder = Path(chosen).absolute()
        if not (folder / "nbgrader_config.py").is_file():
            raise UsageError(f"--gradebook {chosen}: no nbgrader_config.py there (not an nbgrader "
                           "course folder)")
        return folder
    parent = submitted.parent
    return parent if (parent / "nbgrader_config.py").is_file() else None


@contextlib.contextmanager
def _executor(args, course, say):
    """(executor, jobs): a Dask cluster's (``--scheduler``), or None for the batch's own workers,
    as many as asked or as the machine allows (said in one line)."""
    from mnistkit.grading import batch
    if args.scheduler:
        from mnistkit.grading import dask_cluster
        with dask_cluster.executor(args.scheduler, args.assignment, course, say=say) as grading:
            yield grading, args.jobs
        return
    capacity = batch.Capacity.measure()
    jobs = args.jobs or capacity.jobs()
    say(capacity.line(jobs, asked=args.jobs is not None))
    yield None, jobs
