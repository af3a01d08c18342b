"""Grade an untrusted notebook: its code runs in a bubblewrap sandbox, the grader only gets plain data.

Isolation. ``runner.py`` (stand-alone) runs the notebook's cells with IPython in a process that
bubblewrap starts with a minimal, read-only view of the machine (/usr, a few files of /etc, the
Python install, the venv, the MNIST data folder) plus one writable scratch folder (HOME and the
working directory, holding a copy of the submission folder), no network, its own pid/ipc/uts
namespaces, a clean environment and uid 65534 in its own user namespace. The repository, the
grader's temp files and the rest of /root are simply not there; the editable install of mnistkit
points into the repository, so mnistkit cannot be imported inside. The grader and the runner
exchange length-prefixed ``wire`` frames (no pickle) on stdin and a separate answer pipe; the
student's stdout/stderr go to a third pipe of which only a tail is kept.

Resilience. Time is enforced twice: the runner interrupts student code with SIGALRM, and the
grader kills the whole sandbox when no answer comes within the limit plus a grace period.
Memory: RLIMIT_DATA in the runner (torch's CUDA build reserves ~4 GB of address space, so
RLIMIT_AS is not usable) and a grader-side watchdog on the sandbox's total PSS. When the sandbox
dies or hangs in a cell, that cell is marked crashed/timeout and skipped on the restart, which
replays the other cells; when it dies in a request, that request fails and the next one restarts
it. Restarts and total time are capped.

CPU and time are the student's own (issue 19). Each sandbox runs in a cpu cgroup of its own
(``_CpuCap``: equal weight, a quota of ``Limits.cpu_cores``), joined like the pids and memory
cgroups before the sandbox runs anything (cold: Popen's preexec_fn; warm: ``zygote`` adds the
child's host pid before it goes on), so busy processes in sessions of their own stay in it. The
notebook's cells share a budget (``Limits.notebook_seconds``): the cell that uses it up is
stopped and the cells after it are not run, nor replayed (``not_reached``, ``budget_reason``;
the plugin fails every check of an exercise whose answer cell was not reached with that reason).

Disk. Everything graded code can write is one tmpfs per sandbox start, mounted with
``size=Limits.disk_bytes`` and ``nr_inodes=Limits.disk_files``: it holds the scratch home (a copy
of the submission folder, fastai's archive/storage/model folders), /tmp and /dev/shm, bound in
by bubblewrap; every other mount inside is read-only (``_Box._command`` checks this, and
tests/test_sandbox.py audits the mount table from inside). The tmpfs is mounted by ``unshare
--mount`` in a mount namespace of the sandbox's own, so the host never sees it and the kernel
frees it when the sandbox's last process ends, even if the grader is killed. Going over the
quota fails the write (ENOSPC, the student's error); a cell or request that leaves the quota
(nearly) full is charged: the cell counts as failed with the reason and the sandbox restarts,
fresh, replaying the other cells. Per file, RLIMIT_FSIZE still applies.
Memory-backed: tmpfs pages are in no process's PSS and RLIMIT_DATA does not count them; the
kernel charges them to the memory cgroup of the process that writes them (checked with cgroup
v1 here: memory.stat's shmem grew by what a process wrote into a tmpfs, and fell back to 0 when
its mount namespace ended). So they count against the memory limit twice over: the sandbox runs
in a memory cgroup of its own limited to memory + slack (``_MemoryCap``, where the machine
allows one; it also bounds memfd files and SysV shared memory, which nothing else sees), and
the watchdog adds the quota's used bytes to the sandbox's PSS.
"""
from __future__ import annotations

import errno
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import weakref
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnistkit.grading import wire, wire_audit
from mnistkit.grading.left_out import LEFT_OUT, cells_left_out
from mnistkit.grading.student import (CellRun, NotDefined, NotPlainData, Student,
                                      StudentCodeError, StudentCrashed, StudentTimeout,
                                      SubmissionProblem, code_cells)

GRADING = Path(__file__).resolve().parent
TOOL_FILES = ("runner.py", "wire.py", "forkserver.py")   # stand-alone, bound in read-only
BWRAP = shutil.which("bwrap") or "/usr/bin/bwrap"
UNSHARE = shutil.which("unshare") or "/usr/bin/unshare"

# Inside the sandbox.
HOME = "/home/student"
DATA = "/data/fastai"
TOOLS = "/opt/mnistkit"          # runner.py and wire.py, read-only
SANDBOX_UID = 65534
# A sandbox that cannot start is the grading machine's problem, never the student's: this
# prefix marks it in the cells' messages (mnistkit.grading.preflight looks for it).
START_FAILED = "the sandbox did not start"

# Runs in the sandbox's own mount namespace, before bubblewrap: the disk quota (see the module
# docstring). $1 mount point, $2 bytes, $3 inodes, $4 the prepared home to copy in.
QUOTA_SCRIPT = """set -e
mount -t tmpfs -o "size=$2,nr_inodes=$3,mode=0755,nosuid,nodev" mnistkit-quota "$1"
mkdir "$1/home" "$1/tmp" "$1/shm"
cp -a "$4/." "$1/home/"
shift 4
exec "$@"
"""

# What of /etc the student's Python needs (dynamic loader, users, time zone, certificates).
ETC = ["ld.so.cache", "ld.so.conf", "ld.so.conf.d", "passwd", "group", "nsswitch.conf",
       "hosts", "localtime", "timezone", "ssl", "ca-certificates", "alternatives", "fonts",
       "mime.types", "matplotlibrc"]


