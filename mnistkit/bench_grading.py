"""`mnistkit bench --grading`: how fast a class is graded here, and how much memory it takes.

A generated class of mixed quality (``--students N`` a assignment, cycling through the bundled
examples: reference, half right, reference, untouched) is graded with ``grade-class``'s engine
(``batch.grade_class``) with one worker, then with two. Figures:

- ``cpu_s_per_notebook``: CPU seconds of the whole process tree (grader, warm servers and every
  sandbox) per notebook, with one worker, per assignment (each assignment is one grade-class
  run, which starts its warm servers: with 20 students, about 0.5 s of each notebook's share).
  Measured with a cpuacct cgroup around this process, because bubblewrap's children never reach
  ``getrusage`` (``cpu_source`` says which way it was measured; without a cgroup only this
  process and its reaped children count).
- ``wall_s_jobs1``, ``wall_s_jobs2``, ``speedup``: the whole class, wall-clock seconds.
- ``cpu_ceiling_speedup``: how much faster two plain CPU-bound processes finish together than
  one after the other here, measured before the class: the most two workers can gain on this
  machine (two vCPUs that share a core or a host give less than 2; on a machine busy with other
  work, more than 2 means the lone run was competing too).
- ``peak_pss_mb``: the largest proportional set size of the whole tree (sampled every 0.5 s)
  while one student was graded at a time: what a worker needs; ``peak_pss_mb_jobs2`` for two.
- ``class100_minutes``: 100 students x 4 assignments at the two-worker throughput measured
  here, per assignment (a class rarely has an equal mix of notebooks of each kind).
- ``a4_training_s`` / ``a4_overhead_s``: for the all-digits notebooks that train a model, the
  student's training (the longest request to the sandbox) and the rest of the grading's wall
  time (running the notebook, the other checks, the grader's evaluation).

Progress goes to stderr; a table, then as the last line one JSON object, to stdout. On a shared
machine every figure depends on its load: ``load_avg`` (1, 5, 15 min) is in the JSON.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

KINDS = ("reference", "half_right", "reference", "untouched")   # the mix, cycled
CPUACCT = Path("/sys/fs/cgroup/cpuacct")


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class TreeMeter:
    """CPU and PSS of this process and everything it starts, sandboxes included."""

    def __init__(self):
        self.group = None
        if (CPUACCT / "cgroup.procs").is_file() and os.access(CPUACCT, os.W_OK):
            group = CPUACCT / f"mnistkit-bench-{os.getpid()}"
            try:
                group.mkdir(exist_ok=True)
                (group / "cgroup.procs").write_text(str(os.getpid()))
                self.group = group
            except OSError:
                self.group = None
        self.source = "cpuacct cgroup" if self.group else "getrusage (sandboxes not counted)"
        self.peak = 0
        self._stop = threading.Event()
        self._thread = None

    def cpu(self) -> float:
        if self.group is not None:
            return int((self.group / "cpuacct.usage").read_text()) / 1e9
        usage = os.times()
        return usage.user + usage.system + usage.children_user + usage.children_system

    def pids(self) -> list[int]:
        if self.group is not None:
            return [int(p) for p in (self.group / "cgroup.procs").read_text().split()]
        return [os.getpid()]

    def pss(self) -> int:
        from mnistkit.grading.sandbox import pss
        return sum(pss(pid) for pid in self.pids())

    def start_sampling(self) -> None:
        self.peak = 0
        self._stop.clear()

        def sample():
            while not self._stop.wait(0.5):
                self.peak = max(self.peak, self.pss())
        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()

    def stop_sampling(self) -> int:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.peak

    def close(self) -> None:
        if self.group is not None:
            try:
                (CPUACCT / "cgroup.procs").write_text(str(os.getpid()))
                self.group.rmdir()
            except OSError:
                pass   # a child still in it; removed by whoever runs the next bench


class _Collect:
    """A grade_class recorder that keeps each student's Results (timings of the cells)."""

    def __init__(self):
        self.results = {}

    def record(self, student, results) -> None:
        self.results[student] = results


# A fixed amount of pure-Python work (about 1.2 s here): no I/O, no threads, little memory.
_SPIN = "x = 0\nfor i in range(15_000_000):\n    x += i\n"


def cpu_ceiling() -> float:
    """Two-process speed-up of plain CPU-bound work on this machine: the same loop run alone,
    then two copies at the same time (2 x alone / together), the faster of two tries of each, so
    that a neighbour's burst on the shared host does not decide the figure."""
    import subprocess

    def spin(n: int) -> float:
        start = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", _SPIN]) for _ in range(n)]
        for proc in procs:
            proc.wait()
        return time.perf_counter() - start
    alone = min(spin(1), spin(1))
    return round(2 * alone / min(spin(2), spin(2)), 2)


def make_class(root: Path, assignments: list[str], students: int) -> Path:
    from mnistkit import examples
    submitted = root / "submitted"
    for number in range(students):
        kind = KINDS[number % len(KINDS)]
        for assignment in assignments:
            examples.make(kind, assignment, submitted / f"s{number + 1:03d}-{kind}" / assignment)
    return submitted


