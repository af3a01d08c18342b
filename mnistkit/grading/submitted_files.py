"""A submission's files are files, never links: how the kit lists and opens what a student hands in.

Every name in a submission folder is the student's: it may be a symbolic link (to the
instructor's ``source/`` notebook, to a classmate's submission, to ``/dev/zero``), a hard link to
a file elsewhere, or a special file (a fifo blocks whoever opens it; a device). Links survive zip
archives, git and most collection scripts. Followed, a link hands the student someone else's
score, or puts the instructor's solutions in the student's feedback. So the kit reads a
submission only through this module:

- ``walk`` lists a folder without following any link: a linked folder is listed as a link and
  never entered; depth and entries are bounded (a submission is a few files, not a file system).
- ``open_regular`` opens one file from the submission's root: every folder on the way with
  ``O_NOFOLLOW | O_DIRECTORY`` relative to the one before, the file with ``O_NOFOLLOW |
  O_NONBLOCK`` (a fifo does not block), after an ``lstat`` that refuses a special file before
  it is opened (opening a device can do something). The verdict is taken on ``fstat`` of the
  opened descriptor, so nothing can be swapped in between a check and the read.

Hard links: a hard link is a regular file like any other, and the only trace of it is the link
count. A file with ``st_nlink > 1`` has another name somewhere, perhaps outside the submission
(the instructor's source notebook, a classmate's), and the kit cannot tell where. So such a file
is refused too. Every honest way a submission arrives makes files with one link (saving,
uploading, unzipping, a git checkout, nbgrader's collect); the one thing this rule forbids an
instructor is deduplicating submission folders with hard links (``hardlink``, ``rdfind
-makehardlinks``, ``cp -al`` snapshots). Both names of a hard link are refused, the kit cannot
tell which came first: a classmate's notebook hard-linked into another submission costs the
classmate too, and both reasons point the instructor at it. Making one needs write access to
both folders, which no student has in nbgrader's ``submitted/``; git and zip archives carry no
hard links to files outside them.

A refused file raises ``Refused``, whose text is safe to show the student and says what to do.
"""
from __future__ import annotations

import contextlib
import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePath

MAX_DEPTH = 12          # folders inside folders: deeper is not a notebook a student saved
MAX_ENTRIES = 20_000    # names looked at in one submission, links and folders included

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class Refused(Exception):
    """A submitted name the kit does not read; ``str(exc)`` is the reason, safe for students."""


def shown(path: PurePath | str) -> str:
    """A submitted name as text that can be printed and written anywhere: a name that is not
    UTF-8 (Python keeps its bytes as surrogates) shows U+FFFD where the odd bytes were."""
    return os.fsencode(str(path)).decode("utf-8", errors="replace")


def kind(mode: int, nlink: int = 1) -> str:
    """'file' (regular, one link), 'folder', or what else it is, in words."""
    if stat.S_ISREG(mode):
        return "file" if nlink <= 1 else "hard link"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def refusal(name: str, what: str, *, submit: str = "the notebook itself") -> str:
    """Why a name of kind ``what`` is not read, in the student's words ("" for a plain file)."""
    if what == "file":
        return ""
    if what == "link":
        return f"{name} is a link, not a file; submit {submit}"
    if what == "hard link":
        return (f"{name} is a hard link (the same file also has another name, perhaps outside "
                f"your submission), not a file of its own; submit a copy of {submit}")
    if what == "folder":
        return f"{name} is a folder, not a file; submit {submit}"
    return f"{name} is not a regular file (a {what}); submit {submit}"


@dataclass(frozen=True)
class Entry:
    """One name in a submission: its path relative to the root, and what it is (``kind``)."""
    rel: PurePath
    kind: str
    size: int = 0


def walk(root: Path, *, skip=lambda name: False, max_depth: int = MAX_DEPTH,
         max_entries: int = MAX_ENTRIES) -> tuple[list[Entry], list[str]]:
    """Every name under ``root`` (folders entered when they are real folders, never through a
    link), and notes on what was not looked at. ``skip(name)``: a folder not to enter. ``root``
    itself is opened as the caller names it (a link the caller chose is followed; see
    ``root_refusal``). Never raises: a folder that cannot be read is a note."""
    entries: list[Entry] = []
    notes: list[str] = []
    try:
        top = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        return [], [f"the submission folder could not be read ({exc.strerror or exc})"]
    stack = [(top, PurePath(), 0)]
    try:
        while stack:
            fd, rel, depth = stack.pop()
            try:
                full = _list_folder(fd, rel, depth, entries, notes, stack, skip, max_depth,
                                    max_entries)
            finally:
                os.close(fd)
            if full:
                notes.append(f"stopped looking after {max_entries} files and folders")
                break
    finally:
        for fd, _, _ in stack:
            os.close(fd)
    entries.sort(key=lambda e: (len(e.rel.parts), str(e.rel)))
    return entries, notes


