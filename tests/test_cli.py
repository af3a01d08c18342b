"""The command line an instructor types: help, errors, and the README's promises; and which
checkout it works on when there are two."""
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from mnistkit.build import nbgrader_env

from .conftest import ROOT, run_mnistkit
from .fixtures.checkout import fresh_clone

VERBS = ["data", "build", "course", "exercises", "grade", "grade-class", "demo", "bench"]
A1 = "a1_pixel_similarity"
# Imported only by a verb's real work: a bad argument is refused before any of them loads.
HEAVY = ("torch", "fastai", "nbgrader", "nbformat", "numpy", "sqlalchemy", "jupyter_server")


def test_help_lists_every_verb():
    """Does `mnistkit --help` name each job with a one-line explanation?"""
    proc = run_mnistkit("--help", check=True)
    for verb in VERBS:
        assert re.search(rf"^\s+{verb}\b", proc.stdout, re.M), verb


@pytest.mark.parametrize("verb", VERBS)
def test_each_verb_explains_itself(verb):
    """Does every verb's --help describe what it does?"""
    proc = run_mnistkit(verb, "--help", check=True)
    assert proc.stdout.startswith(f"usage: mnistkit {verb}")
    assert len(proc.stdout.splitlines()) >= 4


# argparse's own refusals, then the ones the verbs check: folders and files named on the
# command line, assignment names.
BAD_ARGUMENTS = [
    ["frobnicate"], ["grade"], ["build", "--nope"], ["exercises", "--assignment"],
    ["data", "--into", "a", "--use", "b"], ["grade-class", "submitted"],
    ["exercises", "--assignment", "no_such_thing"],
    ["grade", "no/such/folder", "--assignment", A1],
    ["grade", f"release/{A1}", "--assignment", "no_such_thing"],
    ["grade", f"release/{A1}", "--assignment", A1, "--results", "release"],
    ["grade-class", "no/such/folder", "--assignment", A1, "--out", "x"],
    ["grade-class", "release", "--assignment", "no_such_thing", "--out", "x"],
    ["grade-class", "release", "--assignment", A1, "--out", "README.md"],
    ["grade-class", "release", "--assignment", A1, "--out", "x", "--gradebook", "source"],
    ["data", "--into", "README.md"], ["data", "--into", "README.md/inside"],
    ["data", "--use", "no/such/folder"],
    ["bench", "--grading", "--assignment", "no_such_thing"],
]


@pytest.mark.parametrize("args", BAD_ARGUMENTS, ids=" ".join)
def test_bad_arguments_give_one_line_and_no_traceback(args):
    """Do bad arguments get a one-line error and exit code 2, as the README says, never a
    traceback?"""
    proc = run_mnistkit(*args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "error:" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "internal error" not in proc.stderr


@pytest.mark.parametrize("args", [a for a in BAD_ARGUMENTS if len(a) > 2], ids=" ".join)
def test_bad_arguments_are_refused_before_the_slow_imports(args):
    """Is a bad argument refused before torch, nbgrader or nbformat are imported (seconds of a
    terminal's time)?"""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "mnistkit", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert imported, "python -X importtime printed nothing"
    assert not {m for m in imported if m.split(".")[0] in HEAVY}


def test_unknown_assignment_says_which_exist():
    """Does asking for an assignment that does not exist say which ones do?"""
    proc = run_mnistkit("exercises", "--assignment", "no_such_thing")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and f"known: {A1}" in proc.stderr


def test_data_into_an_existing_file_says_what_is_wrong(tmp_path):
    """Does `mnistkit data --into FILE` say that FILE is a file (not a FileExistsError), exit 2
    and leave the file alone?"""
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    proc = run_mnistkit("data", "--into", target)
    assert proc.returncode == 2
    assert proc.stderr == (f"mnistkit data: error: --into {target}: a file, not a folder "
                           "(see `mnistkit data --help`)\n")
    assert target.read_text() == "mine"


def test_data_folder_that_cannot_be_written_is_a_one_line_error(tmp_path):
    """When fastai's data folder (from its config.ini) cannot be written, does `mnistkit data`
    say so in one line and exit 1, not with an internal error?"""
    home, blocker = tmp_path / "fastai", tmp_path / "a-file"
    home.mkdir()
    blocker.write_text("")
    (home / "config.ini").write_text(f"[DEFAULT]\ndata = {blocker}/data\narchive = {home}/a\n"
                                     f"storage = {home}/s\nmodel = {home}/m\n")
    proc = run_mnistkit("data", env={**nbgrader_env(), "FASTAI_HOME": str(home)})
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1
    assert f"{blocker} is a file, not a folder" in proc.stderr
    assert "internal error" not in proc.stderr


def test_readme_names_the_two_commands_and_ci_runs_the_test_one():
    """Does the README give `make demo` and `make test`, and does CI run exactly `make test`?"""
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith("#") and not line.startswith(("set ", "cd "))]
    assert ci == ["make test"]


