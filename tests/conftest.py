"""Shared set-up for the kit's own tests.

MNIST is materialized once into a kit-local FASTAI_HOME (.mnistkit/fastai, git-ignored), so the
tests never touch the user's ~/.fastai and never need a network; every subprocess (notebook
kernels, the grading sandbox) inherits the variable.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("FASTAI_HOME", str(ROOT / ".mnistkit" / "fastai"))
# Notebook kernels and other subprocesses: idle OpenMP threads sleep rather than spin, which on a
# 2-core CI machine running several processes at once makes torch several times faster.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


# name -> seconds, printed at the end of the run (figures for humans, never asserted).
TIMINGS: dict[str, float] = {}


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.section("mnistkit timings")
        for name, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{seconds:7.1f} s  {name}")


@pytest.fixture(scope="session")
def mnist_data_dir() -> Path:
    """The fastai data folder with mnist_sample/ and mnist_png/ in it (made once, ~30 s)."""
    from mnistkit import data
    results = data.materialize()
    return results["mnist_sample"][0].parent


def run_mnistkit(*args, check=False, timeout=600, **kwargs) -> subprocess.CompletedProcess:
    """Run the installed CLI the way a user would, from the repository root."""
    proc = subprocess.run([sys.executable, "-m", "mnistkit", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f"mnistkit {' '.join(map(str, args))} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(autouse=True)
def spawnable_main():
    """Tests that start worker processes (grade-class --jobs, a Dask LocalCluster) may run in a
    pytest worker where an earlier in-process grading's IPython shell left a ``__main__``
    without ``__spec__``, which multiprocessing's spawn needs (batch.spawnable_main)."""
    from mnistkit.grading.batch import spawnable_main
    spawnable_main()
    yield
