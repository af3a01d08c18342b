"""New submissions in nbgrader's exchange: the inbound folder, read every few seconds.

Why polling and not inotify: the exchange is often a network file system (NFS on a hub), where
inotify sees nothing of other machines' writes; a listing every few seconds costs little.

``nbgrader submit`` copies the student's folder to
``<exchange>/<course_id>/inbound/<student>+<assignment>+<timestamp>[+random]/`` and writes
``timestamp.txt`` into it last: a folder is complete once that file is there (or, without it,
once it has not changed for ``settle_seconds``). Whatever a student can write there is read
defensively: names that do not parse, links and non-folders are skipped, and the time a
submission arrived is the file system's change time of the folder and its entries (which no user
can set back), never the timestamp in the name (the student's own clock).
"""
from __future__ import annotations

import os
import pwd
import re
import stat
from dataclasses import dataclass
from pathlib import Path

# nbgrader's own pattern (nbgrader/exchange/default/collect.py)
NAME = re.compile(r"^(?P<student>[^+]+)\+(?P<assignment>[^+]+)\+(?P<timestamp>[^+]+)"
                  r"(?P<random>\+.*)?$")
DONE_FILE = "timestamp.txt"


@dataclass(frozen=True)
class Found:
    key: str            # the folder's name: the submission's idempotent key
    student: str
    assignment: str
    folder: Path
    arrived: float      # epoch seconds (the folder's and its files' latest change)


def _owner(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def _arrived(folder: Path, own: os.stat_result) -> tuple[float, bool]:
    """(latest change time of the folder and its direct entries, whether it is complete)."""
    latest, complete = own.st_ctime, False
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                latest = max(latest, info.st_ctime, info.st_mtime)
                if entry.name == DONE_FILE and stat.S_ISREG(info.st_mode):
                    complete = True
    except OSError:
        return latest, False
    return latest, complete


def scan(inbound: Path, known: set[str], now: float, *, settle_seconds: float = 30.0,
         check_owner: bool = False) -> list[Found]:
    """The complete submissions in ``inbound`` whose key is not in ``known``, oldest first."""
    try:
        names = os.listdir(inbound)
    except OSError:
        return []
    found = []
    for name in names:
        if name in known:
            continue
        match = NAME.match(name)
        if match is None:
            continue
        folder = Path(inbound) / name
        try:
            own = os.lstat(folder)
        except OSError:
            continue
        if not stat.S_ISDIR(own.st_mode):
            continue    # a link or a file in place of a submission: never followed
        if check_owner and _owner(own.st_uid) != match["student"]:
            continue    # someone else's name on it
        arrived, complete = _arrived(folder, own)
        if not complete and now - arrived < settle_seconds:
            continue    # still being copied
        found.append(Found(name, match["student"], match["assignment"], folder,
                           min(arrived, now)))
    return sorted(found, key=lambda f: (f.arrived, f.key))
