"""`mnistkit`: one verb per job. Each verb's module does the work; this file only parses
arguments, prints, and turns expected failures into one-line errors with an exit code.

Exit codes: 2 for bad arguments (argparse's own, and what a verb checks before it starts: a
folder or file named on the command line that does not exist or is the wrong kind, an
assignment the course does not have), found before anything slow is imported; 1 for a failure
while working (one line: what failed and what to do); 130 on Ctrl-C. Run inside a checkout of
the kit other than the one installed, the command hands over to that checkout's own code first
(``handover.use_checkout_here``), so it always works on the checkout it is run in."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# The errors live below every verb (grading/cli.py raises them); re-exported here for callers.
from mnistkit.errors import EXIT_FAILED, EXIT_USAGE, KitError, UsageError  # noqa: F401
from mnistkit.handover import use_checkout_here
from mnistkit.settings import SettingsError, settings  # light: no grading, torch or nbgrader


def _existing_folder(path: str, what: str) -> Path:
    folder = Path(path)
    if not folder.exists():
        raise UsageError(f"{what} {path}: no such folder")
    if not folder.is_dir():
        raise UsageError(f"{what} {path}: not a folder")
    return folder


def _new_or_existing(path: str, what: str, kind: str = "folder") -> Path:
    """``path`` where a verb will write a folder (or a file): the wrong kind, or a parent that
    is a file, is a bad argument (found now, not after minutes of work)."""
    target = Path(path).absolute()
    if target.exists() and target.is_dir() != (kind == "folder"):
        raise UsageError(f"{what} {path}: " + ("a file, not a folder" if kind == "folder"
                                               else "a folder, not a file"))
    parent = next((p for p in target.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise UsageError(f"{what} {path}: {parent} is a file, not a folder")
    return target


def _known_assignment(name: str, course=None) -> None:
    from mnistkit.grading import run   # light: no torch, nbgrader or nbformat
    course = course or run.Course.default()
    known = course.assignments()
    if name not in known:
        raise UsageError(f"no assignment named {name!r}; known: {', '.join(known) or 'none'} "
                         f"(in {course.source})")


class _Say(argparse.Action):
    """Print the option's default as it is, and exit (``--version``)."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(self.default)
        parser.exit()


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints a usage block; one line is kinder in a terminal
        sys.stderr.write(f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(EXIT_USAGE)


def cmd_data(args) -> int:
    if args.use:
        _existing_folder(args.use, "--use")
    if args.into:
        _new_or_existing(args.into, "--into")
    from mnistkit import data
    if args.use:
        config = data.point_config_at(Path(args.use))
        print(f"fastai now reads MNIST from {Path(args.use).absolute()} (config: {config})")
        return 0
    target = Path(args.into).absolute() if args.into else data.fastai_data_dir()
    start = time.perf_counter()
    print(f"checking data/mnist.npz (SHA-256 {data.MNIST_SHA256[:12]}…)")
    results = data.materialize(target, progress=data.stderr_progress)
    for name, (path, status) in results.items():
        print(f"  {name:<17} {status:<8} {path}")
    print(f"MNIST ready for untar_data() in {time.perf_counter() - start:.1f} s")
    return 0


def cmd_course(args) -> int:
    from mnistkit import course
    from mnistkit.paths import ROOT
    try:
        course.init(ROOT, course_id=args.course_id, exchange=args.exchange)
    except course.CourseError as exc:
        raise KitError(str(exc)) from None
    return 0


def cmd_build(args) -> int:
    from mnistkit import build
    print("checking release/ against source/" if args.check else "building release/ from source/")
    stale = build.build(check=args.check)
    if args.check and stale:
        print(f"release/ is stale ({len(stale)} file(s)); run `mnistkit build`", file=sys.stderr)
        return EXIT_FAILED
    return 0


def cmd_check(args) -> int:
    """`mnistkit check`: the gaps of every exercise's declaration (mnistkit/authoring/gaps.py)."""
    import time

    from mnistkit.authoring import gaps
    started = time.perf_counter()
    found = gaps.course_gaps()
    for gap in found:
        print(gap)
    took = time.perf_counter() - started
    if found:
        print(f"{len(found)} gap(s) in the course's exercises ({took:.1f} s)", file=sys.stderr)
        return EXIT_FAILED
    print(f"every exercise has its parts ({took:.1f} s)")
    return 0


def cmd_exercises(args) -> int:
    from mnistkit import catalog
    exercises = catalog.load()
    if args.assignment:
        exercises = [ex for ex in exercises if ex.assignment == args.assignment]
        if not exercises:
            raise UsageError(f"no assignment named {args.assignment!r}; "
                             f"known: {', '.join(catalog.assignments())}")
    if args.json:
        print(catalog.to_json(exercises))
        return 0
    print(f"{'id':<28} {'assignment':<22} {'kind':<6} {'points':>6}  questionnaire")
    for ex in exercises:
        items = ",".join(map(str, ex.questionnaire)) or "-"
        print(f"{ex.id:<28} {ex.assignment:<22} {ex.kind:<6} {ex.points:>6g}  {items}")
    auto = [ex for ex in exercises if ex.kind == "auto"]
    print(f"{len(exercises)} exercises ({len(auto)} auto-graded, {len(exercises) - len(auto)} "
          f"by hand), {sum(ex.points for ex in exercises):g} points")
    return 0


def cmd_grade(args) -> int:
    _known_assignment(args.assignment)
    _new_or_existing(args.results, "--results", kind="file")
    from mnistkit.grading import cli as grading_cli  # the grading engine owns this verb
    if args.reference:
        if args.submission:
            raise UsageError("give SUBMISSION_DIR or --reference, not both")
        import tempfile

        from mnistkit import examples
        with tempfile.TemporaryDirectory(prefix="mnistkit-reference-") as tmp:
            args.submission = str(examples.make("reference", args.assignment, Path(tmp) / "reference"))
            return grading_cli.grade(args)
    if not args.submission:
        raise UsageError("give SUBMISSION_DIR (or --reference)")
    _existing_folder(args.submission, "SUBMISSION_DIR")
    return grading_cli.grade(args)


def cmd_grade_class(args) -> int:
    _existing_folder(args.submitted, "SUBMITTED")
    _known_assignment(args.assignment)
    _new_or_existing(args.out, "--out")
    if args.gradebook:
        _existing_folder(args.gradebook, "--gradebook")
    from mnistkit.grading import cli as grading_cli
    return grading_cli.grade_class(args)


def cmd_demo(args) -> int:
    from mnistkit import demo
    return demo.run(args)


def cmd_bench(args) -> int:
    if args.fairness:
        name = (args.assignment or ["a1_pixel_similarity"])
        if len(name) != 1:
            raise UsageError("--fairness grades one assignment: give --assignment once")
        _known_assignment(name[0])
        from mnistkit import bench_grading
        from mnistkit.grading import batch, run
        try:
            with batch.stop_on_signals():
                figures = bench_grading.run_fairness(name[0], hog_processes=args.hog_processes,
                                                     sleep_seconds=args.sleep_seconds)
        except (run.GradingUnavailable, RuntimeError) as exc:
            raise KitError(str(exc)) from None
        bench_grading.print_fairness(figures)
        return 0
    if args.grading:
        for name in args.assignment or []:
            _known_assignment(name)
        from mnistkit import bench_grading
        from mnistkit.grading import batch, run
        try:
            with batch.stop_on_signals():   # SIGTERM/SIGHUP: as Ctrl-C, nothing left behind
                figures = bench_grading.run(students=args.students, assignments=args.assignment)
        except run.GradingUnavailable as exc:
            raise KitError(str(exc)) from None
        bench_grading.print_report(figures)
        return 0
    from mnistkit import bench
    try:
        if args.resnet:
            bench.run_resnet(device=args.device, seed=args.seed, limit_train=args.limit_train,
                             threads=args.threads)
        else:
            bench.run(device=args.device, epochs=args.epochs, seed=args.seed,
                      limit_train=args.limit_train, threads=args.threads)
    except bench.BenchError as exc:
        raise KitError(str(exc)) from exc
    return 0


def cmd_doctor(args) -> int:
    from mnistkit import doctor
    found = doctor.run(say=lambda line: print(line, flush=True))
    code, last = doctor.verdict(found)
    print(last)
    return code


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mnistkit", description=(
        "Course kit for fastbook chapter 4 (MNIST basics): data, release, exercises, grading."))
    from mnistkit import __version__
    from mnistkit.paths import ROOT
    parser.add_argument("--version", action=_Say, nargs=0, dest=argparse.SUPPRESS,  # unwrapped
                        help="show the version and the checkout it works on, and exit",
                        default=f"mnistkit {__version__} (the checkout at {ROOT})")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)

    p = verbs.add_parser("data", help="put MNIST where fastai's untar_data() finds it, offline",
                         description="Verify data/mnist.npz and write mnist_sample/ and mnist_png/ "
                         "into fastai's data folder (FASTAI_HOME and its config.ini are honoured). "
                         "Idempotent; never leaves a half-written folder.")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--into", metavar="DIR", help="write into DIR instead (e.g. a shared "
                       "read-only folder for a JupyterHub)")
    where.add_argument("--use", metavar="DIR", help="write nothing; point this user's fastai "
                       "config at a shared DIR made with --into")
    p.set_defaults(func=cmd_data)

    p = verbs.add_parser("build", help="generate release/ from source/ with nbgrader",
                         description="Regenerate the student notebooks in release/ from the "
                         "instructor notebooks in source/ (nbgrader generate_assignment).")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 when release/ is out of date")
    p.set_defaults(func=cmd_build)

    p = verbs.add_parser("check", help="name every gap in the exercises' declarations, in seconds",
                         description="Read the source notebooks, the hidden test modules and "
                         "solutions/ (no notebook runs, no sandbox) and print one line per gap: "
                         "an answer cell out of place, no points, no reference, no hidden checks, "
                         "no mutant, a self-check input the hidden checks reuse, a prompt that "
                         "does not say what the checks enforce. Exit 1 when there is any. "
                         "`mnistkit build` runs it first. See docs/authoring.md.")
    p.set_defaults(func=cmd_check)

    p = verbs.add_parser("course", help="set the course up for nbgrader (gradebook, exchange)",
                         description="Make this checkout an nbgrader course: every assignment "
                         "into the gradebook, the course id and exchange folder recorded, the "
                         "students' Jupyter configuration written. Safe to run again.")
    course_verbs = p.add_subparsers(dest="course_verb", metavar="ACTION", required=True,
                                    parser_class=_Parser)
    init = course_verbs.add_parser("init", help="gradebook, exchange and course id; once per "
                                   "clone, again after changing source/",
                                   description="Add every assignment to gradebook.db (nbgrader's "
                                   "generate_assignment, release/ untouched), create the exchange "
                                   "and write .mnistkit/course.json (read by nbgrader_config.py) "
                                   "and .mnistkit/student-jupyter/ (for students' accounts).")
    init.add_argument("--exchange", metavar="DIR", help="nbgrader's exchange folder, shared by "
                      "instructors and students (default: kept, else /srv/nbgrader/exchange)")
    init.add_argument("--course-id", metavar="ID", help="the course id students fetch with "
                      "(default: kept, else mnist-basics)")
    init.set_defaults(func=cmd_course)

    p = verbs.add_parser("exercises", help="list every exercise, its points and questionnaire items",
                         description="The exercise catalog, read from the source notebooks.")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.add_argument("--assignment", metavar="NAME", help="only this assignment")
    p.set_defaults(func=cmd_exercises)

    p = verbs.add_parser("grade", help="grade one submission folder with the hidden autograder",
                         description="Run a submission's notebooks in the sandbox, grade them "
                         "against the reference solutions and write a Gradescope-style results.json. "
                         "Exits 0 when the submission was graded, whatever its score.")
    p.add_argument("submission", metavar="SUBMISSION_DIR", nargs="?",
                   help="a folder laid out like release/NAME/ with the notebooks filled in")
    p.add_argument("--reference", action="store_true",
                   help="grade the release with the source notebook's answers filled in instead "
                   "(after adding or changing an exercise: every exercise should score full marks)")
    p.add_argument("--assignment", required=True, metavar="NAME", help="which assignment it is")
    p.add_argument("--results", metavar="FILE", default="results.json",
                   help="where to write results.json (default: ./results.json)")
    p.set_defaults(func=cmd_grade)

    from mnistkit.bench import positive_int  # light: the module imports torch only when run
    p = verbs.add_parser("grade-class", help="grade every student's submission, resumably",
                         description="Grade SUBMITTED/<student>/NAME/ for every student (nbgrader's "
                         "submitted/ layout): results.json and summary.txt per student in "
                         "OUT/<student>/, scores.csv for the class. Students already graded with "
                         "the same submission and grading inputs (hidden tests, references, "
                         "points, release, limits, grader version) are kept, so an interrupted "
                         "run continues where it stopped. Students are graded N at a time "
                         "(--jobs), each result written as soon as it is done.")
    p.add_argument("submitted", metavar="SUBMITTED", help="a folder with one folder per student")
    p.add_argument("--assignment", required=True, metavar="NAME", help="which assignment")
    p.add_argument("--out", required=True, metavar="DIR", help="where results go")
    p.add_argument("--jobs", type=positive_int, metavar="N",
                   help="grade N students at once, each in a worker process (default: as many as "
                   "the cores and the memory allow, about 2 GiB a grading; said at the start)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="grade on a Dask cluster: its scheduler's address (tcp://host:8786) or "
                   "scheduler file (JSON); the workers need the kit installed (see README)")
    book = p.add_mutually_exclusive_group()
    book.add_argument("--gradebook", metavar="COURSE_DIR",
                      help="record every student in this nbgrader course's gradebook and "
                      "autograded/ (default: the course SUBMITTED is in, when it is one)")
    book.add_argument("--no-gradebook", action="store_true",
                      help="write results.json and scores.csv only")
    p.set_defaults(func=cmd_grade_class)

    p = verbs.add_parser("doctor", help="what grading relies on, and whether this machine has it",
                         description="Try each feature the grading sandbox relies on (user, "
                         "mount, network and PID namespaces, the tmpfs disk quota, bubblewrap, "
                         "the memory, pids and cpu cgroups, a cold sandbox, the warm start) "
                         "and print one line each: OK, or MISSING and what that means for "
                         "isolation. Exit 1 when grading cannot run safely here.")
    p.set_defaults(func=cmd_doctor)

    p = verbs.add_parser("demo", help="the whole pipeline on the bundled defaults",
                         description="Prepare the data, rebuild the release, grade the bundled "
                         "example submissions and print their scores and where the feedback went.")
    p.set_defaults(func=cmd_demo)

    p = verbs.add_parser("bench", help="train and time the reference 10-digit model",
                         description="Train the reference CNN of the all-digits assignment on "
                         "the 60,000 MNIST training images and test it on the 10,000 test images; "
                         "also time the nearest-digit-mean baseline and the chapter's linear "
                         "3-vs-7 model. Progress on stderr; a table, then one JSON line, on stdout.")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="where to train (default: auto = cuda when available, else cpu)")
    p.add_argument("--epochs", type=positive_int, metavar="N",
                   help="epochs of the reference CNN (default: the reference's own)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--threads", type=positive_int, metavar="N",
                   help="CPU threads for torch (default: torch's own, one per core)")
    p.add_argument("--limit-train", type=positive_int, metavar="N",
                   help="train on the first N training images only (for quick checks)")
    instead = p.add_mutually_exclusive_group()
    instead.add_argument("--resnet", action="store_true",
                   help="instead: the chapter's finale, a3's ResNet-18 (not pretrained) trained "
                   "one epoch with fit_one_cycle(1, 0.1) on mnist_sample (80-95 s on 2 CPU "
                   "cores; --limit-train N: N training and N validation images)")
    instead.add_argument("--grading", action="store_true",
                   help="instead: grade a generated class of mixed quality with 1 and 2 workers "
                   "and print CPU s per notebook, wall time, speed-up, peak memory and the time "
                   "for 100 students x 4 assignments (last line: JSON)")
    instead.add_argument("--fairness", action="store_true",
                   help="instead: grade a class of four with grade-class --jobs 2, quiet, then "
                   "with one student hogging the CPU and one sleeping past the notebook's "
                   "budget, and print the honest students' times against the quiet run "
                   "(goal: within 1.5x; last line: JSON)")
    p.add_argument("--hog-processes", type=positive_int, default=12, metavar="N",
                   help="with --fairness: busy processes the hog starts (default: 12)")
    p.add_argument("--sleep-seconds", type=float, default=115.0, metavar="S",
                   help="with --fairness: each of the sleeper's two cells (default: 115)")
    p.add_argument("--students", type=positive_int, default=20, metavar="N",
                   help="with --grading: students per assignment (default: 20)")
    p.add_argument("--assignment", action="append", metavar="NAME",
                   help="with --grading: only this assignment (repeat for more; default: "
                   "all); with --fairness: the one graded (default: a1_pixel_similarity)")
    p.set_defaults(func=cmd_bench)
    from mnistkit.serve import cli as serve_cli   # light: the verb's arguments only
    serve_cli.add_parser(verbs, positive_int)
    return parser


