"""Grading a class with `mnistkit grade-class` (mnistkit/grading/batch.py), on the toy course:
several workers give the same scores as one, progress says how far and how long, each student
is recorded as soon as they are graded, Ctrl-C and a rerun grade nobody twice, and anything that
changes a score (points, limits, references, release, grader) makes the next run regrade."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

import mnistkit
from mnistkit.grading import batch, fingerprints, run
from mnistkit.grading.results import Results
from mnistkit.paths import SOLUTIONS

from .fixtures.toy_course import toy_helpers as toy
from .test_grade_corpus import interrupt, interruptible, limits_env

FULL = {"double_it": 2.0, "mean_image": 3.0}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return toy.make_course(tmp_path_factory.mktemp("class_course"))


def make_class(course, submitted, full=("s1", "s3", "s5"), half=("s2", "s4"), empty=("s6",)):
    """A class: full marks, half right, and a student folder without the assignment."""
    for student in full:
        toy.submit(submitted / student / toy.ASSIGNMENT, toy.source_notebook(course))
    for student in half:
        toy.submit(submitted / student / toy.ASSIGNMENT,
                   toy.with_answers(toy.release_notebook(course), **toy.HALF_RIGHT))
    for student in empty:
        (submitted / student).mkdir(parents=True)
    return submitted


def cli_env(course):
    env = limits_env(**{run.COURSE_ENV: str(course)})
    if not toy.sandbox_ready():
        env[run.IN_PROCESS_ENV] = "1"   # tests only: student code in the grader
    return env


def grade_class(course, submitted, out, *args, **popen):
    cmd = [sys.executable, "-m", "mnistkit", "grade-class", str(submitted),
           "--assignment", toy.ASSIGNMENT, "--out", str(out), *args]
    return subprocess.Popen(cmd, env=cli_env(course), cwd=course, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def scores(out, student):
    return json.loads((out / student / batch.FINGERPRINT_FILE).read_text())["scores"]


def _started(pid):
    """(parent pid, start time) of a live process, None when gone (or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return None if fields[0] in "ZX" else (int(fields[1]), fields[19])


def descendants(root):
    """Every process below ``root`` now: {pid: start time} (the start time tells a pid reused
    later apart)."""
    table = {int(pid): _started(pid) for pid in os.listdir("/proc") if pid.isdigit()}
    found, frontier = {}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, info in table.items():
            if info and info[0] == parent and pid not in found:
                found[pid] = info[1]
                frontier.append(pid)
    return found


def still_running(processes):
    return [pid for pid, start in processes.items()
            if (info := _started(pid)) is not None and info[1] == start]


# --- several workers ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def one_and_two(course):
    """The same class graded with --jobs 1 and with --jobs 2."""
    submitted = make_class(course, course / "submitted_jobs")
    runs = {}
    for jobs in (1, 2):
        out = course / f"results_jobs{jobs}"
        proc = grade_class(course, submitted, out, "--jobs", str(jobs))
        stdout, stderr = proc.communicate(timeout=900)
        runs[jobs] = dict(out=out, rc=proc.returncode, stdout=stdout, stderr=stderr)
    return runs


@pytest.mark.slow
def test_two_workers_give_every_student_the_same_scores_as_one(one_and_two):
    """Does `grade-class --jobs 2` record every student with the scores `--jobs 1` gives, in the
    same scores.csv?"""
    for jobs in (1, 2):
        assert one_and_two[jobs]["rc"] == 0, one_and_two[jobs]["stderr"][-2000:]
    one, two = one_and_two[1]["out"], one_and_two[2]["out"]
    for student in ("s1", "s3", "s5"):
        assert scores(one, student) == scores(two, student) == {**FULL, "why_fast": None}
    for student in ("s2", "s4"):
        assert scores(one, student) == scores(two, student)
        assert {k: v for k, v in scores(two, student).items() if v is not None} \
            == toy.HALF_RIGHT_SCORES
    assert (one / batch.SCORES_FILE).read_text() == (two / batch.SCORES_FILE).read_text()
    last = one_and_two[2]["stdout"].strip().splitlines()[-1]
    assert last.startswith(f"{toy.ASSIGNMENT}: graded 5, kept 0 unchanged, 1 without a submission")


@pytest.mark.slow
def test_progress_shows_done_of_total_elapsed_and_time_left(one_and_two):
    """Does every finished student's line say how many of the class are done, the time so far
    and, while some are left, about how long the rest will take? Does the run first say how
    many workers grade?"""
    lines = one_and_two[2]["stdout"].splitlines()
    assert lines[0].startswith("2 workers (asked for; ") and "GiB per grading" in lines[0]
    finished = [line for line in lines if " in " in line and "elapsed" in line]
    assert len(finished) == 5, lines
    pattern = re.compile(r"^\[(\d)/6\] s\d: [\d.]+ / 5 in \d+ s · elapsed \S+( · about \S+ left)?$")
    done = [int(pattern.match(line).group(1)) for line in finished]
    assert done == sorted(done) and done[-1] == 6   # s6 (no submission) counts at once
    assert all("left" in line for line in finished[:-1]) and "left" not in finished[-1]
    assert "[1/6] s6: no toy_basics/ folder, nothing to grade" in lines


class Order:
    """A recorder that notes who is recorded, and lets the slow student's grading go on only
    once a classmate has been recorded."""

    def __init__(self, out):
        self.out = out
        self.recorded = []
        self.classmate_recorded = threading.Event()

    def record(self, student, results):
        assert isinstance(results, Results)
        assert (self.out / student / batch.RESULTS_FILE).is_file()         # written before
        assert not (self.out / student / batch.FINGERPRINT_FILE).exists()  # graded.json after
        self.recorded.append(student)
        if student != "a_slow":
            self.classmate_recorded.set()


def test_each_student_is_recorded_as_soon_as_graded(course, tmp_path, monkeypatch):
    """With two workers, is a student's results.json written (and handed to the recorder) while
    a classmate is still being graded, not at the end of the batch?"""
    submitted = make_class(course, tmp_path / "submitted", full=("a_slow", "b_fast"), half=(),
                           empty=())
    out = tmp_path / "out"
    order = Order(out)
    monkeypatch.setattr(run, "check_can_grade", lambda *args, **kwargs: None)

    def grade_one(folder, assignment, course_):   # no sandbox needed: when, not how
        if "a_slow" in folder:   # waits until the other one is recorded (or 60 s)
            assert order.classmate_recorded.wait(60), "nobody was recorded while a_slow graded"
        return fake_results(course_)
    monkeypatch.setattr(batch, "grade_one", grade_one)
    with ThreadPoolExecutor(2) as pool:   # any concurrent.futures executor will do (Dask's too)
        done = batch.grade_class(submitted, toy.ASSIGNMENT, out, course=run.Course.at(course),
                                 jobs=2, executor=pool, say=lambda line: None, recorder=order)
    assert order.recorded == ["b_fast", "a_slow"]
    assert sorted(done.graded) == ["a_slow", "b_fast"]
    assert all((out / s / batch.FINGERPRINT_FILE).is_file() for s in done.graded)


def test_grading_unavailable_with_the_machine_unfit_stops_the_batch(course, tmp_path, monkeypatch):
    """When the machine fails for one student while others are graded in parallel, and the
    pre-flight now fails too (the data is gone: nobody can be graded), does the batch stop with
    the reason, record nothing for that student and keep those already recorded?"""
    submitted = make_class(course, tmp_path / "submitted", full=("alice", "bob", "carol"),
                           half=(), empty=())
    out = tmp_path / "out"
    checks = []

    def check_can_grade(*args, **kwargs):   # fine before the batch, failing once bob failed
        checks.append(args)
        if len(checks) > 1:
            raise run.GradingUnavailable("no MNIST for grading in this account")
    monkeypatch.setattr(run, "check_can_grade", check_can_grade)
    alice_recorded, released = threading.Event(), threading.Event()

    class Recorder:
        def record(self, student, results):
            alice_recorded.set()

    def grade_one(folder, assignment, course_):
        if "bob" in folder:
            assert alice_recorded.wait(60)
            raise run.GradingUnavailable("the data is gone")
        if "carol" in folder:   # still grading when bob fails
            released.wait(60)
        return fake_results(course_)
    monkeypatch.setattr(batch, "grade_one", grade_one)
    with ThreadPoolExecutor(2) as pool:
        try:
            with pytest.raises(run.GradingUnavailable,
                               match=r"stopped at bob \(the data is gone\); nothing recorded"):
                batch.grade_class(submitted, toy.ASSIGNMENT, out, course=run.Course.at(course),
                                  jobs=2, executor=pool, say=lambda line: None,
                                  recorder=Recorder())
        finally:
            released.set()
    assert (out / "alice" / batch.FINGERPRINT_FILE).is_file()
    assert not (out / "bob").exists() and not (out / "carol").exists()
    rows = (out / batch.SCORES_FILE).read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["alice"]


def test_a_student_the_machine_fails_is_graded_once_more_then_not_graded(course, tmp_path,
                                                                        monkeypatch):
    """When bob's grading fails on the machine's side (the sandbox did not start) while the
    pre-flight still passes, is he graded once more, then "not graded" with the reason (no
    scores, no total), while alice and carol are graded?"""
    submitted = make_class(course, tmp_path / "submitted", full=("alice", "bob", "carol"),
                           half=(), empty=())
    out = tmp_path / "out"
    monkeypatch.setattr(run, "check_can_grade", lambda *args, **kwargs: None)
    tries = []

    def grade_one(folder, assignment, course_):
        if "bob" in folder:
            tries.append(folder)
            raise run.GradingUnavailable("the sandbox did not start")
        return fake_results(course_)
    monkeypatch.setattr(batch, "grade_one", grade_one)
    lines = []
    with ThreadPoolExecutor(2) as pool:
        done = batch.grade_class(submitted, toy.ASSIGNMENT, out, course=run.Course.at(course),
                                 jobs=2, executor=pool, say=lines.append)
    assert len(tries) == 2
    assert sorted(done.graded) == ["alice", "carol"]
    assert done.not_graded == {"bob": "the sandbox did not start"}
    assert any("bob: the sandbox did not start; grading once more" in line for line in lines)
    rows = (out / batch.SCORES_FILE).read_text().splitlines()
    assert rows[0] == "student,double_it,mean_image,total,status"
    assert rows[2] == "bob,,,,not graded: the sandbox did not start"
    assert "1 NOT GRADED" in done.line()


def test_a_student_not_graded_is_graded_again_by_the_next_run(course, tmp_path, monkeypatch):
    """A kit bug that bob's submission trips: is bob "not graded" (his old results.json gone,
    graded.json saying why), and once fixed, does the next run grade him and keep the rest?"""
    submitted = make_class(course, tmp_path / "submitted", full=("alice", "bob"), half=(),
                           empty=())
    out = tmp_path / "out"
    monkeypatch.setattr(run, "check_can_grade", lambda *args, **kwargs: None)
    graded, broken = [], {"bob"}

    def grade_one(folder, assignment, course_):
        graded.append(Path(folder).parent.name)
        if Path(folder).parent.name in broken:
            raise KeyError("a kit bug")
        return fake_results(course_)
    monkeypatch.setattr(batch, "grade_one", grade_one)

    def grade():
        return batch.grade_class(submitted, toy.ASSIGNMENT, out, course=run.Course.at(course),
                                 say=lambda line: None)
    broken.clear()
    grade()                                            # both graded once
    (submitted / "bob" / toy.ASSIGNMENT / "notes.txt").write_text("changed")
    broken.add("bob")
    graded.clear()
    done = grade()
    assert graded == ["bob"] and done.kept == ["alice"]
    assert done.not_graded["bob"].startswith("the grader failed (KeyError: 'a kit bug')")
    assert not (out / "bob" / batch.RESULTS_FILE).exists()
    record = json.loads((out / "bob" / batch.FINGERPRINT_FILE).read_text())
    assert record["status"] == "not graded" and "KeyError" in record["details"]
    broken.clear()
    graded.clear()
    done = grade()
    assert graded == ["bob"] and done.graded == ["bob"] and not done.not_graded
    assert scores(out, "bob")["double_it"] == 0.0


def _dies_for_mallory(folder, assignment, course_):
    """grade_one in a forked worker: mallory's grading kills its worker process."""
    if "mallory" in folder:
        os._exit(1)
    return fake_results(course_)


def test_a_worker_that_dies_is_replaced_and_only_its_cause_not_graded(course, tmp_path,
                                                                     monkeypatch):
    """When one student's grading kills its worker process (and so the pool's other gradings),
    are the others graded again in a new pool, and only that student "not graded"?"""
    import multiprocessing
    submitted = make_class(course, tmp_path / "submitted", full=("alice", "mallory", "zoe"),
                           half=(), empty=())
    monkeypatch.setattr(run, "check_can_grade", lambda *args, **kwargs: None)
    monkeypatch.setattr(batch, "grade_one", _dies_for_mallory)
    pools = []

    def forked_pool(workers):   # forked, so the worker has this test's grade_one
        pools.append(workers)
        return __import__("concurrent.futures").futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("fork"))
    monkeypatch.setattr(batch, "_process_pool", forked_pool)
    done = batch.grade_class(submitted, toy.ASSIGNMENT, tmp_path / "out",
                             course=run.Course.at(course), jobs=2, say=lambda line: None)
    assert sorted(done.graded) == ["alice", "zoe"]
    assert list(done.not_graded) == ["mallory"]
    assert "worker process grading it died" in done.not_graded["mallory"]
    assert len(pools) >= 2


