"""Grade notebooks with the hidden autograder: one fresh pytest process per notebook.

``grade_notebook`` runs ``autograder/test_<assignment>.py`` against one (already cleaned and
restored) notebook with the ``mnistkit.grading.plugin`` and returns its grade report;
``grade_submission`` does the whole folder a student handed in (find, read, restore, grade
every notebook of the assignment) and returns ``Results``. ``mnistkit grade``, the nbgrader
autograde preprocessor and ``mnistkit demo`` all come through here, so a submission gets the
same score whichever way it is graded. Grading is deterministic: the plugin seeds every hidden
input from the course seed.

Student code runs in the sandbox (``mnistkit.grading.sandbox``). Setting
``MNISTKIT_UNSAFE_IN_PROCESS=1`` (or ``in_process=True``) runs it unsandboxed inside the
grader process instead: for the kit's own tests and trusted notebooks only.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from mnistkit import catalog
from mnistkit.cell_places import place_of
from mnistkit.grading import submission
# Course, GradingUnavailable and unsafe_in_process live below this driver (preflight needs them
# too); importers keep using them as run.Course, run.GradingUnavailable, run.unsafe_in_process.
from mnistkit.grading.course_files import (COURSE_ENV, IN_PROCESS_ENV,  # noqa: F401
                                           Course, GradingUnavailable, unsafe_in_process)
from mnistkit.grading.left_out import ran_as_designed
from mnistkit.grading.results import (FEEDBACK_CHARS, FEEDBACK_LINES, NOTE_LINES, Results,
                                      cap_lines, check_lines, clean_line)
from mnistkit.paths import ROOT
from mnistkit.settings import Settings, SettingsError, settings

# Settings read through mnistkit.settings (defaults there); their variables name them in messages.
TIMEOUT_ENV = "MNISTKIT_GRADE_TIMEOUT"  # seconds for one notebook's whole grading run
# The grader process's own memory (RLIMIT_DATA: heap and private writable mappings; torch's CUDA
# build reserves ~3 GB of address space it never uses, so RLIMIT_AS would measure the wrong
# thing). Named like the sandbox's limits (mnistkit.settings.Limits); 0 = no limit.
GRADER_MEMORY_ENV = "MNISTKIT_LIMIT_GRADER_MEMORY_BYTES"
GRADER_TROUBLE = "the grader could not finish grading this notebook; tell your instructor"


def check_can_grade(assignment: str, course: Course, in_process: bool | None = None) -> None:
    """Raise ``GradingUnavailable`` when this assignment cannot be graded on this machine, or
    not fairly in this account (``preflight.NotReady``: data, sandbox, limits)."""
    _settings()   # every MNISTKIT_* variable and course.json key parses, or nobody is graded
    known = course.assignments()
    if assignment not in known:
        raise GradingUnavailable(f"no assignment named {assignment!r}; known: "
                                 f"{', '.join(known) or 'none'} (in {course.source})")
    if not course.module(assignment).is_file():
        raise GradingUnavailable(f"the hidden tests for {assignment} are missing: "
                                 f"{course.module(assignment)} does not exist")
    if not unsafe_in_process(in_process):
        if shutil.which("bwrap") is None:
            raise GradingUnavailable("bubblewrap (`bwrap`) is not installed; it isolates student "
                                     "code (run scripts/install-system-packages.sh)")
    # Data present and verified, the sandbox starts, its limits apply (cached per process).
    from mnistkit.grading import preflight
    preflight.check(assignment, course, in_process)


def _settings() -> Settings:
    """The course's settings; one that does not parse means grading cannot run (one line)."""
    try:
        return settings()
    except SettingsError as exc:
        raise GradingUnavailable(str(exc)) from None


def grader_memory() -> int:
    """Bytes of memory one grader process may use (see GRADER_MEMORY_ENV)."""
    return _settings().grader_memory_bytes


