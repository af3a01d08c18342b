"""One sandboxed runner process, as the grader sees it: started by a launcher (cold or warm, the
same policy), in its own cgroups, talked to over its three pipes (requests, answers, output), and
watched: memory (the memory cgroup's OOM count, else the process tree's PSS plus the disk
quota's use), the disk quota (read through the sandbox's own mount namespace), time (a request
that gets no answer in time kills it: ``SandboxHung``), its end (``SandboxDied``, with why).
``sandbox.SandboxStudent`` holds one at a time and restarts it.
"""
from __future__ import annotations

import errno
import os
import select
import signal
import struct
import subprocess
import time
from pathlib import Path

from mnistkit.grading import wire, wire_audit
from mnistkit.grading.cgroups import CpuCap, MemoryCap, ProcessCap, tree_pss
from mnistkit.grading.launchers import Launcher, SandboxDied, SandboxHung
from mnistkit.grading.sandbox_policy import Limits, Policy
from mnistkit.grading.student import SubmissionProblem


def gib(n: int) -> str:
    return f"{n / (1 << 30):g} GiB" if n >= 1 << 30 else f"{n / (1 << 20):g} MiB"


def describe_exit(code: int | None, limits: Limits) -> str:
    if code is None:
        return "the notebook process died"
    if code > 128:
        number = code - 128
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        hint = {signal.SIGKILL: f", memory limit {gib(limits.memory_bytes)}?",
                signal.SIGSEGV: ", a segmentation fault",
                signal.SIGXFSZ: f", a file over {gib(limits.file_bytes)}?"}.get(number, "")
        return f"the notebook process died (exit code {code}: {name}{hint})"
    if code < 0:
        return f"the notebook process died (killed by signal {-code})"
    return f"the notebook process died (exit code {code})"



class RunnerProcess:
    """One sandboxed runner process and its three pipes."""

    def __init__(self, scratch: Path, policy: Policy, launcher: Launcher):
        """``scratch``: the submission's scratch folder on the host, with ``home/`` (prepared,
        copied into the quota at each start) and ``quota/`` (the cold start's mount point).
        ``launcher``: cold (``launchers.COLD``) or warm (``warm_launcher.WarmLauncher``: the
        runner is a fork of the warm start's server, and ``scratch`` lies in its inbox)."""
        limits = self.limits = policy.limits
        self.serial = 0                 # request ids: answers name the request they answer
        self.output = bytearray()
        self.last_watch = 0.0
        self.peak_bytes: int | None = None   # the memory cgroup's peak, read when closed
        self.cap = ProcessCap(limits.processes)
        self.memcap = MemoryCap(limits.memory_bytes + limits.memory_slack_bytes)
        self.cpucap = CpuCap(limits.cpu_cores)
        self.cpu_quota = self.cpucap.quota_cores()   # read back while the cgroup exists
        caps = [cap for cap in (self.cap, self.memcap, self.cpucap) if cap.available]
        try:
            launched = launcher.start(policy, scratch, caps)
        except BaseException:
            self._remove_caps()
            raise
        self.proc, self.answer_fd, self.output_fd = launched.proc, launched.answer_fd, \
            launched.output_fd
        # where the grader reads the quota's use, through the sandbox's own mount namespace
        self.quota_view = launched.quota_view
        self.request_fd = self.proc.stdin.fileno()
        os.set_blocking(self.request_fd, False)

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

    def _died(self) -> SandboxDied:
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            code = None
        self.kill()
        if self.memcap.oom_kills():
            return SandboxDied(self._memory_text())
        return SandboxDied(describe_exit(code, self.limits))

    def _memory_text(self) -> str:
        return (f"the notebook process was stopped: it used more than the memory limit of "
                f"{gib(self.limits.memory_bytes)}")

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
                raise SandboxDied(self._memory_text())
            return
        limit = self.limits.memory_bytes + self.limits.memory_slack_bytes
        use = self.disk_use()
        if tree_pss(self.proc.pid) + (use[0] if use else 0) > limit:
            self.kill()
            raise SandboxDied(self._memory_text())

    def exchange(self, request: dict | None, seconds: float) -> dict:
        """Send ``request`` (None: just wait for the ready frame); the answer as a dict.
        Raises SandboxDied, SandboxHung, or SubmissionProblem for an answer that is not
        well-formed."""
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
                raise SandboxHung()
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
                            raise SandboxDied(f"the notebook sent an answer larger than "
                                        f"{gib(self.limits.answer_bytes)}")
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
