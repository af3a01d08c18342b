"""Notebooks as plain JSON: a dict whose keys read as attributes (``Node``, like nbformat's
NotebookNode), new cells and notebooks, and reading and writing a v4 notebook.

Not nbformat: importing it costs 2-4 CPU-s (jsonschema's format checkers), on the grading path
of every `mnistkit grade` and every grade-class worker. A v4 notebook is plain JSON and these
few helpers make what nbformat.v4's would; nbformat is imported only to convert an old
(v3 or earlier) notebook, which is rare.

Apart from ``submission`` (reading what a student handed in, restoring locked cells), which
builds on these, as the grading path's other readers of notebooks can.
"""
from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path


class Node(dict):
    """A dict whose keys read as attributes too, like nbformat's NotebookNode."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value):
        self[key] = value

    def __deepcopy__(self, memo):
        return _nodes(copy.deepcopy(dict(self), memo))


def _nodes(value):
    if isinstance(value, dict):
        return Node({k: _nodes(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_nodes(v) for v in value]
    return value


def random_cell_id() -> str:
    return uuid.uuid4().hex[:8]


def new_cell(cell_type: str, source: str = "") -> Node:
    cell = Node(id=random_cell_id(), cell_type=cell_type, metadata=Node(), source=source)
    if cell_type == "code":
        cell.update(outputs=[], execution_count=None)
    return cell


def new_notebook() -> Node:
    return Node(nbformat=4, nbformat_minor=5, metadata=Node(), cells=[])


def write_notebook(nb: dict, path: Path) -> None:
    """What nbformat's writer makes of a v4 notebook (sources as lists of lines, indent 1)."""
    def lines(cell):
        out = dict(cell)
        source = out.get("source", "")
        out["source"] = source.splitlines(keepends=True) if isinstance(source, str) else source
        return out
    data = dict(nb, cells=[lines(c) for c in nb.get("cells", [])])
    Path(path).write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n",
                          encoding="utf-8")


def read_plain(path: Path) -> Node:
    """A trusted v4 notebook (the kit's release notebooks), sources joined."""
    nb = _nodes(json.loads(Path(path).read_text(encoding="utf-8")))
    for cell in nb.get("cells", []):
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
    return nb