def _limit_memory(limit: int) -> Callable[[], None]:
    """preexec_fn for the grader process: a soft RLIMIT_DATA of ``limit`` bytes (0: none). Only
    the soft limit: the sandbox the grader starts sets its own (larger, if so configured) limit."""
    import ctypes
    import resource

    def apply() -> None:
        if limit <= 0:
            ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)
            return
        _, hard = resource.getrlimit(resource.RLIMIT_DATA)
        soft = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
        # PR_SET_PDEATHSIG: a grading process killed (a lost worker) takes its grader along
        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)
    return apply


def _timeout(timeout: float | None) -> float:
    if timeout is not None:
        return timeout
    return _settings().grade_timeout


# --- reports -----------------------------------------------------------------------------

def _exercises_of(course: Course, assignment: str, notebook_name: str) -> list[catalog.Exercise]:
    try:
        known = catalog.load(course.source)
    except Exception:
        return []
    mine = [ex for ex in known if ex.assignment == assignment and ex.notebook == notebook_name]
    return mine or [ex for ex in known if ex.assignment == assignment]


def failed_report(assignment: str, notebook_name: str, reason: str,
                  course: Course | None = None) -> dict:
    """A notebook that could not be graded: 0 on every auto-graded exercise, with the reason."""
    course = course or Course.default()
    exercises = {}
    for ex in _exercises_of(course, assignment, notebook_name):
        if ex.kind == "manual":
            exercises[ex.id] = dict(kind="manual", title=ex.title, points=ex.points, score=None,
                                    status="needs hand grading", checks=[])
        else:
            exercises[ex.id] = dict(kind="auto", title=ex.title, points=ex.points, score=0.0,
                                    status="not graded", checks=[])
    report = dict(notebook=None, notebook_name=notebook_name, assignment=assignment,
                  graded=False, reason=reason, exercises=exercises, cells=[], problems=[],
                  warnings=[], notes=[], seconds=0.0)
    return finish_report(report)


def _cell_line(cell: dict) -> str:
    what = {"error": "raised", "timeout": "timed out", "crashed": "crashed the kernel",
            "skipped": "was not run"}.get(cell["status"], cell["status"])
    message = f": {clean_line(cell['message'])}" if cell.get("message") else ""
    return f"{what}{message}"


def finish_report(report: dict) -> dict:
    """Add the student-facing ``feedback`` lines to every exercise and notebook ``notes``."""
    cells = report.get("cells", [])
    answers = {c["grade_id"]: c for c in cells if c.get("grade_id")}
    for ex_id, entry in report["exercises"].items():
        lines = []
        if entry["kind"] == "manual":
            entry["feedback"] = ["graded by hand later"]
            continue
        if entry["status"] == "not graded":
            lines.append(report.get("reason") or GRADER_TROUBLE)
        elif entry["status"] == "no hidden tests":
            lines.append("this exercise has no hidden tests yet (a kit problem); "
                         "tell your instructor")
        answer = answers.get(ex_id + "-answer")
        if answer and answer["status"] != "ok":
            lines.append(f"your answer cell {_cell_line(answer)}")
        lines += check_lines(ex_id, entry.get("checks", []))   # names each failed check
        # Student text (their exception messages, whatever a forged runner sends) is cleaned
        # and capped here, once for every way a report is shown (results.py, nbgrader).
        entry["feedback"] = cap_lines(lines, FEEDBACK_LINES, FEEDBACK_CHARS)
    notes = report.setdefault("notes", [])
    report.setdefault("warnings", [])
    for cell in cells:
        gid = cell.get("grade_id") or ""
        if not ran_as_designed(cell["status"]) and not gid.endswith("-answer"):
            notes.append(f"{place_of(cell)} {_cell_line(cell)}")   # never a count (cell_places)
    report["notes"] = cap_lines(notes, NOTE_LINES)
    return report


# --- grading one notebook ----------------------------------------------------------------

def _grader_env() -> dict:
    env = dict(os.environ)
    env["PYTHONDONTWRITEBYTECODE"] = "1"   # no __pycache__ in autograder/
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_PLUGINS", None)
    # Only the plugin named with -p: auto-loading every installed one (hypothesis, xdist, anyio)
    # cost 2 s of each grading here.
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return env


