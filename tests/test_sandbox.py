"""The sandbox that runs untrusted student notebooks (mnistkit.grading.sandbox).

Each test builds a tiny notebook on the fly. Most avoid torch/fastai (``preload=()``) so a
sandbox starts in about a second; one test imports fastai and loads MNIST offline inside.
"""
from __future__ import annotations

import os
import shutil
import socket
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None,
                                reason="bubblewrap is not installed (scripts/install-system-packages.sh)")

from mnistkit.grading.cgroups import MemoryCap as _MemoryCap  # noqa: E402
from mnistkit.grading.cgroups import ProcessCap as _ProcessCap  # noqa: E402
from mnistkit.grading.sandbox import Limits, SandboxStudent  # noqa: E402
from mnistkit.grading.student import (InProcessStudent, NotDefined, NotPlainData,  # noqa: E402
                                      StudentCodeError, StudentCrashed, StudentTimeout,
                                      SubmissionProblem)

REPO = Path(__file__).resolve().parents[1]
FAST = Limits(cell_seconds=10, request_seconds=10, grace_seconds=2, preload=())


def notebook(folder: Path, *sources: str, name: str = "submission.ipynb") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    nbformat.write(new_notebook(cells=[new_code_cell(s) for s in sources]), path)
    return path


@pytest.fixture(scope="module")
def fork_server(mnist_data_dir):
    """One warm start's fork server for this file's warm tests (mnistkit.grading.zygote).
    Its children's data view must be the one the graders compute (zygote.child_key), so the
    data is materialized first: on a fresh clone another test may materialize it mid-run, after
    which a server started without it no longer matches and every warm test ran cold."""
    from mnistkit.grading import zygote
    from mnistkit.grading.sandbox_policy import default_data_dir as _default_data_dir
    server = zygote.ForkServer(FAST, _default_data_dir(None), ())
    assert not server.problem, server.problem
    yield server
    server.close()


@pytest.fixture(params=["cold", "warm"])
def sandbox(request, monkeypatch):
    """Open SandboxStudents and close them after the test, whatever happens; each test runs
    with a cold sandbox (bubblewrap starts the runner) and a warm one (a fork server's child):
    the isolation and limits must hold both ways."""
    if request.param == "warm":
        server = request.getfixturevalue("fork_server")
        monkeypatch.setenv(*next(iter(server.grader_env().items())))
    else:
        monkeypatch.delenv("MNISTKIT_FORKSERVER", raising=False)
    opened = []

    def make(path, **limits):
        student = SandboxStudent(path, limits=Limits(**{**vars(FAST), **limits}))
        assert (student._warm is not None) == (request.param == "warm") or student._broken
        opened.append(student)
        return student
    yield make
    for student in opened:
        student.close()


# ---- honest notebooks -----------------------------------------------------------------------

HONEST = (
    "%matplotlib inline\nimport random\nimport numpy as np\nimport torch",
    "def scale(t, by=2.0):\n    return t * by",
    "def describe(t):\n    return {'shape': tuple(t.shape), 'dtype': t.dtype, 'grad': t.requires_grad,\n"
    "            'mean': float(t.detach().float().mean()), 'items': [1, 2.5, 'three', None, True]}",
    "weights = torch.arange(6.).view(2, 3).requires_grad_()\nints = np.arange(5, dtype=np.int16)",
    "def noise():\n    return torch.rand(3), float(np.random.rand()), random.random()",
    "print('hello from the notebook')",
)


