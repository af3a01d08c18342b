"""The warm start's trusted parent: imports torch, IPython and fastai once, then forks one child
per notebook. STAND-ALONE script, run inside a bubblewrap sandbox (``mnistkit.grading.zygote``
starts it), like runner.py.

Why: a fresh interpreter per notebook spent about 7.5 CPU-s importing torch, IPython and fastai
before the student's first line; a fork of a process that has them costs milliseconds, and the
children share those pages.

What isolates the children (the fork server itself never runs student code, and holds nothing
of the grader's: it is a fresh interpreter that only imported libraries):
- the fork server's own bubblewrap sandbox: the same read-only view of the machine as a cold
  sandbox (mnistkit.grading.sandbox), no network, its own user namespace (uid 65534, further
  user namespaces disabled), pid namespace and session; its only writable places are three
  tmpfs (HOME, /tmp, /dev/shm), written by its imports only, each covered by every child's own
  (the fork server itself cannot remount them read-only: bubblewrap's nested user namespace
  does not own its mount namespace); CAP_SYS_ADMIN inside that user namespace only, so that a
  child can mount its disk quota;
- each child (``_child``): its own mount, pid, ipc (SysV and POSIX queues), uts and network
  (abstract Unix sockets) namespaces; in /proc (the fork server's procfs: a fresh one cannot be
  mounted there, ``_hide_the_fork_server`` says why) every process that is not its own covered
  by an empty folder, so the fork server's mounts (``/proc/1/root``), memory (``/proc/1/mem``)
  and descriptors are out of reach; its own disk quota (one tmpfs: HOME, /tmp, /dev/shm) holding a copy of its
  submission folder, taken from the inbox the grader filled for it, after which the inbox is
  covered; the view's mounts that lie below /tmp or HOME (a venv in a CI clone under /tmp) put
  back on top of it, read-only; none of the fork server's descriptors; all capabilities dropped
  (bounding set too) and a new session before the runner starts; rlimits set by the runner;
  its pids and memory cgroups joined by the grader (which sees its host pid) before it does
  anything. The child is pid 1 of its namespace (not dumpable: the runner cannot trace it or
  read its memory), the runner pid 2 (as in a cold sandbox): when the child ends, the kernel
  kills everything it started and frees its quota with its mount namespace, so nothing
  outlives into the next child but what the grader read through the pipes; it cannot name,
  signal or trace the fork server (an ancestor namespace) and the fork server keeps one child
  at a time.

Protocol. The control socket (``--control-fd``, SOCK_SEQPACKET) carries one message per child:
JSON parameters and four file descriptors (requests to read, answers to write, output to write,
a status socket). On the status socket the child's keeper (``_keeper``, the trusted process
between the fork server and the child) sends ``{"pid": <child>, "keeper": <itself>}`` (pids in
the fork server's namespace), waits for the grader's ``go`` (sent once the grader has put the
child in its cgroups), and finally ``{"exit": <wait status code>}``.
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import importlib
import json
import os
import re
import signal
import socket
import sys

try:
    import disk_quota   # the quota, written once: bound beside this file (sys.path[0])
except ImportError:     # imported from the kit's package instead (tools, tests)
    from mnistkit.grading import disk_quota

HOME = "/home/student"
QUOTA = "/opt/quota"             # the child's tmpfs is mounted here, then covered
INBOX = "/opt/inbox"             # the grader's prepared copies of submission folders
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 4096, 16384, 1 << 18
MS_NOEXEC, MS_REMOUNT, MNT_DETACH = 8, 32, 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP = 1, 4, 24
MAX_MESSAGE = 1 << 16

_libc = ctypes.CDLL(None, use_errno=True)
_check = disk_quota.check      # (ctypes: Python 3.11's os module has neither mount nor unshare)
_mount = disk_quota.mount


def _drop_capabilities() -> None:
    """No capability left, none to regain: the bounding set emptied, then capset to zero."""
    for cap in range(64):
        _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]
    header, data = Header(0x20080522, 0), (Data * 2)()   # _LINUX_CAPABILITY_VERSION_3
    _check(_libc.capset(ctypes.byref(header), data), "capset")


def _unescape(field: str) -> str:
    """A path as /proc/self/mountinfo writes it (space, tab, newline, backslash as octal)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _view_mounts_under(covered: tuple[str, ...]) -> list[str]:
    """Mounts of the read-only view that lie below a place the child covers (the venv or the
    Python install under /tmp, as in a CI clone): outermost first, each once. Covering /tmp
    would hide them, and the warm start would fail for every notebook."""
    points = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            point = _unescape(line.split()[4])
            if any(point.startswith(place + "/") for place in covered):
                points.append(point)
    outer = []
    for point in sorted(set(points), key=lambda p: (p.count("/"), p)):
        if not any(point.startswith(kept + "/") for kept in outer):
            outer.append(point)
    return outer


def _remount_read_only(target: str, flags: int = 0) -> None:
    _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | flags)


