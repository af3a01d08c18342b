"""A class batch with runaway and dying notebooks: each is graded in bounded time, with 0 where
deserved, and the honest students in the same `nbgrader autograde` run are unaffected."""
import time

import pytest

from .fixtures.toy_course import toy_helpers as toy
from .test_nbgrader_autograde import gradebook_scores, nbgrader

pytestmark = [pytest.mark.xdist_group("hostile_batch"),  # its session fixtures: computed on one worker only (make test runs -n)
              pytest.mark.slow,
              pytest.mark.skipif(not toy.sandbox_ready(), reason="needs bubblewrap (make installs it)")]

SOLUTION_DOUBLE = "def double_it(x):\n    return 2 * x\n"
# Each hostile student breaks double_it only; mean_image is answered correctly by everyone.
HOSTILE = {
    "spinner": ("import time\n"
                "while True:\n"
                "    try:\n        time.sleep(1)\n"
                "    except BaseException:\n        pass\n"),
    "memory_hog": "hog = []\nwhile True:\n    hog.append(bytearray(100 * 2**20))\n",
    "quitter": "import os\nos._exit(0)\n",
    "dies_when_called": "def double_it(x):\n    import os\n    os._exit(3)\n",
}


# Tight limits keep the test short (the defaults are 120 s per cell, 4 GiB).
LIMITS = {"CELL_SECONDS": "8", "REQUEST_SECONDS": "8", "GRACE_SECONDS": "2", "MEMORY_BYTES": str(1 << 30)}


@pytest.fixture(scope="session")  # once per worker, even when other modules' tests run in between
def batch(tmp_path_factory):
    course = toy.make_course(tmp_path_factory.mktemp("hostile_batch"))
    source = toy.source_notebook(course)
    students = {"honest_before": source, "honest_after": source}
    students.update({name: toy.with_answers(source, double_it=code) for name, code in HOSTILE.items()})
    for student, nb in students.items():
        toy.submit(course / "submitted" / student / toy.ASSIGNMENT, nb)
    start = time.perf_counter()
    with pytest.MonkeyPatch.context() as mp:
        for name, value in LIMITS.items():
            mp.setenv(f"MNISTKIT_LIMIT_{name}", value)
        nbgrader(course, "autograde", toy.ASSIGNMENT)
    return course, time.perf_counter() - start


def test_honest_students_keep_full_marks(batch):
    """Are honest submissions graded in full, before and after the hostile ones?"""
    course, _ = batch
    for student in ("honest_before", "honest_after"):
        assert gradebook_scores(course, student) == {**toy.POINTS, "why_fast": None}


@pytest.mark.parametrize("student", sorted(HOSTILE))
def test_hostile_notebook_gets_zero_on_its_exercise_only(batch, student):
    """Does a runaway or dying notebook get 0 (recorded, not blank) where it deserves it only?"""
    course, _ = batch
    scores = gradebook_scores(course, student)
    assert scores["double_it"] == 0
    assert scores["mean_image"] == toy.POINTS["mean_image"]


def test_batch_finishes_in_bounded_time(batch):
    """Does the whole batch finish well within the limits (no hang on any student)?"""
    _, seconds = batch
    assert seconds < 600