@pytest.mark.slow
def test_honest_notebook_round_trips_values_like_in_process(tmp_path, sandbox):
    """Does an honest notebook give the grader the same values, dtypes and requires_grad as the
    trusted in-process runner, with outputs reproducible across runs (seeded)?"""
    import torch
    path = notebook(tmp_path, *HONEST)
    student = sandbox(path, preload=("torch",))
    assert [c.status for c in student.cells] == ["ok"] * len(HONEST)
    assert "hello from the notebook" in student.outputs[5]

    x = torch.tensor([[1.0, -2.0], [3.5, 4.0]], dtype=torch.float64, requires_grad=True)
    got = student.call("scale", x, by=3.0)
    assert got.dtype == torch.float64 and got.requires_grad and torch.equal(got.detach(), x.detach() * 3)
    half = student.call("scale", torch.ones(2, dtype=torch.float16))
    assert half.dtype == torch.float16 and not half.requires_grad

    weights = student.get("weights")
    assert weights.requires_grad and weights.shape == (2, 3) and weights.dtype == torch.float32
    ints = student.get("ints")
    assert ints.dtype.name == "int16" and list(ints) == [0, 1, 2, 3, 4]
    assert student.has("scale") and not student.has("nope")
    assert student.run("result = scale(t).sum().item() + k", t=torch.ones(4), k=1) == 9.0
    with pytest.raises(NotDefined):
        student.call("nope")

    first, second = student.call("noise"), student.call("noise")
    assert torch.equal(first[0], second[0]) and first[1:] == second[1:]

    trusted = InProcessStudent(path)
    try:
        for name in ("weights", "ints"):
            a, b = student.get(name), trusted.get(name)
            assert type(a) is type(b) and a.dtype == b.dtype and (a == b).all()
        assert student.call("describe", x) == trusted.call("describe", x)
        assert torch.equal(student.call("scale", x), trusted.call("scale", x))
    finally:
        trusted.shell.reset()


@pytest.mark.slow
def test_fastai_and_mnist_sample_work_offline_inside(tmp_path, mnist_data_dir):
    """Does a notebook that imports fastai and calls untar_data(URLs.MNIST_SAMPLE) work inside
    the sandbox, offline, with the data folder read-only?"""
    path = notebook(
        tmp_path,
        "import warnings\nwarnings.filterwarnings('ignore')\nfrom fastai.vision.all import *\n"
        "matplotlib.rc('image', cmap='Greys')",
        "path = untar_data(URLs.MNIST_SAMPLE)\n"
        "threes = (path/'train'/'3').ls().sorted()\n"
        "first = tensor(Image.open(threes[0]))",
        "def mean_pixel(t):\n    return t.float().mean() / 255",
    )
    start = time.monotonic()
    student = SandboxStudent(path, limits=Limits(request_seconds=30), data_dir=mnist_data_dir)
    took = time.monotonic() - start
    try:
        _check_fastai_notebook(student, took)
    finally:
        student.close()


def _check_fastai_notebook(student, took):
    assert [c.status for c in student.cells] == ["ok"] * 3, student.cells
    assert student.run("result = len(threes)") > 1000
    first = student.get("first")
    assert tuple(first.shape) == (28, 28) and str(first.dtype) == "torch.uint8"
    assert 0 < float(student.call("mean_pixel", first)) < 1
    assert student.run("result = str(path)").startswith("/data/fastai")
    assert "Read-only" in student.run(
        "try:\n    (path/'x.txt').write_text('1'); result = 'wrote'\n"
        "except OSError as e:\n    result = str(e)")
    from tests.conftest import TIMINGS
    TIMINGS["sandbox: start (runner + torch preload)"] = student.start_seconds
    TIMINGS["sandbox: fastai import cell"] = student.cells[0].seconds
    TIMINGS["sandbox: fastai notebook, start to graded"] = took
    print(f"fastai notebook graded in {took:.1f} s (sandbox start {student.start_seconds:.1f} s, "
          f"fastai import cell {student.cells[0].seconds:.1f} s)")


# ---- a broken exercise costs that exercise only ----------------------------------------------

def test_an_error_in_one_cell_leaves_later_cells_running(tmp_path, sandbox):
    """Does a cell that raises leave the rest of the notebook graded, with a helpful message?"""
    student = sandbox(notebook(tmp_path, "a = 1", "raise ValueError('my bad')", "b = a + 1",
                               "def f(x):\n    return 10 // x"))
    assert [c.status for c in student.cells] == ["ok", "error", "ok", "ok"]
    assert student.cells[1].message == "ValueError: my bad"
    assert student.get("b") == 2
    with pytest.raises(StudentCodeError, match=r"`f` raised ZeroDivisionError"):
        student.call("f", 0)
    assert student.call("f", 5) == 2


