"""The typed settings (mnistkit/settings.py): documented, complete, parsed, with clear errors."""
import ast
import dataclasses
import json
import re
from pathlib import Path

import pytest

from mnistkit import settings as kit_settings
from mnistkit.settings import Limits, Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "settings.md"


def documented_table() -> str:
    text = DOC.read_text()
    match = re.search(r"<!-- settings table: begin -->\n(.*?)<!-- settings table: end -->",
                      text, re.S)
    assert match, f"{DOC} lost its table markers"
    return match.group(1)


def test_the_documented_table_is_the_declared_settings():
    assert documented_table() == kit_settings.table(), (
        "docs/settings.md differs from mnistkit/settings.py: paste `python -m mnistkit.settings` "
        "between its table markers")


def test_every_row_of_the_table_is_a_field_with_a_meaning():
    names = {f.name for f in dataclasses.fields(Settings)} - {"limits"}
    names |= {f"limits.{f.name}" for f in dataclasses.fields(Limits) if f.name != "preload"}
    keys = {key for _, key, _, _, _ in kit_settings.rows() if key}
    assert keys == names
    assert all(meaning for *_, meaning in kit_settings.rows())


def variables_read_by_the_kit() -> set[str]:
    """Every MNISTKIT_* name spelled in the kit's code (a string or a prefix + field name)."""
    found = set()
    for path in (ROOT / "mnistkit").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.update(re.findall(r"\bMNISTKIT_[A-Z_]*[A-Z]\b", node.value))
    return found


def test_every_variable_the_kit_reads_is_a_setting():
    declared = {variable for variable, *_ in kit_settings.rows() if variable}
    missing = variables_read_by_the_kit() - declared - {"MNISTKIT_LIMIT"}
    assert not missing, f"read by the kit but not in mnistkit/settings.py: {sorted(missing)}"


def test_defaults_without_course_file(tmp_path):
    got = load_settings(tmp_path, environ={})
    assert got == Settings()
    assert got.limits == Limits()
    assert got.warm_start is True and got.unsafe_in_process is False
    assert got.gpu_assignments == ("a4_further_research",)


def test_environment_overrides_parse(tmp_path):
    got = load_settings(tmp_path, environ={
        "MNISTKIT_LIMIT_CELL_SECONDS": "300", "MNISTKIT_LIMIT_DISK_BYTES": "1e6",
        "MNISTKIT_WARM_START": "0", "MNISTKIT_UNSAFE_IN_PROCESS": "1",
        "MNISTKIT_GPU_ASSIGNMENTS": " a1 , a3,", "MNISTKIT_GRADE_TIMEOUT": "90",
        "MNISTKIT_WIRE_AUDIT": "/tmp/audit.jsonl", "MNISTKIT_GRADING_SEED": "fresh",
        "MNISTKIT_LIMIT_GRADER_MEMORY_BYTES": "0"})
    assert got.limits.cell_seconds == 300.0
    assert got.limits.disk_bytes == 1_000_000 and isinstance(got.limits.disk_bytes, int)
    assert got.warm_start is False and got.unsafe_in_process is True
    assert got.gpu_assignments == ("a1", "a3")
    assert got.grade_timeout == 90.0 and got.grading_seed == "fresh"
    assert got.wire_audit == Path("/tmp/audit.jsonl") and got.grader_memory_bytes == 0
    assert Limits.from_env({"MNISTKIT_LIMIT_THREADS": "4"}).threads == 4


def test_course_file_then_environment(tmp_path):
    (tmp_path / ".mnistkit").mkdir()
    (tmp_path / ".mnistkit" / "course.json").write_text(json.dumps(
        {"course_id": "cs101", "exchange": "/srv/x", "grade_timeout": 600,
         "limits": {"cell_seconds": 30, "threads": 1}}))
    got = load_settings(tmp_path, environ={"MNISTKIT_LIMIT_THREADS": "3"})
    assert (got.course_id, got.exchange, got.grade_timeout) == ("cs101", "/srv/x", 600.0)
    assert (got.limits.cell_seconds, got.limits.threads) == (30.0, 3)


@pytest.mark.parametrize("variable,value,says", [
    ("MNISTKIT_LIMIT_CELL_SECONDS", "soon", "MNISTKIT_LIMIT_CELL_SECONDS='soon' is not a number"),
    ("MNISTKIT_LIMIT_PROCESSES", "many", "MNISTKIT_LIMIT_PROCESSES='many' is not a number"),
    ("MNISTKIT_GRADE_TIMEOUT", "1h", "MNISTKIT_GRADE_TIMEOUT='1h' is not a number"),
    ("MNISTKIT_WARM_START", "maybe", "MNISTKIT_WARM_START='maybe' is not a yes/no value"),
])
def test_a_bad_value_names_the_variable(tmp_path, variable, value, says):
    with pytest.raises(SettingsError) as caught:
        load_settings(tmp_path, environ={variable: value})
    assert says in str(caught.value)


def test_limits_from_env_keeps_its_error():
    with pytest.raises(ValueError, match="MNISTKIT_LIMIT_RESTARTS='x' is not a number"):
        Limits.from_env({"MNISTKIT_LIMIT_RESTARTS": "x"})


def test_a_bad_course_file_names_the_key(tmp_path):
    (tmp_path / ".mnistkit").mkdir()
    (tmp_path / ".mnistkit" / "course.json").write_text(json.dumps({"limits": {"cell_secs": 3}}))
    with pytest.raises(SettingsError, match="limits has no 'cell_secs'"):
        load_settings(tmp_path, environ={})


def test_settings_sit_below_the_grading_driver():
    tree = ast.parse((ROOT / "mnistkit" / "settings.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name.startswith("mnistkit.grading")}
