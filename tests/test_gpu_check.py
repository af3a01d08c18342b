"""scripts/gpu-check: every GPU claim of the kit in one command (docs/benchmarks.md).

This machine has no GPU, so what runs here is what the script does without one (one line, JSON
with "gpu": false, exit 0, in seconds), its plan (the command lines, parsed by the real CLIs),
its guard cell (the a4 answer that trains on one device only), and, marked slow, every step
with its CPU version (`--pretend-gpu`): the same command lines with small budgets.
"""
import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ROOT, TIMINGS

SCRIPT = ROOT / "scripts" / "gpu-check"
HAS_GPU = os.path.exists("/dev/nvidia0")


def gpu_check_module():
    """The script as a module (its file name has no .py)."""
    loader = importlib.machinery.SourceFileLoader("gpu_check", str(SCRIPT))
    spec = importlib.util.spec_from_loader("gpu_check", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def run_script(*args, timeout=60) -> tuple[subprocess.CompletedProcess, float, dict]:
    """Run the script the way a user does (its own shebang), from the kit's folder: (the
    process, seconds, its last line as JSON)."""
    start = time.perf_counter()
    proc = subprocess.run([str(SCRIPT), *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    lines = proc.stdout.strip().splitlines()
    assert lines, f"no output; stderr:\n{proc.stderr}"
    return proc, seconds, json.loads(lines[-1])


def test_script_is_executable():
    assert os.access(SCRIPT, os.X_OK)


@pytest.mark.skipif(HAS_GPU, reason="this machine has a GPU: the script checks it instead")
def test_without_a_gpu_it_says_so_and_exits_0_in_seconds():
    """No /dev/nvidia0: one line saying so, then {"gpu": false, ...}, exit 0, within seconds."""
    proc, seconds, result = run_script()
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2 and "no GPU here" in lines[0]
    assert result["gpu"] is False and result["why"] and result["seconds"] < 5
    assert seconds < 20


PLACEHOLDERS = ("SUBMISSION", "SUBMITTED", "GRADED", "WORKER_DIR", "RESULTS.json",
                "SCHEDULER.json")


def real_paths(argv: list[str], tmp_path: Path) -> list[str]:
    """The plan's placeholders made real paths: folders that exist, files in one."""
    folder = tmp_path / "folder"
    folder.mkdir(exist_ok=True)
    return [str(folder / a.lower()) if a.endswith(".json") and a in PLACEHOLDERS
            else str(folder) if a in PLACEHOLDERS else a for a in argv]


def parse_with_the_real_cli(line: str, tmp_path: Path) -> None:
    """A planned command line, parsed (never run) by mnistkit's or dask's own parser."""
    import shlex
    argv = shlex.split(line)
    assert argv[0] == sys.executable and argv[1] == "-m", line
    args = real_paths(argv[3:], tmp_path)
    if argv[2] == "mnistkit":
        from mnistkit.cli import make_parser
        parsed = make_parser().parse_args(args)
        assert parsed.func, line
    else:
        assert argv[2] == "dask", line
        if args[0] == "worker":
            from distributed.cli.dask_worker import main as command
        else:
            from distributed.cli.dask_scheduler import main as command
        command.make_context(f"dask {args[0]}", args[1:])


@pytest.mark.parametrize("pretend", [False, True], ids=["gpu", "pretend-gpu"])
def test_plan_prints_command_lines_the_real_clis_accept(pretend, tmp_path):
    """`--plan`: every step's command lines, run by nothing, each accepted by the parser of the
    command it calls; the GPU plan trains on cuda, the pretend one on the CPU, small."""
    proc, seconds, result = run_script("--plan", *(["--pretend-gpu"] if pretend else []))
    assert proc.returncode == 0, proc.stderr
    assert result["plan"] is True and result["pretend"] is pretend and seconds < 20
    steps = result["steps"]
    assert list(steps) == ["data", "bench", "grade", "dask"]
    commands = [line for lines in steps.values() for line in lines if not line.startswith("#")]
    for line in commands:
        parse_with_the_real_cli(line, tmp_path)
    bench = steps["bench"][0]
    if pretend:
        assert "--device cpu" in bench and "--limit-train 2000" in bench
    else:
        assert bench.endswith("bench --device cuda")
    assert any("grade " in line and "--assignment a4_further_research" in line
               for line in steps["grade"])
    workers = [line for line in steps["dask"] if " worker " in line]
    assert len(workers) == 2 and sum("--resources GPU=1" in w for w in workers) == 1
    assert any("grade-class" in line and "--scheduler" in line for line in steps["dask"])
    # the printed lines are the JSON's
    assert sum(1 for line in proc.stdout.splitlines() if line.startswith("bench: ")) == 1


def test_plan_with_only_one_step(tmp_path):
    proc, _, result = run_script("--plan", "--only", "bench")
    assert proc.returncode == 0 and list(result["steps"]) == ["bench"]


def guard_namespace(picked: str, moves_to: str):
    """What the guard cell sees in the notebook: pick_device and the answer's train_digits."""
    import torch
    calls = []

    def train_digits(model, x, y):
        calls.append(len(x))
        model.to(moves_to)

    return {"pick_device": lambda: torch.device(picked), "train_digits": train_digits}, calls


def test_guard_trains_on_its_device_only():
    """The cell added to the reference answers: train_digits trains on the wanted device and
    says, in the error the report shows, when the sandbox gives another or the model ends
    elsewhere; in --pretend-gpu it trains on the first 2,000 images only."""
    import torch
    gpu_check = gpu_check_module()
    model, x, y = torch.nn.Linear(2, 2), torch.zeros(5000, 1, 28, 28), torch.zeros(5000)

    space, calls = guard_namespace("cpu", "cpu")
    exec(gpu_check.guard_cell("cpu", 2000), space)
    space["train_digits"](model, x, y)
    assert calls == [2000]

    space, calls = guard_namespace("cpu", "cpu")
    exec(gpu_check.guard_cell("cuda", None), space)
    with pytest.raises(RuntimeError, match=r"gpu-check: pick_device\(\) gave cpu in the sandbox, "
                                           r"not cuda \(torch.cuda.is_available\(\) is "):
        space["train_digits"](model, x, y)
    assert calls == []

    space, calls = guard_namespace("cuda", "cpu")       # picks cuda, trains elsewhere
    exec(gpu_check.guard_cell("cuda", None), space)
    with pytest.raises(RuntimeError, match="the model trained on cpu, not cuda"):
        space["train_digits"](model, x, y)
    assert calls == [5000]


def test_results_are_judged_by_every_test_and_the_training(tmp_path):
    """Full marks and train_digits passed: trained there; a failing train_digits test names the
    guard's reason; --pretend-gpu lets only the accuracy thresholds fail."""
    gpu_check = gpu_check_module()
    tests = [{"name": "pick_device: cuda with gpu", "score": 0.5, "max_score": 0.5, "status": "passed"},
             {"name": "train_digits: predict digits gives the models digits", "score": 1.3,
              "max_score": 1.3, "status": "passed"},
             {"name": "train_digits: trained model accuracy (99%)", "score": 1.3,
              "max_score": 1.3, "status": "passed"}]
    results = tmp_path / "results.json"

    def judge(pretend, tests):
        results.write_text(json.dumps({"score": sum(t["score"] for t in tests), "tests": tests,
                                       "execution_time": 9.0}))
        check = gpu_check.Check(pretend, tmp_path, tmp_path, gpu_check.Clock(60), False)
        return check.judge_results(results)

    judged = judge(False, tests)
    assert judged["why"] is None and judged["figures"]["trained_on_cuda"] is True
    assert judged["figures"]["score"] == judged["figures"]["max_score"] == 3.1

    failing = [dict(t, score=0, status="failed", output="gpu-check: pick_device() gave cpu")
               if t["name"].startswith("train_digits") else t for t in tests]
    judged = judge(False, failing)
    assert judged["figures"]["trained_on_cuda"] is False
    assert "gpu-check: pick_device() gave cpu" in judged["why"]

    low = [dict(t, score=0, status="failed", output="test accuracy 91%")
           if "accuracy" in t["name"] else t for t in tests]
    judged = judge(True, low)
    assert judged["why"] is None and judged["figures"]["trained_on_cpu"] is True
    assert judge(False, low)["why"].startswith("train_digits: trained model accuracy (99%)")


@pytest.mark.slow
@pytest.mark.skipif(HAS_GPU, reason="this machine has a GPU: run scripts/gpu-check itself")
def test_pretend_gpu_runs_the_steps_with_their_cpu_version(tmp_path):
    """`--pretend-gpu`: data, bench on the CPU, and a4's guarded reference graded in the sandbox
    (trained on the CPU, 2,000 images); every check ok, the JSON's figures there, within the
    script's budget. (The Dask step's command lines are parsed above; that a4's gradings go to
    the worker declaring GPU=1 is tests/test_grade_class_dask.py's, on the toy course: running
    it here again would cost 40 s of make test.)"""
    proc, seconds, result = run_script("--pretend-gpu", "--only", "data", "--only", "bench",
                                       "--only", "grade", "--logs", tmp_path / "logs",
                                       timeout=600)
    TIMINGS["scripts/gpu-check --pretend-gpu"] = seconds
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert result["gpu"] is False and result["pretend"] is True and result["ok"] is True
    checks = result["checks"]
    assert list(checks) == ["data", "bench", "grade"]
    assert all(c["ok"] and c["seconds"] > 0 for c in checks.values())
    assert checks["bench"]["device"] == "cpu" and checks["bench"]["train_images"] == 2000
    grade = checks["grade"]
    assert grade["trained_on_cpu"] is True and grade["max_score"] == 33
    assert result["seconds"] < 480 and seconds < 480
