"""Before grading anyone: can this machine, in this account, grade fairly? (issue 10, class 8)

A grading account without the data (a TA's, a cron job's, a fresh HOME) used to grade anyway:
``untar_data`` failed inside the sandbox with a network error, the students lost the points and
grading exited 0. Now every way of grading (``mnistkit grade``, ``mnistkit grade-class``, nbgrader
autograde through ``GradeWithHiddenTests``) calls ``check`` through ``run.check_can_grade``
before it grades anyone, and refuses with one line (``NotReady``, a ``GradingUnavailable``: exit
code 1, nothing recorded) unless

- the data is there and verified: data/mnist.npz has its recorded SHA-256, and every dataset
  the assignment's notebooks load (``URLs.MNIST_SAMPLE``, ``URLs.MNIST`` in their code) is in
  fastai's data folder, the one the sandbox mounts, together with the stand-ins the sandbox shows
  in its place (``mnistkit.data.SANDBOX_VIEW``); each folder holds exactly the files its layout
  (``mnistkit.data.LAYOUTS``) names, folder by folder, and the first image of every folder is
  pixel for pixel the one in mnist.npz;
- the sandbox starts and its limits apply: a kit-made notebook runs in it and reports, for the
  grader to compare with the ``Limits`` grading will use, its uid, the disk quota (home, /tmp and
  /dev/shm one tmpfs of ``disk_bytes`` and ``disk_files``), RLIMIT_FSIZE and RLIMIT_DATA, that
  the network is unreachable and that the datasets are visible; the pids and memory cgroups
  are made where this machine allows them.

The verdict (either way) is cached per process, keyed by what was checked, the data folder and
the limits: a class batch or an nbgrader run pays once. Measured here (2 cores, busy): on a1
about 1.2 s, of which 0.03 s mnist.npz's checksum, 0.3 s listing and checking the folders and
0.9 s the sandbox (start, one cell, one probe); later calls in the process cost nothing. What
each folder must hold is computed from the layouts once per account (a few seconds, the
stand-ins' selection) and kept in ~/.cache/mnistkit. A refusal for missing data takes
milliseconds.

After each graded notebook, ``after_grading`` looks at the report: a sandbox that failed to start
is the machine's fault, never the student's, and a notebook with any failure gets its data
checked again (uncached, about 0.3 s); either way, if the environment is at fault the grading
raises ``NotReady`` instead of recording the notebook, so a class batch stops rather than
record zeros.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import re
import tempfile
from collections import Counter
from pathlib import Path

from mnistkit.grading.left_out import ran_as_designed
from mnistkit.grading.course_files import Course, GradingUnavailable, unsafe_in_process

URL_DATASETS = {"MNIST_SAMPLE": "mnist_sample", "MNIST": "mnist_png"}   # URLs.X -> folder
_URL = re.compile(r"\bURLs\.(MNIST_SAMPLE|MNIST)\b")
_USES_NPZ = re.compile(r"\b(shipped_mnist|load_mnist)\b")


class NotReady(GradingUnavailable):
    """This machine or account cannot grade fairly now; ``str`` is one line saying why."""


_verdicts: dict[tuple, str | None] = {}


def forget() -> None:
    """Drop every cached verdict (the next ``check`` looks again)."""
    _verdicts.clear()


# --- what an assignment needs ---------------------------------------------------------------

def needs(assignment: str, course: Course) -> tuple[frozenset[str], bool]:
    """(dataset folders its notebooks load, whether its hidden tests read data/mnist.npz)."""
    names = set()
    for path in sorted((course.source / assignment).glob("*.ipynb")):
        try:
            cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        except (OSError, ValueError):
            continue
        for cell in cells:
            if cell.get("cell_type") == "code":
                source = cell.get("source", "")
                source = "".join(source) if isinstance(source, list) else str(source)
                names.update(URL_DATASETS[m] for m in _URL.findall(source))
    try:
        npz = bool(_USES_NPZ.search(course.module(assignment).read_text(encoding="utf-8")))
    except OSError:
        npz = False
    return frozenset(names), npz or bool(names)


def folders_to_verify(names: frozenset[str], sandboxed: bool) -> dict[str, bool]:
    """Folder -> whether its content is checked (False: it must only exist, as a mount point
    whose content the sandbox replaces whole by a stand-in)."""
    from mnistkit import data
    view = getattr(data, "SANDBOX_VIEW", {data.FULL_NAME: (data.STANDIN_NAME, ("",))})
    wanted: dict[str, bool] = {}
    for name in sorted(names):
        if sandboxed and name in view:
            standin, parts = view[name]
            wanted[name] = wanted.get(name, False) or tuple(parts) != ("",)
            wanted[standin] = True
        else:
            wanted[name] = True
    return wanted


# --- data ---------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def _npz_verdict(path: str, size: int, mtime_ns: int) -> str | None:
    """None when data/mnist.npz has its recorded SHA-256 (once per version of the file)."""
    from mnistkit import data
    actual = data.sha256_of(Path(path))
    if actual != data.MNIST_SHA256:
        return (f"{path} has SHA-256 {actual}, not the recorded {data.MNIST_SHA256}: restore it "
                "with `git checkout data/mnist.npz`")
    return None


def _npz_key() -> tuple[int, int]:
    from mnistkit.paths import MNIST_NPZ
    try:
        st = MNIST_NPZ.stat()
    except OSError:
        raise NotReady(f"{MNIST_NPZ} is missing: the kit ships it in git "
                       "(`git checkout data/mnist.npz`)") from None
    verdict = _npz_verdict(str(MNIST_NPZ), st.st_size, st.st_mtime_ns)
    if verdict:
        raise NotReady(verdict)
    return st.st_size, st.st_mtime_ns


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mnistkit"


@functools.lru_cache(maxsize=16)
def _manifest(name: str, size: int, mtime_ns: int) -> dict:
    """What ``name``'s layout writes: ``counts`` (files per folder) and ``first`` (per folder, its
    first image: file name, SHA-256 of its pixels). Computing it means running the layout over
    MNIST (up to a second for a stand-in), so it is kept in ~/.cache/mnistkit, under a name made
    from mnist.npz's checksum and mnistkit/data.py's text: a change to either makes a new one."""
    from mnistkit import data
    from mnistkit.paths import MNIST_NPZ
    key = hashlib.sha256(f"{data.MNIST_SHA256}:{name}:".encode()
                         + Path(data.__file__).read_bytes()).hexdigest()[:24]
    cached = _cache_dir() / f"layout-{name}-{key}.json"
    try:
        return json.loads(cached.read_text())
    except (OSError, ValueError):
        pass
    mnist = data.load_mnist(MNIST_NPZ, verify=False)   # _npz_key has just verified it
    counts: Counter = Counter()
    first: dict[str, list] = {}
    for rel, image in data.LAYOUTS[name](mnist):
        folder, _, filename = rel.rpartition("/")
        counts[folder] += 1
        if folder not in first:
            first[folder] = [filename, hashlib.sha256(image.tobytes()).hexdigest()]
    counts[""] += len(data.EXTRA_FILES.get(name, {}))
    manifest = {"counts": {k: v for k, v in counts.items() if v}, "first": first}
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(f".{cached.name}.{os.getpid()}")
        partial.write_text(json.dumps(manifest))
        partial.replace(cached)
    except OSError:
        pass   # a read-only home: computed again next time
    return manifest


def _verify_folder(root: Path, name: str, key: tuple[int, int]) -> None:
    import numpy as np
    from PIL import Image
    manifest = _manifest(name, *key)
    for folder, expected in manifest["counts"].items():
        where = root / folder if folder else root
        try:
            present = sum(1 for entry in os.scandir(where) if entry.is_file())
        except OSError:
            raise NotReady(f"{where} is missing: {root} is incomplete; remove it and run "
                           "`mnistkit data` again") from None
        if present != expected:
            raise NotReady(f"{where} holds {present} files where mnistkit's layout has "
                           f"{expected}: remove {root} and run `mnistkit data` again")
    for folder, (filename, digest) in manifest["first"].items():
        try:
            with Image.open(root / folder / filename) as image:
                pixels = np.asarray(image).tobytes()
            same = hashlib.sha256(pixels).hexdigest() == digest
        except Exception:
            same = False
        if not same:
            raise NotReady(f"{root / folder / filename} is not the image mnist.npz has there: "
                           f"remove {root} and run `mnistkit data` again")


def check_data(names: frozenset[str], npz: bool, sandboxed: bool) -> Path | None:
    """The data folder grading will use, verified (see the module docstring); raises NotReady."""
    if not names and not npz:
        return None
    key = _npz_key()
    if not names:
        return None
    from mnistkit import data
    try:
        data_dir = data.fastai_data_dir()
    except Exception as exc:
        raise NotReady(f"fastai's config (FASTAI_HOME, ~/.fastai/config.ini) cannot be read: "
                       f"{type(exc).__name__}: {exc}") from None
    for name, verify in folders_to_verify(names, sandboxed).items():
        folder = data_dir / name
        if not folder.is_dir():
            raise NotReady(f"no MNIST for grading in this account: {folder} does not exist "
                           "(run `mnistkit data` as this user first, or point FASTAI_HOME at a "
                           "folder that has it)")
        if verify:
            _verify_folder(folder, name, key)
    return data_dir


# --- the sandbox ----------------------------------------------------------------------------

PROBE = """
import os, resource, socket
result = {'uid': os.getuid(), 'places': {}, 'datasets': {}}
for place in (os.path.expanduser('~'), '/tmp', '/dev/shm'):
    vfs = os.statvfs(place)
    result['places'][place] = [os.stat(place).st_dev, vfs.f_blocks * vfs.f_frsize, vfs.f_files]
