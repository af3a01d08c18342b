"""A warm grader: the hidden tests' pytest process forked from one that imported torch already.

Each notebook is graded by a fresh pytest process (``run.grade_notebook``), so that no state of
one grading (module caches, seeds, a reference model) reaches the next. Importing torch, pytest
and the kit's grading modules cost that process about 3 CPU-s before it graded anything. Here
the owner of the gradings (the process that calls ``grade_notebook``) keeps a server, a fresh
interpreter started with the grader's environment, that imports those modules once and never
grades; each notebook's grader is a fork of it, with the same fresh state a new process has,
that runs ``pytest.main`` and exits. Everything here is trusted: student code never runs in
these processes (it runs in the sandbox).

The fork gets the grader's command line, working folder, environment and memory limit, and
the descriptors it needs (its output pipe; the warm start's control socket), dup'ed to the
numbers the environment names. Its exit status comes back on a status socket, its output on
the pipe. ``MNISTKIT_WARM_START=0`` turns this off with the sandboxes' warm start.
"""
from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time

from mnistkit.grading import zygote

# What the server imports before any grading: the cost of a grader process's start.
PRELOAD = ("torch", "numpy", "pytest", "mnistkit.grading.expect", "mnistkit.grading.sandbox",
           "mnistkit.grading.isolation", "mnistkit.grading.source_checks",
           "torchvision.models")   # a3's reference ResNet-18 (1.6 CPU-s to import)
VOLATILE = (zygote.SERVER_ENV,)   # differs per grading; set in the fork, not in the server


class GraderServer:
    """The owner's handle on one server process."""

    def __init__(self, env: dict[str, str]):
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mnistkit.grading.warm_grader", str(theirs.fileno())],
            env={k: v for k, v in env.items() if k not in VOLATILE}, pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log(),
            start_new_session=True, preexec_fn=zygote.die_with_parent)   # a worker gone: so is this
        theirs.close()
        ready, _, _ = select.select([self.control], [], [], 120)
        message = self.control.recv(1 << 12) if ready else b""
        self.problem = "" if message == b"ready" else (
            "the warm grader did not start: " + self._stderr())

    def _log(self):
        import tempfile
        self.log = tempfile.TemporaryFile()   # a file, not a pipe: nobody reads it while it runs
        return self.log

    def _stderr(self) -> str:
        self.close()
        self.log.seek(0)
        return self.log.read()[-400:].decode("utf-8", "replace")

    @property
    def available(self) -> bool:
        return not self.problem and self.proc.poll() is None

    def run(self, cmd: list[str], cwd, timeout: float, memory: int, env: dict[str, str],
            pass_fds: tuple[int, ...]) -> tuple[int | None, str]:
        """Like ``run._run``: (returncode or None on timeout, output)."""
        output_r, output_w = os.pipe()
        status, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        if cmd[1:3] != ["-m", "pytest"]:
            raise ValueError("the warm grader runs `python -m pytest ...` commands only")
        request = dict(argv=cmd[3:], cwd=str(cwd), env=env, memory=memory,
                       fds=list(pass_fds))   # received in this order, dup'ed to these numbers
        try:
            socket.send_fds(self.control, [json.dumps(request).encode()],
                            [output_w, theirs.fileno(), *pass_fds])
        finally:
            os.close(output_w)
            theirs.close()
        pid, chunks, code = None, [], None
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                ready, _, _ = select.select([output_r, status], [], [], min(left, 1.0))
                if output_r in ready:
                    chunk = os.read(output_r, 1 << 16)
                    if chunk:
                        chunks.append(chunk)
                if status in ready:
                    message = status.recv(1 << 12)
                    if not message:
                        break
                    reply = json.loads(message)
                    pid = reply.get("pid", pid)
                    if "exit" in reply:
                        code = int(reply["exit"])
                        break
            if code is not None:   # the rest of its output
                while select.select([output_r], [], [], 0.2)[0]:
                    chunk = os.read(output_r, 1 << 16)
                    if not chunk:
                        break
                    chunks.append(chunk)
        finally:
            if code is None and pid:   # timed out, or Ctrl-C: stop that grader and its sandbox
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
            os.close(output_r)
            status.close()
        return code, b"".join(chunks).decode("utf-8", "replace")

    def close(self) -> None:
        zygote.stop(self.proc, self.control)


