"""What one submission may take from its classmates: CPU (a cpu cgroup per sandbox, equal weight
and a quota) and time (the notebook's budget, ``Limits.notebook_seconds``). Issue 19.

No test here times anything: the CPU share is checked as the kernel applied it (the cgroup's
quota read back, its throttling counter), and speed goes in ``mnistkit bench --fairness``.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from mnistkit import cli
from mnistkit.grading import run
from mnistkit.grading.cgroups import CpuCap as _CpuCap
from mnistkit.grading.sandbox import Limits, SandboxStudent

from .fixtures.toy_course import toy_helpers as toy

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None,
                                reason="bubblewrap is not installed")

FAST = Limits(cell_seconds=10, request_seconds=10, grace_seconds=2, preload=())


def notebook(folder: Path, *sources: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "submission.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(s) for s in sources]), path)
    return path


@pytest.fixture(params=["cold", "warm"])
def sandbox(request, monkeypatch):
    """SandboxStudents started cold (bubblewrap) and warm (a fork server's child)."""
    opened, servers = [], []
    if request.param == "warm":
        from mnistkit.grading import zygote
        from mnistkit.grading.sandbox_policy import default_data_dir as _default_data_dir
        server = zygote.ForkServer(FAST, _default_data_dir(None), ())
        assert not server.problem, server.problem
        servers.append(server)
        monkeypatch.setenv(*next(iter(server.grader_env().items())))
    else:
        monkeypatch.delenv("MNISTKIT_FORKSERVER", raising=False)

    def make(path, **limits):
        student = SandboxStudent(path, limits=Limits(**{**vars(FAST), **limits}))
        assert (student._warm is not None) == (request.param == "warm")
        opened.append(student)
        return student
    yield make
    for student in opened:
        student.close()
    for server in servers:
        server.close()


@pytest.mark.skipif(not _CpuCap.supported(), reason="no writable cpu cgroup on this machine")
def test_a_busy_notebook_is_held_to_its_cpu_quota(sandbox, tmp_path):
    """Is every process of the sandbox, the student's own sessions included, in a cpu cgroup
    of its own with the configured quota, and does the kernel throttle it there?"""
    busy = ("import os, time\n"
            "kids = []\n"
            "for _ in range(3):\n"
            "    pid = os.fork()\n"
            "    if pid == 0:\n"
            "        os.setsid()\n"
            "        end = time.monotonic() + 1.5\n"
            "        while time.monotonic() < end: pass\n"
            "        os._exit(0)\n"
            "    kids.append(pid)\n"
            "for pid in kids: os.waitpid(pid, 0)")
    student = sandbox(notebook(tmp_path, busy, "x = 1"), cpu_cores=0.25)
    assert [c.status for c in student.cells] == ["ok", "ok"]
    box = student._box
    assert box.cpucap.available and box.cpu_quota == pytest.approx(0.25)
    own = Path(f"/proc/{box.proc.pid}/cgroup").read_text()
    assert any(line.split(":")[2].endswith("/" + box.cpucap.path.name)
               for line in own.splitlines()
               if "cpu" in line.split(":")[1].split(",") or line.startswith("0::")), own
    stat = dict(line.split() for line in (box.cpucap.path / "cpu.stat").read_text().splitlines())
    assert int(stat["nr_throttled"]) > 0, stat
    assert student.resources()["cpu_quota_cores"] == pytest.approx(0.25)


def test_the_default_is_one_core_and_configurable(monkeypatch):
    """One core per grading unless MNISTKIT_LIMIT_CPU_CORES says otherwise (0: no quota)."""
    assert Limits().cpu_cores == 1.0
    monkeypatch.setenv("MNISTKIT_LIMIT_CPU_CORES", "0.5")
    monkeypatch.setenv("MNISTKIT_LIMIT_NOTEBOOK_SECONDS", "60")
    limits = Limits.from_env()
    assert (limits.cpu_cores, limits.notebook_seconds) == (0.5, 60.0)


def test_cells_past_the_notebooks_budget_are_not_run(sandbox, tmp_path):
    """Is the cell that uses up the notebook's budget stopped, are the cells after it not run
    (nor replayed), and does the reason name the last cell that ran? What ran before stays."""
    path = notebook(tmp_path, "def early():\n    return 1",
                    "import time\ntime.sleep(8)", "def late():\n    return 2")
    student = sandbox(path, notebook_seconds=1.5, cell_seconds=10)
    assert [c.status for c in student.cells] == ["ok", "timeout", "skipped"]
    reason = student.budget_reason
    assert reason.startswith("your notebook used its 1.5 s; the cells after ")
    assert student.cells[1].message == reason == student.cells[2].message
    assert student.not_reached == {1, 2}
    assert student.call("early") == 1
    assert not student.has("late")
    assert 1.5 <= student.resources()["notebook_seconds"] < 10


def test_a_notebook_within_its_budget_runs_whole(sandbox, tmp_path):
    student = sandbox(notebook(tmp_path, "a = 1", "b = a + 1"), notebook_seconds=30)
    assert [c.status for c in student.cells] == ["ok", "ok"]
    assert student.budget_reason is None and not student.not_reached


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return toy.make_course(tmp_path_factory.mktemp("toy_course"))


def test_exercises_past_the_budget_score_zero_with_the_reason(course, tmp_path, monkeypatch,
                                                              capsys):
    """A toy submission that sleeps between its two answers: the first keeps its points, the
    second (never reached) scores 0 and its feedback says the notebook used its time."""
    monkeypatch.setenv(run.COURSE_ENV, str(course))
    monkeypatch.setenv("MNISTKIT_LIMIT_NOTEBOOK_SECONDS", "10")
    nb = toy.source_notebook(course)
    at = next(i for i, c in enumerate(nb.cells) if c.source.startswith("## Mean image"))
    nb.cells.insert(at, new_code_cell("import time\ntime.sleep(30)"))
    folder = toy.submit(tmp_path / "sleeper", nb)
    results = tmp_path / "results.json"
    code = cli.main(["grade", str(folder), "--assignment", toy.ASSIGNMENT,
                     "--results", str(results)])
    out = capsys.readouterr()
    assert code == 0, out.err
    data = json.loads(results.read_text())
    scores = {}
    for test in data["tests"]:
        name = test["name"].split(":")[0]
        scores[name] = scores.get(name, 0.0) + test["score"]
        if name == "mean_image":
            assert "your notebook used its 10 s; the cells after" in test["output"], test
    assert scores == {"double_it": toy.POINTS["double_it"], "mean_image": 0.0}
