"""The CLI's expected failures, in a module below every verb: the top-level CLI (`mnistkit.cli`)
turns them into one line and an exit code, and the verbs' own modules (the grading engine's
`grading/cli.py`) raise them without importing the CLI that imports them."""
from __future__ import annotations

EXIT_USAGE, EXIT_FAILED = 2, 1


class KitError(Exception):
    """An expected failure: printed as one line, exit code 1."""


class UsageError(KitError):
    """A bad argument a verb found itself (argparse cannot check that a folder exists): one
    line, exit code 2, like argparse's own errors."""
