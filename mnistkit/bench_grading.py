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
    from mnistkit.grading import zygote
    # First: figures of cold gradings are not the warm start's; they are labelled as such.
    problem = zygote.warm_start_problem()
    if problem:
        _log(f"WARNING: bench --grading runs COLD, the warm start does not work here: {problem}")
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
        "start": f"cold: {problem[:300]}" if problem else "warm",
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
    if figures.get("start", "warm") != "warm":
        print(f"COLD START (these are not the warm start's figures): {figures['start']}")
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


# --- bench --fairness: what one submission can take from its classmates (issue 19) ----------

# Started by the hog's first cell: busy processes, each in a session of its own (so that no
# process-group kill of the cell reaches them), spinning until the sandbox is closed.
HOG_CELL = ("import os, time\n"
            "for _ in range({n}):\n"
            "    if os.fork() == 0:\n"
            "        os.setsid()\n"
            "        end = time.monotonic() + 900\n"
            "        while time.monotonic() < end:\n"
            "            pass\n"
            "        os._exit(0)\n")
SLEEP_CELL = "import time\ntime.sleep({s})\n"
FAIRNESS_GOAL = 1.5   # an honest grading beside the hog and the sleeper, over the quiet one


def make_fair_class(root: Path, assignment: str, course, *, loaded: bool, hog_processes: int,
                    sleep_seconds: float) -> Path:
    """Four students handing in the reference (the source notebook). ``loaded``: s1 hogs the
    CPU (``HOG_CELL`` first, then sleeps like the sleeper, so its processes spin for its whole
    grading), s4 sleeps two cells of ``sleep_seconds`` after its first answer (past the
    notebook's budget by default: its later exercises score 0). Named so that with two workers
    both honest students (s2, s3) are graded beside the hog."""
    import nbformat
    submitted = root / "submitted"
    for name in ("s1-hog", "s2-honest", "s3-honest", "s4-sleeper"):
        for source in sorted((course.source / assignment).glob("*.ipynb")):
            nb = nbformat.read(source, as_version=4)
            if loaded and name == "s1-hog":
                nb.cells.insert(0, nbformat.v4.new_code_cell(HOG_CELL.format(n=hog_processes)))
            if loaded and name in ("s1-hog", "s4-sleeper"):
                first = next((i for i, c in enumerate(nb.cells) if str(
                    c.metadata.get("nbgrader", {}).get("grade_id", "")).endswith("-answer")), 0)
                for _ in range(2):
                    nb.cells.insert(first + 1, nbformat.v4.new_code_cell(
                        SLEEP_CELL.format(s=sleep_seconds)))
            folder = submitted / name / assignment
            folder.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, str(folder / source.name))
    return submitted


def _fair_run(root: Path, assignment: str, course, loaded: bool, hog_processes: int,
              sleep_seconds: float) -> tuple[dict, dict]:
    """(seconds per student, results per student) of one grade-class run with two workers."""
    from mnistkit.grading import batch
    what = "hogged" if loaded else "quiet"
    submitted = make_fair_class(root / what, assignment, course, loaded=loaded,
                                hog_processes=hog_processes, sleep_seconds=sleep_seconds)
    collect = _Collect()
    done = batch.grade_class(submitted, assignment, root / what / "out", course=course, jobs=2,
                             recorder=collect, say=lambda line: _log(f"  {what}: {line}"))
    _close_warm_servers()
    if done.not_graded:
        raise RuntimeError(f"not graded in the {what} run: {done.not_graded}")
    return dict(done.walls), collect.results


def run_fairness(assignment: str = "a1_pixel_similarity", hog_processes: int = 12,
                 sleep_seconds: float = 115.0) -> dict:
    """Grade a class of four with ``grade-class --jobs 2`` twice: quiet (four honest
    references), then loaded (a hog, two honest students, a sleeper); the honest students'
    grading times, loaded over quiet, against ``FAIRNESS_GOAL``."""
    from mnistkit.grading import run as grading
    from mnistkit.grading import sandbox, zygote
    from mnistkit.settings import settings
    course = grading.Course.default()
    problem = zygote.warm_start_problem()
    if problem:
        _log(f"WARNING: bench --fairness runs COLD, the warm start does not work here: {problem}")
    limits = settings().limits
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="mnistkit-bench-fairness-") as tmp:
        tmp = Path(tmp)
        quiet, _ = _fair_run(tmp, assignment, course, False, hog_processes, sleep_seconds)
        load_quiet = os.getloadavg()
        loaded, results = _fair_run(tmp, assignment, course, True, hog_processes, sleep_seconds)
    load_after = os.getloadavg()
    honest = ("s2-honest", "s3-honest")
    ratios = {s: round(loaded[s] / quiet[s], 2) for s in honest if quiet.get(s)}
    sleeper = results.get("s4-sleeper")
    hog = results.get("s1-hog")
    return {
        "mode": "fairness", "assignment": assignment, "jobs": 2,
        "start": f"cold: {problem[:300]}" if problem else "warm",
        "hog_processes": hog_processes, "sleep_cells_s": [sleep_seconds, sleep_seconds],
        "cpu_quota_cores": limits.cpu_cores if sandbox._CpuCap.supported() else None,
        "notebook_budget_s": limits.notebook_seconds,
        "quiet_s": {s: round(v, 1) for s, v in sorted(quiet.items())},
        "loaded_s": {s: round(v, 1) for s, v in sorted(loaded.items())},
        "honest_ratio": ratios, "worst_ratio": max(ratios.values()) if ratios else None,
        "goal": FAIRNESS_GOAL,
        "sleeper_score": [sleeper.score, sleeper.max_score] if sleeper else None,
        "hog_score": [hog.score, hog.max_score] if hog else None,
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after_quiet": [round(x, 2) for x in load_quiet],
        "load_avg_after": [round(x, 2) for x in load_after],
        "cpus": os.cpu_count(),
    }


def print_fairness(figures: dict) -> None:
    if figures.get("start", "warm") != "warm":
        print(f"COLD START (these are not the warm start's figures): {figures['start']}")
    quota = figures["cpu_quota_cores"]
    print(f"fairness on {figures['assignment']}, grade-class --jobs 2, class of four: "
          f"cpu quota {'none (no cpu cgroup here)' if quota is None else f'{quota:g} core(s)'} "
          f"per grading, notebook budget {figures['notebook_budget_s']:g} s "
          f"({figures['cpus']} cpus)")
    print(f"{'student':<14}{'quiet s':>9}{'loaded s':>10}{'ratio':>7}")
    for student, loaded in figures["loaded_s"].items():
        quiet = figures["quiet_s"].get(student)
        ratio = figures["honest_ratio"].get(student)
        print(f"{student:<14}{quiet:>9.1f}{loaded:>10.1f}"
              + (f"{ratio:>7.2f}" if ratio is not None else f"{'':>7}"))
    worst = figures["worst_ratio"]
    verdict = "met" if worst is not None and worst <= figures["goal"] else "NOT met"
    print(f"honest students beside a hog of {figures['hog_processes']} processes and a sleeper: "
          f"worst {worst}x the quiet run (goal {figures['goal']}x: {verdict}); sleeper "
          f"{figures['sleeper_score']}, hog {figures['hog_score']}; load "
          f"{figures['load_avg_before']} -> {figures['load_avg_after']}")
    print(json.dumps(figures))
