"""Working through a notebook: every instructor notebook runs top to bottom, cleanly, offline."""
import time
import types

import nbformat
import pytest
from nbclient import NotebookClient

from mnistkit.paths import SOURCE

from .conftest import TIMINGS

NOTEBOOKS = sorted(SOURCE.glob("*/*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.parent.name)
def test_source_notebook_runs_cleanly(path, mnist_data_dir, monkeypatch):
    """Does the instructor notebook run top to bottom with no error and nothing on stderr?

    (nbgrader scores a graded cell 0 when it writes to stderr, so silence matters.) It runs as
    nbgrader runs it (NBGRADER_EXECUTION set), so a3's ResNet-18 epoch (80-95 s here) is skipped
    as when grading: `test_resnet_epoch_cell_trains_only_when_a_student_runs_it` checks that
    cell, `mnistkit bench --resnet` runs the epoch itself."""
    monkeypatch.setenv("NBGRADER_EXECUTION", "validate")
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=180, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    TIMINGS[f"run {path.relative_to(SOURCE)}"] = time.perf_counter() - start
    problems = []
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                problems.append(f"cell {index}: {out.ename}: {out.evalue}")
            elif out.output_type == "stream" and out.name == "stderr":
                problems.append(f"cell {index} wrote to stderr: {out.text[:200]!r}")
    assert problems == []


class FakeLearner:
    """Records fit_one_cycle calls; what the epoch cell prints afterwards reads its recorder."""

    def __init__(self):
        self.calls = []
        self.dls = types.SimpleNamespace(device="cpu")
        self.recorder = types.SimpleNamespace(values=[])

    def fit_one_cycle(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        self.recorder.values.append([0.1, 0.01, 0.99])


@pytest.mark.parametrize("graded", [None, "autograde", "validate"])
def test_resnet_epoch_cell_trains_only_when_a_student_runs_it(graded, monkeypatch, capsys):
    """Does a3's locked epoch cell train one epoch at lr 0.1 when a student runs the notebook,
    and skip it (saying so) when nbgrader's autograde or Validate, or the kit's grader, runs it?"""
    nb = nbformat.read(SOURCE / "a3_training_loop" / "training_loop.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "demo-resnet-epoch")
    assert cell.metadata["nbgrader"]["locked"], "students must not be able to change the skip"
    if graded is None:
        monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    else:
        monkeypatch.setenv("NBGRADER_EXECUTION", graded)
    learn = FakeLearner()
    exec(compile(cell.source, "demo-resnet-epoch", "exec"), {"learn": learn})
    printed = capsys.readouterr().out
    if graded is None:
        assert learn.calls == [((1, 0.1), {})] and "validation accuracy 0.9900" in printed
    else:
        assert learn.calls == [] and "skipped" in printed
