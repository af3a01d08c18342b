"""The warm start, grader side: a fork server per grading process, leased to one grading at a time.

A cold sandbox is a fresh interpreter that imports torch, IPython and fastai before the
student's first line (about 7.5 CPU-s a notebook). ``ForkServer`` starts ``forkserver.py`` once
in a bubblewrap sandbox of its own (the same ``sandbox_policy.Policy`` as a cold sandbox, made
bubblewrap arguments by ``bwrap_args``), where it imports the modules the course's release
notebooks import, before any student code exists; each notebook then gets a forked child that
enters its own namespaces, disk quota, cgroups and limits before it runs anything (forkserver.py
says how).

Who holds what. The process that calls ``run.grade_notebook`` (``mnistkit grade``, a
``grade-class`` worker, nbgrader's autograde) owns the fork servers: ``lease`` hands one out for
one notebook, starting it on first use, and passes its control socket to that notebook's grader
process (``grader_env`` / ``pass_fds``); the grader's ``SandboxStudent`` asks it for a child
(``warm_launcher``: ``ForkClient.spawn``) instead of starting bubblewrap. A fork server serves
one grading at a time (it keeps one child alive at a time), so concurrent gradings in one
process get one each.

``MNISTKIT_WARM_START=0`` turns the warm start off (every sandbox cold, as before); a fork
server that does not start is reported once and grading goes on cold.
"""
from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from mnistkit.grading.bwrap_args import bwrap_base, env_args, read_only_else, view_args
from mnistkit.grading.sandbox_policy import (FORK_QUOTA, INBOX, TOOLS, Limits, Policy,
                                             default_data_dir)
# The grader's side (asking a server for a child) is warm_launcher's; its names stay here too.
from mnistkit.grading.warm_launcher import (SERVER_ENV, WARM_ENV, ForkClient,  # noqa: F401
                                            WarmProcess, child_key, enabled, host_pid)

ALWAYS_WARM = ("IPython.core.interactiveshell",)
_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import|import\s+([\w.]+))", re.M)


def release_imports(release: Path) -> tuple[str, ...]:
    """The modules the course's release notebooks import (trusted: the instructor's notebooks,
    not the students'), those importable here. What the fork server imports: a course without
    fastai does not pay for fastai; all assignments together, so that one server serves them all."""
    import importlib.util
    found: list[str] = []
    for path in sorted(Path(release).glob("*/*.ipynb")):
        try:
            cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        except (OSError, ValueError):
            continue
        for cell in cells:
            if cell.get("cell_type") != "code":
                continue
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else str(source)
            for match in _IMPORT.finditer(source):
                name = match.group(1) or match.group(2)
                if name and not name.startswith(".") and name not in found:
                    try:
                        if importlib.util.find_spec(name.split(".")[0]) is not None:
                            found.append(name)
                    except (ImportError, ValueError):
                        pass
    return tuple(found)


def die_with_parent() -> None:
    """PR_SET_PDEATHSIG (SIGKILL), e.g. as Popen's preexec_fn: a worker killed outright (SIGKILL,
    an OOM kill) leaves no fork server or warm grader behind (bubblewrap then ends everything in
    its sandbox)."""
    import ctypes
    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)


def _key(limits: Limits, data_dir: Path | None, warm: tuple[str, ...]) -> str:
    return child_key(limits, data_dir) + ":" + ",".join(warm)


class ForkServer:
    """One fork server process (owner side). ``available`` is False when it did not start."""

    def __init__(self, limits: Limits, data_dir: Path | None, warm: tuple[str, ...]):
        self.key = child_key(limits, data_dir)
        self.inbox = Path(tempfile.mkdtemp(prefix="mnistkit-inbox-"))
        self.log = tempfile.TemporaryFile()
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        cmd = self._command(Policy.of(limits, data_dir), warm, theirs.fileno(), self.inbox)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=self.log, pass_fds=(theirs.fileno(),),
                                     start_new_session=True, env={"PATH": "/usr/bin:/bin"},
                                     preexec_fn=die_with_parent)   # its owner gone: so is it
        theirs.close()
        try:
            self.problem = self._wait_ready(max(limits.start_seconds, 60.0) * 2)
        except BaseException:   # Ctrl-C or a stop signal while it starts: nothing left behind
            self.close()
            raise

    @staticmethod
    def _command(policy: Policy, warm, control_fd: int, inbox: Path) -> list[str]:
        """The fork server's sandbox: the policy's view, environment and devices (the same as
        a cold sandbox's), CAP_SYS_ADMIN inside for its children's quotas (FORK_QUOTA)."""
        limits, home, devices = policy.limits, policy.mounts.home, policy.devices.nodes
        # HOME, /tmp and /dev/shm are the fork server's own scratch (matplotlib and fastai may
        # write there on import); every child covers all three with its disk quota.
        cmd = bwrap_base(devices) + ["--cap-add", "CAP_SYS_ADMIN",
                                     "--tmpfs", "/tmp", "--tmpfs", "/dev/shm"]
        cmd += view_args(policy.mounts)
        cmd += ["--tmpfs", home, "--dir", FORK_QUOTA, "--ro-bind", str(inbox), INBOX,
                "--chdir", home]
        covered = set(policy.disk.places)
        cmd += read_only_else(cmd, covered, devices) + ["--remount-ro", "/dev", "--remount-ro", "/"]
        cmd += env_args(policy.env)
        cmd += [f"{Path(sys.prefix)}/bin/python", "-u", f"{TOOLS}/forkserver.py",
                "--control-fd", str(control_fd)]
        for module in dict.fromkeys(ALWAYS_WARM + tuple(limits.preload) + tuple(warm)):
            cmd += ["--warm", module]
        return cmd

    def _wait_ready(self, seconds: float) -> str:
        ready, _, _ = select.select([self.control], [], [], seconds)
        message = b""
        if ready:
            try:
                message = self.control.recv(1 << 16)
            except OSError:
                message = b""
        try:
            status = json.loads(message).get("status") if message else None
        except ValueError:
            status = None
        if status == "ready":
            return ""
        self.close()
        self.log.seek(0)
        return f"the warm start's fork server did not start: {self.log.read()[-500:]!r}"

    @property
    def available(self) -> bool:
        return not self.problem and self.proc.poll() is None

    def grader_env(self) -> dict[str, str]:
        return {SERVER_ENV: f"{self.control.fileno()}:{self.proc.pid}:{self.inbox}:{self.key}"}

    def pass_fds(self) -> tuple[int, ...]:
        return (self.control.fileno(),)

    def close(self) -> None:
        stop(self.proc, self.control)
        shutil.rmtree(self.inbox, ignore_errors=True)