def _grade_all(submitted: Path, assignments: list[str], out: Path, jobs: int,
               meter: TreeMeter) -> dict:
    from mnistkit.grading import batch, run
    course = run.Course.default()
    figures = {"wall": {}, "cpu": {}, "results": {}}
    meter.start_sampling()
    for assignment in assignments:
        collect = _Collect()
        cpu, wall = meter.cpu(), time.perf_counter()
        done = batch.grade_class(submitted, assignment, out / assignment, course=course,
                                 jobs=jobs, recorder=collect,
                                 say=lambda line: _log(f"  jobs={jobs} {line}"))
        # One grade-class command per assignment, as a class is graded: its warm servers go with
        # it (two workers' die with their pool), so one worker starts them again for the next.
        _close_warm_servers()
        figures["wall"][assignment] = time.perf_counter() - wall
        figures["cpu"][assignment] = meter.cpu() - cpu
        figures["results"][assignment] = collect.results
        if done.kept:
            raise RuntimeError("a fresh output folder kept students: the bench would lie")
    figures["peak"] = meter.stop_sampling()
    return figures


def _close_warm_servers() -> None:
    from mnistkit.grading import warm_grader, zygote
    zygote.close_idle()
    warm_grader.close_idle()


def _a4_split(results: dict) -> tuple[float | None, float | None]:
    """(seconds of the student's model training, the rest of the grading's wall time), means
    over the a4 notebooks that trained one. The training is the grading's longest request to the
    sandbox (``train_digits`` on the 60,000 images), as the sandbox reports it for instructors."""
    runs, rests = [], []
    for graded in results.values():
        for report in graded.notebooks:
            train = (report.get("sandbox") or {}).get("longest_request_seconds") or 0.0
            if train > 1.0:
                runs.append(train)
                rests.append(max(graded.execution_time - train, 0.0))
    if not runs:
        return None, None
    return sum(runs) / len(runs), sum(rests) / len(rests)


def run(students: int = 20, assignments: list[str] | None = None) -> dict:
    from mnistkit.grading import run as grading
    course = grading.Course.default()
    assignments = assignments or course.assignments()
    load = os.getloadavg()
    ceiling = cpu_ceiling()
    meter = TreeMeter()
    try:
        with tempfile.TemporaryDirectory(prefix="mnistkit-bench-grading-") as tmp:
            tmp = Path(tmp)
            submitted = make_class(tmp, assignments, students)
            _log(f"bench --grading: {students} students x {len(assignments)} assignments, "
                 f"mix {'/'.join(KINDS)}; CPU from the {meter.source}")
            one = _grade_all(submitted, assignments, tmp / "jobs1", 1, meter)
            two = _grade_all(submitted, assignments, tmp / "jobs2", 2, meter)
    finally:
        meter.close()
    notebooks = {a: sum(len(g.notebooks) for g in one["results"][a].values()) or 1
                 for a in assignments}
    wall1, wall2 = sum(one["wall"].values()), sum(two["wall"].values())
    per_notebook_wall2 = {a: two["wall"][a] / max(len(two["results"][a]), 1) for a in assignments}
    class100 = sum(per_notebook_wall2.get(a, 0.0) * 100 for a in assignments)
    class100 *= 4 / len(assignments)     # a subset of assignments stands for the four
    figures = {
        "students": students, "assignments": assignments,
        "cpu_s_per_notebook": {a: round(one["cpu"][a] / notebooks[a], 2) for a in assignments},
        "wall_s_per_notebook_jobs1": {a: round(one["wall"][a] / max(len(one["results"][a]), 1), 2)
                                      for a in assignments},
        "wall_s_jobs1": round(wall1, 1), "wall_s_jobs2": round(wall2, 1),
        "speedup": round(wall1 / wall2, 2) if wall2 else None, "cpu_ceiling_speedup": ceiling,
        "peak_pss_mb": round(one["peak"] / 2**20), "peak_pss_mb_jobs2": round(two["peak"] / 2**20),
        "class100_minutes": round(class100 / 60, 1),
        "cpu_source": meter.source, "cpus": os.cpu_count(),
        "load_avg": [round(x, 2) for x in load], "machine": platform.machine(),
    }
    if "a4_further_research" in assignments:
        train, rest = _a4_split(one["results"]["a4_further_research"])
        figures["a4_training_s"] = round(train, 1) if train is not None else None
        figures["a4_overhead_s"] = round(rest, 1) if rest is not None else None
    return figures


def print_report(figures: dict) -> None:
    print(f"grading {figures['students']} students per assignment, 1 and 2 workers "
          f"(load {figures['load_avg']}, {figures['cpus']} cpus)")
    print(f"{'assignment':<24}{'CPU s / notebook':>18}{'wall s / notebook':>19}")
    for a in figures["assignments"]:
        print(f"{a:<24}{figures['cpu_s_per_notebook'][a]:>18.2f}"
              f"{figures['wall_s_per_notebook_jobs1'][a]:>19.2f}")
    print(f"class: {figures['wall_s_jobs1']:.0f} s with 1 worker, {figures['wall_s_jobs2']:.0f} s "
          f"with 2 ({figures['speedup']}x; two plain CPU-bound processes: "
          f"{figures['cpu_ceiling_speedup']}x); peak PSS {figures['peak_pss_mb']} MB "
          f"(two workers {figures['peak_pss_mb_jobs2']} MB); 100 students x 4 assignments "
          f"~ {figures['class100_minutes']} min")
    print(json.dumps(figures))