@pytest.mark.slow
def test_interrupted_batch_resumes_without_grading_anyone_twice(course, tmp_path):
    """After Ctrl-C in the middle of a class graded by two workers, does the run stop its
    workers and graders, and does running the same command again keep every student already
    graded (files untouched) and grade only the rest?"""
    submitted = make_class(course, tmp_path / "submitted", full=("s1", "s2", "s3", "s4", "s5"),
                           half=(), empty=())
    out = tmp_path / "results"
    proc = grade_class(course, submitted, out, "--jobs", "2", preexec_fn=interruptible)
    deadline = time.monotonic() + 300
    while not (out / "s1" / "graded.json").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    below = descendants(proc.pid)   # workers, graders, sandboxes, fork servers
    assert below, "no worker process"
    _, stderr = interrupt(proc)
    assert proc.returncode == 130 and "run the same command again" in stderr, stderr
    deadline = time.monotonic() + 30   # a SIGKILLed process may take a moment to go
    while still_running(below) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert still_running(below) == []
    first = {p.name: p.stat().st_mtime_ns for p in (out / "s1").iterdir()}
    kept = sorted(p.parent.name for p in out.glob("*/graded.json"))
    assert "s1" in kept and "s5" not in kept
    assert (out / batch.SCORES_FILE).read_text().count("\n") == 1 + len(kept)
    again = grade_class(course, submitted, out, "--jobs", "2")
    stdout, stderr = again.communicate(timeout=600)
    assert again.returncode == 0, stderr[-2000:]
    assert "s1: unchanged since it was graded, kept" in stdout
    assert f"graded {5 - len(kept)}, kept {len(kept)} unchanged" in stdout.splitlines()[-1]
    assert {p.name: p.stat().st_mtime_ns for p in (out / "s1").iterdir()} == first
    for student in ("s1", "s2", "s3", "s4", "s5"):
        assert scores(out, student)["double_it"] == 2.0


