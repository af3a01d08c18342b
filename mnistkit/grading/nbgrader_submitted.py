"""nbgrader reads submissions the kit's way: files of the submission, never links.

nbgrader 0.9.6 follows links everywhere it touches a submission: ``nbgrader collect`` copies the
exchange's inbound folder with ``shutil.copytree`` (links dereferenced, as the instructor), and
``nbgrader autograde`` reads ``submitted/<student>/<assignment>/<name>.ipynb`` with ``open()``
and copies every other file there into ``autograded/`` with ``shutil.copy``, which
``generate_feedback`` then copies into ``feedback/`` for the student. A notebook that is a link
to the instructor's ``source/`` notebook got full marks, and its solutions came back in the
student's feedback; a file ``notes.txt`` linked to it would come back as is. Three steps, set
in nbgrader_config.py, keep to what ``submitted_files`` allows:

- ``SubmittedFilesOnly``, Autograde's exporter (``c.Autograde.exporter_class``): nbgrader reads
  every notebook through it. A notebook that is not a file of the submission (a link, a hard
  link, a fifo, in a linked folder) is never opened: an empty notebook stands in for it, so
  nothing of what it points to reaches ``autograded/``, the gradebook or the feedback; the
  kit's preprocessor (``nbgrader_autograde.GradeWithHiddenTests``, via ``refusal``) then writes
  0 and the reason into every graded cell, as for a missing notebook. Whatever nbgrader copied
  from ``submitted/`` that was not a file of the submission is removed from ``autograded/``
  before the notebook is sanitized, so feedback cannot carry it.
- ``CollectKeepingLinks``, nbgrader's collect (``c.ExchangeFactory.collect``): links in the
  inbound folder are copied as links, never followed as the instructor (so grading refuses
  them), special files are left out, and group permissions are never changed through a link.

What nbgrader itself still does before any of this: ``autograde`` reads ``timestamp.txt`` and
copies the other files of the submission (a link's target too, removed again here; a fifo makes
its ``shutil.copy`` fail, and nbgrader then reports that student's assignment as failed).
"""
from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path, PurePath

import nbformat
from nbconvert.exporters import NotebookExporter
from nbgrader.exchange.default.collect import ExchangeCollect
from nbgrader.utils import ignore_patterns

from mnistkit.grading import submission, submitted_files
from mnistkit.grading.submitted_files import Refused, shown


def refusal(path: Path) -> str:
    """Why nbgrader must not read the submitted notebook ``path`` ("" when it is a file of the
    submission): its folder is a link, or it is a link, a hard link or a special file. A file
    that does not exist is not refused here (nbgrader's "no submitted file")."""
    path = Path(path)
    name = shown(path.name)
    if not os.path.lexists(path):
        return ""
    folder = submitted_files.root_refusal(path.parent)
    if folder:
        return folder
    try:
        with submitted_files.open_regular(path.parent, PurePath(path.name), name=name):
            return ""
    except Refused as exc:
        return str(exc)
    except OSError:
        return ""


