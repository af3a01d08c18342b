"""The submission's scratch folder on the host: what each sandbox start copies into its disk quota.

``prepare(scratch, notebook_path, limits)`` fills ``scratch/home`` with a copy of the submission
folder (no hidden folders, never a link; at most half the quota, so that a big folder never keeps
the sandbox from starting), fastai's config pointing at the sandbox's data view and its own
archive/storage/model folders, and the grader's matplotlib font list (seconds saved at the first
import); ``scratch/quota`` is the cold start's mount point for the quota's tmpfs.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from mnistkit.grading.sandbox_policy import DATA, HOME, Limits


def prepare(scratch: Path, notebook_path: Path, limits: Limits) -> Path:
    """``scratch/home``, ready to be copied into the quota at each start; returns it."""
    from mnistkit.data import FASTAI_DEFAULTS
    home = scratch / "home"
    home.mkdir()
    (scratch / "quota").mkdir()   # the disk quota's mount point (launchers.ColdLauncher)
    folder = Path(notebook_path).resolve().parent
    # The copy goes into the disk quota at each start: at most half of it, so that a big
    # submission folder never keeps the sandbox from starting.
    budget = min(limits.copy_bytes, limits.disk_bytes // 2)
    entries = limits.disk_files // 2
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or path.is_symlink():
            continue  # no hidden folders (.ipynb_checkpoints, .git), never follow links
        entries -= 1
        if entries < 0:
            break
        if path.is_dir():
            (home / rel).mkdir(parents=True, exist_ok=True)
        elif path.is_file():
            budget -= path.stat().st_size
            if budget < 0:
                break
            (home / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, home / rel)
    fastai_home = home / ".fastai"
    fastai_home.mkdir(exist_ok=True)
    lines = ["[DEFAULT]", f"data = {DATA}"]
    lines += [f"{key} = {HOME}/.fastai/{value}"
              for key, value in FASTAI_DEFAULTS.items() if key != "data"]
    (fastai_home / "config.ini").write_text("\n".join(lines) + "\n")
    for key in ("archive", "storage", "model"):
        (fastai_home / FASTAI_DEFAULTS[key]).mkdir(exist_ok=True)
    # matplotlib builds a font list on first import (seconds); the grader's is valid inside
    # too (same font paths), so the student starts with a copy of it.
    mpl_cache = Path(os.environ.get("MPLCONFIGDIR") or Path.home() / ".cache" / "matplotlib")
    target = home / ".config" / "matplotlib"
    target.mkdir(parents=True, exist_ok=True)
    for font_list in mpl_cache.glob("fontlist-v*.json"):
        if font_list.is_file() and not font_list.is_symlink():
            shutil.copyfile(font_list, target / font_list.name)
    # bwrap maps the sandbox's uid to ours (root): ownership is already right.
    return home
