"""docs/authoring.md's worked example, followed word for word on a fresh copy of the course:
the new exercise is checked, built and graded.

The blocks come from the page itself (``<!-- worked-example: NAME -->`` before each), so the
page and this test cannot drift apart. One sandboxed grading of the reference (about a minute).
"""
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from mnistkit.build import nbgrader_env
from mnistkit.paths import ROOT

from .fixtures.checkout import fresh_clone

A1 = "a1_pixel_similarity"
PAGE = ROOT / "docs" / "authoring.md"


def worked_example() -> dict[str, str]:
    blocks = re.findall(r"<!-- worked-example: ([\w-]+) -->\n```\w*\n(.*?)```", PAGE.read_text(), re.S)
    return {name: text for name, text in blocks}


def mnistkit(clone: Path, *args: str) -> subprocess.CompletedProcess:
    """The installed `mnistkit`, run in the copy as an instructor would (it runs that copy's code)."""
    return subprocess.run([str(Path(sys.executable).parent / "mnistkit"), *args], cwd=clone,
                          env=nbgrader_env(), capture_output=True, text=True, timeout=900)


def add_to_notebook(clone: Path, blocks: dict[str, str]) -> None:
    path = clone / "source" / A1 / "pixel_similarity.ipynb"
    nb = nbformat.read(path, as_version=4)
    last = max(i for i, c in enumerate(nb.cells)
               if c.cell_type == "raw" and c.source.startswith("# mutant of stack_images:"))
    nbgrader = {"schema_version": 3, "solution": False, "grade": False, "locked": False, "task": False}
    prompt = nbformat.v4.new_markdown_cell(blocks["prompt"].strip())
    answer = nbformat.v4.new_code_cell(blocks["answer"].strip())
    answer.metadata["nbgrader"] = {**nbgrader, "solution": True, "grade_id": "mean_brightness-answer"}
    graded = nbformat.v4.new_code_cell(blocks["self-check"].strip())
    graded.metadata["nbgrader"] = {**nbgrader, "grade": True, "locked": True,
                                   "grade_id": "mean_brightness", "points": 1}
    graded.metadata.update(json.loads(blocks["metadata"]))
    mutant = nbformat.v4.new_raw_cell(blocks["mutant"].strip())
    nb.cells[last + 1:last + 1] = [prompt, answer, graded, mutant]
    nbformat.write(nb, str(path))


@pytest.mark.slow
def test_the_worked_example_adds_a_graded_exercise(tmp_path, mnist_data_dir):
    """Following docs/authoring.md on a fresh copy: does check name the missing hidden checks,
    then only the stale references; does build make them; is the new exercise graded, at full
    marks for the reference, with every other exercise still at full marks?"""
    blocks = worked_example()
    assert set(blocks) == {"prompt", "answer", "self-check", "metadata", "mutant", "hidden-checks"}
    clone = fresh_clone(tmp_path / "course")

    add_to_notebook(clone, blocks)
    proc = mnistkit(clone, "check")
    assert proc.returncode == 1
    assert f"autograder/test_{A1}.py: mean_brightness: no hidden checks: add tests marked " \
           'exercise("mean_brightness")' in proc.stdout.splitlines()

    module = clone / "autograder" / f"test_{A1}.py"
    module.write_text(module.read_text().rstrip("\n") + "\n\n\n" + blocks["hidden-checks"])
    proc = mnistkit(clone, "check")
    assert proc.returncode == 1 and proc.stdout.splitlines() == [
        f"solutions/{A1}.py: {A1}: not the references of the source notebook: run `mnistkit build`"]

    proc = mnistkit(clone, "build")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "def mean_brightness(images):" in (clone / "solutions" / f"{A1}.py").read_text()
    release = (clone / "release" / A1 / "pixel_similarity.ipynb").read_text()
    assert "mean_brightness" in release and "# mutant of" not in release
    proc = mnistkit(clone, "check")
    assert proc.returncode == 0 and "every exercise has its parts" in proc.stdout

    results = tmp_path / "reference.json"
    proc = mnistkit(clone, "grade", "--reference", "--assignment", A1, "--results", str(results))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tests = json.loads(results.read_text())["tests"]
    mine = [t for t in tests if t["name"].startswith("mean_brightness: ")]
    assert [t["name"] for t in mine] == ["mean_brightness: random batch",
                                         "mean_brightness: other image sizes"]
    assert all(t["score"] == t["max_score"] for t in tests), [t["name"] for t in tests
                                                              if t["score"] != t["max_score"]]
