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
the caller grades it 0 on every exercise with that reason. That includes a notebook that is not
a file of the submission (a link, a hard link, a fifo: ``submitted_files``), which is graded as
missing, and nothing it points to is read. Finding and preparing never raise for what a
submission holds, however odd (tests/test_submit_links.py checks it over generated layouts).
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from mnistkit.grading import submitted_files
from mnistkit.grading.plain_notebook import (Node, new_cell, new_notebook, random_cell_id,
                                             read_plain, write_notebook)
from mnistkit.grading.submitted_files import Refused, shown

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


# --- reading -----------------------------------------------------------------------------

def _decode(raw: bytes) -> tuple[str, list[str]]:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16", errors="replace"), \
            ["the file was saved as UTF-16; read it as such"]
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


# What grading reads of a cell's nbgrader metadata, and the type each value must have; the rest
# (checksums, nbgrader's copy of the cell type, anything a student added) is dropped.
NBGRADER_KEYS = {"grade_id": (str,), "grade": (bool,), "solution": (bool,), "locked": (bool,),
                 "task": (bool,), "points": (int, float), "schema_version": (int,)}


def _nbgrader_meta(meta) -> dict | None:
    if not isinstance(meta, dict) or not isinstance(meta.get("nbgrader"), dict):
        return None
    return {key: value for key, value in meta["nbgrader"].items()
            if key in NBGRADER_KEYS and isinstance(value, NBGRADER_KEYS[key])
            and not (isinstance(value, bool) and bool not in NBGRADER_KEYS[key])}


def clean(nb, keep_ids: bool = False) -> Node:
    """A fresh nbformat 4.5 notebook rebuilt from what grading needs: each cell's type and
    source, and of its metadata only the ``nbgrader`` keys grading reads (``NBGRADER_KEYS``);
    no outputs, no attachments, no other metadata, the kit's own notebook metadata. Cells that
    are not cells are dropped.

    Every cell gets a new id, ``cell-<n>`` by position: this notebook is what the sandbox gets
    (a copy in its home folder), and a submitted id is up to 64 characters the student chose
    (issue 18: trained weights hidden in the ids of 290 empty cells). Nothing maps results back
    by id: reports name cells by code-cell index and grade id, and nbgrader's autograded copy
    (which keeps the student's ids) is not this one. ``keep_ids``: for the kit's own trusted
    notebooks (``read_release``), whose cells restore_cells copies in beside the student's."""
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
        new.id = f"cell-{len(out.cells) + 1}"
        cell_id = cell.get("id")
        if (keep_ids and isinstance(cell_id, str) and 1 <= len(cell_id) <= 64
                and cell_id not in seen and all(ch.isalnum() or ch in "-_" for ch in cell_id)):
            new.id = cell_id
        seen.add(new.id)
        meta = _nbgrader_meta(cell.get("metadata"))
        if meta is not None:
            new.metadata["nbgrader"] = meta
        out.cells.append(new)
    return out


def read_notebook(path: Path, root: Path | None = None) -> tuple[Node, list[str]]:
    """Read a submitted notebook file into a clean v4.5 notebook; raises ``Unreadable``.

    ``root``: the submission folder, ``path`` relative to it (or under it); every folder on the
    way is opened without following links (``submitted_files.open_regular``). Without ``root``
    the file is opened in its own folder, still never through a link or as anything but a
    regular file with one link."""
    path = Path(path)
    if root is None:
        root, rel = path.parent, PurePath(path.name)
    else:
        rel = PurePath(path).relative_to(root)   # lexically: locate builds it as root / rel
    name = shown(rel.name)
    try:
        raw, size = submitted_files.read_regular(Path(root), rel, MAX_BYTES, name=name)
    except Refused as exc:
        raise Unreadable(str(exc)) from None
    except OSError as exc:
        raise Unreadable(f"{name} could not be opened ({exc.strerror or type(exc).__name__})") \
            from None
    if size > MAX_BYTES or len(raw) > MAX_BYTES:
        raise Unreadable(f"{name} is {max(size, len(raw)) / 2**20:.0f} MB, too big to grade; "
                         "clear all outputs (Kernel > Restart Kernel and Clear All Outputs) and "
                         "resubmit")
    return parse_notebook(raw, name)


