"""The cgroups around one sandbox, and the PSS accounting the watchdog falls back on.

``ProcessCap`` (pids: fork and thread bombs), ``MemoryCap`` (memory: everything the sandbox puts
in memory, tmpfs pages of the disk quota, memfd files and SysV shared memory included) and
``CpuCap`` (cpu: equal weight, a quota of ``Limits.cpu_cores``): each made for one sandbox start,
joined by the sandbox's first process before it runs anything (cold: Popen's preexec_fn; warm:
``warm_launcher`` adds the child's host pid before it goes on), removed when it ends. Where the
machine has no writable cgroup, ``available`` is False and grading goes on (``mnistkit doctor``
says so). ``tree_pss``: a process tree's proportional set size, for a machine without a memory
cgroup.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

PIDS_ROOTS = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup"))
_cgroup_serial = iter(range(1 << 62))


class ProcessCap:
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


class MemoryCap:
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
            ProcessCap._remove_stale(base)
            path = base / f"mnistkit-{os.getpid()}-{next(_cgroup_serial)}"
            try:
                path.mkdir()
                (path / knob).write_text(str(int(limit)))
            except OSError:
                ProcessCap._rmdir(path)
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

    add = ProcessCap.add

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
        if self.path is not None and ProcessCap._rmdir(self.path):
            self.path = None


class CpuCap:
    """A cpu cgroup around one sandbox: every grading gets the same weight (cgroup v2
    ``cpu.weight`` 100, v1 ``cpu.shares`` 1024) and a quota of ``Limits.cpu_cores`` cores
    (``cpu.max`` / ``cpu.cfs_quota_us`` over a 100 ms period). Without it a submission that
    starts a dozen busy processes, each in a session of its own, takes the machine's cores from
    its classmates graded beside it: the scheduler shares per process, not per grading (issue
    19 measured a neighbour's grading at 109 s instead of 39 s). The quota bounds what one
    grading can take, the equal weight shares what is left under contention.
    Made inside the grader's own cpu cgroup, like ``MemoryCap``: a delegated cgroup v2 subtree
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
            ProcessCap._remove_stale(root)
            path = root / f"mnistkit-{os.getpid()}-{next(_cgroup_serial)}"
            try:
                path.mkdir()
                self._configure(path, cores)
            except OSError:
                ProcessCap._rmdir(path)
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

    add = ProcessCap.add

    def remove(self) -> None:
        if self.path is not None and ProcessCap._rmdir(self.path):
            self.path = None



def tree_pss(root_pid: int) -> int:
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

