"""Grading a class on a Dask cluster (`mnistkit grade-class --scheduler`, grading/dask_cluster.py).

A LocalCluster of worker processes on loopback stands in for Dask Gateway / jobqueue /
Kubernetes: the workers are separate interpreters started from the same installed kit, like a
worker image's. The toy course (tests/fixtures/toy_course) keeps each grading to seconds.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

from mnistkit.grading import batch, dask_cluster, run

from .conftest import TIMINGS
from .fixtures.toy_course import toy_helpers as toy

distributed = pytest.importorskip("distributed")

pytestmark = [pytest.mark.slow]

SLOW_SECONDS = 6   # the slow submission's extra cell: long enough for a kill to land inside it


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return toy.make_course(tmp_path_factory.mktemp("toy_course"))


@pytest.fixture(scope="module")
def grading_env(course):
    """The toy course for this process and (inherited at their start) the cluster's workers."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(run.COURSE_ENV, str(course))
        mp.delenv(dask_cluster.GPU_ENV, raising=False)
        if not toy.sandbox_ready():
            mp.setenv(run.IN_PROCESS_ENV, "1")
        yield mp


@pytest.fixture(scope="module")
def cluster(grading_env):
    start = time.perf_counter()
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  host="127.0.0.1", dashboard_address=None) as local:
        with distributed.Client(local, set_as_default=False) as client:
            client.wait_for_workers(2)
            TIMINGS["dask: LocalCluster of 2 worker processes up"] = time.perf_counter() - start
            yield client


def make_class(root: Path, course: Path, students: dict) -> Path:
    """SUBMITTED/<student>/toy_basics/toy_basics.ipynb for each (student -> notebook)."""
    for student, nb in students.items():
        toy.submit(root / student / toy.ASSIGNMENT, nb)
    return root


def reference(course):
    return toy.source_notebook(course)


def half_right(course):
    return toy.with_answers(toy.release_notebook(course), **toy.HALF_RIGHT)


def slow_reference(course):
    """The reference, with a cell of its own that takes SLOW_SECONDS (not an exercise)."""
    nb = reference(course)
    nb.cells.append(nbformat.v4.new_code_cell(f"import time\ntime.sleep({SLOW_SECONDS})"))
    return nb


def recorded(out: Path) -> dict:
    """student -> (exercise scores, results.json without its timing), from what the batch wrote."""
    found = {}
    for record in sorted(out.glob(f"*/{batch.FINGERPRINT_FILE}")):
        data = json.loads(record.read_text())
        results = json.loads((record.parent / batch.RESULTS_FILE).read_text())
        results.pop("execution_time")
        found[data["student"]] = (data["scores"], results)
    return found


def auto_scores(out: Path) -> dict:
    """student -> {auto-graded exercise: score}."""
    return {student: {ex: scores[ex] for ex in toy.POINTS}
            for student, (scores, _) in recorded(out).items()}


class Counting:
    """A recorder (batch.Recorder) that counts how often each student reaches the writer."""

    def __init__(self, events=None):
        self.counts: dict[str, int] = {}
        self.events = events if events is not None else []

    def record(self, student, results):
        self.counts[student] = self.counts.get(student, 0) + 1
        self.events.append(("recorded", student))


def grade_on(client, submitted, out, course, **kwargs):
    start = time.perf_counter()
    with dask_cluster.executor(client, toy.ASSIGNMENT, run.Course.at(course),
                               say=lambda line: None) as grading:
        TIMINGS.setdefault("dask: workers checked (first time: their pre-flight)",
                           time.perf_counter() - start)
        return batch.grade_class(submitted, toy.ASSIGNMENT, out, course=run.Course.at(course),
                                 executor=grading, say=lambda line: None, **kwargs)


def test_class_graded_on_the_cluster_gets_the_scores_it_gets_here(course, cluster, tmp_path):
    """Does a class graded on Dask workers get exactly the results.json and scores of grading
    it on this machine?"""
    submitted = make_class(tmp_path / "submitted", course, {
        "ada": reference(course), "bo": half_right(course)})
    here = batch.grade_class(submitted, toy.ASSIGNMENT, tmp_path / "here",
                             course=run.Course.at(course), jobs=1, say=lambda line: None)
    start = time.perf_counter()
    there = grade_on(cluster, submitted, tmp_path / "dask", course)
    TIMINGS["dask: class of 2 on 2 workers"] = time.perf_counter() - start
    assert sorted(there.graded) == sorted(here.graded) == ["ada", "bo"]
    assert recorded(tmp_path / "dask") == recorded(tmp_path / "here")
    scores = auto_scores(tmp_path / "dask")
    assert scores == {"ada": toy.POINTS, "bo": toy.HALF_RIGHT_SCORES}


def _executing(dask_worker):
    return [str(ts.key) for ts in dask_worker.state.executing]