_servers = zygote.Pool("warm grader (a fresh grader process per notebook instead)")
close_idle = _servers.close_all


@contextlib.contextmanager
def lease(env: dict[str, str]):
    """A grader server for this environment (None when the warm start is off)."""
    if not zygote.enabled():
        yield None
        return
    stable = {k: v for k, v in env.items() if k not in VOLATILE}
    key = hashlib.sha256(json.dumps(sorted(stable.items())).encode()).hexdigest()
    with _servers.lease(key, lambda: GraderServer(env)) as server:
        yield server


# ---- the server process ------------------------------------------------------------------------

def _grade(request: dict, fds: list[int]) -> int:
    """In the fork: become the grader process the request describes, run pytest."""
    import fcntl
    os.setsid()
    # Received descriptors to the numbers the environment names, safely: first all out of the
    # way (above any number wanted), then into place.
    wanted = [int(n) for n in request.get("fds", [])][:len(fds) - 2]
    high = max([255] + wanted) + 1
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, high) for fd in fds]
    for fd in fds:
        os.close(fd)
    output, status, extra = moved[0], moved[1], moved[2:]
    for number, fd in zip(wanted, extra):
        os.dup2(fd, number)
        os.close(fd)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)
    socket.socket(fileno=status).send(json.dumps({"pid": os.getpid()}).encode())
    memory = int(request.get("memory", 0))
    if memory > 0:
        import resource
        _, hard = resource.getrlimit(resource.RLIMIT_DATA)
        soft = memory if hard == resource.RLIM_INFINITY else min(memory, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.stdout = open(1, "w", encoding="utf-8", errors="replace", closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", errors="replace", closefd=False)
    import pytest
    try:
        code = int(pytest.main(list(request["argv"])))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    sys.stdout.flush()
    sys.stderr.flush()
    return code


def _keeper(request: dict, fds: list[int]) -> None:
    """Forks the grader, waits for it, reports its exit status (the owner's only way to get it).
    Keeper and grader die with their parent: an owner killed mid-grading (a lost worker) leaves
    no grader behind, and a grader's sandbox dies with the grader."""
    zygote.die_with_parent()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    status = socket.socket(fileno=os.dup(fds[1]))
    child = os.fork()
    if child == 0:
        zygote.die_with_parent()
        status.close()
        try:
            code = _grade(request, fds)
        except BaseException:
            code = 70
        os._exit(code)
    for fd in fds:
        os.close(fd)
    _, wait_status = os.waitpid(child, 0)
    with contextlib.suppress(OSError):
        status.send(json.dumps({"exit": os.waitstatus_to_exitcode(wait_status)}).encode())
    os._exit(0)


def _load_trusted_data() -> None:
    """The shipped MNIST, read and verified once (0.25 CPU-s a grading for a1's and a4's hidden
    tests): ``shipped_mnist`` caches it, and every fork inherits the cache. Kit data, not a
    student's; a missing file is left for the grading itself to report."""
    from mnistkit import data
    try:
        data.shipped_mnist()
    except data.DataError:
        pass


def main(argv=None) -> int:
    zygote.die_with_parent()   # the server dies with its owner
    control = socket.socket(fileno=int((argv or sys.argv[1:])[0]))
    import importlib
    for module in PRELOAD:
        importlib.import_module(module)
    _load_trusted_data()
    # Everything imported so far lives as long as the server: out of the collector's sight, a
    # fork's collections (pytest runs five at its end) no longer walk torch's objects (about
    # 0.2 CPU-s a grading), and the pages they sit on stay shared.
    gc.freeze()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)   # keepers are reaped by the kernel
    control.send(b"ready")
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 1 << 20, 16)
        except InterruptedError:
            continue
        if not message:
            return 0
        try:
            request = json.loads(message)
        except ValueError:
            for fd in fds:
                os.close(fd)
            continue
        if os.fork() == 0:
            control.close()
            _keeper(request, fds)
        for fd in fds:
            os.close(fd)


if __name__ == "__main__":
    sys.exit(main())