def _run(cmd: list[str], cwd: Path, timeout: float, memory: int = 0,
         env: dict | None = None, pass_fds: tuple[int, ...] = ()) -> tuple[int | None, str]:
    """Run the grader under its memory limit; kill its whole process group on timeout.
    (returncode|None, output)."""
    proc = subprocess.Popen(cmd, cwd=cwd, env={**_grader_env(), **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", start_new_session=True, pass_fds=pass_fds,
                            preexec_fn=_limit_memory(memory))
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, _ = proc.communicate()
        return None, out
    except BaseException:   # Ctrl-C: the grader runs in its own session, so stop it too
        _kill_group(proc)
        proc.wait()
        raise


def _ran_out_of_memory(code: int, log: str) -> bool:
    """Whether a grader that produced no report died of its memory limit (a MemoryError that
    escaped, a C++ bad_alloc abort, or the kernel's OOM killer)."""
    tail = log[-20000:]
    return ("MemoryError" in tail or "bad_alloc" in tail or "DefaultCPUAllocator" in tail
            or code in (-signal.SIGKILL, -signal.SIGABRT))


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _warm_start(course: Course):
    """A fork server (mnistkit.grading.zygote) for this notebook's sandboxes, importing what the
    course's release notebooks import; kept by this process for the next notebook."""
    from mnistkit.grading import sandbox, zygote
    limits = _settings().limits          # the limits the plugin's sandboxes get
    return zygote.lease(limits, sandbox._default_data_dir(None),
                        zygote.release_imports(course.release))


def grade_notebook(notebook: Path, assignment: str, *, course: Course | None = None,
                   notebook_name: str | None = None, in_process: bool | None = None,
                   timeout: float | None = None) -> dict:
    """Grade one notebook (already cleaned and restored) in a fresh grader process.

    Returns the grade report: ``exercises`` (id -> kind, title, points, score, status,
    checks, feedback), ``cells`` (how each code cell ran), ``graded``, ``reason``,
    ``problems`` (kit bugs), ``notes``, ``seconds``, and ``log`` (the grader's output, for
    instructors only: it may show hidden test code). Never raises for the student's sake: a
    grading run that dies gives 0 on every exercise with the reason."""
    course = course or Course.default()
    name = notebook_name or Path(notebook).stem
    limit = _timeout(timeout)
    memory = grader_memory()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mnistkit-grade-") as tmp:
        tmp = Path(tmp)
        (tmp / "pytest.ini").write_text("[pytest]\n")   # ignore the repo's pytest config
        report_path = tmp / "report.json"
        cmd = [sys.executable, "-m", "pytest", str(course.module(assignment)),
               "-p", "mnistkit.grading.plugin", "-p", "no:cacheprovider",
               "-c", str(tmp / "pytest.ini"), "--rootdir", str(tmp), "-q", "--no-header",
               # Python's own tracebacks in the instructor's log: pytest's long ones re-parse
               # the test module and repr every argument of every frame (0.75 CPU-s a grading
               # with failed checks); the student's feedback never uses them.
               "--tb=native",
               "--notebook", str(Path(notebook).absolute()), "--grade-report", str(report_path),
               "--assignment", assignment, "--notebook-name", name,
               "--course-source", str(course.source)]
        if unsafe_in_process(in_process):
            cmd.append("--in-process")
            code, log = _run(cmd, tmp, limit, memory)
        else:
            from mnistkit.grading import warm_grader
            with _warm_start(course) as server, \
                    warm_grader.lease(_grader_env()) as grader:
                env = server.grader_env() if server else {}
                fds = server.pass_fds() if server else ()
                if grader is not None:
                    code, log = grader.run(cmd, tmp, limit, memory, {**_grader_env(), **env}, fds)
                else:
                    code, log = _run(cmd, tmp, limit, memory, env=env, pass_fds=fds)
        report = None
        if report_path.is_file():
            try:
                report = json.loads(report_path.read_text())
            except ValueError:
                report = None
    seconds = time.perf_counter() - start
    if report is None:
        out_of_memory = code is not None and memory > 0 and _ran_out_of_memory(code, log)
        if code is None:
            reason = (f"grading stopped after {limit:g} s (time limit); does your notebook "
                      "run top to bottom in reasonable time?")
        elif out_of_memory:
            reason = (f"grading stopped: checking your answers needed more than the grader's "
                      f"memory limit of {memory / (1 << 30):g} GiB (are some of your values "
                      f"far larger than the exercise asks for?)")
        else:
            reason = GRADER_TROUBLE + f" (grader exit code {code})"
        report = failed_report(assignment, name, reason, course)
        if out_of_memory:   # most likely the submission's values; the instructor should know
            report["warnings"].append(f"the grader process for {name}.ipynb ran out of its "
                                      f"memory limit ({GRADER_MEMORY_ENV}={memory}); "
                                      f"exit code {code}")
        elif code is not None:  # a timeout is the notebook's doing; anything else the kit's
            report["problems"].append(f"the grading run for {name}.ipynb produced no report "
                                      f"(exit code {code})")
    else:
        report.update(graded=True, reason="")
        report.setdefault("notes", [])
        finish_report(report)
    report["seconds"] = round(seconds, 2)
    report["log"] = log[-20000:]
    # The grading machine's failures are never the student's: raise instead (preflight.NotReady).
    from mnistkit.grading import preflight
    preflight.after_grading(report, assignment, course, in_process)
    return report


# --- grading a submission folder ---------------------------------------------------------

def grade_submission(submission_dir: Path, assignment: str, *, course: Course | None = None,
                     in_process: bool | None = None, timeout: float | None = None,
                     progress: Callable[[str], None] | None = None,
                     follow_root: bool = True) -> Results:
    """Grade every notebook of ``assignment`` in ``submission_dir`` (laid out like
    release/<assignment>/). Raises ``GradingUnavailable`` only when grading cannot run.

    Only files of the submission are read: a notebook that is a link, a hard link or a special
    file is graded as missing, with the reason (``submitted_files``). ``follow_root=False``
    when ``submission_dir`` itself is the student's (grade-class's ``<student>/<assignment>``):
    a link there is refused the same way; ``mnistkit grade``'s folder is the caller's choice."""
    course = course or Course.default()
    say = progress or (lambda line: None)
    submission_dir = Path(submission_dir)
    check_can_grade(assignment, course, in_process)
    if not (submission_dir.is_dir() or not follow_root and submission_dir.is_symlink()):
        raise GradingUnavailable(f"no such folder: {submission_dir}")
    start = time.perf_counter()
    reports = []
    with tempfile.TemporaryDirectory(prefix="mnistkit-submission-") as scratch:
        prepared, notes = submission.prepare(
            submission_dir, course.notebooks(assignment),
            [course.release / assignment, course.source / assignment], Path(scratch),
            follow_root=follow_root)
        for item in prepared:
            if item.path is None:
                say(clean_line(f"  {item.name}.ipynb: not graded: {item.reason}", 300))
                report = failed_report(assignment, item.name, item.reason, course)
            else:
                say(f"  grading {item.name}.ipynb ({'UNSANDBOXED, in-process' if unsafe_in_process(in_process) else 'sandboxed'}) ...")
                report = grade_notebook(item.path, assignment, course=course,
                                        notebook_name=item.name, in_process=in_process,
                                        timeout=timeout)
                auto = [e for e in report["exercises"].values() if e["kind"] == "auto"]
                say(f"  {item.name}.ipynb: {sum(e['score'] for e in auto):g} / "
                    f"{sum(e['points'] for e in auto):g} points in {report['seconds']:.1f} s")
            report["notes"] = item.notes + report.get("notes", [])
            reports.append(report)
    return Results(assignment=assignment, notebooks=reports, notes=notes,
                   execution_time=time.perf_counter() - start)
