"""The sandbox's policy: ONE typed declaration of what a sandboxed notebook gets, like nsjail's
config.proto. Everything a launcher needs to start a sandbox is in a ``Policy`` (frozen
dataclasses): the mounts (the read-only view of the machine and the one writable place), the disk
quota, the limits (``Limits``: ``mnistkit.settings``, ``MNISTKIT_LIMIT_*``), the environment,
the devices (the GPU's nodes) and the uid. The cold launcher turns it into a bubblewrap command
line (``bwrap_args``), the warm launcher into a fork server's child (``warm_launcher``); both take
the same ``Policy``. Nothing here starts a process.

Isolation, in short (the module docstring of ``sandbox`` says why): a minimal read-only view of
the machine (/usr, a few files of /etc, the Python install, the venv with editable installs
blanked, the data view, the stand-alone tools), one writable tmpfs (the disk quota: HOME, /tmp,
/dev/shm), no network, namespaces of its own, a clean environment, uid 65534.
"""
from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from mnistkit.settings import Limits

__all__ = ["Limits", "Policy", "Mounts", "DiskQuota", "Environment", "Devices", "gpu_devices",
           "default_data_dir"]

GRADING = Path(__file__).resolve().parent
# Stand-alone scripts, bound in read-only at TOOLS: the runner, its codec, the fork server and
# the disk quota both starts use (forkserver.py imports it from beside itself).
TOOL_FILES = ("runner.py", "wire.py", "forkserver.py", "disk_quota.py")
BWRAP = shutil.which("bwrap") or "/usr/bin/bwrap"
UNSHARE = shutil.which("unshare") or "/usr/bin/unshare"

# Inside the sandbox.
HOME = "/home/student"
DATA = "/data/fastai"
TOOLS = "/opt/mnistkit"          # the TOOL_FILES, read-only
SANDBOX_UID = 65534
INBOX = "/opt/inbox"             # the fork server's view of the grader's prepared homes
FORK_QUOTA = "/opt/quota"        # where a fork server's child mounts its quota

# What of /etc the student's Python needs (dynamic loader, users, time zone, certificates).
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "passwd", "group", "nsswitch.conf",
       "hosts", "localtime", "timezone", "ssl", "ca-certificates", "alternatives", "fonts",
       "mime.types", "matplotlibrc")


def gpu_devices() -> list[str]:
    """NVIDIA's device nodes on this machine (none: no GPU, nothing bound)."""
    import glob
    return sorted(glob.glob("/dev/nvidia*") + glob.glob("/dev/nvidia-caps/*"))


def default_data_dir(data_dir: Path | None) -> Path | None:
    """The data folder the sandbox sees: the one given, else the kit's (None when absent)."""
    if data_dir is None:
        from mnistkit.data import fastai_data_dir
        try:
            data_dir = fastai_data_dir()
        except Exception:
            data_dir = None
    if data_dir is not None and not Path(data_dir).is_dir():
        data_dir = None
    return Path(data_dir).resolve() if data_dir is not None else None


@dataclass(frozen=True)
class Mounts:
    """The sandbox's view of the machine. Read-only: ``system`` (and the top-level folders
    ``top_level`` as they are here: links or binds), ``etc`` (files of /etc), the Python
    install and the venv (``python``; their editable-install hooks blanked, they point into the
    repository), the data folder's view (``data_dir`` at ``data``; ``bwrap_args.data_view``),
    the stand-alone ``tools`` at ``tools_at``. Writable: only the disk quota's parts."""
    data_dir: Path | None = None
    system: tuple[str, ...] = ("/usr",)
    top_level: tuple[str, ...] = ("bin", "lib", "lib64", "sbin")
    etc: tuple[str, ...] = ETC
    python: tuple[Path, ...] = field(default_factory=lambda: tuple(dict.fromkeys(
        (Path(sys.base_prefix), Path(sys.prefix)))))
    tools: tuple[Path, ...] = tuple(GRADING / tool for tool in TOOL_FILES)
    tools_at: str = TOOLS
    home: str = HOME
    data: str = DATA


@dataclass(frozen=True)
class DiskQuota:
    """Everything graded code can write: one tmpfs per sandbox start (``disk_quota.py``, the
    one implementation), ``bytes`` and ``files`` (inodes) big, seen inside as ``places``."""
    bytes: int
    files: int
    parts: tuple[str, ...] = ("home", "tmp", "shm")
    places: tuple[str, ...] = (HOME, "/tmp", "/dev/shm")


@dataclass(frozen=True)
class Environment:
    """The sandbox's whole environment (bubblewrap clears the grader's)."""
    variables: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, limits: Limits) -> "Environment":
        prefix = Path(sys.prefix)
        threads = str(limits.threads)
        env = dict(PATH=f"{prefix}/bin:/usr/local/bin:/usr/bin:/bin", HOME=HOME,
                   FASTAI_HOME=f"{HOME}/.fastai", MPLBACKEND="Agg", PYTHONHASHSEED="0",
                   PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS=threads,
                   MKL_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads,
                   # idle OpenMP threads sleep: spinning ones starve a machine grading in parallel
                   OMP_WAIT_POLICY="PASSIVE",
                   LANG="C.UTF-8", TMPDIR="/tmp", MPLCONFIGDIR=f"{HOME}/.config/matplotlib",
                   # what nbgrader's own autograde sets: a notebook's cells that skip work when
                   # graded (a3's ResNet-18 epoch) skip it under both graders alike
                   NBGRADER_EXECUTION="autograde")
        return cls(tuple(env.items()))


@dataclass(frozen=True)
class Devices:
    """Device nodes bound in (``--dev-bind``): the GPU's, so that a student's model can train on
    it (a Dask worker with a GPU resource gets a4's gradings). Device nodes store nothing, so the
    disk audit lets them through; the driver's libraries are under /usr, already in the view."""
    nodes: tuple[str, ...] = ()

    @classmethod
    def here(cls) -> "Devices":
        return cls(tuple(gpu_devices()))


@dataclass(frozen=True)
class Policy:
    """One sandbox, declared: what it sees, writes, uses and is. ``Policy.of(limits, data_dir)``
    is the one the grader uses; a launcher needs nothing else."""
    limits: Limits
    mounts: Mounts
    disk: DiskQuota
    env: Environment
    devices: Devices
    uid: int = SANDBOX_UID

    @classmethod
    def of(cls, limits: Limits, data_dir: Path | None = None,
           devices: Devices | None = None) -> "Policy":
        return cls(limits=limits, mounts=Mounts(data_dir=data_dir),
                   disk=DiskQuota(int(limits.disk_bytes), int(limits.disk_files)),
                   env=Environment.of(limits),
                   devices=Devices.here() if devices is None else devices)