@dataclass(frozen=True)
class Limits:
    """What one submission may use. Defaults: generous for chapter 4 (fastai imports in ~12 s,
    the slowest reference cell takes a few seconds) and small enough to grade a class on one box."""
    cell_seconds: float = 120.0          # one notebook cell
    request_seconds: float = 60.0        # one call/get/has/run from a hidden test
    total_seconds: float = 15 * 60.0     # everything for one submission, restarts included
    # The notebook's own cells, first run (the references' graded cells took 3.3 s (a1), 4.3 s
    # (a3), 5.6 s (a4) warm, 2026-12-06; a cold start adds the imports, fastai's 10-14 s): past
    # it the rest of the notebook is not run and the exercises it would have reached score 0.
    notebook_seconds: float = 180.0
    start_seconds: float = 60.0          # sandbox start until the runner is ready
    grace_seconds: float = 5.0           # after a limit, before the grader kills the sandbox
    memory_bytes: int = 4 << 30          # RLIMIT_DATA of the student's process
    memory_slack_bytes: int = 1 << 30    # watchdog kills when total PSS > memory + slack
    file_bytes: int = 256 << 20          # RLIMIT_FSIZE: largest file the student may write
    disk_bytes: int = 1 << 30            # all files together: home, /tmp, /dev/shm (tmpfs)
    disk_files: int = 20_000             # files and folders together, same places
    output_bytes: int = 64 << 10         # stdout/stderr kept per cell/request, the tail
    answer_bytes: int = 256 << 20        # largest answer accepted from the sandbox
    restarts: int = 3                    # sandbox restarts after crashes/hangs
    threads: int = 2                     # OMP/MKL threads
    copy_bytes: int = 200 << 20          # largest submission folder copied into scratch
    processes: int = 512                 # processes + threads inside (pids cgroup; fork bombs)
    cpu_cores: float = 1.0               # cpu cgroup quota, in cores (0: no quota); equal weight
    preload: tuple[str, ...] = ("torch",)  # imported by the runner before the student's code

    ENV_PREFIX = "MNISTKIT_LIMIT_"

    @classmethod
    def from_env(cls, environ=None) -> "Limits":
        """Defaults, overridden by MNISTKIT_LIMIT_<FIELD> variables (e.g. MNISTKIT_LIMIT_CELL_SECONDS=300),
        so an instructor can loosen or tighten grading without editing code."""
        environ = os.environ if environ is None else environ
        changes = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(cls.ENV_PREFIX + f.name.upper())
            if raw is None or f.name == "preload":
                continue
            try:
                changes[f.name] = type(f.default)(float(raw)) if f.type in ("int", int) else float(raw)
            except ValueError:
                raise ValueError(f"{cls.ENV_PREFIX}{f.name.upper()}={raw!r} is not a number") from None
        return dataclasses.replace(cls(), **changes)


# Where a pids cgroup can be made: cgroup v1's pids hierarchy, or a v2 root that delegates pids.
PIDS_ROOTS = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup"))
_cgroup_serial = iter(range(1 << 62))


class _ProcessCap:
    """A pids cgroup around one sandbox: fork and thread bombs hit ``pids.max`` (fork/clone fail
    with EAGAIN) instead of the machine's process table. RLIMIT_NPROC cannot do this job: it
    counts per real uid, and the sandbox's uid maps to the grader's (root, which it ignores).
    Needs a writable cgroup hierarchy (root on these machines); without one there is no cap and
    ``available`` is False (the memory watchdog still bounds a bomb's memory)."""

    def __init__(self, limit: int):
        self.path: Path | None = None
        if limit <= 0:
            return
        for root in PIDS_ROOTS:
            if not self._usable(root):
                continue
            self._remove_stale(root)
            path = root / f"mnistkit-{os.getpid()}-{next(_cgroup_serial)}"
            try:
                path.mkdir()
                (path / "pids.max").write_text(str(int(limit)))
            except OSError:
                self._rmdir(path)
                continue
            self.path = path
            return

    @staticmethod
    def _remove_stale(root: Path) -> None:
        """Empty cgroups left by graders that were killed (their pid is in the name)."""
        for path in root.glob("mnistkit-*-*"):
            try:
                owner = int(path.name.split("-")[1])
                os.kill(owner, 0)
            except ProcessLookupError:
                try:
                    path.rmdir()
                except OSError:
                    pass
            except (ValueError, PermissionError):
                pass

    @staticmethod
    def _usable(root: Path) -> bool:
        if not (root / "cgroup.procs").is_file() or not os.access(root, os.W_OK):
            return False
        if root.name == "pids":
            return True
        try:   # cgroup v2: the root must hand the pids controller down to its children
            return "pids" in (root / "cgroup.subtree_control").read_text().split()
        except OSError:
            return False

    @property
    def available(self) -> bool:
        return self.path is not None

    @classmethod
    def supported(cls) -> bool:
        """Whether this machine lets the grader make a pids cgroup (nothing is created)."""
        return any(cls._usable(root) for root in PIDS_ROOTS)

    def join(self) -> None:
        """Runs in the sandbox's first process before exec (Popen's preexec_fn)."""
        self.add(os.getpid())

    def add(self, pid: int) -> None:
        """Put ``pid`` in this cgroup (a warm start's child, before it does anything)."""
        if self.path is not None:
            with open(self.path / "cgroup.procs", "w") as fh:
                fh.write(str(pid))

    @staticmethod
    def _rmdir(path: Path) -> bool:
        for _ in range(100):   # the killed processes leave the cgroup when they are reaped
            try:
                path.rmdir()
                return True
            except FileNotFoundError:
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def remove(self) -> None:
        if self.path is not None and self._rmdir(self.path):
            self.path = None


class _MemoryCap:
    """A memory cgroup around one sandbox, made inside the grader's own memory cgroup, with the
    memory limit plus slack as its limit. The kernel charges to it everything the sandbox's
    processes put in memory, also what no process maps and so neither RLIMIT_DATA nor the PSS
    watchdog sees: files in the disk quota's tmpfs, memfd files, SysV shared memory (checked: a
    cell holding 600 MiB of memfd files under a 200 MiB limit went unnoticed without it). At the
    limit the kernel drops page cache, then kills a process of the sandbox (SIGKILL: that cell
    or request crashes, with the memory hint). cgroup v1's memory hierarchy or a v2 one that
    delegates the memory controller; without either ``available`` is False and the watchdog
    (which adds the quota's use to PSS) is what bounds memory."""

    V1 = Path("/sys/fs/cgroup/memory")
    V2 = Path("/sys/fs/cgroup")

    def __init__(self, limit: int):
        self.path: Path | None = None
        if limit <= 0:
            return
        for base, knob in self._bases():
            _ProcessCap._remove_stale(base)
            path = base / f"mnistkit-{os.getpid()}-{next(_cgroup_serial)}"
            try:
                path.mkdir()
                (path / knob).write_text(str(int(limit)))
            except OSError:
                _ProcessCap._rmdir(path)
                continue
            self.path = path
            return

    @classmethod
    def _bases(cls) -> list[tuple[Path, str]]:
        """(the grader's own memory cgroup, the limit's file name) where a child can be made."""
        found = []
        try:
            lines = Path("/proc/self/cgroup").read_text().splitlines()
        except OSError:
            return found
        for line in lines:
            _, controllers, own = line.split(":", 2)
            if "memory" in controllers.split(","):
                found.append((cls.V1 / own.lstrip("/"), "memory.limit_in_bytes"))
            elif controllers == "" and (cls.V2 / "cgroup.controllers").is_file():
                found.append((cls.V2 / own.lstrip("/"), "memory.max"))
        usable = []
        for base, knob in found:
            if not (base / "cgroup.procs").is_file() or not os.access(base, os.W_OK):
                continue
            if knob == "memory.max":
                try:
                    if "memory" not in (base / "cgroup.subtree_control").read_text().split():
                        continue
                except OSError:
                    continue
            usable.append((base, knob))
        return usable

    @classmethod
    def supported(cls) -> bool:
        """Whether this machine lets the grader make a memory cgroup (nothing is created)."""
        return bool(cls._bases())

    @property
    def available(self) -> bool:
        return self.path is not None

    def join(self) -> None:
        self.add(os.getpid())

    add = _ProcessCap.add

    def peak_bytes(self) -> int | None:
        """The most memory the sandbox held at once (the cgroup's own counter)."""
        for name in ("memory.max_usage_in_bytes", "memory.peak"):   # v1, v2
            try:
                return int((self.path / name).read_text().split()[0])
            except (OSError, ValueError, IndexError, TypeError):
                continue
        return None

    def oom_kills(self) -> int:
        """How many of the sandbox's processes the kernel killed at the limit (the grader then
        stops the whole sandbox: a notebook that lost a process is not graded on)."""
        if self.path is None:
            return 0
        for name in ("memory.events", "memory.oom_control"):   # v2, v1
            try:
                text = (self.path / name).read_text()
            except OSError:
                continue
            for line in text.splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and value.strip().isdigit():
                    return int(value)
        return 0

    def remove(self) -> None:
        if self.path is not None and _ProcessCap._rmdir(self.path):
            self.path = None