result['fsize'] = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
result['data'] = resource.getrlimit(resource.RLIMIT_DATA)[0]
s = socket.socket()
s.settimeout(2)
try:
    s.connect(('1.1.1.1', 80))
    result['network'] = 'connected'
except OSError as e:
    result['network'] = type(e).__name__
finally:
    s.close()
for name in names:
    path = '/data/fastai/' + name
    result['datasets'][name] = len(os.listdir(path)) if os.path.isdir(path) else -1
"""


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]


def check_sandbox(limits, data_dir: Path | None, names: frozenset[str]) -> None:
    """Start the sandbox on a kit-made notebook and compare what it reports with ``limits``."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    from mnistkit.grading.sandbox import SANDBOX_UID, SandboxStudent, _MemoryCap, _ProcessCap
    probe_limits = dataclasses.replace(limits, preload=(), cell_seconds=30.0, request_seconds=30.0,
                                       start_seconds=30.0, total_seconds=90.0, restarts=0)
    with tempfile.TemporaryDirectory(prefix="mnistkit-preflight-") as tmp:
        path = Path(tmp) / "preflight.ipynb"
        nbformat.write(new_notebook(cells=[new_code_cell("ready = True")]), str(path))
        try:
            student = SandboxStudent(path, limits=probe_limits, data_dir=data_dir)
        except Exception as exc:
            raise NotReady(f"the sandbox cannot be set up: {type(exc).__name__}: "
                           f"{_one_line(exc)}") from None
        try:
            cell = student.cells[0]
            if cell.status != "ok":
                raise NotReady(f"the sandbox does not run a notebook here: {_one_line(cell.message)}")
            box = student._box
            if _ProcessCap.supported() and (box is None or not box.cap.available):
                raise NotReady("the sandbox's pids cgroup could not be made (fork bombs would "
                               "reach the machine)")
            if _MemoryCap.supported() and (box is None or not box.memcap.available):
                raise NotReady("the sandbox's memory cgroup could not be made")
            try:
                got = student.run(PROBE, names=sorted(names))
            except Exception as exc:
                raise NotReady(f"the sandbox does not answer here: {_one_line(exc)}") from None
        finally:
            student.close()
    _compare(got, limits, names, SANDBOX_UID)


