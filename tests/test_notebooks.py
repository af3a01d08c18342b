"""Working through a notebook: every instructor notebook runs top to bottom, cleanly, offline."""
import time

import nbformat
import pytest
from nbclient import NotebookClient

from mnistkit.paths import SOURCE

from .conftest import TIMINGS

NOTEBOOKS = sorted(SOURCE.glob("*/*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.parent.name)
def test_source_notebook_runs_cleanly(path, mnist_data_dir):
    """Does the instructor notebook run top to bottom with no error and nothing on stderr?

    (nbgrader scores a graded cell 0 when it writes to stderr, so silence matters.)"""
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