def stop(proc: subprocess.Popen, control: socket.socket) -> None:
    """Stop a server (its whole process group, it started a session) and close its socket."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    control.close()


# ---- the owner's pool: one server per concurrent grading --------------------------------------

class Pool:
    """Idle servers by key, each leased to one grading at a time, all closed at exit. Servers
    have ``problem`` (why one did not start, or ""), ``available`` and ``close()``. Used for
    the sandboxes' fork servers here and the graders' (mnistkit.grading.warm_grader)."""

    def __init__(self, what: str):
        self.what = what
        self.idle: dict[str, list] = {}
        self.lock = threading.Lock()
        self.reported: set[str] = set()
        atexit.register(self.close_all)

    @contextlib.contextmanager
    def lease(self, key: str, start):
        """A server for ``key`` (``start()`` makes one when none is idle), or None when it could
        not start (said once on stderr: the grading goes on cold)."""
        with self.lock:
            pool = self.idle.setdefault(key, [])
            server = pool.pop() if pool else None
            for other in [k for k in self.idle if k != key]:   # another course, other settings
                for old in self.idle.pop(other):
                    old.close()
        if server is None or not server.available:
            server = start()
            if server.problem:
                if server.problem not in self.reported:
                    self.reported.add(server.problem)
                    print(f"mnistkit: {server.problem}; grading goes on without the {self.what}",
                          file=sys.stderr)
                yield None
                return
        try:
            yield server
        finally:
            with self.lock:
                if server.available:
                    self.idle.setdefault(key, []).append(server)
                else:
                    server.close()

    def close_all(self) -> None:
        with self.lock:
            for pool in self.idle.values():
                for server in pool:
                    server.close()
            self.idle.clear()


_servers = Pool("warm start (cold sandboxes instead)")
close_idle = _servers.close_all   # e.g. before a benchmark's next run starts its own


@contextlib.contextmanager
def lease(limits: Limits, data_dir: Path | None, warm: tuple[str, ...]):
    """A fork server for one grading (None when the warm start is off or could not start)."""
    if not enabled() or shutil.which("bwrap") is None:
        yield None
        return
    with _servers.lease(_key(limits, data_dir, warm),
                        lambda: ForkServer(limits, data_dir, warm)) as server:
        yield server


# ---- the grader's side: asking for a child -----------------------------------------------------

# ---- does the warm start work on this machine? -------------------------------------------------

def warm_start_problem(data_dir: Path | None = None) -> str:
    """Why the warm start does not work here ("" when it does): a fork server started and one
    trivial notebook ran in its child, warm, from start to end. Grading falls back to cold
    sandboxes on its own, said only in a grader's log; ``mnistkit grade-class`` and ``mnistkit
    bench --grading`` call this first and say it on their first line (a class graded cold takes
    about 7.5 CPU-s more a notebook, and a benchmark of it measures something else). Costs a fork
    server that imports IPython only (seconds), closed before returning."""
    import contextlib
    import io
    from mnistkit.grading.sandbox import SandboxStudent   # (sandbox never imports zygote)
    if not enabled():
        raw = os.environ.get(WARM_ENV)
        return f"it is turned off ({WARM_ENV}={raw})" if raw is not None else \
            "it is turned off (warm_start in .mnistkit/course.json)"
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed"
    limits = Limits(cell_seconds=30, request_seconds=30, preload=())
    data_dir = default_data_dir(data_dir)
    server = ForkServer(limits, data_dir, ())
    if server.problem:
        return server.problem
    before = os.environ.get(SERVER_ENV)
    told = io.StringIO()
    try:
        os.environ.update(server.grader_env())
        with tempfile.TemporaryDirectory(prefix="mnistkit-warm-probe-") as tmp:
            import nbformat
            from nbformat.v4 import new_code_cell, new_notebook
            path = Path(tmp) / "probe.ipynb"
            nbformat.write(new_notebook(cells=[new_code_cell("x = 1")]), path)
            with contextlib.redirect_stderr(told):
                student = SandboxStudent(path, limits=limits, data_dir=data_dir)
            try:
                warm = student._warm is not None
                ok = [c.status for c in student.cells] == ["ok"] and student.get("x") == 1
            finally:
                student.close()
    except Exception as exc:   # the probe itself failed: say so, never stop the caller
        return f"the warm start's probe failed ({type(exc).__name__}: {exc})"
    finally:
        if before is None:
            os.environ.pop(SERVER_ENV, None)
        else:
            os.environ[SERVER_ENV] = before
        server.close()
    if not warm:
        return told.getvalue().strip().splitlines()[0][:400] if told.getvalue().strip() \
            else "the fork server's child did not start"
    return "" if ok else "a trivial notebook did not run in the fork server's child"
