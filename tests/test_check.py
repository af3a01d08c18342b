"""`mnistkit check`: the course has no gaps, and each rule, broken once in a copy of the course,
is named with its file and cell or line.

The copy holds what check reads: source/, autograder/, solutions/. Each test breaks one thing
in the copy's notebook (plain json: the notebook is the declaration) or hidden test module.
"""
import json
import shutil
import subprocess
import sys

import pytest

from mnistkit.authoring import gaps, hidden_checks, parts
from mnistkit.paths import ROOT

A1 = "a1_pixel_similarity"
NOTEBOOK = f"source/{A1}/pixel_similarity.ipynb"


@pytest.fixture
def course(tmp_path):
    for folder in ("source", "autograder", "solutions"):
        shutil.copytree(ROOT / folder, tmp_path / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def edit_notebook(course, change):
    path = course / NOTEBOOK
    nb = json.loads(path.read_text())
    change(nb["cells"])
    path.write_text(json.dumps(nb, indent=1))


def index_of(cells, grade_id):
    return next(i for i, c in enumerate(cells)
                if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id)


def found(course) -> list[str]:
    return [str(gap) for gap in gaps.course_gaps(course)]


def test_the_course_has_no_gaps_and_check_says_so_in_seconds():
    """Does `mnistkit check` pass on the kit's course, and say how long it took?"""
    done = subprocess.run([sys.executable, "-m", "mnistkit", "check"], capture_output=True,
                          text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every exercise has its parts" in done.stdout


def test_an_answer_cell_below_its_graded_cell(course):
    def change(cells):
        answer = cells.pop(index_of(cells, "odd_doubled-answer"))
        cells.insert(index_of(cells, "odd_doubled") + 1, answer)
    edit_notebook(course, change)
    assert any("pixel_similarity.ipynb, cell" in g and "odd_doubled: the answer cell comes after"
               in g for g in found(course))


def test_no_points_and_no_questionnaire_items(course):
    def change(cells):
        graded = cells[index_of(cells, "stack_images")]
        graded["metadata"]["nbgrader"]["points"] = 0
        del graded["metadata"]["mnistkit"]["questionnaire"]
    edit_notebook(course, change)
    problems = [g for g in found(course) if "(stack_images): stack_images:" in g]
    assert any("no points" in g for g in problems)
    assert any("no metadata.mnistkit.questionnaire" in g for g in problems)


def test_no_reference_between_the_markers(course):
    def change(cells):
        answer = cells[index_of(cells, "rank_from_shape-answer")]
        text = "".join(answer["source"])
        head, rest = text.split("### BEGIN SOLUTION", 1)
        answer["source"] = head + "### BEGIN SOLUTION\n    ### END SOLUTION" + rest.split("### END SOLUTION", 1)[1]
    edit_notebook(course, change)
    assert any("(rank_from_shape-answer): rank_from_shape: nothing between the solution markers"
               in g for g in found(course))


def test_solutions_made_from_an_older_notebook(course):
    def change(cells):
        answer = cells[index_of(cells, "l1_distance-answer")]
        answer["source"] = "".join(answer["source"]).replace("### END SOLUTION",
                                                             "pass   # changed\n    ### END SOLUTION")
    edit_notebook(course, change)
    assert f"solutions/{A1}.py: {A1}: not the references of the source notebook: run " \
           "`mnistkit build`" in found(course)


def test_no_hidden_checks_and_checks_of_an_unknown_exercise(course):
    module = course / "autograder" / f"test_{A1}.py"
    module.write_text(module.read_text().replace('ex("stack_images")', 'ex("stack_imagez")'))
    problems = found(course)
    assert f'autograder/test_{A1}.py: stack_images: no hidden checks: add tests marked ' \
           'exercise("stack_images")' in problems
    assert any(g.startswith(f"autograder/test_{A1}.py, line ") and "stack_imagez:" in g
               and "an exercise the notebook does not declare" in g for g in problems)


def test_no_mutant_and_a_mutant_that_is_the_reference(course):
    declared = parts.read(A1, course / "source")
    reference = declared.exercise("is_3").reference

    def change(cells):
        cells[:] = [c for c in cells if not "".join(c["source"]).startswith("# mutant of odd_doubled:")]
        first = next(c for c in cells if "".join(c["source"]).startswith("# mutant of is_3:"))
        first["source"] = "# mutant of is_3: not wrong at all\n" + reference
    edit_notebook(course, change)
    problems = found(course)
    assert any("(odd_doubled): odd_doubled: no mutant" in g for g in problems)
    assert any("(is_3-mutant-1): is_3: the mutant is the reference itself" in g for g in problems)


def test_a_hidden_check_that_reuses_the_self_checks_input(course):
    module = course / "autograder" / f"test_{A1}.py"
    module.write_text(module.read_text() + '''

@ex("odd_doubled")
def test_odd_doubled_on_the_self_checks_list(student):
    assert student.call("odd_doubled", [1, 2, 3, 4, 5]) == [2, 6, 10]
''')
    assert any("(odd_doubled): odd_doubled: the hidden checks reuse the self-check's input "
               "[1, 2, 3, 4, 5]" in g for g in found(course))


def test_a_prompt_that_does_not_say_what_the_checks_enforce(course):
    def change(cells):
        start = index_of(cells, "odd_doubled") + 1
        for cell in cells[start:index_of(cells, "mnist_distance-answer")]:
            if cell["cell_type"] == "markdown":
                text = "".join(cell["source"])
                cell["source"] = text.replace("loop", "lap").replace("tensor", "thing")
    edit_notebook(course, change)
    problems = [g for g in found(course) if "(mnist_distance-answer): mnist_distance:" in g]
    assert any('the prompt never says "loop"' in g for g in problems)
    assert any('the prompt never says "tensor"' in g for g in problems)


def test_the_reader_sees_what_a_check_compares():
    """A check of rule 7's reader: the distances are compared as tensors (a parametrized
    check), `baseline_accuracy` as numbers, `validation_metrics_choice` as neither."""
    checks = hidden_checks.read(A1)
    assert checks["l1_distance"].forms == checks["rmse_distance"].forms == {"tensor"}
    assert checks["baseline_accuracy"].forms == {"number"}
    assert checks["validation_metrics_choice"].forms == set()


@pytest.mark.parametrize("assignment", ["a1_pixel_similarity", "a2_gradient_descent",
                                        "a3_training_loop", "a4_further_research"])
def test_each_hidden_module_reads_in_the_notebooks_order(assignment):
    """Does each hidden module list its exercises' checks in the order the notebook asks them,
    so an instructor reads the two side by side?"""
    asked = [ex.id for ex in parts.read(assignment).exercises if ex.kind == "auto"]
    checks = hidden_checks.read(assignment)
    listed = sorted(checks, key=lambda ex_id: min(checks[ex_id].lines.values()))
    assert listed == [ex_id for ex_id in asked if ex_id in checks]
