"""`mnistkit bench --fairness` (mnistkit/bench_grading.py): runs end to end on the toy course
with tiny settings (the figures themselves are the benchmark's, never asserted), and refuses
bad arguments before grading anyone."""
from __future__ import annotations

import json
import os
import shutil

import pytest

from .conftest import run_mnistkit
from .fixtures.toy_course import toy_helpers as toy


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return toy.make_course(tmp_path_factory.mktemp("fair_course"))


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_fairness_bench_grades_quiet_and_loaded_and_ends_with_json(course):
    """Does it grade the class of four twice, print every student's times and the honest
    students' ratios, and end with one JSON line? The sleeper and the hog (which sleeps too, so
    that its processes spin for its whole grading) lose the exercise after their sleep, past
    the notebook's budget."""
    env = {**os.environ, "MNISTKIT_COURSE_ROOT": str(course),
           "MNISTKIT_LIMIT_NOTEBOOK_SECONDS": "8"}
    proc = run_mnistkit("bench", "--fairness", "--assignment", toy.ASSIGNMENT,
                        "--hog-processes", "2", "--sleep-seconds", "5", env=env, timeout=400)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    figures = json.loads(lines[-1])
    assert figures["mode"] == "fairness" and figures["hog_processes"] == 2
    assert set(figures["quiet_s"]) == set(figures["loaded_s"]) == {
        "s1-hog", "s2-honest", "s3-honest", "s4-sleeper"}
    assert set(figures["honest_ratio"]) == {"s2-honest", "s3-honest"}
    assert figures["worst_ratio"] == max(figures["honest_ratio"].values())
    total = sum(toy.POINTS.values())
    assert figures["hog_score"] == figures["sleeper_score"] == [toy.POINTS["double_it"], total]
    assert any(line.startswith("honest students beside a hog of 2 processes") for line in lines)


@pytest.mark.parametrize("args, message", [
    (["--fairness", "--assignment", "a9_nope"], "a9_nope"),
    (["--fairness", "--assignment", "a1_pixel_similarity", "--assignment",
      "a2_gradient_descent"], "--fairness grades one assignment"),
    (["--fairness", "--grading"], "not allowed with argument"),
    (["--fairness", "--hog-processes", "0"], "--hog-processes"),
])
def test_fairness_bench_refuses_bad_arguments(args, message):
    proc = run_mnistkit("bench", *args, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr
