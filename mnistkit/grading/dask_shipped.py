"""A student's submission folder as plain data, sent with its grading task to a Dask worker
(``grade-class --scheduler``) and rebuilt there in a temporary folder.

Student files travel with the task. A worker need not share a filesystem with this machine
(a Gateway or Kubernetes pod never does), so the submission folder is sent as its bytes
(``Shipped``) and unpacked into a temporary folder on the worker, which ``grade_one`` then
grades like a local folder; the worker grades with its own copy of the course (the kit
installed there, or its ``MNISTKIT_COURSE_ROOT``), which the identity check has compared with
ours. What is sent is what local grading reads: every file not under a hidden folder, read
like ``submission`` reads it (``submitted_files``: never through a link), at most ``SHIP_BYTES``
in all, notebooks first; a notebook too big to grade (``submission.MAX_BYTES``) travels as its
size only, and a notebook that is a link, a hard link or a special file (or a submission folder
that is a link) as what it is, so the worker refuses it with the same reason. A file this
machine cannot read is not sent.

Apart from the cluster's executor (``dask_cluster.py``): reading a folder the way grading reads
it, and rebuilding it on the other side, is a job of its own.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

SHIP_BYTES = 256 << 20                        # one submission folder, sent with its task


@dataclass(frozen=True)
class Shipped:
    """A submission folder as plain data: relative POSIX path -> bytes, the notebooks too big
    to grade as path -> size, and the notebooks that are not files of the submission (links,
    hard links, special files) as path -> what they are; ``root`` is "link" when the folder
    itself is one (see the module docstring for what is sent and why)."""
    name: str
    files: dict[str, bytes] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    root: str = "folder"

    @classmethod
    def pack(cls, folder: Path, limit: int = SHIP_BYTES) -> "Shipped":
        from mnistkit.grading import submission, submitted_files
        folder = Path(folder)
        if submitted_files.root_refusal(folder):
            return cls(name=folder.name, root="link")
        entries, _ = submitted_files.walk(folder, skip=lambda name: name.startswith("."))
        found, refused = [], {}
        for entry in entries:
            if any(part.startswith(".") for part in entry.rel.parts) or entry.kind == "folder":
                continue   # hidden folders are never read (.ipynb_checkpoints, .git)
            notebook = entry.rel.suffix.lower() == ".ipynb"
            if entry.kind != "file":
                if notebook:   # never read: the worker refuses it with the same reason
                    refused[entry.rel.as_posix()] = entry.kind
                continue
            found.append((not notebook, entry.rel.as_posix(), entry))
        files, sizes, left = {}, {}, limit
        for _, rel, entry in sorted(found):
            try:
                if rel.lower().endswith(".ipynb") and entry.size > submission.MAX_BYTES:
                    sizes[rel] = entry.size
                    continue
                if entry.size > left:
                    continue
                data, _ = submitted_files.read_regular(folder, entry.rel, left)
            except (OSError, submitted_files.Refused):
                continue
            files[rel] = data
            left -= len(data)
        return cls(name=folder.name, files=files, sizes=sizes, refused=refused)

    def unpack(self, dest: Path) -> Path:
        """The folder rebuilt under ``dest``; returns its path. What was refused comes back as
        the same kind of thing, pointing nowhere: a link to a name that does not exist, a file
        with a second (hidden) name, a fifo for any other special file."""
        root = Path(dest) / _safe_name(self.name)
        if self.root == "link":
            root.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(".refused", root)
            return root
        root.mkdir(parents=True)
        for rel, data in self.files.items():
            _inside(root, rel).write_bytes(data)
        for rel, size in self.sizes.items():
            with open(_inside(root, rel), "wb") as fh:
                fh.truncate(size)   # sparse: only its size is read, to refuse it
        for rel, what in self.refused.items():
            target = _inside(root, rel)
            if what == "link":
                os.symlink(".refused", target)
            elif what == "hard link":
                target.write_bytes(b"")
                os.link(target, target.with_name(f".{target.name}.second-name"))
            else:
                os.mkfifo(target)
        return root


def _safe_name(name: str) -> str:
    return name if name not in ("", ".", "..") and "/" not in name else "submission"


def _inside(root: Path, rel: str) -> Path:
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"not a relative path: {rel!r}")
    target = root.joinpath(*parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    return target
