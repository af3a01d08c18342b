"""What a student reads about their grade, and can act on (issue 18, item 5), without grading:

- a cell is named as JupyterLab shows it (its exercise and section, or the text it follows),
  never by a count of code cells, and the kit's cells are never called the student's;
- a check is named by its exercise and what it checks, in results.json, the terminal summary
  and the feedback lines, and nothing of the hidden tests' code shows;
- the feedback keeps the student's own outputs, plain and bounded, and nothing a browser would
  run; its header leaves hand grading that has not happened out of the score.

The same on real gradings: tests/test_grade.py (a note about a cell), tests/test_nbgrader_autograde.py
and tests/test_feedback_browser.py (the feedback file).
"""
import base64
import copy

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_output

from mnistkit import cells as kit_cells
from mnistkit.cell_places import code_cell_places, place_of
from mnistkit.grading import run, submitted_outputs
from mnistkit.grading.nbgrader_feedback import score_line
from mnistkit.grading.results import Results, check_lines, check_title

from .fixtures.toy_course.toy_helpers import tiny_png


# --- cells named as the student sees them ---------------------------------------------------

def notebook_cells():
    """A notebook laid out like the kit's: a title, a setup cell, a section with an exercise,
    a student's scratch cell, a demonstration, a cell the student added after another."""
    cells = [
        new_markdown_cell("# Assignment 9: a test notebook\nIntro."),
        kit_cells.locked_code("setup-data", "path = untar_data(URLs.MNIST_SAMPLE)"),
        new_markdown_cell("## 4. Broadcasting and metrics\nSome text."),
        new_markdown_cell("### Exercise: `mnist_distance` with broadcasting\nWrite it."),
        kit_cells.answer_code("mnist_distance", "def mnist_distance(a, b):\n    pass"),
        kit_cells.self_check("mnist_distance", 3, "assert True"),
        new_markdown_cell("Try it on a *whole* batch of images, at once:"),
        new_code_cell("mnist_distance(valid_3_tens, mean3)"),
        new_code_cell("print(torch.__version__)\nimport os"),
        kit_cells.locked_code("demo-ten-epochs", "for i in range(10): train()"),
    ]
    return [dict(c, source=c.source) for c in nbformat.from_dict(
        nbformat.v4.new_notebook(cells=cells)).cells]


def test_cells_are_named_by_exercise_section_or_the_text_they_follow():
    """Does each code cell get the words a student can find in JupyterLab?"""
    assert code_cell_places(notebook_cells()) == [
        "the kit's setup cell after 'Assignment 9: a test notebook'",
        "the answer cell of mnist_distance (section '4. Broadcasting and metrics')",
        "the kit's self-check of mnist_distance (section '4. Broadcasting and metrics')",
        "the cell after 'Try it on a whole batch of images,…' "
        "(section '4. Broadcasting and metrics')",
        "the cell starting `print(torch.__version__)` after 'Try it on a whole batch of "
        "images,…' (section '4. Broadcasting and metrics')",
        "the kit's demonstration cell after 'Try it on a whole batch of images,…' "
        "(section '4. Broadcasting and metrics')",
    ]


def test_notes_about_cells_never_count_cells_nor_call_the_kits_cells_yours():
    """Do the notes of a grading where every non-answer cell failed name each cell by its
    place, with no "code cell N" and no "your own" for a setup or demonstration cell?"""
    places = code_cell_places(notebook_cells())
    report = dict(exercises={}, notes=[], cells=[
        dict(index=i, grade_id=gid, status="error", seconds=0.0, message="NameError: x",
             place=places[i])
        for i, gid in enumerate(["setup-data", "mnist_distance-answer", "mnist_distance", None,
                                 None, "demo-ten-epochs"])])
    notes = run.finish_report(report)["notes"]
    assert len(notes) == 5                      # the answer cell's error is its exercise's
    assert notes[0] == "the kit's setup cell after 'Assignment 9: a test notebook' raised: " \
                       "NameError: x"
    assert not any("code cell" in n or "your own" in n or "yours" in n for n in notes)
    assert sum("the kit's" in n for n in notes) == 3


def test_a_report_without_places_still_names_no_count():
    """An older stored report (grade-class's, resumed) has no places: still no count."""
    assert place_of(dict(index=16, grade_id=None)) == "a cell without an exercise"
    assert place_of(dict(index=3, grade_id="setup-data")) == "the kit's cell 'setup-data'"
    assert place_of(dict(index=5, grade_id="is_3-answer")) == "the answer cell of is_3"


