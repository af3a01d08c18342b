"""The exercise catalog an instructor reads: complete, consistent, and matched by hidden tests."""
import importlib.util
import json

from mnistkit.paths import AUTOGRADER

from .conftest import run_mnistkit


def catalog_json():
    return json.loads(run_mnistkit("exercises", "--json", check=True).stdout)


def test_json_has_the_documented_fields():
    """Does `mnistkit exercises --json` give id, assignment, notebook, kind, points, questionnaire?"""
    exercises = catalog_json()
    assert exercises
    for ex in exercises:
        assert {"id", "assignment", "notebook", "kind", "points", "questionnaire"} <= ex.keys()
        assert ex["kind"] in ("auto", "manual") and ex["points"] > 0
        assert all(isinstance(n, int) and 1 <= n <= 37 for n in ex["questionnaire"])
    ids = [ex["id"] for ex in exercises]
    assert len(ids) == len(set(ids)), "exercise ids must be unique"


def test_every_questionnaire_item_is_covered():
    """Is every one of the chapter's 37 questionnaire items answered somewhere?"""
    covered = {n for ex in catalog_json() for n in ex["questionnaire"]}
    assert sorted(set(range(1, 38)) - covered) == []


def test_most_questionnaire_items_are_auto_graded():
    """Are at least 25 of the 37 items auto-graded (code or a fair concept check)?"""
    auto = {n for ex in catalog_json() if ex["kind"] == "auto" for n in ex["questionnaire"]}
    assert len(auto) >= 25, sorted(set(range(1, 38)) - auto)


def marked_exercises(module_path):
    """Exercise ids on the module's test functions (read from their pytest marks)."""
    spec = importlib.util.spec_from_file_location(f"hidden_{module_path.stem}", module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    marks = [m for name, obj in vars(module).items() if name.startswith("test")
             for m in getattr(obj, "pytestmark", [])]
    for mark in [m for m in marks if m.name == "parametrize"]:  # marks on pytest.param(...)
        marks += [pm for value in mark.args[1] for pm in getattr(value, "marks", ())]
    return {m.args[0] for m in marks if m.name == "exercise"}


def test_hidden_tests_match_the_catalog():
    """Does every auto-graded exercise have hidden checks, and every check a real exercise?"""
    exercises = catalog_json()
    for assignment in sorted({ex["assignment"] for ex in exercises}):
        module = AUTOGRADER / f"test_{assignment}.py"
        assert module.is_file(), f"no hidden tests for {assignment}"
        marked = marked_exercises(module)
        auto = {ex["id"] for ex in exercises if ex["assignment"] == assignment and ex["kind"] == "auto"}
        manual = {ex["id"] for ex in exercises if ex["assignment"] == assignment and ex["kind"] == "manual"}
        assert sorted(auto - marked) == [], f"{assignment}: auto-graded exercises without hidden tests"
        assert sorted(marked - auto) == [], f"{assignment}: hidden tests for unknown or manual ids"
        assert not (marked & manual)