class SubmittedFilesOnly(NotebookExporter):
    """nbconvert's notebook exporter, reading a notebook only when it is a file of the
    submission (see the module docstring); Autograde runs both its passes through it (the
    second reads nbgrader's own ``autograded/`` copy, a plain file)."""

    def from_filename(self, filename, resources=None, **kw):
        path = Path(filename)
        self._forget_copied_links(path, resources)
        reason = refusal(path)
        if reason:
            self.log.warning("mnistkit: not reading %s: %s", filename, reason)
            nb = nbformat.v4.new_notebook()
        else:
            raw, size = submitted_files.read_regular(path.parent, PurePath(path.name),
                                                     submission.MAX_BYTES)
            if size > submission.MAX_BYTES:   # nbgrader reports the student's failure
                raise ValueError(f"{filename} is {size} bytes, too big to grade")
            # what nbconvert's from_filename reads: UTF-8 text, nbformat's parser
            nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
        resources = self._resources(path, resources)
        return self.from_notebook_node(nb, resources=resources, **kw)

    def _resources(self, path: Path, resources):
        """The metadata nbconvert's own ``from_filename`` adds (name, path, date), without
        following a link for the date."""
        import datetime

        from nbconvert.exporters.exporter import ResourcesDict
        resources = ResourcesDict() if resources is None else resources
        if "metadata" not in resources or resources["metadata"] == "":
            resources["metadata"] = ResourcesDict()
        resources["metadata"]["name"] = path.stem
        resources["metadata"]["path"] = str(path.parent)
        try:
            modified = datetime.datetime.fromtimestamp(os.lstat(path).st_mtime,
                                                       tz=datetime.timezone.utc)
            resources["metadata"]["modified_date"] = modified.strftime("%B %-d, %Y")
        except OSError:
            pass
        return resources

    def _forget_copied_links(self, path: Path, resources) -> None:
        """In the first (sanitizing) pass, nbgrader has just copied the submission's other files
        into ``autograded/``, following links: remove each copy of a name that was not a file of
        the submission (nothing of it must reach feedback/)."""
        converter = self.parent
        info = (resources or {}).get("nbgrader", {})
        coursedir = getattr(converter, "coursedir", None)
        if coursedir is None or not info.get("student") or not info.get("assignment"):
            return
        submitted = Path(coursedir.format_path(coursedir.submitted_directory, info["student"],
                                               info["assignment"]))
        if path.parent != submitted:
            return
        dest = Path(coursedir.format_path(coursedir.autograded_directory, info["student"],
                                          info["assignment"]))
        source = Path(coursedir.format_path(coursedir.source_directory, ".", info["assignment"]))
        linked = submitted_files.root_refusal(submitted)   # the whole folder is someone else's
        entries, _ = submitted_files.walk(submitted)
        for entry in entries:
            if entry.kind == "folder" or entry.rel.suffix == ".ipynb":
                continue
            if entry.kind == "file" and (not linked or (source / entry.rel).is_file()):
                continue   # the student's own file, or the instructor's copy nbgrader put back
            copy = dest / entry.rel
            if copy.is_file() and not copy.is_symlink():
                self.log.warning("mnistkit: removed %s from autograded/: in the submission it "
                                 "is %s", copy, "in a linked folder" if linked
                                 else f"a {entry.kind}, not a file")
                copy.unlink()


class CollectKeepingLinks(ExchangeCollect):
    """nbgrader's collect, copying a submission's links as links (see the module docstring)."""

    def do_copy(self, src, dest, log=None):
        dir_size = self.get_size(src)   # nbgrader's own: links not counted
        if dir_size > 1000 * self.coursedir.max_dir_size:
            self.log.error("Directory size is too big")
            raise RuntimeError(f"Directory size is too big. Size is {dir_size}, maximum size is "
                               f"{1000 * self.coursedir.max_dir_size}")
        nbgrader_ignore = ignore_patterns(exclude=self.coursedir.ignore,
                                          include=self.coursedir.include,
                                          max_file_size=self.coursedir.max_file_size,
                                          log=self.log)

        def ignore(directory, names):
            ignored = set(nbgrader_ignore(directory, names))
            for name in names:
                try:
                    mode = os.lstat(os.path.join(directory, name)).st_mode
                except OSError:
                    mode = 0
                if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
                    self.log.warning("Not collecting %s: not a file",
                                     os.path.join(directory, name))
                    ignored.add(name)
            return list(ignored)

        shutil.copytree(src, dest, symlinks=True, ignore=ignore)
        if self.coursedir.groupshared:   # nbgrader's, without chmod through a link
            for dirname, _, filenames in os.walk(dest):
                self._group_writable(dirname, 0o2770, 0o2777)
                for filename in filenames:
                    self._group_writable(os.path.join(dirname, filename), 0o660, 0o777)

    def _group_writable(self, path: str, bits: int, mask: int) -> None:
        st_mode = os.lstat(path).st_mode
        if stat.S_ISLNK(st_mode) or st_mode & bits == bits:
            return
        try:
            os.chmod(path, (st_mode | bits) & mask)
        except PermissionError:
            self.log.warning("Could not update permissions of %s to make it groupshared", path)