# --- checks named by what they check --------------------------------------------------------

@pytest.mark.parametrize("exercise,check,title", [
    ("sgd_step", "test_sgd_step_changes_nothing_in_place", "changes nothing in place"),
    ("mnist_distance", "test_mnist_distance_batch_against_one_image", "batch against one image"),
    ("l1_distance", "test_distance_random_images[l1_distance]", "random images"),
    ("MomentumSGD", "test_momentum_defaults_to_0_9", "defaults to 0.9"),
    ("BasicOptim", "test_basic_optim_zero_grad", "zero grad"),
    ("train_digits", "test_trained_model_accuracy[90%]", "trained model accuracy (90%)"),
    ("validation_metrics_choice", "test_validation_metrics_choice", "the answer"),
])
def test_a_check_is_named_by_what_it_checks(exercise, check, title):
    assert check_title(exercise, check) == title


def graded_entry():
    """An exercise whose answer cell raised, with four checks: two failed for one reason."""
    checks = [dict(exercise="sgd_step", check=name, status=status, message=message, weight=1.0)
              for name, status, message in [
                  ("test_sgd_step_one_parameter", "passed", ""),
                  ("test_sgd_step_several_parameters", "failed", "new parameter 1 differs"),
                  ("test_sgd_step_changes_nothing_in_place", "failed", "new parameter 1 differs"),
                  ("test_sgd_step_on_parameters_that_require_grad", "failed", "a list, got tuple")]]
    return dict(kind="auto", title="Self-check for sgd_step (the hidden autograder decides)",
                points=3.0, score=0.75, status="graded", checks=checks)


def test_feedback_lines_name_the_checks_each_reason_is_for():
    entry = graded_entry()
    assert check_lines("sgd_step", entry["checks"]) == [
        "several parameters; changes nothing in place: new parameter 1 differs",
        "on parameters that require grad: a list, got tuple"]
    every = [dict(c, status="failed", message="`sgd_step` raised NotImplementedError")
             for c in entry["checks"]]
    assert check_lines("sgd_step", every) == ["every check: `sgd_step` raised NotImplementedError"]


def test_results_json_has_one_test_per_check_named_by_exercise_and_what():
    """Is each hidden check a Gradescope test named "<id>: <what>", worth its share, the
    shares adding up to the exercise's points, the answer cell's error with the first failed
    check, and no self-check comment or test function name in sight?"""
    report = dict(notebook_name="nb", graded=True, reason="", problems=[], warnings=[], notes=[],
                  cells=[dict(index=0, grade_id="sgd_step-answer", status="error", seconds=0.0,
                              message="ValueError: oops")],
                  exercises={"sgd_step": graded_entry()})
    run.finish_report(report)
    data = Results("a2", [report]).to_gradescope()
    assert [t["name"] for t in data["tests"]] == [
        "sgd_step: one parameter", "sgd_step: several parameters",
        "sgd_step: changes nothing in place", "sgd_step: on parameters that require grad"]
    assert [t["max_score"] for t in data["tests"]] == [0.75] * 4
    assert [t["score"] for t in data["tests"]] == [0.75, 0, 0, 0]
    assert data["tests"][1]["output"] == ("your answer cell raised: ValueError: oops\n"
                                          "new parameter 1 differs")
    assert data["tests"][2]["output"] == "new parameter 1 differs"
    text = str(data)
    assert "Self-check for" not in text and "test_sgd" not in text


def test_shares_of_odd_weights_add_up_to_the_points():
    """A claim-weighted check (0.1) and three others: shares rounded, summing to the points."""
    entry = graded_entry()
    entry["checks"][3]["weight"] = 0.1
    entry["points"] = 2.0
    tests = Results._tests("sgd_step", entry)
    assert sum(t["max_score"] for t in tests) == pytest.approx(2.0, abs=1e-9)
    assert tests[3]["max_score"] == pytest.approx(2.0 * 0.1 / 3.1, abs=1e-4)


def test_the_terminal_summary_names_the_first_failed_check():
    report = dict(notebook_name="nb", graded=True, reason="", problems=[], warnings=[], notes=[],
                  cells=[], exercises={"sgd_step": graded_entry()})
    run.finish_report(report)
    row = next(line for line in Results("a2", [report]).summary(width=200).splitlines()
               if line.startswith("sgd_step"))
    assert "several parameters; changes nothing in place: new parameter 1 differs" in row


# --- the student's own outputs, plain and bounded -------------------------------------------

PNG = base64.b64encode(tiny_png()).decode()


