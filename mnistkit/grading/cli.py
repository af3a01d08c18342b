"""`mnistkit grade SUBMISSION_DIR --assignment NAME --results FILE`.

Exit 0 when the submission was graded, whatever its score (an unreadable or missing notebook is
graded 0 with the reason). Exit 1 with a one-line error when grading could not run: unknown
assignment, no such folder, no sandbox, hidden tests missing, or the pre-flight refuses
(this account has no verified MNIST, the sandbox does not start or its limits do not apply:
grading/preflight.py), before anyone is graded and with nothing written; also when the kit itself is
broken for this assignment (hidden tests that do not load, an exercise without hidden tests):
results.json is still written then, and the problems are printed.
"""
from __future__ import annotations

import sys
from pathlib import Path

from mnistkit.grading import run
from mnistkit.grading.results import clean_block


def grade(args) -> int:
    from mnistkit.cli import KitError

    course = run.Course.default()
    submission = Path(args.submission)
    results_path = Path(args.results)
    if not submission.is_dir():
        raise KitError(f"no such folder: {submission}")
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
    """`mnistkit grade-class SUBMITTED --assignment NAME --out DIR` (see grading/batch.py)."""
    from mnistkit.cli import KitError
    from mnistkit.grading import batch

    course = run.Course.default()
    try:
        done = batch.grade_class(Path(args.submitted), args.assignment, Path(args.out),
                                 course=course, say=lambda line: print(line, flush=True))
    except run.GradingUnavailable as exc:
        raise KitError(str(exc)) from None
    except KeyboardInterrupt:
        batch.write_scores_csv(Path(args.out), args.assignment, course)
        print("interrupted: every student graded so far is saved; run the same command again "
              "to grade the rest", file=sys.stderr, flush=True)
        return 130
    print(f"{args.assignment}: {done.line()}; scores in {Path(args.out) / batch.SCORES_FILE}")
    return 0
