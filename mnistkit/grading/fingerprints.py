"""What decides a score, as one fingerprint: ``grade-class`` keeps a student graded while the
fingerprint of their submission and of everything they are graded with is unchanged, and grades
them again as soon as anything in it changes (the ``--scheduler`` cluster compares the same
inputs between the batch and its workers).

Apart from the batch (``batch.py``) because it is a question of its own: which files and
settings can change a score (``grading_inputs``, ``grading_settings``), and how a submission is
read for its hash without following a link (``submission_fingerprint``).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import mnistkit
from mnistkit.grading import submitted_files
from mnistkit.grading.course_files import Course, GradingUnavailable
from mnistkit.paths import SOLUTIONS

# Modules of the grading package that decide where results go, not what they are: an edit to
# them does not make every class regrade. Anything else in mnistkit/grading/ counts.
_NOT_SCORING = {"batch.py", "batch_records.py", "batch_workers.py", "fingerprints.py", "cli.py",
                "gradebook.py", "dask_cluster.py", "dask_shipped.py"}
# The rest of the kit that grading reads: hidden tests import mnistkit.data, the plugin reads
# points through mnistkit.catalog.
_KIT = Path(mnistkit.__file__).resolve().parent
_ENGINE_MODULES = ("catalog.py", "data.py", "paths.py")
# Settings (mnistkit.settings.Settings) that change a score besides the sandbox's limits.
_SCORING = ("grading_seed", "grade_timeout", "unsafe_in_process", "grader_memory_bytes")


def _files(root: Path) -> list[Path]:
    """Files under ``root`` that grading can read: hidden ones (.ipynb_checkpoints) and
    compiled bytecode left by someone running the tests by hand are not."""
    if not root.is_dir():
        return []
    found = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if (not path.is_file() or path.is_symlink() or path.suffix == ".pyc"
                or any(part.startswith(".") or part == "__pycache__" for part in rel.parts)):
            continue
        found.append(path)
    return sorted(found)


def _hash_files(digest, root: Path, files: list[Path] | None = None) -> None:
    for path in _files(root) if files is None else files:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")


def reference_folders(course: Course) -> list[Path]:
    """Where the hidden tests' ``from solutions import ...`` can come from: the kit's
    solutions/ (on the grader's path for every course), and a course's own solutions/ next to
    its autograder/ when it has one. All their modules count, so a change to a module the tests
    import indirectly (``solutions/all_digits.py``) regrades too."""
    folders = [SOLUTIONS]
    own = course.autograder.parent / "solutions"
    if own.resolve() != SOLUTIONS.resolve():
        folders.append(own)
    return folders


def grading_inputs(assignment: str, course: Course) -> dict[str, tuple[Path, list[Path]]]:
    """The files every student of this assignment is graded with: what they are -> (their
    folder, the files in it that count). The hidden tests and the modules they import, the
    source notebooks (points, titles; locked cells a release lacks), the release notebooks
    (locked cells are restored from them), the grading engine's code."""
    inputs = {"hidden tests": (course.autograder, _files(course.autograder))}
    for number, folder in enumerate(reference_folders(course)):
        inputs[f"references {number}"] = (folder, [p for p in _files(folder) if p.suffix == ".py"])
    inputs["source notebooks"] = (course.source, _files(course.source / assignment))
    inputs["release notebooks"] = (course.release, _files(course.release / assignment))
    engine = [p for p in sorted((_KIT / "grading").glob("*.py")) if p.name not in _NOT_SCORING]
    inputs["grading engine"] = (_KIT, engine + [_KIT / name for name in _ENGINE_MODULES])
    return inputs


def grading_settings() -> dict[str, str]:
    """The course settings that change a score (``mnistkit.settings``: defaults, course.json and
    the environment), each under the variable that sets it: every sandbox limit (so a changed
    default counts too), the grader's memory, the seed, the grading timeout, in-process
    grading; and the kit's version."""
    import dataclasses

    from mnistkit.settings import SettingsError, limit_variable, settings
    try:
        current = settings()
    except SettingsError as exc:
        raise GradingUnavailable(str(exc)) from None
    values = {}
    for f in dataclasses.fields(current.limits):
        # Threads change how fast a grading runs, not its score (grade-class gives each of N
        # workers its share of the cores): not in the fingerprint, or --jobs 2 would regrade a
        # class graded with --jobs 1.
        if f.name != "threads":
            values[limit_variable(f) or f"limits.{f.name}"] = str(getattr(current.limits, f.name))
    for f in dataclasses.fields(current):
        if f.name in _SCORING:
            values[f.metadata["variable"]] = str(getattr(current, f.name))
    values["mnistkit"] = mnistkit.__version__
    return dict(sorted(values.items()))


def grading_fingerprint(assignment: str, course: Course) -> str:
    """One hash of everything every student of this run is graded with (``grading_inputs``
    and ``grading_settings``); a student's fingerprint adds their submission's files."""
    digest = hashlib.sha256(assignment.encode() + b"\0")
    for what, (folder, files) in grading_inputs(assignment, course).items():
        digest.update(what.encode() + b"\0")   # paths relative: a moved course keeps its grades
        _hash_files(digest, folder, files)
    digest.update(json.dumps(grading_settings()).encode())
    return digest.hexdigest()


def submission_fingerprint(folder: Path, grading: str) -> str:
    """The grading's fingerprint and the submission's files. Read like grading reads them
    (``submitted_files``): a link, a hard link or a special file counts by its name and kind,
    never by what it points to; a linked submission folder by where it points."""
    digest = hashlib.sha256(grading.encode())
    if submitted_files.root_refusal(folder):
        try:
            digest.update(b"refused\0" + os.fsencode(os.readlink(folder)))
        except OSError:
            digest.update(b"refused\0")
        return digest.hexdigest()
    entries, _ = submitted_files.walk(folder, skip=lambda name: name.startswith("."))
    for entry in entries:
        if any(part.startswith(".") for part in entry.rel.parts) or entry.kind == "folder":
            continue   # hidden folders are never read
        digest.update(os.fsencode(str(entry.rel)) + b"\0" + entry.kind.encode() + b"\0")
        if entry.kind != "file":
            continue
        try:
            with submitted_files.open_regular(folder, entry.rel) as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        except (OSError, submitted_files.Refused) as exc:   # changed since it was listed
            digest.update(type(exc).__name__.encode())
        digest.update(b"\0")
    return digest.hexdigest()