def test_only_plain_kinds_of_output_survive():
    """Are HTML, JavaScript, SVG and forged images dropped, text cleaned of escapes, an error
    kept as plain text, and a valid PNG kept as it was?"""
    outputs = [
        new_output("stream", name="stdout", text="\x1b[31mred\x1b[0m\n50%\r100%\n"),
        new_output("display_data", data={"text/html": "<script>x()</script>",
                                         "application/javascript": "x()",
                                         "image/svg+xml": "<svg onload='x()'/>",
                                         "text/plain": "<IPython.core.display.HTML object>"}),
        new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure size 4x4>"}),
        new_output("display_data", data={"image/png": '"><script>x()</script>',
                                         "text/plain": "fallback"}),
        new_output("execute_result", data={"text/plain": "tensor(0.5)"}, execution_count=12),
        new_output("error", ename="ValueError", evalue="\x1b[1mboom\x1b[0m",
                   traceback=["\x1b[31m-----\x1b[0m", "ValueError: boom"]),
        {"output_type": "unknown", "data": {"text/plain": "?"}},
    ]
    kept = submitted_outputs.sanitize_outputs(outputs)
    assert [o.output_type for o in kept] == ["stream", "display_data", "display_data",
                                             "execute_result", "error"]
    assert kept[0].text == "red\n100%\n"
    assert kept[1].data == {"image/png": PNG}
    assert kept[1].metadata == {"image/png": {"alt": submitted_outputs.IMAGE_ALT}}
    assert kept[2].data == {"text/plain": "fallback"}
    assert kept[3].execution_count == 12
    assert (kept[4].ename, kept[4].evalue, kept[4].traceback) == \
        ("ValueError", "boom", ["-----", "ValueError: boom"])
    assert "script" not in str([o for o in kept if o.output_type != "display_data"])


def test_outputs_are_bounded_per_cell_and_per_notebook():
    many = [new_output("stream", name="stdout", text="y" * 400 + "\n") for _ in range(500)]
    log = submitted_outputs.sanitize_outputs([new_output("stream", name="stdout",
                                                         text="epoch\n" * 1000)])
    assert log[0].text.count("\n") == submitted_outputs.TEXT_LINES + 1
    assert "940 more lines not shown" in log[0].text
    kept = submitted_outputs.sanitize_outputs(many)
    assert len(kept) <= submitted_outputs.OUTPUTS_PER_CELL
    assert sum(len(o.text) for o in kept) <= submitted_outputs.CELL_CHARS + 100
    budget = submitted_outputs.Budget(chars=1000)
    first = submitted_outputs.sanitize_outputs(many, budget)
    assert sum(len(o.text) for o in first) <= 1100
    assert submitted_outputs.sanitize_outputs(many, budget) == []
    huge_png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"0" * (submitted_outputs.PNG_BYTES + 1))
    assert submitted_outputs.png_bytes(huge_png.decode()) is None


def test_the_kits_cells_lose_their_outputs_and_the_students_keep_theirs():
    """Do a locked setup cell and a self-check lose what was handed in with them, while an
    answer cell and a cell of the student's own keep theirs and their execution counts?"""
    cells = [kit_cells.locked_code("setup-data", "x = 1"), kit_cells.answer_code("f", "def f(): 1"),
             kit_cells.self_check("f", 1, "assert f()"), new_code_cell("print(1)")]
    for n, cell in enumerate(cells, 1):
        cell.execution_count = n
        cell.outputs = [new_output("stream", name="stdout", text=f"out {n}\n")]
    nb = nbformat.v4.new_notebook(cells=copy.deepcopy(cells))
    nb, _ = submitted_outputs.KeepOwnOutputs().preprocess(nb, {})
    assert [(c.execution_count, [o.text for o in c.outputs]) for c in nb.cells] == [
        (None, []), (2, ["out 2\n"]), (None, []), (4, ["out 4\n"])]


# --- the score, with hand grading pending --------------------------------------------------

def test_points_nobody_has_graded_are_pending_not_zero():
    assert score_line(14, 28, 7, True, False) == \
        "Score: 14.0 / 28.0 auto-graded; 7 points of written answers pending hand grading"
    assert score_line(15, 30, 5, True, True) == \
        "Score: 15.0 / 30.0 graded so far; 5 points of written answers pending hand grading"
    assert score_line(2, 5, 1, True, False).endswith("; 1 point of written answers pending "
                                                     "hand grading")
    assert score_line(21, 35, 0, True, True) == "Score: 21.0 / 35.0"
