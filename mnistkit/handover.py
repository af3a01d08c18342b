"""Run a command with the code of the checkout it is run in: ``mnistkit`` started inside a second
clone of the kit (with the first clone's venv) hands over to that clone's own code, so the
command always works on the checkout it is run in, never on the installed one's folders.

Apart from the CLI (``mnistkit.cli``), which only parses arguments and reports: this is the one
thing ``mnistkit`` does before parsing anything, and it replaces the process.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from mnistkit.settings import settings

# Set on the hand-over to another checkout's code: the checkout now running (never twice).
HANDOVER_ENV = "MNISTKIT_CHECKOUT"


def use_checkout_here(argv: list[str]) -> None:
    """When the current folder is inside a checkout of the kit other than the one this code
    comes from (a second clone, with the first clone's venv), run the command with that
    checkout's own code and folders: exec ``python -m mnistkit`` with it first on
    ``PYTHONPATH`` (ahead of the editable install's finder). Returns when this code is the
    checkout's own, or when there is no checkout around; for an nbgrader course folder without
    the kit's code it says which course the command uses instead."""
    from mnistkit import paths
    try:
        here = paths.course_around(Path.cwd())
    except OSError:          # the current folder was deleted: nothing to hand over to
        return
    if here is None or here.resolve() == paths.ROOT:
        return
    current = settings()
    if not paths.is_checkout(here):
        chosen = current.course_root
        if not chosen or chosen.resolve() != here.resolve():
            print(f"mnistkit: note: {here} has no mnistkit/ of its own; using the kit's course "
                  f"at {paths.ROOT} (MNISTKIT_COURSE_ROOT={here} grades this folder's "
                  "assignments)", file=sys.stderr)
        return
    if str(current.checkout) == str(here):   # handed over to it already: never loop
        print(f"mnistkit: note: running the kit at {paths.ROOT}, not the checkout at {here}",
              file=sys.stderr)
        return
    env = dict(os.environ)
    env[HANDOVER_ENV] = str(here)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(here), env.get("PYTHONPATH")) if p)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "mnistkit", *argv], env)