def test_a_worker_killed_mid_grading_loses_nobody_and_counts_nobody_twice(course, cluster,
                                                                          tmp_path):
    """A worker SIGKILLed while it grades a student: is that student graded again elsewhere,
    with the right score, and is every student recorded exactly once?"""
    submitted = make_class(tmp_path / "submitted", course, {
        "bo": half_right(course), "slow": slow_reference(course)})
    events: list = []
    recorder = Counting(events)
    outcome: dict = {}

    def batch_run():
        try:
            outcome["run"] = grade_on(cluster, submitted, tmp_path / "out", course,
                                      recorder=recorder)
        except BaseException as exc:   # shown by the assertion below
            outcome["error"] = exc

    thread = threading.Thread(target=batch_run, daemon=True)
    thread.start()
    victim, deadline = None, time.monotonic() + 120
    while victim is None and thread.is_alive() and time.monotonic() < deadline:
        for address, keys in cluster.run(_executing).items():
            if any("-slow-" in key for key in keys):
                victim = address
        time.sleep(0.2)
    assert victim is not None, f"the slow student was never seen grading: {outcome}"
    time.sleep(2)   # into the notebook's run (its slow cell takes SLOW_SECONDS)
    assert any("-slow-" in key for key in cluster.run(_executing, workers=[victim])[victim]), \
        "the slow grading ended before the kill"
    pid = cluster.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, signal.SIGKILL)
    events.append(("killed", victim))
    thread.join(180)
    assert not thread.is_alive(), "the batch did not finish after the kill"
    assert "error" not in outcome, outcome.get("error")
    assert sorted(outcome["run"].graded) == ["bo", "slow"]
    assert recorder.counts == {"bo": 1, "slow": 1}
    # recorded after the kill, so by a grading that ran again on another worker
    assert events.index(("recorded", "slow")) > events.index(("killed", victim))
    scores = auto_scores(tmp_path / "out")
    assert scores == {"bo": toy.HALF_RIGHT_SCORES, "slow": toy.POINTS}


def gpu_addresses(client) -> set:
    return {address for address, worker in client.scheduler_info(n_workers=-1)["workers"].items()
            if (worker.get("resources") or {}).get("GPU")}


@pytest.fixture
def gpu_worker(cluster):
    """A third worker that declares a GPU, started the way the README says (`dask worker`)."""
    proc = subprocess.Popen([str(Path(sys.executable).parent / "dask"), "worker",
                             cluster.scheduler.address, "--nworkers", "1", "--nthreads", "1",
                             "--resources", "GPU=1", "--no-dashboard", "--host", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not gpu_addresses(cluster) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert gpu_addresses(cluster), "the GPU worker did not join"
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def test_gradings_that_train_go_to_gpu_workers_and_the_rest_to_cpu_workers(
        course, cluster, gpu_worker, grading_env, tmp_path):
    """With one worker declaring GPU=1: do the gradings of an assignment that trains a model run
    on it alone, those of any other assignment on the CPU workers alone, with the same scores?"""
    students = {"ada": reference(course), "bo": half_right(course)}
    ran_on, gpus = {}, gpu_addresses(cluster)
    for trains, name in ((True, "gpu"), (False, "cpu")):
        grading_env.setenv(dask_cluster.GPU_ENV, toy.ASSIGNMENT if trains else "")
        submitted = make_class(tmp_path / name / "submitted", course, students)
        with distributed.get_task_stream(cluster) as stream:
            done = grade_on(cluster, submitted, tmp_path / name / "out", course)
        gpus |= gpu_addresses(cluster)   # (a worker restarted by its nanny has a new address)
        assert sorted(done.graded) == ["ada", "bo"]
        ran_on[name] = {task["worker"] for task in stream.data
                        if "mnistkit-grade-" in str(task["key"])}
        assert auto_scores(tmp_path / name / "out") == {"ada": toy.POINTS,
                                                        "bo": toy.HALF_RIGHT_SCORES}
    assert ran_on["gpu"] and ran_on["gpu"] <= gpus, (ran_on, gpus)
    assert ran_on["cpu"] and not ran_on["cpu"] & gpus, (ran_on, gpus)


def test_a_worker_that_would_grade_differently_is_refused_before_anyone(course, cluster,
                                                                       grading_env):
    """Workers whose grading seed differs from this machine's: one line naming the setting,
    before any student is graded?"""
    grading_env.setenv("MNISTKIT_GRADING_SEED", "another-seed")
    with pytest.raises(run.GradingUnavailable) as refused:
        dask_cluster.executor(cluster, toy.ASSIGNMENT, run.Course.at(course), say=lambda l: None)
    message = str(refused.value)
    assert "\n" not in message and "MNISTKIT_GRADING_SEED" in message
    assert "grades differently" in message


def test_a_submission_folder_travels_as_what_grading_reads(tmp_path, monkeypatch):
    """Does a shipped folder arrive with its files and subfolders, without hidden folders, and
    with a notebook too big to grade as its size only?"""
    from mnistkit.grading import submission
    folder = tmp_path / "submitted" / "ada" / "a1"
    (folder / "sub").mkdir(parents=True)
    (folder / ".ipynb_checkpoints").mkdir()
    (folder / "a1.ipynb").write_text("{}")
    (folder / "sub" / "notes.txt").write_bytes(b"\x00\xffdata")
    (folder / ".ipynb_checkpoints" / "a1-checkpoint.ipynb").write_text("old")
    monkeypatch.setattr(submission, "MAX_BYTES", 10)
    (folder / "huge.ipynb").write_bytes(b"x" * 11)
    shipped = dask_cluster.Shipped.pack(folder)
    assert set(shipped.files) == {"a1.ipynb", "sub/notes.txt"}
    assert shipped.sizes == {"huge.ipynb": 11}
    back = shipped.unpack(tmp_path / "worker")
    assert back.name == "a1" and (back / "sub" / "notes.txt").read_bytes() == b"\x00\xffdata"
    assert (back / "huge.ipynb").stat().st_size == 11 and not (back / ".ipynb_checkpoints").exists()
