"""What keeps a model from scoring by what was carried in rather than learned.

Why: MNIST's test set is public, so a notebook could carry in a table of its answers or weights
trained elsewhere. Two measures, both engine (the limit itself is the hidden test module's):

- ``relabeling``: a random derangement of the ten digits, drawn per grading; the grader gives
  the training code its labels through it and scores against the same relabeling, so weights
  prepared elsewhere predict the wrong digits unless the code learns from the labels it is given.
- ``carried_bytes``: the information a notebook's text carries beyond the notebook as released,
  measured by compression with the released notebook as context (``released_cells``).
"""
from __future__ import annotations

import lzma
from pathlib import Path

import numpy as np

from mnistkit.catalog import read_cells


def notebook_text(cells) -> bytes:
    """The cells as one text: each cell's type, then its source, in order (so that the types
    and the order of cells count too, not only what they say)."""
    return "".join(f"\n\x1e{c.get('cell_type')}\n{c.get('source', '')}" for c in cells).encode(
        "utf-8", errors="surrogatepass")


def _xz_size(parts, stop_above: int | None = None) -> int:
    """Bytes of ``parts`` (an iterable of bytes) compressed with lzma at preset 9, streamed;
    once the output passes ``stop_above`` the rest is not compressed (a 256 MB notebook of
    random text would take minutes) and the size so far, already over, is returned."""
    xz = lzma.LZMACompressor(preset=9)
    size = 0
    for part in parts:
        for i in range(0, len(part), 1 << 18):
            size += len(xz.compress(part[i:i + (1 << 18)]))
            if stop_above is not None and size > stop_above:
                return size
    return size + len(xz.flush())


def carried_bytes(cells, released_cells, stop_above: int | None = None) -> int:
    """How many bytes of information the notebook's cells carry beyond the notebook as released:
    the lzma-compressed size of the released notebook followed by this one, minus that of the
    released notebook followed by itself. Everything in the text counts (code, comments,
    literals, names, markdown, written answers, how many cells and where): any of it can hold
    data, while compression makes what repeats or was given cheap (the released cells, the
    student's own repeated boilerplate), so a dense table costs what it holds. The untouched
    release carries 0. ``stop_above``: stop compressing once over it (see ``_xz_size``)."""
    context = notebook_text(released_cells) + b"\n\x1d"
    base = _xz_size([context, notebook_text(released_cells)])
    limit = None if stop_above is None else base + stop_above
    return max(0, _xz_size([context, notebook_text(cells)], limit) - base)


def released_cells(config, notebook: Path) -> list[dict]:
    """The notebook as released to students (the context ``carried_bytes`` measures against):
    the course's release/, else the kit's, else its source notebook (trusted, the kit's own);
    ``notebook``: its path under those folders (``a4_further_research/further_research.ipynb``)."""
    from mnistkit.paths import RELEASE, SOURCE
    source_root = Path(config.getoption("--course-source") or SOURCE)
    for path in (source_root.parent / "release" / notebook, RELEASE / notebook, source_root / notebook):
        if path.is_file():
            return read_cells(path)
    return []


def relabeling(rng: np.random.Generator) -> np.ndarray:
    """A random derangement of the ten digits (no digit keeps its label): ``new = r[old]``.
    Weights prepared elsewhere and loaded as they are then score about 0%, not a tenth."""
    while True:
        r = rng.permutation(10)
        if not (r == np.arange(10)).any():
            return r
