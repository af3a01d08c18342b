"""The command line an instructor types: help, errors, and the README's promises."""
import re

import pytest

from .conftest import ROOT, run_mnistkit

VERBS = ["data", "build", "exercises", "grade", "grade-class", "demo", "bench"]


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


@pytest.mark.parametrize("args", [["frobnicate"], ["grade"], ["build", "--nope"],
                                  ["exercises", "--assignment"], ["data", "--into", "a", "--use", "b"],
                                  ["grade-class", "submitted"]])
def test_bad_arguments_give_one_line_and_no_traceback(args):
    """Do bad arguments get a one-line error and exit code 2, never a traceback?"""
    proc = run_mnistkit(*args)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "error:" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_unknown_assignment_is_a_one_line_error():
    """Does asking for an assignment that does not exist say which ones do?"""
    proc = run_mnistkit("exercises", "--assignment", "no_such_thing")
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "known:" in proc.stderr


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
    """Does grading a class from a folder that does not exist say so in one line?"""
    proc = run_mnistkit("grade-class", tmp_path / "nope", "--assignment", "a1_pixel_similarity",
                        "--out", tmp_path / "out")
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "no such folder" in proc.stderr