# --- what decides "already graded" --------------------------------------------------------

def fake_results(course):
    """A cheap stand-in for a grading (0 on everything), for tests about when, not how."""
    return Results(assignment=toy.ASSIGNMENT, notebooks=[
        run.failed_report(toy.ASSIGNMENT, toy.NOTEBOOK, "not graded in this test", course)])


@pytest.fixture
def counted(course, tmp_path, monkeypatch):
    """A copy of the toy course with one student, and a grader that counts its gradings."""
    copy = tmp_path / "course"
    shutil.copytree(course, copy, ignore=shutil.ignore_patterns("submitted*", "results*"))
    submitted = make_class(copy, tmp_path / "submitted", full=("ada",), half=(), empty=())
    monkeypatch.setattr(run, "check_can_grade", lambda *args, **kwargs: None)
    for name in [n for n in os.environ if n.startswith("MNISTKIT_LIMIT_")]:
        monkeypatch.delenv(name)
    graded = []

    def grade_one(folder, assignment, course_):
        graded.append(folder)
        return fake_results(course_)
    monkeypatch.setattr(batch, "grade_one", grade_one)

    def grade():
        before = len(graded)
        batch.grade_class(submitted, toy.ASSIGNMENT, tmp_path / "out",
                          course=run.Course.at(copy), say=lambda line: None)
        return len(graded) - before
    return dict(course=copy, submitted=submitted, grade=grade)


