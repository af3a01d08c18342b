"""`mnistkit doctor` (mnistkit/doctor.py): one line per feature grading relies on, tried on this
machine; exit 1 only when grading cannot run safely."""
from __future__ import annotations

import os
import shutil

import pytest

from mnistkit import cli, doctor

from .conftest import run_mnistkit

NAMES = ["account", "user namespace", "mount namespace", "network namespace", "PID namespace",
         "tmpfs quota", "bubblewrap", "cgroup memory", "cgroup pids", "cgroup cpu", "sandbox",
         "warm start"]


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_doctor_names_every_feature_and_passes_on_this_machine():
    """On the kit's machines (root, cgroup v1, bubblewrap 0.8) is every feature there, one
    line each in a fixed order, and does the command exit 0?"""
    proc = run_mnistkit("doctor", timeout=180)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [line.split(":")[0].split(None, 1)[1] for line in lines[:-1]] == NAMES, lines
    essential = [line for line in lines if line.split(":")[0].split(None, 1)[1] in
                 ("user namespace", "mount namespace", "network namespace", "PID namespace",
                  "tmpfs quota", "bubblewrap", "sandbox")]
    assert all(line.startswith("OK ") for line in essential), lines
    if os.geteuid() == 0:
        assert lines[0].startswith("OK      account: root")
    for name, cap in (("memory", "_MemoryCap"), ("pids", "_ProcessCap"), ("cpu", "_CpuCap")):
        from mnistkit.grading import sandbox
        line = next(line for line in lines if f" cgroup {name}:" in line)
        assert line.startswith("OK ") == getattr(sandbox, cap).supported(), line
    assert lines[-1].startswith("grading can run here")


def test_a_missing_essential_feature_fails_the_doctor(monkeypatch, capsys):
    """Without bubblewrap, does the doctor say what that means and exit 1?"""
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "bwrap"
                        else real(name, *a, **k))
    monkeypatch.setattr(doctor, "CHECKS", (doctor.check_account, doctor.check_bubblewrap))
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("MISSING bubblewrap: not installed: student code is never run")
    assert out[-1] == "grading cannot run safely here: missing bubblewrap"


def test_a_missing_cgroup_is_said_and_grading_goes_on(monkeypatch, capsys):
    """A machine without a writable cpu controller: MISSING with what it costs, exit 0."""
    from mnistkit.grading import sandbox
    monkeypatch.setattr(sandbox._CpuCap, "CGROUP", sandbox.Path("/nonexistent"))
    monkeypatch.setattr(doctor, "CHECKS", (doctor.check_cgroup_cpu,))
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("MISSING cgroup cpu: no writable cpu controller: one submission's "
                             "busy processes can slow its classmates")
    assert out[-1] == "grading can run here, with weaker guarantees: missing cgroup cpu"


def test_the_warm_start_turned_off_is_said(monkeypatch):
    monkeypatch.setenv("MNISTKIT_WARM_START", "0")
    found = doctor.check_warm_start()
    assert not found.ok and not found.essential and "every sandbox starts cold" in found.detail