def _enter_quota(token: str, disk_bytes: int, disk_files: int) -> None:
    """The child's only writable places: one tmpfs, seen as HOME, /tmp and /dev/shm. Mounted in
    the child's own mount namespace: it covers the fork server's scratch of the same names and
    is freed by the kernel when the child's last process ends."""
    disk_quota.mount_quota(QUOTA, disk_bytes, disk_files)
    source = os.path.join(INBOX, token, "home")
    disk_quota.fill(QUOTA, source if token and "/" not in token else None,
                    disk_quota.PARTS + ("kept",))
    os.chmod(f"{QUOTA}/tmp", 0o1777)
    places = ((f"{QUOTA}/home", HOME), (f"{QUOTA}/tmp", "/tmp"), (f"{QUOTA}/shm", "/dev/shm"))
    # The view's mounts below those places are set aside, then put back on top of the quota.
    kept = _view_mounts_under(tuple(target for _, target in places))
    for i, point in enumerate(kept):
        os.mkdir(f"{QUOTA}/kept/{i}")
        _mount(point, f"{QUOTA}/kept/{i}", None, MS_BIND | MS_REC)
    for part, target in places:
        _mount(part, target, None, MS_BIND)
    for i, point in enumerate(kept):
        os.makedirs(point, exist_ok=True)
        _mount(f"{QUOTA}/kept/{i}", point, None, MS_BIND | MS_REC)
        _remount_read_only(point)
        _check(_libc.umount2(f"{QUOTA}/kept/{i}".encode(), MNT_DETACH), f"umount {point}")
    for covered in (INBOX, QUOTA):   # nothing of other submissions, no second way in
        _mount("mnistkit-covered", covered, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV,
               "size=4096,nr_inodes=4")


def _hide_the_fork_server() -> None:
    """No name in /proc for any process but the child's own: /proc is the fork server's procfs
    (its pid 1 is the fork server's bubblewrap init, same uid), where /proc/1/root,
    /proc/<pid>/mem and /proc/<pid>/fd lead into the fork server's mounts, memory and files,
    which every student graded by this server shares. A procfs of the child's own cannot be
    mounted here: the kernel mounts one in a user namespace only where an existing one is fully
    visible, and bubblewrap's read-only covers (/proc/sys, ...) are locked in the child's mount
    namespace. So every process there now (bubblewrap's init, the fork server and its threads,
    the keeper) gets its /proc entry, and each of its threads' (reachable by tid though not
    listed), covered by an empty read-only tmpfs. Processes the child starts later are its own;
    the fork server forks the next keeper only after this child's namespace is gone
    (``serve_forks``), so no later process of the fork server's is ever listed while a child of
    a previous student lives."""
    me = os.readlink("/proc/self")
    names = set()
    for name in os.listdir("/proc"):
        if name.isdigit() and name != me:
            names.add(name)
            try:
                names.update(os.listdir(f"/proc/{name}/task"))
            except OSError:
                pass
    for name in sorted(names - {me}):
        try:
            _mount("mnistkit-hidden", f"/proc/{name}", "tmpfs",
                   MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4096,nr_inodes=4")
        except FileNotFoundError:
            pass   # a thread that ended meanwhile


def _child(params: dict, fds: list[int], status: socket.socket, wire) -> int:
    """pid 1 of a fresh pid namespace: wait for the grader, enter the quota, drop everything,
    then start the runner as pid 2 and stay its init (as bubblewrap's own init does for a cold
    sandbox): the kernel ignores the signals a namespace sends its init, so the runner must not
    be it, or ``os.killpg(0, SIGKILL)`` in a cell would not end the notebook as it does cold."""
    request_fd, answer_fd, output_fd = fds[:3]
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)   # the keeper gone: so is the child
    if status.recv(16) != b"go":
        return 3
    status.close()
    _enter_quota(str(params.get("token", "")), params["disk_bytes"], params["disk_files"])
    _hide_the_fork_server()
    _drop_capabilities()
    os.setsid()
    _keep_only(request_fd, answer_fd, output_fd)
    runner_pid = os.fork()
    if runner_pid == 0:
        os._exit(_run_notebook(params, request_fd, answer_fd, output_fd, wire))
    for fd in (request_fd, answer_fd, output_fd):
        os.close(fd)
    # Nothing left of the fork server's descriptors (its log, what imports opened), and the
    # runner, same uid, may neither trace this init nor read its memory or descriptors.
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    while True:   # init: reap everything; the runner's end is the sandbox's end
        try:
            pid, wait_status = os.wait()
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue
        if pid == runner_pid:
            code = os.waitstatus_to_exitcode(wait_status)
            return 128 - code if code < 0 else code   # a signal: 128 + its number, as bwrap


def _keep_only(*fds: int) -> None:
    """stdin, stdout and stderr /dev/null, ``fds`` kept, every other descriptor closed: what the
    fork server held (its log file, its control socket's siblings) is never a child's."""
    null = os.open(os.devnull, os.O_RDWR)
    for std in (0, 1, 2):
        if std not in fds:
            os.dup2(null, std)
    keep = sorted({0, 1, 2, *fds})
    for low, high in zip(keep, keep[1:] + [1 << 16]):
        os.closerange(low + 1, high)