# Each change gets the copied course, monkeypatch, a scratch folder, and the counted grader.

def change_points(course, monkeypatch, tmp_path, grade):
    toy.set_points(course, "double_it", 4)


def change_release(course, monkeypatch, tmp_path, grade):
    path = course / "release" / toy.ASSIGNMENT / f"{toy.NOTEBOOK}.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].source += "\nimport math"   # the locked setup cell restored into submissions
    nbformat.write(nb, str(path))


def loosen_a_limit(course, monkeypatch, tmp_path, grade):
    monkeypatch.setenv("MNISTKIT_LIMIT_CELL_SECONDS", "300")


def change_the_seed(course, monkeypatch, tmp_path, grade):
    monkeypatch.setenv("MNISTKIT_GRADING_SEED", "12345")


def change_a_reference_module(course, monkeypatch, tmp_path, grade):
    """The toy course keeps its reference next to its hidden tests."""
    path = course / "autograder" / "toy_reference.py"
    path.write_text(path.read_text().replace("return 2 * x", "return x + x"))


def change_a_course_solutions_module(course, monkeypatch, tmp_path, grade):
    """A course with its own solutions/ (like the kit's: solutions/all_digits.py), edited."""
    path = course / "solutions" / "all_digits.py"
    path.write_text(path.read_text() + "EPOCHS = 3\n")