# Expected failures of the verbs' modules: (module, exception class) -> one line, exit 1. Looked
# up only once raised (the module is imported by then), so main imports none of them up front.
_EXPECTED = (("mnistkit.build", "BuildError"), ("mnistkit.data", "DataError"),
             ("mnistkit.settings", "SettingsError"))


def _expected(exc: BaseException) -> bool:
    kinds = tuple(getattr(sys.modules[module], name) for module, name in _EXPECTED
                  if module in sys.modules)
    return isinstance(exc, kinds)


def _debug() -> bool:
    try:
        return settings().debug
    except SettingsError:
        return False


def main(argv=None) -> int:
    if argv is None:   # the command itself (tests call main([...]) in their own process)
        try:
            use_checkout_here(sys.argv[1:])
        except SettingsError as exc:
            print(f"mnistkit: error: {exc}", file=sys.stderr)
            return EXIT_FAILED
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"mnistkit {args.verb}: error: {exc} (see `mnistkit {args.verb} --help`)",
              file=sys.stderr)
        return EXIT_USAGE
    except KitError as exc:
        print(f"mnistkit {args.verb}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"mnistkit {args.verb}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line by default, the traceback on request
        if _expected(exc):
            print(f"mnistkit {args.verb}: error: {exc}", file=sys.stderr)
            return EXIT_FAILED
        if _debug():
            raise
        print(f"mnistkit {args.verb}: internal error: {type(exc).__name__}: {exc} "
              "(set MNISTKIT_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_FAILED