def test_infinite_loops_are_stopped_and_the_rest_still_graded(tmp_path, sandbox):
    """Does an infinite loop in one cell (also one that swallows every interrupt) leave the rest
    of the notebook graded, and does a looping function cost only that request?"""
    path = notebook(
        tmp_path,
        "a = 1",
        "while True:\n    pass",
        "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass",
        "b = a + 1\ndef spin():\n    while True:\n        try:\n            pass\n"
        "        except BaseException:\n            pass",
        "def ok():\n    return b * 10",
    )
    start = time.monotonic()
    student = sandbox(path, cell_seconds=1, request_seconds=1, grace_seconds=1)
    assert time.monotonic() - start < 30
    assert [c.status for c in student.cells] == ["ok", "timeout", "timeout", "ok", "ok"]
    assert "cell 3 ran longer than 1 s" in student.cells[2].message
    assert student.call("ok") == 20
    start = time.monotonic()
    with pytest.raises(StudentTimeout, match="`spin` did not finish within 1 s"):
        student.call("spin")
    assert time.monotonic() - start < 10
    assert student.call("ok") == 20


def test_memory_exhaustion_is_stopped(tmp_path, sandbox):
    """Does a cell that grabs more memory than allowed fail (not the grader), and the rest of
    the notebook still graded? Does memory spread over child processes get the sandbox killed?"""
    path = notebook(
        tmp_path,
        "big = bytearray(2 << 30)",
        "import numpy as np\nchunks = []\nwhile True:\n    chunks.append(np.ones(10_000_000))",
        "chunks = None\nsmall = bytearray(10)\ndef size():\n    return len(small)",
        "import os, time, numpy as np\nfor _ in range(4):\n    if os.fork() == 0:\n"
        "        x = np.ones(30_000_000)\n        time.sleep(60)\n        os._exit(0)\ntime.sleep(60)",
    )
    student = sandbox(path, memory_bytes=512 << 20, memory_slack_bytes=256 << 20,
                      cell_seconds=20)
    statuses = [c.status for c in student.cells]
    assert statuses[:3] == ["error", "error", "ok"], student.cells
    assert "MemoryError" in student.cells[0].message
    assert statuses[3] == "crashed" and "memory limit of 512 MiB" in student.cells[3].message
    assert student.call("size") == 10


@pytest.mark.skipif(not _ProcessCap.supported(),
                    reason="no writable pids cgroup on this machine (the cap needs one)")
def test_fork_and_thread_bombs_hit_the_process_cap(tmp_path, sandbox):
    """Do a fork bomb and a thread bomb fail inside the sandbox (cell error or crash) instead of
    filling the machine's process table, with the rest of the notebook still graded?"""
    path = notebook(
        tmp_path,
        "import os\nwhile True:\n    os.fork()",
        "import threading, time\nthreads = []\nwhile True:\n"
        "    t = threading.Thread(target=time.sleep, args=(30,), daemon=True)\n"
        "    t.start()\n    threads.append(t)",
        "def ok():\n    return 'still graded'",
    )
    student = sandbox(path, processes=64, cell_seconds=10)
    statuses = [c.status for c in student.cells]
    assert statuses[0] in ("error", "crashed", "timeout") and statuses[1] == "error", student.cells
    assert any(word in student.cells[1].message for word in ("thread", "Resource temporarily unavailable"))
    assert statuses[2] == "ok"
    assert student.call("ok") == "still graded"


def test_os_exit_in_a_cell_or_a_call_is_survived(tmp_path, sandbox):
    """Does os._exit (or a segfault) in a cell or in a called function cost only that cell or
    request, with the notebook restarted and its other cells replayed?"""
    path = notebook(
        tmp_path,
        "import os, ctypes\nstate = [1]",
        "os._exit(1)",
        "state.append(2)\ndef die():\n    os._exit(7)\ndef crash():\n    ctypes.string_at(0)",
        "def total():\n    return sum(state)",
    )
    student = sandbox(path)
    assert [c.status for c in student.cells] == ["ok", "crashed", "ok", "ok"]
    assert "cell 2" in student.cells[1].message and "exit code 1" in student.cells[1].message
    assert student.call("total") == 3
    with pytest.raises(StudentCrashed, match=r"exit code 7\) while running `die`"):
        student.call("die")
    assert student.call("total") == 3           # restarted, cells replayed (not the bad one)
    with pytest.raises(StudentCrashed, match="SIGSEGV"):
        student.call("crash")
    assert student.call("total") == 3
    assert student.restarts == 3
    with pytest.raises(StudentCrashed):
        student.call("die")
    with pytest.raises(SubmissionProblem, match="crashed or hung"):
        student.call("total")                   # out of restarts: a clear message, no hang


