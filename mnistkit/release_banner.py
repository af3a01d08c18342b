"""nbgrader preprocessor: put a 'generated file' banner first in every released notebook.

It runs inside `nbgrader generate_assignment` (see nbgrader_config.py), so `mnistkit build` and
the stock nbgrader command produce the same release.
"""
from nbformat.v4 import new_markdown_cell
from nbgrader.preprocessors import NbGraderPreprocessor

BANNER_MARK = "mnistkit-release-banner"


def banner_text(assignment: str, notebook: str) -> str:
    return (f"> **Generated file — do not edit.** This student notebook is built from "
            f"`source/{assignment}/{notebook}.ipynb` by `mnistkit build` "
            f"(or `nbgrader generate_assignment {assignment}`).\n"
            f"> Work through it top to bottom; run each self-check cell after your answer.")


class AddReleaseBanner(NbGraderPreprocessor):
    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        cell = new_markdown_cell(banner_text(info["assignment"], info["notebook"]), id=BANNER_MARK)
        cell.metadata[BANNER_MARK] = True
        cell.metadata["editable"] = False
        cell.metadata["deletable"] = False
        nb.cells = [c for c in nb.cells if not c.metadata.get(BANNER_MARK)]
        nb.cells.insert(0, cell)
        return nb, resources