def _compare(got, limits, names, uid) -> None:
    def refuse(what):
        raise NotReady(f"the sandbox's limits do not apply here: {what}")
    if not isinstance(got, dict):
        refuse("its report is not readable")
    if got.get("uid") != uid:
        refuse(f"graded code runs as uid {got.get('uid')}, not {uid}")
    places = got.get("places") or {}
    devices = {tuple(v)[0] for v in places.values()} if places else set()
    if len(places) != 3 or len(devices) != 1:
        refuse("home, /tmp and /dev/shm are not one disk quota")
    for place, (_, size, files) in places.items():
        if not (int(limits.disk_bytes) <= size <= int(limits.disk_bytes) + 4096) \
                or files != int(limits.disk_files):
            refuse(f"{place} holds {size} bytes in {files} files, not the quota's "
                   f"{int(limits.disk_bytes)} in {int(limits.disk_files)}")
    if got.get("fsize") != int(limits.file_bytes) or got.get("data") != int(limits.memory_bytes):
        refuse("RLIMIT_FSIZE or RLIMIT_DATA is not the one set")
    if got.get("network") == "connected":
        refuse("graded code reached the network")
    missing = [n for n in sorted(names) if (got.get("datasets") or {}).get(n, -1) <= 0]
    if missing:
        raise NotReady(f"the sandbox does not show the data it needs: {', '.join(missing)} "
                       "is missing or empty inside")