def root_refusal(root: Path, *, what: str = "folder") -> str:
    """Why a submission folder is not read ("" when it is a real folder): a link or anything else
    in place of the folder (for a folder that is the student's, e.g. ``<student>/<assignment>``
    in a class collected from students' git repositories)."""
    try:
        st = os.lstat(root)
    except OSError as exc:
        return f"{shown(root.name)} could not be read ({exc.strerror or exc})"
    found = kind(st.st_mode, st.st_nlink)
    if found == "folder":
        return ""
    if found == "link":
        return f"{shown(root.name)} is a link, not a {what}; submit the {what} itself"
    return f"{shown(root.name)} is not a {what}"


def _list_folder(fd, rel, depth, entries, notes, stack, skip, max_depth, max_entries) -> bool:
    """The names of one open folder into ``entries`` (real folders onto ``stack``); True when
    ``max_entries`` was reached first."""
    try:
        with os.scandir(fd) as listing:   # at most what is left to look at, then sorted
            names = sorted(entry.name for _, entry in zip(range(max_entries - len(entries) + 1),
                                                          listing))
    except OSError as exc:
        notes.append(f"could not read the folder {shown(rel)} ({exc.strerror or exc})")
        return False
    for name in names:
        if len(entries) >= max_entries:
            return True
        path = rel / name
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError:
            continue   # gone since it was listed
        what = kind(st.st_mode, st.st_nlink)
        entries.append(Entry(path, what, st.st_size))
        if what != "folder" or skip(name):
            continue
        if depth + 1 >= max_depth:
            notes.append(f"did not look inside {shown(path)} (folders nested too deep)")
            continue
        try:
            stack.append((os.open(name, _DIR_FLAGS, dir_fd=fd), path, depth + 1))
        except OSError as exc:
            notes.append(f"could not read the folder {shown(path)} ({exc.strerror or exc})")
    return False


@contextlib.contextmanager
def open_regular(root: Path, rel: PurePath, *, name: str | None = None,
                 submit: str = "the notebook itself"):
    """The file ``root/rel`` opened for reading (binary), when it is a regular file with one
    link reached through real folders; raises ``Refused`` otherwise (see the module docstring),
    ``OSError`` when it cannot be opened. ``name``: how the reason calls it (default: ``rel``)."""
    name = name or shown(rel)
    parts = PurePath(rel).parts
    if not parts or any(part in ("", ".", "..") for part in parts):
        raise Refused(f"{name} is not a file of the submission")
    fds = [os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]
    try:
        for part in parts[:-1]:
            try:
                fds.append(os.open(part, _DIR_FLAGS, dir_fd=fds[-1]))
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise Refused(f"{name} is inside a link, not a folder; submit the "
                                  "notebook itself, in a folder of your submission") from None
                raise
        leaf = parts[-1]
        before = os.stat(leaf, dir_fd=fds[-1], follow_symlinks=False)
        reason = refusal(name, kind(before.st_mode, before.st_nlink), submit=submit)
        if reason:
            raise Refused(reason)
        try:
            fd = os.open(leaf, _FILE_FLAGS, dir_fd=fds[-1])
        except OSError as exc:
            if exc.errno == errno.ELOOP:   # swapped for a link since the lstat
                raise Refused(refusal(name, "link", submit=submit)) from None
            raise
        st = os.fstat(fd)
        reason = refusal(name, kind(st.st_mode, st.st_nlink), submit=submit)
        if reason:
            os.close(fd)
            raise Refused(reason)
        with os.fdopen(fd, "rb") as fh:
            yield fh
    finally:
        for fd in fds:
            os.close(fd)


def read_regular(root: Path, rel: PurePath, max_bytes: int, *, name: str | None = None,
                 submit: str = "the notebook itself") -> tuple[bytes, int]:
    """(at most ``max_bytes`` bytes, the file's size) of a regular submitted file
    (``open_regular``); the caller compares the size with its own limit."""
    with open_regular(root, rel, name=name, submit=submit) as fh:
        size = os.fstat(fh.fileno()).st_size
        return (b"" if size > max_bytes else fh.read(max_bytes + 1)), size