def test_flooding_output_is_capped(tmp_path, sandbox):
    """Can printing huge amounts fill the grader's memory or break the protocol?"""
    path = notebook(
        tmp_path,
        "import sys, os\nfor i in range(200):\n    print('x' * 50_000)\n"
        "os.write(1, b'\\x00\\x00\\x00\\x10garbage on stdout')\nprint('last line')",
        "def f():\n    sys.stderr.write('e' * 5_000_000)\n    return 'fine'",
    )
    student = sandbox(path)
    assert [c.status for c in student.cells] == ["ok", "ok"]
    assert len(student.outputs[0]) <= 64 << 10 and "last line" in student.outputs[0]
    assert student.call("f") == "fine"


# ---- what the student can reach --------------------------------------------------------------

PROBE_NETWORK = """
import socket
import sys
result = {}
for name, address in targets.items():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect((address, int(ports[name])))
        result[name] = 'connected'
    except OSError as e:
        result[name] = type(e).__name__
    finally:
        s.close()
"""


def test_no_network(tmp_path, sandbox):
    """Can the student reach the host's loopback or an external address? (It must not.)"""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        student = sandbox(notebook(tmp_path, "x = 1"))
        got = student.run(PROBE_NETWORK, targets={"host": "127.0.0.1", "outside": "1.1.1.1"},
                          ports={"host": server.getsockname()[1], "outside": 80})
    finally:
        server.close()
    assert got["host"] != "connected" and got["outside"] != "connected", got


PROBE_FILES = """
import os, importlib
result = {}
for p in paths:
    try:
        if os.path.isdir(p):
            result[p] = 'listed ' + ','.join(sorted(os.listdir(p)))
        else:
            with open(p, 'rb') as fh:
                fh.read(10)
            result[p] = 'read'
    except OSError as e:
        result[p] = type(e).__name__
for module in ('mnistkit', 'solutions', 'autograder'):
    try:
        importlib.import_module(module)
        result[module] = 'imported'
    except ImportError:
        result[module] = 'ImportError'
result['env'] = sorted(os.environ)
result['uid'] = os.getuid()
"""


def ways_down(folder: str) -> set[str]:
    """The names under ``folder`` that lead to the folders the sandbox binds in (the venv and
    its base interpreter): mount points, the only names a student may see there."""
    found = set()
    for bound in {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}:
        if Path(folder).resolve() in bound.parents:
            found.add(bound.relative_to(Path(folder).resolve()).parts[0])
    return found


def test_cannot_read_the_repo_or_root(tmp_path, sandbox):
    """Can the student read the reference solutions, hidden tests, gradebook, /root or the
    grader's package? (They must not even be visible.)"""
    student = sandbox(notebook(tmp_path, "x = 1"))
    paths = [str(REPO / "solutions"), str(REPO / "autograder"), str(REPO / "gradebook.db"),
             str(REPO / "mnistkit" / "grading" / "sandbox.py"), "/root", "/root/.fastai",
             str(REPO), "/etc/shadow", "/tmp"]
    got = student.run(PROBE_FILES, paths=paths)
    for p in paths[:4] + ["/root/.fastai", "/etc/shadow"]:
        assert got[p] == "FileNotFoundError", (p, got[p])
    # /root, the checkout and a private /tmp show at most the way down to what the sandbox binds
    # in (the venv and its base Python), wherever the clone lives: no file of theirs
    for folder in ("/root", str(REPO), "/tmp"):
        assert got[folder].startswith("listed"), (folder, got[folder])
        names = {n for n in got[folder].removeprefix("listed ").split(",") if n}
        assert names <= ways_down(folder), (folder, got[folder])
    assert got["mnistkit"] == got["solutions"] == got["autograder"] == "ImportError"
    assert got["uid"] == 65534
    assert "MNISTKIT_GRADING_SEED" not in got["env"] and set(got["env"]) <= {
        "PATH", "HOME", "FASTAI_HOME", "MPLBACKEND", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE",
        "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "LANG", "TMPDIR",
        "MPLCONFIGDIR", "PWD", "NBGRADER_EXECUTION"}
    assert "NBGRADER_EXECUTION" in got["env"]   # set as nbgrader's autograde sets it


PROBE_WRITE = """
import os
result = {}
for p in paths:
    try:
        with open(p, 'w') as fh:
            fh.write('x')
        result[p] = 'wrote'
    except OSError as e:
        result[p] = type(e).__name__
"""