class _CpuCap:
    """A cpu cgroup around one sandbox: every grading gets the same weight (cgroup v2
    ``cpu.weight`` 100, v1 ``cpu.shares`` 1024) and a quota of ``Limits.cpu_cores`` cores
    (``cpu.max`` / ``cpu.cfs_quota_us`` over a 100 ms period). Without it a submission that
    starts a dozen busy processes, each in a session of its own, takes the machine's cores from
    its classmates graded beside it: the scheduler shares per process, not per grading (issue
    19 measured a neighbour's grading at 109 s instead of 39 s). The quota bounds what one
    grading can take, the equal weight shares what is left under contention.
    Made inside the grader's own cpu cgroup, like ``_MemoryCap``: a delegated cgroup v2 subtree
    works, and a cpuacct co-mounted with cpu (``bench --grading``'s meter) still counts the
    sandbox. Needs that cgroup writable (v1's ``cpu`` hierarchy, or v2 delegating ``cpu``);
    without it ``available`` is False and ``mnistkit doctor`` says so; grading goes on."""

    CGROUP = Path("/sys/fs/cgroup")
    V1_MOUNTS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")
    PERIOD_US = 100_000

    @classmethod
    def _bases(cls) -> list[Path]:
        """The grader's own cpu cgroup, in each hierarchy that has the cpu controller."""
        found = []
        try:
            lines = Path("/proc/self/cgroup").read_text().splitlines()
        except OSError:
            return found
        for line in lines:
            _, controllers, own = line.split(":", 2)
            if "cpu" in controllers.split(","):
                for mount in cls.V1_MOUNTS:
                    if (cls.CGROUP / mount / "cpu.shares").is_file():
                        found.append(cls.CGROUP / mount / own.lstrip("/"))
                        break
            elif controllers == "" and (cls.CGROUP / "cgroup.controllers").is_file():
                found.append(cls.CGROUP / own.lstrip("/"))
        return [base for base in found if cls._usable(base)]

    def __init__(self, cores: float):
        self.path: Path | None = None
        for root in self._bases():
            _ProcessCap._remove_stale(root)
            path = root / f"mnistkit-{os.getpid()}-{next(_cgroup_serial)}"
            try:
                path.mkdir()
                self._configure(path, cores)
            except OSError:
                _ProcessCap._rmdir(path)
                continue
            self.path = path
            return

    @classmethod
    def _configure(cls, path: Path, cores: float) -> None:
        quota = int(cores * cls.PERIOD_US) if cores > 0 else None
        if (path / "cpu.max").exists():   # cgroup v2
            (path / "cpu.weight").write_text("100")
            (path / "cpu.max").write_text(f"{quota if quota else 'max'} {cls.PERIOD_US}")
        else:
            (path / "cpu.shares").write_text("1024")
            (path / "cpu.cfs_period_us").write_text(str(cls.PERIOD_US))
            (path / "cpu.cfs_quota_us").write_text(str(quota if quota else -1))

    @staticmethod
    def _usable(root: Path) -> bool:
        if not (root / "cgroup.procs").is_file() or not os.access(root, os.W_OK):
            return False
        if (root / "cpu.shares").is_file():   # cgroup v1's cpu hierarchy
            return True
        try:   # cgroup v2: the root must hand the cpu controller down to its children
            return "cpu" in (root / "cgroup.subtree_control").read_text().split()
        except OSError:
            return False

    @classmethod
    def supported(cls) -> bool:
        """Whether this machine lets the grader make a cpu cgroup (nothing is created)."""
        return bool(cls._bases())

    @property
    def available(self) -> bool:
        return self.path is not None

    def quota_cores(self) -> float | None:
        """The quota this cgroup has, read back from the kernel (None: none, or no cgroup)."""
        if self.path is None:
            return None
        try:
            if (self.path / "cpu.max").exists():
                quota, period = (self.path / "cpu.max").read_text().split()
            else:
                quota = (self.path / "cpu.cfs_quota_us").read_text().strip()
                period = (self.path / "cpu.cfs_period_us").read_text().strip()
            return None if quota in ("max", "-1") else int(quota) / int(period)
        except (OSError, ValueError):
            return None

    def join(self) -> None:
        self.add(os.getpid())

    add = _ProcessCap.add

    def remove(self) -> None:
        if self.path is not None and _ProcessCap._rmdir(self.path):
            self.path = None


class _Died(Exception):
    """The sandbox process is gone (or was killed); ``str`` says why, for feedback."""


class _Hung(Exception):
    """No answer within the limit plus grace; the sandbox has been killed."""


def _gib(n: int) -> str:
    return f"{n / (1 << 30):g} GiB" if n >= 1 << 30 else f"{n / (1 << 20):g} MiB"


def _describe_exit(code: int | None, limits: Limits) -> str:
    if code is None:
        return "the notebook process died"
    if code > 128:
        number = code - 128
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        hint = {signal.SIGKILL: f", memory limit {_gib(limits.memory_bytes)}?",
                signal.SIGSEGV: ", a segmentation fault",
                signal.SIGXFSZ: f", a file over {_gib(limits.file_bytes)}?"}.get(number, "")
        return f"the notebook process died (exit code {code}: {name}{hint})"
    if code < 0:
        return f"the notebook process died (killed by signal {-code})"
    return f"the notebook process died (exit code {code})"


