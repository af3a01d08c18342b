"""Generate release/ from source/ with nbgrader, or check that release/ is up to date.

nbgrader's own `generate_assignment` does the work (solutions stripped, mark schemes and
hidden tests removed, outputs cleared, the students' banner and the error-hint cell added by
mnistkit.release_banner and mnistkit.selfcheck_hints); this module
runs it into a scratch folder with a scratch gradebook, so a build never touches the course's
gradebook.db, and only then replaces release/<assignment>/.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from mnistkit import catalog
from mnistkit.paths import RELEASE, ROOT


class BuildError(Exception):
    pass


def nbgrader_env() -> dict:
    """Environment for nbgrader subprocesses: it shells out to `alembic`, which lives beside
    this Python in the venv even when the venv is not activated."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def generate(assignment: str, out_dir: Path) -> Path:
    """Run `nbgrader generate_assignment` into ``out_dir``; ``assignment`` may be ``*`` (all of
    them in one nbgrader process: its start-up and gradebook migration are most of the time)."""
    db = out_dir / "gradebook.db"
    cmd = [sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force",
           "--log-level=WARN", f"--CourseDirectory.root={ROOT}",
           f"--CourseDirectory.release_directory={out_dir / 'release'}",
           f"--CourseDirectory.db_url=sqlite:///{db}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=nbgrader_env(), capture_output=True, text=True)
    produced = out_dir / "release" / assignment.replace("*", "")
    if proc.returncode != 0 or not produced.is_dir():
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise BuildError(f"nbgrader generate_assignment {assignment} failed:\n{tail}")
    return produced


def _canonical(path: Path) -> str:
    return json.dumps(json.loads(path.read_text()), sort_keys=True, indent=1)


def differences(built: Path, committed: Path) -> list[str]:
    """Files that differ between a fresh build and the committed release folder."""
    names = {p.relative_to(built) for p in built.rglob("*") if p.is_file()}
    if committed.is_dir():
        names |= {p.relative_to(committed) for p in committed.rglob("*") if p.is_file()}
    stale = []
    for name in sorted(names):
        a, b = built / name, committed / name
        if not (a.is_file() and b.is_file()):
            stale.append(f"{name} ({'missing from release/' if a.is_file() else 'not in source/'})")
        elif name.suffix == ".ipynb" and _canonical(a) != _canonical(b):
            stale.append(str(name))
        elif name.suffix != ".ipynb" and a.read_bytes() != b.read_bytes():
            stale.append(str(name))
    return stale


def build(check: bool = False, report=print) -> list[str]:
    """Rebuild release/ (or, with check, list what is stale without writing anything)."""
    stale_all = []
    names = catalog.assignments()
    with tempfile.TemporaryDirectory(prefix="mnistkit-build-") as tmp:
        everything = generate("*", Path(tmp))
        for assignment in names:
            built = everything / assignment
            committed = RELEASE / assignment
            stale = [f"{assignment}/{s}" for s in differences(built, committed)]
            stale_all += stale
            if check:
                report(f"  {assignment:<24} {'stale: ' + ', '.join(stale) if stale else 'up to date'}")
            elif stale:
                if committed.exists():
                    shutil.rmtree(committed)
                shutil.copytree(built, committed)
                report(f"  {assignment:<24} rebuilt ({len(stale)} file(s) changed)")
            else:
                report(f"  {assignment:<24} up to date")
    orphans = [p.name for p in RELEASE.iterdir() if p.is_dir() and p.name not in names] \
        if RELEASE.is_dir() else []
    for name in orphans:
        stale_all.append(f"{name}/ (no longer in source/)")
        if check:
            report(f"  {name:<24} stale: not in source/")
        else:
            shutil.rmtree(RELEASE / name)
            report(f"  {name:<24} removed (not in source/)")
    return stale_all