def test_cannot_write_outside_scratch(tmp_path, sandbox):
    """Can the student write anywhere but their scratch folder (the repo, the venv, the data,
    system folders)? Their scratch folder is their working directory and HOME."""
    student = sandbox(notebook(tmp_path, "x = 1"))
    venv = Path(os.sys.prefix)
    outside = [str(REPO / "pwned.txt"), str(venv / "pwned.txt"), "/usr/pwned.txt", "/pwned.txt",
               "/root/pwned.txt", "/data/fastai/pwned.txt", "/etc/pwned.txt", "/dev/pwned.txt",
               "/opt/mnistkit/runner.py"]
    got = student.run(PROBE_WRITE, paths=outside + ["mine.txt", "/home/student/also_mine.txt"])
    for p in outside:
        if p.startswith("/tmp/") and p != str(venv / "pwned.txt"):
            continue   # a clone under /tmp: that write lands in the sandbox's own /tmp (a tmpfs)
        assert got[p] != "wrote", p
    assert got["mine.txt"] == got["/home/student/also_mine.txt"] == "wrote"
    assert not (REPO / "pwned.txt").exists() and not (venv / "pwned.txt").exists()
    assert not (tmp_path / "mine.txt").exists()   # the submission folder itself is a copy


def test_student_objects_never_reach_the_grader(tmp_path, sandbox):
    """Can the student make the grader unpickle or run anything, or crash it with a forged answer?
    (Custom objects are NotPlainData; a garbled answer is a SubmissionProblem, then a restart.)"""
    path = notebook(
        tmp_path,
        "import os, sys, struct\n"
        "class Evil:\n    def __reduce__(self):\n        return (os.system, ('touch /tmp/pwned',))\n"
        "def evil():\n    return Evil()\n"
        "def nested():\n    return [1, {'a': Evil()}]\n"
        # the answer pipe: named on a cold runner's command line, found among the open
        # descriptors of a warm one (a pipe open for writing, other than stdout/stderr)
        "import fcntl, stat\n"
        "def answer_fd():\n"
        "    if '--answer-fd' in sys.argv:\n"
        "        return int(sys.argv[sys.argv.index('--answer-fd') + 1])\n"
        "    for fd in range(3, 256):\n"
        "        try:\n"
        "            if stat.S_ISFIFO(os.fstat(fd).st_mode) and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY:\n"
        "                return fd\n"
        "        except OSError:\n"
        "            pass\n"
        "def forge():\n"
        "    fd = answer_fd()\n"
        "    os.write(fd, struct.pack('>I', 12) + b'not a frame!')\n"
        "    return 1\n"
        "def huge_frame():\n"
        "    fd = answer_fd()\n"
        "    os.write(fd, struct.pack('>I', 4_000_000_000))\n"
        "    return 1\n"
        "module = os\n"
        "def fine():\n    return 'fine'",
    )
    student = sandbox(path)
    with pytest.raises(NotPlainData, match="Evil"):
        student.call("evil")
    with pytest.raises(NotPlainData):
        student.call("nested")
    with pytest.raises(NotPlainData):
        student.get("module")
    with pytest.raises(SubmissionProblem, match="cannot read"):
        student.call("forge")
    assert student.call("fine") == "fine"
    with pytest.raises(SubmissionProblem):
        student.call("huge_frame")
    assert student.call("fine") == "fine"
    assert not Path("/tmp/pwned").exists()


def test_close_removes_everything(tmp_path):
    """Does close() kill the sandbox and remove its scratch folder?"""
    student = SandboxStudent(notebook(tmp_path, "x = 1"), limits=FAST)
    scratch, pid = student._scratch, student._box.proc.pid
    assert scratch.exists()
    student.close()
    assert not scratch.exists()
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    with pytest.raises(SubmissionProblem):
        student.get("x")