def _run_notebook(params: dict, request_fd: int, answer_fd: int, output_fd: int, wire) -> int:
    """The runner (pid 2): stdin /dev/null, stdout/stderr the output pipe, nothing else open."""
    import io
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    keep = sorted({0, 1, 2, request_fd, answer_fd})
    for low, high in zip(keep, keep[1:] + [1 << 16]):
        os.closerange(low + 1, high)
    os.chdir(HOME)
    # what `python -u` gives a cold runner: unbuffered, written through
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8",
                                  line_buffering=True, write_through=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                  errors="backslashreplace", line_buffering=True,
                                  write_through=True)
    import runner   # the runner lives beside this file (sys.path[0])
    try:
        return runner.serve(wire, request_fd, answer_fd, memory=int(params.get("memory", 0)),
                            fsize=int(params.get("fsize", 0)), preload=params.get("preload", ()))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1


def _keeper(params: dict, fds: list[int], status: socket.socket, wire) -> int:
    """Between the fork server and the child: enters the new namespaces, forks the child (pid 1
    there), reports, and waits for it. Trusted: it runs no student code."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET),
           "unshare")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    child = os.fork()
    if child == 0:
        try:
            code = _child(params, fds, status, wire)
        except BaseException as exc:   # set-up failed: the grader reads it as a failed start
            try:
                os.write(fds[2], f"forkserver: child set-up failed: {exc}\n".encode())
            except OSError:
                pass
            code = 4
        os._exit(code if isinstance(code, int) else 0)
    for fd in fds[:3]:
        os.close(fd)

    def stop(signum, frame):   # the fork server wants this child gone
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    signal.signal(signal.SIGTERM, stop)
    try:
        status.send(json.dumps({"pid": child, "keeper": os.getpid()}).encode())
    except OSError:
        stop(0, None)
    while True:
        try:
            _, code = os.waitpid(child, 0)
            break
        except ChildProcessError:
            code = 0
            break
        except InterruptedError:
            continue
    try:
        status.send(json.dumps({"exit": os.waitstatus_to_exitcode(code)}).encode())
    except OSError:
        pass
    return 0


def _wait_gone(keeper: int) -> None:
    """Until the keeper has ended: it ends after its child, whose end (pid 1 of its namespace)
    comes after every process of that namespace has gone. Keepers are reaped by the kernel
    (SIGCHLD ignored), so waitpid returns, or raises ChildProcessError, once it is gone."""
    while True:
        try:
            os.waitpid(keeper, 0)
        except ChildProcessError:
            return
        except InterruptedError:
            continue


def serve_forks(control: socket.socket, wire) -> int:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)   # keepers are reaped by the kernel
    keeper = 0
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, MAX_MESSAGE, 8)
        except InterruptedError:
            continue
        except OSError:
            return 0
        if not message:
            return 0    # the grader's side is gone
        if keeper:      # one child at a time: the one before goes first, all of it
            try:
                os.kill(keeper, signal.SIGTERM)
            except ProcessLookupError:
                pass
            _wait_gone(keeper)
        try:
            params = json.loads(message)
            if len(fds) != 4 or not isinstance(params, dict):
                raise ValueError("a spawn needs parameters and four descriptors")
        except ValueError:
            for fd in fds:
                os.close(fd)
            continue
        status = socket.socket(fileno=fds[3])
        keeper = os.fork()
        if keeper == 0:
            control.close()
            try:
                code = _keeper(params, fds[:3], status, wire)
            except BaseException as exc:
                try:
                    status.send(json.dumps({"error": str(exc)[:300]}).encode())
                except OSError:
                    pass
                code = 5
            os._exit(code)
        for fd in fds[:3]:
            os.close(fd)
        status.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--warm", action="append", default=[],
                        help="a module to import once, before any student code exists")
    args = parser.parse_args(argv)
    control = socket.socket(fileno=args.control_fd)
    import runner
    wire = runner.load_wire(os.path.join(os.path.dirname(os.path.abspath(__file__)), "wire.py"))
    # Stand-alone in the sandbox: it cannot import mnistkit.settings. Its environment is the
    # policy's (bubblewrap's --setenv, sandbox_policy.Environment), read here as os.environ;
    # its settings come on its command line and in each spawn's parameters from the grader.
    os.environ.setdefault("MPLBACKEND", "Agg")
    for module in args.warm:
        try:
            importlib.import_module(module)
        except Exception as exc:
            print(f"forkserver: could not import {module}: {exc}", file=sys.stderr)
    gc.freeze()   # the warm modules: never collected, so a notebook's collections skip them
    threads = len(os.listdir("/proc/self/task"))
    control.send(json.dumps({"status": "ready", "threads": threads}).encode())
    return serve_forks(control, wire)


if __name__ == "__main__":
    sys.exit(main())
