"""Read a submitted notebook safely and write the notebook the hidden autograder will run.

A submission is whatever a student uploaded: the file may be cut off, not JSON, in an old
nbformat, not UTF-8, full of huge outputs, renamed, or missing. This module turns it into a
clean nbformat 4.5 notebook with sources only (every output stripped), then restores the cells
the student may not change from the release notebook, by ``grade_id``, the way nbgrader's
``OverwriteCells`` does: locked cells (setup code, self-checks, task text) come back from the
release; the student's answer cells and their own extra cells are kept, in their order;
locked cells the student deleted are put back after the graded cell that preceded them (a
deleted answer cell stays deleted).

A notebook that cannot be read raises ``Unreadable`` with a reason safe to show the student;
the caller grades it 0 on every exercise with that reason.
"""
from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

MAX_BYTES = 256 * 1024 * 1024     # a notebook this big is not something a student wrote
SKIP_PARTS = {".ipynb_checkpoints", "__MACOSX"}


class Unreadable(Exception):
    """The submitted notebook cannot be graded; ``str(exc)`` is the reason for the student."""


@dataclass
class Prepared:
    """One expected notebook of a submission, ready to grade (``path``) or not (``reason``)."""
    name: str                       # notebook name in the assignment (file stem)
    path: Path | None = None        # the cleaned, restored notebook to grade
    submitted: Path | None = None   # the student's file it came from
    reason: str = ""                # why it cannot be graded (student-safe)
    notes: list[str] = field(default_factory=list)


# --- notebooks as plain JSON --------------------------------------------------------------
# Not nbformat: importing it costs 2-4 CPU-s (jsonschema's format checkers), on the grading path
# of every `mnistkit grade` and every grade-class worker. A v4 notebook is plain JSON and these
# few helpers make what nbformat.v4's would; nbformat is imported only to convert an old
# (v3 or earlier) notebook, which is rare.

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


# --- reading -----------------------------------------------------------------------------

def _decode(raw: bytes) -> tuple[str, list[str]]:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16"), ["the file was saved as UTF-16; read it as such"]
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError:
        return raw.decode("latin-1"), ["the file is not valid UTF-8; read it as Latin-1 "
                                       "(check non-English characters in your answers)"]


def _source(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    raise TypeError("cell source is neither text nor a list of lines")


def clean(nb) -> Node:
    """A fresh nbformat 4.5 notebook with the same cells' types and sources, no outputs, and
    only the ``nbgrader`` cell metadata (what grading needs). Cells that are not cells are
    dropped. Ids are kept when valid and unique, otherwise new ones are made."""
    out = new_notebook()
    out.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                   "language": "python"},
                    "language_info": {"name": "python"}}
    seen = set()
    for cell in nb.get("cells", []) if isinstance(nb.get("cells"), list) else []:
        if not isinstance(cell, dict):
            continue
        try:
            source = _source(cell.get("source", ""))
        except TypeError:
            continue
        if cell.get("cell_type") not in ("code", "markdown", "raw"):
            continue
        new = new_cell(cell["cell_type"], source)
        cell_id = cell.get("id")
        if (isinstance(cell_id, str) and 1 <= len(cell_id) <= 64 and cell_id not in seen
                and all(ch.isalnum() or ch in "-_" for ch in cell_id)):
            new.id = cell_id
        seen.add(new.id)
        meta = cell.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("nbgrader"), dict):
            new.metadata["nbgrader"] = copy.deepcopy(meta["nbgrader"])
        out.cells.append(new)
    return out