def test_graded_code_cannot_read_the_test_labels(tmp_path, mnist_data_dir):
    """Is the full MNIST (whose testing/ folders name every test image's digit) replaced, inside
    the sandbox, by the stand-in made of training images only?"""
    from mnistkit import data
    path = notebook(tmp_path, "import os\nroot = '/data/fastai/mnist_png'\n"
                              "listing = {split: {d: sorted(os.listdir(f'{root}/{split}/{d}'))\n"
                              "                   for d in os.listdir(f'{root}/{split}')}\n"
                              "           for split in os.listdir(root)}")
    student = SandboxStudent(path, limits=FAST, data_dir=mnist_data_dir)
    try:
        listing = student.get("listing")
        hidden = student.run("import os\nresult = os.listdir('/data/fastai/mnist_png_grading')")
    finally:
        student.close()
    assert sorted(listing) == ["testing", "training"]
    per_digit = {"training": data.STANDIN_TRAIN_PER_DIGIT, "testing": data.STANDIN_TEST_PER_DIGIT}
    for split, digits in listing.items():
        assert sorted(digits) == [str(d) for d in range(10)]
        for d, files in digits.items():
            assert len(files) == per_digit[split]
            # every file is named by its MNIST index: all from the training set, none a test image
            assert all(int(f.removesuffix(".png")) >= data.STANDIN_FIRST_INDEX for f in files)
    assert hidden == []


# ---- the disk quota (issue 10, class 5) -------------------------------------------------------

PROBE_QUOTA = """
import os
result = {}
for place in (os.path.expanduser('~'), '/tmp', '/dev/shm'):
    vfs = os.statvfs(place)
    result[place] = [os.stat(place).st_dev, vfs.f_blocks * vfs.f_frsize, vfs.f_files,
                     (vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize]
result['home'] = sorted(os.listdir(os.path.expanduser('~')))
"""


def test_disk_quota_caps_bytes_and_files_everywhere_and_costs_the_cell(tmp_path, sandbox):
    """Can a notebook write more than its disk quota (bytes, or files) in its home, /tmp or
    /dev/shm, with every file under the per-file limit? (It must not: the write fails, the cell
    that used the quota up counts as failed, even when it swallows the error, and the notebook
    goes on in a fresh sandbox; nothing lands on the grading machine's disk.)"""
    path = notebook(
        tmp_path,
        "x = 1",
        "import os\nfor i in range(64):\n"
        "    with open(os.path.expanduser(f'~/fill-{i}.bin'), 'wb') as fh:\n"
        "        fh.write(b'0' * (1 << 20))",
        "import os\nplaces = ['/tmp', '/dev/shm', os.path.expanduser('~')]\nfor i in range(10_000):\n"
        "    try:\n        open(f'{places[i % 3]}/f{i}', 'w').close()\n"
        "    except OSError:\n        break",
        "def ok():\n    return x\n"
        "def fill():\n    for i in range(16):\n        with open(f'/dev/shm/big{i}', 'wb') as fh:\n"
        "            fh.write(b'0' * (4 << 20))\n    return 'filled'",
        "kept = 'a' * 10",
    )
    student = sandbox(path, disk_bytes=16 << 20, disk_files=300, file_bytes=8 << 20)
    statuses = [c.status for c in student.cells]
    assert statuses == ["ok", "error", "error", "ok", "ok"], student.cells
    for cell in student.cells[1:3]:
        assert "disk quota (16 MiB or 300 files" in cell.message, cell.message
    for folder in ("quota", "home"):   # on the host's disk: nothing of what the cells wrote
        assert not any(name.startswith(("fill-", "f1")) for name in
                       os.listdir(student._scratch / folder)), folder
    assert student.call("ok") == 1
    with pytest.raises(StudentCodeError, match="`fill` filled the notebook's disk quota"):
        student.call("fill")
    assert student.call("ok") == 1 and student.get("kept") == "a" * 10   # restarted, replayed
    places = student.run(PROBE_QUOTA)
    home = places.pop("home")
    assert not any(name.startswith(("fill-", "f1")) for name in home), home   # a fresh quota
    assert len({v[0] for v in places.values()}) == 1, places      # one file system, one quota
    for place, (_, size, files, used) in places.items():
        assert size == 16 << 20 and files == 300 and used < 1 << 20, (place, places)


def test_files_in_the_quota_count_as_memory(tmp_path, sandbox):
    """Is memory-backed disk (files in /dev/shm, /tmp, the home: one tmpfs) counted against the
    memory limit, so that disk and memory together stay within it?"""
    path = notebook(
        tmp_path,
        "import time\nfor i in range(3):\n    with open(f'/dev/shm/m{i}', 'wb') as fh:\n"
        "        for _ in range(100):\n            fh.write(b'0' * (1 << 20))\ntime.sleep(5)",
        "def ok():\n    return 'fine'",
    )
    student = sandbox(path, memory_bytes=200 << 20, memory_slack_bytes=50 << 20,
                      disk_bytes=512 << 20, file_bytes=128 << 20, cell_seconds=20)
    assert [c.status for c in student.cells] == ["crashed", "ok"], student.cells
    assert "memory limit of 200 MiB" in student.cells[0].message
    assert student.call("ok") == "fine"


