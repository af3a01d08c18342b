"""How a sandboxed runner process is started: ONE interface (``Launcher``), two ways.

A launcher takes a ``sandbox_policy.Policy``, the submission's scratch folder and the cgroups the
process must be in before it runs anything, and returns the running process with its pipes
(``Launched``). ``ColdLauncher`` (here): a fresh interpreter under bubblewrap, its command line
built from the policy (``bwrap_args``), its disk quota mounted first by ``disk_quota.py`` in a
mount namespace of its own. ``warm_launcher.WarmLauncher``: a fork of the warm start's fork
server (``zygote``), which mounts the same quota with the same ``disk_quota.py``. Both take the
same policy; the sandbox (``sandbox_process.RunnerProcess``) talks to either the same way.

``SandboxDied`` and ``SandboxHung`` are how a sandbox's end reaches the grader (both ways).
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

from mnistkit.grading.bwrap_args import bwrap_base, env_args, read_only_else, view_args
from mnistkit.grading.sandbox_policy import GRADING, TOOLS, UNSHARE, Policy


class SandboxDied(Exception):
    """The sandbox process is gone (or was killed); ``str`` says why, for feedback."""


class SandboxHung(Exception):
    """No answer within the limit plus grace; the sandbox has been killed."""


class Cap(Protocol):
    """A cgroup (``cgroups.ProcessCap``, ``MemoryCap``, ``CpuCap``) the process must be in."""
    def join(self) -> None: ...            # from the process itself, before exec
    def add(self, pid: int) -> None: ...   # from the grader, by host pid


@dataclass
class Launched:
    """A started runner: ``proc`` is handled like ``subprocess.Popen`` (pid, poll, wait, kill,
    stdin: the request pipe); the answer pipe's and the output pipe's read ends (the output
    one non-blocking); ``quota_view``: where the disk quota is, seen through
    ``/proc/<pid>/root`` (the grader measures its use there)."""
    proc: Any
    answer_fd: int
    output_fd: int
    quota_view: str


class Launcher(Protocol):
    """Starts one sandboxed runner process for a policy."""
    warm: bool

    def start(self, policy: Policy, scratch: Path, caps: Sequence[Cap]) -> Launched:
        """``scratch``: the submission's scratch folder, with ``home/`` (prepared, copied into
        the quota at each start) and ``quota/`` (the cold start's mount point). The process is
        in every cgroup of ``caps`` before it runs anything. Raises ``SandboxDied`` (or
        OSError) when it cannot start."""
        ...


class ColdLauncher:
    """A fresh sandbox: ``unshare --mount`` runs ``disk_quota.py`` (the quota), which execs
    bubblewrap (the policy's view, environment and devices), which runs ``runner.py``."""
    warm = False

    def start(self, policy: Policy, scratch: Path, caps: Sequence[Cap]) -> Launched:
        answer_r, answer_w = os.pipe()
        output_r, output_w = os.pipe()
        os.set_blocking(output_r, False)
        cmd = self.command(policy, scratch, answer_w)

        def join_caps():   # in the sandbox's first process, before exec
            for cap in caps:
                cap.join()
        try:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=output_w, stderr=output_w,
                pass_fds=(answer_w,), start_new_session=True, env={"PATH": "/usr/bin:/bin"},
                preexec_fn=join_caps if caps else None)
        except BaseException:
            os.close(answer_r)
            os.close(output_r)
            raise
        finally:
            os.close(answer_w)
            os.close(output_w)
        return Launched(proc, answer_r, output_r, str(scratch / "quota"))

    @staticmethod
    def command(policy: Policy, scratch: Path, answer_w: int) -> list[str]:
        lim, quota, home = policy.limits, scratch / "quota", policy.mounts.home
        devices = policy.devices.nodes
        # Mount points first: binds below may live under /tmp (a CI clone's venv does) and must
        # land on top of the fresh /tmp, not be hidden by it.
        cmd = bwrap_base(devices) + ["--bind", f"{quota}/tmp", "/tmp",
                                     "--bind", f"{quota}/shm", "/dev/shm"]
        cmd += view_args(policy.mounts) + ["--bind", f"{quota}/home", home, "--chdir", home]
        writable = {f"{quota}/{part}" for part in policy.disk.parts}
        cmd += read_only_else(cmd, writable, devices) + ["--remount-ro", "/dev",
                                                         "--remount-ro", "/"]
        cmd += env_args(policy.env)
        cmd += [f"{Path(sys.prefix)}/bin/python", "-u", f"{TOOLS}/runner.py",
                "--wire", f"{TOOLS}/wire.py",
                "--answer-fd", str(answer_w), "--memory", str(lim.memory_bytes),
                "--fsize", str(lim.file_bytes)]
        for module in lim.preload:
            cmd += ["--preload", module]
        # Mounting needs CAP_SYS_ADMIN over the mount namespace: root has it; any other account
        # (an instructor's JupyterHub server) gets it in a user namespace of its own, mapped to
        # itself as uid 0 there, with bubblewrap's nested inside. The quota is disk_quota.py's
        # (the fork server's children mount theirs with the same file), run by this Python,
        # isolated (-I) and without site-packages (-S): it needs the standard library only.
        as_root = os.geteuid() == 0
        quota_cmd = [UNSHARE] + ([] if as_root else ["--user", "--map-root-user"]) + [
            "--mount", "--propagation", "private", "--",
            sys.executable or "/usr/bin/python3", "-I", "-S", str(GRADING / "disk_quota.py"),
            str(quota), str(int(policy.disk.bytes)), str(int(policy.disk.files)),
            str(scratch / "home"), "--"]
        return quota_cmd + cmd


COLD = ColdLauncher()
