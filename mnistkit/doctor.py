"""`mnistkit doctor`: what grading relies on, and whether this machine (in this account) has it.

One function per check, each trying the feature the way the sandbox uses it (``unshare`` as
``launchers.ColdLauncher`` runs it, bubblewrap with ``bwrap_args.bwrap_base``, the cgroups made and
removed as a grading makes them, a fork server started once), so the answer is this machine's,
not a guess from version numbers. Each prints one line: OK or MISSING, what it is, and for a
missing feature what that means for isolation. Essential features (without them student code
would run unisolated, so the pre-flight refuses to grade) make the command exit 1; the others
weaken one guarantee and grading goes on, as the line says.

Facts behind the wording (checked on the kit's machines, 2026-12-06): as root everything below
works; as an unprivileged account (uid 65534) with unprivileged user namespaces enabled, user,
mount, network and PID namespaces, the tmpfs quota (mounted in a user namespace of its own) and
bubblewrap all work too; only the cgroups need root, or a cgroup v2 subtree delegated to the
account. So sandboxing does not need root; the memory, pids and cpu caps do.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


@dataclass
class Check:
    name: str
    ok: bool
    detail: str          # what was found (OK) or what a missing feature means (MISSING)
    essential: bool      # MISSING here means grading cannot run safely

    def line(self) -> str:
        return f"{'OK     ' if self.ok else 'MISSING'} {self.name}: {self.detail}"


def _as_root() -> bool:
    return os.geteuid() == 0


def _unshare(*flags: str, script: str = "true", timeout: float = 20) -> tuple[bool, str]:
    """Run ``script`` under ``unshare`` with ``flags``, as the sandbox does: an account other
    than root first gets a user namespace of its own, mapped to itself as uid 0."""
    from mnistkit.grading.sandbox_policy import UNSHARE
    user = [] if _as_root() else ["--user", "--map-root-user"]
    cmd = [UNSHARE, *user, *flags, "--", "/bin/sh", "-c", script]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    text = (proc.stderr or proc.stdout).strip()
    return proc.returncode == 0, text.splitlines()[-1][:200] if text else \
        f"exit code {proc.returncode}"


def check_account() -> Check:
    if _as_root():
        return Check("account", True, "root: cgroups can be made where the hierarchy is "
                     "writable", False)
    return Check("account", True, f"uid {os.geteuid()}, not root: namespaces and the disk "
                 "quota come from unprivileged user namespaces; cgroups only where a cgroup v2 "
                 "subtree is delegated to this account", False)


def check_user_namespace() -> Check:
    from mnistkit.grading.sandbox_policy import UNSHARE
    try:
        proc = subprocess.run([UNSHARE, "--user", "--map-root-user", "true"],
                              capture_output=True, text=True, timeout=20)
        ok, why = proc.returncode == 0, proc.stderr.strip()[-200:]
    except (OSError, subprocess.TimeoutExpired) as exc:
        ok, why = False, str(exc)
    return Check("user namespace", ok, "graded code runs as uid 65534 with no capabilities"
                 if ok else f"graded code cannot get a uid and capabilities of its own, so it "
                 f"cannot be sandboxed ({why or 'unshare --user failed'}; enable unprivileged "
                 "user namespaces, or allow unshare in the seccomp/AppArmor profile)", True)


def check_mount_namespace() -> Check:
    ok, why = _unshare("--mount", "--propagation", "private")
    return Check("mount namespace", ok, "graded code sees a read-only view of the machine"
                 if ok else f"graded code would see and write the grader's files ({why})", True)


def check_network_namespace() -> Check:
    ok, why = _unshare("--net")
    return Check("network namespace", ok, "graded code has no network" if ok else
                 f"graded code could reach the network and the grader's loopback ({why})", True)


def check_pid_namespace() -> Check:
    ok, why = _unshare("--pid", "--fork")
    return Check("PID namespace", ok, "graded code sees only its own processes" if ok else
                 f"graded code could see and signal other students' processes ({why})", True)


# A 1 MiB tmpfs of 64 inodes, then 2 MiB written: the write must fail (what the sandbox's
# grading/disk_quota.py mounts, smaller).
_QUOTA_PROBE = ('d=$(mktemp -d) && mount -t tmpfs -o size=1048576,nr_inodes=64,mode=0755,'
                'nosuid,nodev mnistkit-doctor "$d" && ! dd if=/dev/zero of="$d/f" bs=64k '
                'count=32 2>/dev/null')


def check_tmpfs_quota() -> Check:
    ok, why = _unshare("--mount", "--propagation", "private", script=_QUOTA_PROBE)
    return Check("tmpfs quota", ok, "home, /tmp and /dev/shm are one tmpfs of a fixed size "
                 "and file count per sandbox" if ok else "graded code's files could not be "
                 f"bounded: a notebook could fill the grading machine's disk ({why})", True)


def check_bubblewrap() -> Check:
    from mnistkit.grading import bwrap_args
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return Check("bubblewrap", False, "not installed: student code is never run without "
                     "it (scripts/install-system-packages.sh)", True)
    try:
        version = subprocess.run([bwrap, "--version"], capture_output=True, text=True,
                                 timeout=10).stdout.strip() or "unknown version"
        base = bwrap_args.bwrap_base()
        proc = subprocess.run([base[0], "--ro-bind", "/", "/", *base[1:], "/bin/true"],
                              capture_output=True, text=True, timeout=20)
        ok, why = proc.returncode == 0, proc.stderr.strip()[-200:]
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("bubblewrap", False, f"{bwrap} does not run ({exc})", True)
    return Check("bubblewrap", ok, f"{version}, runs the sandbox's isolation" if ok else
                 f"{version} refuses the sandbox's options ({why}); 0.8 or later is needed "
                 "(--disable-userns)", True)


def _cgroup(name: str, make: Callable[[], object], missing: str) -> Check:
    try:
        cap = make()
    except OSError as exc:
        return Check(f"cgroup {name}", False, f"{missing} ({exc})", False)
    if not cap.available:
        return Check(f"cgroup {name}", False, f"no writable {name} controller: {missing}", False)
    where = cap.path.parent
    cap.remove()
    version = "v2" if (where / "cgroup.controllers").is_file() else "v1"
    return Check(f"cgroup {name}", True, f"writable (cgroup {version}, {where})", False)


def check_cgroup_memory() -> Check:
    from mnistkit.grading.cgroups import MemoryCap
    return _cgroup("memory", lambda: MemoryCap(1 << 30),
                   "the PSS watchdog bounds memory instead; memfd files and SysV shared memory "
                   "go uncounted")


def check_cgroup_pids() -> Check:
    from mnistkit.grading.cgroups import ProcessCap
    return _cgroup("pids", lambda: ProcessCap(64),
                   "a fork bomb is bounded only by the memory limit")


def check_cgroup_cpu() -> Check:
    from mnistkit.grading.cgroups import CpuCap
    return _cgroup("cpu", lambda: CpuCap(1.0),
                   "one submission's busy processes can slow its classmates graded beside it "
                   "(grade with --jobs 1 to rule it out)")


def check_cold_sandbox() -> Check:
    """The sandbox as grading starts it (disk quota, bubblewrap, runner), one cell."""
    from mnistkit.grading.sandbox import Limits, SandboxStudent
    from mnistkit.grading.warm_launcher import SERVER_ENV
    limits = Limits(preload=(), cell_seconds=20, request_seconds=20, start_seconds=30,
                    restarts=0)
    with tempfile.TemporaryDirectory(prefix="mnistkit-doctor-") as tmp:
        path = _notebook(Path(tmp))
        saved = os.environ.pop(SERVER_ENV, None)   # cold: no fork server handed over
        try:
            student = SandboxStudent(path, limits=limits)
            try:
                ok = [c.status for c in student.cells] == ["ok"] and student.get("x") == 2
                why = student._broken or ", ".join(c.message for c in student.cells if c.message)
            finally:
                student.close()
        except Exception as exc:
            ok, why = False, f"{type(exc).__name__}: {exc}"
        finally:
            if saved is not None:
                os.environ[SERVER_ENV] = saved
    return Check("sandbox", ok, "a cold sandbox started and ran a cell" if ok else
                 f"a cold sandbox did not run a cell, so nothing can be graded ({why[:300]})",
                 True)


def _notebook(folder: Path) -> Path:
    import json
    path = folder / "doctor.ipynb"
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "source": "x = 1 + 1",
                                           "metadata": {}, "outputs": [],
                                           "execution_count": None}],
                                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def check_warm_start() -> Check:
    """A fork server started once (importing nothing heavy) and one child run in it."""
    from mnistkit.grading import zygote
    from mnistkit.grading.sandbox import Limits, SandboxStudent
    from mnistkit.grading.sandbox_policy import default_data_dir
    if not zygote.enabled():
        return Check("warm start", False, f"turned off ({zygote.WARM_ENV}=0): every sandbox "
                     "starts cold (slower, as isolated)", False)
    limits = Limits(preload=(), cell_seconds=20, request_seconds=20, start_seconds=30,
                    restarts=0)
    server = zygote.ForkServer(limits, default_data_dir(None), ())
    try:
        if server.problem:
            return Check("warm start", False, "the fork server does not start here, so every "
                         f"sandbox starts cold (slower, as isolated): {server.problem[-300:]}",
                         False)
        key, value = next(iter(server.grader_env().items()))
        saved = os.environ.get(key)
        os.environ[key] = value
        try:
            with tempfile.TemporaryDirectory(prefix="mnistkit-doctor-") as tmp:
                student = SandboxStudent(_notebook(Path(tmp)), limits=limits)
                try:
                    warm = student._warm is not None and \
                        [c.status for c in student.cells] == ["ok"]
                finally:
                    student.close()
        finally:
            if saved is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = saved
    finally:
        server.close()
    return Check("warm start", warm, "a fork server started and its child ran a cell" if warm
                 else "the fork server's child did not run (see the grader's log): every "
                 "sandbox starts cold (slower, as isolated)", False)


CHECKS = (check_account, check_user_namespace, check_mount_namespace, check_network_namespace,
          check_pid_namespace, check_tmpfs_quota, check_bubblewrap, check_cgroup_memory,
          check_cgroup_pids, check_cgroup_cpu, check_cold_sandbox, check_warm_start)


def run(say: Callable[[str], None] = print) -> list[Check]:
    """Every check, each line said as soon as it is known."""
    found = []
    for check in CHECKS:
        start = time.perf_counter()
        try:
            result = check()
        except Exception as exc:   # a check that breaks is a feature this machine lacks
            name = check.__name__.removeprefix("check_").replace("_", " ")
            result = Check(name, False, f"the check failed: {type(exc).__name__}: {exc}",
                           check in ESSENTIAL)
        found.append(result)
        say(result.line() + (f"  [{time.perf_counter() - start:.1f} s]"
                             if time.perf_counter() - start >= 1 else ""))
    return found


ESSENTIAL = {check_user_namespace, check_mount_namespace, check_network_namespace,
             check_pid_namespace, check_tmpfs_quota, check_bubblewrap, check_cold_sandbox}


def verdict(found: list[Check]) -> tuple[int, str]:
    """(exit code, last line): 1 when an essential feature is missing."""
    missing = [c.name for c in found if not c.ok and c.essential]
    if missing:
        return 1, f"grading cannot run safely here: missing {', '.join(missing)}"
    weak = [c.name for c in found if not c.ok]
    if weak:
        return 0, f"grading can run here, with weaker guarantees: missing {', '.join(weak)}"
    return 0, "grading can run here, with every guarantee"