def test_dependencies_are_pinned():
    """Are the key packages pinned to the versions the kit was tested with?"""
    pins = dict(line.split("==", 1) for line in (ROOT / "requirements.lock").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    assert pins["fastai"] == "2.8.12" and pins["nbgrader"] == "0.9.6"
    assert pins["jupyterlab"].startswith("4.")
    unpinned = [line for line in (ROOT / "requirements.lock").read_text().splitlines()
                if line.strip() and not line.startswith("#") and "==" not in line]
    assert unpinned == []


def test_grade_class_on_a_missing_folder_is_a_one_line_error(tmp_path):
    """Does grading a class from a folder that does not exist say so in one line, before it
    says how many workers it would start?"""
    proc = run_mnistkit("grade-class", tmp_path / "nope", "--assignment", A1,
                        "--out", tmp_path / "out")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "no such folder" in proc.stderr
    assert proc.stdout == ""


def test_grades_csv_is_ignored_by_git():
    """Is `nbgrader export`'s grades.csv (students' grades) kept out of git?"""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    proc = subprocess.run(["git", "check-ignore", "-q", "grades.csv"], cwd=ROOT)
    assert proc.returncode == 0


# --- two checkouts: the installed command works on the one it is run in ------------------

def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def in_checkout(clone: Path, *args: str, cwd: Path | None = None, **env: str):
    """The installed `mnistkit` (this checkout's venv, an editable install of this checkout)
    run in ``clone`` as an instructor would, with the venv on PATH."""
    return subprocess.run([str(Path(sys.executable).parent / "mnistkit"), *args],
                          cwd=cwd or clone, env={**nbgrader_env(), **env},
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A second checkout of the kit, with a1's first auto-graded exercise worth 99 points."""
    clone = fresh_clone(tmp_path_factory.mktemp("second-checkout") / "kit")
    path = clone / "source" / A1 / "pixel_similarity.ipynb"
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")
                and c.cell_type == "code")
    cell.metadata.nbgrader.points = 99
    nbformat.write(nb, str(path))
    return clone, cell.metadata.nbgrader.grade_id


def test_the_command_in_a_second_checkout_reads_that_checkout(clone):
    """Run in another checkout (or a folder inside it), does the installed `mnistkit` read that
    checkout's source/ and run its code, not the checkout it was installed from?"""
    clone, grade_id = clone
    for where in (clone, clone / "source" / A1):
        proc = in_checkout(clone, "exercises", "--assignment", A1, "--json", cwd=where)
        assert proc.returncode == 0, proc.stderr
        points = {ex["id"]: ex["points"] for ex in json.loads(proc.stdout)}
        assert points[grade_id] == 99
    proc = in_checkout(clone, "--version")
    assert proc.stdout.strip().endswith(f"(the checkout at {clone})")
    here = run_mnistkit("exercises", "--assignment", A1, "--json", check=True)
    assert {ex["id"]: ex["points"] for ex in json.loads(here.stdout)}[grade_id] != 99


@pytest.mark.slow
def test_build_in_a_second_checkout_writes_there_only(clone):
    """Does `mnistkit build` in a second checkout rebuild that checkout's release/ and leave
    the installed checkout's release/ alone?"""
    clone, grade_id = clone
    before = digest(ROOT / "release")
    proc = in_checkout(clone, "build")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert digest(ROOT / "release") == before
    nb = nbformat.read(clone / "release" / A1 / "pixel_similarity.ipynb", as_version=4)
    points = {c.metadata.nbgrader.grade_id: c.metadata.nbgrader.get("points")
              for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id")}
    assert points[grade_id] == 99
    check = in_checkout(clone, "build", "--check")
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.slow
def test_nbgrader_in_a_second_checkout_imports_its_mnistkit(clone, tmp_path):
    """Does nbgrader run in a second checkout load that checkout's mnistkit (its
    nbgrader_config.py goes first on sys.path, ahead of the editable install)?"""
    clone, _ = clone
    marker = tmp_path / "imported-from"
    init = clone / "mnistkit" / "__init__.py"
    original = init.read_text()
    init.write_text(original + "\nimport os as _os\nif _os.environ.get('MNISTKIT_TEST_MARK'):\n"
                    "    open(_os.environ['MNISTKIT_TEST_MARK'], 'a').write(__file__ + '\\n')\n")
    try:
        proc = subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "db", "student",
                               "list"], cwd=clone,
                              env={**nbgrader_env(), "MNISTKIT_TEST_MARK": str(marker)},
                              capture_output=True, text=True, timeout=300)
    finally:
        init.write_text(original)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert marker.read_text().splitlines() == [str(init)]


def test_a_course_without_the_kits_code_is_named(tmp_path):
    """Run in an nbgrader course folder that has no mnistkit/ of its own, does the command
    say which course it uses?"""
    for name in ("source", "autograder"):
        (tmp_path / name).mkdir()
    (tmp_path / "nbgrader_config.py").write_text("")
    proc = in_checkout(tmp_path, "exercises", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("\n") == 1
    assert f"using the kit's course at {ROOT}" in proc.stderr