def _tree_pss(root_pid: int) -> int:
    """Total proportional set size (bytes) of ``root_pid`` and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
            ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        total += pss(pid)
    return total


def pss(pid: int) -> int:
    """One process's proportional set size in bytes (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def data_view(data_dir: Path) -> list[str]:
    """bwrap arguments for the sandbox's view of the data folder: only the datasets the
    notebooks use (mnistkit.data.SANDBOX_VIEW), read-only, and never a test label: what holds
    MNIST test images (mnist_png, mnist_sample's valid/ and labels.csv) is replaced by its
    stand-in made of training images, or hidden (empty) when the stand-in is missing."""
    from mnistkit.data import SANDBOX_VIEW
    args = ["--dir", DATA]
    for name, (standin, parts) in SANDBOX_VIEW.items():
        real = data_dir / name
        if not real.is_dir():
            continue
        args += ["--ro-bind", str(real), f"{DATA}/{name}"]
        for part in parts:
            target = f"{DATA}/{name}/{part}".rstrip("/")
            source = data_dir / standin / part if part else data_dir / standin
            hidden = real / part if part else real
            if source.exists() and source.is_dir() == hidden.is_dir():
                args += ["--ro-bind", str(source), target]
            elif hidden.is_dir():
                args += ["--tmpfs", target, "--remount-ro", target]
            elif hidden.exists():
                args += ["--ro-bind", "/dev/null", target]
        if (data_dir / standin).is_dir():    # the stand-in's own name: an empty folder
            args += ["--dir", f"{DATA}/{standin}"]
    return args


def bwrap_base() -> list[str]:
    """bubblewrap's isolation, the same for a cold sandbox and the warm start's fork server.
    /proc/sys read-only: the sandbox's uid is the grading account's (root's, when grading runs
    as root), and the kernel lets that uid write most sysctls without any capability (seen:
    fs.file-max written from inside), machine-wide, for every later grading; bubblewrap's own
    cover of /proc/sys was not there (tests/test_sandbox_channels.py checks)."""
    return [BWRAP, "--unshare-all", "--unshare-user", "--disable-userns",
            "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
            "--die-with-parent", "--new-session", "--clearenv",
            "--dev", "/dev", "--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys"] + gpu_args()


def gpu_devices() -> list[str]:
    """NVIDIA's device nodes on this machine (none: no GPU, nothing bound)."""
    import glob
    return sorted(glob.glob("/dev/nvidia*") + glob.glob("/dev/nvidia-caps/*"))


def gpu_args() -> list[str]:
    """The GPU's device nodes, bound into the sandbox so that a student's model can train on it
    (a Dask worker with a GPU resource gets a4's gradings). Device nodes store nothing, so the
    disk audit lets them through; the driver's libraries are under /usr, already in the view.
    Not tried on a GPU machine here (none was lent): see README."""
    args = []
    for node in gpu_devices():
        args += ["--dev-bind", node, node]
    return args


def view_args(data_dir: Path | None) -> list[str]:
    """The read-only view of the machine: /usr, a few files of /etc, the Python install and the
    venv (editable installs blanked), the data view, runner.py and its helpers."""
    prefix, base = Path(sys.prefix), Path(sys.base_prefix)
    cmd = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "lib", "lib64", "sbin"):
        target = Path("/") / name
        if target.is_symlink():
            cmd += ["--symlink", os.readlink(target), str(target)]
        elif target.is_dir():
            cmd += ["--ro-bind", str(target), str(target)]
    for name in ETC:
        if (Path("/etc") / name).exists():
            cmd += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    cmd += ["--ro-bind", str(base), str(base)]
    if prefix != base:
        cmd += ["--ro-bind", str(prefix), str(prefix)]
    # Editable installs (mnistkit's own) point into the repository: blank their hooks.
    for hook in prefix.glob("lib/python*/site-packages/__editable__*"):
        if hook.is_file():
            cmd += ["--ro-bind", "/dev/null", str(hook)]
    if data_dir is not None:
        cmd += data_view(data_dir)
    for tool in TOOL_FILES:
        cmd += ["--ro-bind", str(GRADING / tool), f"{TOOLS}/{tool}"]
    return cmd


def env_args(limits: Limits) -> list[str]:
    prefix = Path(sys.prefix)
    threads = str(limits.threads)
    env = dict(PATH=f"{prefix}/bin:/usr/local/bin:/usr/bin:/bin", HOME=HOME,
               FASTAI_HOME=f"{HOME}/.fastai", MPLBACKEND="Agg", PYTHONHASHSEED="0",
               PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS=threads,
               MKL_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads,
               # idle OpenMP threads sleep: spinning ones starve a machine grading in parallel
               OMP_WAIT_POLICY="PASSIVE",
               LANG="C.UTF-8", TMPDIR="/tmp", MPLCONFIGDIR=f"{HOME}/.config/matplotlib",
               # what nbgrader's own autograde sets: a notebook's cells that skip work when
               # graded (a3's ResNet-18 epoch) skip it under both graders alike
               NBGRADER_EXECUTION="autograde")
    args = []
    for key, value in env.items():
        args += ["--setenv", key, value]
    return args


def read_only_else(cmd: list[str], writable: set[str]) -> list[str]:
    """The disk audit of a bubblewrap command: ``writable`` are the only writable places. Every
    other tmpfs (e.g. one that hides a data folder) is remounted read-only; any other writable
    bind is a kit bug, refused here rather than handed to a student."""
    extra = []
    devices = set(gpu_devices())
    for i, arg in enumerate(cmd):
        if arg in ("--dev-bind", "--dev-bind-try") and cmd[i + 1] in devices:
            continue
        if arg in ("--bind", "--bind-try", "--dev-bind", "--dev-bind-try") \
                and cmd[i + 1] not in writable:
            raise RuntimeError(f"sandbox command binds {cmd[i + 1]} writable (kit bug)")
        if arg in ("--tmpfs", "--mqueue") and cmd[i + 1] not in writable:
            extra += ["--remount-ro", cmd[i + 1]]
    return extra