@pytest.mark.skipif(not _MemoryCap.supported(),
                    reason="no writable memory cgroup on this machine (the cap needs one)")
def test_memory_no_process_maps_counts_too(tmp_path, sandbox):
    """Is memory that no process maps (memfd files: outside the disk quota, invisible to
    RLIMIT_DATA and to the PSS watchdog) held to the memory limit by the sandbox's memory cgroup?"""
    path = notebook(
        tmp_path,
        "import os, time\nfds = []\nfor i in range(6):\n    fd = os.memfd_create(f'm{i}')\n"
        "    for _ in range(100):\n        os.write(fd, b'0' * (1 << 20))\n    fds.append(fd)\n"
        "time.sleep(3)",
        "def ok():\n    return 'fine'",
    )
    student = sandbox(path, memory_bytes=200 << 20, memory_slack_bytes=50 << 20, cell_seconds=20)
    assert [c.status for c in student.cells] == ["crashed", "ok"], student.cells
    assert "memory limit of 200 MiB" in student.cells[0].message
    assert student.call("ok") == "fine"


PROBE_MOUNTS = """
top = {}
with open('/proc/self/mountinfo') as fh:
    for line in fh:   # in mount order: a later mount on the same point covers the earlier one
        fields = line.split()
        sep = fields.index('-')
        top[fields[4]] = [fields[4], fields[sep + 1], fields[sep + 2], 'rw' in fields[5].split(',')]
result = list(top.values())
"""
DEVICE_NODES = {f"/dev/{n}" for n in ("null", "zero", "full", "random", "urandom", "tty")}


@pytest.mark.parametrize("start", ["cold", "warm"])
def test_every_writable_place_is_in_the_quota(tmp_path, mnist_data_dir, monkeypatch, start):
    """Is every mount that graded code can write to the one disk quota (home, /tmp, /dev/shm),
    with the data folders' view included? proc, devpts and the device nodes store nothing.
    Warm: the fork server's own scratch (HOME, /tmp, /dev/shm) is covered by the child's quota,
    its inbox and the quota's mount point by read-only empty folders."""
    from mnistkit.grading import zygote
    monkeypatch.delenv(zygote.SERVER_ENV, raising=False)
    server = zygote.ForkServer(FAST, mnist_data_dir, ()) if start == "warm" else None
    if server is not None:
        assert not server.problem, server.problem
        monkeypatch.setenv(*next(iter(server.grader_env().items())))
    student = SandboxStudent(notebook(tmp_path, "x = 1"), limits=FAST, data_dir=mnist_data_dir)
    assert (student._warm is not None) == (start == "warm")
    try:
        mounts = student.run(PROBE_MOUNTS)
    finally:
        student.close()
        if server is not None:
            server.close()
    writable = {(point, fstype, source) for point, fstype, source, rw in mounts if rw}
    quota = {point for point, fstype, source in writable if source == "mnistkit-quota"}
    assert quota == {"/home/student", "/tmp", "/dev/shm"}, writable
    others = {(point, fstype) for point, fstype, source in writable if source != "mnistkit-quota"}
    assert all(fstype in ("proc", "devpts") or point in DEVICE_NODES
               or point.startswith("/dev/nvidia") for point, fstype in others), others
    assert any(point.startswith("/data/fastai") for point, *_ in mounts)   # the view was there


def test_gpu_device_nodes_are_bound_when_there_is_a_gpu(monkeypatch):
    """On a machine with an NVIDIA GPU, do its device nodes (and only those) come into the
    sandbox, past the disk audit? (No GPU here: the machine's list is replaced.)"""
    from mnistkit.grading import bwrap_args as sandbox
    monkeypatch.setattr(sandbox, "gpu_devices", lambda: ["/dev/nvidia0", "/dev/nvidiactl"])
    cmd = sandbox.bwrap_base()
    assert cmd[-6:] == ["--dev-bind", "/dev/nvidia0", "/dev/nvidia0",
                        "--dev-bind", "/dev/nvidiactl", "/dev/nvidiactl"]
    assert sandbox.read_only_else(cmd, set()) == []
    with pytest.raises(RuntimeError, match="writable"):
        sandbox.read_only_else(cmd + ["--dev-bind", "/dev/sda", "/dev/sda"], set())