def change_the_hidden_tests(course, monkeypatch, tmp_path, grade):
    path = course / "autograder" / f"test_{toy.ASSIGNMENT}.py"
    path.write_text(path.read_text() + "\n# one more check later\n")


def new_kit_version(course, monkeypatch, tmp_path, grade):
    monkeypatch.setattr(mnistkit, "__version__", mnistkit.__version__ + ".post1")


def change_the_grading_engine(course, monkeypatch, tmp_path, grade):
    """A new version of a grading module (in a copy of the kit, so the real one stays)."""
    kit = tmp_path / "kit"
    shutil.copytree(fingerprints._KIT, kit, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(fingerprints, "_KIT", kit)
    assert grade() == 0   # the same engine in another folder: still kept
    with open(kit / "grading" / "expect.py", "a") as fh:
        fh.write("# a comparison rule changed\n")


CHANGES = [change_points, change_release, loosen_a_limit, change_the_seed,
           change_a_reference_module, change_a_course_solutions_module, change_the_hidden_tests,
           new_kit_version, change_the_grading_engine]


@pytest.mark.parametrize("change", CHANGES, ids=[c.__name__ for c in CHANGES])
def test_a_change_that_can_change_a_score_makes_the_next_run_regrade(counted, change, monkeypatch,
                                                                     tmp_path):
    """After the change, does the next run grade the student again, when without it the student
    is kept?"""
    (counted["course"] / "solutions").mkdir()
    (counted["course"] / "solutions" / "all_digits.py").write_text("EPOCHS = 2\n")
    assert counted["grade"]() == 1
    assert counted["grade"]() == 0    # nothing changed: kept
    change(counted["course"], monkeypatch, tmp_path, counted["grade"])
    assert counted["grade"]() == 1
    assert counted["grade"]() == 0


def test_what_grading_does_not_read_keeps_the_student(counted):
    """Do bytecode next to the hidden tests and Jupyter's checkpoints in the submission (which
    grading never reads) leave a graded student kept?"""
    assert counted["grade"]() == 1
    cache = counted["course"] / "autograder" / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "toy_reference.cpython-311.pyc").write_bytes(b"\0" * 16)
    checkpoints = counted["submitted"] / "ada" / toy.ASSIGNMENT / ".ipynb_checkpoints"
    checkpoints.mkdir()
    (checkpoints / f"{toy.NOTEBOOK}-checkpoint.ipynb").write_text("{}")
    assert counted["grade"]() == 0