# --- the verdict ----------------------------------------------------------------------------

def check(assignment: str, course: Course, in_process: bool | None = None) -> None:
    """Raise NotReady when this machine cannot grade ``assignment`` fairly (cached per process)."""
    from mnistkit.settings import settings
    sandboxed = not unsafe_in_process(in_process)
    names, npz = needs(assignment, course)
    limits = settings().limits if sandboxed else None   # those the plugin's sandboxes get
    key = (names, npz, sandboxed, limits, os.environ.get("FASTAI_HOME"), os.environ.get("HOME"))
    if key not in _verdicts:
        try:
            data_dir = check_data(names, npz, sandboxed)
            if sandboxed:
                check_sandbox(limits, data_dir, names)
            _verdicts[key] = None
        except NotReady as exc:
            _verdicts[key] = str(exc)
    if _verdicts[key] is not None:
        raise NotReady(_verdicts[key])


def start_failure(report: dict) -> str | None:
    """The reason, when the report shows a sandbox that did not start (the machine's fault)."""
    from mnistkit.grading.sandbox import START_FAILED
    for cell in report.get("cells", []):
        message = cell.get("message") or ""
        if cell.get("status") == "skipped" and message.startswith(START_FAILED):
            return _one_line(message, 200)
    return None


def _troubled(report: dict) -> bool:
    if not report.get("graded", True) or report.get("problems"):
        return True
    if any(not ran_as_designed(cell.get("status")) for cell in report.get("cells", [])):
        return True
    return any(check.get("status") != "passed" for entry in report.get("exercises", {}).values()
               for check in entry.get("checks", []))


def after_grading(report: dict, assignment: str, course: Course,
                  in_process: bool | None = None) -> None:
    """Raise NotReady when this notebook's failures are the environment's (see the docstring)."""
    name = f"{report.get('notebook_name') or 'the notebook'}.ipynb"
    reason = start_failure(report)
    if reason is not None:
        forget()
        raise NotReady(f"grading stopped at {name}, nothing recorded for it: {reason}")
    if not _troubled(report):
        return
    names, npz = needs(assignment, course)
    try:
        check_data(names, npz, not unsafe_in_process(in_process))
    except NotReady as exc:
        forget()
        raise NotReady(f"grading stopped at {name}, nothing recorded for it: {exc}") from None