class _Box:
    """One sandboxed runner process and its three pipes."""

    def __init__(self, scratch: Path, limits: Limits, data_dir: Path | None, warm=None):
        """``scratch``: the submission's scratch folder on the host, with ``home/`` (prepared,
        copied into the quota at each start) and ``quota/`` (the tmpfs's mount point).
        ``warm``: a ``zygote.ForkClient``; then the runner is a fork of the warm start's server
        (``scratch`` lies in its inbox) instead of a fresh process under bubblewrap."""
        self.limits = limits
        self.quota = scratch / "quota"
        # where the grader reads the quota's use, through the sandbox's own mount namespace
        self.quota_view = HOME if warm is not None else str(self.quota)
        self.serial = 0                 # request ids: answers name the request they answer
        self.output = bytearray()
        self.last_watch = 0.0
        self.peak_bytes: int | None = None   # the memory cgroup's peak, read when closed
        self.cap = _ProcessCap(limits.processes)
        self.memcap = _MemoryCap(limits.memory_bytes + limits.memory_slack_bytes)
        self.cpucap = _CpuCap(limits.cpu_cores)
        self.cpu_quota = self.cpucap.quota_cores()   # read back while the cgroup exists
        caps = [cap for cap in (self.cap, self.memcap, self.cpucap) if cap.available]
        if warm is not None:
            try:
                self.proc, self.answer_fd, self.output_fd = warm.spawn(
                    scratch.name, limits, caps, limits.start_seconds)
            except BaseException:
                self._remove_caps()
                raise
            os.set_blocking(self.output_fd, False)
            self.request_fd = self.proc.stdin.fileno()
            os.set_blocking(self.request_fd, False)
            return
        answer_r, answer_w = os.pipe()
        output_r, output_w = os.pipe()
        self.answer_fd, self.output_fd = answer_r, output_r
        os.set_blocking(output_r, False)
        cmd = self._command(scratch, data_dir, answer_w)

        def join_caps():   # in the sandbox's first process, before exec
            for cap in caps:
                cap.join()
        try:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=output_w, stderr=output_w,
                pass_fds=(answer_w,), start_new_session=True, env={"PATH": "/usr/bin:/bin"},
                preexec_fn=join_caps if caps else None)
        except BaseException:
            self._remove_caps()
            raise
        finally:
            os.close(answer_w)
            os.close(output_w)
        self.request_fd = self.proc.stdin.fileno()
        os.set_blocking(self.request_fd, False)

    def _command(self, scratch: Path, data_dir: Path | None, answer_w: int) -> list[str]:
        lim = self.limits
        # Mount points first: binds below may live under /tmp (a CI clone's venv does) and must
        # land on top of the fresh /tmp, not be hidden by it.
        cmd = bwrap_base() + ["--bind", f"{self.quota}/tmp", "/tmp",
                              "--bind", f"{self.quota}/shm", "/dev/shm"]
        cmd += view_args(data_dir) + ["--bind", f"{self.quota}/home", HOME, "--chdir", HOME]
        writable = {f"{self.quota}/{part}" for part in ("home", "tmp", "shm")}
        cmd += read_only_else(cmd, writable) + ["--remount-ro", "/dev", "--remount-ro", "/"]
        cmd += env_args(lim)
        cmd += [f"{Path(sys.prefix)}/bin/python", "-u", f"{TOOLS}/runner.py",
                "--wire", f"{TOOLS}/wire.py",
                "--answer-fd", str(answer_w), "--memory", str(lim.memory_bytes),
                "--fsize", str(lim.file_bytes)]
        for module in lim.preload:
            cmd += ["--preload", module]
        # Mounting needs CAP_SYS_ADMIN over the mount namespace: root has it; any other account
        # (an instructor's JupyterHub server) gets it in a user namespace of its own, mapped to
        # itself as uid 0 there (mount(8) insists on uid 0), with bubblewrap's nested inside.
        as_root = os.geteuid() == 0
        quota = [UNSHARE] + ([] if as_root else ["--user", "--map-root-user"]) + [
                 "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
                 QUOTA_SCRIPT, "mnistkit-quota", str(self.quota), str(int(lim.disk_bytes)),
                 str(int(lim.disk_files)), str(scratch / "home")]
        return quota + cmd

    # ---- talking to it --------------------------------------------------------------------
    def _drain_output(self) -> None:
        while True:
            try:
                chunk = os.read(self.output_fd, 1 << 16)
            except BlockingIOError:
                return
            except OSError:
                return
            if not chunk:
                return
            self.output += chunk
            if len(self.output) > 2 * self.limits.output_bytes:
                del self.output[:-self.limits.output_bytes]

    def take_output(self) -> str:
        self._drain_output()
        text = bytes(self.output[-self.limits.output_bytes:]).decode("utf-8", "replace")
        self.output.clear()
        return text

    def _died(self) -> _Died:
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            code = None
        self.kill()
        if self.memcap.oom_kills():
            return _Died(self._memory_text())
        return _Died(_describe_exit(code, self.limits))

    def _memory_text(self) -> str:
        return (f"the notebook process was stopped: it used more than the memory limit of "
                f"{_gib(self.limits.memory_bytes)}")

    def disk_use(self) -> tuple[int, int, int, int] | None:
        """(bytes used, bytes free, files used, files free) of the disk quota, read by the grader
        through the sandbox's mount namespace; None when the sandbox is gone."""
        try:
            st = os.statvfs(f"/proc/{self.proc.pid}/root{self.quota_view}")
        except OSError:
            return None
        if st.f_files != int(self.limits.disk_files):
            return None   # not the quota's tmpfs (the sandbox is exiting): nothing to measure
        return ((st.f_blocks - st.f_bfree) * st.f_frsize, st.f_bavail * st.f_frsize,
                st.f_files - st.f_ffree, st.f_favail)

    def disk_full(self) -> bool:
        """Whether the quota is (nearly) used up: a cell or request that leaves it so is charged."""
        use = self.disk_use()
        if use is None:
            return False
        margin = max(256 << 10, int(self.limits.disk_bytes) // 256)
        return use[1] < margin or use[3] < 8

    # The watchdog's pace: the memory cgroup's counters cost a file read, the /proc scan (the
    # fallback without one) ~17 ms with fastai loaded, so it runs every 2 s, never per request.
    WATCH_SECONDS = 0.25
    SCAN_SECONDS = 2.0

    def _watch(self) -> None:
        """Called while waiting: the memory watchdog. With a memory cgroup the kernel enforces
        the limit (the quota's tmpfs pages are charged to it) and only its OOM count is read;
        without one, the sandbox's PSS plus the quota's use is compared with the limit."""
        now = time.monotonic()
        pace = self.WATCH_SECONDS if self.memcap.available else self.SCAN_SECONDS
        if now - self.last_watch < pace:
            return
        self.last_watch = now
        if self.memcap.available:
            if self.memcap.oom_kills():
                self.kill()
                raise _Died(self._memory_text())
            return
        limit = self.limits.memory_bytes + self.limits.memory_slack_bytes
        use = self.disk_use()
        if _tree_pss(self.proc.pid) + (use[0] if use else 0) > limit:
            self.kill()
            raise _Died(self._memory_text())

    def exchange(self, request: dict | None, seconds: float) -> dict:
        """Send ``request`` (None: just wait for the ready frame); the answer as a dict.
        Raises _Died, _Hung, or SubmissionProblem for an answer that is not well-formed."""
        deadline = time.monotonic() + seconds
        out = memoryview(b"")   # a view: each write moves its start, no copy of the rest
        expected = None                 # the ready frame carries no id
        if request is not None:
            self.serial += 1
            expected = request["id"] = self.serial
            wire_audit.record(request)
            payload = wire.encode(request)
            out = memoryview(struct.pack(">I", len(payload)) + payload)
        header, body, need = b"", [], 4
        while True:
            now = time.monotonic()
            if now >= deadline:
                self.kill()
                raise _Hung()
            self._watch()
            readers = [self.answer_fd, self.output_fd]
            writers = [self.request_fd] if len(out) else []
            try:
                ready_r, ready_w, _ = select.select(readers, writers, [], min(0.25, deadline - now))
            except InterruptedError:
                continue
            if self.output_fd in ready_r:
                self._drain_output()
            if ready_w:
                try:
                    sent = os.write(self.request_fd, out[:1 << 16])
                    out = out[sent:]
                except BlockingIOError:
                    pass
                except OSError as exc:
                    if exc.errno in (errno.EPIPE, errno.EBADF):
                        raise self._died() from None
                    raise
            if self.answer_fd in ready_r:
                try:
                    chunk = os.read(self.answer_fd, min(need, 1 << 20))
                except OSError:
                    chunk = b""
                if not chunk:
                    raise self._died()
                if len(header) < 4:
                    header += chunk
                    need = 4 - len(header)
                    if len(header) == 4:
                        (need,) = struct.unpack(">I", header)
                        if need > self.limits.answer_bytes:
                            self.kill()
                            raise _Died(f"the notebook sent an answer larger than "
                                        f"{_gib(self.limits.answer_bytes)}")
                else:
                    body.append(chunk)      # joined once: `+=` on bytes is quadratic
                    need -= len(chunk)
                if len(header) == 4 and need == 0:
                    answer = self._decode(b"".join(body))
                    if answer.get("id") == expected:
                        return answer
                    header, body, need = b"", [], 4   # a stale frame (an earlier request's)

    def _decode(self, body: bytes) -> dict:
        """The answer in one complete frame. Decoding is bounded (``wire.decode``: sizes, node
        counts, the arrays' total at most ``answer_bytes``). A frame that does not decode fails
        this request only: frames carry the request's id, so the conversation stays in step
        and the sandbox is not restarted (a restart replays the whole notebook)."""
        try:
            answer = wire.decode(body, max_bytes=self.limits.answer_bytes)
        except Exception as exc:  # anything malformed is the submission's doing
            raise SubmissionProblem(f"your notebook sent an answer the grader cannot read "
                                    f"({str(exc)[:200]})") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("status"), str):
            raise SubmissionProblem("your notebook sent an answer the grader cannot read")
        return answer

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def _remove_caps(self) -> None:
        for cap in (self.cap, self.memcap, self.cpucap):
            cap.remove()

    def close(self) -> None:
        self.kill()
        self.peak_bytes = self.memcap.peak_bytes() if self.memcap.available else None
        self._remove_caps()
        if hasattr(self.proc, "status"):   # a warm child's status socket
            self.proc.close()
        for fd in (self.answer_fd, self.output_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self.proc.stdin.close()
        except OSError:
            pass


def _default_data_dir(data_dir: Path | None) -> Path | None:
    """The data folder the sandbox sees: the one given, else the kit's (None when absent)."""
    if data_dir is None:
        from mnistkit.data import fastai_data_dir
        try:
            data_dir = fastai_data_dir()
        except Exception:
            data_dir = None
    if data_dir is not None and not Path(data_dir).is_dir():
        data_dir = None
    return Path(data_dir).resolve() if data_dir is not None else None


def _message(answer: dict, default: str) -> str:
    message = answer.get("message")
    return message[:1000] if isinstance(message, str) and message else default


class SandboxStudent(Student):
    """The submission under grade, run in a bubblewrap sandbox (see the module docstring).

    ``cells``: one CellRun per code cell (status ok | error | timeout | crashed | skipped |
    left out: ``left_out.cells_left_out``).
    ``outputs``: cell index -> the tail of what that cell printed (for diagnostics).
    ``restarts``: how many times the sandbox was restarted; ``start_seconds``: the first start.
    """

    def __init__(self, notebook_path: Path, *, limits: Limits = Limits(),
                 data_dir: Path | None = None):
        self.limits = limits
        self.notebook_path = Path(notebook_path)
        self.cells: list[CellRun] = []
        self.outputs: dict[int, str] = {}
        self.restarts = 0
        self.start_seconds = 0.0
        self._sources = code_cells(self.notebook_path)
        self._left_out = cells_left_out(self.notebook_path)   # never run, nor replayed
        self._skip: set[int] = set(self._left_out)
        self._box: _Box | None = None
        self._boxes: list[_Box] = []     # every start, for ``resources``
        self.longest_request = 0.0       # seconds: a4's is the student's model training
        self._broken: str | None = None
        self._deadline = time.monotonic() + limits.total_seconds
        # The notebook's budget (Limits.notebook_seconds): what its cells took on their first
        # run. Cells past it are not run; ``not_reached`` are their indices, ``budget_reason``
        # says why (the plugin scores the exercises whose answer cells they are 0 with it).
        self.notebook_seconds_used = 0.0
        self.not_reached: set[int] = set()
        self.budget_reason: str | None = None
        data_dir = _default_data_dir(data_dir)
        # The warm start, when this grader was handed a fork server (mnistkit.grading.zygote):
        # the scratch folder then lies in its inbox, where the child copies its home from.
        from mnistkit.grading.zygote import ForkClient
        self._warm = ForkClient.inherited(limits, data_dir)
        inbox = str(self._warm.inbox) if self._warm is not None else None
        self._scratch = Path(tempfile.mkdtemp(prefix="mnistkit-sandbox-", dir=inbox))
        # Removed even if nobody calls close() (the sandbox itself dies with this process).
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self._scratch), True)
        try:
            self._data_dir = self._prepare_scratch(data_dir)
            self._run_notebook()
        except BaseException:
            self.close()
            raise

    # ---- setup ------------------------------------------------------------------------------
    def _prepare_scratch(self, data_dir: Path | None) -> Path | None:
        from mnistkit.data import FASTAI_DEFAULTS
        home = self._scratch / "home"
        home.mkdir()
        (self._scratch / "quota").mkdir()   # the disk quota's mount point (see _Box)
        folder = self.notebook_path.resolve().parent
        # The copy goes into the disk quota at each start: at most half of it, so that a big
        # submission folder never keeps the sandbox from starting.
        budget = min(self.limits.copy_bytes, self.limits.disk_bytes // 2)
        entries = self.limits.disk_files // 2
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder)
            if any(part.startswith(".") for part in rel.parts) or path.is_symlink():
                continue  # no hidden folders (.ipynb_checkpoints, .git), never follow links
            entries -= 1
            if entries < 0:
                break
            if path.is_dir():
                (home / rel).mkdir(parents=True, exist_ok=True)
            elif path.is_file():
                budget -= path.stat().st_size
                if budget < 0:
                    break
                (home / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, home / rel)
        fastai_home = home / ".fastai"
        fastai_home.mkdir(exist_ok=True)
        lines = ["[DEFAULT]", f"data = {DATA}"]
        lines += [f"{key} = {HOME}/.fastai/{value}"
                  for key, value in FASTAI_DEFAULTS.items() if key != "data"]
        (fastai_home / "config.ini").write_text("\n".join(lines) + "\n")
        for key in ("archive", "storage", "model"):
            (fastai_home / FASTAI_DEFAULTS[key]).mkdir(exist_ok=True)
        # matplotlib builds a font list on first import (seconds); the grader's is valid inside
        # too (same font paths), so the student starts with a copy of it.
        mpl_cache = Path(os.environ.get("MPLCONFIGDIR") or Path.home() / ".cache" / "matplotlib")
        target = home / ".config" / "matplotlib"
        target.mkdir(parents=True, exist_ok=True)
        for font_list in mpl_cache.glob("fontlist-v*.json"):
            if font_list.is_file() and not font_list.is_symlink():
                shutil.copyfile(font_list, target / font_list.name)
        # bwrap maps the sandbox's uid to ours (root): ownership is already right.
        self._home = home
        return data_dir

    # ---- the sandbox's lifetime ---------------------------------------------------------------
    def _left(self) -> float:
        return self._deadline - time.monotonic()

    def _out_of_time(self) -> bool:
        if self._left() <= 0:
            self._give_up(f"grading your notebook took longer than the "
                          f"{self.limits.total_seconds / 60:g} minutes allowed in total")
            return True
        return False

    def _give_up(self, reason: str) -> None:
        if self._broken is None:
            self._broken = reason
        if self._box is not None:
            self._box.close()
            self._box = None

    def _start(self) -> None:
        """A fresh sandbox, ready for requests (cells not yet run)."""
        if self._box is not None:
            self._box.close()
            self._box = None
        start = time.monotonic()
        try:
            self._box = _Box(self._scratch, self.limits, self._data_dir, warm=self._warm)
            self._boxes.append(self._box)
            ready = self._box.exchange(None, min(self.limits.start_seconds, max(self._left(), 1)))
        except (_Died, _Hung, SubmissionProblem) as exc:
            output = self._box.take_output() if self._box is not None else ""
            if self._box is not None:
                self._box.close()
            self._box = None
            if self._warm is not None:   # the warm start failed before any student code ran:
                self._warm = None        # the grading goes on with cold sandboxes
                print(f"mnistkit: warm start failed ({exc or 'timeout'}: {output[-300:]}); "
                      "cold sandboxes from here", file=sys.stderr)
                return self._start()
            raise _Died(f"{START_FAILED} ({exc or 'timeout'}): {output[-500:]}") from None
        if ready.get("status") != "ready":
            self._drop_box()
            raise _Died(START_FAILED)
        self.start_seconds = self.start_seconds or time.monotonic() - start

    def _restart(self, upto: int) -> bool:
        """Restart and replay cells [0, upto) that are not skipped; False when out of restarts.
        A replayed cell that now kills the sandbox is skipped too and the restart repeated."""
        while True:
            if self._broken:
                return False
            if self.restarts >= self.limits.restarts:
                self._give_up(f"your notebook's process crashed or hung {self.restarts + 1} times; "
                              "the grader stopped asking it questions")
                return False
            if self._out_of_time():
                return False
            self.restarts += 1
            self._replaying = None
            try:
                self._start()
                for index in range(upto):
                    if index not in self._skip:
                        self._cell(index)
                        self._box.take_output()
                        if self._box.disk_full():   # replayed differently: charge it again
                            self._skip.add(index)
                            raise _Died("the disk quota is full")
                return True
            except (_Died, _Hung) as exc:
                if isinstance(exc, _Died) and str(exc).startswith(START_FAILED):
                    # out of total time is the notebook's doing; anything else the machine's
                    if not self._out_of_time():
                        self._give_up(str(exc))
                    return False
                if self._replaying is not None:
                    self._skip.add(self._replaying)
                self._drop_box()

    _replaying: int | None = None

    def _budget_left(self) -> float:
        return self.limits.notebook_seconds - self.notebook_seconds_used

    def _over_budget(self, index: int) -> str:
        """The reason the cells from ``index`` on are not run, naming the last cell that ran
        (in the words ``cell_places`` gives a student) so that they know where to cut."""
        if self.budget_reason is None:
            ran = [c.index for c in self.cells if c.index < index and c.status != LEFT_OUT]
            where = "the notebook's start"
            if ran:
                from mnistkit.cell_places import notebook_places
                places = notebook_places(self.notebook_path)
                if ran[-1] < len(places):
                    where = places[ran[-1]]
            self.budget_reason = (f"your notebook used its {self.limits.notebook_seconds:g} s; "
                                  f"the cells after {where} were not run")
        return self.budget_reason

    def _cell(self, index: int, timeout: float | None = None) -> dict:
        self._replaying = index
        source = self._sources[index][1]
        timeout = min(self.limits.cell_seconds if timeout is None else timeout,
                      max(self._left(), 0.001))
        answer = self._box.exchange(dict(op="cell", source=source, timeout=timeout),
                                    timeout + self.limits.grace_seconds)
        self._replaying = None
        return answer

    def _run_notebook(self) -> None:
        try:
            self._start()
        except _Died as exc:
            self._give_up(str(exc))
        for index, (grade_id, _) in enumerate(self._sources):
            if index in self._left_out:
                self.cells.append(CellRun(index, grade_id, LEFT_OUT, 0.0))
                continue
            if self._broken or self._out_of_time():
                self.cells.append(CellRun(index, grade_id, "skipped", 0.0, self._broken or ""))
                continue
            if self._budget_left() <= 0:   # the notebook's time is spent: the rest is not run
                self._skip.add(index)      # nor replayed by a restart
                self.not_reached.add(index)
                self.cells.append(CellRun(index, grade_id, "skipped", 0.0,
                                          self._over_budget(index)))
                continue
            if (self._box is None or not self._box.alive()) and not self._restart(index):
                self.cells.append(CellRun(index, grade_id, "skipped", 0.0, self._broken or ""))
                continue
            budget = self._budget_left()
            cut_by_budget = budget < self.limits.cell_seconds
            start = time.monotonic()
            try:
                answer = self._cell(index, min(self.limits.cell_seconds, budget))
            except _Hung:
                self._skip.add(index)
                self.outputs[index] = self._drop_box()
                self.cells.append(CellRun(index, grade_id, "timeout", time.monotonic() - start,
                                          self._stopped_text(index, cut_by_budget)))
                continue
            except _Died as exc:
                self._skip.add(index)
                self.outputs[index] = self._drop_box()
                self.cells.append(CellRun(index, grade_id, "crashed", time.monotonic() - start,
                                          f"your notebook's cell {index + 1}: {exc}"))
                continue
            except SubmissionProblem as exc:
                self._skip.add(index)
                self.outputs[index] = self._drop_box()
                self.cells.append(CellRun(index, grade_id, "error", time.monotonic() - start,
                                          str(exc)))
                continue
            finally:   # however it ended, its time was the notebook's
                self.notebook_seconds_used += time.monotonic() - start
            self.outputs[index] = self._box.take_output()
            status = answer.get("status")
            seconds = time.monotonic() - start
            if self._box.disk_full():
                self._skip.add(index)
                self._drop_box()
                self.cells.append(CellRun(index, grade_id, "error", seconds,
                                          self._disk_text(f"your notebook's cell {index + 1}")))
            elif status == "timeout":
                self.cells.append(CellRun(index, grade_id, "timeout", seconds,
                                          self._stopped_text(index, cut_by_budget)))
            elif status == "error":
                self.cells.append(CellRun(index, grade_id, "error", seconds,
                                          _message(answer, "error")))
            else:
                self.cells.append(CellRun(index, grade_id, "ok" if status == "ok" else "error",
                                          seconds, "" if status == "ok" else _message(answer, "")))

    def _drop_box(self) -> str:
        """Kill and forget the sandbox; returns the tail of its output."""
        if self._box is None:
            return ""
        output = self._box.take_output()
        self._box.close()
        self._box = None
        return output

    def _disk_text(self, what: str) -> str:
        lim = self.limits
        return (f"{what} filled the notebook's disk quota ({_gib(lim.disk_bytes)} or "
                f"{lim.disk_files:,} files and folders, home, /tmp and /dev/shm together): it "
                "counts as failed, and the notebook was restarted without what it wrote")

    def _stopped_text(self, index: int, cut_by_budget: bool) -> str:
        """Why a cell that ran out of time was stopped: its own limit, or (when the notebook's
        budget was the shorter) the budget, which makes it the first cell not reached."""
        if cut_by_budget:
            self.not_reached.add(index)
            return self._over_budget(index)
        return self._timeout_text(index)

    def _timeout_text(self, index: int) -> str:
        return (f"your notebook's cell {index + 1} ran longer than "
                f"{self.limits.cell_seconds:g} s and was stopped")

    # ---- requests -----------------------------------------------------------------------------
    def _request(self, request: dict, what: str, seconds: float | None = None) -> dict:
        if self._broken:
            raise SubmissionProblem(self._broken)
        if self._out_of_time():
            raise SubmissionProblem(self._broken)
        if self._box is None or not self._box.alive():
            self._drop_box()
            if not self._restart(len(self._sources)):
                raise SubmissionProblem(self._broken or "your notebook could not be restarted")
        limit = self.limits.request_seconds if seconds is None else seconds
        timeout = min(limit, max(self._left(), 0.001))
        request["timeout"] = timeout
        began = time.monotonic()
        try:
            answer = self._box.exchange(request, timeout + self.limits.grace_seconds)
        except _Hung:
            self._drop_box()
            raise StudentTimeout(f"{what} did not finish within {timeout:g} s "
                                 "(the notebook process was stopped)") from None
        except _Died as exc:
            self._drop_box()
            raise StudentCrashed(f"{exc} while running {what}") from None
        except SubmissionProblem:   # an answer that did not decode: this request fails, in step
            self._box.take_output()
            raise
        self.longest_request = max(self.longest_request, time.monotonic() - began)
        self._box.take_output()
        if self._box.disk_full():
            self._drop_box()
            raise StudentCodeError(self._disk_text(what))
        status = answer.get("status")
        if status == "timeout":
            raise StudentTimeout(f"{what} did not finish within {timeout:g} s")
        if status == "notdefined":
            raise NotDefined(str(request.get("name")))
        if status == "notplain":
            raise NotPlainData(_message(answer, f"{what} returned something that is not plain data"))
        if status == "error":
            raise StudentCodeError(_message(answer, f"{what} raised an error"))
        if status != "ok":
            raise SubmissionProblem(_message(answer, f"your notebook could not answer about {what}"))
        return answer

    def has(self, name: str) -> bool:
        value = self._request(dict(op="has", name=name), f"`{name}`").get("value")
        if not isinstance(value, bool):
            raise SubmissionProblem("your notebook sent an answer the grader cannot read")
        return value

    def get(self, name: str) -> Any:
        return self._request(dict(op="get", name=name), f"`{name}`").get("value")

    def call(self, name: str, *args, **kwargs) -> Any:
        return self._request(dict(op="call", name=name, args=list(args), kwargs=kwargs),
                             f"`{name}`").get("value")

    def run(self, code: str, **inputs) -> Any:
        return self._request(dict(op="run", code=code, inputs=inputs), "your code").get("value")

    def run_for(self, seconds: float, code: str, **inputs) -> Any:
        return self._request(dict(op="run", code=code, inputs=inputs), "your code",
                             seconds=seconds).get("value")

    def rebind(self, source: str) -> None:
        self._request(dict(op="rebind", source=source), "your answer")

    def resources(self) -> dict:
        """For the instructor's report: how the sandbox ran (warm or cold, restarts, the first
        start's seconds, the most memory its cgroup held at once, where one was available)."""
        peaks = [b.peak_bytes for b in self._boxes if b.peak_bytes]
        return dict(warm=self._warm is not None, restarts=self.restarts,
                    start_seconds=round(self.start_seconds, 2),
                    longest_request_seconds=round(self.longest_request, 2),
                    notebook_seconds=round(self.notebook_seconds_used, 2),
                    cpu_quota_cores=next((b.cpu_quota for b in self._boxes if b.cpu_quota),
                                         None),
                    peak_memory_mb=round(max(peaks) / 2**20) if peaks else None)

    def close(self) -> None:
        if self._box is not None:
            self._box.close()
            self._box = None
        self._broken = self._broken or "the grader has finished with this notebook"
        self._cleanup()
