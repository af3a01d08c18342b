"""Can one student's grading reach the next one's (issue 19)? Two students graded in turn:
alice tries every channel she can think of to leave something behind (files in the fork
server's scratch and inbox through /proc/<pid>/root, /proc/<pid>/mem, /tmp, /dev/shm, HOME,
fastai's config and lock, the data view, a machine-wide sysctl, an abstract Unix socket, SysV
and POSIX IPC, a process that outlives her notebook); bob, graded next, looks for all of it and
must find nothing. Three ways: both on one warm worker (the same fork server), on two warm
workers, and cold. Sandboxes are driven directly (SandboxStudent), as a grading drives them.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from mnistkit.grading.sandbox import Limits, SandboxStudent

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None,
                                reason="bubblewrap is not installed (scripts/install-system-packages.sh)")

FAST = Limits(cell_seconds=20, request_seconds=20, grace_seconds=2, preload=())
MARK = "mnistkit-alice-was-here"
KEY = 0x4D4E4953           # SysV key alice uses
SHM_MB = 160               # what alice leaves in /dev/shm (file + POSIX shared memory) ...
SYSV_MB = 64               # ... and in SysV shared memory

COMMON = f"""
import ctypes, ctypes.util, os, socket
libc = ctypes.CDLL(None, use_errno=True)
rt = ctypes.CDLL(ctypes.util.find_library('rt') or None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
MARK, KEY = {MARK!r}, {KEY}
def places():
    # every place where a file could outlive the notebook, through any /proc entry too
    roots = ['/']
    for name in os.listdir('/proc'):
        if name.isdigit():
            roots.append(f'/proc/{{name}}/root/')
    found = []
    for root in roots:
        for sub in ('tmp', 'dev/shm', 'home/student', 'home/student/.fastai',
                    'home/student/.fastai/archive', 'opt/inbox', 'opt/quota', 'data/fastai'):
            found.append(root + sub)
    return found
"""

ALICE = COMMON + f"""
import multiprocessing.shared_memory as shm_mod, subprocess, sys
tried = {{}}
for place in places():
    try:
        with open(os.path.join(place, MARK), 'w') as fh:
            fh.write('answers')
        tried[place] = 'wrote'
    except OSError as e:
        tried[place] = type(e).__name__
with open(os.path.expanduser('~/.fastai/config.ini'), 'a') as fh:
    fh.write('\\n# ' + MARK + '\\n')
for name in os.listdir('/proc'):
    if name.isdigit() and name != os.readlink('/proc/self'):
        try:
            os.close(os.open(f'/proc/{{name}}/mem', os.O_RDWR))
            tried[f'/proc/{{name}}/mem'] = 'opened'
        except OSError as e:
            tried[f'/proc/{{name}}/mem'] = type(e).__name__
try:   # machine-wide, seen by every later grading: the same value written back, no change
    value = open('/proc/sys/fs/file-max').read()
    with open('/proc/sys/fs/file-max', 'w') as fh:
        fh.write(value)
    tried['sysctl'] = 'wrote'
except OSError as e:
    tried['sysctl'] = type(e).__name__
with open('/dev/shm/' + MARK + '.bin', 'wb') as fh:
    fh.write(os.urandom(1 << 20) * {SHM_MB // 2})
posix = shm_mod.SharedMemory(name=MARK + "-posix", create=True, size={SHM_MB // 2} << 20)
posix.buf[:] = b'\\1' * len(posix.buf)
ident = libc.shmget(KEY, {SYSV_MB} << 20, 0o1666)          # IPC_CREAT | 0666
addr = libc.shmat(ident, None, 0)
ctypes.memset(addr, 1, {SYSV_MB} << 20)
tried['sysv shm'] = ident
tried['sysv msg'] = libc.msgget(KEY + 1, 0o1666)
tried['posix mq'] = rt.mq_open(('/' + MARK).encode(), os.O_CREAT | os.O_RDWR, 0o666, None)
# a process of her own session that keeps an abstract socket and the shared memory
linger = subprocess.Popen([sys.executable, '-c', f'''
import socket, time  # {{MARK}}-linger
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(b"\\\\0{{MARK}}")
s.listen(1)
time.sleep(600)
'''], start_new_session=True, stdin=subprocess.DEVNULL)
import time
for _ in range(200):
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(b'\\0' + MARK.encode())
        tried['abstract socket'] = 'listening'
        break
    except OSError:
        time.sleep(0.05)
    finally:
        probe.close()
"""

BOB = COMMON + """
found = {}
for place in places():
    try:
        names = os.listdir(place)
    except OSError:
        continue
    if any(MARK in n for n in names):
        found[place] = names
try:
    if MARK in open(os.path.expanduser('~/.fastai/config.ini')).read():
        found['config.ini'] = 'marked'
except OSError:
    pass
import multiprocessing.shared_memory as shm_mod
try:
    shm_mod.SharedMemory(name=MARK + "-posix")
    found['posix shm'] = 'there'
except OSError:
    pass
if libc.shmget(KEY, 0, 0) != -1:
    found['sysv shm'] = 'there'
if libc.msgget(KEY + 1, 0) != -1:
    found['sysv msg'] = 'there'
if rt.mq_open(('/' + MARK).encode(), os.O_RDWR) != -1:
    found['posix mq'] = 'there'
probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    probe.connect(b'\\0' + MARK.encode())
    found['abstract socket'] = 'listening'
except OSError:
    pass
for name in os.listdir('/proc'):
    try:
        if MARK.encode() in open(f'/proc/{name}/cmdline', 'rb').read():
            found[f'process {name}'] = 'alive'
    except OSError:
        pass
result = found
"""


def _notebook(folder: Path, source: str) -> Path:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "submission.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(source)]), path)
    return path


def _shmem_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("Shmem:"):
            return int(line.split()[1])
    return 0


def _lingering() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if f"{MARK}-linger".encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            pass
    return found


@pytest.mark.parametrize("workers", ["one warm worker", "two warm workers", "cold"])
def test_a_student_leaves_nothing_for_the_next(tmp_path, mnist_data_dir, monkeypatch, workers):
    """Does bob, graded after alice (by the same fork server, by another one, or cold), find
    nothing of what alice tried to leave, and is alice's memory (/dev/shm, SysV shared memory,
    her lingering process) given back once her grading ends?"""
    from mnistkit.grading import zygote
    from mnistkit.grading.sandbox_policy import default_data_dir as _default_data_dir
    monkeypatch.delenv(zygote.SERVER_ENV, raising=False)
    data_dir = _default_data_dir(None)
    servers = []
    if workers != "cold":
        servers.append(zygote.ForkServer(FAST, data_dir, ()))
        if workers == "two warm workers":
            servers.append(zygote.ForkServer(FAST, data_dir, ()))
        assert all(not s.problem for s in servers), [s.problem for s in servers]
    try:
        before = _shmem_kib()
        if servers:
            monkeypatch.setenv(*next(iter(servers[0].grader_env().items())))
        alice = SandboxStudent(_notebook(tmp_path / "alice", ALICE), limits=FAST)
        try:
            assert (alice._warm is not None) == bool(servers)
            assert [c.status for c in alice.cells] == ["ok"], alice.outputs
            tried = alice.get("tried")
            during = _shmem_kib()
            assert _lingering(), "alice's lingering process did not start"
        finally:
            alice.close()
        # her attempts that could have crossed: none reached anything but her own sandbox
        assert tried["abstract socket"] == "listening"   # it worked, inside her sandbox
        assert tried["sysv shm"] != -1 and tried["sysv msg"] != -1 and tried["posix mq"] != -1
        if servers:   # warm: no process of the fork server's is hers to open (cold: /proc/1
            # is her own sandbox's bubblewrap init, which holds nothing of anyone else's)
            assert not [k for k, v in tried.items() if k.endswith("/mem") and v == "opened"], tried
        assert all(v != "wrote" for k, v in tried.items()
                   if "/opt/inbox" in k or "/data/fastai" in k or k == "sysctl"), tried
        deadline = time.monotonic() + 10
        while _lingering() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _lingering() == []                         # her processes died with her grading
        if len(servers) == 2:
            monkeypatch.setenv(*next(iter(servers[1].grader_env().items())))
        bob = SandboxStudent(_notebook(tmp_path / "bob", BOB), limits=FAST)
        try:
            assert (bob._warm is not None) == bool(servers)
            assert [c.status for c in bob.cells] == ["ok"], bob.outputs
            found = bob.get("result")
        finally:
            bob.close()
        assert found == {}, found
        # her memory is back: what she put in /dev/shm and SysV shared memory is freed
        left = (_shmem_kib() - before) >> 10
        grew = (during - before) >> 10
        assert grew >= SHM_MB + SYSV_MB - 32, (grew, "the measurement did not see her memory")
        assert left < 64, f"{left} MiB of shared memory still held after alice's grading"
        assert all(s.available for s in servers)
    finally:
        for server in servers:
            server.close()


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                    reason="binds the venv under /tmp in a mount namespace of its own (root)")
def test_the_warm_start_works_with_the_venv_under_tmp(tmp_path):
    """With the venv under /tmp (a CI clone), does a fork server's child still see it, so that
    grading is warm rather than silently cold? The venv is bound there in a private mount
    namespace, nothing changes on the host."""
    import subprocess
    import sys
    venv = tmp_path / "clone" / ".venv"
    venv.mkdir(parents=True)
    probe = ("from mnistkit.grading import zygote, cli; import sys; "
             "print(sys.prefix); print('problem:', repr(zygote.warm_start_problem())); "
             "cli.say_warm_start(print)")
    script = (f'mount --bind "{sys.prefix}" "{venv}" && cd "{Path(__file__).resolve().parents[1]}" && '
              f'exec "{venv}/bin/python" -c "{probe}"')
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script],
                          capture_output=True, text=True, timeout=300)
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and lines[:2] == [str(venv), "problem: ''"], (done.stdout, done.stderr)
    assert not any("WARNING" in line for line in lines)


def test_a_cold_only_machine_says_so_first(monkeypatch, capsys):
    """When the warm start cannot work, does grade-class's first line say so, with the reason?"""
    from mnistkit.grading import cli, zygote
    monkeypatch.setenv(zygote.WARM_ENV, "0")
    assert "turned off" in zygote.warm_start_problem()
    assert cli.say_warm_start(print) is False
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("WARNING: the warm start does not work here") and "turned off" in first