def test_a_writable_bind_outside_the_quota_is_refused(tmp_path):
    """Does the sandbox refuse to start with a writable place outside the quota (a kit bug)?"""
    from mnistkit.grading.bwrap_args import read_only_else
    quota = {f"{tmp_path}/quota/home"}
    fine = ["--bind", f"{tmp_path}/quota/home", "/home/student", "--tmpfs", "/data/x"]
    assert read_only_else(fine, quota) == ["--remount-ro", "/data/x"]
    with pytest.raises(RuntimeError, match="writable"):
        read_only_else(fine + ["--bind", str(tmp_path), "/srv"], quota)


PROBE_NEIGHBOURS = """
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
me = os.readlink('/proc/self')
seen, stopped, others = [], [], []
for name in os.listdir('/proc'):
    if not name.isdigit() or name == me:
        continue
    try:
        cmdline = open(f'/proc/{name}/cmdline', 'rb').read().replace(b'\\0', b' ').decode()
    except OSError:
        cmdline = '?'
    seen.append(cmdline)
    try:   # two or more levels: a process of our own namespace (the runner's init, the runner)
        ns = [l for l in open(f'/proc/{name}/status') if l.startswith('NSpid:')][0].split()[1:]
    except (OSError, IndexError):
        ns = []
    if len(ns) >= 2:
        continue
    others.append(cmdline)
    # A /proc folder works as a pidfd: try to stop each process listed (pidfd_send_signal).
    try:
        fd = os.open(f'/proc/{name}', os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        continue
    if libc.syscall(424, fd, signal.SIGSTOP, None, 0) == 0:
        stopped.append(cmdline)
    os.close(fd)
fd = os.open('/proc/self', os.O_RDONLY | os.O_DIRECTORY)   # the same call works on itself
works = libc.syscall(424, fd, 0, None, 0) == 0
result = {'seen': seen, 'stopped': stopped, 'pid': os.getpid(), 'works': works,
          'others': others}
"""


def _host_processes(*markers: bytes) -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if any(marker in cmdline for marker in markers):
            found.append((int(entry.name), state))
    return found


def test_warm_children_can_neither_see_signal_nor_outlive_into_another(tmp_path, fork_server,
                                                                       monkeypatch):
    """With the warm start, does a process a student leaves running die with their grading, does
    the next child see nothing of it, and can it stop neither the fork server nor its
    bubblewrap? (A child is the init of its own pid namespace, the runner its pid 2; /proc is
    the fork server's procfs, where every process that is not the child's own, the fork server
    and bubblewrap among them, is covered by an empty folder: listed, with nothing to read.)"""
    monkeypatch.setenv(*next(iter(fork_server.grader_env().items())))
    first = SandboxStudent(notebook(tmp_path / "a", (
        "import os, subprocess\n"
        "subprocess.Popen(['sleep', '313'], start_new_session=True)\n"   # left behind
        "if os.fork() == 0:\n    os.setsid()\n    os.execvp('sleep', ['sleep', '314'])")),
        limits=FAST)
    assert first._warm is not None and [c.status for c in first.cells] == ["ok"]
    # running, for now (the forked one may not have exec'd sleep yet on a busy machine)
    deadline = time.monotonic() + 10
    while len(_host_processes(b"sleep\x00313", b"sleep\x00314")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_host_processes(b"sleep\x00313", b"sleep\x00314")) == 2
    first.close()
    assert _host_processes(b"sleep\x00313", b"sleep\x00314") == []       # gone with it
    second = SandboxStudent(notebook(tmp_path / "b", "x = 1"), limits=FAST)
    try:
        found = second.run(PROBE_NEIGHBOURS)
    finally:
        second.close()
    assert found["pid"] == 2 and found["works"]   # the runner, under its namespace's init
    assert not any("sleep" in line for line in found["seen"]), found["seen"]
    # the fork server's processes (bubblewrap's init, the fork server, the keeper) are listed,
    # but with nothing to read (their cmdline is '?'), and out of reach
    assert found["others"] and set(found["others"]) == {"?"}, found
    assert found["stopped"] == [], found
    assert all(state != "T" for _, state in _host_processes(b"forkserver.py"))
    assert fork_server.available