def read_notebook(path: Path) -> tuple[Node, list[str]]:
    """Read any submitted notebook file into a clean v4.5 notebook; raises ``Unreadable``."""
    name = path.name
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise Unreadable(f"{name} is {size / 2**20:.0f} MB, too big to grade; clear all "
                             "outputs (Kernel > Restart Kernel and Clear All Outputs) and resubmit")
        raw = path.read_bytes()
    except OSError as exc:
        raise Unreadable(f"{name} could not be opened ({exc.strerror or type(exc).__name__})") \
            from None
    if not raw.strip():
        raise Unreadable(f"{name} is empty")
    text, notes = _decode(raw)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Unreadable(f"{name} is not a valid notebook file (not JSON: {exc.msg} at line "
                         f"{exc.lineno}, column {exc.colno}); was it cut off or edited outside "
                         "Jupyter? Open it in Jupyter, save, and resubmit") from None
    if not isinstance(data, dict) or "cells" not in data and "worksheets" not in data:
        raise Unreadable(f"{name} is JSON but not a Jupyter notebook")
    major = data.get("nbformat")
    if not isinstance(major, int):
        raise Unreadable(f"{name} does not say which notebook format it uses")
    if major > 4:
        raise Unreadable(f"{name} uses notebook format {major}, newer than the grader reads (4)")
    if major < 4:
        try:
            import nbformat   # only here: see "notebooks as plain JSON" above
            nb = nbformat.convert(nbformat.from_dict(data), 4)
        except Exception:
            raise Unreadable(f"{name} uses the old notebook format {major} and could not be "
                             "converted; open it in a current Jupyter, save, and resubmit") from None
        notes.append(f"converted {name} from notebook format {major} to 4")
        data = nb
    return clean(data), notes


# --- restoring locked cells --------------------------------------------------------------

def grade_id(cell) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader")
    gid = meta.get("grade_id") if isinstance(meta, dict) else None
    return gid if isinstance(gid, str) and gid else None


def is_locked(cell) -> bool:
    """Cells the student may not change: locked code, self-checks (graded, not solution),
    task text. Answer cells (solution) are the student's."""
    meta = cell.metadata.get("nbgrader", {})
    if meta.get("solution"):
        return False
    return bool(meta.get("locked") or meta.get("grade") or meta.get("task"))


def restore_cells(nb, release, replace: bool = True) -> tuple[Node, list[str]]:
    """Make ``nb`` (a clean submission) safe to grade against ``release`` (the student
    notebook as released): see the module docstring. Returns the notebook and notes.
    ``replace=False`` only puts back missing locked cells (for nbgrader, whose OverwriteCells
    has already restored the present ones, mark schemes included, for graders)."""
    notes = []
    ref = {}
    order = []
    for cell in release.cells:
        gid = grade_id(cell)
        if gid and gid not in ref:
            ref[gid] = cell
            order.append(gid)
    out, used = [], set()
    for cell in nb.cells:
        gid = grade_id(cell)
        if gid is None:
            cell.metadata.pop("nbgrader", None)
            out.append(cell)
            continue
        if gid not in ref or gid in used:
            cell.metadata.pop("nbgrader", None)   # a copied or invented graded cell: just code
            notes.append(f"a second or unknown cell marked {gid!r} was kept as your own cell")
            out.append(cell)
            continue
        used.add(gid)
        original = ref[gid]
        if is_locked(original) and replace:
            if cell.cell_type != original.cell_type or cell.source != original.source:
                notes.append(f"cell {gid!r} is read-only; the original was restored")
            out.append(copy.deepcopy(original))
        elif not is_locked(original):
            if cell.cell_type != original.cell_type:
                notes.append(f"cell {gid!r} was changed to {cell.cell_type}; graded as "
                             f"{original.cell_type}")
                new = new_cell("code" if original.cell_type == "code" else "markdown",
                               cell.source)
                new.id = cell.id
                cell = new
            cell.metadata["nbgrader"] = copy.deepcopy(original.metadata["nbgrader"])
            out.append(cell)
        else:
            out.append(cell)
    for position, gid in enumerate(order):
        if gid in used or not is_locked(ref[gid]):
            continue   # a deleted answer cell stays deleted (never restore solution code)
        # put it back after the nearest earlier graded cell that is present
        at = 0
        for earlier in reversed(order[:position]):
            if earlier in used:
                at = next(i for i, c in enumerate(out) if grade_id(c) == earlier) + 1
                break
        out.insert(at, copy.deepcopy(ref[gid]))
        used.add(gid)
        notes.append(f"cell {gid!r} was missing; the original was put back")
    seen = set()
    for cell in out:
        for key in ("outputs",):
            if key in cell:
                cell[key] = []
        if cell.cell_type == "code":
            cell.execution_count = None
        if cell.id in seen:
            cell.id = random_cell_id()
        seen.add(cell.id)
    nb.cells = out
    return nb, notes


