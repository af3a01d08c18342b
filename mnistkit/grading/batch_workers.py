"""The batch's workers: how many (``Capacity``: cores and memory, a container's limits
included), how a worker process starts (signals, its share of threads, dying with the batch) and
how it leaves, and how a batch stops them all (``_stop``) without leaving a grader or a sandbox
behind.

Apart from the batch (``batch.py``), which decides what to grade and records what comes back:
this module is only about processes and signals.
"""
from __future__ import annotations

import concurrent.futures as cf
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# Peak memory of one grading (PSS of the grader, the sandbox and the student's code), measured
# at 1.25-1.8 GiB on the four assignments; the default worker count keeps this much per worker.
PER_GRADING_BYTES = 2 << 30
STOP_SECONDS = 20.0   # how long stopped workers get to end their graders before they are killed


def _cgroup_dir() -> Path | None:
    """This process's cgroup v2 folder (a container's or a systemd slice's limits live there)."""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return Path("/sys/fs/cgroup") / line[3:].lstrip("/")
    except OSError:
        pass
    return None


def _cgroup_value(name: str) -> list[str] | None:
    folder = _cgroup_dir()
    try:
        return (folder / name).read_text().split() if folder else None
    except OSError:
        return None


@dataclass(frozen=True)
class Capacity:
    """What this machine (or container) has for grading: cores and available memory.

    Read from the OS rather than psutil, which reports neither a container's CPU quota nor its
    memory limit (cgroup v2 ``cpu.max``, ``memory.max``)."""
    cores: int
    available_bytes: int | None   # None: unknown (then only the cores count)

    @classmethod
    def measure(cls) -> "Capacity":
        try:
            cores = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cores = os.cpu_count() or 1
        quota = _cgroup_value("cpu.max")
        if quota and quota[0] != "max":
            cores = min(cores, max(1, math.ceil(int(quota[0]) / int(quota[1]))))
        return cls(cores=cores, available_bytes=cls._available_memory())

    @staticmethod
    def _available_memory() -> int | None:
        available = None
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
        except (OSError, ValueError):
            try:
                available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
            except (AttributeError, ValueError, OSError):
                available = None
        limit, used = _cgroup_value("memory.max"), _cgroup_value("memory.current")
        if limit and used and limit[0] != "max":
            room = max(0, int(limit[0]) - int(used[0]))
            available = room if available is None else min(available, room)
        return available

    def jobs(self) -> int:
        """As many workers as there are cores and memory for (PER_GRADING_BYTES each), >= 1."""
        fit = self.cores if self.available_bytes is None else \
            min(self.cores, self.available_bytes // PER_GRADING_BYTES)
        return max(1, fit)

    def line(self, jobs: int, asked: bool = False) -> str:
        """One line saying the choice: '2 workers (2 cores, 20.1 GiB available, ~2 GiB per
        grading)'."""
        memory = "memory unknown" if self.available_bytes is None else \
            f"{self.available_bytes / (1 << 30):.1f} GiB available"
        why = f"{self.cores} core{'s' * (self.cores != 1)}, {memory}, " \
              f"~{PER_GRADING_BYTES / (1 << 30):g} GiB per grading"
        line = f"{jobs} worker{'s' * (jobs != 1)} ({'asked for; ' if asked else ''}{why})"
        if asked and jobs > self.jobs():
            line += f"; more than the {self.jobs()} that fit, gradings may run short of memory"
        return line


def default_jobs() -> int:
    """The worker count ``grade-class`` uses unless told (``Capacity.jobs``)."""
    return Capacity.measure().jobs()


# Set in the kit's worker processes: whether this is one, and whether a grading is under way.
_WORKER = {"started": False, "grading": False}
LEAVE_SECONDS = 10     # the most a stopped worker spends closing its warm servers


def _leave(code: int) -> None:
    """End this worker at once: its warm servers closed (their processes and inboxes) and then
    ``os._exit``. Not an interpreter shutdown: multiprocessing's exit handlers join the queue
    threads that talk to a batch that may be gone, and a worker once hung there for an hour
    (issue 22). Nothing here takes a lock a signal could have interrupted: it runs after the
    grading unwound, or in a worker idle between gradings. SIGALRM's default action ends the
    worker if closing takes longer than ``LEAVE_SECONDS``."""
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(LEAVE_SECONDS)
    try:
        from mnistkit.grading import warm_grader, zygote
        for pool in (warm_grader._servers, zygote._servers):
            for servers in list(pool.idle.values()):
                for server in list(servers):
                    server.close()
    finally:
        os._exit(code)


def _die_with_parent(signum: int) -> None:
    """PR_SET_PDEATHSIG: the kernel sends ``signum`` to this process when its parent dies, so a
    batch killed outright (SIGKILL, an OOM kill) does not leave its workers running."""
    import ctypes
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signum, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _worker_started(threads: int = 0) -> None:
    """Initializer of the kit's own worker processes. They share the terminal's process group,
    so a Ctrl-C reaches them too: they leave it to the batch (which stops them with SIGTERM,
    in turn, after cancelling what has not started). SIGTERM raises SystemExit, so a grading in
    progress kills its grader process group on the way out (``run._run``) instead of leaving it
    behind. A Python-level handler, not SIG_IGN: an ignored signal would stay ignored in the
    grader and the sandbox started from here, a handled one is reset by exec."""
    signal.signal(signal.SIGINT, lambda signum, frame: None)
    signal.signal(signal.SIGTERM, _exit_on_term)
    signal.signal(signal.SIGHUP, _exit_on_term)
    _WORKER["started"] = True
    _die_with_parent(signal.SIGTERM)
    # Each worker its share of the cores, in its sandboxes and its grader (unless the course set
    # MNISTKIT_LIMIT_THREADS): two workers of two threads each on two cores fight over them.
    if threads > 0:
        os.environ.setdefault("MNISTKIT_LIMIT_THREADS", str(threads))
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ.setdefault(name, str(threads))


def _exit_on_term(signum, frame):
    """A grading under way unwinds (``grade_one`` then leaves); an idle worker leaves now."""
    if _WORKER["grading"]:
        raise SystemExit(128 + signum)
    _leave(128 + signum)


@contextmanager
def stop_on_signals():
    """For the commands that run a batch (grade-class, bench): SIGTERM and SIGHUP, the way
    ``timeout``, a scheduler or a closed terminal stops a command, stop the batch like a Ctrl-C
    (``KeyboardInterrupt``): workers stopped, scores written, scratch folders removed."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"stopped by signal {signum}")
    try:
        previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    except ValueError:   # not the main thread: the caller handles signals
        previous = {}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def spawnable_main() -> None:
    """multiprocessing's spawn reads ``__main__.__spec__``; an IPython shell in this process (an
    in-process grading, the kit's tests) leaves a ``__main__`` without one, and starting workers
    then fails. None is what spawn expects of a main module it need not import."""
    main = sys.modules.get("__main__")
    if main is not None and not hasattr(main, "__spec__"):
        main.__spec__ = None


class _InThisProcess(cf.Executor):
    """One grading at a time in this process (``jobs=1``): no worker to start, and no second
    pre-flight in it; the batch goes through the same writer. ``submit`` grades before it
    returns; a Ctrl-C raises out of it like out of a wait."""

    def submit(self, fn, /, *args, **kwargs):
        future = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future


def _stop(executor: cf.Executor, futures, owned: bool) -> None:
    """Cancel every grading not started; when the pool is ours, end the running ones too and make
    sure no worker (and so no grader, no sandbox: they die with their worker's grading) is left."""
    for future in futures:
        future.cancel()
    if not owned or isinstance(executor, _InThisProcess):
        return
    # The pool's worker processes: concurrent.futures has no public way to list them.
    processes = list((getattr(executor, "_processes", None) or {}).values())
    for process in processes:
        if process.is_alive():
            try:
                os.kill(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    executor.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + STOP_SECONDS
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(5)
    executor.shutdown(wait=True, cancel_futures=True)


@contextmanager
def _no_interrupt():
    """Another Ctrl-C while the batch stops would leave workers behind: hold it until done."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:   # not the main thread: nothing to hold
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


class _WorkersScratch:
    """The workers' TMPDIR: one folder of this batch's (workers are spawned with the environment
    of the moment), removed whole once they are stopped. A worker stopped at the wrong instant,
    inside a clean-up, or killed after ``STOP_SECONDS``, can leave a grading's scratch folder
    behind; here it goes with the rest."""

    def __init__(self):
        self.before = os.environ.get("TMPDIR")
        self.path = tempfile.mkdtemp(prefix="mnistkit-batch-")
        os.environ["TMPDIR"] = self.path

    def remove(self) -> None:
        if self.before is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = self.before
        shutil.rmtree(self.path, ignore_errors=True)