def test_the_kits_fingerprint_covers_its_reference_modules_and_engine():
    """For the kit's own course, are every module of solutions/ (all_digits.py, which a4's hidden
    tests import through the reference) and the grading engine among what decides a regrade?"""
    inputs = batch.grading_inputs("a4_further_research", run.Course())
    files = {p for _, paths in inputs.values() for p in paths}
    assert SOLUTIONS / "all_digits.py" in files and SOLUTIONS / "a4_further_research.py" in files
    assert {p.name for p in inputs["grading engine"][1]} >= {
        "expect.py", "plugin.py", "sandbox.py", "runner.py", "run.py", "isolation.py", "data.py"}


# --- how many workers ---------------------------------------------------------------------

@pytest.mark.parametrize("cores, gib, jobs", [(2, 20.1, 2), (8, 5, 2), (4, 1, 1), (1, 64, 1)])
def test_default_worker_count_fits_the_cores_and_the_memory(cores, gib, jobs):
    """Is the default as many workers as there are cores, and no more than ~2 GiB of available
    memory each (at least one), and does the first line say why?"""
    capacity = batch.Capacity(cores=cores, available_bytes=int(gib * (1 << 30)))
    assert capacity.jobs() == jobs
    assert capacity.line(capacity.jobs()) == (
        f"{jobs} worker{'s' * (jobs > 1)} ({cores} core{'s' * (cores > 1)}, {gib:.1f} GiB "
        "available, ~2 GiB per grading)")


def test_measured_capacity_is_this_machine():
    """Does the measured capacity see at least one core and some memory?"""
    capacity = batch.Capacity.measure()
    assert 1 <= capacity.cores <= (os.cpu_count() or 1)
    assert capacity.available_bytes is None or capacity.available_bytes > 0
    assert batch.default_jobs() >= 1


# --- stopped at any moment, nothing left behind (issue 22) ---------------------------------

def kit_processes(tmpdir: Path) -> dict[int, str]:
    """Live processes that belong to a batch run with ``TMPDIR=tmpdir``: their environment or
    command line names that folder (workers and graders inherit it; fork servers and sandboxes
    are started with their scratch folders under it on their command lines)."""
    marker = str(tmpdir).encode()
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if (marker in environ or marker in cmdline) and _started(int(pid)) is not None:
            found[int(pid)] = cmdline.replace(b"\0", b" ").decode("utf-8", "replace")[:160]
    return found


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal,after", [(signal.SIGTERM, 0.8), (signal.SIGHUP, 5.0),
                                                 (signal.SIGINT, 9.0), (signal.SIGTERM, 14.0)],
                         ids=["term-starting", "hup-grading", "int-grading", "term-late"])
def test_a_batch_stopped_at_any_moment_leaves_nothing_behind(course, tmp_path, stop_signal, after):
    """A two-worker grade-class stopped the way `timeout`, a scheduler or a closed terminal stops
    it (a signal to its whole process group), at a moment in its start, its gradings or its
    end: within a few seconds no worker, grader, fork server or sandbox of it is left, and no
    scratch folder."""
    submitted = make_class(course, tmp_path / "submitted", full=[f"s{i}" for i in range(30)],
                           half=("h1", "h2"), empty=("e1",))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    cmd = [sys.executable, "-m", "mnistkit", "grade-class", str(submitted), "--assignment",
           toy.ASSIGNMENT, "--out", str(tmp_path / "results"), "--jobs", "2"]
    proc = subprocess.Popen(cmd, env={**cli_env(course), "TMPDIR": str(scratch)}, cwd=course,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=interruptible)
    seen, deadline = {}, time.monotonic() + after
    while time.monotonic() < deadline and proc.poll() is None:
        seen.update(descendants(proc.pid))
        time.sleep(0.1)
    assert proc.poll() is None, ("the batch ended before the signal", proc.communicate())
    os.killpg(proc.pid, stop_signal)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode in (130, -stop_signal), (proc.returncode, stderr[-2000:])
    deadline = time.monotonic() + 10          # "within a few seconds"
    while (still_running(seen) or kit_processes(scratch)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert still_running(seen) == [] and kit_processes(scratch) == {}, stderr[-2000:]
    assert sorted(p.name for p in scratch.iterdir()) == [], stderr[-2000:]