def read_release(path: Path, full: bool = False) -> Node:
    """The release notebook the locked cells come from: trusted, the kit's own. ``full`` keeps
    all cell metadata (for nbgrader's autograded copy), otherwise only what grading needs."""
    nb = read_plain(path)
    return nb if full else clean(nb)


def prepare_notebook(nb, release_path: Path | None, out_path: Path) -> list[str]:
    """Restore ``nb`` (clean) against the release notebook, write it to ``out_path``."""
    notes = []
    if release_path is not None and release_path.is_file():
        nb, notes = restore_cells(nb, read_release(release_path))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    write_notebook(nb, out_path)
    return notes


# --- finding the notebooks of a submission -----------------------------------------------

def _candidates(submission_dir: Path) -> list[Path]:
    found = [p for p in submission_dir.rglob("*.ipynb")
             if p.is_file() and not SKIP_PARTS & set(p.relative_to(submission_dir).parts)
             and not any(part.startswith(".") for part in p.relative_to(submission_dir).parts)]
    return sorted(found, key=lambda p: (len(p.relative_to(submission_dir).parts), str(p)))


def locate(submission_dir: Path, expected: list[str]) -> tuple[dict[str, Path | None], list[str]]:
    """Which submitted file is each expected notebook (None when missing), and notes.

    Exact names win (top level first, then subfolders); a notebook whose name starts with the
    expected name (``a1 (1).ipynb``, ``a1-Copy1.ipynb``) stands in for a missing one; anything
    else is ignored and noted."""
    candidates = _candidates(submission_dir)
    found: dict[str, Path | None] = {}
    unused = list(candidates)
    for name in expected:
        match = next((p for p in unused if p.stem == name), None)
        if match is not None:
            unused.remove(match)
        found[name] = match
    notes = []
    for name in expected:
        if found[name] is not None:
            continue
        similar = [p for p in unused if p.stem.lower().startswith(name.lower())]
        if not similar and len(unused) == 1 and sum(v is None for v in found.values()) == 1:
            similar = unused
        if similar:
            found[name] = similar[0]
            unused.remove(similar[0])
            notes.append(f"graded {similar[0].relative_to(submission_dir)} as {name}.ipynb")
    for p in unused:
        notes.append(f"ignored {p.relative_to(submission_dir)} (not a notebook of this assignment)")
    return found, notes


def prepare(submission_dir: Path, expected: list[str], release_dirs: list[Path],
            scratch: Path) -> tuple[list[Prepared], list[str]]:
    """Every expected notebook of the submission, cleaned and restored into ``scratch``.
    Locked cells come from the first of ``release_dirs`` that has the notebook (the release;
    the source notebook's locked cells are the same)."""
    found, notes = locate(submission_dir, expected)
    prepared = []
    for name in expected:
        item = Prepared(name=name, submitted=found[name])
        if found[name] is None:
            item.reason = f"{name}.ipynb was not found in the submission"
        else:
            try:
                nb, item.notes = read_notebook(found[name])
                release = next((d / f"{name}.ipynb" for d in release_dirs
                                if (d / f"{name}.ipynb").is_file()), None)
                item.notes += prepare_notebook(nb, release, scratch / f"{name}.ipynb")
                item.path = scratch / f"{name}.ipynb"
            except Unreadable as exc:
                item.reason = str(exc)
        prepared.append(item)
    return prepared, notes
