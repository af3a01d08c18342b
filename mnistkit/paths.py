"""Where the kit's folders are. Every module asks here instead of building paths itself.

``ROOT`` is the checkout this code was loaded from: its ``mnistkit/`` and its course folders
(``source/``, ``release/``, ``autograder/``, ``solutions/``, ``data/``) go together, so a
checkout is always graded and built with its own code. The installed ``mnistkit`` command is an
editable install of one checkout; run inside another checkout (a second clone) it hands over to
that checkout's own code first (``mnistkit.cli.use_checkout_here``), so ``ROOT`` is the checkout
the command is run in. nbgrader run in a checkout gets the same: ``nbgrader_config.py`` puts its
folder first on ``sys.path``, ahead of the editable install's finder (which Python consults
after ``sys.path``).
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "source"            # instructor notebooks (with solutions), nbgrader's source/
RELEASE = ROOT / "release"          # generated student notebooks, committed
AUTOGRADER = ROOT / "autograder"    # hidden pytest suite, never released
SOLUTIONS = ROOT / "solutions"      # reference solutions the autograder compares with
DATA = ROOT / "data"                # the shipped MNIST file and its provenance
MNIST_NPZ = DATA / "mnist.npz"


def is_course(folder: Path) -> bool:
    """Is ``folder`` an nbgrader course laid out like the kit (config, source/, autograder/)?"""
    folder = Path(folder)
    return (folder / "nbgrader_config.py").is_file() and (folder / "source").is_dir() \
        and (folder / "autograder").is_dir()


def is_checkout(folder: Path) -> bool:
    """Is ``folder`` a checkout of the kit: a course with its own ``mnistkit/`` package?"""
    return is_course(folder) and (Path(folder) / "mnistkit" / "__init__.py").is_file()


def course_around(start: Path) -> Path | None:
    """The nearest folder from ``start`` upwards that is a course (``is_course``), or None."""
    start = Path(start).absolute()
    for folder in (start, *start.parents):
        if is_course(folder):
            return folder
    return None
