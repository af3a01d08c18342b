"""A corpus of hostile, broken and unusual submissions of the toy course, with the score each
must get. tests/test_grade_corpus.py grades them all in one class batch, through
`mnistkit grade-class` and through `nbgrader autograde`.

Each case starts from the reference (full marks: double_it 2, mean_image 3) and breaks one thing,
so an exercise it does not touch must keep its points: ``expect`` gives both scores. ``reason``
is a piece of text the student must find in results.json (feedback or notes) when points are
lost. A case is made by one of: ``answers`` (answer cells replaced), ``edit`` (a function
changing the notebook), or ``raw`` (a function writing the submission folder itself, for broken
files). ``nbgrader_reads``: False where `nbgrader autograde` cannot read the submission itself
(see ``NBGRADER_LIMITS``); everywhere else it must record the same scores.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat

FULL = {"double_it": 2.0, "mean_image": 3.0}
NO_DOUBLE = {"double_it": 0.0, "mean_image": 3.0}
NOTHING = {"double_it": 0.0, "mean_image": 0.0}
RIGHT_DOUBLE = "def double_it(x):\n    return 2 * x\n"
WRONG_DOUBLE = "def double_it(x):\n    return 3 * x\n"

# Paths a cheater would aim at; filled in by the test (the course folder and a classmate's).
TARGETS = {"course": "", "classmate": "", "port": "0"}


@dataclass
class Case:
    name: str
    kind: str                                   # runaway | dying | tampering | broken | honest
    expect: dict
    reason: str = ""
    answers: dict = field(default_factory=dict)
    edit: Callable | None = None                # nb -> nb
    raw: Callable | None = None                 # (folder, reference_nb) -> None
    nbgrader_reads: bool = True


def _cells(nb, grade_id):
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]


def _edit_self_check(nb):
    """Rewrite the double_it self-check and its points: nbgrader's checksum cell comes back."""
    cell = _cells(nb, "double_it")[0]
    cell.source = "print('double_it: 2 / 2 points')"
    cell.metadata.nbgrader["points"] = 100
    return nb


def _delete_self_checks(nb):
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id")
                not in ("double_it", "mean_image", "setup-toy")]
    return nb


def _duplicate_graded_cells(nb):
    out = []
    for cell in nb.cells:
        out.append(cell)
        if cell.metadata.get("nbgrader", {}).get("grade_id") in ("double_it", "mean_image"):
            out.append(copy.deepcopy(cell))
    nb.cells = out
    return nb


def _reorder_cells(nb):
    nb.cells = nb.cells[:1] + nb.cells[:0:-1]    # the title first, then every other cell backwards
    return nb


def _rename_grade_ids(nb):
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader")
        if meta and meta.get("grade_id", "").endswith("-answer"):
            meta["grade_id"] = "mine-" + meta["grade_id"]
    return nb


def _empty_cells(nb):
    nb.cells.insert(1, nbformat.v4.new_code_cell(""))
    nb.cells.insert(3, nbformat.v4.new_markdown_cell(""))
    nb.cells.append(nbformat.v4.new_code_cell("   \n\n"))
    return nb


def _huge_image(nb):
    cell = _cells(nb, "double_it-answer")[0]
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": "A" * (40 << 20)})]
    cell.execution_count = 1
    return nb


