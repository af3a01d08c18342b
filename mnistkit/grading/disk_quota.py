"""The disk quota of one sandbox start, written once: one tmpfs that holds everything graded code
can write (HOME, /tmp, /dev/shm), of ``size=Limits.disk_bytes`` and ``nr_inodes=Limits.disk_files``.

STAND-ALONE (stdlib only, no mnistkit): both ways a sandbox starts use this file.
- cold (``launchers.ColdLauncher``): run as a script on the host, by ``unshare --mount`` in the
  sandbox's own mount namespace, before bubblewrap: ``python -I -S disk_quota.py MOUNT BYTES
  FILES HOME -- bwrap ...`` mounts the quota at MOUNT, makes ``home``, ``tmp`` and ``shm`` in
  it, copies the prepared HOME into ``home``, then execs the rest of its command line;
- warm (``forkserver.py``, inside the fork server's sandbox): imported from beside it (it is
  bound read-only next to forkserver.py and runner.py, ``sandbox_policy.TOOL_FILES``), and
  ``mount_quota`` + ``fill`` called in each child's own mount namespace.
The tmpfs lives in a mount namespace of the sandbox's own, so the host never sees it and the
kernel frees it when the sandbox's last process ends.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
PARTS = ("home", "tmp", "shm")    # seen inside as HOME, /tmp and /dev/shm
SOURCE = "mnistkit-quota"         # the tmpfs's name in the mount table

_libc = ctypes.CDLL(None, use_errno=True)


def check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source: str | None, target: str, fstype: str | None, flags: int,
          data: str | None = None) -> None:
    # ctypes because Python 3.11's os module has neither mount nor unshare (3.12 adds unshare)
    check(_libc.mount(source.encode() if source else None, target.encode(),
                      fstype.encode() if fstype else None, ctypes.c_ulong(flags),
                      data.encode() if data else None), f"mount {target}")


def mount_quota(point: str, disk_bytes: int, disk_files: int) -> None:
    """The quota's tmpfs at ``point``: its size and file count, no setuid files, no devices."""
    mount(SOURCE, point, "tmpfs", MS_NOSUID | MS_NODEV,
          f"size={int(disk_bytes)},nr_inodes={int(disk_files)},mode=0755")


def fill(point: str, home: str | None, parts: tuple[str, ...] = PARTS) -> None:
    """The quota's folders (``parts``) and a copy of the prepared ``home`` (links as links) in
    ``point/home``: the copy counts against the quota like anything the student writes."""
    for part in parts:
        os.mkdir(os.path.join(point, part))
    if home is not None and os.path.isdir(home):
        shutil.copytree(home, os.path.join(point, "home"), symlinks=True, dirs_exist_ok=True)


def main(argv: list[str]) -> int:
    """``MOUNT BYTES FILES HOME -- COMMAND...``: the quota, then exec COMMAND (the cold start)."""
    if len(argv) < 6 or argv[4] != "--":
        print("usage: disk_quota.py MOUNT BYTES FILES HOME -- COMMAND...", file=sys.stderr)
        return 2
    point, disk_bytes, disk_files, home, command = argv[0], argv[1], argv[2], argv[3], argv[5:]
    try:
        mount_quota(point, int(disk_bytes), int(disk_files))
        fill(point, home)
    except OSError as exc:
        print(f"disk quota: {exc}", file=sys.stderr)
        return 1
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(command[0], command)
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
