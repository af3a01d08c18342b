"""Does an attack on a real assignment earn only what it deserves (tests/corpus/real.py)?

Every case is one sandboxed grading of the real notebook with some answers replaced by
attacks; the attacked exercises must score at most what they deserve and every other
auto-graded exercise full marks, with no kit problem reported and no grader error."""
import importlib
from pathlib import Path

import pytest

from mnistkit import examples
from mnistkit.grading.run import grade_submission

from .corpus.real import Case
from .test_grade_assignments import auto_points

pytestmark = pytest.mark.slow



def cases() -> list[tuple[str, Case]]:
    found = []
    for path in sorted(Path(__file__).parent.joinpath("corpus").glob("real_*.py")) + \
            sorted(Path(__file__).parent.joinpath("corpus").glob("honest_*.py")):
        module = importlib.import_module(f"tests.corpus.{path.stem}")
        found += [(case.assignment, case) for case in module.CASES]
    return found


@pytest.mark.parametrize("assignment,case", cases(), ids=lambda v: v if isinstance(v, str) else v.name)
def test_attack_earns_only_what_it_deserves(assignment, case, tmp_path, mnist_data_dir, monkeypatch):
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    answers = examples.reference_answers(assignment)
    unknown = set(case.answers) - set(answers)
    assert not unknown, f"{case.name}: no answer cell for {sorted(unknown)}"
    answers.update(case.answers)
    folder = examples.with_answers(assignment, answers, tmp_path / case.name, case.cells)
    results = grade_submission(folder, assignment)
    assert results.problems == [], results.problems
    scores = results.scores()
    points = auto_points(assignment)
    over = {ex_id: (scores.get(ex_id), most) for ex_id, most in case.deserves.items()
            if scores.get(ex_id) is None or scores[ex_id] > most + 1e-9
            or case.exact and scores[ex_id] < most - 1e-9}
    collateral = {ex_id: scores.get(ex_id) for ex_id, pts in points.items()
                  if ex_id not in case.deserves and ex_id not in case.may_also_lose
                  and scores.get(ex_id) != pts}
    messages = {ex_id: [f"{c['check']}: {c['status']}: {c['message']}"
                        for c in entry.get("checks", []) if c["status"] != "passed"]
                for ex_id, entry in results.exercises() if ex_id in over or ex_id in collateral}
    assert over == {} and collateral == {}, (case.attack, over, collateral, messages)