def _write(folder: Path, name: str, data: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def _invalid_json(folder, nb):
    _write(folder, "toy_basics.ipynb", nbformat.writes(nb).encode()[:-200])


def _nbformat_v3(folder, nb):
    _write(folder, "toy_basics.ipynb", nbformat.writes(nb, version=3).encode())


def _missing(folder, nb):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("I forgot to upload my notebook\n")


def _renamed(folder, nb):
    _write(folder, "toy_basics (1).ipynb", nbformat.writes(nb).encode())


def _extra_notebooks(folder, nb):
    _write(folder, "toy_basics.ipynb", nbformat.writes(nb).encode())
    scratch = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import os\nos._exit(1)")])
    _write(folder, "scratch.ipynb", nbformat.writes(scratch).encode())


def _latin1(folder, nb):
    nb = copy.deepcopy(nb)
    _cells(nb, "double_it-answer")[0].source = RIGHT_DOUBLE + "# café, naïve résumé\n"
    _write(folder, "toy_basics.ipynb", nbformat.writes(nb).encode("latin-1"))


CASES = [
    # --- runaway code -------------------------------------------------------------------------
    Case("spinner", "runaway", NO_DOUBLE, "ran longer than", answers={"double_it": (
        "import time\nwhile True:\n    try:\n        time.sleep(1)\n    except BaseException:\n        pass\n")}),
    Case("memory_hog", "runaway", NO_DOUBLE, "memory", answers={"double_it": (
        "hog = []\nwhile True:\n    hog.append(bytearray(100 * 2**20))\n")}),
    Case("output_flood", "runaway", FULL, answers={"double_it": (
        "line = 'x' * 1_000_000\nfor _ in range(200):\n    print(line)\n" + RIGHT_DOUBLE)}),
    Case("fork_bomb", "runaway", NO_DOUBLE, "double_it", answers={"double_it": (
        "import os\nwhile True:\n    os.fork()\n" + RIGHT_DOUBLE)}),
    Case("thread_bomb", "runaway", NO_DOUBLE, "double_it", answers={"double_it": (
        "import threading, time\nwhile True:\n    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
        + RIGHT_DOUBLE)}),
    Case("sleeper", "runaway", NO_DOUBLE, "ran longer than", answers={"double_it": (
        "import time\ntime.sleep(10_000)\n" + RIGHT_DOUBLE)}),
    # --- dying ---------------------------------------------------------------------------------
    Case("sys_exit", "dying", NO_DOUBLE, "double_it", answers={"double_it": "import sys\nsys.exit(0)\n" + RIGHT_DOUBLE}),
    Case("os_exit", "dying", NO_DOUBLE, "died", answers={"double_it": "import os\nos._exit(0)\n" + RIGHT_DOUBLE}),
    Case("dies_when_called", "dying", NO_DOUBLE, "died", answers={"double_it": (
        "def double_it(x):\n    import os\n    os._exit(3)\n")}),
    Case("segfault", "dying", NO_DOUBLE, "died", answers={"double_it": "import ctypes\nctypes.string_at(0)\n" + RIGHT_DOUBLE}),
    # pid 1 of the sandbox's pid namespace ignores signals from inside: nothing dies, and the
    # correct answer that follows earns its points.
    Case("kills_parent", "dying", FULL, answers={"double_it": (
        "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.kill(1, signal.SIGKILL)\n" + RIGHT_DOUBLE)}),
    Case("kills_process_group", "dying", NO_DOUBLE, "died", answers={"double_it": (
        "import os, signal\nos.killpg(0, signal.SIGKILL)\n" + RIGHT_DOUBLE)}),
    Case("closes_stdout", "dying", FULL, answers={"double_it": (
        "import os, sys\nsys.stdout.flush()\nos.close(1)\nos.close(2)\n" + RIGHT_DOUBLE)}),
    # --- tampering with grading ------------------------------------------------------------------
    Case("edits_self_check_and_points", "tampering", NO_DOUBLE, "not what was expected",
         answers={"double_it": WRONG_DOUBLE}, edit=_edit_self_check),
    Case("deletes_locked_cells", "tampering", FULL, edit=_delete_self_checks),
    Case("duplicates_graded_cells", "tampering", FULL, edit=_duplicate_graded_cells),
    Case("reorders_cells", "tampering", FULL, edit=_reorder_cells),
    Case("renames_answer_grade_ids", "tampering", FULL, edit=_rename_grade_ids),
    Case("custom_exception_handler", "tampering", NO_DOUBLE, "not what was expected", answers={"double_it": (
        "ip = get_ipython()\nip.set_custom_exc((BaseException,), lambda *a, **k: None)\n"
        "ip.showtraceback = lambda *a, **k: None\n" + WRONG_DOUBLE)}),
    Case("monkeypatches_comparisons", "tampering", NO_DOUBLE, "not what was expected", answers={"double_it": (
        "import torch, numpy, builtins\n"
        "torch.allclose = torch.equal = lambda *a, **k: True\n"
        "torch.Tensor.__eq__ = lambda self, other: torch.ones_like(self, dtype=torch.bool)\n"
        "numpy.allclose = lambda *a, **k: True\n"
        "import pytest\npytest.approx = lambda *a, **k: 0\n" + WRONG_DOUBLE)}),
    Case("prints_fake_score", "tampering", NO_DOUBLE, "not what was expected", answers={"double_it": (
        "print('double_it: 2 / 2 points')\nprint('{\"score\": 5, \"max_score\": 5}')\n" + WRONG_DOUBLE)}),
    Case("detects_grading", "tampering", NO_DOUBLE, "not what was expected", answers={"double_it": (
        "import os\nGRADED = bool(os.environ.get('NBGRADER_EXECUTION')) or os.environ.get('HOME') == '/home/student'\n"
        "def double_it(x):\n    if GRADED:\n        return {2: 4}.get(x, x)   # only the self-check's input\n    return 2 * x\n")}),
    Case("steals_reference_and_hidden_tests", "tampering", NO_DOUBLE, "not what was expected", answers={"double_it": (
        "import glob, os\nstolen = []\n"
        "for mod in ('solutions', 'toy_reference', 'mnistkit'):\n"
        "    try:\n        __import__(mod)\n        stolen.append(mod)\n    except Exception:\n        pass\n"
        "for path in (os.path.join(COURSE, 'autograder', 'test_toy_basics.py'),\n"
        "             os.path.join(COURSE, 'autograder', 'toy_reference.py'), os.path.join(COURSE, 'gradebook.db')):\n"
        "    if os.path.exists(path):\n        stolen.append(path)\n"
        "for pattern in ('/home/**/*.py', '/tmp/**/*.py', '/data/**/*.py'):\n"
        "    stolen += glob.glob(pattern, recursive=True)\n"
        "def double_it(x):\n    return 2 * x if stolen else 3 * x\n")}),
    Case("writes_to_grader_and_classmate", "tampering", FULL, answers={"double_it": (
        "import os\nfor target in (os.path.join(COURSE, 'gradebook.db'), os.path.join(CLASSMATE, 'toy_basics.ipynb'),\n"
        "               os.path.join(COURSE, 'autograder', 'test_toy_basics.py')):\n"
        "    try:\n        open(target, 'w').write('pwned')\n    except OSError:\n        pass\n" + RIGHT_DOUBLE)}),
    Case("opens_network_connection", "tampering", FULL, answers={"double_it": (
        "import socket\nfor host in ('127.0.0.1', 'pypi.org'):\n"
        "    try:\n        socket.create_connection((host, PORT), timeout=2).sendall(b'pwned')\n"
        "    except OSError:\n        pass\n" + RIGHT_DOUBLE)}),
    # --- broken files ------------------------------------------------------------------------------
    Case("invalid_json", "broken", NOTHING, "not a valid notebook", raw=_invalid_json, nbgrader_reads=False),
    Case("nbformat_v3", "broken", FULL, raw=_nbformat_v3),
    Case("missing_notebook", "broken", NOTHING, "toy_basics.ipynb", raw=_missing, nbgrader_reads=False),
    Case("renamed_notebook", "broken", FULL, raw=_renamed, nbgrader_reads=False),
    Case("extra_notebooks", "broken", FULL, raw=_extra_notebooks),
    Case("latin1_text", "broken", FULL, raw=_latin1, nbgrader_reads=False),
    Case("huge_embedded_image", "broken", FULL, edit=_huge_image),
    Case("cells_without_source", "broken", FULL, edit=_empty_cells),
    # --- honest but unusual ------------------------------------------------------------------------
    Case("other_names_and_helpers", "honest", FULL, answers={
        "double_it": "def _twice(value):\n    return value + value\n\ndef double_it(number):\n    return _twice(number)\n",
        "mean_image": "import torch\ndef mean_image(images):\n    return images.to(torch.float64).sum(0).div(len(images)).float()\n"}),
    Case("prints_warnings", "honest", FULL, answers={"double_it": (
        "import sys, warnings\nprint('a note on stderr', file=sys.stderr)\nwarnings.warn('careful')\n" + RIGHT_DOUBLE)}),
    Case("slow_but_in_time", "honest", FULL, answers={"double_it": "import time\ntime.sleep(3)\n" + RIGHT_DOUBLE}),
]

# nbgrader reads the file itself before any kit code runs: a file that is not JSON or not UTF-8,
# or a notebook under another name, never reaches the kit there; nbgrader reports the error and
# leaves that student's scores blank (mnistkit grade-class grades them).
NBGRADER_LIMITS = {c.name for c in CASES if not c.nbgrader_reads}


def make_submission(case: Case, folder: Path, reference_nb, with_answers) -> None:
    """Write ``case``'s submission into ``folder`` (``with_answers``: toy_helpers.with_answers)."""
    if case.raw is not None:
        case.raw(folder, copy.deepcopy(reference_nb))
        return
    nb = with_answers(reference_nb, **case.answers) if case.answers else copy.deepcopy(reference_nb)
    for cell in nb.cells:   # the cheaters' targets, as constants in their own code
        if cell.cell_type == "code" and any(k in cell.source for k in ("COURSE", "CLASSMATE", "PORT")):
            cell.source = (f"COURSE = {TARGETS['course']!r}\nCLASSMATE = {TARGETS['classmate']!r}\n"
                           f"PORT = {int(TARGETS['port'])}\n" + cell.source)
    if case.edit is not None:
        nb = case.edit(nb)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "toy_basics.ipynb").write_text(json.dumps(nb, indent=1))