def parse_notebook(raw: bytes, name: str) -> tuple[Node, list[str]]:
    """The bytes of a submitted notebook as a clean v4.5 notebook; raises ``Unreadable``."""
    if not raw.strip():
        raise Unreadable(f"{name} is empty")
    text, notes = _decode(raw)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Unreadable(f"{name} is not a valid notebook file (not JSON: {exc.msg} at line "
                         f"{exc.lineno}, column {exc.colno}); was it cut off or edited outside "
                         "Jupyter? Open it in Jupyter, save, and resubmit") from None
    except (ValueError, RecursionError):   # a number of 5,000 digits; [[[[...]]]] a mile deep
        raise Unreadable(f"{name} is not a notebook Jupyter saved (values too long or nested too "
                         "deep); open it in Jupyter, save, and resubmit") from None
    if not isinstance(data, dict) or "cells" not in data and "worksheets" not in data:
        raise Unreadable(f"{name} is JSON but not a Jupyter notebook")
    major = data.get("nbformat")
    if not isinstance(major, int):
        raise Unreadable(f"{name} does not say which notebook format it uses")
    if major > 4:
        raise Unreadable(f"{name} uses notebook format {major}, newer than the grader reads (4)")
    if major < 4:
        try:
            import nbformat   # only here: see mnistkit/grading/plain_notebook.py
            nb = nbformat.convert(nbformat.from_dict(data), 4)
        except Exception:
            raise Unreadable(f"{name} uses the old notebook format {major} and could not be "
                             "converted; open it in a current Jupyter, save, and resubmit") from None
        notes.append(f"converted {name} from notebook format {major} to 4")
        data = nb
    try:
        return clean(data), notes
    except RecursionError:   # nbgrader metadata nested a mile deep
        raise Unreadable(f"{name} has cell metadata nested too deep; open it in Jupyter, save, "
                         "and resubmit") from None


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
    return nb if full else clean(nb, keep_ids=True)


def grading_copy(nb, release_path: Path | None) -> Node:
    """The notebook grading runs, and the sandbox gets, made from ``nb`` (nbgrader's autograded
    notebook): ``clean`` (kit-made ids, sources, nbgrader metadata only), every locked cell as
    released. nbgrader restores locked cells from its gradebook, whose sources were recorded
    before the release dropped mark schemes: the model answers of written tasks, which are the
    instructor's and must not reach the student's sandbox (nor count as the student's text in
    a4's data limit). The same as ``prepare_notebook`` makes for ``mnistkit grade``."""
    out = clean(nb)
    if release_path is not None and Path(release_path).is_file():
        out, _ = restore_cells(out, read_release(release_path))
    return out


def prepare_notebook(nb, release_path: Path | None, out_path: Path) -> list[str]:
    """Restore ``nb`` (clean) against the release notebook, write it to ``out_path``."""
    notes = []
    if release_path is not None and release_path.is_file():
        nb, notes = restore_cells(nb, read_release(release_path))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    write_notebook(nb, out_path)
    return notes


# --- finding the notebooks of a submission -----------------------------------------------

def _hidden(name: str) -> bool:
    return name in SKIP_PARTS or name.startswith(".")


def _candidates(submission_dir: Path) -> tuple[list[submitted_files.Entry], list[str]]:
    """Every name ending in .ipynb (any case) that is not a folder, links and special files
    included (so that one under an expected name is refused with its reason), outside hidden
    folders and checkpoints; top level first. Never through a link to a folder."""
    entries, notes = submitted_files.walk(submission_dir, skip=_hidden)
    found = [e for e in entries if e.rel.suffix.lower() == ".ipynb" and e.kind != "folder"
             and not any(_hidden(part) for part in e.rel.parts)]
    return found, notes


