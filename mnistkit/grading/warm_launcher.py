"""The warm start, grader side: a runner process forked from a fork server (``zygote``) instead of a
fresh one under bubblewrap. ``WarmLauncher`` carries out ``launchers.Launcher`` with the
``ForkClient`` a grader process was handed (``SERVER_ENV``): it asks the fork server for a child
(``ForkClient.spawn``), finds the child's host pid (``host_pid``), puts it in the sandbox's
cgroups and only then lets it go on; ``WarmProcess`` is the child's handle, like
``subprocess.Popen``. The child mounts its disk quota with ``disk_quota.py``, like a cold start.

``MNISTKIT_WARM_START`` (``mnistkit.settings``: ``warm_start``) turns the warm start off.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from mnistkit.grading.launchers import Cap, Launched, SandboxDied
from mnistkit.grading.sandbox_policy import Limits, Policy
from mnistkit.settings import load_settings

WARM_ENV = "MNISTKIT_WARM_START"
SERVER_ENV = "MNISTKIT_FORKSERVER"     # fd:pid:inbox:key, set for a grader process


def enabled() -> bool:
    """Whether the warm start is on (``Settings.warm_start``, ``MNISTKIT_WARM_START``)."""
    return load_settings().warm_start


def child_key(limits: Limits, data_dir: Path | None) -> str:
    """What a fork server's children inherit from it and so must match the grading's: the data
    view and the thread settings (the grader checks it before it asks for a child)."""
    text = json.dumps([str(Path(data_dir).resolve()) if data_dir else "", limits.threads])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class ForkClient:
    """What a grader process was handed (SERVER_ENV): the control socket, the fork server's host
    pid (its children are found below it), the inbox and the server's key."""
    control: socket.socket
    server_pid: int
    inbox: Path
    key: str

    @classmethod
    def inherited(cls, limits: Limits, data_dir: Path | None) -> "ForkClient | None":
        given = load_settings()     # SERVER_ENV and WARM_ENV, typed
        parts = (given.forkserver or "").split(":", 3)
        if len(parts) != 4 or not given.warm_start:
            return None
        try:
            fd, pid = int(parts[0]), int(parts[1])
            os.fstat(fd)
        except (ValueError, OSError):
            return None
        # Only a server whose children see this grading's data view and settings will do.
        if parts[3] != child_key(limits, data_dir):
            return None
        return cls(socket.socket(fileno=os.dup(fd)), pid, Path(parts[2]), parts[3])

    def spawn(self, token: str, policy: Policy, caps,
              seconds: float) -> tuple["WarmProcess", int, int]:
        """A child for the submission prepared in ``inbox/token/home``: (its handle, the answer
        pipe's and the output pipe's read ends).
        ``caps``: cgroups the child joins before it does anything."""
        request_r, request_w = os.pipe()
        answer_r, answer_w = os.pipe()
        output_r, output_w = os.pipe()
        status, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        limits = policy.limits
        params = dict(token=token, memory=limits.memory_bytes, fsize=limits.file_bytes,
                      preload=list(limits.preload), disk_bytes=int(policy.disk.bytes),
                      disk_files=int(policy.disk.files))
        try:
            socket.send_fds(self.control, [json.dumps(params).encode()],
                            [request_r, answer_w, output_w, theirs.fileno()])
        except OSError as exc:
            for fd in (request_r, request_w, answer_r, answer_w, output_r, output_w):
                os.close(fd)
            status.close()
            raise SandboxDied(f"the warm start's fork server is gone ({exc})") from None
        finally:
            theirs.close()
        for fd in (request_r, answer_w, output_w):
            os.close(fd)
        proc = WarmProcess(status, request_w, self.server_pid)
        try:
            proc.start(caps, seconds)
        except BaseException:
            proc.kill()
            for fd in (answer_r, output_r):
                os.close(fd)
            raise
        return proc, answer_r, output_r


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                found += [int(p) for p in fh.read().split()]
    except OSError:
        pass
    return found


def _ns_pids(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("NSpid:"):
                    return [int(p) for p in line.split()[1:]]
    except (OSError, ValueError):
        pass
    return []


def host_pid(server_pid: int, child: int) -> int | None:
    """The host pid of the fork server's child ``child`` (a pid in the fork server's namespace),
    found below the fork server's bubblewrap process: the grader puts it in cgroups and kills it."""
    todo, seen = [server_pid], 0
    while todo and seen < 256:
        pid = todo.pop()
        seen += 1
        ns = _ns_pids(pid)
        if len(ns) >= 3 and ns[-2] == child and ns[-1] == 1:
            return pid
        todo.extend(_children(pid))
    return None


class WarmProcess:
    """A forked child, handled like ``subprocess.Popen`` by the sandbox (pid, poll, wait, kill,
    stdin): ``pid`` is its host pid; its exit status comes from its keeper."""

    def __init__(self, status: socket.socket, request_w: int, server_pid: int):
        self.status = status
        self.stdin = os.fdopen(request_w, "wb", buffering=0)
        self.server_pid = server_pid
        self.pid = 0
        self.returncode: int | None = None

    def start(self, caps, seconds: float) -> None:
        reply = self._receive(seconds)
        if not reply or "pid" not in reply:
            why = (reply or {}).get("error", "no answer")
            raise SandboxDied(f"the warm start gave no child ({why})")
        pid = None
        for _ in range(100):
            pid = host_pid(self.server_pid, int(reply["pid"]))
            if pid:
                break
            time.sleep(0.01)
        if pid is None:
            raise SandboxDied("the warm start's child could not be found")
        self.pid = pid
        for cap in caps:
            cap.add(pid)
        self.status.send(b"go")

    def _receive(self, seconds: float) -> dict | None:
        ready, _, _ = select.select([self.status], [], [], max(seconds, 0))
        if not ready:
            return None
        try:
            data = self.status.recv(1 << 12)
        except OSError:
            data = b""
        if not data:
            return None
        try:
            reply = json.loads(data)
        except ValueError:
            return None
        return reply if isinstance(reply, dict) else None

    def poll(self) -> int | None:
        if self.returncode is None:
            reply = self._receive(0)
            if reply is not None and "exit" in reply:
                code = int(reply["exit"])
                self.returncode = 128 - code if code < 0 else code   # like bubblewrap's
            elif reply is None and self.pid and not Path(f"/proc/{self.pid}").exists():
                reply = self._receive(0.5)     # gone: its keeper reports the status at once
                code = int(reply["exit"]) if reply and "exit" in reply else -signal.SIGKILL
                self.returncode = 128 - code if code < 0 else code
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        while self.poll() is None:
            if time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired("warm child", timeout)
            select.select([self.status], [], [], min(0.05, max(deadline - time.monotonic(), 0)))
        return self.returncode

    def kill(self) -> None:
        if self.pid and self.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, signal.SIGKILL)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.stdin.close()
        self.status.close()


class WarmLauncher:
    """``launchers.Launcher`` by the warm start: the runner is a fork of the fork server the
    grader was handed; ``scratch`` lies in that server's inbox, where the child copies its home
    from into its own quota (the policy's disk quota; its view is the server's, the same)."""
    warm = True

    def __init__(self, client: ForkClient):
        self.client = client

    def start(self, policy: Policy, scratch: Path, caps: Sequence[Cap]) -> Launched:
        limits = policy.limits
        proc, answer_fd, output_fd = self.client.spawn(scratch.name, policy, caps,
                                                       limits.start_seconds)
        os.set_blocking(output_fd, False)
        return Launched(proc, answer_fd, output_fd, policy.mounts.home)
