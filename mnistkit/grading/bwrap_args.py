"""A ``sandbox_policy.Policy`` as bubblewrap arguments: the isolation, the read-only view, the
environment, and the disk audit of a command line (only the quota is writable). Used by the cold
launcher (``launchers.ColdLauncher``) and by the warm start's fork server (``zygote``), whose
sandbox has the same view; the doctor runs ``bwrap_base`` to see that bubblewrap accepts it.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from mnistkit.grading.sandbox_policy import (BWRAP, DATA, SANDBOX_UID, Environment, Limits,
                                             Mounts, gpu_devices)


def bwrap_base(devices: tuple[str, ...] | list[str] | None = None) -> list[str]:
    """bubblewrap's isolation, the same for a cold sandbox and the warm start's fork server.
    /proc/sys read-only: the sandbox's uid is the grading account's (root's, when grading runs
    as root), and the kernel lets that uid write most sysctls without any capability (seen:
    fs.file-max written from inside), machine-wide, for every later grading; bubblewrap's own
    cover of /proc/sys was not there (tests/test_sandbox_channels.py checks).
    ``devices``: the policy's device nodes (default: the GPU's here)."""
    return [BWRAP, "--unshare-all", "--unshare-user", "--disable-userns",
            "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
            "--die-with-parent", "--new-session", "--clearenv",
            "--dev", "/dev", "--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys"] \
        + gpu_args(devices)


def gpu_args(devices: tuple[str, ...] | list[str] | None = None) -> list[str]:
    """The GPU's device nodes, bound into the sandbox (``sandbox_policy.Devices``).
    Not tried on a GPU machine here (none was lent): see README."""
    args = []
    for node in (gpu_devices() if devices is None else devices):
        args += ["--dev-bind", node, node]
    return args


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


def view_args(mounts: Mounts | Path | None) -> list[str]:
    """The read-only view of the machine (``Mounts``; a data folder or None: the default view
    of it): /usr, a few files of /etc, the Python install and the venv (editable installs
    blanked), the data view, runner.py and its helpers."""
    if not isinstance(mounts, Mounts):
        mounts = Mounts(data_dir=mounts)
    cmd = []
    for place in mounts.system:
        cmd += ["--ro-bind", place, place]
    for name in mounts.top_level:
        target = Path("/") / name
        if target.is_symlink():
            cmd += ["--symlink", os.readlink(target), str(target)]
        elif target.is_dir():
            cmd += ["--ro-bind", str(target), str(target)]
    for name in mounts.etc:
        if (Path("/etc") / name).exists():
            cmd += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    for place in mounts.python:
        cmd += ["--ro-bind", str(place), str(place)]
    # Editable installs (mnistkit's own) point into the repository: blank their hooks.
    for hook in Path(sys.prefix).glob("lib/python*/site-packages/__editable__*"):
        if hook.is_file():
            cmd += ["--ro-bind", "/dev/null", str(hook)]
    if mounts.data_dir is not None:
        cmd += data_view(mounts.data_dir)
    for tool in mounts.tools:
        cmd += ["--ro-bind", str(tool), f"{mounts.tools_at}/{tool.name}"]
    return cmd


def env_args(env: Environment | Limits) -> list[str]:
    """``--setenv`` for each variable of the policy's environment (or of the one ``Limits``
    make: ``Environment.of``)."""
    if not isinstance(env, Environment):
        env = Environment.of(env)
    args = []
    for key, value in env.variables:
        args += ["--setenv", key, value]
    return args


def read_only_else(cmd: list[str], writable: set[str],
                   devices: tuple[str, ...] | list[str] | None = None) -> list[str]:
    """The disk audit of a bubblewrap command: ``writable`` are the only writable places. Every
    other tmpfs (e.g. one that hides a data folder) is remounted read-only; any other writable
    bind is a kit bug, refused here rather than handed to a student. ``devices``: the device
    nodes the policy binds (default: the GPU's here)."""
    extra = []
    devices = set(gpu_devices() if devices is None else devices)
    for i, arg in enumerate(cmd):
        if arg in ("--dev-bind", "--dev-bind-try") and cmd[i + 1] in devices:
            continue
        if arg in ("--bind", "--bind-try", "--dev-bind", "--dev-bind-try") \
                and cmd[i + 1] not in writable:
            raise RuntimeError(f"sandbox command binds {cmd[i + 1]} writable (kit bug)")
        if arg in ("--tmpfs", "--mqueue") and cmd[i + 1] not in writable:
            extra += ["--remount-ro", cmd[i + 1]]
    return extra