def _stand_in(name: str, unused: list, lone: bool):
    """The candidate that stands in for missing ``name``: one whose name starts with it, else
    the only one left when ``lone`` (only this notebook is missing); a plain file before
    anything else, which then is refused with its reason rather than called missing."""
    for pool in ([e for e in unused if e.kind == "file"], unused):
        similar = [e for e in pool if e.rel.stem.lower().startswith(name.lower())]
        if similar:
            return similar[0]
        if lone and len(pool) == 1:
            return pool[0]
    return None


def locate(submission_dir: Path, expected: list[str]) -> tuple[dict[str, Path | None], list[str]]:
    """Which submitted file is each expected notebook (None when missing), and notes.

    Exact names win (top level first, then subfolders; a plain file before a link or fifo of
    that name, which otherwise is that notebook and is refused when read). A name that starts
    with the expected one (``a1 (1).ipynb``, ``A1-Copy1.ipynb``), or the only notebook left when
    one is missing (``homework.ipynb``), stands in for a missing one (``_stand_in``). Anything
    else is ignored and noted. Nothing is read here, and nothing the folder holds makes it
    raise."""
    candidates, notes = _candidates(Path(submission_dir))
    found: dict[str, Path | None] = {}
    unused = list(candidates)
    for name in expected:
        exact = [e for e in unused if e.rel.stem == name]
        match = next((e for e in exact if e.kind == "file"), exact[0] if exact else None)
        if match is not None:
            unused.remove(match)
        found[name] = None if match is None else Path(submission_dir) / match.rel
    for name in expected:
        if found[name] is not None:
            continue
        lone = sum(v is None for v in found.values()) == 1
        chosen = _stand_in(name, unused, lone)
        if chosen is not None:
            found[name] = Path(submission_dir) / chosen.rel
            unused.remove(chosen)
            notes.append(f"graded {shown(chosen.rel)} as {name}.ipynb")
    for e in unused:
        why = {"file": "not a notebook of this assignment",
               "link": "a link, not a file; nothing it points to is read",
               "hard link": "a hard link, not a file of its own; not read"}.get(
                   e.kind, f"a {e.kind}, not a file; not read")
        notes.append(f"ignored {shown(e.rel)} ({why})")
    return found, notes


def prepare(submission_dir: Path, expected: list[str], release_dirs: list[Path],
            scratch: Path, *, follow_root: bool = True) -> tuple[list[Prepared], list[str]]:
    """Every expected notebook of the submission, cleaned and restored into ``scratch``.
    Locked cells come from the first of ``release_dirs`` that has the notebook (the release;
    the source notebook's locked cells are the same). ``follow_root=False``: the folder itself
    is the student's too (grade-class's ``<student>/<assignment>``), so a link there is refused
    like a linked notebook: every notebook missing, with the reason."""
    submission_dir = Path(submission_dir)
    refused = "" if follow_root else submitted_files.root_refusal(submission_dir)
    if refused:
        return [Prepared(name=name, reason=refused) for name in expected], []
    found, notes = locate(submission_dir, expected)
    prepared = []
    for name in expected:
        item = Prepared(name=name, submitted=found[name])
        if found[name] is None:
            item.reason = f"{name}.ipynb was not found in the submission"
        else:
            try:
                nb, item.notes = read_notebook(found[name], root=submission_dir)
                release = next((d / f"{name}.ipynb" for d in release_dirs
                                if (d / f"{name}.ipynb").is_file()), None)
                item.notes += prepare_notebook(nb, release, scratch / f"{name}.ipynb")
                item.path = scratch / f"{name}.ipynb"
            except Unreadable as exc:
                item.reason = str(exc)
        prepared.append(item)
    return prepared, notes
